// goro/detail/timer.hpp
//
// Defines: goro::detail::TimerNode (an entry of a P's timer heap, embedded
// in whatever waits: a sleeping goroutine's awaiter, a goro::Timer, a
// Ticker) and the scheduler entry points that arm and disarm one.
//
// A node lives in the heap of the P that armed it (Go's per-P timers). That
// P's worker runs it when it comes due, at its next trip through the
// scheduler; an idle P runs the timers of a P that is busy (a goroutine
// hogging it), as Go steals timers; and one idle worker sleeps until the
// earliest timer of all Ps, so an idle runtime still wakes on time.
//
// Deadlines saturate. Every "now + d" of the timers, contexts and I/O goes
// through the helpers below, so a duration near nanoseconds::max() gives a
// deadline of "never" instead of a signed overflow that wraps into the past
// and fires at once (Go's when() clamps the same way). A timer's saturated
// deadline is kLatestDeadline, one below the heap's "no timer" value: the
// timer stays armed and visible (a goroutine sleeping for ever is asleep,
// not deadlocked, as in Go) but the steady clock never reaches it. A time
// point saturates to time_point::max(), which I/O and contexts read as "no
// deadline".
#ifndef GORO_DETAIL_TIMER_HPP_
#define GORO_DETAIL_TIMER_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace goro::detail {

// The latest deadline a timer is armed with: what saturated deadlines
// become. One below std::int64_t's maximum, which the timer heap uses for
// "no timer at all".
inline constexpr std::int64_t kLatestDeadline = std::numeric_limits<std::int64_t>::max() - 1;

// a + b, clamped to std::int64_t's range instead of overflowing.
[[nodiscard]] constexpr std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return sum;
}

// The deadline of a timer armed at `from` (steady-clock nanoseconds) to
// fire `d` nanoseconds later: `from` itself when d <= 0 (due at once), and
// never later than kLatestDeadline (a duration too long to add never
// fires).
[[nodiscard]] constexpr std::int64_t deadline_after(std::int64_t from, std::int64_t d) noexcept {
  if (d <= 0) return from;
  const std::int64_t sum = saturating_add(from, d);
  return sum < kLatestDeadline ? sum : kLatestDeadline;
}

// t + d on the steady clock, clamped to the time points it can represent:
// time_point::max() ("no deadline" to I/O and contexts) when d is too long,
// time_point::min() when d is too far negative.
[[nodiscard]] constexpr std::chrono::steady_clock::time_point saturating_time_add(
    std::chrono::steady_clock::time_point t, std::chrono::nanoseconds d) noexcept {
  using Clock = std::chrono::steady_clock;
  static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>,
                "goro's timers count the steady clock in nanoseconds");
  return Clock::time_point(
      Clock::duration(saturating_add(t.time_since_epoch().count(), d.count())));
}

struct TimerNode {
  static constexpr std::uint32_t kNotInHeap = std::numeric_limits<std::uint32_t>::max();

  // Absolute deadline, in steady_clock nanoseconds since its epoch.
  std::int64_t when = 0;
  // Above zero: a ticker, re-armed `period` after each deadline (missed
  // deadlines are skipped, as Go's tickers do).
  std::int64_t period = 0;
  // Position in the owner's heap; kNotInHeap when not armed.
  std::uint32_t heap_index = kNotInHeap;
  // The P whose heap holds the node (opaque), nullptr when not armed.
  // Written under that P's timer lock; atomic because disarm reads it
  // before it can take the lock.
  std::atomic<void*> owner{nullptr};
  // Runs on a worker thread, with the owner's timer lock held, when the
  // deadline passes (a periodic node is already re-armed). It may make
  // goroutines runnable but must not arm or disarm timers. The node stays
  // valid until it returns: whatever embeds a node must disarm it before
  // freeing it, and disarming waits for a fire in progress.
  void (*fire)(TimerNode* node) = nullptr;

  [[nodiscard]] bool in_heap() const noexcept { return heap_index != kNotInHeap; }
};

// The steady clock in nanoseconds (the timers' time base).
[[nodiscard]] std::int64_t monotonic_now_ns() noexcept;

// Moves the wait clock (goroutine.hpp) to `now`, a monotonic_now_ns()
// reading.
void advance_wait_clock(std::int64_t now) noexcept;

// Arms `node` (not armed) in the current P's heap. Must be called from a
// goroutine; throws std::logic_error otherwise.
void arm_timer(TimerNode* node);

// Disarms `node`: returns true if it was armed (it will not fire), false if
// it had fired already or was never armed; a fire in progress is waited
// for. Safe from any thread, but not concurrently with another arm/disarm
// of the same node. Call it before freeing anything that embeds a node.
bool disarm_timer(TimerNode* node) noexcept;

// Makes goroutine `g` (parked) runnable on the current worker's P, at the
// tail of its queue (for use by fire callbacks).
struct G;
void ready_from_timer(G* g) noexcept;

}  // namespace goro::detail

#endif  // GORO_DETAIL_TIMER_HPP_
