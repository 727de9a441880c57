// goro/detail/select_span.hpp
//
// Defines: goro::detail::SpanSelectAwaiter, the awaiter behind
// goro::select_recv and goro::select_send (goro/select.hpp): a select over
// a run-time list of channels of one element type, all receive cases or
// all send cases (Go's reflect.Select, as a fan-in loop uses it), with an
// optional default.
//
// It runs the algorithm of goro/select.hpp (steps 1-5 there, with the
// invariants of chan_core.hpp) and differs only where the number of cases
// is not known at compile time:
//
// Storage. Per case a waiter (Waiter, Go's sudog), a slot in the poll
// order and one in the lock order. They live inside the awaiter, that is in
// the goroutine's frame, with room for kInlineCases cases, so a select over
// up to that many channels allocates nothing: the two orders in plain
// arrays, written slot by slot and never initialised beforehand, the
// waiters in an absl::InlinedVector constructed only when the select parks.
// A longer list allocates each once per select, before any lock is taken
// (waiters are reserved up front and constructed only when the select
// parks, under the locks, where nothing may throw or allocate).
// A receive select has one destination, value_, shared by every case: only
// the party that wins the select (a poll with the locks held, or the waker
// that wins SelectState::done) writes it, so one slot is enough. A send
// select shares its one value the same way: whoever completes a case moves
// from it, and the others never touch it.
//
// Algorithm (the channels are read from the caller's span at every step)
//   1. Poll order: the indexes of the non-nil channels, shuffled
//      (Fisher-Yates over select_rand), so that every ready case is equally
//      likely to be tried first: a uniform choice among the ready cases, as
//      Go's. Lock order: their distinct channels sorted by address.
//   2. One non-nil channel and a default: the lock-free "would block" check
//      of that channel (chan_core.hpp) before any lock. Otherwise lock every
//      channel, try the cases in poll order; the first that can proceed
//      does; unlock, ready its partner, done. Nothing ready: with a default,
//      unlock and take it.
//   3. Park: one waiter per non-nil case on its channel's queue, all
//      pointing at one SelectState; then unlock the channels in reverse lock
//      order, the first one last (S1 below), and park.
//   4. A waker wins SelectState::done, as for the fixed form.
//   5. Resumed: lock every channel, withdraw the waiters of the losing
//      cases, unlock, and report the case whose waiter fired.
//
// Invariant
//   S1. From the moment the first waiter is linked until await_suspend
//       returns, this thread holds locks_[0], the lowest channel. The
//       resumed select (step 5) and the destructor of a parked select both
//       take every lock in order starting with locks_[0], so neither can
//       run, and the frame holding locks_ cannot be freed, until that last
//       unlock: the unlock loop may read locks_ from the frame. (The fixed
//       form copies its lock array to the stack instead; a run-time count
//       has no fixed-size stack copy.) After unlocking locks_[0] nothing of
//       the awaiter is touched.
//
// Memory orders. The awaiter holds no atomic of its own, and needs none:
//   * Its fields (orders, counts, waiters_, value_, parked_, fired_) are
//     written and read by the selecting goroutine, on whichever thread
//     runs it. A goroutine moves between threads only through a run queue
//     or a join state, whose release/acquire hand-overs order everything
//     it wrote before with everything it reads after.
//   * Other threads touch the select only while holding the lock of one of
//     its channels: a waker or close() unlinks a waiter, fills value_
//     through the waiter's elem, sets its success and claims state_.done
//     (chan_core.hpp, SelectState: relaxed, because the exchange runs under
//     a channel lock and only its atomicity matters), writes state_.fired
//     and readies the goroutine. Those writes reach the resumed select
//     through ready_goroutine's run-queue hand-over (release there,
//     acquire by the thread that resumes it), and step 5 takes every lock
//     again before reading the queues, so a waker still inside its own
//     critical section on another channel has finished with it first.
//   * select_rand's state is thread_local: one thread's only.
//
// Rejected alternatives
//   * A random start followed by a linear scan of the cases (no poll-order
//     array): a ready case that follows a run of non-ready ones would be
//     chosen as often as the whole run is long, unlike Go, whose choice is
//     uniform among the ready cases.
//   * One waiter and one destination per case (what the fixed form keeps,
//     since its cases differ in type): the cases of one span share the
//     element type and only the winner writes, so per-case values would
//     only make the frame bigger.
//   * absl::InlinedVector for the poll and lock orders too: its resize
//     value-initialises every slot, and each push_back or operator[]
//     tests where the elements live; on the path every select takes, with
//     a handful of cases, that cost as much as polling them.
//   * Reading the lock order from a stack copy while unlocking, as the
//     fixed form: it needs either a bound on the number of channels or an
//     allocation while every lock is held.
#ifndef GORO_DETAIL_SELECT_SPAN_HPP_
#define GORO_DETAIL_SELECT_SPAN_HPP_

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/fast_random.hpp"
#include "goro/detail/goroutine.hpp"

