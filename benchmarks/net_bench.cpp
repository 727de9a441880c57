// benchmarks/net_bench.cpp: what goro::net costs over goro::io.
//
//   BM_ConnPingPong/<backend>
//       two goroutines on 1 P bounce 8 bytes over a Unix socketpair,
//       20,000 round trips, once with goro::io (recv + send_some on the
//       raw fds) and once through net::Conn (read + write on Conns made
//       with Conn::from_fd), alternately in each iteration so that both
//       see the same machine load. Counters us_io and us_net (medians per
//       round trip) and ratio_net_io (the target: within 1.10); and the
//       process's CPU time per round trip, cpu_us_io and cpu_us_net, with
//       cpu_ratio_net_io, which a loaded machine disturbs less than the
//       wall-clock figures (a round trip then waits for the kernel to run
//       the worker again).
//
// Run: build/release/benchmarks/net_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRounds = 20000;

goro::Task<bool> io_side(int fd, int rounds, bool starts) {
  std::uint64_t value = 0;
  for (int i = 0; i < rounds; ++i) {
    if (starts && !(co_await goro::io::send_some(fd, &value, sizeof value)).ok()) co_return false;
    auto n = co_await goro::io::recv(fd, &value, sizeof value);
    if (!n.ok() || *n != sizeof value) co_return false;
    if (!starts && !(co_await goro::io::send_some(fd, &value, sizeof value)).ok()) co_return false;
  }
  co_return true;
}

goro::Task<bool> net_side(goro::net::Conn* conn, int rounds, bool starts) {
  std::uint64_t value = 0;
  for (int i = 0; i < rounds; ++i) {
    if (starts && !(co_await conn->write(&value, sizeof value)).ok()) co_return false;
    auto n = co_await conn->read(&value, sizeof value);
    if (!n.ok() || *n != sizeof value) co_return false;
    if (!starts && !(co_await conn->write(&value, sizeof value)).ok()) co_return false;
  }
  co_return true;
}

// The process's CPU time, in seconds.
double cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Wall-clock and CPU seconds for `rounds` round trips (-1 on an I/O
// error).
struct Timing {
  double wall = -1;
  double cpu = -1;
};

goro::Task<Timing> ping_pong(bool through_net) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) co_return Timing{};
  goro::net::Conn a = goro::net::Conn::from_fd(fds[0]);
  goro::net::Conn b = goro::net::Conn::from_fd(fds[1]);
  const auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  goro::JoinHandle<bool> first, second;
  if (through_net) {
    first = goro::spawn(net_side(&b, kRounds, false));
    second = goro::spawn(net_side(&a, kRounds, true));
  } else {
    first = goro::spawn(io_side(fds[1], kRounds, false));
    second = goro::spawn(io_side(fds[0], kRounds, true));
  }
  const bool first_ok = co_await first;
  const bool second_ok = co_await second;
  const bool ok = first_ok && second_ok;
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!ok) co_return Timing{};
  co_return Timing{seconds, cpu_seconds() - cpu_start};
}

void BM_ConnPingPong(benchmark::State& state, goro::PollerBackend backend) {
  std::vector<double> io_us, net_us, io_cpu_us, net_cpu_us;
  goro::Config config = goro::bench::procs_config(1);
  config.poller = backend;
  for (auto _ : state) {
    const Timing io = goro::run(ping_pong(false), config);
    const Timing net = goro::run(ping_pong(true), config);
    if (io.wall < 0 || net.wall < 0) {
      state.SkipWithError("I/O error");
      return;
    }
    io_us.push_back(io.wall * 1e6 / kRounds);
    net_us.push_back(net.wall * 1e6 / kRounds);
    io_cpu_us.push_back(io.cpu * 1e6 / kRounds);
    net_cpu_us.push_back(net.cpu * 1e6 / kRounds);
    state.SetIterationTime(net.wall);
  }
  auto median = [](std::vector<double>& values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  state.counters["us_io"] = median(io_us);
  state.counters["us_net"] = median(net_us);
  state.counters["ratio_net_io"] = median(net_us) / median(io_us);
  state.counters["cpu_us_io"] = median(io_cpu_us);
  state.counters["cpu_us_net"] = median(net_cpu_us);
  state.counters["cpu_ratio_net_io"] = median(net_cpu_us) / median(io_cpu_us);
}
BENCHMARK_CAPTURE(BM_ConnPingPong, uring, goro::PollerBackend::kIoUring)
    ->UseManualTime()
    ->Iterations(9)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ConnPingPong, epoll, goro::PollerBackend::kEpoll)
    ->UseManualTime()
    ->Iterations(9)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
