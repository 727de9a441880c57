// goro/time.hpp
//
// Defines: goro::sleep, goro::sleep_until (plain, and ending early when a
// goro::Context is cancelled), goro::after (Go's time.After: a
// channel usable in select) and its type goro::AfterChan, goro::Timer and
// goro::Ticker (each with a channel, c(), as Go 1.23's): waiting for time
// to pass without blocking a worker thread.
//
// Time is std::chrono::steady_clock. Durations too long to add to now
// saturate to a deadline that never comes (goro/detail/timer.hpp), never
// wrapping into the past. Timers never fire early; how late they
// fire depends on how busy the runtime is (an idle runtime wakes within
// microseconds: workers sleep with nanosecond timeouts and no timer slack,
// unlike Go's epoll path, which rounds sleeps under 1 ms up to 1 ms).
#ifndef GORO_TIME_HPP_
#define GORO_TIME_HPP_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "goro/chan.hpp"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/frame_allocator.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/detail/timer.hpp"
#include "goro/task.hpp"

namespace goro {

namespace detail {

// Parks the awaiting goroutine until `when`. A sleep made to park does so
// even when its deadline has passed by the time it is awaited: it then
// comes back through the timer heap at the P's next trip through the
// scheduler, behind the goroutines already queued, so that a loop of
// short sleeps cannot starve the goroutine it waits for (Go's time.Sleep
// parks for any positive duration).
class SleepAwaiter {
 public:
  SleepAwaiter(std::int64_t when, bool parks) noexcept : parks_(parks) { node_.when = when; }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  // Waits, if need be, for the fire that resumed us to finish with the node
  // (one relaxed load when it has).
  ~SleepAwaiter() { disarm_timer(&node_); }

  bool await_ready() const noexcept { return !parks_; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    g_ = require_goroutine("goro::sleep");
    note_wait(g_, "sleep");
    g_->resume = awaiting;
    node_.fire = &SleepAwaiter::fire;
    arm_timer(&node_);  // after this the goroutine may resume at any moment
  }
  Clock::time_point await_resume() const noexcept { return from_ns(node_.when); }

 private:
  static void fire(TimerNode* node) noexcept {
    // The node is the awaiter's first member.
    ready_from_timer(reinterpret_cast<SleepAwaiter*>(node)->g_);
  }

