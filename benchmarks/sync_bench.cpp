// sync_bench: micro-benchmarks of goro's sync primitives (Google Benchmark).
//
// Timing works as in chan_bench.cpp: each iteration is one goro::run doing
// a fixed batch; the main goroutine times the batch with steady_clock
// (runtime start-up and shutdown are not counted) and the benchmark uses
// that manual time. The `ns_per_op` counter is the cost of one operation.
//
// Benchmarks (docs/PERFORMANCE.md, "Sync primitives", has Go's numbers for
// the same shapes):
//   BM_MutexUncontended            one goroutine: lock + unlock
//   BM_MutexContended/<goroutines> that many goroutines on 2 Ps share one
//                                  Mutex: lock, counter++, unlock
//   BM_RWMutexReadMostly/<every>/<goroutines>
//                                  that many goroutines on 2 Ps; one op in
//                                  <every> takes the write lock, the rest
//                                  read-lock (2 goroutines is the shape of
//                                  Go's BenchmarkRWMutexWrite10/100, whose
//                                  RunParallel runs one per P)
//   BM_WaitGroupUncontended        one goroutine: add(1), done(), wait()
//   BM_WaitGroupAddDone            8 goroutines on 2 Ps: add(1) + done() on
//                                  one shared WaitGroup; then one wait()
//   BM_OnceFastPath                co_await once.call(fn) once it is done
//   BM_SemaphoreUncontended        one goroutine: acquire(1) + release(1)
//   BM_SemaphoreContended/<g>      g goroutines on 2 Ps, a Semaphore of 2
//
// Run: build/release/benchmarks/sync_bench
//        [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <goro/goro.hpp>

#include "bench_util.hpp"

