// goro/rwmutex.hpp
//
// Defines: goro::RWMutex (Go's sync.RWMutex for goroutines) and
// goro::ReadLockGuard (the RAII guard of a read lock; the write lock's guard
// is goro::LockGuard<RWMutex>).
//
//   goro::RWMutex rw;
//   { auto r = co_await rw.scoped_rlock(); ... }   // many readers at once
//   { auto w = co_await rw.scoped_lock(); ... }    // one writer, no readers
//
// Design (Go's sync/rwmutex.go)
//
// Glossary
//   w            a Mutex held by the writer that owns or is acquiring the
//                write lock: writers queue on it, one at a time.
//   readerCount  readers holding or waiting for the lock; a writer subtracts
//                kMaxReaders, so a negative count says "a writer is pending",
//                and readers arriving then wait on readerSem.
//   readerWait   readers that held the lock when the pending writer
//                announced itself; the last of them to leave wakes it.
//   writerSem, readerSem   detail::Sema (Go's runtime semaphore).
//
// Invariants
//   R1. readerCount < 0 exactly while a writer holds w and has announced
//       itself (lock step 2) and not yet unlocked.
//   R2. A writer waits only for the readers that held the lock when it
//       announced itself (readerWait); readers that arrive later queue
//       behind it (Go's writer preference: a stream of readers cannot starve
//       a writer), and the writer's unlock lets exactly them in.
//
// Algorithm
//   rlock:   1. readerCount += 1; if the result is >= 0, done (fast path).
//            2. Otherwise a writer is pending: park on readerSem.
//   runlock: 1. readerCount -= 1; if the result is >= 0, done.
//            2. A writer is pending: readerWait -= 1; the last departing
//               reader releases writerSem.
//   lock:    1. Lock w (parking, possibly several times, as any Mutex lock).
//            2. readerCount -= kMaxReaders; r = the readers active then.
//            3. If r != 0 and readerWait += r leaves it != 0, park on
//               writerSem. Steps 1-3 are one co_await: ResumeHooks chain the
//               stages (sync_waiter.hpp), so nothing is allocated.
//   unlock:  1. readerCount += kMaxReaders; r = the readers that queued.
//            2. Release readerSem r times (wakes them, or banks the wakeup
//               of a reader that counted itself but has not queued yet).
//            3. Unlock w.
//   withdraw (an awaiter destroyed while parked, at shutdown, with every
//   worker stopped; sync_waiter.hpp, Withdrawal):
//     reader queued on readerSem: unlink it, readerCount -= 1 (it arrived
//            after the pending writer announced, so readerWait never
//            counted it). Granted (released, never resumed): runlock.
//     writer queued on writerSem (it holds w and announced): undo the
//            announcement: readerCount += kMaxReaders; the readers still
//            holding the lock are readerWait (set it to 0: they leave
//            through runlock's fast path now); release readerSem for the
//            rest, which arrived after the announcement; unlock w.
//            Granted (the last reader released it, never resumed): unlock.
//     A writer in step 1 is a Mutex waiter and withdraws as one.
//     The arithmetic assumes no runlock or unlock runs meanwhile on an
//     outside thread; a program that unlocks from an outside thread while
//     run() returns may leave a stale count in the lock.
//
// Rejected alternative: one queue of readers and writers under a spin lock
// (simpler to argue, but every rlock/runlock would take the lock; here a
// read lock is one atomic add while no writer is around).
#ifndef GORO_RWMUTEX_HPP_
#define GORO_RWMUTEX_HPP_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <utility>

#include "goro/detail/lock_guard.hpp"
#include "goro/detail/mutex_waiter.hpp"
#include "goro/detail/sync_waiter.hpp"
#include "goro/detail/synchronisation_count.hpp"
#include "goro/mutex.hpp"

namespace goro {

class RWMutex;

namespace detail {
struct CallRUnlock {
  template <class M>
  void operator()(M& m) const {
    m.runlock();
  }
};
}  // namespace detail

// ReadLockGuard: owns a read lock of an RWMutex and releases it on
// destruction. Move-only; may be held across co_await.
using ReadLockGuard = detail::BasicLockGuard<RWMutex, detail::CallRUnlock>;

// RWMutex: a reader/writer lock for goroutines, with Go's semantics.
//
// Contract: any number of readers or one writer hold it. Once a writer
// waits, readers that arrive wait until it has had the lock (writers are
// not starved). Not recursive: a reader that read-locks again may deadlock
// behind a waiting writer, as in Go. unlock()/runlock() of a lock not held
// throw std::logic_error. Locks are not tied to goroutines.
class RWMutex {
 public:
  // co_await rw.lock(): the write lock (Go's Lock), steps in the file comment.
  class [[nodiscard(
      "co_await it: the mutex is not locked until the lock is awaited")]] LockAwaiter {
   public:
    explicit LockAwaiter(RWMutex * rw) noexcept : rw_(rw), mutex_waiter_(&rw->w_) {}
    LockAwaiter(const LockAwaiter&) = delete;
    LockAwaiter& operator=(const LockAwaiter&) = delete;
    // A frame destroyed while parked (shutdown; sync_waiter.hpp,
    // Withdrawal): in stage 1 mutex_waiter_ takes care of w; in stage 2 the
    // write lock, pending or granted, is given up.
    ~LockAwaiter() { detail::withdraw_if_parked(sem_waiter_, rw_, &RWMutex::withdraw_writer); }
    bool await_ready() noexcept {
      if (!rw_->w_.try_lock()) return false;
      have_w_ = true;
      return rw_->announce_writer();
    }
    bool await_suspend(std::coroutine_handle<> awaiting);
    void await_resume() noexcept { sem_waiter_.resumed(); }

   protected:
    [[nodiscard]] RWMutex& locked() const noexcept { return *rw_; }

   private:
    static void on_have_w(void* frame) noexcept;

    RWMutex* rw_;

    detail::MutexWaiter mutex_waiter_;
    detail::SyncWaiter sem_waiter_;
    detail::ResumeHook have_w_hook_{&on_have_w, &detail::ResumeHook::never_destroyed, this};
    std::coroutine_handle<> awaiting_;
    bool have_w_ = false;
  };
  // co_await rw.scoped_lock(): as lock(), then returns the guard.
  using ScopedLockAwaiter = detail::ScopedLockAwaiter<LockAwaiter, LockGuard<RWMutex>>;