  TimerNode node_;  // first member: fire() casts back
  G* g_ = nullptr;
  bool parks_;
};

// What a timer's fire does to its channel (goro::after, Timer, Ticker):
// sends the time if a receiver waits or the one-slot buffer is free, and
// otherwise drops it (a Ticker's receiver that is behind keeps one tick).
// Runs on a worker with the owner's timer lock held; never blocks.
inline void send_fire_time(ChanState<Clock::time_point>* chan) noexcept {
  Clock::time_point now = Clock::now();
  G* to_wake = nullptr;
  chan->lock.lock();
  (void)chan->send_locked(now, &to_wake);  // kWouldBlock: full, dropped
  chan->lock.unlock();
  if (to_wake != nullptr) ready_from_timer(to_wake);
}

}  // namespace detail

// `co_await goro::sleep(d)` parks the goroutine for at least `d`. Gives
// the deadline. A positive d always parks, however short (even when the
// deadline has passed by the time the sleep is awaited, the goroutine goes
// behind the goroutines already runnable), so `while (!flag) co_await
// sleep(1ns);` lets the goroutine that sets the flag run, as in Go. A
// non-positive d returns at once without yielding. A d too long to add to
// now (near nanoseconds::max()) never ends: the deadline saturates at
// "never" instead of overflowing. Must be awaited in a goroutine.
[[nodiscard("co_await it: nothing sleeps until the sleep is awaited")]] inline detail::SleepAwaiter
sleep(std::chrono::nanoseconds d) noexcept {
  return detail::SleepAwaiter(detail::deadline_after(detail::monotonic_now_ns(), d.count()),
                              /*parks=*/d.count() > 0);
}

// `co_await goro::sleep_until(t)` parks the goroutine until `t` has passed.
// If `t` is still ahead when sleep_until is called, the await parks (as a
// positive sleep); if it has passed already, the await returns at once.
// Time points beyond the latest deadline (time_point::max()) never end.
[[nodiscard("co_await it: nothing sleeps until the sleep is awaited")]] inline detail::SleepAwaiter
sleep_until(Clock::time_point t) noexcept {
  const std::int64_t when = std::min(detail::to_ns(t), detail::kLatestDeadline);
  return detail::SleepAwaiter(when, /*parks=*/when > detail::monotonic_now_ns());
}

// `co_await goro::sleep(d, ctx)`: sleeps for `d` unless `ctx` is cancelled
// first. Gives OK when the time has passed, ctx.err() when the context was
// (or already is) cancelled. As the plain sleep, a positive `d` always
// parks (gives the P up at least once), even if `d` has passed by the time
// the task is awaited. Must be awaited from a goroutine. Takes the context
// by value: the task keeps it alive.
[[nodiscard(
    "co_await it: nothing sleeps until the sleep is awaited")]] GORO_CORO_WRAPPER Task<absl::Status>
sleep(std::chrono::nanoseconds d, Context ctx);

// `co_await goro::sleep_until(t, ctx)`: as sleep(d, ctx), until `t`; parks
// if `t` was still ahead when sleep_until was called.
[[nodiscard(
    "co_await it: nothing sleeps until the sleep is awaited")]] GORO_CORO_WRAPPER Task<absl::Status>
sleep_until(Clock::time_point t, Context ctx);

namespace detail {

// goro::after's timer: a heap node that sends the time into a channel, kept
// as the channel's attachment (chan_core.hpp) so that it lives exactly as
// long as the channel: the last handle's release disarms and frees it, and
// an after() that nobody receives from leaves nothing behind (Go 1.23's
// collectable timers): an after(1h) in a select loop that never times out
// must not keep an hour's worth of timers armed. Rejected: a timer that
// lives until it fires, as Go's did before 1.23. Standard-layout: the
// node's address is the object's.
struct AfterTimer {
  TimerNode node;  // first member: fire() casts back
  ChanAttachment attachment;
  // Not a reference (the channel owns us): valid while the node is armed or
  // firing, because the channel's last release disarms the node first.
  ChanState<Clock::time_point>* chan = nullptr;

  // Runs on a worker with the owner's timer lock held: sends the time into
  // the empty one-slot buffer (this is the only send: it always lands) or
  // to a receiver parked on it.
  static void fire(TimerNode* node) noexcept {
    send_fire_time(reinterpret_cast<AfterTimer*>(node)->chan);
  }

  // The channel's last handle is gone: disarm (waiting for a fire in
  // progress) and free.
  static void detach(ChanAttachment* attachment) noexcept {
    auto* self = reinterpret_cast<AfterTimer*>(reinterpret_cast<unsigned char*>(attachment) -
                                               offsetof(AfterTimer, attachment));
    disarm_timer(&self->node);
    self->~AfterTimer();
    free_frame(self, sizeof(AfterTimer));
  }
};

// The channel handle a TimeRecvAwaiter holds. A base listed before the
// receive, so that it is released after the receive's own teardown.
struct TimeChannelHold {
  RecvChan<Clock::time_point> channel;
};

// What `co_await goro::after(d)`, `timer.wait()` and `ticker.tick()` do:
// receive from a timer's channel, giving the time it carried. For a Timer
// or Ticker it holds a handle of its own, so a timer destroyed while
// another goroutine waits leaves that goroutine parked on a live channel
// (as in Go: nothing more arrives), never on freed memory.
class TimeRecvAwaiter : private TimeChannelHold, public RecvAwaiter<Clock::time_point, false> {
 public:
  explicit TimeRecvAwaiter(RecvChan<Clock::time_point> handle) noexcept
      : TimeChannelHold{std::move(handle)}, RecvAwaiter(channel.state()) {}
  // Borrows the channel of a handle that outlives the await (an awaited
  // AfterChan lives to the end of its co_await expression).
  explicit TimeRecvAwaiter(ChanState<Clock::time_point>* borrowed) noexcept
      : RecvAwaiter(borrowed) {}
  Clock::time_point await_resume() noexcept {
    // Engaged: nobody closes a timer's channel.
    return *RecvAwaiter::await_resume();
  }
};

}  // namespace detail

// What goro::after(d) returns: a RecvChan<Clock::time_point> (it converts to
// one, for a select case or to be stored) that can also be awaited directly.
//
//  * `co_await goro::after(d)` receives from it: parks until the time has
//    come, gives the time the timer fired. A second co_await on the same
//    channel blocks forever (the one value is gone), as in Go.
//  * Copies and RecvChan views share the channel; the timer lives as long
//    as any of them does, and is disarmed and freed with the last one.
class AfterChan : public RecvChan<Clock::time_point> {
 public:
  AfterChan() noexcept = default;

