// lib/timers.cpp
//
// Timers: per-P heaps, who runs them, and how an idle runtime wakes up on
// time (Go's time.go and the timer parts of findRunnable).
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
//      while its fire runs; it changes only under the owner's timer_mu.
//      Whoever owns a node disarms it before freeing it (destructors do),
//      so a node is never freed while it is armed or firing.
//   2. P.next_timer equals P.timers.earliest() whenever timer_mu is free.
//   3. A fire callback runs with the owner's timer_mu held, on a worker
//      thread, with a one-shot node already out of the heap (a periodic one
//      already re-armed).
//   4. No node's deadline is TimerHeap::kNever: deadlines saturate at
//      kLatestDeadline (goro/detail/timer.hpp), so a timer that never fires
//      still shows in next_timer (the deadlock detector sees it armed) and
//      the ticker re-arm cannot overflow.
//
// Who runs a due timer
//   1. Its owner, at the top of each trip through the scheduler
//      (check_timers: one relaxed load when the P has no timers, a clock
//      read when it has).
//   2. An idle P in the last steal round, when the owner is busy with a
//      goroutine that does not give the P back.
//   3. The timer sleeper, when its deadline passes: it runs every P's due
//      timers.
//
// Waking on time (the timer sleeper handshake)
//   Arming: a. push the node and store the owner's next_timer (seq_cst);
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
#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <type_traits>

#include "goro/time.hpp"
#include "runtime_state.hpp"
#include "scheduler.hpp"

namespace goro::detail {

static_assert(std::is_standard_layout_v<SleepAwaiter>, "fire() casts the node back to its owner");
static_assert(std::is_standard_layout_v<ChannelTimer>, "fire() casts the node back to its owner");

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
  p->scheduler.arm_timer(*p, node);
}

bool disarm_timer(TimerNode* node) noexcept {
  // Load the owner once: the node may fire (and its owner become null) at
  // any moment. The P itself outlives the node's goroutine.
  P* owner = static_cast<P*>(node->owner.load(std::memory_order_acquire));
  if (owner == nullptr) return false;
  return owner->scheduler.disarm_timer(*owner, node);
}

void ready_from_timer(G* g) noexcept {
  P* p = tls_p;
  p->scheduler.ready(*p, g);
}

void Scheduler::ready(P& p, G* g) noexcept {
  // The tail, not runnext: timers that come due together wake their
  // goroutines in deadline order (runnext would run the last one first).
  runq_put(p, entry_for(g, /*claim=*/false), Placement::kTail);
  notify_work_available(&p);
}

void Scheduler::arm_timer(P& p, TimerNode* node) {
  // Read before the lock is released: from then on the node may fire, and
  // its goroutine run on and reuse the memory.
  const std::int64_t when = node->when;
  bool new_earliest;
  {
    MutexLock lock(p.timer_mu);
    p.timers.push(node);
    node->owner.store(&p, std::memory_order_relaxed);  // under the lock (invariant 1)
    new_earliest = p.timers.top() == node;
    // Step a (seq_cst: the Dekker pair with the sleeper's steps c-d).
    p.next_timer.store(p.timers.earliest(), std::memory_order_seq_cst);
  }
  if (new_earliest) wake_for_timer(when);
}

bool Scheduler::disarm_timer(P& owner_p, TimerNode* node) noexcept {
  P* owner = &owner_p;
  MutexLock lock(owner->timer_mu);
  // It may have fired (or been disarmed) between our load and the lock.
  if (node->owner.load(std::memory_order_relaxed) != owner) return false;
  owner->timers.remove(node);
  node->owner.store(nullptr, std::memory_order_relaxed);
  // Relaxed: a later (or no) deadline never needs anyone woken.
  owner->next_timer.store(owner->timers.earliest(), std::memory_order_relaxed);
  return true;
}

