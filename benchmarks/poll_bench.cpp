// poll_bench: the netpoller, timers and blocking-call benchmarks.
//
// Timing as in sched_bench.cpp: every iteration is one goro::run whose main
// goroutine times its own batch with steady_clock, reported through
// UseManualTime(); no goroutine touches benchmark::State.
//
//   BM_SleepLateness       2000 x co_await sleep(100us) on an otherwise idle
//                          runtime; counters p50_us / p99_us: how late each
//                          sleep ended (compare: go-sleep from
//                          ../shared/anchors, Go's time.Sleep).
//   BM_BlockingRoundTrip   co_await blocking([]{}): handoff to a syscall
//                          thread and back, ns per call.
//   BM_TimerInsertCancel   1M goro::Timers armed, then all stopped: ns per
//                          arm + stop pair (heap insert + removal).
//   BM_SocketPingPong/<backend>
//                          two goroutines bounce 8 bytes over a Unix
//                          socketpair (goro::io::send + recv): ns per round
//                          trip, with the io_uring and the epoll backend.
//   BM_SocketPingPongProcs/<backend>
//                          one pair on 1 P and on 2 Ps in turn: counters
//                          us_1p, us_2p and ratio_2p_1p (guard: <= 1.3).
//   BM_SocketPingPongPairs/<backend>
//                          the same with 64 pairs at once: ns per round trip
//                          of the whole runtime (where batching SQEs pays).
//   BM_ReadBesideComputation/<backend>
//                          2 Ps; a goroutine parks in a socketpair read
//                          whose op belongs to its P, which then runs a
//                          goroutine that computes for 1 s without
//                          suspending; a thread writes the byte 100 ms in.
//                          Counter lateness_us: from the write to the
//                          reader's resumption (median of the iterations);
//                          without a rescue of the busy P's I/O it is
//                          ~900 ms.
//
// Run: build/release/benchmarks/poll_bench
//        [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

#include "bench_util.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Lateness {
  double seconds = 0;
  double p50_us = 0;
  double p99_us = 0;
};

goro::Task<Lateness> sleep_lateness(int sleeps) {
  std::vector<double> late;
  late.reserve(static_cast<std::size_t>(sleeps));
  const auto start = Clock::now();
  for (int i = 0; i < sleeps; ++i) {
    const auto deadline = co_await goro::sleep(100us);
    late.push_back(std::chrono::duration<double, std::micro>(Clock::now() - deadline).count());
  }
  Lateness r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(late.begin(), late.end());
  r.p50_us = late[late.size() / 2];
  r.p99_us = late[late.size() * 99 / 100];
  co_return r;
}

void BM_SleepLateness(benchmark::State& state) {
  constexpr int kSleeps = 2000;
  std::vector<double> p50, p99;
  for (auto _ : state) {
    const Lateness r = goro::run(sleep_lateness(kSleeps));
    state.SetIterationTime(r.seconds);
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
  }
  std::sort(p50.begin(), p50.end());
  std::sort(p99.begin(), p99.end());
  state.counters["p50_us"] = p50[p50.size() / 2];
  state.counters["p99_us"] = p99[p99.size() / 2];
  state.SetItemsProcessed(state.iterations() * kSleeps);
}
BENCHMARK(BM_SleepLateness)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

goro::Task<double> blocking_round_trips(int calls) {
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) co_await goro::blocking([] {});
  co_return std::chrono::duration<double>(Clock::now() - start).count();
}

void BM_BlockingRoundTrip(benchmark::State& state) {
  constexpr int kCalls = 20000;
  for (auto _ : state) state.SetIterationTime(goro::run(blocking_round_trips(kCalls)));
  goro::bench::set_per_item(state, "ns_per_call", kCalls);
}
BENCHMARK(BM_BlockingRoundTrip)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<double> insert_cancel(int timers) {
  std::deque<goro::Timer> armed;
  const auto start = Clock::now();
  for (int i = 0; i < timers; ++i) armed.emplace_back(1h + std::chrono::microseconds(i % 9973));
  for (auto& t : armed) t.stop();
  co_return std::chrono::duration<double>(Clock::now() - start).count();
}

