// goro/select.hpp
//
// Defines: goro::select, goro::recv_from, goro::send_to, goro::default_case
// and goro::SelectResult: Go's select statement.
//
//   auto r = co_await goro::select(goro::recv_from(in),       // case 0
//                                  goro::send_to(out, 42),    // case 1
//                                  goro::default_case());     // case 2
//   switch (r.index()) {
//     case 0: if (auto& v = r.get<0>()) use(*v); else /* in closed */; break;
//     case 1: /* sent */ break;
//     case 2: /* nothing was ready */ break;
//   }
//
// Semantics are Go's (runtime/select.go): if some cases can proceed, one of
// them is chosen uniformly at random; otherwise the default case is taken if
// there is one; otherwise the goroutine blocks until one case can proceed,
// and exactly that case runs. A receive case fires with std::nullopt when
// its channel is closed and drained. A send case on a closed channel throws
// ChannelClosed. A case on a nil channel never fires; a select with only nil
// cases and no default blocks forever. The same channel may appear in
// several cases, in either direction.
//
// Algorithm (the waiter nodes are in the awaiter; nothing is allocated)
//   1. Poll order: a random permutation of the cases on non-nil channels.
//      Lock order: their distinct channels sorted by address (no deadlock
//      between selects locking overlapping sets; a channel appearing twice
//      is locked once).
//   2. Lock every channel. Try the cases in poll order with the locks held;
//      the first that can proceed does, unlock, done. Nothing: with a
//      default case, unlock and take it.
//   3. Enqueue one waiter per case on its channel's queue, all pointing at
//      one SelectState; unlock every channel (from a copy of the lock list on
//      the stack: after the first unlock the select may be resumed on another
//      thread, and its frame must not be read); park.
//   4. A waker (a send, receive or close on one of the channels) dequeues one
//      of our waiters while holding that channel's lock and wins the select
//      by exchanging SelectState::done from 0 to 1; it records which waiter
//      fired, completes the operation on it and readies us. Any other party
//      that dequeues one of our waiters later loses that exchange and skips
//      the waiter, so there is exactly one wakeup (chan_core.hpp, I5).
//   5. Resumed: lock every channel again, withdraw the waiters of the losing
//      cases still queued, unlock. Only then does select return, so no
//      waiter of ours outlives it.
//   A select with one case and a default first runs the lock-free "would
//   block" check of that channel (as Go compiles such a select into a
//   non-blocking send or receive); see chan_core.hpp for why that is sound.
//   With more cases there is no single moment at which separate lock-free
//   loads would show every channel not ready, so they are polled locked.
//
// Contract: the awaiter returned by select() must be awaited in the
// expression that creates it (`co_await goro::select(...)`), from a
// goroutine: its cases point into channel handles that temporaries of that
// expression may own. At most one default_case().
#ifndef GORO_SELECT_HPP_
#define GORO_SELECT_HPP_

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/fast_random.hpp"
#include "goro/detail/goroutine.hpp"

namespace goro {
namespace detail {

// The untyped view of a send or receive case that the select algorithm
// works on.
class SelectCaseBase {
 public:
  ChanCore* core = nullptr;  // nullptr: nil channel, never chosen
  Waiter waiter;
  std::size_t index = 0;  // position among select()'s arguments
  bool is_send = false;

  // With the lock held: try the operation now.
  virtual OpStatus try_locked(G** to_wake) noexcept = 0;
  // Lock-free: would try_locked certainly block? (chan_core.hpp)
  [[nodiscard]] virtual bool would_block() const noexcept = 0;
  // With the lock held: link `waiter` (already filled in) onto its queue;
  // unlink it if still there.
  virtual void enqueue() noexcept = 0;
  virtual void withdraw() noexcept = 0;

