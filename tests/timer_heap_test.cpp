// Tests of the per-P timer heap (lib/timer_heap.hpp): ordering, removal of
// arbitrary timers, deadline updates, against a reference multiset.
#include "timer_heap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace goro::detail {
namespace {

TEST(TimerHeap, PopsInDeadlineOrder) {
  std::vector<TimerNode> nodes(1000);
  std::mt19937 rng(7);
  TimerHeap heap;
  for (auto& n : nodes) {
    n.when = static_cast<std::int64_t>(rng() % 500);  // many equal deadlines
    heap.push(&n);
  }
  std::int64_t last = -1;
  while (!heap.empty()) {
    TimerNode* n = heap.pop();
    EXPECT_GE(n->when, last);
    EXPECT_FALSE(n->in_heap());
    last = n->when;
  }
  EXPECT_EQ(heap.earliest(), TimerHeap::kNever);
}

TEST(TimerHeap, RemovesAndUpdatesArbitraryTimers) {
  std::vector<TimerNode> nodes(2000);
  std::mt19937 rng(11);
  TimerHeap heap;
  std::multiset<std::int64_t> reference;
  for (auto& n : nodes) {
    n.when = static_cast<std::int64_t>(rng() % 100000);
    heap.push(&n);
    reference.insert(n.when);
  }
  for (int round = 0; round < 20000; ++round) {
    TimerNode& n = nodes[rng() % nodes.size()];
    switch (rng() % 3) {
      case 0:  // remove (a stop, or an operation that beat its deadline)
        if (n.in_heap()) {
          reference.erase(reference.find(n.when));
          heap.remove(&n);
        }
        break;
      case 1:  // move the deadline (a reset)
        if (n.in_heap()) {
          reference.erase(reference.find(n.when));
          heap.update(&n, static_cast<std::int64_t>(rng() % 100000));
          reference.insert(n.when);
        }
        break;
      default:  // (re)insert
        if (!n.in_heap()) {
          n.when = static_cast<std::int64_t>(rng() % 100000);
          heap.push(&n);
          reference.insert(n.when);
        }
    }
    ASSERT_EQ(heap.size(), reference.size());
    ASSERT_EQ(heap.earliest(), reference.empty() ? TimerHeap::kNever : *reference.begin());
  }
  while (!heap.empty()) {
    ASSERT_EQ(heap.pop()->when, *reference.begin());
    reference.erase(reference.begin());
  }
}

}  // namespace
}  // namespace goro::detail
