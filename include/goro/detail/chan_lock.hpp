// goro/detail/chan_lock.hpp
//
// Defines: goro::detail::ChanLock (the lock of a channel, Go's hchan.lock),
// ChanLockTuning, and chan_lock_thread_id (the per-thread identity it uses).
//
// Why a biased lock. A channel's critical sections are a handful of loads
// and stores, so the lock's own atomic exchange is most of an uncontended
// operation: on the 2-core machine of docs/PERFORMANCE.md, half the cycles
// of an unbuffered ping-pong sat on that exchange, because a locked
// instruction waits for the store buffer to drain, and a goroutine switch
// has just filled it with frame writes. Yet most channels are used by
// goroutines that run on one worker thread: goroutines that talk hand each
// other the P through `runnext`, so a ping-pong pair or a producer and its
// consumer stay on one P. For those, the lock can be taken with plain
// stores, as a biased lock (Java's, or the "asymmetric Dekker" lock of
// Dice, Moir and Scherer) does: the thread that owns the bias marks itself
// busy and checks that nobody revoked it, and the rare thread that wants
// the lock from elsewhere pays for a process-wide fence.
//
// Glossary
//   spin       the SpinLock that every thread but the owner takes.
//   owner      the thread (chan_lock_thread_id) the lock is biased to, or
//              none. A lock is biased at most once in its life: biased by
//              its owner from inside a spin critical section, revoked by
//              the first other thread that takes it, shared from then on.
//   busy       set by the owner around its critical sections.
//   streak     how many spin acquisitions in a row came from one thread:
//              a lock is biased to a thread once its streak reaches
//              ChanLockTuning::kBiasAfter.
//
// Invariants
//   L1. `bias_` goes kUnbiased -> owner id -> owner id | kRevoked, never
//       back: the owner's busy flag is written by the owner alone, so a
//       stale thread can never clear a flag someone else set.
//   L2. At most one thread is inside a critical section: the owner (busy
//       set and bias_ == its id, seen after its fence) or a spin holder
//       (which, if the lock was biased, has revoked it and waited for busy
//       to clear).
//   L3. `held_by_owner_` is written and read only inside a critical
//       section, by its holder: it says which of the two ways to unlock.
//
// Algorithm
//   lock(), by the owner:
//     1. busy = 1 (relaxed store); light fence (a compiler barrier).
//     2. Reload bias_: still ours and not revoked: enter. Otherwise busy =
//        0 and take the slow path below (the lock was just revoked).
//   lock(), by anyone else (or the owner after a revocation):
//     1. spin.lock().
//     2. bias_ names an owner and is not revoked: set kRevoked, heavy fence
//        (membarrier), wait for busy == 0 (acquire).
//     3. Unbiased: count the streak; at kBiasAfter, bias to this thread
//        (it still holds spin, and unlocks spin this once).
//   unlock(): the owner stores busy = 0 (release); a spin holder unlocks
//   spin. Neither touches the lock after that store, so the next holder may
//   free the channel at once.
//   Why steps 1-2 of the owner and 2 of the revoker exclude each other:
//   it is Dekker's pattern with an asymmetric fence (asymmetric_fence.hpp).
//   The owner stores busy then loads bias_; the revoker stores bias_ then
//   loads busy; membarrier makes the owner's CPU execute a full barrier, so
//   either the owner's load comes after it and sees kRevoked, or its busy
//   store was visible before the revoker's load, which then waits.
//   Release on busy = 0 and acquire in the revoker's wait carry the owner's
//   critical sections to the revoker; spin carries everything else.
//
// Rejected alternatives
//   * Plain SpinLock only: the exchange per operation (see above).
//   * Re-biasing after a revocation: a revoked owner may still be in step
//     1 with a stale view, and a new owner would share its busy flag (L1).
//     Bias-once keeps the flag single-writer, and bounds the membarriers to
//     one per channel: channels that really cross threads stay shared.
//   * Biasing at creation: a parent making a channel for children that other
//     Ps run would revoke (1.5 us) on almost every channel; the streak makes
//     a channel prove it stays on one thread first.
//   * Tracking the P instead of the thread: the fence argument is about the
//     CPU that runs the owner's code, i.e. a thread; a P is bound to one
//     worker thread for a whole run anyway, and a thread id stays unique
//     across runs.
#ifndef GORO_DETAIL_CHAN_LOCK_HPP_
#define GORO_DETAIL_CHAN_LOCK_HPP_

#include <atomic>
#include <cstdint>

#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/spinlock.hpp"

