// sched_bench: scheduler micro-benchmarks (Google Benchmark).
//
// How the timing works, and why
//
//   benchmark::State may only be used on the thread that called the
//   benchmark function, but a goroutine may continue on any worker thread
//   (goro::run's calling thread is only P 0's worker; other Ps steal). So no
//   goroutine ever touches `state`. Instead every benchmark is
//
//     for (auto _ : state) {                         // benchmark's own thread
//       Result r = goro::run(batch(kBatch), config); // one runtime per iteration
//       state.SetIterationTime(r.seconds);           // ->UseManualTime()
//     }
//
//   One iteration is one goro::run that does a fixed batch of work (e.g.
//   100k spawn+joins, or one 1M-goroutine skynet tree). Its main goroutine
//   reads std::chrono::steady_clock around the work only, so the runtime's
//   start-up and shutdown (creating and joining worker threads) are not
//   counted; UseManualTime() makes Google Benchmark use that time for both
//   the reported time and for choosing the iteration count.
//   SetItemsProcessed(iterations * kBatch) turns it into items_per_second,
//   and the `ns_per_<item>` counter (a kIsRate|kInvert counter: manual time
//   divided by items) prints the cost of one goroutine / yield directly.
//
//   Counters taken from goro::scheduler_stats() after the last run (steals,
//   inline joins, ...) are per batch and say which path was measured.
//
//   procs: the benchmark argument is Config::procs; 0 means the runtime's
//   default (GORO_MAXPROCS, else available_procs(), 2 on the dev machines).
//
// Run: build/release/benchmarks/sched_bench
//        [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
// scripts/bench-sched.sh runs it together with the skynet A/B against Go.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

#include "bench_util.hpp"
#include "skynet.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

goro::Config config_for(const benchmark::State& state) {
  goro::Config config;
  config.procs = static_cast<unsigned>(state.range(0));
  return config;
}

void label_procs(benchmark::State& state) {
  const unsigned procs = static_cast<unsigned>(state.range(0));
  if (procs == 0) {
    state.SetLabel("procs=default(" + std::to_string(goro::scheduler_stats().procs) + ")");
  }
}

using goro::bench::set_per_item;

// Per-batch scheduler counters of the last run (approximate shares are
// enough to tell which path the benchmark exercised).
void set_stats_counters(benchmark::State& state) {
  const goro::SchedulerStats s = goro::scheduler_stats();
  state.counters["inline_joins"] = static_cast<double>(s.inline_joins);
  state.counters["steals"] = static_cast<double>(s.steals);
  state.counters["stolen"] = static_cast<double>(s.stolen_goroutines);
  state.counters["parks"] = static_cast<double>(s.parks);
}

goro::Task<int> leaf(int x) { co_return x + 1; }

// How a benchmark starts its goroutines: from a Task (go(task),
// spawn(task)), from a capturing lambda (go(f), spawn(f)), or from a
// function and its arguments (go(f, args...), spawn(f, args...)). The two
// callable forms keep the callable and the arguments in the goroutine's
// record and call it in go() (goro/detail/invoke_task.hpp); the rows of a
// set differ by the form and nothing else.
enum class Form { kTask, kCallable, kFunctionArgs };

template <Form kForm>
goro::JoinHandle<int> spawn_leaf(int x) {
  if constexpr (kForm == Form::kTask) {
    return goro::spawn(leaf(x));
  } else if constexpr (kForm == Form::kCallable) {
    return goro::spawn([x]() -> goro::Task<int> { co_return x + 1; });
  } else {
    return goro::spawn(leaf, x);
  }
}

// Runs `batch(args...)` (a Task<double>: the seconds its work took) in a
// fresh runtime once per iteration, then reports the cost per goroutine
// (`goroutines` per batch) and the scheduler counters of the last run.
template <class Batch, class... Args>
void run_goroutine_batches(benchmark::State& state, std::int64_t goroutines, Batch batch,
                           Args... args) {
  const goro::Config config = config_for(state);
  for (auto _ : state) state.SetIterationTime(goro::run(batch(args...), config));
  set_per_item(state, "ns_per_goroutine", goroutines);
  set_stats_counters(state);
  label_procs(state);
}

// ---------------------------------------------------------------------------
// BM_TaskAwait: plain `co_await` of Tasks, no goroutine spawned: a binary
// tree of awaits (fib(25): 242,785 Tasks, each awaited once, most finishing
// without suspending), the path every call in a coroutine takes.

goro::Task<long> fib_task(int n) {
  if (n < 2) co_return n;
  const long a = co_await fib_task(n - 1);
  const long b = co_await fib_task(n - 2);
  co_return a + b;
}

constexpr int kFibN = 25;
constexpr long kFibTasks = 242'785;  // calls of fib_task(25)

goro::Task<double> task_await_tree() {
  const auto start = Clock::now();
  const long result = co_await fib_task(kFibN);
  const double took = seconds_since(start);
  benchmark::DoNotOptimize(result);
  co_return took;
}

