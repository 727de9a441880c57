// lib/timers.cpp
//
// Timers: per-P heaps (TimerQueue), who runs them, and how an idle runtime
// wakes up on time (Timers, timers.hpp; Go's time.go and the timer parts of
// findRunnable).
//
// Glossary
//   node           a TimerNode, embedded in what waits (a sleeping
//                  goroutine's awaiter, a Timer, a Ticker).
//   owner          the P whose heap holds an armed node (the P of the
//                  goroutine that armed it).
//   timer sleeper  the one idle worker that sleeps until the earliest
//                  deadline of all Ps; other idle workers sleep without a
//                  deadline (Go: the one M blocked in netpoll with a
//                  timeout).
//
// Invariants
//   1. node.owner is non-null while the node is in its owner's heap and
//      while its fire runs; it changes only under the owner's TimerQueue
//      lock.
//      Whoever owns a node disarms it before freeing it (destructors do),
//      so a node is never freed while it is armed or firing.
//   2. TimerQueue::next equals heap.earliest() whenever its lock is free.
//   3. A fire callback runs with the owner's TimerQueue lock held, on a worker
//      thread, with a one-shot node already out of the heap (a periodic one
//      already re-armed).
//   4. No node's deadline is TimerHeap::kNever: deadlines saturate at
//      kLatestDeadline (goro/detail/timer.hpp), so a timer that never fires
//      still shows in TimerQueue::next (the deadlock detector sees it armed) and
//      the ticker re-arm cannot overflow.
//
// Who runs a due timer
//   1. Its owner, at the top of each trip through the scheduler
//      (PMechanisms::run_due_timers, scheduler.hpp step 0: one relaxed load
//      when the P has no timers, a clock read when it has).
//   2. An idle P in the last steal round (PMechanisms::steal_due_timers,
//      step 5), when the owner is busy with a goroutine that does not give
//      the P back.
//   3. The timer sleeper, when its deadline passes: it runs every P's due
//      timers.
//
// Waking on time (the timer sleeper handshake)
//   Arming: a. push the node and store the owner's TimerQueue::next
//   (seq_cst);
//   b. if the node is the owner's new earliest, load the sleeper's deadline
//   (seq_cst): if it is set and not later than the node, done; if it is
//   later, unpark the sleeper (it recomputes); if nobody sleeps on a
//   deadline, wake an idle worker (it becomes the sleeper).
//   Becoming the sleeper: c. compute the earliest deadline; CAS the
//   sleeper deadline 0 -> it and publish itself (seq_cst); d. re-read the
//   earliest deadline: if something earlier was armed meanwhile, do not
//   sleep. Either the armer's load in b sees the sleeper (and wakes it) or
//   the sleeper's re-read in d sees the new timer: a and b, c and d are
//   seq_cst, so they cannot both miss each other.
//   Leaving: the sleeper clears the registration, runs what is due, and, if
//   timers remain, makes sure another idle worker takes the role.
//
// The wait clock (wait_clock_nanos, goro/detail/goroutine.hpp) lives here
// beside the timers' time base: a worker leaving its idle sleep advances
// it, as sysmon does each round (advance_wait_clock, timers.hpp).
#include "timers.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <type_traits>

#include "goro/stop_timer.hpp"
#include "goro/time.hpp"
#include "p.hpp"
#include "runtime_state.hpp"
#include "scheduler_interface.hpp"

