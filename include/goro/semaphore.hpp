// goro/semaphore.hpp
//
// Defines: goro::Semaphore, a weighted semaphore for goroutines (Go's
// golang.org/x/sync/semaphore.Weighted).
//
//   goro::Semaphore sem(10);
//   co_await sem.acquire(3); ...; sem.release(3);
//
// Design (x/sync/semaphore, with the waiter node in the frame instead of a
// channel per waiter)
//
// Glossary
//   size     the capacity, fixed at construction.
//   cur      the units held now.
//   waiters  FIFO of goroutines waiting, each for `weight` units.
//
// Invariants (under the spin lock)
//   E1. 0 <= cur <= size.
//   E2. FIFO: an acquire succeeds at once only if nobody waits; release
//       grants units to waiters strictly from the front and stops at the
//       first that does not fit, even if a later, smaller one would (x/sync
//       does the same: it keeps a large request from being starved by a
//       stream of small ones).
//
// Algorithm
//   acquire(n): 1. n > size or n < 0: throw (x/sync would block until its
//               context ends; goro's acquire takes no context, so such a
//               wait could never end). 2. Lock. If size - cur >= n and
//               nobody waits: cur += n, unlock, done. 3. Otherwise queue
//               our waiter with weight n, unlock, park; the releaser has
//               added n to cur for us when it wakes us.
//   release(n): lock; cur -= n (below 0: undo and throw, x/sync panics
//               "semaphore: released more than held"); while the front
//               waiter fits: cur += its weight, dequeue it; unlock; wake them.
//   withdraw (an awaiter destroyed while parked, at shutdown;
//               sync_waiter.hpp, Withdrawal): queued: unlink it, and if it
//               was the front, grant the waiters behind it that now fit (as
//               x/sync does when an acquire is cancelled); granted (units
//               added to cur for it, never resumed): release them.
//
// acquire(n, ctx) (x/sync's Acquire(ctx, n)): the waiter also watches the
//   context, through a std::stop_callback on ctx.stop_token() held in the
//   awaiter. Whether the goroutine was granted or cancelled is decided under
//   the semaphore's lock, by whoever dequeues the waiter first: release's
//   grant or the callback. So a grant and a cancellation that cross never
//   both take effect: the loser finds the waiter gone and does nothing.
//               1. n < 0: throw. ctx done: return ctx.err() at once, even if
//               n units are free (x/sync: the context's end comes first).
//               2. The fast path of acquire(n), if n <= size.
//               3. Register the callback (before locking: it may run at
//               once, inline, and takes the lock). Lock. The callback ran:
//               unlock, return ctx.err(). Units free and nobody waits: take
//               them and mark the waiter granted (a callback running before
//               step 5 then leaves it alone), unlock, return OK. Otherwise
//               queue the waiter (if n > size, x/sync waits for the context
//               without queuing, so that it blocks nobody: the waiter is
//               only marked parked), unlock, park.
//               4. Callback (the canceller's thread): lock; queued: unlink
//               (and if it was the front, grant the waiters behind it that
//               now fit), mark cancelled, unlock, wake it; parked aside: the
//               same without the queue; not yet parked: mark cancelled (step
//               3 sees it); granted: nothing.
//               5. Resumed: destroy the callback (waits for one in progress,
//               which touches the awaiter: a lock, a few stores and a
//               wakeup, so the wait is as short), then OK if granted, else
//               ctx.err(). Withdrawn at shutdown: the same destruction
//               first, then as acquire(n)'s waiter.
//
// Rejected alternatives: x/sync's channel per waiter and a select on it
// and ctx.Done() (an allocation per wait, and a grant that crosses the
// cancel must be handed back after the fact; here the lock decides once).
// Failing a waiter that was granted before its cancel arrived (x/sync may,
// then gives the units back): both orders are linearisable, and keeping
// the grant spares handing the units on a second time. Go's runtime semaphore (detail::Sema):
// it counts single units and has no weights; granting n units one at a
// time would let two large waiters each hold part of what they need (a
// deadlock).
#ifndef GORO_SEMAPHORE_HPP_
#define GORO_SEMAPHORE_HPP_

#include <coroutine>
#include <cstdint>
#include <optional>
#include <stop_token>

#include "absl/status/status.h"
#include "goro/context.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/sync_waiter.hpp"