  [[nodiscard("co_await it: nothing is received until it is awaited")]] detail::TimeRecvAwaiter
  operator co_await() const noexcept {
    return detail::TimeRecvAwaiter(state());
  }

 private:
  friend AfterChan after(std::chrono::nanoseconds d);
  explicit AfterChan(Chan<Clock::time_point>&& chan) noexcept
      : RecvChan<Clock::time_point>(std::move(chan)) {}
};

// Go's time.After: a channel (buffered, capacity 1) that receives the time
// once `d` has passed, never earlier. Usable as a select case:
//
//   auto r = co_await goro::select(goro::recv_from(goro::after(100ms)),
//                                  goro::recv_from(results));
//   if (r.index() == 0) /* timed out */;
//
// Costs two small allocations from the frame allocator and a timer insert.
// Nothing leaks when nobody receives: the timer goes with the last handle.
// With d <= 0 the value is in the channel at once (no timer); otherwise it
// must be called from a goroutine (std::logic_error otherwise, as sleep).
// Handles must not outlive the runtime that armed the timer.
[[nodiscard(
    "co_await it or receive from it: dropping the channel drops its timer")]] inline AfterChan
after(std::chrono::nanoseconds d) {
  Chan<Clock::time_point> chan = make_chan<Clock::time_point>(1);
  if (d.count() <= 0) {
    chan.try_send(Clock::now());
    return AfterChan(std::move(chan));
  }
  void* memory = detail::allocate_frame(sizeof(detail::AfterTimer));
  auto* timer = ::new (memory) detail::AfterTimer{};
  timer->node.when = detail::deadline_after(detail::monotonic_now_ns(), d.count());
  timer->node.fire = &detail::AfterTimer::fire;
  timer->attachment.detach = &detail::AfterTimer::detach;
  timer->chan = chan.state();
  try {
    detail::arm_timer(&timer->node);
  } catch (...) {
    timer->~AfterTimer();
    detail::free_frame(memory, sizeof(detail::AfterTimer));
    throw;
  }
  // Before the handle is shared; the fire only touches the buffer.
  chan.state()->attachment = &timer->attachment;
  return AfterChan(std::move(chan));
}

namespace detail {

// A RecvChan made from a channel pointer and a reference already taken on
// it (RecvChan's adopting constructor is for its own family only).
class AdoptedRecvChan : public RecvChan<Clock::time_point> {
 public:
  explicit AdoptedRecvChan(ChanState<Clock::time_point>* state) noexcept : RecvChan(state) {}
};

// What Timer and Ticker share: a heap node and the channel its fires go to
// (capacity 1, as goro::after's). Standard-layout (all data here, none in
// the derived classes), so the node's address is the object's and fire()
// casts back.
//
// Go 1.23's timer channels, built on an ordinary channel:
//   * a fire sends the time if a receiver waits (any number may: they are
//     the channel's FIFO receive queue, select cases included) or the slot
//     is free, and otherwise is dropped: a Ticker's slow receiver finds one
//     tick waiting and the rest skipped;
//   * stop and reset disarm the node (waiting for a fire in progress) and
//     then empty the slot under the channel lock, so no value from before
//     them is received after them;
//   * "was the timer pending" (stop's and reset's result) counts a fire
//     still in the slot: from the receivers' side that fire has not
//     happened yet, and its discarding is what stop prevented.
// The channel is made on first need, by c() (wait(), tick()) or by the
// first fire, whichever comes first: a timer that is stopped before it
// fires and never received from (a deadline that was met) costs no
// channel. Both parties publish with a CAS on `channel_`; the loser frees
// its own. The Timer holds one reference; handles from c() hold theirs and
// may outlive it (nothing is sent to them afterwards). The node lives
// here, not in the channel: the destructor disarms it.
class ChannelTimer {
 public:
  ChannelTimer(const ChannelTimer&) = delete;
  ChannelTimer& operator=(const ChannelTimer&) = delete;

