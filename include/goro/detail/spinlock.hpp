// goro/detail/spinlock.hpp
//
// Defines: goro::detail::SpinLock, the lock of the sync primitives' waiter
// queues and the shared half of a channel's lock (chan_lock.hpp).
//
// The critical sections it guards are a handful of loads and stores (link
// a waiter, move one value), so a test-and-test-and-set lock that spins with
// `pause` and then yields the CPU is cheaper than a std::mutex (no futex,
// one byte, no destructor work) and never parks a worker thread in the
// kernel for long. It lives in a public header because Chan<T> and the sync
// primitives are inline; goro's other internal locks are lib/mutex.hpp's.
//
// Rejected alternative: std::mutex. Uncontended it costs the same atomic
// exchange, but it is 40 bytes, and under contention it sleeps in futex(),
// where a worker thread must not block.
#ifndef GORO_DETAIL_SPINLOCK_HPP_
#define GORO_DETAIL_SPINLOCK_HPP_

#include <atomic>
#include <thread>

#include "goro/detail/cpu_relax.hpp"

namespace goro::detail {

// SpinLock: mutual exclusion for short critical sections.
//
// Contract: lock()/unlock() as a BasicLockable; not recursive; unlock()
// only by the holder. unlock() touches nothing after its store, so the
// memory holding the lock may be freed by the next holder at once.
class SpinLock {
 public:
  SpinLock() noexcept = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() noexcept {
    // Acquire: the critical section sees every write of the previous
    // holder's critical section (published by unlock()'s release store).
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]] {
      return;
    }
    lock_slow();
  }

  void unlock() noexcept {
    // Release: publishes the critical section to the next lock().
    locked_.store(false, std::memory_order_release);
  }

 private:
  void lock_slow() noexcept {
    // Exponential backoff between attempts: a waiter that keeps polling the
    // lock's cache line takes it away from the holder on every read, so the
    // holder's next critical section misses too. Backing off lets a holder
    // run several short critical sections in a row.
    unsigned backoff = 4;
    for (unsigned attempts = 0;; ++attempts) {
      if (attempts < 32) {
        for (unsigned i = 0; i < backoff; ++i) cpu_relax();
        if (backoff < 1024) backoff *= 2;
      } else {
        // The holder may have been preempted (2 cores, noisy VMs): give it
        // the CPU rather than burn the time slice.
        std::this_thread::yield();
      }
      // Relaxed: only a hint that the lock may be free; the exchange below
      // is what acquires.
      if (!locked_.load(std::memory_order_relaxed) &&
          !locked_.exchange(true, std::memory_order_acquire)) {
        return;
      }
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_SPINLOCK_HPP_
