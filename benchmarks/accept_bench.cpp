// benchmarks/accept_bench.cpp: connection-accept throughput of
// net::Listener, multishot accept against one accept per call (io_uring;
// Config::multishot_accept), and epoll.
//
//   BM_AcceptShortConnections/<mode>
//       one goroutine accepts and closes connections on 1 P while two
//       threads outside the runtime connect and close, 5,000 connections
//       per iteration. Counter accepts_per_s.
//
// Run: build/release/benchmarks/accept_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "bench_util.hpp"

namespace {

constexpr int kConnections = 5000;
constexpr int kClientThreads = 2;

void connect_and_close(int port, int count) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  for (int i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      --i;
      continue;
    }
    ::close(fd);
  }
}

// Seconds to accept kConnections, or -1.
goro::Task<double> accept_many() {
  auto listener = co_await goro::net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return -1;
  const int port = listener->addr().port();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < kClientThreads; ++t) {
    clients.emplace_back(connect_and_close, port, kConnections / kClientThreads);
  }
  int accepted = 0;
  while (accepted < kConnections) {
    auto conn = co_await listener->accept();
    if (!conn.ok()) break;
    ++accepted;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& c : clients) c.join();
  co_return accepted == kConnections ? seconds : -1;
}

void BM_AcceptShortConnections(benchmark::State& state, goro::PollerBackend backend,
                               bool multishot) {
  goro::Config config = goro::bench::procs_config(1);
  config.poller = backend;
  config.multishot_accept = multishot;
  double total = 0;
  for (auto _ : state) {
    const double seconds = goro::run(accept_many(), config);
    if (seconds < 0) {
      state.SkipWithError("accept failed");
      return;
    }
    total += seconds;
  }
  state.counters["accepts_per_s"] = benchmark::Counter(
      static_cast<double>(kConnections) * static_cast<double>(state.iterations()) / total);
}

BENCHMARK_CAPTURE(BM_AcceptShortConnections, uring_multishot, goro::PollerBackend::kIoUring, true)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AcceptShortConnections, uring_oneshot, goro::PollerBackend::kIoUring, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AcceptShortConnections, epoll, goro::PollerBackend::kEpoll, false)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