  // co_await rw.rlock(): a read lock (Go's RLock).
  class [[nodiscard(
      "co_await it: the read lock is not taken until the rlock is awaited")]] RLockAwaiter {
   public:
    explicit RLockAwaiter(RWMutex * rw) noexcept : rw_(rw) {}
    RLockAwaiter(const RLockAwaiter&) = delete;
    RLockAwaiter& operator=(const RLockAwaiter&) = delete;
    // A frame destroyed while parked (shutdown; sync_waiter.hpp,
    // Withdrawal): the read lock, pending or granted, is given up.
    ~RLockAwaiter() { detail::withdraw_if_parked(waiter_, rw_, &RWMutex::withdraw_reader); }
    bool await_ready() noexcept {
      // Step 1. Acquire: a reader that gets in sees the last writer's
      // critical section (its unlock's add released).
      const bool in = rw_->reader_count_.fetch_add(1, std::memory_order_acquire) + 1 >= 0;
      // Counted for sysmon (synchronisation_count.hpp): goroutines that share an
      // RWMutex are no pipeline to spread over idle Ps. Mutex counts only
      // its slow paths: its uncontended lock is a CAS that a count would
      // slow by a fifth, and a Mutex taken without contention is no reason
      // to keep goroutines together.
      detail::count_synchronisation();
      return in;
    }
    bool await_suspend(std::coroutine_handle<> awaiting) {
      return detail::park_on(rw_->reader_sem_, waiter_, awaiting, "sync.RWMutex.RLock");  // step 2
    }
    void await_resume() noexcept { waiter_.resumed(); }

   protected:
    [[nodiscard]] RWMutex& locked() const noexcept { return *rw_; }

   private:
    RWMutex* rw_;
    detail::SyncWaiter waiter_;
  };
  // co_await rw.scoped_rlock(): as rlock(), then returns the guard.
  using ScopedRLockAwaiter = detail::ScopedLockAwaiter<RLockAwaiter, ReadLockGuard>;

  RWMutex() noexcept = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  [[nodiscard("co_await it: the mutex is not locked until the lock is awaited")]] LockAwaiter
  lock() noexcept {
    return LockAwaiter(this);
  }
  [[nodiscard("co_await it: the mutex is not locked until the lock is awaited")]] ScopedLockAwaiter
  scoped_lock() noexcept {
    return ScopedLockAwaiter(this);
  }
  [[nodiscard("co_await it: the read lock is not taken until the rlock is awaited")]] RLockAwaiter
  rlock() noexcept {
    return RLockAwaiter(this);
  }
  [[nodiscard(
      "co_await it: the read lock is not taken until the rlock is awaited")]] ScopedRLockAwaiter
  scoped_rlock() noexcept {
    return ScopedRLockAwaiter(this);
  }

  // Take the lock if that needs no waiting; return whether (Go's TryLock /
  // TryRLock).
  [[nodiscard]] bool try_lock() noexcept;
  [[nodiscard]] bool try_rlock() noexcept;

  void unlock();
  void runlock() {
    // Release: publishes the reader's critical section to a writer, which
    // acquires (announce_writer / writerSem).
    const std::int32_t r = reader_count_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) [[unlikely]]
      runlock_slow(r);
  }

 private:
  static constexpr std::int32_t kMaxReaders = 1 << 30;

  // Lock steps 2-3 without parking: true if no reader remains.
  bool announce_writer() noexcept;
  void runlock_slow(std::int32_t r);
  // Awaiters destroyed while parked (see "withdraw" in the file comment).
  void withdraw_reader(detail::SyncWaiter* w) noexcept;
  void withdraw_writer(detail::SyncWaiter* w) noexcept;

  Mutex w_{Mutex::WakeAsPartner{}};
  detail::Sema writer_sem_;
  detail::Sema reader_sem_;
  std::atomic<std::int32_t> reader_count_{0};
  std::atomic<std::int32_t> reader_wait_{0};
};

}  // namespace goro

#endif  // GORO_RWMUTEX_HPP_
