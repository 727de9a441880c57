// net/mutex.hpp: goro::net::internal::Mutex, the lock of NetFd's, the
// Listener's and net::Server's short critical sections, and MutexLock.
//
// Why a lock of our own. Every read and write of a socket takes NetFd's
// lock twice (begin and end, net_fd.hpp), and a server moving its read
// deadline takes it once more, so its fast path is paid several times per
// request. std::mutex's (glibc's pthread mutex) checks the mutex's kind,
// its owner and lock elision on every lock and unlock; the word below
// costs one compare-exchange to lock and one exchange to unlock. The
// sections hold no wait and no system call of their own; the one thing in
// them that reaches further is a socket's deadline timer (net_fd.hpp, T2):
// disarming it waits for a fire in progress (a stop request and the
// cancellations it runs, all short), and arming it may wake the runtime's
// timer sleeper (one system call, when the timer is the earliest and the
// sleeper sleeps longer), once per deadline expiry, not per operation. So
// a thread that finds the lock taken is delayed briefly, and it spins a
// little before it sleeps.
//
// The word (the classic three-state futex lock):
//   0  unlocked;
//   1  locked, nobody sleeping on it;
//   2  locked, and a thread may be sleeping on it (atomic wait).
// Locking:
//   L1. Compare-exchange 0 -> 1: taken (the fast path).
//   L2. Otherwise spin, re-reading the word, and retry L1 while it is 0,
//       for a bounded number of rounds.
//   L3. Exchange the word to 2: if it was 0, taken (marked 2, which may
//       cost one needless wake at unlock, never a lost one). Otherwise
//       sleep while the word is 2 (std::atomic::wait, a futex on Linux),
//       and repeat L3.
// Unlocking:
//   U1. Exchange the word to 0; if it was 2, wake one sleeper, which takes
//       the lock at L3 (or loses it to a newcomer at L1 and sleeps again).
// A sleeper is never lost: it sleeps only while the word is 2 (the wait
// re-checks the value in the kernel), and the holder that sees 2 at U1
// wakes one.
//
// ThreadSanitizer sees the lock through the word: acquire at L1/L3 and
// release at U1 are the happens-before edges between sections. (Not
// absl::Mutex for that reason: Debian's Abseil is not built with TSan
// instrumentation, so TSan would report false races through it.) The
// thread-safety annotations keep clang's -Wthread-safety checks.
//
// Rejected: std::mutex (the fast path above is what it costs); a pure
// spin lock (a thread descheduled while holding it would make the others
// burn their time slices: the section may be on a thread the kernel
// preempts).
#ifndef GORO_NET_MUTEX_HPP_
#define GORO_NET_MUTEX_HPP_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"

namespace goro::net::internal {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    std::uint32_t expected = kUnlocked;
    // Acquire on success: the section sees what the previous holder wrote
    // before its release at U1. Relaxed on failure: nothing is read then.
    if (word_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      return;  // L1
    }
    lock_contended();
  }

  void unlock() ABSL_UNLOCK_FUNCTION() {
    // Release: the section's writes happen before the next holder's
    // acquire at L1 or L3 (U1).
    if (word_.exchange(kUnlocked, std::memory_order_release) == kSleepers) word_.notify_one();
  }

 private:
  static constexpr std::uint32_t kUnlocked = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kSleepers = 2;

  void lock_contended();

  std::atomic<std::uint32_t> word_{kUnlocked};
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mutex_;
};

}  // namespace goro::net::internal

#endif  // GORO_NET_MUTEX_HPP_
