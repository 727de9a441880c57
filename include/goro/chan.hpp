// goro/chan.hpp
//
// Defines: goro::Chan<T>, goro::SendChan<T>, goro::RecvChan<T>,
// goro::make_chan<T>, goro::RecvResult<T>, goro::TryRecvResult<T>,
// goro::CloseGuard<T>, and (from goro/detail/chan_core.hpp)
// goro::ChannelClosed: Go's channels.
//
//   goro::Chan<int> ch = goro::make_chan<int>(10);  // buffered, capacity 10
//   co_await ch.send(1);                             // ch <- 1
//   while (auto v = co_await ch.recv()) use(*v);     // for v := range ch
//   ch.close();
//   auto closer = ch.close_guard();                  // defer close(ch)
//
// Ranging: C++20 has no `for (auto v : co_await ...)`; the loop above is
// the nearest form (co_await ch.recv() gives std::optional<T>, empty once
// the channel is closed and drained). goro::for_each (goro/for_each.hpp)
// runs a callable per value.
//
// Semantics are Go's (see goro/detail/chan_core.hpp for the invariants and
// the algorithm): an unbuffered channel hands each value from a sender
// straight to a receiver; a buffered one queues up to cap() values; values
// and waiting goroutines are served in FIFO order; close() wakes every
// waiter, after which receivers drain the buffer and then see "closed",
// and senders throw ChannelClosed; a default-constructed (nil) channel
// blocks forever. A blocked send or receive allocates nothing: its waiter
// lives in the awaiter, in the goroutine's frame.
//
// Awaiting: the awaiters returned by send()/recv()/recv_ok() must be
// awaited in the expression that creates them (as `co_await ch.recv()`),
// from a goroutine. T must be nothrow move constructible.
//
// Threads outside the runtime: try_send, try_recv, close, len and cap never
// park, so any thread may call them, with or without a runtime running,
// concurrently with goroutines using the same channel. Their critical
// section is the channel's lock, which such a thread takes through its
// spin lock (goro/detail/chan_lock.hpp: only worker threads can own its
// bias), and a goroutine they wake is queued through the runtime's global
// queue (refused, harmlessly, while the runtime is stopping).
#ifndef GORO_CHAN_HPP_
#define GORO_CHAN_HPP_

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "goro/detail/chan_core.hpp"
#include "goro/detail/goroutine.hpp"

namespace goro {

template <class T>
class Chan;
template <class T>
class CloseGuard;

// What recv_ok() gives: Go's `v, ok := <-ch`. `ok` is false when the
// channel is closed and drained; `value` is then T{} (Go's zero value).
// Converts to `ok`, so `while (auto r = co_await ch.recv_ok())` loops
// until the channel is closed and drained.
template <class T>
struct RecvResult {
  T value;
  bool ok;

  explicit operator bool() const noexcept { return ok; }
};

// What try_recv() gives. `value` holds the received value, if any;
// otherwise `closed` tells a closed and drained channel from one that is
// merely empty now. Converts to true exactly when a value was received.
template <class T>
struct TryRecvResult {
  std::optional<T> value;
  bool closed = false;

  explicit operator bool() const noexcept { return value.has_value(); }
  T& operator*() & noexcept { return *value; }
  T&& operator*() && noexcept { return std::move(*value); }
};

namespace detail {

// co_await ch.send(v). Steps in chan_core.hpp; the value is moved into the
// awaiter, from which a receiver takes it.
template <class T>
class SendAwaiter {
 public:
  SendAwaiter(ChanState<T>* chan, T value) noexcept : chan_(chan), value_(std::move(value)) {}
  SendAwaiter(const SendAwaiter&) = delete;
  SendAwaiter& operator=(const SendAwaiter&) = delete;
  ~SendAwaiter() {
    // Destroyed while parked: only when the runtime tears down a parked
    // goroutine. Withdraw the waiter so that the channel does not keep a
    // dangling node.
    if (parked_) [[unlikely]] {
      chan_->lock.lock();
      chan_->sendq.remove(&waiter_);
      chan_->lock.unlock();
    }
  }

