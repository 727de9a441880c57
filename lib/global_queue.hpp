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
// Bounded work keeps the ring bounded. An entry can go stale while it waits
// here (its goroutine's joiner ran it inline), and a P whose goroutines
// never return to the scheduler (a tree of inline joins on one P) never
// pops the queue, while its overflows keep pushing. So:
//   1. Tombstones (0) are never stored.
//   2. A push that finds the ring full compacts it first, if the scheduler
//      noted (note_stale) at least a quarter of a ring's worth of entries
//      gone stale since the last compaction: the entries the
//      scheduler's stale test rejects (a claim entry whose goroutine was
//      claimed) are dropped, and so is every repeat of an entry already
//      kept, in place, keeping the order of the rest. Repeats are stale
//      copies: a goroutine is queued once (scheduler.hpp, invariant 1),
//      but G records are recycled, so the stale claim entry of a goroutine
//      that finished can carry the same bits as the one entry of a new
//      goroutine in the same record, whose claim word then passes the
//      stale test; of equal entries at most one can ever win the claim,
//      and any of them may. So the ring holds at most one entry per live
//      goroutine after a compaction. The ring doubles only when the
//      entries kept still fill more than half of it, so a compaction scans
//      a ring at most once per half ring of pushes.
//   3. A pop, and a compaction, that leave the ring at most a quarter full
//      halve it (down to kInitialSize), so that the memory of a burst goes
//      back once the burst has drained, while a ring that hovers around
//      half full is not resized back and forth.
// Dropping a stale entry loses nothing: it could only have lost its claim
// compare-exchange, or won that of a recycled record whose own entry is
// queued elsewhere (scheduler.hpp, "Run queue entries").
//
// The size is mirrored in an atomic so that Ps can check for work without
// taking the lock (a hint: the authoritative check happens under the lock);
// the capacity likewise, for the statistics.
#ifndef GORO_LIB_GLOBAL_QUEUE_HPP_
#define GORO_LIB_GLOBAL_QUEUE_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "mutex.hpp"

namespace goro::detail {

class GlobalQueue {
 public:
  using Entry = std::uintptr_t;
  // Whether an entry can no longer run anything. Called under the queue's
  // lock, so it must not take locks that are held around a push.
  using StaleTest = bool (*)(Entry) noexcept;

  // `is_stale` may be null: then only tombstones are dropped.
  explicit GlobalQueue(StaleTest is_stale = nullptr) : is_stale_(is_stale), ring_(kInitialSize) {}

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
    shrink_locked();
    // Relaxed: a hint for lock-free emptiness checks; the wakeup protocol
    // adds its own fences around it.
    size_hint_.store(count_, std::memory_order_relaxed);
    return n;
  }

  // An entry that may wait in this queue went stale (its goroutine was
  // joined inline, and its entry had left the joiner's local queue). A
  // full ring compacts only once such notes add up to a quarter of it, so
  // that a ring full of live entries (a burst of spawns) just doubles.
  void note_stale() noexcept {
    // Relaxed: a hint; a compaction reads it under the lock.
    stale_hint_.fetch_add(1, std::memory_order_relaxed);
  }

  // Racy estimate of the number of entries; 0 is reliable only when paired
  // with the scheduler's fences (see the spin/park protocol).
  [[nodiscard]] std::size_t size_hint() const noexcept {
    return size_hint_.load(std::memory_order_relaxed);
  }

  // The ring's slots now (a snapshot, for the statistics).
  [[nodiscard]] std::size_t capacity() const noexcept {
    // Relaxed: a statistic; written under the lock at each resize.
    return capacity_.load(std::memory_order_relaxed);
  }

  // Forgets every entry (runtime stopped) and gives the ring's memory back.
  void clear() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(mu_);
    count_ = 0;
    resize_locked(kInitialSize);
    size_hint_.store(0, std::memory_order_relaxed);
  }

  static constexpr std::size_t kInitialSize = 64;

 private:
  void push_locked(Entry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (count_ == ring_.size()) {
      // Relaxed: a hint (note_stale).
      if (4 * stale_hint_.load(std::memory_order_relaxed) >= count_) {
        stale_hint_.store(0, std::memory_order_relaxed);
        compact_locked();
      }
      if (2 * count_ > ring_.size()) {
        resize_locked(2 * ring_.size());
      } else {
        shrink_locked();
      }
    }
    ring_[(head_ + count_) & (ring_.size() - 1)] = entry;
    ++count_;
    size_hint_.store(count_, std::memory_order_relaxed);
  }

  // Step 2 of the top: drops the stale entries and the repeats, keeping
  // the first of each entry and the order of what is kept.
  void compact_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (is_stale_ == nullptr) return;
    const std::size_t mask = ring_.size() - 1;
    absl::flat_hash_set<Entry> seen;
    seen.reserve(count_);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      const Entry entry = ring_[(head_ + i) & mask];
      if (!is_stale_(entry) && seen.insert(entry).second) ring_[(head_ + kept++) & mask] = entry;
    }
    count_ = kept;
  }

  // Step 3 of the top.
  void shrink_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::size_t size = ring_.size();
    while (size > kInitialSize && 4 * count_ <= size) size /= 2;
    if (size != ring_.size()) resize_locked(size);
  }

  // Moves the entries to a ring of `size` slots (a power of two >= count_).
  void resize_locked(std::size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Entry> resized(size);
    for (std::size_t i = 0; i < count_; ++i) resized[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(resized);
    head_ = 0;
    // Relaxed: read only as a statistic (SchedulerStats).
    capacity_.store(size, std::memory_order_relaxed);
  }

  const StaleTest is_stale_;
  Mutex mu_;
  std::vector<Entry> ring_ ABSL_GUARDED_BY(mu_);  // size is a power of two
  std::size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<std::size_t> size_hint_{0};
  std::atomic<std::size_t> capacity_{kInitialSize};
  std::atomic<std::size_t> stale_hint_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_GLOBAL_QUEUE_HPP_