namespace goro::detail {

// 32 random bits for the poll order (fast_random.hpp). One state per
// thread, seeded with its own address so that threads draw different
// sequences.
inline std::uint32_t select_rand() noexcept {
  constinit thread_local std::uint64_t state = 0;
  if (state == 0) state = reinterpret_cast<std::uintptr_t>(&state);
  return static_cast<std::uint32_t>(next_random(state) >> 32);
}

// A uniform draw from [0, bound) (bound <= 2^32), by multiply and shift.
inline std::size_t select_rand_below(std::size_t bound) noexcept {
  return static_cast<std::size_t>((std::uint64_t{select_rand()} * bound) >> 32);
}

// Which way the cases of a span select go.
enum class SpanDirection { kRecv, kSend };

// The awaiter of select_recv / select_send over `channels` (Handle is
// Chan<T>, RecvChan<T> or SendChan<T>). Gives the index of the channel
// whose case ran, or channels.size() for the default case.
template <class T, class Handle, SpanDirection kDirection>
class SpanSelectAwaiter {
 public:
  // Cases held in the frame without allocating (see the file comment).
  static constexpr std::size_t kInlineCases = 8;
  static constexpr bool kSend = kDirection == SpanDirection::kSend;

  // A receive select (value is unused, left empty) or a send select.
  SpanSelectAwaiter(std::span<const Handle> channels, bool has_default,
                    std::optional<T> value) noexcept
      : channels_(channels), value_(std::move(value)), has_default_(has_default) {}
  SpanSelectAwaiter(const SpanSelectAwaiter&) = delete;
  SpanSelectAwaiter& operator=(const SpanSelectAwaiter&) = delete;
  ~SpanSelectAwaiter() {
    // Torn down while parked (runtime shutdown): withdraw every waiter.
    if (parked_) [[unlikely]] {
      lock_all();
      for (std::size_t k = 0; k < active_; ++k) withdraw(k);
      unlock_all();
    }
  }

  bool await_ready() {
    // Step 1. The order holds uint32 indexes: a span past that is refused.
    if (channels_.size() > std::numeric_limits<std::uint32_t>::max()) {
      throw std::length_error("goro::select over a span: more than 2^32 - 1 channels");
    }
    if (channels_.size() > kInlineCases) {  // before any lock: may throw bad_alloc
      order_heap_ = std::make_unique_for_overwrite<std::uint32_t[]>(channels_.size());
      locks_heap_ = std::make_unique_for_overwrite<ChanCore*[]>(channels_.size());
      order_ = order_heap_.get();
      locks_ = locks_heap_.get();
    }
    std::uint32_t* const order = order_;
    std::size_t active = 0;
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      if (channels_[i].state() == nullptr) continue;  // nil: never chosen
      order[active++] = static_cast<std::uint32_t>(i);
    }
    active_ = active;
    if (active == 0) return has_default_ ? take(channels_.size()) : false;
    for (std::size_t i = active - 1; i > 0; --i) {  // Fisher-Yates
      std::swap(order[i], order[select_rand_below(i + 1)]);
    }
    // Step 2: one channel and a default, the lock-free check.
    if (has_default_ && active == 1 && would_block(0)) return take(channels_.size());
    sort_locks();
    // Step 3 must not allocate; up to kInlineCases waiters fit already.
    if (!has_default_ && active > kInlineCases) waiters_.reserve(active);
    lock_all();
    for (std::size_t k = 0; k < active; ++k) {
      G* to_wake = nullptr;
      switch (try_locked(k, &to_wake)) {
        case OpStatus::kDone:
          unlock_all();
          wake(to_wake);
          return take(order_[k]);
        case OpStatus::kClosed:
          unlock_all();
          throw ChannelClosed("send on closed channel");
        case OpStatus::kWouldBlock:
          break;
      }
    }
    if (has_default_) {
      unlock_all();
      return take(channels_.size());
    }
    return false;  // locks held for await_suspend
  }

  void await_suspend(std::coroutine_handle<> awaiting) {
    G* g = current_goroutine();
    if (g == nullptr) [[unlikely]] {
      if (active_ != 0) unlock_all();  // taken by await_ready
      throw_not_in_goroutine("goro::select over a span");
    }
    if (active_ == 0) {
      note_wait(g, "select (no cases)");
      return;  // only nil channels, or none: never readied
    }
    // Step 3.
    parked_ = true;
    note_wait(g, "select");
    g->resume = awaiting;
    waiters_.resize(active_);  // reserved in await_ready: no allocation
    Waiter* const waiters = waiters_.data();
    for (std::size_t k = 0; k < active_; ++k) {
      Waiter& w = waiters[k];
      w.g = g;
      w.select = &state_;
      w.success = false;
      w.elem = kSend ? static_cast<void*>(&*value_) : static_cast<void*>(&value_);
      queue(k).push_back(&w);
    }
    // S1: the first lock last; nothing of ours is read after it.
    ChanCore* const first = locks_[0];
    for (std::size_t i = nlocks_ - 1; i > 0; --i) locks_[i]->lock.unlock();
    first->lock.unlock();
  }