 protected:
  ChannelTimer() = default;
  ~ChannelTimer() {
    disarm_timer(&node_);
    // Relaxed: the disarm ordered any fire's publication before us, and
    // c() racing the destructor is outside the contract.
    if (ChanState<Clock::time_point>* chan = channel_.load(std::memory_order_relaxed)) {
      chan->release();
    }
  }

  // Arms the node: first deadline `d` from now (saturated), then every
  // `period` (0: once).
  void arm(std::chrono::nanoseconds d, std::int64_t period) {
    node_.when = deadline_after(monotonic_now_ns(), d.count());
    node_.period = period;
    node_.fire = &ChannelTimer::fire;
    arm_timer(&node_);
  }
  // Disarms the node and discards a fire nobody received. True if either
  // was there: the timer was pending as its receivers see it.
  bool disarm() noexcept {
    const bool was_armed = disarm_timer(&node_);
    // After the disarm: no fire is in progress and none will come, so the
    // slot is final once emptied.
    const bool discarded = discard_unreceived();
    return was_armed || discarded;
  }
  [[nodiscard]] RecvChan<Clock::time_point> channel() const {
    ChanState<Clock::time_point>* chan = channel_state();
    chan->add_ref();  // the handle's own reference
    return AdoptedRecvChan(chan);
  }
  [[nodiscard]] TimeRecvAwaiter receive() const { return TimeRecvAwaiter(channel()); }

 private:
  // The channel, made now if nobody has made it yet. Throws std::bad_alloc.
  ChanState<Clock::time_point>* channel_state() const {
    // Acquire: pairs with the publishing CAS, so the channel's
    // initialisation is visible.
    ChanState<Clock::time_point>* chan = channel_.load(std::memory_order_acquire);
    if (chan != nullptr) return chan;
    ChanState<Clock::time_point>* fresh = ChanState<Clock::time_point>::create(1);
    // Acq_rel: release publishes `fresh`; acquire, on failure, sees the
    // winner's.
    if (channel_.compare_exchange_strong(chan, fresh, std::memory_order_acq_rel)) return fresh;
    fresh->release();  // the other party won: ours was never shared
    return chan;
  }

  // A fire that finds no channel makes it: allocation failure here, on a
  // worker with no caller to throw to, ends the process (noexcept), as
  // running out of memory anywhere in the scheduler does.
  static void fire(TimerNode* node) noexcept {
    send_fire_time(reinterpret_cast<ChannelTimer*>(node)->channel_state());
  }
  // Empties the slot; true if it held a fire. Called after the disarm.
  bool discard_unreceived() noexcept {
    // Relaxed is enough for both loads: every fire (the channel's making
    // and its send included) happens-before this point (it ran under the
    // owner's timer lock, which the disarm took or whose release of the
    // owner it acquired). A slot filled by a fire reads 1 unless a
    // receiver has emptied it since, and nothing else fills it.
    ChanState<Clock::time_point>* chan = channel_.load(std::memory_order_relaxed);
    if (chan == nullptr || chan->count.load(std::memory_order_relaxed) == 0) return false;
    std::optional<Clock::time_point> stale;
    G* to_wake = nullptr;  // stays null: nobody ever waits to send
    chan->lock.lock();
    (void)chan->recv_locked(stale, &to_wake);
    chan->lock.unlock();
    return stale.has_value();
  }

