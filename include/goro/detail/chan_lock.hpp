// goro/detail/chan_lock.hpp
//
// Defines: goro::detail::ChanLock (the lock of a channel, Go's hchan.lock),
// ChanLockTuning, and chan_lock_thread_id (the per-thread identity it uses).
//
// Why a biased lock. A channel's critical sections are a handful of loads
// and stores, so the lock's own atomic exchange is most of an uncontended
// operation: a locked instruction waits for the store buffer to drain, and
// a goroutine switch has just filled it with frame writes (the profile is in
// docs/PERFORMANCE.md, "Channels and select"). Yet most channels are used by
// goroutines that run on one worker thread: partners readied by a handoff
// stay on their P (ARCHITECTURE, "Keeping partners together"). For those,
// the lock can be taken with plain stores, as a biased lock (Java's, or the
// "asymmetric Dekker" lock of Dice, Moir and Scherer) does: the thread that
// owns the bias announces itself and checks that nobody revoked it, and the
// rare thread that wants the lock from elsewhere pays for a process-wide
// fence.
//
// Glossary
//   spin       the SpinLock that every thread but the owner takes.
//   owner      the thread (chan_lock_thread_id) the lock is biased to, or
//              none (kUnbiased).
//   slot       a ChanLockOwnerSlot: per worker thread, in static storage,
//              the biased locks that thread is inside of now (up to
//              kHeldPerThread at once: a select holds several). The owner
//              announces itself there, in a line no other thread writes.
//   streak     how many spin acquisitions in a row came from one thread: a
//              lock is biased to a thread once its streak reaches the
//              lock's threshold, kBiasAfter doubled per revocation so far.
//
// Invariants
//   L1. At most one thread is inside a critical section: the owner (its
//       slot names the lock and bias_ still named it after its fence) or a
//       spin holder (which, if the lock was biased to another thread, has
//       unbiased it and waited until that thread's slot no longer names
//       the lock).
//   L2. bias_ changes only under spin: kUnbiased -> owner when a streak
//       completes, owner -> kUnbiased when a revoker takes it back.
//   L3. A thread writes only its own slot. A stale owner (one that read
//       bias_ before a revocation) can therefore never clear another
//       thread's announcement, which is what makes re-biasing safe.
//   L4. held_slot_ is written and read only inside a critical section, by
//       its holder: it says which of the two ways to unlock.
//
// Algorithm
//   lock(), by the owner:
//     1. Put the lock into a free entry of our slot (relaxed store); light
//        fence (a compiler barrier).
//     2. Reload bias_: still ours: enter. Otherwise clear the entry and
//        take the slow path below (the lock was just revoked). No free
//        entry: the slow path too (we own the bias, so it does not revoke).
//   lock(), by anyone else (or the owner after a revocation):
//     1. spin.lock().
//     2. bias_ names another thread: set kUnbiased, heavy fence
//        (membarrier), wait until that thread's slot no longer holds this
//        lock (acquire), double the threshold, restart the streak.
//     3. Unbiased: count the streak; at the threshold, bias to this thread
//        (it still holds spin, and unlocks spin this once).
//   unlock(): the owner clears its slot entry (release); a spin holder
//   unlocks spin. Neither touches the lock after that store, so the next
//   holder may free the channel at once.
//   Why steps 1-2 of the owner and 2 of the revoker exclude each other:
//   Dekker's pattern with an asymmetric fence (asymmetric_fence.hpp). The
//   owner stores its slot then loads bias_; the revoker stores bias_ then
//   loads the slot; membarrier makes the owner's CPU execute a full
//   barrier, so either the owner's load comes after it and sees the
//   revocation, or its slot store was visible before the revoker's load,
//   which then waits. Release on clearing the entry and acquire in the
//   revoker's wait carry the owner's critical sections to the revoker; spin
//   carries everything else.
//
// Rejected alternatives
//   * Plain SpinLock only: the exchange per operation (see above).
//   * One busy flag in the lock: a revoked owner may still be between its
//     first look at bias_ and its busy store; if the lock were re-biased to
//     another thread meanwhile, the stale owner's store and clear would
//     share, and clobber, the new owner's flag. Biasing only once per lock
//     avoids that but leaves a channel shared for good after one early
//     cross-thread use (goroutines spread by the first steals, then
//     gathered on one P): such a producer/consumer run pays the exchange
//     on every operation for good.
//     Per-thread slots (L3) make re-biasing safe.
//   * Biasing at creation: a parent making a channel for children that other
//     Ps run would revoke (a membarrier) on almost every channel; the streak
//     makes a channel prove it stays on one thread first, and the doubling
//     bounds the membarriers of a channel that keeps changing threads.
//   * Tracking the P instead of the thread: the fence argument is about the
//     CPU that runs the owner's code, i.e. a thread; a P is bound to one
//     worker thread for a whole run anyway.
#ifndef GORO_DETAIL_CHAN_LOCK_HPP_
#define GORO_DETAIL_CHAN_LOCK_HPP_

