// context_bench: costs of goro::after, goro::Context and goro::Group
// (Google Benchmark), timed as chan_bench.cpp: each iteration is one
// goro::run doing a batch; the main goroutine times the batch and the
// benchmark reports that manual time. `ns_per_op` is the cost of one item.
//
//   BM_After                 after(1h) made and dropped (timer armed and
//                            disarmed, two small allocations)
//   BM_SelectAfterReady      select over a ready channel and after(1h): the
//                            common "value or timeout" loop
//   BM_WithCancel            with_cancel(parent) + cancel + drop
//   BM_WithTimeout           with_timeout(parent, 1h) + cancel + drop (a
//                            timer armed and disarmed)
//   BM_SelectDoneReady       select over ctx.done() and a ready channel
//   BM_GroupGoWait/<tasks>   Group::with_context, <tasks> trivial tasks,
//                            wait: ns per task
//
// Run: build/release/benchmarks/context_bench
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include <goro/goro.hpp>

#include "bench_util.hpp"

namespace {

using namespace std::chrono_literals;
using goro::bench::Clock;

using goro::bench::seconds_since;

void set_per_op(benchmark::State& state, std::int64_t ops_per_iteration) {
  goro::bench::set_per_item(state, "ns_per_op", static_cast<double>(ops_per_iteration));
}

template <class MakeBatch>
void run_batches(benchmark::State& state, MakeBatch make_batch, long n) {
  for (auto _ : state) {
    state.SetIterationTime(goro::run(make_batch(n), goro::Config{.procs = 1}));
  }
  set_per_op(state, n);
}

constexpr long kOps = 100000;

goro::Task<double> after_batch(long n) {
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) benchmark::DoNotOptimize(goro::after(1h));
  co_return seconds_since(start);
}

void BM_After(benchmark::State& state) { run_batches(state, after_batch, kOps); }
BENCHMARK(BM_After)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<double> select_after_ready_batch(long n) {
  goro::Chan<int> ch = goro::make_chan<int>(1);
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    (void)ch.try_send(1);
    auto r = co_await goro::select(goro::recv_from(ch), goro::recv_from(goro::after(1h)));
    benchmark::DoNotOptimize(r.index());
  }
  co_return seconds_since(start);
}

void BM_SelectAfterReady(benchmark::State& state) {
  run_batches(state, select_after_ready_batch, kOps);
}
BENCHMARK(BM_SelectAfterReady)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<double> with_cancel_batch(long n) {
  auto [parent, cancel_parent] = goro::with_cancel(goro::background());
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    auto [ctx, cancel] = goro::with_cancel(parent);
    cancel();
  }
  co_return seconds_since(start);
}

void BM_WithCancel(benchmark::State& state) { run_batches(state, with_cancel_batch, kOps); }
BENCHMARK(BM_WithCancel)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<double> with_timeout_batch(long n) {
  auto [parent, cancel_parent] = goro::with_cancel(goro::background());
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    auto [ctx, cancel] = goro::with_timeout(parent, 1h);
    cancel();
  }
  co_return seconds_since(start);
}

void BM_WithTimeout(benchmark::State& state) { run_batches(state, with_timeout_batch, kOps); }
BENCHMARK(BM_WithTimeout)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<double> select_done_ready_batch(long n) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::Chan<int> ch = goro::make_chan<int>(1);
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    (void)ch.try_send(1);
    auto r = co_await goro::select(goro::recv_from(ctx.done()), goro::recv_from(ch));
    benchmark::DoNotOptimize(r.index());
  }
  co_return seconds_since(start);
}

void BM_SelectDoneReady(benchmark::State& state) {
  run_batches(state, select_done_ready_batch, kOps);
}
BENCHMARK(BM_SelectDoneReady)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<absl::Status> ok_task() { co_return absl::OkStatus(); }

goro::Task<double> group_batch(long tasks) {
  const auto start = Clock::now();
  for (long round = 0; round < 100; ++round) {
    auto [group, ctx] = goro::Group::with_context(goro::background());
    for (long i = 0; i < tasks; ++i) group.go(ok_task());
    benchmark::DoNotOptimize(co_await group.wait());
  }
  co_return seconds_since(start);
}

void BM_GroupGoWait(benchmark::State& state) {
  const long tasks = state.range(0);
  for (auto _ : state) {
    state.SetIterationTime(goro::run(group_batch(tasks), goro::Config{.procs = 1}));
  }
  set_per_op(state, 100 * tasks);
}
BENCHMARK(BM_GroupGoWait)->Arg(10)->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
