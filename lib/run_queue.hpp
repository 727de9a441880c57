// lib/run_queue.hpp
//
// Defines: goro::detail::RunQueue, a P's local run queue.
//
// A bounded, lock-free, single-producer / multi-consumer ring of entries,
// the algorithm of Go's runqput/runqget/runqgrab/runqsteal (proc.go).
//
// Glossary
//   owner   the worker thread of the P that owns the queue: the only thread
//           that pushes, and the only one that writes `tail_`.
//   thief   a worker of another P taking entries (steal_half_into).
//   entry   a tagged G pointer (see scheduler.hpp); 0 is a tombstone, an
//           entry whose goroutine was taken out of band (a joiner ran it
//           inline). Consumers skip tombstones.
//
// Invariants
//   1. head_ and tail_ are free-running 32-bit counters; the live entries are
//      slots [head_, tail_) modulo the capacity, and tail_ - head_ <=
//      capacity (unsigned arithmetic makes wrap-around harmless).
//   2. Only the owner writes tail_ and the slots at or after tail_.
//   3. Every consumer (the owner popping, thieves stealing, the owner
//      spilling to the global queue) first copies the slots it wants and
//      then claims them with one compare-exchange on head_. A failed
//      compare-exchange discards the copies, so a slot being overwritten
//      while copied is harmless (slots are atomics, read relaxed).
//   4. The owner writes a slot only when tail_ - head_ < capacity, i.e. after
//      every consumer that claimed that slot has finished reading it: the
//      consumers' compare-exchange is a release and the owner's load of
//      head_ an acquire.
//
// Algorithm
//   push (owner):  h = head_ (acquire); if tail_ - h < capacity: write the
//                  slot at tail_, then store tail_ + 1 (release: publishes
//                  the slot to consumers that acquire tail_).
//   pop (owner):   h = head_ (acquire); if h == tail_: empty. Read slot h;
//                  CAS head_ h -> h + 1 (release); retry on failure.
//   steal_half_into (thief, from victim V into its own queue Q):
//                  h = V.head_ (acquire), t = V.tail_ (acquire); n = t - h,
//                  take ceil(n / 2); if n > capacity / 2 the two loads were
//                  inconsistent: retry. Copy the n slots into Q's slots at
//                  and after Q.tail_ (unpublished, so invisible to Q's
//                  thieves), CAS V.head_ h -> h + n (release), then publish
//                  n - 1 of them by storing Q.tail_ and hand the last to
//                  the caller.
//   spill_half (owner, when full): copy the oldest half, CAS head_ past
//                  them; the caller moves them to the global queue.
//
// Rejected alternatives
//   * A Chase-Lev deque for this queue, which holds readied, yielding and
//     spawn()ed goroutines: its owner takes the newest entry, so a
//     goroutine readied early could wait behind every one readied after
//     it, where Go's FIFO order runs it early; runnext already gives a
//     handoff the newest-first locality that matters. Unstarted go()
//     goroutines, whose order nobody waits on, do get a Chase-Lev deque
//     beside this queue (spawn_stack.hpp), bounded so that it cannot keep
//     this queue waiting.
//   * A mutex: every spawn and every steal would take it.
#ifndef GORO_LIB_RUN_QUEUE_HPP_
#define GORO_LIB_RUN_QUEUE_HPP_

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>

namespace goro::detail {

class RunQueue {
 public:
  using Entry = std::uintptr_t;

  // `capacity` must be a power of two >= 2.
  explicit RunQueue(std::uint32_t capacity)
      : mask_(capacity - 1), slots_(std::make_unique<std::atomic<Entry>[]>(capacity)) {
    assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  }
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  [[nodiscard]] std::uint32_t capacity() const noexcept { return mask_ + 1; }