#include <atomic>
#include <cstdint>

#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/synchronisation_count.hpp"

namespace goro::detail {

// Tuning of ChanLock.
struct ChanLockTuning {
  // Spin acquisitions in a row by one thread before the lock is biased to
  // it (doubled after each revocation, up to kBiasAfter << kMaxDoublings).
  // Large enough that a channel used a few times (skynet's: ~20 operations
  // from whichever Ps run the children) never pays a revocation; small
  // enough that a long-lived channel between goroutines of one P is biased
  // after a negligible part of its life.
  static constexpr std::uint32_t kBiasAfter = 64;
  static constexpr std::uint32_t kMaxDoublings = 12;
  // Biased locks one thread can be inside of at once on the fast path (a
  // select holds all its channels); more go through spin.
  static constexpr int kHeldPerThread = 4;
  // Threads that can own a bias at once (ids are recycled as worker
  // threads exit); further threads take every lock through spin.
  static constexpr std::uint32_t kMaxOwners = 1024;
};

// Per thread that can own biases: the biased locks it is inside of.
struct alignas(64) ChanLockOwnerSlot {
  // Written only by the slot's thread; read by revokers.
  std::atomic<const void*> held[ChanLockTuning::kHeldPerThread] = {};
};

// Indexed by chan_lock_thread_id; static storage, so a revoker may read the
// slot of a thread that has exited.
extern ChanLockOwnerSlot chan_lock_owner_slots[ChanLockTuning::kMaxOwners];

// Non-zero on a thread that can own biases (a goroutine worker thread,
// between assign_chan_lock_thread_id and release_chan_lock_thread_id); 0 on
// every other thread. Unique among live threads.
extern constinit thread_local std::uint32_t chan_lock_thread_id;

// Gives the calling thread an id (idempotent); worker threads call it as
// they start. Without a free id the thread keeps 0.
void assign_chan_lock_thread_id() noexcept;
// Returns the calling thread's id for reuse; worker threads call it as they
// stop, holding no lock. A lock still biased to the id passes to the
// thread that gets it next, which is sound: the release and the next
// assign are ordered by a mutex, and the exiting thread is inside no lock.
void release_chan_lock_thread_id() noexcept;

// Revocations so far in this process (for tests and benchmarks: each cost a
// membarrier).
[[nodiscard]] std::uint64_t chan_lock_revocations() noexcept;

// True when biasing is sound here: the asymmetric fence has its membarrier
// half (or, under ThreadSanitizer, both halves are full fences).
[[nodiscard]] inline bool chan_lock_bias_allowed() noexcept {
#if defined(GORO_TSAN)
  return true;
#else
  // Relaxed: set before any worker thread starts (asymmetric_fence.hpp).
  return membarrier_enabled.load(std::memory_order_relaxed);
#endif
}

// ChanLock: mutual exclusion for a channel's short critical sections,
// biased to one worker thread once that thread has used it enough times in
// a row (file comment).
//
// Contract: lock()/unlock() as a BasicLockable; not recursive; unlock()
// only by the holder, on the thread that locked. unlock() touches nothing
// of the lock after its releasing store, so the memory holding the lock may
// be freed by the next holder at once. Critical sections must not suspend
// a coroutine (they do not: every channel operation unlocks before it
// parks). Several ChanLocks may be held at once only if every thread takes
// them in one global order (select sorts by address).
class ChanLock {
 public:
  ChanLock() noexcept = default;
  ChanLock(const ChanLock&) = delete;
  ChanLock& operator=(const ChanLock&) = delete;

