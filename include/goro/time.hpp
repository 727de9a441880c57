// goro/time.hpp
//
// Defines: goro::sleep, goro::sleep_until, goro::after (Go's time.After: a
// channel usable in select) and its type goro::AfterChan, goro::Timer and
// goro::Ticker: waiting for time to pass without blocking a worker thread.
//
// Time is std::chrono::steady_clock. Timers never fire early; how late they
// fire depends on how busy the runtime is (an idle runtime wakes within
// microseconds: workers sleep with nanosecond timeouts and no timer slack,
// unlike Go's epoll path, which rounds sleeps under 1 ms up to 1 ms).
#ifndef GORO_TIME_HPP_
#define GORO_TIME_HPP_

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/frame_allocator.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/detail/timer.hpp"

namespace goro {

using Clock = std::chrono::steady_clock;

namespace detail {

inline std::int64_t to_ns(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline Clock::time_point from_ns(std::int64_t ns) noexcept {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// Parks the awaiting goroutine until `when`.
class SleepAwaiter {
 public:
  explicit SleepAwaiter(std::int64_t when) noexcept { node_.when = when; }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  // Waits, if need be, for the fire that resumed us to finish with the node
  // (one relaxed load when it has).
  ~SleepAwaiter() { disarm_timer(&node_); }

  bool await_ready() const noexcept { return node_.when <= monotonic_now_ns(); }
  void await_suspend(std::coroutine_handle<> awaiting) {
    g_ = require_goroutine("goro::sleep");
    g_->wait_reason = "sleep";
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
};

// The channel-like half of Timer and Ticker: a fire either resumes the
// goroutine waiting in wait() or is kept (at most one) for the next wait().
class TimerSignal {
 public:
  // 0: nothing pending, nobody waiting; 1: a fire is pending; otherwise
  // the waiting G.
  static constexpr std::uintptr_t kPending = 1;

  void fire() noexcept {
    std::uintptr_t state = state_.load(std::memory_order_acquire);
    for (;;) {
      if (state == kPending) return;  // already pending: drop (as a full channel)
      if (state == 0) {
        // Release: a wait() that acquires the pending mark sees the fire's time.
        if (state_.compare_exchange_weak(state, kPending, std::memory_order_acq_rel)) return;
        continue;
      }
      // Acq_rel: acquire the waiter's resume point, release to it.
      if (state_.compare_exchange_weak(state, 0, std::memory_order_acq_rel)) {
        ready_from_timer(reinterpret_cast<G*>(state));
        return;
      }
    }
  }

  // Discards a pending fire.
  void clear() noexcept {
    std::uintptr_t pending = kPending;
    state_.compare_exchange_strong(pending, 0, std::memory_order_acq_rel);
  }

  class Awaiter {
   public:
    explicit Awaiter(TimerSignal& signal) noexcept : signal_(signal) {}
    bool await_ready() noexcept {
      std::uintptr_t pending = kPending;
      return signal_.state_.compare_exchange_strong(pending, 0, std::memory_order_acq_rel);
    }
    bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
      G* g = current_goroutine();
      g->wait_reason = "timer wait";
      g->resume = awaiting;
      std::uintptr_t state = 0;
      // Release: publishes g->resume to the firing thread.
      if (signal_.state_.compare_exchange_strong(state, reinterpret_cast<std::uintptr_t>(g),
                                                 std::memory_order_acq_rel)) {
        return true;  // parked until the fire
      }
      // A fire is pending: consume it and continue.
      signal_.state_.store(0, std::memory_order_release);
      return false;
    }
    void await_resume() const noexcept {}

   private:
    TimerSignal& signal_;
  };

 private:
  std::atomic<std::uintptr_t> state_{0};
};

}  // namespace detail

// `co_await goro::sleep(d)` parks the goroutine for at least `d` (a
// non-positive d yields nothing and returns at once). Gives the deadline.
// Must be awaited in a goroutine.
[[nodiscard]] inline detail::SleepAwaiter sleep(std::chrono::nanoseconds d) noexcept {
  return detail::SleepAwaiter(detail::monotonic_now_ns() + d.count());
}

// `co_await goro::sleep_until(t)` parks the goroutine until `t` has passed.
[[nodiscard]] inline detail::SleepAwaiter sleep_until(Clock::time_point t) noexcept {
  return detail::SleepAwaiter(detail::to_ns(t));
}

namespace detail {

// goro::after's timer: a heap node that sends the time into a channel, kept
// as the channel's attachment (chan_core.hpp) so that it lives exactly as
// long as the channel: the last handle's release disarms and frees it, and
// an after() that nobody receives from leaves nothing behind (Go 1.23's
// collectable timers). Standard-layout: the node's address is the object's.
struct AfterTimer {
  TimerNode node;  // first member: fire() casts back
  ChanAttachment attachment;
  // Not a reference (the channel owns us): valid while the node is armed or
  // firing, because the channel's last release disarms the node first.
  ChanState<Clock::time_point>* chan = nullptr;

  // Runs on a worker with the owner's timer lock held: sends the time into
  // the empty one-slot buffer (never blocks: this is the only send) and
  // wakes a receiver parked on it, if any.
  static void fire(TimerNode* node) noexcept {
    ChanState<Clock::time_point>* chan = reinterpret_cast<AfterTimer*>(node)->chan;
    Clock::time_point now = Clock::now();
    G* to_wake = nullptr;
    chan->lock.lock();
    chan->send_locked(now, &to_wake);
    chan->lock.unlock();
    if (to_wake != nullptr) ready_from_timer(to_wake);
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

// What `co_await goro::after(d)` does: receive from the channel, giving the
// time it carried.
class AfterAwaiter : public RecvAwaiter<Clock::time_point, false> {
 public:
  using RecvAwaiter::RecvAwaiter;
  Clock::time_point await_resume() noexcept {
    // Engaged: nobody closes an after() channel.
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

  [[nodiscard]] detail::AfterAwaiter operator co_await() const noexcept {
    return detail::AfterAwaiter(state());
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
[[nodiscard]] inline AfterChan after(std::chrono::nanoseconds d) {
  Chan<Clock::time_point> chan = make_chan<Clock::time_point>(1);
  if (d.count() <= 0) {
    chan.try_send(Clock::now());
    return AfterChan(std::move(chan));
  }
  void* memory = detail::allocate_frame(sizeof(detail::AfterTimer));
  auto* timer = ::new (memory) detail::AfterTimer{};
  timer->node.when = detail::monotonic_now_ns() + d.count();
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

// What Timer and Ticker share: a heap node and the channel-like signal its
// fires go to. Standard-layout (all data here, none in the derived
// classes), so the node's address is the object's and fire() casts back.
class SignalTimer {
 public:
  SignalTimer(const SignalTimer&) = delete;
  SignalTimer& operator=(const SignalTimer&) = delete;

 protected:
  SignalTimer() = default;
  ~SignalTimer() { disarm_timer(&node_); }

  // Arms the node: first deadline `d` from now, then every `period` (0:
  // once).
  void arm(std::chrono::nanoseconds d, std::int64_t period) {
    node_.when = monotonic_now_ns() + d.count();
    node_.period = period;
    node_.fire = &SignalTimer::fire;
    arm_timer(&node_);
  }
  // Disarms and discards an unconsumed fire; true if it was armed.
  bool disarm() noexcept {
    const bool was_armed = disarm_timer(&node_);
    signal_.clear();
    return was_armed;
  }
  [[nodiscard]] TimerSignal::Awaiter next_fire() noexcept { return TimerSignal::Awaiter(signal_); }

 private:
  static void fire(TimerNode* node) noexcept {
    reinterpret_cast<SignalTimer*>(node)->signal_.fire();
  }

  TimerNode node_;  // first member: fire() casts back
  TimerSignal signal_;
};

}  // namespace detail

// Timer: fires once, `d` after it is started, like Go's time.Timer.
//
//  * `co_await timer.wait()` parks until the timer fires (at once if it
//    already has and nobody consumed it). Like receiving from Go's t.C.
//  * stop() prevents the fire; returns true if the timer was running.
//  * reset(d) restarts it to fire `d` from now; returns true if it was
//    running. stop and reset discard a fire not yet consumed (Go 1.23).
//  * Must be created and restarted in a goroutine; the methods must not be
//    called concurrently with each other (firing happens concurrently with
//    them and is handled). Destroying a running timer stops it.
class Timer : private detail::SignalTimer {
 public:
  explicit Timer(std::chrono::nanoseconds d) { arm(d, 0); }

  [[nodiscard]] detail::TimerSignal::Awaiter wait() noexcept { return next_fire(); }
  bool stop() noexcept { return disarm(); }
  bool reset(std::chrono::nanoseconds d) {
    const bool was_running = disarm();
    arm(d, 0);
    return was_running;
  }
};

// Ticker: fires every `period`, like Go's time.Ticker. A ticker whose
// waiter falls behind keeps at most one tick pending and skips the rest.
//
//  * `co_await ticker.tick()` parks until the next tick.
//  * stop() stops it; reset(period) restarts it with a new period.
//  * period must be positive (std::invalid_argument otherwise). The same
//    threading rules as Timer.
class Ticker : private detail::SignalTimer {
 public:
  explicit Ticker(std::chrono::nanoseconds period) { start(period); }

  [[nodiscard]] detail::TimerSignal::Awaiter tick() noexcept { return next_fire(); }
  void stop() noexcept { disarm(); }
  void reset(std::chrono::nanoseconds period) {
    disarm();
    start(period);
  }

 private:
  void start(std::chrono::nanoseconds period);
};

}  // namespace goro

#endif  // GORO_TIME_HPP_