  // Inlined at every co_await: without a waiter to park this is the whole
  // operation, so a call would be a sizeable part of a ping-pong round trip
  // (docs/PERFORMANCE.md, "Figures behind design choices").
  [[gnu::always_inline]] bool await_ready() {
    if (chan_ == nullptr) return false;  // nil channel: park forever
    chan_->lock.lock();
    G* to_wake = nullptr;
    switch (chan_->send_locked(value_, &to_wake)) {
      case OpStatus::kDone:
        chan_->lock.unlock();
        wake(to_wake);
        return true;
      case OpStatus::kClosed:
        chan_->lock.unlock();
        throw ChannelClosed("send on closed channel");
      case OpStatus::kWouldBlock:
        break;
    }
    return false;  // keep the lock: await_suspend enqueues under it
  }

  [[gnu::always_inline]] void await_suspend(std::coroutine_handle<> awaiting) {
    G* g = current_goroutine();
    if (g == nullptr) [[unlikely]] {
      if (chan_ != nullptr) chan_->lock.unlock();  // taken by await_ready
      throw_not_in_goroutine("goro::Chan::send");
    }
    if (chan_ == nullptr) {
      note_wait(g, "chan send (nil chan)");
      return;  // never readied
    }
    note_wait(g, "chan send");
    g->resume = awaiting;
    waiter_.g = g;
    waiter_.elem = &value_;
    parked_ = true;
    chan_->sendq.push_back(&waiter_);
    // Copy to the stack: after unlock a receiver may resume us (I6).
    ChanCore* chan = chan_;
    chan->lock.unlock();
  }

  void await_resume() {
    if (parked_) {
      parked_ = false;
      if (!waiter_.success) throw ChannelClosed("send on closed channel");
    }
  }

 private:
  ChanState<T>* chan_;
  T value_;
  Waiter waiter_;
  bool parked_ = false;
};

// co_await ch.recv() (std::optional<T>) and co_await ch.recv_ok()
// (RecvResult<T>).
template <class T, bool kWithOk>
class RecvAwaiter {
 public:
  explicit RecvAwaiter(ChanState<T>* chan) noexcept : chan_(chan) {}
  RecvAwaiter(const RecvAwaiter&) = delete;
  RecvAwaiter& operator=(const RecvAwaiter&) = delete;
  ~RecvAwaiter() {
    if (parked_) [[unlikely]] {  // torn down while parked (see SendAwaiter)
      chan_->lock.lock();
      chan_->recvq.remove(&waiter_);
      chan_->lock.unlock();
    }
  }

  // Inlined at every co_await, as SendAwaiter's.
  [[gnu::always_inline]] bool await_ready() noexcept {
    if (chan_ == nullptr) return false;  // nil channel: park forever
    chan_->lock.lock();
    G* to_wake = nullptr;
    if (chan_->recv_locked(value_, &to_wake) == OpStatus::kDone) {
      chan_->lock.unlock();
      wake(to_wake);
      return true;
    }
    return false;  // keep the lock: await_suspend enqueues under it
  }

  // `while (auto v = ch.recv())`, with the co_await forgotten, would test
  // the awaiter itself. This conversion makes that a compile error that
  // says what is missing, instead of "not contextually convertible to
  // bool"; it is never instantiated by correct code.
  template <class U>
  requires std::same_as<U, bool>
  explicit operator U() const noexcept {
    static_assert(sizeof(U) == 0,
                  "co_await it: `co_await ch.recv()` gives the value (std::optional<T>); "
                  "ch.recv() alone is the awaiter, not the value");
    return false;
  }

  [[gnu::always_inline]] void await_suspend(std::coroutine_handle<> awaiting) {
    G* g = current_goroutine();
    if (g == nullptr) [[unlikely]] {
      if (chan_ != nullptr) chan_->lock.unlock();  // taken by await_ready
      throw_not_in_goroutine("goro::Chan::recv");
    }
    if (chan_ == nullptr) {
      note_wait(g, "chan receive (nil chan)");
      return;  // never readied
    }
    note_wait(g, "chan receive");
    g->resume = awaiting;
    waiter_.g = g;
    waiter_.elem = &value_;
    parked_ = true;
    chan_->recvq.push_back(&waiter_);
    ChanCore* chan = chan_;  // after unlock a sender may resume us (I6)
    chan->lock.unlock();
  }