  // Inlined into every channel operation: the fast path is a few
  // instructions; the rest is out of line.
  [[gnu::always_inline]] void lock() noexcept {
    const std::uint32_t me = chan_lock_thread_id;
    // Relaxed: a hint; the reload after the fence decides (step 2).
    if (me != 0 && bias_.load(std::memory_order_relaxed) == me) [[likely]] {
      // Entry 0 unless we already hold another biased lock (a select).
      // Relaxed: our own slot, which only this thread writes.
      std::atomic<const void*>& first = chan_lock_owner_slots[me].held[0];
      if (first.load(std::memory_order_relaxed) == nullptr) [[likely]] {
        if (enter_as_owner(me, 0)) return;
      } else if (lock_as_owner_nested(me)) {
        return;
      }
    }
    lock_shared(me);
  }

  [[gnu::always_inline]] void unlock() noexcept {
    if (held_slot_ >= 0) {
      // Release: publishes the critical section to a revoker (its acquire
      // wait) and, through the owner's later spin sections, to everyone.
      chan_lock_owner_slots[chan_lock_thread_id].held[held_slot_].store(nullptr,
                                                                        std::memory_order_release);
    } else {
      spin_.unlock();
    }
  }

  // For tests: whether the lock is biased to some thread now (racy).
  [[nodiscard]] bool biased_for_test() const noexcept {
    return bias_.load(std::memory_order_relaxed) != kUnbiased;
  }

 private:
  static constexpr std::uint32_t kUnbiased = 0;

  // Steps 1-2 of the owner's path with slot entry `i` (free).
  [[gnu::always_inline]] bool enter_as_owner(std::uint32_t me, int i) noexcept {
    std::atomic<const void*>& entry = chan_lock_owner_slots[me].held[i];
    // Relaxed store + light fence + relaxed load: the owner's half of the
    // Dekker pair (file comment); the heavy half is in revoke().
    entry.store(this, std::memory_order_relaxed);
    light_fence();
    if (bias_.load(std::memory_order_relaxed) == me) [[likely]] {
      held_slot_ = static_cast<std::int8_t>(i);
      count_synchronisation();  // here, once: a failed entry counts in lock_shared
      return true;
    }
    // Revoked under us: step back and queue on spin like anyone else.
    // Release: our (empty) section is ordered before the revoker's.
    entry.store(nullptr, std::memory_order_release);
    return false;
  }

  // The owner's path when entry 0 is taken: the first free other entry.
  [[gnu::noinline]] bool lock_as_owner_nested(std::uint32_t me) noexcept {
    for (int i = 1; i < ChanLockTuning::kHeldPerThread; ++i) {
      // Relaxed: our own slot.
      if (chan_lock_owner_slots[me].held[i].load(std::memory_order_relaxed) == nullptr) {
        return enter_as_owner(me, i);
      }
    }
    return false;  // full: through spin (lock_shared keeps our own bias)
  }

  [[gnu::noinline]] void lock_shared(std::uint32_t me) noexcept {
    count_synchronisation();
    spin_.lock();
    // Relaxed: bias_ changes only under spin (L2), which we hold.
    const std::uint32_t b = bias_.load(std::memory_order_relaxed);
    if (b != kUnbiased && b != me) revoke(b);
    // Only now: until revoke() saw the owner out, it may be inside and own
    // held_slot_ (L4).
    held_slot_ = -1;
    if (b == me || me == 0) return;  // our own bias (slot full), or no id
    if (streak_owner_ != me) {
      streak_owner_ = me;
      streak_ = 1;
    } else if (++streak_ >= (ChanLockTuning::kBiasAfter << doublings_) &&
               chan_lock_bias_allowed()) {
      // We hold spin: nobody else is inside, and from our next lock() on we
      // are the owner. Relaxed: other threads only compare it with their
      // own id, and a stale view only sends them through spin.
      bias_.store(me, std::memory_order_relaxed);
    }
  }

  // Step 2 of the slow path: out of line (lib/chan_lock.cpp).
  void revoke(std::uint32_t biased_to) noexcept;

  // The owner's id, or kUnbiased. Written under spin_ only; read by the
  // owner without it.
  std::atomic<std::uint32_t> bias_{kUnbiased};
  SpinLock spin_;
  // L4: the owner's slot entry while it holds the lock, -1 for a spin
  // holder.
  std::int8_t held_slot_ = -1;
  // Guarded by spin_.
  std::uint8_t doublings_ = 0;
  std::uint32_t streak_owner_ = 0;
  std::uint32_t streak_ = 0;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_CHAN_LOCK_HPP_
