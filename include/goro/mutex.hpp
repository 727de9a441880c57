// goro/mutex.hpp
//
// Defines: goro::Mutex (Go's sync.Mutex for goroutines) and
// goro::LockGuard<M> (an RAII guard usable across co_await). The waiter a
// locker parks in is detail/mutex_waiter.hpp's; the guard's mechanics are
// detail/lock_guard.hpp's.
//
//   goro::Mutex mu;
//   co_await mu.lock(); ...; mu.unlock();
//   { auto guard = co_await mu.scoped_lock(); ... co_await anything; ... }
//
// Design (Go's sync/mutex.go, with the semaphore folded into the Mutex)
//
// Glossary
//   state      one 32-bit word: kLocked, kWoken (an awake goroutine is
//              competing, so unlock need not wake another), kStarving, and
//              the number of queued waiters above kWaiterShift.
//   waiters    a FIFO of MutexWaiters (in the lockers' frames) behind a
//              SpinLock, qlock. The count in `state` says how many there
//              are without taking qlock.
//   normal mode   a woken waiter does not own the mutex: it competes with
//              goroutines that just arrived, which usually win (they are
//              running). A waiter that loses goes back to the *front*.
//   starvation mode   unlock hands the mutex straight to the first waiter
//              (FIFO); arrivals neither take it nor spin, they queue at the
//              back. Entered when a waiter has waited over 1 ms; left when
//              the waiter handed the mutex is the last one or waited less
//              than 1 ms. Normal mode is much faster (a goroutine can take
//              the mutex many times in a row); starvation mode bounds the
//              wait of the unlucky one.
//
// Invariants
//   M1. The waiter count in `state` is changed only with qlock held, except
//       by unlock's "wake one" CAS, which decrements it just before popping
//       a waiter under qlock. So with qlock held, count <= queue length:
//       a waiter is counted and queued in one critical section.
//   M2. kStarving implies kLocked and at least one counted waiter: it is set
//       only by a queuing waiter while the mutex is locked, a starvation
//       handoff keeps kLocked (the owner changes, the mutex is never free),
//       and the handoff that takes the last waiter clears kStarving, as
//       does withdrawing the last waiter (a frame destroyed at shutdown).
//       (Go clears mutexLocked during a handoff and lets the woken waiter
//       set it; here the unlocker does the whole handoff, so `state` never
//       says "unlocked" while someone owns the mutex.)
//   M3. At most one goroutine holds kWoken (`awoke`): the unlocker that set
//       it hands it to the waiter it wakes, or a spinning arrival set it;
//       whoever holds it clears it in its next successful CAS.
//   M4. The sync_waiter.hpp rules S1-S3.
//
// Algorithm
//   lock:
//     1. Fast path: CAS 0 -> kLocked (acquire). Done.
//     2. Spin a little while the mutex is held in normal mode (the owner
//        probably runs on another P and unlocks soon), setting kWoken if
//        there are waiters, so that unlock does not wake one for nothing.
//     3. Compute the new state: take kLocked unless starving; count us as
//        a waiter if it is locked or starving; set kStarving if we waited
//        over 1 ms and it is locked; clear kWoken if we hold it.
//     4. If we do not queue, CAS; on success we own it. If we queue, take
//        qlock, CAS, and link us: at the back the first time, at the front
//        after a wakeup (Go's queueLifo). Release qlock, park.
//     5. Woken in normal mode, through our hook (`retry`): the unlocker
//        gave us kWoken, so set `awoke`; note whether we have now waited
//        over 1 ms, go to 2. Handed the mutex in starvation mode: readied
//        straight at our continuation; we own it.
//   unlock:
//     1. Fast path: CAS kLocked -> 0 (release). Done.
//     2. Not locked: throw (Go: "fatal error: sync: unlock of unlocked
//        mutex").
//     3. Starving: take qlock, pop the first waiter, decrement the count
//        and clear kStarving if that waiter is the last or waited under
//        1 ms, release qlock, ready the waiter as the owner.
//     4. Normal: CAS kLocked off (release). If nobody waits, or someone is
//        awake (kWoken), or the mutex is already taken again, done.
//        Otherwise CAS (count - 1) | kWoken, pop the first waiter under
//        qlock, mark it kGrantedWoken (one store into its frame) and ready
//        it at its hook: it competes again (lock step 5). It goes to this
//        P's runnext, but not as the unlocker's partner: an idle P is woken
//        and takes it if this P has not run it within the runnext grace
//        (Go's goready + wakep). The unlocker usually goes on running and
//        soon locks again; a partner, held back from thieves, would wait
//        until it parks, holding kWoken all that time, which sends every
//        unlock down this step. RWMutex's writer mutex readies it as the
//        partner all the same (WakeAsPartner): there a writer taken by an
//        idle P at once runs beside the readers that its lock then blocks.
//   withdraw (a parked waiter's frame destroyed at shutdown; the waiter's
//   one state byte says which): queued (kQueued): unlink and uncount it,
//   clearing kStarving with the last one; handed the mutex (kGranted):
//   unlock it; woken holding kWoken (kGrantedWoken): clear kWoken and do
//   unlock step 4's wakeup.
//
// Rejected alternatives: see sync_waiter.hpp (why the hook, why not always
// hand off, why a per-mutex queue rather than Go's semaphore table). And an
// unlock that clears kLocked with one atomic AND (x86 `lock btr`, which
// leaves the word intact on a misuse) and then loads the word to choose
// step 3 or 4: in between another goroutine may take the mutex and a
// starving waiter queue behind it, so the unlocker would hand off a mutex
// it no longer owns. The choice must come from the unlocking
// read-modify-write's own result (Go's XADD); an XADD on an unlocked word
// would corrupt it before the misuse check could throw.
#ifndef GORO_MUTEX_HPP_
#define GORO_MUTEX_HPP_

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "goro/detail/lock_guard.hpp"
#include "goro/detail/mutex_waiter.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/sync_waiter.hpp"