  // The index of the channel whose case ran; channels.size() for the
  // default. Throws ChannelClosed for a send case woken by a close.
  std::size_t complete() {
    if (parked_) {
      parked_ = false;
      std::size_t fired_position = active_;
      lock_all();
      for (std::size_t k = 0; k < active_; ++k) {
        if (&waiters_[k] == state_.fired) {
          fired_position = k;
        } else {
          withdraw(k);
        }
      }
      unlock_all();
      fired_ = order_[fired_position];
      if (kSend && !waiters_[fired_position].success) {
        throw ChannelClosed("send on closed channel");
      }
    }
    return fired_;
  }

  // The received value (receive selects): engaged when a case received
  // one, empty for a closed channel or the default.
  std::optional<T>& value() noexcept { return value_; }

 private:
  bool take(std::size_t index) noexcept {
    fired_ = index;
    return true;
  }

  ChanState<T>* channel(std::size_t k) const noexcept { return channels_[order_[k]].state(); }

  bool would_block(std::size_t k) const noexcept {
    if constexpr (kSend) {
      return channel(k)->send_would_block();
    } else {
      return channel(k)->recv_would_block();
    }
  }
  OpStatus try_locked(std::size_t k, G** to_wake) noexcept {
    if constexpr (kSend) {
      return channel(k)->send_locked(*value_, to_wake);
    } else {
      return channel(k)->recv_locked(value_, to_wake);
    }
  }
  WaitQueue& queue(std::size_t k) const noexcept {
    if constexpr (kSend) {
      return channel(k)->sendq;
    } else {
      return channel(k)->recvq;
    }
  }
  void withdraw(std::size_t k) noexcept { queue(k).remove(&waiters_[k]); }

  // Step 1's lock order: the distinct channels of the cases, by address.
  void sort_locks() {
    const auto by_address = [](const ChanCore* a, const ChanCore* b) {
      return reinterpret_cast<std::uintptr_t>(a) < reinterpret_cast<std::uintptr_t>(b);
    };
    const std::size_t n = active_;
    const std::uint32_t* const order = order_;
    ChanCore** const locks = locks_;
    if (n > kInlineCases) {
      for (std::size_t i = 0; i < n; ++i) locks[i] = channels_[order[i]].state();
      std::sort(locks, locks + n, by_address);
      nlocks_ = static_cast<std::size_t>(std::unique(locks, locks + n) - locks);
      return;
    }
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {  // few: insertion sort, dropping repeats
      ChanCore* const c = channels_[order[i]].state();
      std::size_t k = m;
      while (k > 0 && by_address(c, locks[k - 1])) --k;
      if (k > 0 && locks[k - 1] == c) continue;
      for (std::size_t t = m; t > k; --t) locks[t] = locks[t - 1];
      locks[k] = c;
      ++m;
    }
    nlocks_ = m;
  }

  void lock_all() noexcept {
    for (std::size_t i = 0; i < nlocks_; ++i) locks_[i]->lock.lock();
  }
  void unlock_all() noexcept {
    for (std::size_t i = 0; i < nlocks_; ++i) locks_[i]->lock.unlock();
  }

  std::span<const Handle> channels_;
  std::optional<T> value_;  // the destination (receive) or the value (send)
  SelectState state_;
  // Positions in channels_ of the active_ non-nil cases, in poll order
  // (step 1); waiters_[k] is the waiter of case order_[k]. locks_ holds the
  // nlocks_ distinct channels, by address. Both point at the inline arrays
  // (left uninitialised: every slot is written before it is read) or, for
  // more than kInlineCases channels, at heap arrays. The awaiter is never
  // moved (it is made in place and awaited there), so pointing into itself
  // is safe.
  std::uint32_t order_inline_[kInlineCases];
  ChanCore* locks_inline_[kInlineCases];
  std::unique_ptr<std::uint32_t[]> order_heap_;
  std::unique_ptr<ChanCore*[]> locks_heap_;
  std::uint32_t* order_ = order_inline_;
  ChanCore** locks_ = locks_inline_;
  std::size_t active_ = 0;
  std::size_t nlocks_ = 0;
  absl::InlinedVector<Waiter, kInlineCases> waiters_;  // constructed at park
  std::size_t fired_ = 0;
  bool has_default_;
  bool parked_ = false;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_SELECT_SPAN_HPP_