bool Scheduler::run_timers(P& victim, P& p, std::int64_t now) noexcept {
  bool fired = false;
  MutexLock lock(victim.timer_mu);
  while (TimerNode* node = victim.timers.top()) {
    if (node->when > now) break;
    if (node->period > 0) {
      // A ticker: next deadline one period on, skipping ticks already
      // missed (Go's tickers do not catch up). Saturating: a period too
      // long to add never fires again.
      std::int64_t next = deadline_after(node->when, node->period);
      if (next <= now) {
        next = deadline_after(next, ((now - next) / node->period + 1) * node->period);
      }
      victim.timers.update(node, next);
    } else {
      victim.timers.pop();
    }
    // Relaxed: firing only makes the earliest deadline later; nobody needs
    // waking for that (invariant 2 holds once the lock is released).
    victim.next_timer.store(victim.timers.earliest(), std::memory_order_relaxed);
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

void Scheduler::check_timers(P& p) noexcept {
  // Relaxed: the owner re-reads under the lock in run_timers; a stale
  // value only delays a timer to the next schedule.
  const std::int64_t next = p.next_timer.load(std::memory_order_relaxed);
  if (next == TimerHeap::kNever) return;
  const std::int64_t now = monotonic_now_ns();
  if (next <= now) run_timers(p, p, now);
}

bool Scheduler::run_all_due_timers(P& p, std::int64_t now) noexcept {
  bool fired = false;
  for (auto& victim : ps_) {
    if (victim->next_timer.load(std::memory_order_relaxed) <= now) {  // re-read under its lock
      fired = run_timers(*victim, p, now) || fired;
    }
  }
  return fired;
}

std::int64_t Scheduler::earliest_timer() const noexcept {
  std::int64_t earliest = TimerHeap::kNever;
  for (const auto& p : ps_) {
    // seq_cst: step d of the handshake.
    const std::int64_t next = p->next_timer.load(std::memory_order_seq_cst);
    if (next < earliest) earliest = next;
  }
  return earliest;
}

void Scheduler::wake_for_timer(std::int64_t when) noexcept {
  // Step b.
  const std::int64_t deadline = timer_sleeper_deadline_.load(std::memory_order_seq_cst);
  if (deadline != 0) {
    if (deadline <= when) return;  // the sleeper wakes in time anyway
    if (P* sleeper = timer_sleeper_.load(std::memory_order_seq_cst)) sleeper->poller->wake();
    // A sleeper not yet published re-reads the deadlines (step d).
    return;
  }
  // Nobody sleeps on a deadline: wake an idle worker to take the role.
  P* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    // As wakep: it looks for work, then sleeps again, on the deadline.
    if (!idle_.empty()) woken = claim_idle_locked(idle_.back());
  }
  if (woken != nullptr) woken->poller->wake();
}

void Scheduler::leave_idle(P& p) noexcept {
  MutexLock lock(sched_mu_);
  if (!p.idle) return;
  idle_.erase(std::find(idle_.begin(), idle_.end(), &p));
  p.idle = false;
  npidle_.fetch_sub(1, std::memory_order_seq_cst);  // as every npidle change (handshake)
  note_busy();
}

void Scheduler::idle_sleep(P& p) noexcept {
  bump(p.stats.parks);
  const std::int64_t deadline = earliest_timer();
  std::int64_t none = 0;
  // seq_cst CAS: step c of the handshake.
  if (deadline == TimerHeap::kNever ||
      !timer_sleeper_deadline_.compare_exchange_strong(none, deadline, std::memory_order_seq_cst)) {
    // No timers, or another worker already sleeps until the earliest one.
    p.poller->wait(Poller::kNever);
    advance_wait_clock(monotonic_now_ns());  // sysmon may have slept meanwhile
    leave_idle(p);  // an I/O completion or a spurious return leaves us on the idle list
    return;
  }
  // Step c: we are the timer sleeper.
  timer_sleeper_.store(&p, std::memory_order_seq_cst);
  // Step d: something armed meanwhile may be earlier still.
  if (earliest_timer() >= deadline) p.poller->wait(deadline);
  timer_sleeper_.store(nullptr, std::memory_order_seq_cst);
  timer_sleeper_deadline_.store(0, std::memory_order_seq_cst);
  leave_idle(p);
  const std::int64_t now = monotonic_now_ns();
  advance_wait_clock(now);  // sysmon may have slept meanwhile
  run_all_due_timers(p, now);
  // Hand the role on if timers remain: we may be about to run goroutines.
  if (const std::int64_t next = earliest_timer(); next != TimerHeap::kNever) wake_for_timer(next);
}

}  // namespace goro::detail

namespace goro {

void Ticker::check_period(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw std::invalid_argument("goro::Ticker: period must be positive");
}

}  // namespace goro
