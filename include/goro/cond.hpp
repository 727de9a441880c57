// goro/cond.hpp
//
// Defines: goro::Cond (Go's sync.Cond, over a goro::Mutex).
//
//   co_await mu.lock();
//   while (!ready) co_await cond.wait(mu);
//   ... mu.unlock();
//   // elsewhere: { co_await mu.lock(); ready = true; mu.unlock(); cond.signal(); }
//
// Design (Go's sync/cond.go; its notifyList becomes a plain FIFO)
//
// Glossary
//   waiters   a FIFO of waiting goroutines under a SpinLock.
//   relock    after a signal the woken goroutine takes the Mutex again
//             before wait() returns; that is a second stage of the same
//             co_await (a ResumeHook, see sync_waiter.hpp), parking on the
//             Mutex if needed.
//
// Invariants
//   C1. A waiter is queued before wait() unlocks the Mutex, so a signal sent
//       by anyone who takes the Mutex after that finds it (no lost wakeup).
//   C2. wait() returns only after a signal or broadcast that dequeued it,
//       with the Mutex held (Go's Cond has no spurious wakeups either; loop
//       on the condition anyway: another goroutine may have run between).
//
// Algorithm
//   wait(m):    1. Check that m is locked (else throw, as Go's Unlock would).
//               2. Queue our waiter, then unlock m, park.
//               3. Signalled (our hook runs on our goroutine): lock m,
//                  parking on it if it is held; then return.
//   signal():   pop the first waiter under the lock; wake it at its hook.
//   broadcast(): pop them all; wake each.
//
// Rejected alternative: Go's ticket-based notifyList (it exists so that a
// goroutine can take a ticket before it has a sudog to queue); here the
// waiter node is in the frame from the start, so a plain queue does.
#ifndef GORO_COND_HPP_
#define GORO_COND_HPP_

#include <coroutine>

#include "goro/detail/mutex_waiter.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/sync_waiter.hpp"
#include "goro/mutex.hpp"

namespace goro {

// Cond: a condition variable for goroutines.
//
// Contract: wait(m) must be called with m locked by the caller; it unlocks
// m, parks until signal() or broadcast() picks it, and locks m again before
// returning. signal() wakes the longest waiting goroutine, broadcast() all
// of them; both may be called with or without the mutex held, from any
// thread. A Cond must not be destroyed while goroutines wait on it.
class Cond {
 public:
  class [[nodiscard("co_await it: nothing waits until the wait is awaited")]] WaitAwaiter {
   public:
    WaitAwaiter(Cond * cond, Mutex * mutex) noexcept : cond_(cond), mutex_(mutex), relock_(mutex) {}
    WaitAwaiter(const WaitAwaiter&) = delete;
    WaitAwaiter& operator=(const WaitAwaiter&) = delete;
    ~WaitAwaiter() { detail::withdraw_if_parked(waiter_, cond_, &Cond::withdraw); }
    bool await_ready() const;
    void await_suspend(std::coroutine_handle<> awaiting);
    void await_resume() noexcept { relock_.resumed(); }

   private:
    static void on_signal(void* frame) noexcept;

    Cond* cond_;
    Mutex* mutex_;
    detail::MutexWaiter relock_;
    detail::SyncWaiter waiter_;
    detail::ResumeHook hook_{&on_signal, &detail::ResumeHook::never_destroyed, this};
    std::coroutine_handle<> awaiting_;
  };

  Cond() noexcept = default;
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  [[nodiscard("co_await it: nothing waits until the wait is awaited")]] WaitAwaiter wait(
      Mutex& mutex) noexcept {
    return WaitAwaiter(this, &mutex);
  }
  void signal() noexcept;
  void broadcast() noexcept;

 private:
  void withdraw(detail::SyncWaiter* w) noexcept;

  detail::SpinLock lock_;
  detail::SyncQueue waiters_;  // guarded by lock_
};

}  // namespace goro

#endif  // GORO_COND_HPP_