  auto await_resume() noexcept {
    parked_ = false;  // value_ was filled by the sender, or left empty by close
    if constexpr (kWithOk) {
      const bool ok = value_.has_value();
      return RecvResult<T>{ok ? std::move(*value_) : T{}, ok};
    } else {
      return std::move(value_);
    }
  }

 private:
  ChanState<T>* chan_;
  std::optional<T> value_;
  Waiter waiter_;
  bool parked_ = false;
};

// The reference-counted pointer that Chan, SendChan and RecvChan share, and
// the operations on it. Each public handle exposes the allowed subset.
template <class T>
class ChanHandle {
 public:
  // The channel (nullptr for a nil channel); for goro's select.
  [[nodiscard]] ChanState<T>* state() const noexcept { return state_; }

  // Go's len(ch): values in the buffer now (0 for unbuffered and nil). A
  // snapshot, racy by nature as in Go: other goroutines and threads may
  // change it before the caller looks; it is always within [0, cap()].
  [[nodiscard]] std::size_t len() const noexcept {
    // Relaxed is enough: the count is one atomic word, so the load gives
    // a value some operation left there, and the caller orders nothing on
    // it (a value it then receives is ordered by the channel's lock).
    return state_ == nullptr ? 0 : state_->count.load(std::memory_order_relaxed);
  }
  // Go's cap(ch): the buffer capacity (0 for unbuffered and nil). Fixed at
  // make_chan, so never racy.
  [[nodiscard]] std::size_t cap() const noexcept { return state_ == nullptr ? 0 : state_->cap; }
  // True for a nil (default-constructed or moved-from) channel.
  [[nodiscard]] bool nil() const noexcept { return state_ == nullptr; }

  // The directional views' implicit conversions from Chan<T> (inherited
  // by SendChan and RecvChan): another reference to the same channel.
  ChanHandle(const Chan<T>& chan) noexcept  // NOLINT(google-explicit-constructor)
      : ChanHandle(static_cast<const ChanHandle&>(chan)) {}
  ChanHandle(Chan<T>&& chan) noexcept  // NOLINT(google-explicit-constructor)
      : ChanHandle(static_cast<ChanHandle&&>(chan)) {}

  friend bool operator==(const ChanHandle& a, const ChanHandle& b) noexcept {
    return a.state_ == b.state_;
  }