namespace goro {

// LockGuard<M>: owns a lock of M (Mutex, or RWMutex's write lock) and
// unlocks it on destruction. Obtained from `co_await m.scoped_lock()`;
// move-only; may be held across co_await (goroutines may move between
// threads: goro's locks are owned by goroutines, not threads).
template <class M>
using LockGuard = detail::BasicLockGuard<M, detail::CallUnlock>;

// Mutex: a mutual exclusion lock for goroutines, with Go's semantics.
//
// Contract: lock() parks the goroutine (never its worker thread) until it
// owns the mutex; unlock() may be called by any goroutine or thread (a Go
// Mutex is not tied to a goroutine), and throws std::logic_error if the
// mutex is not locked. Not recursive. A locker that waits over 1 ms turns
// on starvation mode (see the file comment), which bounds how long a
// goroutine that keeps re-locking can keep it from a waiter. The zero value
// is an unlocked mutex; it must not be destroyed while locked or waited on.
class Mutex {
 public:
  // co_await mu.lock(): parks until the goroutine owns the mutex.
  class [[nodiscard(
      "co_await it: the mutex is not locked until the lock is awaited")]] LockAwaiter {
   public:
    explicit LockAwaiter(Mutex * m) noexcept : waiter_(m), mutex_(m) {}
    bool await_ready() noexcept { return mutex_->try_lock_fast(); }
    bool await_suspend(std::coroutine_handle<> awaiting) {
      return !waiter_.acquire(awaiting);  // got it at once: do not park
    }
    void await_resume() noexcept { waiter_.resumed(); }

   protected:
    [[nodiscard]] Mutex& locked() const noexcept { return *mutex_; }

   private:
    detail::MutexWaiter waiter_;
    Mutex* mutex_;
  };

  // co_await mu.scoped_lock(): as lock(), then returns the guard.
  using ScopedLockAwaiter = detail::ScopedLockAwaiter<LockAwaiter, LockGuard<Mutex>>;

  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  [[nodiscard("co_await it: the mutex is not locked until the lock is awaited")]] LockAwaiter
  lock() noexcept {
    return LockAwaiter(this);
  }
  [[nodiscard("co_await it: the mutex is not locked until the lock is awaited")]] ScopedLockAwaiter
  scoped_lock() noexcept {
    return ScopedLockAwaiter(this);
  }

  // Takes the mutex if that needs no waiting (Go's TryLock: never in
  // starvation mode, where it belongs to the waiters). Returns whether.
  [[nodiscard]] bool try_lock() noexcept;

  void unlock() {
    std::uint32_t expected = kLocked;
    // Release: publishes the critical section to the next owner (which
    // acquires in its own CAS). Fails when anyone waits or a flag is set.
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) [[likely]] {
      return;
    }
    unlock_slow(expected);
  }

  // True while some goroutine owns the mutex. A snapshot, for assertions
  // and Cond's misuse check.
  [[nodiscard]] bool is_locked() const noexcept {
    // Relaxed: a snapshot, ordered with nothing; its callers only check for
    // misuse by their own goroutine (which locked it, sequenced before).
    return (state_.load(std::memory_order_relaxed) & kLocked) != 0;
  }

 private:
  friend class detail::MutexWaiter;
  friend class RWMutex;

  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kWoken = 2;
  static constexpr std::uint32_t kStarving = 4;
  static constexpr int kWaiterShift = 3;
  static constexpr std::uint32_t kWaiterOne = 1u << kWaiterShift;
  static constexpr std::int64_t kStarvationThresholdNs = 1'000'000;  // Go's 1 ms

  bool try_lock_fast() noexcept {
    std::uint32_t expected = 0;
    // Acquire: the critical section sees the previous owner's writes.
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  bool lock_slow(detail::SyncWaiter* w) noexcept;  // true: owned; false: queued
  void unlock_slow(std::uint32_t old);
  void hand_off() noexcept;
  // Unlock step 4 after kLocked is off: wakes the first waiter to compete,
  // unless none waits or one is awake (kWoken) or the mutex is taken.
  void wake_one(std::uint32_t old) noexcept;
  // A waiter's frame destroyed while parked (sync_waiter.hpp, Withdrawal).
  void withdraw(detail::SyncWaiter* w) noexcept;

  // RWMutex's writer mutex: a woken waiter is readied as the unlocker's
  // partner (unlock step 4).
  struct WakeAsPartner {};
  explicit Mutex(WakeAsPartner) noexcept : wake_as_partner_(true) {}

  std::atomic<std::uint32_t> state_{0};
  detail::SpinLock qlock_;
  const bool wake_as_partner_ = false;
  detail::SyncQueue waiters_;  // guarded by qlock_
};

}  // namespace goro

#endif  // GORO_MUTEX_HPP_