void BM_TimerInsertCancel(benchmark::State& state) {
  constexpr int kTimers = 1'000'000;
  for (auto _ : state)
    state.SetIterationTime(goro::run(insert_cancel(kTimers), goro::Config{.procs = 1}));
  goro::bench::set_per_item(state, "ns_per_timer", kTimers);
}
BENCHMARK(BM_TimerInsertCancel)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<bool> pong(int fd, int rounds) {
  std::uint64_t value = 0;
  for (int i = 0; i < rounds; ++i) {
    auto n = co_await goro::io::recv(fd, &value, sizeof value, MSG_WAITALL);
    if (!n.ok() || *n != sizeof value) co_return false;
    if (!(co_await goro::io::send_some(fd, &value, sizeof value)).ok()) co_return false;
  }
  co_return true;
}

goro::Task<bool> ping(int fd, int rounds) {
  std::uint64_t value = 0;
  for (int i = 0; i < rounds; ++i) {
    if (!(co_await goro::io::send_some(fd, &value, sizeof value)).ok()) co_return false;
    auto n = co_await goro::io::recv(fd, &value, sizeof value, MSG_WAITALL);
    if (!n.ok() || *n != sizeof value) co_return false;
    ++value;
  }
  co_return true;
}

// `pairs` ping-pong pairs, `rounds` round trips each; seconds, or -1 on an
// I/O error.
goro::Task<double> socket_ping_pong(int pairs, int rounds) {
  std::vector<std::array<int, 2>> fds(static_cast<std::size_t>(pairs));
  for (auto& f : fds) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.data()) != 0) co_return -1;
  }
  const auto start = Clock::now();
  std::vector<goro::JoinHandle<bool>> all;
  for (auto& f : fds) {
    all.push_back(goro::spawn(pong(f[1], rounds)));
    all.push_back(goro::spawn(ping(f[0], rounds)));
  }
  bool ok = true;
  for (auto& h : all) ok = (co_await h) && ok;
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& f : fds) {
    (void)goro::io::close(f[0]);
    (void)goro::io::close(f[1]);
  }
  co_return ok ? seconds : -1;
}

void socket_ping_pong_bench(benchmark::State& state, goro::PollerBackend backend, int pairs,
                            int rounds) {
  goro::Config config;
  config.poller = backend;
  for (auto _ : state) {
    const double seconds = goro::run(socket_ping_pong(pairs, rounds), config);
    if (seconds < 0) {
      state.SkipWithError("I/O error");
      return;
    }
    state.SetIterationTime(seconds);
  }
  goro::bench::set_per_item(state, "ns_per_roundtrip", static_cast<double>(pairs) * rounds);
}

void BM_SocketPingPong(benchmark::State& state, goro::PollerBackend backend) {
  socket_ping_pong_bench(state, backend, 1, 20000);
}
BENCHMARK_CAPTURE(BM_SocketPingPong, uring, goro::PollerBackend::kIoUring)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SocketPingPong, epoll, goro::PollerBackend::kEpoll)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The guard for the P count: one pair on 1 P and on 2 Ps, alternately in
// each iteration (so that both see the same machine load). Counters us_1p
// and us_2p (medians per round trip) and ratio_2p_1p, which should stay
// within 1.3: with two Ps the pair must not be pulled apart, each message
// then waking a thread. Counter spread_rounds_2p (the most in any 2-P run):
// sysmon must not take the pair's system-call time for computing and spread
// it; only queued handoff goroutines make a P spread.
void BM_SocketPingPongProcs(benchmark::State& state, goro::PollerBackend backend) {
  constexpr int kRounds = 20000;
  std::vector<double> one, two;
  std::uint64_t most_spread_rounds = 0;
  for (auto _ : state) {
    double seconds[2] = {0, 0};
    for (unsigned procs : {1u, 2u}) {
      goro::Config config = goro::bench::procs_config(procs);
      config.poller = backend;
      seconds[procs - 1] = goro::run(socket_ping_pong(1, kRounds), config);
      if (seconds[procs - 1] < 0) {
        state.SkipWithError("I/O error");
        return;
      }
    }
    most_spread_rounds = std::max(most_spread_rounds, goro::scheduler_stats().spread_rounds);
    one.push_back(seconds[0] * 1e6 / kRounds);
    two.push_back(seconds[1] * 1e6 / kRounds);
    state.SetIterationTime(seconds[1]);
  }
  std::sort(one.begin(), one.end());
  std::sort(two.begin(), two.end());
  state.counters["us_1p"] = one[one.size() / 2];
  state.counters["us_2p"] = two[two.size() / 2];
  state.counters["ratio_2p_1p"] = two[two.size() / 2] / one[one.size() / 2];
  state.counters["spread_rounds_2p"] = static_cast<double>(most_spread_rounds);
}
BENCHMARK_CAPTURE(BM_SocketPingPongProcs, uring, goro::PollerBackend::kIoUring)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);
BENCHMARK_CAPTURE(BM_SocketPingPongProcs, epoll, goro::PollerBackend::kEpoll)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

