// goro/detail/waiter_list.hpp
//
// Defines: goro::detail::WaiterList<Node> (a FIFO of waiters linked through
// the waiters themselves) and WakeList<Node> (the waiters a waker dequeued
// under a lock, woken once the lock is released). A channel's queues
// (chan_core.hpp, Node = Waiter) and every sync primitive's queue
// (sync_waiter.hpp, Node = SyncWaiter) are these two.
//
// Design
//
// Why intrusive. A waiter lives in its goroutine's coroutine frame (in the
// awaiter) for the whole wait, so linking it costs no allocation and
// unlinking it (a select withdrawing its losing cases, an awaiter torn
// down at shutdown) is O(1) from the waiter alone.
//
// What a Node provides: `prev`, `next` (the list's links), `wake_next` (the
// WakeList's link), and queued() / set_queued() (a channel's Waiter keeps a
// flag; a SyncWaiter keeps it in its one state byte, beside what a waker
// grants it). The two waiter types differ in what they carry beside (a
// channel's value slot and select arbitration; a sync primitive's grant,
// hook and weight), not in how they are queued.
//
// Invariants
//   L1. A node is in at most one WaiterList; queued() says whether, and
//       only the list sets it, with its owner's lock held. A node can
//       therefore be removed by whoever holds that lock without knowing
//       whether someone dequeued it first (remove answers false then).
//   L2. Every write of the list is made with its owner's lock held. `first_`
//       is atomic only for looks_empty(), a lock-free peek that channels'
//       non-blocking operations use (chan_core.hpp, "Lock-free fast paths");
//       it is stored with release so that such a peek that sees a node sees
//       it whole. Under the lock every load is relaxed (the lock orders).
//   L3. A node in a WakeList was dequeued by the WakeList's owner, who owns
//       it until it wakes it; wake_all() reads `wake_next` before waking a
//       node, and nothing of it after (the woken goroutine may run and free
//       its frame at once on another thread).
//
// Rejected alternatives
//   * One list class per waiter type: the same links and the same
//     unlinking written twice, and two places for an off-by-one.
//   * A base class holding the links, with the waiters deriving from it: the
//     waker would cast from the base to the waiter on every dequeue, and the
//     two waiters' construction costs (the sync one initialises only its
//     flags) would be tied to one constructor.
//   * Waking under the lock: readying a goroutine may wake a P; a WakeList
//     keeps the critical section to the unlinking.
#ifndef GORO_DETAIL_WAITER_LIST_HPP_
#define GORO_DETAIL_WAITER_LIST_HPP_

#include <atomic>

namespace goro::detail {

// A FIFO of Nodes, guarded by its owner's lock (L2).
template <class Node>
class WaiterList {
 public:
  // Lock-free: true if nobody waits. Acquire pairs with the release stores
  // of `first_` (L2).
  [[nodiscard]] bool looks_empty() const noexcept {
    return first_.load(std::memory_order_acquire) == nullptr;
  }
  // Relaxed: the caller holds the lock (L2); so for every load below.
  [[nodiscard]] bool empty() const noexcept {
    return first_.load(std::memory_order_relaxed) == nullptr;
  }
  [[nodiscard]] Node* front() const noexcept { return first_.load(std::memory_order_relaxed); }

  void push_back(Node* w) noexcept {
    w->set_queued(true);
    w->next = nullptr;
    w->prev = last_;
    if (last_ != nullptr) {
      last_->next = w;
    } else {
      first_.store(w, std::memory_order_release);  // release: L2
    }
    last_ = w;
  }
  void push_front(Node* w) noexcept {
    Node* first = first_.load(std::memory_order_relaxed);
    w->set_queued(true);
    w->prev = nullptr;
    w->next = first;
    (first != nullptr ? first->prev : last_) = w;
    first_.store(w, std::memory_order_release);  // release: L2
  }
  // Unlinks `w` if it is queued; returns whether it was (L1).
  bool remove(Node* w) noexcept {
    if (!w->queued()) return false;
    w->set_queued(false);
    if (w->prev != nullptr) {
      w->prev->next = w->next;
    } else {
      first_.store(w->next, std::memory_order_release);  // release: L2
    }
    (w->next != nullptr ? w->next->prev : last_) = w->prev;
    w->prev = w->next = nullptr;
    return true;
  }
  Node* pop_front() noexcept {
    Node* w = front();
    if (w != nullptr) remove(w);
    return w;
  }

 private:
  std::atomic<Node*> first_{nullptr};
  Node* last_ = nullptr;
};

// Nodes dequeued under a lock, to be woken in FIFO order once it is
// released (L3). Not copyable: `tail_` points into the list.
template <class Node>
class WakeList {
 public:
  WakeList() noexcept = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;

  void push(Node* w) noexcept {
    w->wake_next = nullptr;
    *tail_ = w;
    tail_ = &w->wake_next;
  }
  // Calls wake(node) for each, in order, and empties the list. `wake`
  // readies the node's goroutine; it is the last use of the node (L3).
  template <class Wake>
  void wake_all(Wake wake) noexcept {
    while (head_ != nullptr) {
      Node* w = head_;
      head_ = w->wake_next;  // read before waking (L3)
      wake(w);
    }
    tail_ = &head_;
  }

 private:
  Node* head_ = nullptr;
  Node** tail_ = &head_;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_WAITER_LIST_HPP_