namespace goro::detail {

// Tuning of ChanLock.
struct ChanLockTuning {
  // Spin acquisitions in a row by one thread before the lock is biased to
  // it. Large enough that a channel used a few times (skynet's: ~20
  // operations from whichever Ps run the children) never pays a revocation;
  // small enough that a long-lived channel between goroutines of one P is
  // biased after a negligible part of its life.
  static constexpr std::uint32_t kBiasAfter = 64;
};

// Non-zero, unique over the process's life, on goroutine worker threads
// (assigned when a worker starts); 0 on every other thread, which never
// owns a ChanLock's bias.
extern constinit thread_local std::uint32_t chan_lock_thread_id;

// Gives the calling thread its chan_lock_thread_id (a worker thread, as it
// starts; idempotent).
void assign_chan_lock_thread_id() noexcept;

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
// biased to one worker thread once that thread has used it kBiasAfter times
// in a row (file comment).
//
// Contract: lock()/unlock() as a BasicLockable; not recursive; unlock()
// only by the holder, on the thread that locked. unlock() touches nothing
// after its releasing store, so the memory holding the lock may be freed by
// the next holder at once. Critical sections must not suspend a coroutine
// (they do not: every channel operation unlocks before it parks).
class ChanLock {
 public:
  ChanLock() noexcept = default;
  ChanLock(const ChanLock&) = delete;
  ChanLock& operator=(const ChanLock&) = delete;

  void lock() noexcept {
    const std::uint32_t me = chan_lock_thread_id;
    // Relaxed: a hint; the reload after the fence decides (step 2).
    if (me != 0 && bias_.load(std::memory_order_relaxed) == me) [[likely]] {
      // Relaxed store + light fence + relaxed load: the owner's half of the
      // Dekker pair (file comment); the heavy half is in revoke().
      busy_.store(1, std::memory_order_relaxed);
      light_fence();
      if (bias_.load(std::memory_order_relaxed) == me) [[likely]] {
        held_by_owner_ = true;
        return;
      }
      // Revoked under us: step back and queue on spin like anyone else.
      // Release: our (empty) section is ordered before the revoker's.
      busy_.store(0, std::memory_order_release);
    }
    lock_shared(me);
  }

  void unlock() noexcept {
    if (held_by_owner_) {
      // Release: publishes the critical section to a revoker (its acquire
      // wait) and, through the owner's later spin sections, to everyone.
      busy_.store(0, std::memory_order_release);
    } else {
      spin_.unlock();
    }
  }

  // For tests: whether the lock is biased to some thread now (racy).
  [[nodiscard]] bool biased_for_test() const noexcept {
    const std::uint32_t b = bias_.load(std::memory_order_relaxed);
    return b != kUnbiased && (b & kRevoked) == 0;
  }
  // For tests: whether the lock has been revoked (racy).
  [[nodiscard]] bool revoked_for_test() const noexcept {
    return (bias_.load(std::memory_order_relaxed) & kRevoked) != 0;
  }

 private:
  static constexpr std::uint32_t kUnbiased = 0;
  static constexpr std::uint32_t kRevoked = 0x8000'0000u;

  void lock_shared(std::uint32_t me) noexcept {
    spin_.lock();
    // Relaxed: bias_ changes only under spin (which we hold) or, for the
    // kRevoked bit, also under spin; the owner only reads it.
    const std::uint32_t b = bias_.load(std::memory_order_relaxed);
    if (b == kUnbiased) {
      held_by_owner_ = false;
      if (me == 0) return;
      if (streak_owner_ != me) {
        streak_owner_ = me;
        streak_ = 1;
      } else if (++streak_ >= ChanLockTuning::kBiasAfter && chan_lock_bias_allowed()) {
        // We hold spin: nobody else is inside, and from our next lock() on
        // we are the owner. Relaxed: other threads only compare it with
        // their own id, which can never match.
        bias_.store(me, std::memory_order_relaxed);
      }
      return;
    }
    if ((b & kRevoked) == 0) revoke(b);
    // Only now: until revoke() saw busy clear, the owner may be inside and
    // own held_by_owner_ (L3).
    held_by_owner_ = false;
  }

  // Steps 2 of the slow path: out of line (lib/chan_lock.cpp).
  void revoke(std::uint32_t biased_to) noexcept;

  // Owner id, | kRevoked once revoked; kUnbiased before. Written under
  // spin_ only; read by the owner without it.
  std::atomic<std::uint32_t> bias_{kUnbiased};
  // 1 while the owner is inside (or trying to enter) a critical section.
  std::atomic<std::uint8_t> busy_{0};
  SpinLock spin_;
  // L3: which unlock() to run; written by the holder after it entered.
  bool held_by_owner_ = false;
  // Guarded by spin_.
  std::uint32_t streak_owner_ = 0;
  std::uint32_t streak_ = 0;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_CHAN_LOCK_HPP_