void BM_TaskAwait(benchmark::State& state) {
  const goro::Config config = config_for(state);
  for (auto _ : state) state.SetIterationTime(goro::run(task_await_tree(), config));
  set_per_item(state, "ns_per_await", kFibTasks);
}
BENCHMARK(BM_TaskAwait)->ArgName("procs")->Arg(1)->UseManualTime();

// ---------------------------------------------------------------------------
// BM_SpawnJoin_Serial: spawn one child and co_await it at once. The child
// sits in runnext, unstarted, so the join normally runs it in place (the
// inline-join path); with procs=2 an idle P may steal it first.
// BM_SpawnJoin_Serial_Callable: the same with spawn(f) of a capturing
// lambda; BM_SpawnJoin_Serial_FunctionArgs: with spawn(f, args...).

constexpr int kSerialBatch = 100'000;

template <Form kForm>
goro::Task<double> spawn_join_serial(int n) {
  const auto start = Clock::now();
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await spawn_leaf<kForm>(i);
  const double took = seconds_since(start);
  benchmark::DoNotOptimize(sum);
  co_return took;
}

template <Form kForm>
void spawn_join_serial_benchmark(benchmark::State& state) {
  run_goroutine_batches(state, kSerialBatch, spawn_join_serial<kForm>, kSerialBatch);
}

void BM_SpawnJoin_Serial(benchmark::State& state) {
  spawn_join_serial_benchmark<Form::kTask>(state);
}
BENCHMARK(BM_SpawnJoin_Serial)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_SpawnJoin_Serial_Callable(benchmark::State& state) {
  spawn_join_serial_benchmark<Form::kCallable>(state);
}
BENCHMARK(BM_SpawnJoin_Serial_Callable)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_SpawnJoin_Serial_FunctionArgs(benchmark::State& state) {
  spawn_join_serial_benchmark<Form::kFunctionArgs>(state);
}
BENCHMARK(BM_SpawnJoin_Serial_FunctionArgs)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

// ---------------------------------------------------------------------------
// BM_SpawnJoin_Batch1000: spawn 1000 children into a vector<JoinHandle>,
// then join them all; 100 rounds per run. Children queued behind runnext
// can be stolen by the other P (the steals counter says how many).
// BM_SpawnJoin_Batch1000_Callable: the same with spawn(f) of a capturing
// lambda; BM_SpawnJoin_Batch1000_FunctionArgs: with spawn(f, args...).

constexpr int kFanout = 1000;
constexpr int kBatchRounds = 100;

template <Form kForm>
goro::Task<double> spawn_join_batch(int rounds, int fanout) {
  std::vector<goro::JoinHandle<int>> children;
  children.reserve(static_cast<std::size_t>(fanout));
  const auto start = Clock::now();
  long sum = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < fanout; ++i) children.push_back(spawn_leaf<kForm>(i));
    for (auto& child : children) sum += co_await child;
    children.clear();
  }
  const double took = seconds_since(start);
  benchmark::DoNotOptimize(sum);
  co_return took;
}

template <Form kForm>
void spawn_join_batch_benchmark(benchmark::State& state) {
  run_goroutine_batches(state, std::int64_t{kBatchRounds} * kFanout, spawn_join_batch<kForm>,
                        kBatchRounds, kFanout);
}

void BM_SpawnJoin_Batch1000(benchmark::State& state) {
  spawn_join_batch_benchmark<Form::kTask>(state);
}
BENCHMARK(BM_SpawnJoin_Batch1000)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_SpawnJoin_Batch1000_Callable(benchmark::State& state) {
  spawn_join_batch_benchmark<Form::kCallable>(state);
}
BENCHMARK(BM_SpawnJoin_Batch1000_Callable)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_SpawnJoin_Batch1000_FunctionArgs(benchmark::State& state) {
  spawn_join_batch_benchmark<Form::kFunctionArgs>(state);
}
BENCHMARK(BM_SpawnJoin_Batch1000_FunctionArgs)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

// ---------------------------------------------------------------------------
// BM_Go_Batch1000: go() 1000 detached children, each counting down an
// atomic, then yield until all have run; 100 rounds per run.
// BM_Go_Batch1000_Callable: the same with go(f) of a capturing lambda;
// BM_Go_Batch1000_FunctionArgs: with go(f, args...), the function and
// argument of the go(task) row.

goro::Task<void> count_down_child(std::atomic<long>* remaining) {
  remaining->fetch_sub(1, std::memory_order_acq_rel);
  co_return;
}