 protected:
  SelectCaseBase() = default;
  SelectCaseBase(const SelectCaseBase&) = default;
  SelectCaseBase& operator=(const SelectCaseBase&) = default;
  ~SelectCaseBase() = default;
};

// 32 random bits for the poll order (fast_random.hpp). One state per
// thread, seeded with its own address so that threads draw different
// sequences.
inline std::uint32_t select_rand() noexcept {
  constinit thread_local std::uint64_t state = 0;
  if (state == 0) state = reinterpret_cast<std::uintptr_t>(&state);
  return static_cast<std::uint32_t>(next_random(state) >> 32);
}

// Steps 1-5 of the file comment over `n` type-erased cases. The typed
// SelectAwaiter owns the cases and the arrays; these functions are
// untyped so that each select instantiation adds little code.
class SelectCore {
 public:
  // Step 1. Returns false if no case is on a non-nil channel.
  static bool prepare(SelectCaseBase** poll, std::size_t n, ChanCore** locks,
                      std::size_t* nlocks) noexcept {
    if (n == 0) return false;
    for (std::size_t i = n - 1; i > 0; --i) {  // Fisher-Yates
      const auto j = static_cast<std::size_t>((std::uint64_t{select_rand()} * (i + 1)) >> 32);
      std::swap(poll[i], poll[j]);
    }
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {  // insertion sort by address, deduplicated
      ChanCore* c = poll[i]->core;
      std::size_t k = m;
      while (k > 0 && addr(locks[k - 1]) > addr(c)) --k;
      if (k > 0 && locks[k - 1] == c) continue;
      for (std::size_t t = m; t > k; --t) locks[t] = locks[t - 1];
      locks[k] = c;
      ++m;
    }
    *nlocks = m;
    return true;
  }

  static std::uintptr_t addr(const ChanCore* c) noexcept {
    return reinterpret_cast<std::uintptr_t>(c);
  }

  static void lock_all(ChanCore* const* locks, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) locks[i]->lock.lock();
  }
  static void unlock_all(ChanCore* const* locks, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) locks[i]->lock.unlock();
  }

  // Step 2, locks held. Returns the case that proceeded (locks released,
  // its goroutine readied), or nullptr (locks still held). Throws
  // ChannelClosed for a send case on a closed channel (locks released).
  static SelectCaseBase* poll(SelectCaseBase* const* poll, std::size_t n, ChanCore* const* locks,
                              std::size_t nlocks) {
    for (std::size_t i = 0; i < n; ++i) {
      G* to_wake = nullptr;
      switch (poll[i]->try_locked(&to_wake)) {
        case OpStatus::kDone:
          unlock_all(locks, nlocks);
          wake(to_wake);
          return poll[i];
        case OpStatus::kClosed:
          unlock_all(locks, nlocks);
          throw ChannelClosed("send on closed channel");
        case OpStatus::kWouldBlock:
          break;
      }
    }
    return nullptr;
  }

  // Step 3, locks held: enqueue goroutine g and release the locks. After
  // this returns the caller must not touch the awaiter.
  template <std::size_t kMax>
  static void park(G* g, SelectCaseBase* const* cases, std::size_t n, SelectState* state,
                   const std::array<ChanCore*, kMax>& locks, std::size_t nlocks,
                   std::coroutine_handle<> awaiting) noexcept {
    note_wait(g, "select");
    g->resume = awaiting;
    for (std::size_t i = 0; i < n; ++i) {
      Waiter& w = cases[i]->waiter;
      w.g = g;
      w.select = state;
      w.success = false;
      cases[i]->enqueue();
    }
    const std::array<ChanCore*, kMax> copy = locks;  // (I6) on the stack
    unlock_all(copy.data(), nlocks);
  }

  // Step 5: withdraws every case but the one that fired; returns that one.
  static SelectCaseBase* finish(SelectCaseBase* const* cases, std::size_t n,
                                const SelectState& state, ChanCore* const* locks,
                                std::size_t nlocks) noexcept {
    SelectCaseBase* fired = nullptr;
    lock_all(locks, nlocks);
    for (std::size_t i = 0; i < n; ++i) {
      if (&cases[i]->waiter == state.fired) {
        fired = cases[i];
      } else {
        cases[i]->withdraw();
      }
    }
    unlock_all(locks, nlocks);
    return fired;
  }
};

template <class T>
class RecvCase final : public SelectCaseBase {
 public:
  using result_type = std::optional<T>;

  explicit RecvCase(ChanState<T>* chan) noexcept : chan_(chan) { core = chan; }
  RecvCase(RecvCase&& other) noexcept : SelectCaseBase(other), chan_(other.chan_) {}

  OpStatus try_locked(G** to_wake) noexcept override { return chan_->recv_locked(value, to_wake); }
  [[nodiscard]] bool would_block() const noexcept override { return chan_->recv_would_block(); }
  void enqueue() noexcept override {
    waiter.elem = &value;
    chan_->recvq.push_back(&waiter);
  }
  void withdraw() noexcept override { chan_->recvq.remove(&waiter); }

  std::optional<T> value;

 private:
  ChanState<T>* chan_;
};

