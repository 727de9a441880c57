// lib/timers.hpp
//
// Defines: goro::detail::TimerQueue (a P's timers) and Timers (a
// runtime's: every P's queue and the timer sleeper). The protocol, its
// invariants and who runs a due timer are at the top of timers.cpp.
#ifndef GORO_LIB_TIMERS_HPP_
#define GORO_LIB_TIMERS_HPP_

#include <atomic>
#include <cstdint>
#include <vector>

#include "goro/detail/timer.hpp"
#include "mutex.hpp"
#include "timer_heap.hpp"

namespace goro::detail {

struct P;

// Moves the wait clock (wait_clock_nanos, goro/detail/goroutine.hpp) to
// `now`, a monotonic_now_ns() reading. Called where the runtime reads the
// clock anyway or is off the hot path: each sysmon round, a worker waking
// from its idle sleep (idle_sleep), a runtime starting (Sysmon::start).
void advance_wait_clock(std::int64_t now) noexcept;

// The timers armed on one P. Any thread may take the lock: the owner runs
// due timers at each schedule, idle Ps run a busy P's due timers, and a
// timer is stopped from wherever its owner goroutine runs now.
struct TimerQueue {
  Mutex mu;
  TimerHeap heap ABSL_GUARDED_BY(mu);
  // heap.earliest(), readable without the lock: the owner checks it at
  // every schedule (no clock read when it is kNever), idle workers use it
  // to decide when to wake.
  std::atomic<std::int64_t> next{TimerHeap::kNever};

  // Whether a timer may be due at `now`, which is read (once) only when a
  // timer is armed and `now` is still 0. Relaxed: run_due re-reads under
  // the lock; a stale value only delays a timer to the next look.
  [[nodiscard]] bool maybe_due(std::int64_t& now) const noexcept {
    const std::int64_t earliest = next.load(std::memory_order_relaxed);
    if (earliest == TimerHeap::kNever) return false;
    if (now == 0) now = monotonic_now_ns();
    return earliest <= now;
  }
};

class Timers {
 public:
  Timers() = default;
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  // The runtime's Ps, once made.
  void adopt(std::vector<P*> ps) { ps_ = std::move(ps); }

  // Arms `node` in p's heap (p's worker).
  void arm(P& p, TimerNode* node);
  // Disarms `node` if it is still in `owner`'s heap (owner was loaded from
  // node->owner before the call). Any thread.
  static bool disarm(P& owner, TimerNode* node) noexcept;
  // Runs the due timers of `victim` (p itself, or a busy P) on the worker
  // of P `p`; returns whether any fired.
  static bool run_due(P& victim, P& p, std::int64_t now) noexcept;
  // Sleeps p's worker, idle, until it is woken or until the earliest timer
  // of any P (the timer sleeper handshake); then takes it off the idle
  // list, and, if it slept on a deadline, runs every P's due timers.
  void idle_sleep(P& p) noexcept;
  // After the workers exited: forgets every armed timer (its node lives in
  // a frame the sweep is about to destroy).
  void clear() noexcept;

 private:
  // Runs every P's due timers on p; returns whether any fired.
  bool run_all_due(P& p, std::int64_t now) noexcept;
  [[nodiscard]] std::int64_t earliest() const noexcept;
  // A timer earlier than every sleeping worker's deadline was armed.
  void wake_for(P& p, std::int64_t when) noexcept;

  std::vector<P*> ps_;
  // The deadline of the one idle worker that sleeps until the earliest
  // timer (0: none does; the others sleep without a deadline), and that
  // worker. Go's sched.pollUntil.
  alignas(64) std::atomic<std::int64_t> sleeper_deadline_{0};
  std::atomic<P*> sleeper_{nullptr};
};

}  // namespace goro::detail

#endif  // GORO_LIB_TIMERS_HPP_