template <Form kForm>
goro::Task<double> go_batch(int rounds, int fanout) {
  std::atomic<long> remaining{0};
  const auto start = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    remaining.store(fanout, std::memory_order_relaxed);
    for (int i = 0; i < fanout; ++i) {
      if constexpr (kForm == Form::kTask) {
        goro::go(count_down_child(&remaining));
      } else if constexpr (kForm == Form::kCallable) {
        goro::go([&remaining]() -> goro::Task<void> {
          remaining.fetch_sub(1, std::memory_order_acq_rel);
          co_return;
        });
      } else {
        goro::go(count_down_child, &remaining);
      }
    }
    while (remaining.load(std::memory_order_acquire) != 0) co_await goro::yield();
  }
  co_return seconds_since(start);
}

template <Form kForm>
void go_batch_benchmark(benchmark::State& state) {
  run_goroutine_batches(state, std::int64_t{kBatchRounds} * kFanout, go_batch<kForm>, kBatchRounds,
                        kFanout);
}

void BM_Go_Batch1000(benchmark::State& state) { go_batch_benchmark<Form::kTask>(state); }
BENCHMARK(BM_Go_Batch1000)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_Go_Batch1000_Callable(benchmark::State& state) {
  go_batch_benchmark<Form::kCallable>(state);
}
BENCHMARK(BM_Go_Batch1000_Callable)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

void BM_Go_Batch1000_FunctionArgs(benchmark::State& state) {
  go_batch_benchmark<Form::kFunctionArgs>(state);
}
BENCHMARK(BM_Go_Batch1000_FunctionArgs)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

// ---------------------------------------------------------------------------
// BM_Skynet1M: 1M goroutines in a 10-ary spawn/join tree, the tree of
// examples/skynet.cpp (examples/skynet.hpp). Time per tree.

goro::Task<double> skynet_tree() {
  constexpr long kLeaves = 1'000'000;
  const auto start = Clock::now();
  const long result = co_await goro::spawn(skynet::spawn_join_tree(0, kLeaves, 10));
  const double took = seconds_since(start);
  goro::bench::check_result("skynet", result, skynet::leaf_sum(kLeaves));
  co_return took;
}

void BM_Skynet1M(benchmark::State& state) {
  run_goroutine_batches(state, 1'111'111, skynet_tree);  // 1M leaves + 111,111 inner nodes
}
BENCHMARK(BM_Skynet1M)
    ->ArgName("procs")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// BM_YieldPingPong: two goroutines each `co_await goro::yield()` N times.
// With procs=1 they alternate on one P's run queue; with procs=2 each may
// end up alone on its own P (then a yield finds nothing else to run and
// resumes at once).

constexpr int kYieldRounds = 100'000;

goro::Task<void> yielder(int rounds) {
  for (int i = 0; i < rounds; ++i) co_await goro::yield();
}

goro::Task<double> yield_ping_pong(int rounds) {
  const auto start = Clock::now();
  auto a = goro::spawn(yielder(rounds));
  auto b = goro::spawn(yielder(rounds));
  co_await a;
  co_await b;
  co_return seconds_since(start);
}

void BM_YieldPingPong(benchmark::State& state) {
  const goro::Config config = config_for(state);
  for (auto _ : state) state.SetIterationTime(goro::run(yield_ping_pong(kYieldRounds), config));
  set_per_item(state, "ns_per_yield", 2 * kYieldRounds);
  const goro::SchedulerStats s = goro::scheduler_stats();
  state.counters["yields"] = static_cast<double>(s.yields);
  state.counters["steals"] = static_cast<double>(s.steals);
  label_procs(state);
}
BENCHMARK(BM_YieldPingPong)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

// ---------------------------------------------------------------------------
// BM_SpawnFromOutside: a std::thread outside the runtime calls goro::go()
// N times (global run queue + waking a worker); each goroutine decrements
// an atomic counter; the main goroutine yields until it reaches zero.

constexpr int kOutsideBatch = 100'000;

goro::Task<double> spawn_from_outside(int n) {
  std::atomic<long> remaining{n};
  const auto start = Clock::now();
  std::thread outsider([&remaining, n] {
    for (int i = 0; i < n; ++i) goro::go(count_down_child(&remaining));
  });
  while (remaining.load(std::memory_order_acquire) != 0) co_await goro::yield();
  const double took = seconds_since(start);
  // All n goroutines have run, so the outsider is past its last go() call
  // and this join is only its return.
  outsider.join();
  co_return took;
}

void BM_SpawnFromOutside(benchmark::State& state) {
  const goro::Config config = config_for(state);
  for (auto _ : state) state.SetIterationTime(goro::run(spawn_from_outside(kOutsideBatch), config));
  set_per_item(state, "ns_per_goroutine", kOutsideBatch);
  const goro::SchedulerStats s = goro::scheduler_stats();
  state.counters["global_takes"] = static_cast<double>(s.global_queue_takes);
  state.counters["yields"] = static_cast<double>(s.yields);
  state.counters["parks"] = static_cast<double>(s.parks);
  label_procs(state);
}
BENCHMARK(BM_SpawnFromOutside)->ArgName("procs")->Arg(1)->Arg(2)->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
