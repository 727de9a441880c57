// chan_bench: channel and select micro-benchmarks (Google Benchmark).
//
// Timing works as in sched_bench.cpp: each iteration is one goro::run
// doing a fixed batch; the main goroutine times the batch itself with
// steady_clock (runtime start-up and shutdown are not counted) and the
// benchmark uses that manual time. The `ns_per_<item>` counter is the cost
// of one item (a round trip, a value, a select, a channel).
//
// Benchmarks, and their Go counterparts (../shared/anchors/go/pingpong,
// go test runtime -bench 'Chan|Select'):
//   BM_ChanPingPong/<procs>        two goroutines bounce an int over two
//                                  unbuffered channels: ns per round trip
//   BM_ChanSync                    Go's BenchmarkChanSync transcribed: two
//                                  goroutines, one unbuffered channel, each
//                                  iteration a send and a receive: ns per op
//   BM_ChanProdCons/<capacity>     4 producers, 1 consumer: ns per item
//   BM_Select/<channels>/<contended>  a consumer selects over 2 or 4
//                                  channels. Uncontended: it fills them itself
//                                  (try_send) and selects, one goroutine.
//                                  Contended: one producer goroutine per
//                                  channel. ns per select.
//   BM_SelectHandlers/<channels>/<contended>  BM_Select with a handler per
//                                  case (on(recv_from(c), handler)); the
//                                  handlers, like BM_Select, drop the value
//   BM_SelectRecvSpan/<channels>/<contended>  BM_Select as select_recv over
//                                  a std::vector of the channels
//   BM_SelectNonBlockingEmpty      select(recv_from(empty), default): ns
//   BM_SelectNonBlockingEmptyHandlers  the same with on(...) and otherwise
//   BM_SelectNonBlockingEmptyParallel/<goroutines>  the same select in that
//                                  many goroutines at once on 2 Ps (Go's
//                                  BenchmarkChanNonblocking, RunParallel):
//                                  wall ns per select over all of them
//   BM_ChanCreate/<capacity>       make_chan + drop: ns per channel
//   BM_ChanComputePipeline/<us>    4 stages joined by unbuffered channels,
//                                  each computing <us> microseconds per
//                                  item (a clock-bound spin), 2000 items:
//                                  ns per item. Two Ps can run two stages
//                                  at once: half the serial 4 x <us> per
//                                  item is the ideal
//
// Run: build/release/benchmarks/chan_bench
//        [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include <goro/goro.hpp>

#include "bench_util.hpp"