template <class T>
class SendCase final : public SelectCaseBase {
 public:
  using result_type = std::monostate;

  SendCase(ChanState<T>* chan, T v) noexcept : value(std::move(v)), chan_(chan) {
    core = chan;
    is_send = true;
  }
  SendCase(SendCase&& other) noexcept
      : SelectCaseBase(other), value(std::move(other.value)), chan_(other.chan_) {}

  OpStatus try_locked(G** to_wake) noexcept override { return chan_->send_locked(value, to_wake); }
  [[nodiscard]] bool would_block() const noexcept override { return chan_->send_would_block(); }
  void enqueue() noexcept override {
    waiter.elem = &value;
    chan_->sendq.push_back(&waiter);
  }
  void withdraw() noexcept override { chan_->sendq.remove(&waiter); }

  T value;

 private:
  ChanState<T>* chan_;
};

}  // namespace detail

namespace detail {
template <class... Cases>
class SelectAwaiter;
}  // namespace detail

// The default case of a select: taken when no other case can proceed.
struct DefaultCase {
  using result_type = std::monostate;
};

// Go's `case v, ok := <-ch:` in a select. Fires with the value, or with
// std::nullopt when the channel is closed and drained.
template <class T>
[[nodiscard]] detail::RecvCase<T> recv_from(const Chan<T>& chan) noexcept {
  return detail::RecvCase<T>(chan.state());
}
template <class T>
[[nodiscard]] detail::RecvCase<T> recv_from(const RecvChan<T>& chan) noexcept {
  return detail::RecvCase<T>(chan.state());
}

// Go's `case ch <- v:` in a select. `v` is moved in now and dropped if
// another case fires.
template <class T, class U>
requires std::is_constructible_v<T, U&&>
[[nodiscard]] detail::SendCase<T> send_to(const Chan<T>& chan, U&& value) {
  return detail::SendCase<T>(chan.state(), T(std::forward<U>(value)));
}
template <class T, class U>
requires std::is_constructible_v<T, U&&>
[[nodiscard]] detail::SendCase<T> send_to(const SendChan<T>& chan, U&& value) {
  return detail::SendCase<T>(chan.state(), T(std::forward<U>(value)));
}

// Go's `default:`.
[[nodiscard]] constexpr DefaultCase default_case() noexcept { return {}; }

// Which case of a select fired, with the value a receive case got.
template <class... Cases>
class SelectResult {
 public:
  explicit SelectResult(std::size_t index) noexcept : index_(index) {}

  // The position of the case that fired among select()'s arguments.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }

  // For receive case I: the value received, or std::nullopt if its channel
  // was closed (or if another case fired).
  template <std::size_t I>
  [[nodiscard]] auto& get() & noexcept {
    static_assert(!std::is_same_v<std::tuple_element_t<I, Values>, std::monostate>,
                  "get<I>(): case I is not a receive case");
    return std::get<I>(values_);
  }
  template <std::size_t I>
  [[nodiscard]] auto&& get() && noexcept {
    return std::move(get<I>());
  }
  // For receive case I: Go's ok (case I fired with a value).
  template <std::size_t I>
  [[nodiscard]] bool ok() const noexcept {
    return index_ == I && std::get<I>(values_).has_value();
  }

 private:
  template <class...>
  friend class detail::SelectAwaiter;
  using Values = std::tuple<typename Cases::result_type...>;

  std::size_t index_;
  Values values_;
};

namespace detail {

template <class C>
inline constexpr bool kIsDefault = std::is_same_v<C, DefaultCase>;

template <class... Cases>
class SelectAwaiter {
  static constexpr std::size_t kCases = sizeof...(Cases);
  static constexpr std::size_t kDefaults = (std::size_t{kIsDefault<Cases>} + ... + 0);
  static_assert(kDefaults <= 1, "goro::select: at most one default_case()");
  static constexpr bool kHasDefault = kDefaults == 1;
  static constexpr std::size_t kChannels = kCases - kDefaults;
  static constexpr std::size_t kDefaultIndex = [] {
    constexpr bool is_default[] = {kIsDefault<Cases>..., false};
    std::size_t i = 0;
    while (i < kCases && !is_default[i]) ++i;
    return i;
  }();