  // Owner only. Appends `entry`; returns false (changing nothing) when full.
  bool push(Entry entry) noexcept {
    // Acquire: pairs with consumers' release CAS, so their reads of the slot
    // we are about to reuse are finished (invariant 4).
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
    if (t - h >= capacity()) return false;
    slots_[t & mask_].store(entry, std::memory_order_relaxed);
    // Release: a consumer that acquires the new tail sees the slot.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only. Removes the oldest entry into `out`; false when empty.
  // `out` may be a tombstone (0).
  bool pop(Entry& out) noexcept {
    for (;;) {
      // Acquire: pairs with other consumers' release CAS (we need the latest
      // head to read a slot nobody has claimed).
      std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
      if (t == h) return false;
      out = slots_[h & mask_].load(std::memory_order_relaxed);
      // Release: orders our slot read before the owner's (our own) later
      // reuse of the slot; relaxed on failure, we just retry.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  // Owner only, when push failed because the queue is full. Claims the oldest
  // capacity/2 entries and copies them to `out` (which must hold
  // capacity/2 entries). Returns how many were claimed: capacity/2, or 0
  // when a thief got in first (then push again: there is room now).
  std::uint32_t spill_half(Entry* out) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t n = (t - h) / 2;
    if (n != capacity() / 2) return 0;  // not full any more
    for (std::uint32_t i = 0; i < n; ++i) {
      out[i] = slots_[(h + i) & mask_].load(std::memory_order_relaxed);
    }
    // Release: as in pop, commits the consumption of the copied slots.
    if (!head_.compare_exchange_strong(h, h + n, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return 0;
    }
    return n;
  }

  // Called by the owner of *this (the thief) to take about half of
  // `victim`'s entries. On success the entries except one are appended to
  // this queue and the remaining one is stored in `out`; returns false when
  // the victim had nothing. This queue must have room for
  // victim.capacity()/2 entries (it is empty when a P steals).
  //
  // `held`: entry bits that mark an entry as held back. When every entry of
  // the half would carry one of them, nothing is stolen (returns false).
  bool steal_half_into(RunQueue& victim, Entry& out, Entry held = 0) noexcept {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // ours
    for (;;) {
      // Acquire on both: head to see other consumers' claims, tail to see
      // the slots the victim published (pairs with its release store).
      std::uint32_t h = victim.head_.load(std::memory_order_acquire);
      const std::uint32_t vt = victim.tail_.load(std::memory_order_acquire);
      std::uint32_t n = vt - h;
      n = n - n / 2;
      if (n == 0) return false;
      if (n > victim.capacity() / 2) continue;  // h and vt read at different times
      Entry all_held = held;
      for (std::uint32_t i = 0; i < n; ++i) {
        const Entry e = victim.slots_[(h + i) & victim.mask_].load(std::memory_order_relaxed);
        slots_[(t + i) & mask_].store(e, std::memory_order_relaxed);
        all_held &= e;
      }
      // Nothing was claimed yet: backing out is just not committing.
      if (all_held != 0) return false;
      // Release: commits the claim after our slot reads (invariant 4 for
      // the victim's owner, which acquires head before reusing slots).
      if (victim.head_.compare_exchange_strong(h, h + n, std::memory_order_release,
                                               std::memory_order_relaxed)) {
        --n;
        out = slots_[(t + n) & mask_].load(std::memory_order_relaxed);
        // Release: publishes the copied slots to our own thieves.
        if (n != 0) tail_.store(t + n, std::memory_order_release);
        return true;
      }
    }
  }

  // How many entries were ever consumed (popped, spilled or stolen): a
  // change means the queue moved. Relaxed: sysmon compares snapshots.
  [[nodiscard]] std::uint32_t consumed() const noexcept {
    return head_.load(std::memory_order_relaxed);
  }

  // Owner only. The position the next push will use (for erase_at).
  [[nodiscard]] std::uint32_t next_position() const noexcept {
    return tail_.load(std::memory_order_relaxed);  // only the owner writes it
  }

  // Owner only. If the slot at `position` (a value next_position() returned
  // before a push) is still live and holds `entry`, replaces it with a
  // tombstone and returns true. A thief may have copied the slot just
  // before: callers must tolerate a stale copy of `entry` being consumed.
  bool erase_at(std::uint32_t position, Entry entry) noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (position - h >= t - h) return false;  // consumed, or never pushed
    std::atomic<Entry>& slot = slots_[position & mask_];
    if (slot.load(std::memory_order_relaxed) != entry) return false;
    // Relaxed: consumers read slots relaxed and arbitrate through head_.
    slot.store(0, std::memory_order_relaxed);
    return true;
  }

  // Number of entries (tombstones included). Exact for the owner when no
  // thief is active; a racy estimate otherwise (used only as a hint).
  [[nodiscard]] std::uint32_t size() const noexcept {
    for (;;) {
      // Acquire on both, as in steal: a consistent pair has size <= capacity.
      const std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (h == head_.load(std::memory_order_acquire)) return t - h;
    }
  }

  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  // Whether some entry lacks all of `bits` (any entry at all for bits 0).
  // Racy, for the idle re-check: slots are read as a thief would, without
  // claiming them.
  [[nodiscard]] bool any_entry_without(Entry bits) const noexcept {
    // Acquire on both, as in steal_half_into.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    const std::uint32_t n = t - h;
    if (n == 0 || n > capacity()) return n != 0;  // inconsistent pair: say yes
    if (bits == 0) return true;
    for (std::uint32_t i = 0; i < n; ++i) {
      if ((slots_[(h + i) & mask_].load(std::memory_order_relaxed) & bits) == 0) return true;
    }
    return false;
  }

  // Whether some entry has one of `bits`. Racy, as any_entry_without: for
  // sysmon's look at a P's queue.
  [[nodiscard]] bool any_entry_with(Entry bits) const noexcept {
    // Acquire on both, as in steal_half_into.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    const std::uint32_t n = t - h;
    if (n > capacity()) return false;  // inconsistent pair: the next look decides
    for (std::uint32_t i = 0; i < n; ++i) {
      if ((slots_[(h + i) & mask_].load(std::memory_order_relaxed) & bits) != 0) return true;
    }
    return false;
  }

  // Owner only, with no thief running (runtime stopped): forgets every entry.
  void clear() noexcept {
    head_.store(tail_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

 private:
  // Separate cache lines: thieves hammer head_, the owner writes tail_.
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::uint32_t mask_;
  std::unique_ptr<std::atomic<Entry>[]> slots_;
};

}  // namespace goro::detail

#endif  // GORO_LIB_RUN_QUEUE_HPP_