namespace {

using goro::bench::Clock;
using goro::bench::procs_config;
using goro::bench::run_batches;
using goro::bench::seconds_since;
using goro::bench::set_per_item;

// --- Ping-pong -------------------------------------------------------------

goro::Task<void> echo(goro::RecvChan<int> in, goro::SendChan<int> out) {
  while (auto v = co_await in.recv()) co_await out.send(*v);
  out.close();
}

goro::Task<double> ping_pong(long rounds) {
  goro::Chan<int> a = goro::make_chan<int>();
  goro::Chan<int> b = goro::make_chan<int>();
  goro::go(echo(a, b));
  const auto start = Clock::now();
  for (long i = 0; i < rounds; ++i) {
    co_await a.send(static_cast<int>(i));
    (void)co_await b.recv();
  }
  const double took = seconds_since(start);
  a.close();
  co_return took;
}

void BM_ChanPingPong(benchmark::State& state) {
  constexpr long kRounds = 200'000;
  run_batches(state, static_cast<unsigned>(state.range(0)), ping_pong, kRounds);
  set_per_item(state, "ns_per_roundtrip", kRounds);
}
BENCHMARK(BM_ChanPingPong)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- Go's BenchmarkChanSync --------------------------------------------------

// Go's runtime benchmark, transcribed: two goroutines share one unbuffered
// channel; in each iteration one receives then sends, the other sends then
// receives. One op is one iteration of one goroutine.
goro::Task<void> chan_sync_side(goro::Chan<int> ch, long iterations, bool receive_first,
                                goro::SendChan<int> done) {
  for (long i = 0; i < iterations; ++i) {
    if (receive_first) {
      (void)co_await ch.recv();
      co_await ch.send(0);
    } else {
      co_await ch.send(0);
      (void)co_await ch.recv();
    }
  }
  co_await done.send(1);
}

goro::Task<double> chan_sync(long iterations) {
  goro::Chan<int> ch = goro::make_chan<int>();
  goro::Chan<int> done = goro::make_chan<int>(2);
  const auto start = Clock::now();
  goro::go(chan_sync_side(ch, iterations, true, done));
  goro::go(chan_sync_side(ch, iterations, false, done));
  (void)co_await done.recv();
  (void)co_await done.recv();
  co_return seconds_since(start);
}

void BM_ChanSync(benchmark::State& state) {
  constexpr long kIterations = 100'000;
  run_batches(state, 0, chan_sync, kIterations);
  set_per_item(state, "ns_per_op", 2 * kIterations);
}
BENCHMARK(BM_ChanSync)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- Producers / consumer --------------------------------------------------

goro::Task<void> producer(goro::SendChan<long> out, long n, goro::SendChan<bool> done) {
  for (long i = 0; i < n; ++i) co_await out.send(i);
  co_await done.send(true);
}

goro::Task<void> closer(goro::RecvChan<bool> done, int producers, goro::SendChan<long> out) {
  for (int i = 0; i < producers; ++i) (void)co_await done.recv();
  out.close();
}

// The shape of go-pingpong's prodcons: 4 producers, a closer, 1 consumer.
goro::Task<double> prod_cons(std::size_t capacity, long items) {
  constexpr int kProducers = 4;
  goro::Chan<long> c = goro::make_chan<long>(capacity);
  goro::Chan<bool> done = goro::make_chan<bool>();
  const auto start = Clock::now();
  for (int p = 0; p < kProducers; ++p) goro::go(producer(c, items / kProducers, done));
  goro::go(closer(done, kProducers, c));
  long count = 0;
  while (co_await c.recv()) ++count;
  const double took = seconds_since(start);
  if (count != items) std::abort();
  co_return took;
}

void BM_ChanProdCons(benchmark::State& state) {
  constexpr long kItems = 1'000'000;
  run_batches(state, 0, prod_cons, static_cast<std::size_t>(state.range(0)), kItems);
  set_per_item(state, "ns_per_item", kItems);
}
BENCHMARK(BM_ChanProdCons)
    ->Arg(0)
    ->Arg(10)
    ->Arg(100)
    ->Arg(128)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- Select ----------------------------------------------------------------

goro::Task<void> feed(goro::SendChan<int> out, long n) {
  for (long i = 0; i < n; ++i) co_await out.send(1);
}

// The three ways to write the select of select_batch.
enum class SelectForm { kIndexed, kHandlers, kRecvSpan };

// The fixed select over channels cs[I]..., indexed or with a handler per
// case; awaited in the expression that calls this, as a select must be.
template <SelectForm kForm, std::size_t... I>
auto fixed_select(std::vector<goro::Chan<int>>& cs, std::index_sequence<I...>) {
  if constexpr (kForm == SelectForm::kIndexed) {
    return goro::select(goro::recv_from(cs[I])...);
  } else {
    return goro::select(goro::on(goro::recv_from(cs[I]), [](std::optional<int>) {})...);
  }
}

template <SelectForm kForm>
goro::Task<double> select_batch(int channels, bool contended, long selects) {
  std::vector<goro::Chan<int>> cs;
  for (int i = 0; i < channels; ++i) cs.push_back(goro::make_chan<int>(contended ? 128 : 1));
  const auto start = Clock::now();
  if (contended) {
    for (int i = 0; i < channels; ++i)
      goro::go(feed(cs[static_cast<std::size_t>(i)], selects / channels));
  }
  const long total = contended ? selects / channels * channels : selects;
  for (long i = 0; i < total; ++i) {
    if (!contended) (void)cs[static_cast<std::size_t>(i % channels)].try_send(1);
    if constexpr (kForm == SelectForm::kRecvSpan) {
      (void)co_await goro::select_recv(cs);
    } else if (channels == 2) {
      (void)co_await fixed_select<kForm>(cs, std::make_index_sequence<2>());
    } else {
      (void)co_await fixed_select<kForm>(cs, std::make_index_sequence<4>());
    }
  }
  co_return seconds_since(start);
}

template <SelectForm kForm>
void select_benchmark(benchmark::State& state) {
  constexpr long kSelects = 400'000;
  const int channels = static_cast<int>(state.range(0));
  const bool contended = state.range(1) != 0;
  run_batches(state, 0, select_batch<kForm>, channels, contended, kSelects);
  set_per_item(state, "ns_per_select", kSelects / channels * channels);
}

// The rows of each form: 2 or 4 channels, each uncontended or contended.
void select_rows(benchmark::internal::Benchmark* b) {
  b->ArgNames({"channels", "contended"});
  for (const int contended : {0, 1}) {
    for (const int channels : {2, 4}) b->Args({channels, contended});
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

void BM_Select(benchmark::State& state) { select_benchmark<SelectForm::kIndexed>(state); }
void BM_SelectHandlers(benchmark::State& state) { select_benchmark<SelectForm::kHandlers>(state); }
void BM_SelectRecvSpan(benchmark::State& state) { select_benchmark<SelectForm::kRecvSpan>(state); }
BENCHMARK(BM_Select)->Apply(select_rows);
BENCHMARK(BM_SelectHandlers)->Apply(select_rows);
BENCHMARK(BM_SelectRecvSpan)->Apply(select_rows);

// A select over one empty channel with a default, in the indexed form or
// the handler form; each gives 1 when the default ran.
template <SelectForm kForm>
goro::Task<double> nonblocking_select(long selects) {
  goro::Chan<int> empty = goro::make_chan<int>(1);
  long defaults = 0;
  const auto start = Clock::now();
  for (long i = 0; i < selects; ++i) {
    if constexpr (kForm == SelectForm::kIndexed) {
      auto r = co_await goro::select(goro::recv_from(empty), goro::default_case());
      defaults += static_cast<long>(r.index());
    } else {
      defaults += co_await goro::select(goro::on(goro::recv_from(empty), [] { return 0L; }),
                                        goro::otherwise([] { return 1L; }));
    }
  }
  const double took = seconds_since(start);
  if (defaults != selects) std::abort();
  co_return took;
}

template <SelectForm kForm>
void nonblocking_select_benchmark(benchmark::State& state) {
  constexpr long kSelects = 2'000'000;
  run_batches(state, 0, nonblocking_select<kForm>, kSelects);
  set_per_item(state, "ns_per_select", kSelects);
}

// Go's BenchmarkChanNonblocking shape (b.RunParallel): one goroutine per P,
// each running its share of the selects on one shared empty channel; the
// time is the wall time until the last one is done.
goro::Task<long> nonblocking_select_share(goro::Chan<int> empty, long selects) {
  long defaults = 0;
  for (long i = 0; i < selects; ++i) {
    auto r = co_await goro::select(goro::recv_from(empty), goro::default_case());
    defaults += static_cast<long>(r.index());
  }
  co_return defaults;
}

goro::Task<double> nonblocking_select_parallel(long selects, long shares) {
  goro::Chan<int> empty = goro::make_chan<int>(0);
  std::vector<goro::JoinHandle<long>> handles;
  handles.reserve(static_cast<std::size_t>(shares));
  const auto start = Clock::now();
  for (long i = 0; i < shares; ++i) {
    handles.push_back(goro::spawn(nonblocking_select_share(empty, selects / shares)));
  }
  long defaults = 0;
  for (auto& handle : handles) defaults += co_await std::move(handle);
  const double took = seconds_since(start);
  goro::bench::check_result("nonblocking_select_parallel", defaults, selects / shares * shares);
  co_return took;
}

void BM_SelectNonBlockingEmptyParallel(benchmark::State& state) {
  // Enough selects that the second P's wakeup and first steal, tens of
  // microseconds, are lost in the batch (Go's benchmark runs for a second).
  constexpr long kSelects = 40'000'000;
  const long shares = state.range(0);
  run_batches(state, 0, nonblocking_select_parallel, kSelects, shares);
  set_per_item(state, "ns_per_select", static_cast<double>(kSelects / shares * shares));
}
BENCHMARK(BM_SelectNonBlockingEmptyParallel)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_SelectNonBlockingEmpty(benchmark::State& state) {
  nonblocking_select_benchmark<SelectForm::kIndexed>(state);
}
BENCHMARK(BM_SelectNonBlockingEmpty)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_SelectNonBlockingEmptyHandlers(benchmark::State& state) {
  nonblocking_select_benchmark<SelectForm::kHandlers>(state);
}
BENCHMARK(BM_SelectNonBlockingEmptyHandlers)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- Creation --------------------------------------------------------------

goro::Task<double> create_channels(std::size_t capacity, long n) {
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) {
    goro::Chan<int> c = goro::make_chan<int>(capacity);
    benchmark::DoNotOptimize(c);
  }
  co_return seconds_since(start);
}

void BM_ChanCreate(benchmark::State& state) {
  constexpr long kChannels = 1'000'000;
  run_batches(state, 0, create_channels, static_cast<std::size_t>(state.range(0)), kChannels);
  set_per_item(state, "ns_per_chan", kChannels);
}
BENCHMARK(BM_ChanCreate)->Arg(0)->Arg(128)->UseManualTime()->Unit(benchmark::kMillisecond);

// --- A pipeline whose stages compute ------------------------------------------

void compute_for(std::chrono::microseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

goro::Task<void> computing_stage(goro::RecvChan<long> in, goro::SendChan<long> out,
                                 std::chrono::microseconds work) {
  while (auto v = co_await in.recv()) {
    compute_for(work);
    co_await out.send(*v + 1);
  }
  out.close();
}

goro::Task<void> numbers(goro::SendChan<long> out, long n) {
  for (long i = 0; i < n; ++i) co_await out.send(i);
  out.close();
}

goro::Task<double> compute_pipeline(std::chrono::microseconds work, long items) {
  constexpr int kStages = 4;
  const auto start = Clock::now();
  goro::Chan<long> first = goro::make_chan<long>();
  goro::go(numbers(first, items));
  goro::Chan<long> previous = first;
  for (int i = 0; i < kStages; ++i) {
    goro::Chan<long> next = goro::make_chan<long>();
    goro::go(computing_stage(previous, next, work));
    previous = next;
  }
  long received = 0;
  while (co_await previous.recv()) ++received;
  if (received != items) std::abort();
  co_return seconds_since(start);
}

void BM_ChanComputePipeline(benchmark::State& state) {
  constexpr long kItems = 2000;
  run_batches(state, 0, compute_pipeline, std::chrono::microseconds(state.range(0)), kItems);
  set_per_item(state, "ns_per_item", kItems);
}
BENCHMARK(BM_ChanComputePipeline)
    ->Arg(2)
    ->Arg(8)
    ->Arg(5)
    ->Arg(20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
