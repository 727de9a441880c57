// lib/global_queue.hpp
//
// Defines: goro::detail::GlobalQueue, the run queue shared by all Ps.
//
// Go's sched.runq: an unbounded FIFO under a lock that receives what does
// not fit in a P's local queue (half of it at a time), the goroutines that
// threads outside the runtime start, and that every P polls (every 61st
// schedule for fairness, and whenever its local queue is empty).
//
// Unlike Go's, the queue is not intrusive: it is a growable ring of entries.
// An entry may be a stale copy of a first-run claim (see scheduler.hpp), so
// a goroutine's link field cannot double as the queue's link.
//
// The size is mirrored in an atomic so that Ps can check for work without
// taking the lock (a hint: the authoritative check happens under the lock).
#ifndef GORO_LIB_GLOBAL_QUEUE_HPP_
#define GORO_LIB_GLOBAL_QUEUE_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "mutex.hpp"

namespace goro::detail {

class GlobalQueue {
 public:
  using Entry = std::uintptr_t;

  GlobalQueue() : ring_(kInitialSize) {}

  // Appends entries[0..count) in order. Tombstones (0) are skipped.
  void push_batch(const Entry* entries, std::size_t count) ABSL_LOCKS_EXCLUDED(mu_) {
    std::size_t live = 0;
    for (std::size_t i = 0; i < count; ++i) live += entries[i] != 0 ? 1 : 0;
    if (live == 0) return;  // all tombstones: no need for the lock
    MutexLock lock(mu_);
    for (std::size_t i = 0; i < count; ++i) {
      if (entries[i] != 0) push_locked(entries[i]);
    }
  }

  void push(Entry entry) ABSL_LOCKS_EXCLUDED(mu_) { push_batch(&entry, 1); }

  // Removes up to `max` entries from the front into `out`; returns how many.
  std::size_t pop_batch(Entry* out, std::size_t max) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(mu_);
    std::size_t n = count_ < max ? count_ : max;
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    }
    head_ = (head_ + n) & (ring_.size() - 1);
    count_ -= n;
    if (count_ == 0 && ring_.size() > kShrinkAbove) {
      // A burst (say a million spawns overflowing local queues) grew the
      // ring; give the memory back once it has drained.
      std::vector<Entry>(kInitialSize).swap(ring_);
      head_ = 0;
    }
    // Relaxed: a hint for lock-free emptiness checks; the wakeup protocol
    // adds its own fences around it.
    size_hint_.store(count_, std::memory_order_relaxed);
    return n;
  }

  // Racy estimate of the number of entries; 0 is reliable only when paired
  // with the scheduler's fences (see the spin/park protocol).
  [[nodiscard]] std::size_t size_hint() const noexcept {
    return size_hint_.load(std::memory_order_relaxed);
  }

  // Forgets every entry (runtime stopped).
  void clear() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(mu_);
    head_ = 0;
    count_ = 0;
    size_hint_.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kInitialSize = 64;
  static constexpr std::size_t kShrinkAbove = 4096;

  void push_locked(Entry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (count_ == ring_.size()) grow_locked();
    ring_[(head_ + count_) & (ring_.size() - 1)] = entry;
    ++count_;
    size_hint_.store(count_, std::memory_order_relaxed);
  }

  void grow_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Entry> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(bigger);
    head_ = 0;
  }

  Mutex mu_;
  std::vector<Entry> ring_ ABSL_GUARDED_BY(mu_);  // size is a power of two
  std::size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<std::size_t> size_hint_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_GLOBAL_QUEUE_HPP_
