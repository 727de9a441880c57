// lib/sync_mutex.cpp
//
// The slow paths of goro::Mutex. The algorithm, its invariants (M1-M4) and
// the rejected alternatives are in include/goro/mutex.hpp's top comment;
// the step numbers below refer to it.
//
// Two choices that differ from Go here. After a starvation handoff (unlock
// step 3) Go's unlocker yields its time slice to the waiter; here the
// waiter is readied into the unlocker's runnext and runs when the unlocker
// next parks or yields. Arrivals spin (lock step 2) even with one P: goro
// cannot see whether other Ps are running without a runtime call, and the
// spin is bounded (kSpinIterations rounds of kSpinPauses pauses, a few
// microseconds).
#include <stdexcept>

#include "goro/detail/cpu_relax.hpp"
#include "goro/detail/synchronisation_count.hpp"
#include "goro/detail/timer.hpp"
#include "goro/mutex.hpp"

namespace goro {
namespace {

// Go's active spinning (runtime_canSpin / runtime_doSpin): a few rounds of
// `pause` while the owner probably runs on another P.
constexpr int kSpinIterations = 4;
constexpr int kSpinPauses = 30;

void spin_pause() noexcept {
  for (int i = 0; i < kSpinPauses; ++i) detail::cpu_relax();
}

}  // namespace

bool Mutex::try_lock() noexcept {
  // Relaxed: a first look; the CAS below decides and acquires.
  std::uint32_t old = state_.load(std::memory_order_relaxed);
  // Locked, or starving (the mutex belongs to the waiters): no.
  if ((old & (kLocked | kStarving)) != 0) return false;
  // Acquire on success: see try_lock_fast().
  return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

bool Mutex::lock_slow(detail::SyncWaiter* w) noexcept {
  detail::count_synchronisation();  // for sysmon (synchronisation_count.hpp)
  int iter = 0;
  // Relaxed loads of `state` in this loop are guesses: every decision is
  // made by a CAS, which fails (and reloads) if the guess was stale.
  std::uint32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Step 2: spin while locked in normal mode.
    if ((old & (kLocked | kStarving)) == kLocked && iter < kSpinIterations) {
      // Relaxed: kWoken is a hint to unlock (M3); the CAS's atomicity is
      // what makes one goroutine hold it.
      if (!w->awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | kWoken, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
        w->awoke = true;
      }
      spin_pause();
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    // Step 3.
    std::uint32_t next = old;
    if ((old & kStarving) == 0) next |= kLocked;  // arrivals never take a starving mutex
    const bool queue = (old & (kLocked | kStarving)) != 0;
    if (queue) next += kWaiterOne;
    if (w->starving && (old & kLocked) != 0) next |= kStarving;
    if (w->awoke) next &= ~kWoken;  // held by us (M3): give it back either way
    if (!queue) {
      // Step 4, taking it. Acquire: sees the previous owner's critical
      // section (its unlock CAS released).
      if (state_.compare_exchange_weak(old, next, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        w->awoke = false;
        return true;
      }
      continue;
    }
    // Step 4, queuing: count and link in one qlock critical section (M1).
    // Relaxed: qlock orders this CAS against the unlocker that pops us.
    qlock_.lock();
    if (!state_.compare_exchange_strong(old, next, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
      qlock_.unlock();
      continue;
    }
    w->awoke = false;
    if (w->wait_start == 0) {
      w->wait_start = detail::monotonic_now_ns();
      waiters_.push_back(w);
    } else {
      waiters_.push_front(w);  // woken and lost: keep our place (Go's queueLifo)
    }
    qlock_.unlock();  // S3: from here on the goroutine may run elsewhere
    return false;
  }
}

// Inline: unlock_slow's normal-mode path, the one every contended unlock
// takes, makes no second call.
inline void Mutex::wake_one(std::uint32_t old) noexcept {
  for (;;) {
    if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
    // Grab the right to wake someone. Relaxed: the woken waiter acquires
    // the mutex through its own CAS; the queue is ordered by qlock (M1).
    if (state_.compare_exchange_weak(old, (old - kWaiterOne) | kWoken, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      qlock_.lock();
      detail::SyncWaiter* w = waiters_.pop_front();  // non-null by M1
      // It holds kWoken now (M3; its hook sets `awoke`); S4: kWoken goes
      // back if it never runs. One store into its frame, where pop_front
      // stored kIdle.
      w->state = detail::SyncWaiter::kGrantedWoken;
      qlock_.unlock();
      // Competes again: lock step 5 (unlock step 4 says where it runs).
      detail::wake(w, w->retry,
                   wake_as_partner_ ? detail::WakeAs::kPartner : detail::WakeAs::kCompetitor);
      return;
    }
  }
}

void Mutex::unlock_slow(std::uint32_t old) {
  detail::count_synchronisation();  // for sysmon (synchronisation_count.hpp)
  for (;;) {
    // Step 2.
    if ((old & kLocked) == 0) throw std::logic_error("sync: unlock of unlocked mutex");
    if ((old & kStarving) != 0) {  // step 3
      hand_off();
      return;
    }
    // Step 4. Release: publishes the critical section to the next owner.
    if (state_.compare_exchange_weak(old, old & ~kLocked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      wake_one(old & ~kLocked);
      return;
    }
  }
}

void Mutex::hand_off() noexcept {
  qlock_.lock();
  detail::SyncWaiter* w = waiters_.pop_front();  // non-null by M2 and M1
  const bool w_starving =
      w->starving || detail::monotonic_now_ns() - w->wait_start > kStarvationThresholdNs;
  std::uint32_t old = state_.load(std::memory_order_relaxed);  // a guess: the CAS decides
  for (;;) {
    // kLocked stays set: the mutex goes from us to `w` (M2).
    std::uint32_t next = old - kWaiterOne;
    if (!w_starving || (old >> kWaiterShift) == 1) next &= ~kStarving;  // leave starvation mode
    // Relaxed: `w` sees our critical section through ready_goroutine's
    // run-queue hand-over (release/acquire), not through this word.
    if (state_.compare_exchange_weak(old, next, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  w->state = detail::SyncWaiter::kGranted;  // S4: the mutex goes back if it never runs
  qlock_.unlock();
  // As the owner, straight to where the waiter goes on; that code calls
  // MutexWaiter::resumed(), which sets kIdle.
  detail::wake(w, w->continuation);
}

void Mutex::withdraw(detail::SyncWaiter* w) noexcept {
  // Dequeued by an unlocker, never resumed (sync_waiter.hpp, Withdrawal).
  if (w->state == detail::SyncWaiter::kGranted) {
    w->state = detail::SyncWaiter::kIdle;
    unlock();  // handed the mutex (starvation mode): pass it on; locked by M2
    return;
  }
  if (w->state == detail::SyncWaiter::kGrantedWoken) {
    w->state = detail::SyncWaiter::kIdle;
    // Woken to compete, holding kWoken (M3): drop it, and wake the next
    // waiter if the mutex is free, as the unlock that woke us would have
    // done had we not been woken. Relaxed: see wake_one.
    wake_one(state_.fetch_and(~kWoken, std::memory_order_relaxed) & ~kWoken);
    return;
  }
  qlock_.lock();
  if (waiters_.remove(w)) {
    // Uncount `w`; the last waiter gone takes starvation mode with it (M2),
    // or an unlock would hand the mutex to an empty queue. Relaxed: only at
    // shutdown, with no goroutine running; M1 holds by qlock, and the CAS
    // keeps an outside thread's concurrent unlock from being lost.
    std::uint32_t old = state_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint32_t next = old - kWaiterOne;
      if ((next >> kWaiterShift) == 0) next &= ~kStarving;
      if (state_.compare_exchange_weak(old, next, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
        break;
      }
    }
  }
  qlock_.unlock();
}

namespace detail {

void MutexWaiter::withdraw(SyncWaiter* w) noexcept { mutex_->withdraw(w); }

bool MutexWaiter::acquire(std::coroutine_handle<> then) {
  node_.prepare(goroutine_to_park("goro::Mutex::lock", "sync.Mutex.Lock"), then);
  hook_ = ResumeHook{&on_wake, &ResumeHook::never_destroyed, this};
  node_.retry = hook_.handle();
  return mutex_->lock_slow(&node_);
}

void MutexWaiter::on_wake(void* frame) noexcept {
  // Lock step 5, running on our goroutine.
  auto* self = ResumeHook::owner_of<MutexWaiter>(frame);
  SyncWaiter& w = self->node_;
  w.resumed();     // S4
  w.awoke = true;  // the unlocker gave us kWoken (M3)
  if (!w.starving) {
    w.starving = monotonic_now_ns() - w.wait_start > goro::Mutex::kStarvationThresholdNs;
  }
  if (self->mutex_->lock_slow(&w)) {
    // Ours; nobody else can touch the waiter now.
    w.continuation.resume();
  }
  // else queued again: parked, touch nothing (S3)
}

}  // namespace detail
}  // namespace goro
