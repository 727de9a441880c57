// goro/detail/mutex_waiter.hpp
//
// Defines: goro::detail::MutexWaiter, a goroutine taking a goro::Mutex,
// possibly as one stage of a longer wait: Mutex's own lock awaiters, an
// RWMutex writer's first stage (rwmutex.hpp) and a Cond waiter's relock
// (cond.hpp) embed one.
//
// Design. The waiter is a SyncWaiter (sync_waiter.hpp) plus the ResumeHook
// through which an unlocker in normal mode wakes it to compete again
// (goro/mutex.hpp, lock step 5); it lives in its awaiter, in the
// goroutine's frame, for the whole wait, so taking a contended Mutex
// allocates nothing. Its algorithm and invariants are the Mutex's
// (goro/mutex.hpp, M1-M4); the code is in lib/sync_mutex.cpp.
#ifndef GORO_DETAIL_MUTEX_WAITER_HPP_
#define GORO_DETAIL_MUTEX_WAITER_HPP_

#include <coroutine>

#include "goro/detail/sync_waiter.hpp"

namespace goro {

class Mutex;

namespace detail {

// A goroutine taking a Mutex. Lives in an awaiter (in the frame) for the
// whole wait.
class MutexWaiter {
 public:
  explicit MutexWaiter(goro::Mutex* mutex) noexcept : mutex_(mutex) {}
  MutexWaiter(const MutexWaiter&) = delete;
  MutexWaiter& operator=(const MutexWaiter&) = delete;
  // Only does something for a frame destroyed while parked (runtime
  // shutdown): see sync_waiter.hpp, Withdrawal.
  ~MutexWaiter() { withdraw_if_parked(node_, this, &MutexWaiter::withdraw); }

  // Takes the mutex for the running goroutine. Returns true if it got it
  // without parking; otherwise the goroutine is queued (the caller must
  // park it and touch nothing of this waiter) and continues at `then` once
  // it owns the mutex. Throws std::logic_error outside a goroutine.
  [[nodiscard]] bool acquire(std::coroutine_handle<> then);

  // Called by the goroutine when it goes on at `then` after parking (S4 of
  // sync_waiter.hpp): a mutex handed over in starvation mode is owned, no
  // longer a grant to give back. Harmless, and cheaper than a test, when
  // acquire() did not park.
  void resumed() noexcept { node_.resumed(); }

 private:
  friend class goro::Mutex;
  static void on_wake(void* frame) noexcept;
  // Mutex::withdraw for our node (`w` is &node_).
  void withdraw(SyncWaiter* w) noexcept;

  goro::Mutex* mutex_;  // qualified: lib/mutex.hpp has a detail::Mutex
  SyncWaiter node_;
  ResumeHook hook_;  // filled in by acquire(): most locks never wait
};

}  // namespace detail
}  // namespace goro

#endif  // GORO_DETAIL_MUTEX_WAITER_HPP_
