// lib/timer_heap.hpp
//
// Defines: goro::detail::TimerHeap, the 4-ary
// min-heap of timers each P keeps (Go's per-P timer heap, time.go).
//
// Why 4-ary: a timer heap is mostly "insert" and "remove the minimum", and
// under deadlines most timers are removed before they fire (a read that
// completes in time cancels its deadline). A 4-ary heap is half as deep as
// a binary one, so sift-up (insert) touches half as many levels, and the
// four children of a node share a cache line or two on sift-down. Go uses
// the same arity for the same reasons.
//
// The heap stores pointers to nodes that live elsewhere (inside the
// awaiter of a sleeping goroutine, in a goro::Timer, in an fd operation's
// deadline), and each node remembers its index, so removing an arbitrary
// timer (stop, reset, an operation that completed before its deadline) is
// O(log n) with no search.
//
// Not thread-safe by itself: the scheduler guards each P's heap with that
// P's timer lock.
#ifndef GORO_LIB_TIMER_HEAP_HPP_
#define GORO_LIB_TIMER_HEAP_HPP_

#include <cassert>
#include <cstdint>
#include <limits>
#include <vector>

#include "goro/detail/timer.hpp"

namespace goro::detail {

class TimerHeap {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }

  // The earliest deadline, or kNever when empty.
  [[nodiscard]] std::int64_t earliest() const noexcept {
    return nodes_.empty() ? kNever : nodes_.front()->when;
  }
  [[nodiscard]] TimerNode* top() const noexcept {
    return nodes_.empty() ? nullptr : nodes_.front();
  }

  void push(TimerNode* node) {
    assert(!node->in_heap());
    node->heap_index = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back(node);
    sift_up(node->heap_index);
  }

  // Removes `node`, which must be in this heap.
  void remove(TimerNode* node) noexcept {
    assert(node->in_heap() && nodes_[node->heap_index] == node);
    const std::uint32_t i = node->heap_index;
    const auto last = static_cast<std::uint32_t>(nodes_.size() - 1);
    node->heap_index = TimerNode::kNotInHeap;
    if (i != last) {
      nodes_[i] = nodes_[last];
      nodes_[i]->heap_index = i;
      nodes_.pop_back();
      // The moved node may belong above or below its new position.
      if (i > 0 && nodes_[i]->when < nodes_[parent(i)]->when) {
        sift_up(i);
      } else {
        sift_down(i);
      }
    } else {
      nodes_.pop_back();
    }
  }

  // Removes and returns the earliest node (the heap must not be empty).
  TimerNode* pop() noexcept {
    TimerNode* node = nodes_.front();
    remove(node);
    return node;
  }

  // Removes every node (runtime stopping); each is marked not in a heap.
  template <class Fn>
  void clear(Fn&& on_node) noexcept {
    for (TimerNode* node : nodes_) {
      node->heap_index = TimerNode::kNotInHeap;
      on_node(node);
    }
    nodes_.clear();
  }

  // Moves `node` (in this heap) to a new deadline.
  void update(TimerNode* node, std::int64_t when) noexcept {
    const std::int64_t old = node->when;
    node->when = when;
    if (when < old) {
      sift_up(node->heap_index);
    } else {
      sift_down(node->heap_index);
    }
  }

 private:
  static constexpr std::uint32_t kArity = 4;
  static std::uint32_t parent(std::uint32_t i) noexcept { return (i - 1) / kArity; }

  void place(std::uint32_t i, TimerNode* node) noexcept {
    nodes_[i] = node;
    node->heap_index = i;
  }

  void sift_up(std::uint32_t i) noexcept {
    TimerNode* node = nodes_[i];
    while (i > 0) {
      const std::uint32_t p = parent(i);
      if (nodes_[p]->when <= node->when) break;
      place(i, nodes_[p]);
      i = p;
    }
    place(i, node);
  }

  void sift_down(std::uint32_t i) noexcept {
    TimerNode* node = nodes_[i];
    const auto n = static_cast<std::uint32_t>(nodes_.size());
    for (;;) {
      const std::uint32_t first = i * kArity + 1;
      if (first >= n) break;
      std::uint32_t smallest = first;
      const std::uint32_t end = first + kArity < n ? first + kArity : n;
      for (std::uint32_t c = first + 1; c < end; ++c) {
        if (nodes_[c]->when < nodes_[smallest]->when) smallest = c;
      }
      if (node->when <= nodes_[smallest]->when) break;
      place(i, nodes_[smallest]);
      i = smallest;
    }
    place(i, node);
  }

  std::vector<TimerNode*> nodes_;
};

}  // namespace goro::detail

#endif  // GORO_LIB_TIMER_HEAP_HPP_
