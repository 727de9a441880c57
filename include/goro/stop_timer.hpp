// goro/stop_timer.hpp
//
// Defines: goro::StopTimer, a re-armable timer that requests a stop on a
// std::stop_source when its deadline passes.
//
// What it is for. A deadline that outlives the operations it bounds: a
// socket's read deadline applies to every read until it is changed, so it
// is kept as one timer per socket instead of one per read (Go's netpoller
// keeps its deadline timers in the poll descriptor for the same reason).
// The operations take the source's token as their stop token; the timer
// firing stops every one of them at once, parked or about to park. A
// deadline pushed further out while the timer is armed can stay where it
// is: the owner lets the timer fire at the old deadline and re-arms it
// then, so that moving a deadline later costs no heap operation (Go's
// timers move later lazily the same way).
//
// Cost: one heap insert in the arming goroutine's P per arm, a heap
// remove per disarm of an armed timer; nothing per operation that shares
// the source. It allocates nothing.
//
// Rejected: a Context with a deadline (goro::with_deadline), whose stop
// token is also stopped by a timer: it cannot be re-armed, so each new
// deadline would be a new context (an allocation, a parent link) and a
// deadline could not stay lazily behind a later one.
#ifndef GORO_STOP_TIMER_HPP_
#define GORO_STOP_TIMER_HPP_

#include <stop_token>

#include "goro/clock.hpp"
#include "goro/detail/timer.hpp"

namespace goro {

// A timer that requests a stop on a std::stop_source when its deadline
// passes. Not armed on construction; armed by arm(), it fires once (then it
// is not armed again until the next arm()) or is disarmed.
//
// Thread safety: arm() and disarm() on one timer must not run concurrently
// with each other (the owner serialises them, for instance under its own
// mutex); armed() and deadline() may be read under the same serialisation,
// and armed() from any thread. The fire runs on one of the runtime's
// worker threads, with that P's timer lock held: the stop callbacks
// registered on the target's tokens run there too, so they must be brief
// and must not arm or disarm goro timers (goro::io's cancellation of a
// parked operation, the usual such callback, is both).
//
// Standard layout, the node first: the fire finds the timer from its node.
class StopTimer {
 public:
  StopTimer() noexcept = default;
  StopTimer(const StopTimer&) = delete;
  StopTimer& operator=(const StopTimer&) = delete;
  // Disarms the timer, waiting for a fire in progress: after it the timer
  // never touches its target again.
  ~StopTimer() { (void)disarm(); }

  // Arms the timer (which must not be armed) to request a stop on
  // `*target` once `deadline` has passed. A deadline already passed fires
  // soon: at this P's next trip through the scheduler, or at once on
  // another P's worker (possibly before arm() returns), never on this
  // thread inside arm().
  // `*target` must stay the same object, not assigned to or destroyed,
  // until the timer has fired or been disarmed. Must be called from a
  // goroutine (the timer lives in the heap of that goroutine's P); throws
  // std::logic_error otherwise.
  void arm(Clock::time_point deadline, std::stop_source* target);

  // Disarms the timer: true if it was armed (it will not fire), false if it
  // had fired or was not armed. Waits for a fire in progress.
  bool disarm() noexcept;

  // Whether the timer is armed or its fire is still running; false once
  // the fire has returned (acquire: what the fire did happens before).
  [[nodiscard]] bool armed() const noexcept;

  // The deadline of the latest arm().
  [[nodiscard]] Clock::time_point deadline() const noexcept { return detail::from_ns(node_.when); }

 private:
  static void fire(detail::TimerNode* node) noexcept;

  detail::TimerNode node_;  // first member: fire() casts the node back
  std::stop_source* target_ = nullptr;
};

}  // namespace goro

#endif  // GORO_STOP_TIMER_HPP_