 protected:
  ChanHandle() noexcept = default;
  explicit ChanHandle(ChanState<T>* state) noexcept : state_(state) {}  // adopts a reference
  ChanHandle(const ChanHandle& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) state_->add_ref();
  }
  ChanHandle(ChanHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  ChanHandle& operator=(const ChanHandle& other) noexcept {
    if (other.state_ != nullptr) other.state_->add_ref();
    reset(other.state_);
    return *this;
  }
  ChanHandle& operator=(ChanHandle&& other) noexcept {
    if (this != &other) reset(std::exchange(other.state_, nullptr));
    return *this;
  }
  ~ChanHandle() { reset(nullptr); }

  // Drops this handle's reference and adopts `state`'s.
  void reset(ChanState<T>* state) noexcept {
    ChanState<T>* old = std::exchange(state_, state);
    if (old != nullptr) old->release();
  }

  [[nodiscard("co_await it: nothing is sent until the send is awaited")]] SendAwaiter<T> send(
      T value) const noexcept {
    return SendAwaiter<T>(state_, std::move(value));
  }

  bool try_send(T&& value) const { return try_send_from(value); }
  bool try_send(const T& value) const requires std::is_copy_constructible_v<T> {
    T copy(value);
    return try_send_from(copy);
  }

 private:
  // Moves from `value` only when it sent.
  bool try_send_from(T& value) const {
    if (state_ == nullptr || state_->send_would_block()) return false;  // fast path
    state_->lock.lock();
    G* to_wake = nullptr;
    const OpStatus status = state_->send_locked(value, &to_wake);
    state_->lock.unlock();
    if (status == OpStatus::kClosed) throw ChannelClosed("send on closed channel");
    wake(to_wake);
    return status == OpStatus::kDone;
  }

 protected:
  [[nodiscard(
      "co_await it: nothing is received until the receive is awaited")]] RecvAwaiter<T, false>
  recv() const noexcept {
    return RecvAwaiter<T, false>(state_);
  }
  [[nodiscard(
      "co_await it: nothing is received until the receive is awaited")]] RecvAwaiter<T, true>
  recv_ok() const noexcept {
    static_assert(std::is_default_constructible_v<T>,
                  "recv_ok() gives T{} for a closed channel; use recv() for this T");
    return RecvAwaiter<T, true>(state_);
  }

  [[nodiscard]] TryRecvResult<T> try_recv() const {
    TryRecvResult<T> result;
    if (state_ == nullptr || state_->recv_would_block()) return result;  // fast path
    state_->lock.lock();
    G* to_wake = nullptr;
    const OpStatus status = state_->recv_locked(result.value, &to_wake);
    state_->lock.unlock();
    wake(to_wake);
    result.closed = status == OpStatus::kDone && !result.value.has_value();
    return result;
  }

  void close() const {
    if (state_ == nullptr) throw ChannelClosed("close of nil channel");
    close_chan(state_);
  }

  [[nodiscard(
      "the channel is closed when the guard is destroyed: keep it in a named local")]] CloseGuard<T>
  close_guard() const {
    if (state_ == nullptr) throw ChannelClosed("close of nil channel");
    return CloseGuard<T>(state_);
  }

 private:
  ChanState<T>* state_ = nullptr;
};

}  // namespace detail

// Chan<T>: a bidirectional channel handle. Copies refer to the same
// channel; the channel lives while any handle (or directional view) does.
// Default-constructed: the nil channel. Thread-safe: any goroutine may use
// its own copy, or a shared one, concurrently.
template <class T>
class Chan : public detail::ChanHandle<T> {
  using Base = detail::ChanHandle<T>;

 public:
  using value_type = T;

  Chan() noexcept = default;

  // co_await ch.send(v): Go's `ch <- v`. Blocks until a receiver takes the
  // value or the buffer has room. Throws ChannelClosed if the channel is
  // closed, before or while waiting. Nil channel: blocks forever. Built by
  // g++ 12, a braced aggregate sent as a temporary (`co_await
  // ch.send(Message{name, 1})`) is destroyed twice if a member has a
  // destructor: name it first and move it in, or give the type a
  // constructor (task.hpp, "Temporaries in a co_await expression").
  using Base::send;
  // try_send(v): sends only if that needs no waiting (a receiver waits or
  // the buffer has room); returns whether it sent. Moves from `v` only when
  // it sent. Throws ChannelClosed on a closed channel. Nil: false.
  using Base::try_send;
  // co_await ch.recv(): Go's `<-ch`, as std::optional<T>: the next value,
  // or std::nullopt once the channel is closed and drained. Nil: blocks
  // forever.
  using Base::recv;
  // co_await ch.recv_ok(): Go's `v, ok := <-ch` (T must be default
  // constructible: v is T{} when !ok).
  using Base::recv_ok;
  // try_recv(): receives only if that needs no waiting. See TryRecvResult.
  using Base::try_recv;
  // close(): Go's close(ch). Wakes every waiting receiver (they see closed
  // once the buffer is drained) and sender (they throw ChannelClosed).
  // Throws ChannelClosed if already closed or nil.
  using Base::close;
  // close_guard(): Go's `defer close(ch)`, as a guard that closes the
  // channel when it is destroyed (see CloseGuard). Throws ChannelClosed at
  // once for a nil channel.
  using Base::close_guard;
  // len(), cap() (inherited): Go's len(ch) and cap(ch); len() is a racy
  // snapshot, as in Go.

 private:
  template <class U>
  friend Chan<U> make_chan(std::size_t capacity);
  explicit Chan(detail::ChanState<T>* state) noexcept : Base(state) {}
};

// SendChan<T>: a send-only view (Go's `chan<- T`). Converts implicitly from
// Chan<T>; has send, try_send, close, close_guard, len, cap. Receiving does
// not compile.
template <class T>
class SendChan : public detail::ChanHandle<T> {
  using Base = detail::ChanHandle<T>;

