// examples/skynet.hpp
//
// Defines: the skynet tree, in the namespace `skynet`: every node of a
// `div`-ary tree of `size` leaves is a goroutine; each leaf returns its
// number and each parent sums its children. Three versions:
//   - spawn_join_tree: the parent spawns its children (goro::spawn) and
//     joins them in order (JoinHandle);
//   - spawn_join_array_tree: the same, 10 children per parent, their
//     handles in a fixed array (no allocation but the goroutines' own): the
//     shape the C++ task runtimes' skynet has
//     (benchmarks/forkjoin_bench.cpp);
//   - channel_tree: Go's skynet line for line: each parent makes one
//     unbuffered channel, starts its children with goro::go, and receives
//     their sums from it (`c <- sum` in Go), so it is the counterpart of the
//     Go program it is compared with.
//
// Why a header: the example (examples/skynet.cpp), the benchmark
// (benchmarks/sched_bench.cpp, BM_Skynet1M; benchmarks/forkjoin_bench.cpp)
// and the tests
// (tests/stress_test.cpp, tests/scheduler_test.cpp) run the same tree, so a
// figure measured by one is about the code the others check. It lives in
// examples/ because the example is where a reader looks for the program;
// the benchmark and test targets add examples/ to their include path, and
// goro's installed headers do not grow.
//
// The code uses goro's public API only, as a user's program would.
#ifndef GORO_EXAMPLES_SKYNET_HPP_
#define GORO_EXAMPLES_SKYNET_HPP_

#include <array>
#include <cstddef>
#include <vector>

#include <goro/goro.hpp>

namespace skynet {

// The sum a tree of `leaves` leaves returns: 0 + 1 + ... + (leaves - 1).
constexpr long leaf_sum(long leaves) noexcept { return leaves * (leaves - 1) / 2; }

// The subtree of `size` leaves numbered from `num`, `div` children per
// node: spawned and joined. `size` is a power of `div`.
inline goro::Task<long> spawn_join_tree(long num, long size, long div) {
  if (size == 1) co_return num;
  std::vector<goro::JoinHandle<long>> children;
  children.reserve(static_cast<std::size_t>(div));
  for (long i = 0; i < div; ++i) {
    children.push_back(goro::spawn(spawn_join_tree(num + i * (size / div), size / div, div)));
  }
  long sum = 0;
  for (auto& child : children) sum += co_await child;
  co_return sum;
}

// The subtree of `size` leaves numbered from `num`, 10 children per node,
// their handles in a fixed array. `size` is a power of 10.
inline goro::Task<long> spawn_join_array_tree(long num, long size) {
  if (size == 1) co_return num;
  constexpr std::size_t kChildren = 10;
  const long child_size = size / static_cast<long>(kChildren);
  std::array<goro::JoinHandle<long>, kChildren> children;
  for (std::size_t i = 0; i < kChildren; ++i) {
    children[i] =
        goro::spawn(spawn_join_array_tree(num + static_cast<long>(i) * child_size, child_size));
  }
  long sum = 0;
  for (auto& child : children) sum += co_await child;
  co_return sum;
}

// The same subtree, Go's way: sends its sum on `parent`.
inline goro::Task<void> channel_tree(goro::SendChan<long> parent, long num, long size, long div) {
  if (size == 1) {
    co_await parent.send(num);
    co_return;
  }
  goro::Chan<long> children = goro::make_chan<long>();
  for (long i = 0; i < div; ++i) {
    goro::go(channel_tree(children, num + i * (size / div), size / div, div));
  }
  long sum = 0;
  for (long i = 0; i < div; ++i) sum += *co_await children.recv();
  co_await parent.send(sum);
}

// The whole channel tree: starts its root and receives the root's sum.
inline goro::Task<long> channel_tree_sum(long size, long div) {
  goro::Chan<long> root = goro::make_chan<long>();
  goro::go(channel_tree(root, 0, size, div));
  co_return *co_await root.recv();
}

}  // namespace skynet

#endif  // GORO_EXAMPLES_SKYNET_HPP_