namespace {

using goro::bench::Clock;
using goro::bench::run_batches;
using goro::bench::seconds_since;

// ns per op from manual time.
void set_per_op(benchmark::State& state, std::int64_t ops_per_iteration) {
  goro::bench::set_per_item(state, "ns_per_op", static_cast<double>(ops_per_iteration));
}

// The whole benchmark: make_batch(args..., ops) per iteration, on `procs`
// Ps, reported per op (`ops_done`: the ops a batch really does, when ops
// does not split evenly between goroutines).
template <class MakeBatch, class... Args>
void measure(benchmark::State& state, unsigned procs, long ops, long ops_done, MakeBatch make_batch,
             Args... args) {
  run_batches(state, procs, make_batch, args..., ops);
  set_per_op(state, ops_done);
}

// Starts `workers` goroutines running make_worker(ops_each) and times them
// until all have finished (joined).
template <class MakeWorker>
goro::Task<double> time_workers(int workers, MakeWorker make_worker) {
  std::vector<goro::JoinHandle<void>> handles;
  handles.reserve(static_cast<std::size_t>(workers));
  const auto start = Clock::now();
  for (int w = 0; w < workers; ++w) handles.push_back(goro::spawn(make_worker()));
  for (auto& h : handles) co_await h;
  co_return seconds_since(start);
}

// --- Mutex -------------------------------------------------------------------

goro::Task<double> mutex_uncontended(long ops) {
  goro::Mutex mu;
  long counter = 0;
  const auto start = Clock::now();
  for (long i = 0; i < ops; ++i) {
    co_await mu.lock();
    ++counter;
    mu.unlock();
  }
  const double took = seconds_since(start);
  if (counter != ops) std::abort();
  co_return took;
}

void BM_MutexUncontended(benchmark::State& state) {
  measure(state, 1, 5'000'000, 5'000'000, mutex_uncontended);
}
BENCHMARK(BM_MutexUncontended)->UseManualTime()->Unit(benchmark::kMillisecond);

// A mutex and the counter it guards, alone on one cache line: the lockers
// then move one line between them, as Go's BenchmarkMutex (whose critical
// section is empty) does. Two coroutine-frame locals would share a line or
// not depending on where the frame lands, and the second line's transfer
// would be timed in some runs and not in others.
struct alignas(64) GuardedCounter {
  goro::Mutex mu;
  long counter = 0;
};

goro::Task<void> lock_loop(GuardedCounter& shared, long ops) {
  for (long i = 0; i < ops; ++i) {
    co_await shared.mu.lock();
    ++shared.counter;
    shared.mu.unlock();
  }
}

goro::Task<double> mutex_contended(int goroutines, long ops) {
  GuardedCounter shared;
  const long each = ops / goroutines;
  const double took = co_await time_workers(
      goroutines, [&]() GORO_CORO_WRAPPER { return lock_loop(shared, each); });
  if (shared.counter != each * goroutines) std::abort();
  co_return took;
}

void BM_MutexContended(benchmark::State& state) {
  constexpr long kOps = 2'000'000;
  const int goroutines = static_cast<int>(state.range(0));
  measure(state, 2, kOps, kOps / goroutines * goroutines, mutex_contended, goroutines);
  // How often a locker parked (and its P went idle) and how often a worker
  // woke another, per lock, in the last iteration's runtime.
  const goro::SchedulerStats stats = goro::scheduler_stats();
  const auto per_op = [&](std::uint64_t n) { return static_cast<double>(n) / kOps; };
  state.counters["parks_per_op"] = per_op(stats.parks);
  state.counters["wakeups_per_op"] = per_op(stats.wakeups);
}
BENCHMARK(BM_MutexContended)
    ->Arg(2)
    ->Arg(8)
    ->Arg(64)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- RWMutex -----------------------------------------------------------------

goro::Task<void> read_mostly_loop(goro::RWMutex& rw, long& shared, long ops, long write_every) {
  long sum = 0;
  for (long i = 0; i < ops; ++i) {
    if (i % write_every == 0) {
      co_await rw.lock();
      ++shared;
      rw.unlock();
    } else {
      co_await rw.rlock();
      sum += shared;
      rw.runlock();
    }
  }
  benchmark::DoNotOptimize(sum);
}

goro::Task<double> rwmutex_read_mostly(long write_every, int goroutines, long ops) {
  goro::RWMutex rw;
  long shared = 0;
  co_return co_await time_workers(goroutines, [&]() GORO_CORO_WRAPPER {
    return read_mostly_loop(rw, shared, ops / goroutines, write_every);
  });
}

void BM_RWMutexReadMostly(benchmark::State& state) {
  constexpr long kOps = 2'000'000;
  const int goroutines = static_cast<int>(state.range(1));
  measure(state, 2, kOps, kOps / goroutines * goroutines, rwmutex_read_mostly,
          static_cast<long>(state.range(0)), goroutines);
}
BENCHMARK(BM_RWMutexReadMostly)
    ->ArgNames({"every", "goroutines"})
    ->ArgsProduct({{10, 100}, {2, 8}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- WaitGroup ---------------------------------------------------------------

goro::Task<double> wait_group_uncontended(long ops) {
  goro::WaitGroup wg;
  const auto start = Clock::now();
  for (long i = 0; i < ops; ++i) {
    wg.add(1);
    wg.done();
    co_await wg.wait();
  }
  co_return seconds_since(start);
}

void BM_WaitGroupUncontended(benchmark::State& state) {
  measure(state, 1, 5'000'000, 5'000'000, wait_group_uncontended);
}
BENCHMARK(BM_WaitGroupUncontended)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<void> add_done_loop(goro::WaitGroup& wg, long ops) {
  for (long i = 0; i < ops; ++i) {
    wg.add(1);
    wg.done();
  }
  co_return;
}

goro::Task<double> wait_group_add_done(long ops) {
  constexpr int kGoroutines = 8;
  goro::WaitGroup wg;
  const double took = co_await time_workers(
      kGoroutines, [&]() GORO_CORO_WRAPPER { return add_done_loop(wg, ops / kGoroutines); });
  co_await wg.wait();
  co_return took;
}

void BM_WaitGroupAddDone(benchmark::State& state) {
  measure(state, 2, 4'000'000, 4'000'000, wait_group_add_done);
}
BENCHMARK(BM_WaitGroupAddDone)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- Once --------------------------------------------------------------------

goro::Task<double> once_fast_path(long ops) {
  goro::Once once;
  long runs = 0;
  co_await once.call([&runs] { ++runs; });
  const auto start = Clock::now();
  for (long i = 0; i < ops; ++i) co_await once.call([&runs] { ++runs; });
  const double took = seconds_since(start);
  if (runs != 1) std::abort();
  co_return took;
}

void BM_OnceFastPath(benchmark::State& state) {
  measure(state, 1, 20'000'000, 20'000'000, once_fast_path);
}
BENCHMARK(BM_OnceFastPath)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- Semaphore ---------------------------------------------------------------

goro::Task<double> semaphore_uncontended(long ops) {
  goro::Semaphore sem(1);
  const auto start = Clock::now();
  for (long i = 0; i < ops; ++i) {
    co_await sem.acquire(1);
    sem.release(1);
  }
  co_return seconds_since(start);
}

void BM_SemaphoreUncontended(benchmark::State& state) {
  measure(state, 1, 5'000'000, 5'000'000, semaphore_uncontended);
}
BENCHMARK(BM_SemaphoreUncontended)->UseManualTime()->Unit(benchmark::kMillisecond);

goro::Task<void> acquire_loop(goro::Semaphore& sem, long ops) {
  for (long i = 0; i < ops; ++i) {
    co_await sem.acquire(1);
    sem.release(1);
  }
}

goro::Task<double> semaphore_contended(int goroutines, long ops) {
  goro::Semaphore sem(2);
  co_return co_await time_workers(
      goroutines, [&]() GORO_CORO_WRAPPER { return acquire_loop(sem, ops / goroutines); });
}

void BM_SemaphoreContended(benchmark::State& state) {
  constexpr long kOps = 2'000'000;
  const int goroutines = static_cast<int>(state.range(0));
  measure(state, 2, kOps, kOps / goroutines * goroutines, semaphore_contended, goroutines);
}
BENCHMARK(BM_SemaphoreContended)->Arg(8)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