void BM_SocketPingPongPairs(benchmark::State& state, goro::PollerBackend backend) {
  socket_ping_pong_bench(state, backend, 64, 1000);
}
BENCHMARK_CAPTURE(BM_SocketPingPongPairs, uring, goro::PollerBackend::kIoUring)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SocketPingPongPairs, epoll, goro::PollerBackend::kEpoll)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// BM_ReadBesideComputation's state: the reader's thread, where the
// computing goroutine ran (0: not yet; 1: the reader's thread, that is its
// P; 2: another), and when it finished and the reader resumed.
struct BesideComputation {
  std::atomic<long> reader_thread{0};
  std::atomic<int> placement{0};
  std::atomic<bool> computed{false};
  std::atomic<Clock::rep> resumed{0};
};

long this_thread_id() { return static_cast<long>(::gettid()); }

// Computes for 1 s without suspending, if it runs on the reader's P.
goro::Task<void> compute_for_a_second(BesideComputation* b) {
  if (this_thread_id() != b->reader_thread.load()) {
    b->placement.store(2);
  } else {
    b->placement.store(1);
    const auto until = Clock::now() + 1s;
    while (Clock::now() < until) {
    }
  }
  b->computed.store(true);
  co_return;
}

// The reader: registers the socket (epoll: with this P's epoll, by a read
// that completes at once), starts the computing goroutine (into this P's
// runnext: the P runs it next) and parks in a read (io_uring: its SQE is
// in this P's ring).
goro::Task<bool> read_beside(int fd, BesideComputation* b) {
  char c = 0;
  if (!(co_await goro::io::read(fd, &c, 1)).ok()) co_return false;
  b->reader_thread.store(this_thread_id());
  goro::go(compute_for_a_second(b));
  const bool ok = (co_await goro::io::read(fd, &c, 1)).ok();
  b->resumed.store(Clock::now().time_since_epoch().count());
  co_return ok;
}

// Microseconds from the write to the reader's resumption; -1 on error. A
// thief may take the computing goroutine before the reader's P runs it:
// that round does not count, and it goes again.
goro::Task<double> read_beside_computation() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) co_return -1;
    if (::write(fds[1], "r", 1) != 1) co_return -1;
    BesideComputation b;
    std::atomic<Clock::rep> written{0};
    std::thread writer([&] {
      while (b.placement.load() == 0) std::this_thread::yield();
      if (b.placement.load() == 1) std::this_thread::sleep_for(100ms);
      written.store(Clock::now().time_since_epoch().count());
      (void)::write(fds[1], "w", 1);
    });
    const bool ok = co_await goro::spawn(read_beside(fds[0], &b));
    writer.join();
    while (!b.computed.load()) co_await goro::sleep(1ms);
    (void)goro::io::close(fds[0]);
    (void)goro::io::close(fds[1]);
    if (!ok) co_return -1;
    if (b.placement.load() != 1) continue;
    const Clock::time_point wrote{Clock::duration(written.load())};
    const Clock::time_point resumed{Clock::duration(b.resumed.load())};
    co_return std::chrono::duration<double, std::micro>(resumed - wrote).count();
  }
  co_return -1;
}

void BM_ReadBesideComputation(benchmark::State& state, goro::PollerBackend backend) {
  goro::Config config;
  config.procs = 2;
  config.poller = backend;
  std::vector<double> late;
  for (auto _ : state) {
    const double us = goro::run(read_beside_computation(), config);
    if (us < 0) {
      state.SkipWithError("I/O error, or the computation never ran on the reader's P");
      return;
    }
    state.SetIterationTime(1.0);
    late.push_back(us);
  }
  std::sort(late.begin(), late.end());
  state.counters["lateness_us"] = late[late.size() / 2];
}
BENCHMARK_CAPTURE(BM_ReadBesideComputation, uring, goro::PollerBackend::kIoUring)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_ReadBesideComputation, epoll, goro::PollerBackend::kEpoll)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
