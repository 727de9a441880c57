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
#ifndef GORO_DETAIL_TIMER_HPP_
#define GORO_DETAIL_TIMER_HPP_

#include <atomic>
#include <cstdint>
#include <limits>

namespace goro::detail {

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