  TimerNode node_;  // first member: fire() casts back
  // Null until first needed; then owns one reference.
  mutable std::atomic<ChanState<Clock::time_point>*> channel_{nullptr};
};

}  // namespace detail

// Timer: fires once, `d` after it is started, like Go's time.Timer, with
// Go 1.23's channel semantics.
//
//  * c() is a handle to the timer's channel (Go's t.C; made on first use,
//    so it may throw std::bad_alloc): the fire sends the time to it.
//    Any number of goroutines may receive from it, directly or in a select
//    (`goro::recv_from(timer.c())`); one fire reaches exactly one of them,
//    the others keep waiting (for a reset's fire). The channel has one
//    slot: a fire nobody waits for stays there until received, stopped or
//    reset (c().len() is 1 then, where Go 1.23 reports 0). Copies of the
//    handle may outlive the timer (nothing more arrives then).
//  * `co_await timer.wait()` receives from c(): parks until the fire, or
//    returns at once with one already in the slot. Gives the fire's time.
//  * stop() prevents the fire, or discards it if it happened and nobody
//    received it. Returns true exactly then (the timer was running, or its
//    fire was discarded); false if the fire was received or the timer was
//    already stopped. After stop() no value from before it is received,
//    so `if (!t.stop()) co_await t.wait();` is never needed (and would
//    block: the value is gone).
//  * reset(d) does what stop() does, returns the same, and then starts the
//    timer again to fire `d` from now.
//  * d <= 0 fires at once; a d too long to add to now never fires.
//  * Must be created and reset in a goroutine (std::logic_error
//    otherwise). stop, reset and the destructor must not run concurrently
//    with each other; receiving from c() may happen on any goroutine at any
//    time (fires and receives race stop and reset safely). Destroying a
//    running timer stops it.
class Timer : private detail::ChannelTimer {
 public:
  explicit Timer(std::chrono::nanoseconds d) { arm(d, 0); }

  [[nodiscard("the timer's channel: receive from it")]] RecvChan<Clock::time_point> c() const {
    return channel();
  }
  [[nodiscard("co_await it: receives the fire")]] detail::TimeRecvAwaiter wait() const {
    return receive();
  }
  bool stop() noexcept { return disarm(); }
  bool reset(std::chrono::nanoseconds d) {
    const bool was_pending = disarm();
    arm(d, 0);
    return was_pending;
  }
};

// Ticker: fires every `period`, like Go's time.Ticker, with Go 1.23's
// channel semantics.
//
//  * c() is the ticker's channel; each tick goes to one receiver. A tick
//    nobody waits for stays in the one slot; later ticks are dropped until
//    it is received (a slow receiver skips ticks, it never gets a burst).
//  * `co_await ticker.tick()` receives from c(), giving the tick's time.
//  * stop() stops it and discards an unreceived tick; reset(period) does
//    the same and starts it again with the new period.
//  * period must be positive: the constructor and reset throw
//    std::invalid_argument otherwise, and reset then changes nothing (the
//    ticker keeps ticking). The same threading rules as Timer.
class Ticker : private detail::ChannelTimer {
 public:
  explicit Ticker(std::chrono::nanoseconds period) {
    check_period(period);
    arm(period, period.count());
  }

  [[nodiscard("the ticker's channel: receive from it")]] RecvChan<Clock::time_point> c() const {
    return channel();
  }
  [[nodiscard("co_await it: receives the next tick")]] detail::TimeRecvAwaiter tick() const {
    return receive();
  }
  void stop() noexcept { (void)disarm(); }
  void reset(std::chrono::nanoseconds period) {
    check_period(period);
    (void)disarm();
    arm(period, period.count());
  }

 private:
  // Throws std::invalid_argument unless period > 0.
  static void check_period(std::chrono::nanoseconds period);
};

}  // namespace goro

#endif  // GORO_TIME_HPP_