namespace goro {

// Semaphore: `size` units shared by goroutines, acquired and released in
// any amounts.
//
// Contract: acquire(n) parks until n units are granted, in FIFO order of
// the acquirers; it throws std::invalid_argument if n < 0 or n > size.
// try_acquire(n) takes n units only if that needs no waiting (and nobody
// waits). release(n) returns units (any thread may) and throws
// std::logic_error if more are released than held.
//
// acquire(n, ctx) is x/sync's Acquire(ctx, n): `co_await` gives OK once the
// n units are held, or ctx.err() once ctx is done first, and then the
// semaphore is as if the call had not been made (the units it would have
// had pass to the waiters behind it). A grant made before the cancellation
// reached the waiter stands (OK, units held), even if ctx is done by the
// time the goroutine runs: the two never both count. A ctx already done
// fails at once,
// even if the units are free. n > size waits for ctx (blocking nobody
// else) and gives its error; if ctx can never be done, it throws
// std::invalid_argument as acquire(n) does. n < 0 throws
// std::invalid_argument.
class Semaphore {
 public:
  class [[nodiscard(
      "co_await it: nothing is acquired until the acquire is awaited")]] AcquireAwaiter {
   public:
    AcquireAwaiter(Semaphore * sem, std::int64_t n) noexcept : sem_(sem) { waiter_.weight = n; }
    AcquireAwaiter(const AcquireAwaiter&) = delete;
    AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
    ~AcquireAwaiter() { detail::withdraw_if_parked(waiter_, sem_, &Semaphore::withdraw); }
    // Step 2. Returns false with the lock held: await_suspend queues under it.
    bool await_ready() { return sem_->acquire_or_lock(waiter_.weight); }
    void await_suspend(std::coroutine_handle<> awaiting) noexcept {
      sem_->queue_and_unlock(&waiter_, awaiting);
    }
    void await_resume() noexcept { waiter_.resumed(); }

   private:
    Semaphore* sem_;
    detail::SyncWaiter waiter_;
  };

  class [[nodiscard]] ContextAcquireAwaiter {
   public:
    ContextAcquireAwaiter(Semaphore* sem, std::int64_t n, const Context& ctx)
        : sem_(sem), ctx_(ctx) {
      waiter_.weight = n;
    }
    ContextAcquireAwaiter(const ContextAcquireAwaiter&) = delete;
    ContextAcquireAwaiter& operator=(const ContextAcquireAwaiter&) = delete;
    ~ContextAcquireAwaiter() {
      // First: no callback runs once this returns (it waits for one in
      // progress), so the flags below are ours alone.
      callback_.reset();
      detail::withdraw_if_parked(waiter_, sem_, &Semaphore::withdraw);
    }
    // Steps 1-3 up to the queuing. Returns false with the lock held.
    bool await_ready() { return sem_->acquire_or_lock(*this); }
    void await_suspend(std::coroutine_handle<> awaiting) noexcept {
      sem_->queue_and_unlock(*this, awaiting);
    }
    // Step 5.
    [[nodiscard]] absl::Status await_resume() noexcept {
      callback_.reset();
      if (!cancelled_ && result_.ok()) waiter_.resumed();
      return cancelled_ ? ctx_.err() : result_;
    }

   private:
    friend class Semaphore;
    struct Canceller {
      ContextAcquireAwaiter* awaiter;
      void operator()() const noexcept { awaiter->sem_->cancel_waiter(*awaiter); }
    };

    Semaphore* sem_;
    Context ctx_;
    detail::SyncWaiter waiter_;
    absl::Status result_;        // decided without parking (step 1, 3)
    bool cancelled_ = false;     // guarded by sem_->lock_: the callback won (step 4)
    bool parked_aside_ = false;  // guarded by sem_->lock_: n > size, parked, not queued
    std::optional<std::stop_callback<Canceller>> callback_;
  };

  // A semaphore of `size` units (>= 0), all free.
  explicit Semaphore(std::int64_t size);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  [[nodiscard("co_await it: nothing is acquired until the acquire is awaited")]] AcquireAwaiter
  acquire(std::int64_t n = 1) noexcept {
    return AcquireAwaiter(this, n);
  }
  [[nodiscard]] ContextAcquireAwaiter acquire(std::int64_t n, const Context& ctx) {
    return ContextAcquireAwaiter(this, n, ctx);
  }
  [[nodiscard]] bool try_acquire(std::int64_t n = 1) noexcept;
  void release(std::int64_t n = 1);

  [[nodiscard]] std::int64_t size() const noexcept { return size_; }

 private:
  bool acquire_or_lock(std::int64_t n);
  void queue_and_unlock(detail::SyncWaiter* w, std::coroutine_handle<> awaiting) noexcept;
  // Release step "while the front waiter fits", with lock_ held.
  void grant_locked(detail::WakeList<detail::SyncWaiter>& to_wake) noexcept;
  void withdraw(detail::SyncWaiter* w) noexcept;
  bool acquire_or_lock(ContextAcquireAwaiter& a);
  void queue_and_unlock(ContextAcquireAwaiter& a, std::coroutine_handle<> awaiting) noexcept;
  void cancel_waiter(ContextAcquireAwaiter& a) noexcept;

  const std::int64_t size_;
  detail::SpinLock lock_;
  std::int64_t cur_ = 0;       // guarded by lock_
  detail::SyncQueue waiters_;  // guarded by lock_
};

}  // namespace goro

#endif  // GORO_SEMAPHORE_HPP_