namespace goro::detail {

static_assert(std::is_standard_layout_v<SleepAwaiter>, "fire() casts the node back to its owner");
static_assert(std::is_standard_layout_v<ChannelTimer>, "fire() casts the node back to its owner");
static_assert(std::is_standard_layout_v<StopTimer>, "fire() casts the node back to its owner");

std::int64_t monotonic_now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // steady_clock's clock on Linux
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::atomic<std::int64_t> wait_clock_nanos{0};

void advance_wait_clock(std::int64_t now) noexcept {
  // Relaxed: see wait_clock_nanos (goroutine.hpp).
  wait_clock_nanos.store(now, std::memory_order_relaxed);
}

void arm_timer(TimerNode* node) {
  P* p = tls_p;
  if (p == nullptr || tls_g == nullptr) {
    throw std::logic_error("goro: timers (sleep, Timer, Ticker) must be used inside a goroutine");
  }
  p->all_timers.arm(*p, node);
}

bool disarm_timer(TimerNode* node) noexcept {
  // Load the owner once: the node may fire (and its owner become null) at
  // any moment. The P itself outlives the node's goroutine.
  P* owner = static_cast<P*>(node->owner.load(std::memory_order_acquire));
  if (owner == nullptr) return false;
  return Timers::disarm(*owner, node);
}

void ready_from_timer(G* g) noexcept {
  P* p = tls_p;
  // The tail, not runnext: timers that come due together wake their
  // goroutines in deadline order (runnext would run the last one first).
  make_runnable(*p, g, Placement::kTail);
  notify_work_available(*p);
}

void Timers::arm(P& p, TimerNode* node) {
  // Read before the lock is released: from then on the node may fire, and
  // its goroutine run on and reuse the memory.
  const std::int64_t when = node->when;
  bool new_earliest;
  {
    MutexLock lock(p.timers.mu);
    p.timers.heap.push(node);
    node->owner.store(&p, std::memory_order_relaxed);  // under the lock (invariant 1)
    new_earliest = p.timers.heap.top() == node;
    // Step a (seq_cst: the Dekker pair with the sleeper's steps c-d).
    p.timers.next.store(p.timers.heap.earliest(), std::memory_order_seq_cst);
  }
  if (new_earliest) wake_for(p, when);
}

bool Timers::disarm(P& owner, TimerNode* node) noexcept {
  MutexLock lock(owner.timers.mu);
  // It may have fired (or been disarmed) between our load and the lock.
  if (node->owner.load(std::memory_order_relaxed) != &owner) return false;
  owner.timers.heap.remove(node);
  node->owner.store(nullptr, std::memory_order_relaxed);
  // Relaxed: a later (or no) deadline never needs anyone woken.
  owner.timers.next.store(owner.timers.heap.earliest(), std::memory_order_relaxed);
  return true;
}

bool Timers::run_due(P& victim, P& p, std::int64_t now) noexcept {
  bool fired = false;
  MutexLock lock(victim.timers.mu);
  while (TimerNode* node = victim.timers.heap.top()) {
    if (node->when > now) break;
    if (node->period > 0) {
      // A ticker: next deadline one period on, skipping ticks already
      // missed (Go's tickers do not catch up). Saturating: a period too
      // long to add never fires again.
      std::int64_t next = deadline_after(node->when, node->period);
      if (next <= now) {
        next = deadline_after(next, ((now - next) / node->period + 1) * node->period);
      }
      victim.timers.heap.update(node, next);
    } else {
      victim.timers.heap.pop();
    }
    // Relaxed: firing only makes the earliest deadline later; nobody needs
    // waking for that (invariant 2 holds once the lock is released).
    victim.timers.next.store(victim.timers.heap.earliest(), std::memory_order_relaxed);
    fired = true;
    bump(p.stats.timers_fired);
    node->fire(node);
    if (node->period == 0) {
      // Only now, still under the lock, is a one-shot node disarmed: an
      // owner (stop, reset, the waiter's destructor) that loaded the owner
      // before this point blocks on the lock until the fire is complete,
      // so the node outlives its fire. One that loads nullptr after it
      // knows the fire is over (release pairs with disarm's acquire).
      node->owner.store(nullptr, std::memory_order_release);
    }
  }
  return fired;
}

bool Timers::run_all_due(P& p, std::int64_t now) noexcept {
  bool fired = false;
  for (P* victim : ps_) {
    if (victim->timers.next.load(std::memory_order_relaxed) <= now) {  // re-read under its lock
      fired = run_due(*victim, p, now) || fired;
    }
  }
  return fired;
}

std::int64_t Timers::earliest() const noexcept {
  std::int64_t earliest = TimerHeap::kNever;
  for (const P* p : ps_) {
    // seq_cst: step d of the handshake.
    const std::int64_t next = p->timers.next.load(std::memory_order_seq_cst);
    if (next < earliest) earliest = next;
  }
  return earliest;
}

void Timers::wake_for(P& p, std::int64_t when) noexcept {
  // Step b.
  const std::int64_t deadline = sleeper_deadline_.load(std::memory_order_seq_cst);
  if (deadline != 0) {
    if (deadline <= when) return;  // the sleeper wakes in time anyway
    if (P* sleeper = sleeper_.load(std::memory_order_seq_cst)) sleeper->poller->wake();
    // A sleeper not yet published re-reads the deadlines (step d).
    return;
  }
  // Nobody sleeps on a deadline: wake an idle worker to take the role (it
  // looks for work, then sleeps again, on the deadline).
  wake_idle_p(p);
}

void Timers::idle_sleep(P& p) noexcept {
  const std::int64_t deadline = earliest();
  std::int64_t none = 0;
  // seq_cst CAS: step c of the handshake.
  if (deadline == TimerHeap::kNever ||
      !sleeper_deadline_.compare_exchange_strong(none, deadline, std::memory_order_seq_cst)) {
    // No timers, or another worker already sleeps until the earliest one.
    p.poller->wait(Poller::kNever);
    advance_wait_clock(monotonic_now_ns());  // sysmon may have slept meanwhile
    leave_idle(p);  // an I/O completion or a spurious return leaves us on the idle list
    return;
  }
  // Step c: we are the timer sleeper.
  sleeper_.store(&p, std::memory_order_seq_cst);
  // Step d: something armed meanwhile may be earlier still.
  if (earliest() >= deadline) p.poller->wait(deadline);
  sleeper_.store(nullptr, std::memory_order_seq_cst);
  sleeper_deadline_.store(0, std::memory_order_seq_cst);
  leave_idle(p);
  const std::int64_t now = monotonic_now_ns();
  advance_wait_clock(now);  // sysmon may have slept meanwhile
  run_all_due(p, now);
  // Hand the role on if timers remain: we may be about to run goroutines.
  if (const std::int64_t next = earliest(); next != TimerHeap::kNever) wake_for(p, next);
}

void Timers::clear() noexcept {
  for (P* p : ps_) {
    MutexLock lock(p->timers.mu);
    p->timers.heap.clear(
        [](TimerNode* node) { node->owner.store(nullptr, std::memory_order_relaxed); });
    p->timers.next.store(TimerHeap::kNever, std::memory_order_relaxed);
  }
}

}  // namespace goro::detail

namespace goro {

void Ticker::check_period(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw std::invalid_argument("goro::Ticker: period must be positive");
}

void StopTimer::arm(Clock::time_point deadline, std::stop_source* target) {
  node_.when = std::min(detail::to_ns(deadline), detail::kLatestDeadline);
  node_.fire = &StopTimer::fire;
  target_ = target;
  detail::arm_timer(&node_);  // from here on it may fire
}

bool StopTimer::disarm() noexcept { return detail::disarm_timer(&node_); }

bool StopTimer::armed() const noexcept {
  // Acquire: pairs with the release store that ends a fire (run_due), so
  // a caller that sees false sees everything the fire did.
  return node_.owner.load(std::memory_order_acquire) != nullptr;
}

void StopTimer::fire(detail::TimerNode* node) noexcept {
  reinterpret_cast<StopTimer*>(node)->target_->request_stop();
}

}  // namespace goro
