// benchmarks/bench_util.hpp
//
// Defines: the helpers goro's benchmarks share. goro::bench::set_per_item
// (the "ns per item" counter every benchmark reports next to Google
// Benchmark's own time), seconds_since, procs_config and run_batches (one
// goro::run per iteration whose main goroutine times its own batch: start-up
// and shutdown are not counted, and the benchmark uses that manual time).
#ifndef GORO_BENCHMARKS_BENCH_UTIL_HPP_
#define GORO_BENCHMARKS_BENCH_UTIL_HPP_

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <goro/goro.hpp>

namespace goro::bench {

// Sets items processed and the counter `name` to the cost of one item,
// computed from the (manual) iteration time: seconds / items, printed with
// an SI prefix (e.g. "25.1n" = 25.1 ns; "2.4u" = 2.4 us).
inline void set_per_item(benchmark::State& state, const char* name, double items_per_iteration) {
  const double items = static_cast<double>(state.iterations()) * items_per_iteration;
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
  state.counters[name] =
      benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert,
                         benchmark::Counter::kIs1000);
}

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Aborts, naming `what`, when a batch computed `result` instead of
// `expected`: a timing of work that went wrong measures nothing.
inline void check_result(const char* what, long result, long expected) {
  if (result == expected) return;
  std::fprintf(stderr, "%s: computed %ld, expected %ld\n", what, result, expected);
  std::abort();
}

// A Config with `procs` Ps (0: the default).
inline goro::Config procs_config(unsigned procs) {
  goro::Config config;
  config.procs = procs;
  return config;
}

// Runs `make_batch(args...)` as the main goroutine once per iteration, on
// `procs` Ps; the batch returns the seconds its work took.
template <class MakeBatch, class... Args>
void run_batches(benchmark::State& state, unsigned procs, MakeBatch make_batch, Args... args) {
  for (auto _ : state) {
    state.SetIterationTime(goro::run(make_batch(args...), procs_config(procs)));
  }
}

}  // namespace goro::bench

#endif  // GORO_BENCHMARKS_BENCH_UTIL_HPP_