 public:
  using value_type = T;

  SendChan() noexcept = default;
  using Base::Base;  // implicit conversion from Chan<T>

  using Base::close;        // as Chan<T>::close
  using Base::close_guard;  // as Chan<T>::close_guard
  using Base::send;         // as Chan<T>::send
  using Base::try_send;     // as Chan<T>::try_send
};

// RecvChan<T>: a receive-only view (Go's `<-chan T`). Converts implicitly
// from Chan<T>; has recv, recv_ok, try_recv, len, cap. Sending and closing
// do not compile.
template <class T>
class RecvChan : public detail::ChanHandle<T> {
  using Base = detail::ChanHandle<T>;

 public:
  using value_type = T;

  RecvChan() noexcept = default;
  using Base::Base;  // implicit conversion from Chan<T>

  using Base::recv;      // as Chan<T>::recv
  using Base::recv_ok;   // as Chan<T>::recv_ok
  using Base::try_recv;  // as Chan<T>::try_recv
};

// CloseGuard<T>: closes its channel when destroyed, Go's `defer close(ch)`:
//
//   goro::Task<void> produce(goro::SendChan<int> out) {
//     auto closer = out.close_guard();  // closed however produce ends
//     for (int i = 0; i < 10; ++i) co_await out.send(may_throw(i));
//   }
//
// Contract: made by close_guard() of a Chan or SendChan, it holds its own
// reference to the channel, so the channel outlives it whatever happens to
// the handle it came from. Its destructor closes the channel, waking every
// waiter as close() does, when the scope ends by return, by co_return or
// by an exception. Unlike Go's `defer close(ch)`, which panics when the
// channel is already closed, a guard whose channel is already closed does
// nothing: a body may close early on its success path and keep the guard
// for its failure paths. Move-only; a moved-from guard does nothing.
//
// In a goroutine's frame the guard lives as long as the frame, so it also
// closes when the runtime destroys the frame without resuming it: a
// goroutine still parked when run() ends (or after goro::Deadlock) is
// destroyed with its frame's destructors. There the close is what any
// close does during shutdown: memory-safe (the guard's reference keeps the
// channel), its wakeups are refused (the waiters' frames are destroyed by
// the same shutdown), a thread outside the runtime polling with try_recv
// sees the channel closed once drained, and a later run() finds it
// closed. A goroutine destroyed unrun (go() during shutdown) never made
// its guard, so nothing is closed for it.
template <class T>
class [[nodiscard(
    "the channel is closed when the guard is destroyed: keep it in a named local")]] CloseGuard {
 public:
  CloseGuard(CloseGuard && other) noexcept : chan_(std::exchange(other.chan_, nullptr)) {}
  CloseGuard(const CloseGuard&) = delete;
  CloseGuard& operator=(const CloseGuard&) = delete;
  CloseGuard& operator=(CloseGuard&&) = delete;
  ~CloseGuard() {
    if (chan_ == nullptr) return;
    // Acquire: pairs with close's release store, as the lock-free checks
    // do (chan_core.hpp); a stale "open" only sends us to close_chan,
    // which decides under the lock.
    if (!chan_->closed.load(std::memory_order_acquire)) {
      try {
        detail::close_chan(chan_);
      } catch (const ChannelClosed&) {
        // Another party closed it between the check and the lock.
      }
    }
    chan_->release();
  }

 private:
  friend class detail::ChanHandle<T>;
  explicit CloseGuard(detail::ChanState<T> * chan) noexcept : chan_(chan) { chan_->add_ref(); }

  detail::ChanState<T>* chan_;  // owns one reference; nullptr once moved from
};

// Go's make(chan T, capacity): a new channel, unbuffered when capacity is
// 0. Allocates the channel and its buffer in one block.
template <class T>
[[nodiscard]] Chan<T> make_chan(std::size_t capacity = 0) {
  return Chan<T>(detail::ChanState<T>::create(capacity));
}

}  // namespace goro

#endif  // GORO_CHAN_HPP_