 public:
  explicit SelectAwaiter(Cases&&... cases) noexcept : cases_(std::move(cases)...) {
    collect(std::index_sequence_for<Cases...>{});
  }
  SelectAwaiter(const SelectAwaiter&) = delete;
  SelectAwaiter& operator=(const SelectAwaiter&) = delete;
  ~SelectAwaiter() {
    // Torn down while parked (runtime shutdown): withdraw every waiter.
    if (parked_) [[unlikely]] {
      SelectCore::lock_all(locks_.data(), nlocks_);
      for (std::size_t i = 0; i < active_; ++i) poll_[i]->withdraw();
      SelectCore::unlock_all(locks_.data(), nlocks_);
    }
  }

  bool await_ready() {
    if constexpr (kHasDefault && kChannels == 1) {
      // One case and a default: Go's non-blocking send/receive fast path.
      if (active_ == 1 && poll_[0]->would_block()) return take(kDefaultIndex);
    }
    if (!SelectCore::prepare(poll_.data(), active_, locks_.data(), &nlocks_)) {
      return kHasDefault ? take(kDefaultIndex) : false;  // no default: park forever
    }
    SelectCore::lock_all(locks_.data(), nlocks_);
    if (SelectCaseBase* c = SelectCore::poll(poll_.data(), active_, locks_.data(), nlocks_)) {
      return take(c->index);
    }
    if constexpr (kHasDefault) {
      SelectCore::unlock_all(locks_.data(), nlocks_);
      return take(kDefaultIndex);
    }
    return false;  // locks held for await_suspend
  }

  void await_suspend(std::coroutine_handle<> awaiting) {
    G* g = current_goroutine();
    if (g == nullptr) [[unlikely]] {
      if (active_ != 0) SelectCore::unlock_all(locks_.data(), nlocks_);  // taken by await_ready
      throw_not_in_goroutine("goro::select");
    }
    if (active_ == 0) {
      note_wait(g, "select (no cases)");
      return;  // only nil cases: never readied
    }
    parked_ = true;
    SelectCore::park(g, poll_.data(), active_, &state_, locks_, nlocks_, awaiting);
  }

  SelectResult<Cases...> await_resume() {
    if (parked_) {
      parked_ = false;
      SelectCaseBase* c = SelectCore::finish(poll_.data(), active_, state_, locks_.data(), nlocks_);
      fired_ = c->index;
      if (c->is_send && !c->waiter.success) throw ChannelClosed("send on closed channel");
    }
    SelectResult<Cases...> result(fired_);
    move_value(result, std::index_sequence_for<Cases...>{});
    return result;
  }

 private:
  bool take(std::size_t index) noexcept {
    fired_ = index;
    return true;
  }

  template <std::size_t... I>
  void collect(std::index_sequence<I...>) noexcept {
    (collect_one<I>(), ...);
  }
  template <std::size_t I>
  void collect_one() noexcept {
    using C = std::tuple_element_t<I, std::tuple<Cases...>>;
    if constexpr (!kIsDefault<C>) {
      C& c = std::get<I>(cases_);
      c.index = I;
      if (c.core != nullptr) poll_[active_++] = &c;
    }
  }

  template <std::size_t... I>
  void move_value(SelectResult<Cases...>& result, std::index_sequence<I...>) noexcept {
    (move_one<I>(result), ...);
  }
  template <std::size_t I>
  void move_one(SelectResult<Cases...>& result) noexcept {
    using C = std::tuple_element_t<I, std::tuple<Cases...>>;
    if constexpr (!std::is_same_v<typename C::result_type, std::monostate>) {
      if (fired_ == I) std::get<I>(result.values_) = std::move(std::get<I>(cases_).value);
    }
  }

  std::tuple<Cases...> cases_;
  SelectState state_;
  std::array<SelectCaseBase*, kChannels> poll_{};  // first active_: non-nil cases
  std::array<ChanCore*, kChannels> locks_{};       // first nlocks_: by address
  std::size_t active_ = 0;
  std::size_t nlocks_ = 0;
  std::size_t fired_ = kCases;
  bool parked_ = false;
};

}  // namespace detail

// co_await goro::select(cases...): Go's select over recv_from(ch),
// send_to(ch, v) and at most one default_case(), in any number and mix of
// element types. Gives a SelectResult: index() is the position of the case
// that ran; get<I>() the value of receive case I. Must be awaited in a
// goroutine, in the expression that creates it.
template <class... Cases>
[[nodiscard]] detail::SelectAwaiter<Cases...> select(Cases... cases) {
  return detail::SelectAwaiter<Cases...>(std::move(cases)...);
}

}  // namespace goro

#endif  // GORO_SELECT_HPP_
