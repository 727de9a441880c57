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
// Rejected alternative: Go's runtime semaphore (detail::Sema) counts single
// units and has no weights; granting n units one at a time would let two
// large waiters each hold part of what they need (a deadlock).
#ifndef GORO_SEMAPHORE_HPP_
#define GORO_SEMAPHORE_HPP_

#include <coroutine>
#include <cstdint>

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
class Semaphore {
 public:
  class [[nodiscard(
      "co_await it: nothing is acquired until the acquire is awaited")]] AcquireAwaiter {
   public:
    AcquireAwaiter(Semaphore* sem, std::int64_t n) noexcept : sem_(sem) { waiter_.weight = n; }
    AcquireAwaiter(const AcquireAwaiter&) = delete;
    AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
    ~AcquireAwaiter() {
      if (waiter_.in_queue || waiter_.granted) [[unlikely]]
        sem_->withdraw(&waiter_);  // shutdown
    }
    // Step 2. Returns false with the lock held: await_suspend queues under it.
    bool await_ready() { return sem_->acquire_or_lock(waiter_.weight); }
    void await_suspend(std::coroutine_handle<> awaiting) noexcept {
      sem_->queue_and_unlock(&waiter_, awaiting);
    }
    void await_resume() noexcept { waiter_.granted = false; }  // S4: we run

   private:
    Semaphore* sem_;
    detail::SyncWaiter waiter_;
  };

  // A semaphore of `size` units (>= 0), all free.
  explicit Semaphore(std::int64_t size);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  [[nodiscard("co_await it: nothing is acquired until the acquire is awaited")]] AcquireAwaiter
  acquire(std::int64_t n = 1) noexcept {
    return AcquireAwaiter(this, n);
  }
  [[nodiscard]] bool try_acquire(std::int64_t n = 1) noexcept;
  void release(std::int64_t n = 1);

  [[nodiscard]] std::int64_t size() const noexcept { return size_; }

 private:
  bool acquire_or_lock(std::int64_t n);
  void queue_and_unlock(detail::SyncWaiter* w, std::coroutine_handle<> awaiting) noexcept;
  // Release step "while the front waiter fits", with lock_ held.
  void grant_locked(detail::WakeList& to_wake) noexcept;
  void withdraw(detail::SyncWaiter* w) noexcept;

  const std::int64_t size_;
  detail::SpinLock lock_;
  std::int64_t cur_ = 0;       // guarded by lock_
  detail::SyncQueue waiters_;  // guarded by lock_
};

}  // namespace goro

#endif  // GORO_SEMAPHORE_HPP_
