// benchmarks/bench_util.hpp
//
// Defines: goro::bench::set_per_item, the "ns per item" counter every goro
// benchmark reports next to Google Benchmark's own time.
#ifndef GORO_BENCHMARKS_BENCH_UTIL_HPP_
#define GORO_BENCHMARKS_BENCH_UTIL_HPP_

#include <benchmark/benchmark.h>

#include <cstdint>

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

}  // namespace goro::bench

#endif  // GORO_BENCHMARKS_BENCH_UTIL_HPP_
