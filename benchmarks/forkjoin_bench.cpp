// forkjoin_bench: goro on the fork-join shapes that the C++ task runtimes
// are compared on (skynet, fib, nqueens), written the way a goro user
// writes them: every child a goroutine (goro::spawn), joined through its
// JoinHandle, the handles of one parent in a fixed-size array.
//
// Why these shapes: they cost almost nothing but the spawn and the join,
// so the time per task is the runtime's own cost per task (the G record,
// the frame, the queue entry, the join), which is what docs/PERFORMANCE.md
// compares with TooManyCooks and libfork on the same shapes
// (scripts/bench-forkjoin.sh builds theirs and runs all three,
// alternating). fib forks one leg and runs the other in place, as both of
// them do (TooManyCooks spawns fib(n-1) and awaits fib(n-2); libfork forks
// one and calls the other).
//
// Benchmarks (each iteration is one goro::run; the main goroutine times
// its tree, so start-up and shutdown are not counted):
//   BM_ForkJoinSkynet/depth:<d>  a 10-ary tree of 10^d leaves (depth 6:
//                                1,111,111 goroutines; depth 8: 111 M);
//                                each leaf returns its number, each parent
//                                the sum of its children
//                                (examples/skynet.hpp, spawn_join_array_tree)
//   BM_ForkJoinFib/n:<n>         fib(n): each call with n >= 2 spawns
//                                fib(n-1) as a goroutine, awaits fib(n-2)
//                                as a plain Task, then joins the goroutine
//   BM_ForkJoinNQueens/n:<n>     counts the placements of n queens: each
//                                safe square of the next row is a child
//                                goroutine with its own copy of the board
// Counters: ns_per_task (time over the tasks one tree runs: every node of
// skynet and nqueens is a goroutine; fib's calls are half goroutines, half
// plain Tasks, as in the peers' fib) and
// max_rss_mib, the process's peak resident set so far (run one benchmark
// per process for a figure of that benchmark alone).
//
// Run: build/release/benchmarks/forkjoin_bench [--benchmark_filter=...]
//   GORO_MAXPROCS=N sets the number of Ps (default: one per core).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <array>
#include <cstddef>

#include <goro/goro.hpp>

#include "bench_util.hpp"
#include "skynet.hpp"

namespace {

using goro::bench::check_result;
using goro::bench::Clock;
using goro::bench::run_batches;
using goro::bench::seconds_since;
using goro::bench::set_per_item;

void set_max_rss(benchmark::State& state) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["max_rss_mib"] = static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

// --- skynet ------------------------------------------------------------------

constexpr long power_of_ten(int exponent) {
  long result = 1;
  for (int i = 0; i < exponent; ++i) result *= 10;
  return result;
}

goro::Task<double> skynet_tree(int depth) {
  const long leaves = power_of_ten(depth);
  const auto start = Clock::now();
  const long sum = co_await skynet::spawn_join_array_tree(0, leaves);
  const double took = seconds_since(start);
  check_result("skynet", sum, skynet::leaf_sum(leaves));
  co_return took;
}

void BM_ForkJoinSkynet(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  run_batches(state, 0, skynet_tree, depth);
  long nodes = 0;
  for (int d = 0; d <= depth; ++d) nodes += power_of_ten(d);
  set_per_item(state, "ns_per_task", static_cast<double>(nodes));
  set_max_rss(state);
}
BENCHMARK(BM_ForkJoinSkynet)
    ->ArgName("depth")
    ->Arg(6)
    ->Arg(8)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- fib ---------------------------------------------------------------------

goro::Task<long> fib(int n) {
  if (n < 2) co_return n;
  goro::JoinHandle<long> larger = goro::spawn(fib(n - 1));
  const long smaller = co_await fib(n - 2);
  const long joined = co_await larger;
  co_return joined + smaller;
}

// fib(n) by iteration, to check the tree's result; and the number of calls
// the tree makes: calls(n) = 2 fib(n+1) - 1.
constexpr long fib_value(int n) {
  long a = 0, b = 1;
  for (int i = 0; i < n; ++i) {
    const long next = a + b;
    a = b;
    b = next;
  }
  return a;
}

goro::Task<double> fib_tree(int n) {
  const auto start = Clock::now();
  const long value = co_await fib(n);
  const double took = seconds_since(start);
  check_result("fib", value, fib_value(n));
  co_return took;
}

void BM_ForkJoinFib(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  run_batches(state, 0, fib_tree, n);
  set_per_item(state, "ns_per_task", static_cast<double>(2 * fib_value(n + 1) - 1));
  set_max_rss(state);
}
BENCHMARK(BM_ForkJoinFib)
    ->ArgName("n")
    ->DenseRange(35, 39)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- nqueens -----------------------------------------------------------------

constexpr std::size_t kQueens = 14;
using Board = std::array<char, kQueens>;  // board[row] = the column of row's queen

// Whether a queen in `row`, `column` is attacked by the queens of rows
// 0..row-1.
bool safe(const Board& board, int row, int column) {
  for (int r = 0; r < row; ++r) {
    const int placed = board[static_cast<std::size_t>(r)];
    const int distance = row - r;
    if (placed == column || placed == column - distance || placed == column + distance) {
      return false;
    }
  }
  return true;
}

// The placements that complete `board`, whose rows 0..row-1 hold queens.
// The board is taken by value: each child gets its own copy.
goro::Task<long> nqueens(int row, Board board) {
  if (row == static_cast<int>(kQueens)) co_return 1;
  std::array<goro::JoinHandle<long>, kQueens> children;
  std::size_t spawned = 0;
  for (int column = 0; column < static_cast<int>(kQueens); ++column) {
    if (!safe(board, row, column)) continue;
    board[static_cast<std::size_t>(row)] = static_cast<char>(column);
    children[spawned++] = goro::spawn(nqueens(row + 1, board));
  }
  long placements = 0;
  for (std::size_t i = 0; i < spawned; ++i) placements += co_await children[i];
  co_return placements;
}

// The goroutines the nqueens tree runs: one per partial placement with
// no attacked queen, the empty board included (computed once, outside the
// timing, by the same test).
long nqueens_nodes(int row, Board& board) {
  if (row == static_cast<int>(kQueens)) return 1;
  long nodes = 1;
  for (int column = 0; column < static_cast<int>(kQueens); ++column) {
    if (!safe(board, row, column)) continue;
    board[static_cast<std::size_t>(row)] = static_cast<char>(column);
    nodes += nqueens_nodes(row + 1, board);
  }
  return nodes;
}

constexpr long kQueensPlacements = 365'596;  // for 14 queens (OEIS A000170)

goro::Task<double> nqueens_tree() {
  const auto start = Clock::now();
  const long placements = co_await nqueens(0, Board{});
  const double took = seconds_since(start);
  check_result("nqueens", placements, kQueensPlacements);
  co_return took;
}

void BM_ForkJoinNQueens(benchmark::State& state) {
  run_batches(state, 0, nqueens_tree);
  Board board{};
  set_per_item(state, "ns_per_task", static_cast<double>(nqueens_nodes(0, board)));
  set_max_rss(state);
}
BENCHMARK(BM_ForkJoinNQueens)
    ->ArgName("n")
    ->Arg(static_cast<long>(kQueens))
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
