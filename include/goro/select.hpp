// goro/select.hpp
//
// Defines: goro::select, goro::recv_from, goro::send_to, goro::default_case
// and goro::SelectResult: Go's select statement; goro::on and
// goro::otherwise, the same select with a handler per case;
// goro::select_recv, goro::select_send, SelectRecvResult and
// SelectSendResult: a select over a run-time list of channels.
//
// Indexed: select gives the index of the case that ran, and the value of a
// receive case by its index.
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
// With handlers: each case carries the code that runs when it fires, so
// case and code cannot drift apart; select gives what the handler that ran
// returns (their common type; void when they all return nothing).
//
//   const bool more = co_await goro::select(
//       goro::on(goro::recv_from(in), [&](std::optional<int> v) { ...; return v.has_value(); }),
//       goro::on(goro::send_to(out, 42), [&] { ...; return true; }),
//       goro::on(goro::after(1s), [&] { return false; }),  // also on(timer), on(ticker)
//       goro::otherwise([&] { return true; }));
//
// Over a run-time list of channels of one element type (Go's reflect.Select
// in a fan-in): select_recv(channels) receives from one of them,
// select_send(channels, v) sends v to one of them; each optionally with
// default_case().
//
//   auto r = co_await goro::select_recv(inputs);  // std::vector<Chan<int>>
//   if (r.ok()) use(r.index(), *r.value()); else /* inputs[r.index()] closed */;
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
//   A select with a default never parks (step 3 never comes), so its
//   awaiter answers await_ready with a constant `true` and runs steps 1
//   and 2 in await_resume. The compiler then removes the suspension point:
//   the awaiter is a temporary on the caller's stack instead of state the
//   goroutine's frame keeps across it, and the caller's loop variables stay
//   in registers.
//   select_recv and select_send run the same steps over a run-time count
//   of cases (goro/detail/select_span.hpp); past 8 channels they allocate
//   their per-case arrays, once per select.
//
// Handlers (how they are kept, and why nothing is allocated)
//   on(case, handler) pairs a case with a callable (decayed, moved in);
//   select() given only such pairs, and at most one otherwise(handler),
//   builds a HandlerSelectAwaiter: the indexed SelectAwaiter over the bare
//   cases, with a std::tuple of the handlers beside it, both members of the
//   awaiter and so in the goroutine's frame. Every handler keeps its own
//   type: nothing is type-erased, so nothing is allocated and no call is
//   indirect. When the select completes (steps 2 or 5), await_resume finds
//   the handler of the case that fired by comparing the index with each
//   position in turn (compile-time constants and direct calls, which the
//   compiler can inline), calls it with
//   the received value moved straight out of the case, and returns its
//   result converted to the handlers' common type. The select itself runs
//   exactly as the indexed one; only the last step differs.
//   Handlers are plain calls made once the select is over (every channel
//   unlocked, the losing waiters withdrawn), in the selecting goroutine,
//   exactly once, and only the chosen case's. They may do anything a
//   function may (try_send, spawn, throw: the exception leaves the co_await)
//   but cannot co_await; a handler returning a Task does not compile.
//   A time case (on(after(d)), on(timer), on(ticker)) owns a handle of its
//   channel, kept in the awaiter ahead of the select so that the channel
//   outlives the select's teardown.
//   Rejected alternatives:
//   * std::function or a table of function pointers per select: an
//     allocation or a call the compiler cannot inline, for code that is
//     known where the select is written.
//   * Handlers that are coroutines, awaited by the select: the select would
//     have to be a coroutine itself (a frame per select), or hand the Task
//     back for a second co_await; a lambda's Task refers to the lambda,
//     which dies with the awaiter, so only `co_await co_await select(...)`
//     would be safe, in a form that looks safe everywhere.
//   * Mixing cases with and without handlers in one select: the result
//     would have to say both "which case" and "what its handler gave".
//
// Contract: the awaiter returned by select(), select_recv() or
// select_send() must be awaited in the expression that creates it
// (`co_await goro::select(...)`), from a goroutine: its cases point into
// channel handles that temporaries of that expression (or the caller's
// list of channels) own. At most one default_case() or otherwise().
#ifndef GORO_SELECT_HPP_
#define GORO_SELECT_HPP_

#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ranges>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "goro/chan.hpp"
#include "goro/clock.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/detail/select_span.hpp"
#include "goro/task.hpp"
#include "goro/time.hpp"

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
      std::swap(poll[i], poll[select_rand_below(i + 1)]);
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

// The index of the first of Cases that is (kWantDefault) or is not a
// default_case(); sizeof...(Cases) if none.
template <bool kWantDefault, class... Cases>
inline constexpr std::size_t kFirstCaseWhereDefaultIs = [] {
  constexpr bool is_default[] = {kIsDefault<Cases>..., kWantDefault};
  std::size_t i = 0;
  while (i < sizeof...(Cases) && is_default[i] != kWantDefault) ++i;
  return i;
}();

template <class... Cases>
class SelectAwaiter {
  static constexpr std::size_t kCases = sizeof...(Cases);
  static constexpr std::size_t kDefaults = (std::size_t{kIsDefault<Cases>} + ... + 0);
  static_assert(kDefaults <= 1, "goro::select: at most one default_case()");
  static constexpr bool kHasDefault = kDefaults == 1;
  static constexpr std::size_t kChannels = kCases - kDefaults;
  static constexpr std::size_t kDefaultIndex = kFirstCaseWhereDefaultIs<true, Cases...>;
  // The only channel case when kChannels is 1.
  static constexpr std::size_t kFirstChannelIndex = kFirstCaseWhereDefaultIs<false, Cases...>;

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

  // A select with a default never parks, so it says "ready" as a constant
  // and runs in await_resume (complete()): the compiler then drops the
  // suspension point, and the awaiter is a temporary of the caller's stack,
  // not state kept in the coroutine frame across the loop around it.
  bool await_ready() {
    if constexpr (kHasDefault) {
      return true;
    } else {
      return lock_and_poll();
    }
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
    const std::size_t fired = complete();
    SelectResult<Cases...> result(fired);
    move_value(result, fired, std::index_sequence_for<Cases...>{});
    return result;
  }

  // The index of the case that fired (its received value still in the
  // case): steps 1 and 2 for a select with a default, step 5 after a park.
  // Throws ChannelClosed for a send case on a closed channel.
  std::size_t complete() {
    if constexpr (kHasDefault) {
      if constexpr (kChannels == 1) {
        // One case and a default: Go's non-blocking send/receive fast path.
        // The case is called through its own (final) type and the rest of
        // the steps are out of line, so the check inlines into the caller:
        // a few loads of the channel, no call.
        const auto& only = std::get<kFirstChannelIndex>(cases_);
        if (only.core != nullptr && only.would_block()) return kDefaultIndex;
      }
      lock_and_poll();  // with a default, it always decides
    } else {
      if (parked_) finish_parked();
    }
    return fired_;
  }

  // Case I, for the handler form to take the received value from.
  template <std::size_t I>
  [[nodiscard]] auto& case_at() noexcept {
    return std::get<I>(cases_);
  }

 private:
  bool take(std::size_t index) noexcept {
    fired_ = index;
    return true;
  }

  // Steps 1 and 2, where the fast path did not decide: true with the case
  // that fired (or the default) taken, false with the locks held for
  // await_suspend.
  [[gnu::noinline]] bool lock_and_poll() {
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

  // Step 5 after a park.
  [[gnu::noinline]] void finish_parked() {
    parked_ = false;
    SelectCaseBase* c = SelectCore::finish(poll_.data(), active_, state_, locks_.data(), nlocks_);
    fired_ = c->index;
    if (c->is_send && !c->waiter.success) throw ChannelClosed("send on closed channel");
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
  void move_value(SelectResult<Cases...>& result, std::size_t fired,
                  std::index_sequence<I...>) noexcept {
    (move_one<I>(result, fired), ...);
  }
  template <std::size_t I>
  void move_one(SelectResult<Cases...>& result, std::size_t fired) noexcept {
    using C = std::tuple_element_t<I, std::tuple<Cases...>>;
    if constexpr (!std::is_same_v<typename C::result_type, std::monostate>) {
      if (fired == I) std::get<I>(result.values_) = std::move(std::get<I>(cases_).value);
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

namespace detail {

// What a time case (on(after(d)), on(timer), on(ticker)) keeps: its own
// handle of the channel its RecvCase points into.
struct TimeSource {
  RecvChan<Clock::time_point> channel;
};

// A case and its handler, as on() and otherwise() make them. Hold keeps
// alive a channel the case owns (TimeSource), else it is std::monostate.
template <class Case, class Handler, class Hold = std::monostate>
struct HandledCase {
  using case_type = Case;
  using handler_type = Handler;
  using hold_type = Hold;

  Hold hold;
  Case select_case;
  Handler handler;
};

template <class C>
inline constexpr bool kIsHandled = false;
template <class Case, class Handler, class Hold>
inline constexpr bool kIsHandled<HandledCase<Case, Handler, Hold>> = true;

template <class Handler>
auto time_case(RecvChan<Clock::time_point> chan, Handler&& handler) {
  using H = std::decay_t<Handler>;
  static_assert(std::is_invocable_v<H&, Clock::time_point> || std::is_invocable_v<H&>,
                "goro::on(time source, handler): handler takes Clock::time_point or nothing");
  RecvCase<Clock::time_point> select_case(chan.state());  // before the handle moves
  return HandledCase<RecvCase<Clock::time_point>, H, TimeSource>{
      TimeSource{std::move(chan)}, std::move(select_case), H(std::forward<Handler>(handler))};
}

// Calls the handler of a case that fired, with what the case gives it.
template <class Hold, class Handler, class Case>
decltype(auto) call_handler(Handler& handler, Case& fired) {
  if constexpr (std::is_same_v<Hold, TimeSource>) {
    // Engaged: nobody closes a timer's channel.
    if constexpr (std::is_invocable_v<Handler&, Clock::time_point>) {
      return std::invoke(handler, *fired.value);
    } else {
      return std::invoke(handler);
    }
  } else if constexpr (!std::is_same_v<typename Case::result_type, std::monostate>) {
    if constexpr (std::is_invocable_v<Handler&, typename Case::result_type&&>) {
      return std::invoke(handler, std::move(fired.value));
    } else {
      return std::invoke(handler);
    }
  } else {
    return std::invoke(handler);
  }
}

template <class Handled>
using HandlerResult = decltype(call_handler<typename Handled::hold_type>(
    std::declval<typename Handled::handler_type&>(), std::declval<typename Handled::case_type&>()));

template <class... Results>
concept HaveCommonType = requires {
  typename std::common_type<Results...>::type;
};

// The awaiter of a select whose cases carry handlers: the indexed awaiter
// over the bare cases, the handlers beside it (the file comment,
// "Handlers").
template <class... Handled>
class HandlerSelectAwaiter {
  static_assert(HaveCommonType<HandlerResult<Handled>...>,
                "goro::select: the handlers' results have no common type (all void, or all "
                "convertible to one type)");
  static_assert((!kIsTask<std::remove_cvref_t<HandlerResult<Handled>>> && ...),
                "goro::select: a handler is a plain call made after the select; it cannot be a "
                "coroutine (return a Task). Await after the select instead");

 public:
  using result_type = std::common_type_t<HandlerResult<Handled>...>;

  explicit HandlerSelectAwaiter(Handled&&... handled)
      : holds_(std::move(handled.hold)...),
        handlers_(std::move(handled.handler)...),
        select_(std::move(handled.select_case)...) {}
  HandlerSelectAwaiter(const HandlerSelectAwaiter&) = delete;
  HandlerSelectAwaiter& operator=(const HandlerSelectAwaiter&) = delete;
  ~HandlerSelectAwaiter() = default;

  bool await_ready() { return select_.await_ready(); }
  void await_suspend(std::coroutine_handle<> awaiting) { select_.await_suspend(awaiting); }
  result_type await_resume() { return dispatch<0>(select_.complete()); }

 private:
  static constexpr std::size_t kCases = sizeof...(Handled);
  using Handleds = std::tuple<Handled...>;

  // Runs the handler of case `fired`: a chain of comparisons with
  // constants, each call inlined.
  template <std::size_t I>
  result_type dispatch(std::size_t fired) {
    if constexpr (I + 1 < kCases) {
      if (fired != I) return dispatch<I + 1>(fired);
    }
    using Hold = typename std::tuple_element_t<I, Handleds>::hold_type;
    return static_cast<result_type>(
        call_handler<Hold>(std::get<I>(handlers_), select_.template case_at<I>()));
  }

  // Declared first, destroyed last: the channels the cases point into
  // outlive the select's teardown.
  std::tuple<typename Handled::hold_type...> holds_;
  std::tuple<typename Handled::handler_type...> handlers_;
  SelectAwaiter<typename Handled::case_type...> select_;
};

}  // namespace detail

// co_await goro::select(cases...): Go's select over recv_from(ch),
// send_to(ch, v) and at most one default_case(), in any number and mix of
// element types. Gives a SelectResult: index() is the position of the case
// that ran; get<I>() the value of receive case I. Must be awaited in a
// goroutine, in the expression that creates it.
//
// co_await goro::select(on(case, handler)..., [otherwise(handler)]): the
// same select, each case with the code to run when it fires; gives what
// that handler returns (see on()). Every case has a handler or none does.
//
// Handlers and sent values are moved into the awaiter. Built by g++ 12, a
// handler closure written in the co_await expression that captures
// anything with a destructor, or a braced aggregate sent (send_to(ch,
// Message{name})) holding one, is destroyed twice: capture by reference
// (`[&]`, the usual form), or name it first and move it in (task.hpp,
// "Temporaries in a co_await expression").
template <class... Cases>
[[nodiscard("co_await it: the select runs when awaited")]] auto select(Cases... cases) {
  constexpr std::size_t kHandled = (std::size_t{detail::kIsHandled<Cases>} + ... + 0);
  static_assert(kHandled == 0 || kHandled == sizeof...(Cases),
                "goro::select: give every case a handler (goro::on, goro::otherwise) or none");
  if constexpr (kHandled > 0) {
    return detail::HandlerSelectAwaiter<Cases...>(std::move(cases)...);
  } else {
    return detail::SelectAwaiter<Cases...>(std::move(cases)...);
  }
}

// --- Cases with handlers ------------------------------------------------------

// on(recv_from(ch), handler): when the receive fires, handler(v) runs with
// the std::optional<T> received (std::nullopt: ch closed and drained), or
// handler() if it takes no argument.
template <class T, class Handler>
[[nodiscard("pass it to goro::select")]] auto on(detail::RecvCase<T> select_case,
                                                 Handler&& handler) {
  using H = std::decay_t<Handler>;
  static_assert(std::is_invocable_v<H&, std::optional<T>&&> || std::is_invocable_v<H&>,
                "goro::on(recv_from(ch), handler): handler takes std::optional<T> or nothing");
  return detail::HandledCase<detail::RecvCase<T>, H>{
      {}, std::move(select_case), H(std::forward<Handler>(handler))};
}

// on(send_to(ch, v), handler): handler() runs once v was sent.
template <class T, class Handler>
[[nodiscard("pass it to goro::select")]] auto on(detail::SendCase<T> select_case,
                                                 Handler&& handler) {
  using H = std::decay_t<Handler>;
  static_assert(std::is_invocable_v<H&>,
                "goro::on(send_to(ch, v), handler): handler takes nothing");
  return detail::HandledCase<detail::SendCase<T>, H>{
      {}, std::move(select_case), H(std::forward<Handler>(handler))};
}

// on(after(d), handler), on(timer, handler), on(ticker, handler): a
// receive from the time source's channel; handler(t) runs with the time
// it fired (Clock::time_point), or handler() if it takes no argument. The
// case holds its own handle of the channel, so `on(after(d), ...)` keeps
// the timer alive until the select is over; a Timer or Ticker must
// outlive the select, as for any channel.
template <class Handler>
[[nodiscard("pass it to goro::select")]] auto on(AfterChan chan, Handler&& handler) {
  return detail::time_case(std::move(chan), std::forward<Handler>(handler));
}
template <class Handler>
[[nodiscard("pass it to goro::select")]] auto on(const Timer& timer, Handler&& handler) {
  return detail::time_case(timer.c(), std::forward<Handler>(handler));
}
template <class Handler>
[[nodiscard("pass it to goro::select")]] auto on(const Ticker& ticker, Handler&& handler) {
  return detail::time_case(ticker.c(), std::forward<Handler>(handler));
}

// otherwise(handler): Go's `default:` with its code; handler() runs when
// no other case could proceed.
template <class Handler>
[[nodiscard("pass it to goro::select")]] auto otherwise(Handler&& handler) {
  using H = std::decay_t<Handler>;
  static_assert(std::is_invocable_v<H&>, "goro::otherwise(handler): handler takes nothing");
  return detail::HandledCase<DefaultCase, H>{{}, DefaultCase{}, H(std::forward<Handler>(handler))};
}

// --- Over a run-time list of channels -----------------------------------------

// What select_recv gives: which channel's case ran and what it received.
template <class T>
class SelectRecvResult {
 public:
  SelectRecvResult(std::size_t index, bool took_default, std::optional<T> value) noexcept
      : index_(index), value_(std::move(value)), took_default_(took_default) {}

  // The position in the span of the channel received from; the span's
  // size when the default was taken.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  // True when no channel was ready and the default case was taken.
  [[nodiscard]] bool took_default() const noexcept { return took_default_; }
  // The value received; std::nullopt when that channel was closed and
  // drained (or the default was taken).
  [[nodiscard]] std::optional<T>& value() & noexcept { return value_; }
  [[nodiscard]] std::optional<T>&& value() && noexcept { return std::move(value_); }
  // Go's ok: a value was received.
  [[nodiscard]] bool ok() const noexcept { return value_.has_value(); }

 private:
  std::size_t index_;
  std::optional<T> value_;
  bool took_default_;
};

// What select_send gives: which channel took the value.
class SelectSendResult {
 public:
  SelectSendResult(std::size_t index, bool took_default) noexcept
      : index_(index), took_default_(took_default) {}

  // The position in the span of the channel sent to; the span's size when
  // the default was taken (the value was dropped).
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  // True when no channel was ready and the default case was taken.
  [[nodiscard]] bool took_default() const noexcept { return took_default_; }

 private:
  std::size_t index_;
  bool took_default_;
};

namespace detail {

template <class Handle>
inline constexpr bool kIsRecvHandle = false;
template <class T>
inline constexpr bool kIsRecvHandle<Chan<T>> = true;
template <class T>
inline constexpr bool kIsRecvHandle<RecvChan<T>> = true;
template <class Handle>
inline constexpr bool kIsSendHandle = false;
template <class T>
inline constexpr bool kIsSendHandle<Chan<T>> = true;
template <class T>
inline constexpr bool kIsSendHandle<SendChan<T>> = true;

// A contiguous, sized range of channel handles (std::vector, std::array,
// std::span, a C array) whose handles can receive / send.
template <class Channels>
concept RecvChannelRange =
    std::ranges::contiguous_range<const Channels&> && std::ranges::sized_range<const Channels&> &&
    kIsRecvHandle<std::ranges::range_value_t<Channels>>;
template <class Channels>
concept SendChannelRange =
    std::ranges::contiguous_range<const Channels&> && std::ranges::sized_range<const Channels&> &&
    kIsSendHandle<std::ranges::range_value_t<Channels>>;

template <class T, class Handle>
class SelectRecvAwaiter : private SpanSelectAwaiter<T, Handle, SpanDirection::kRecv> {
  using Base = SpanSelectAwaiter<T, Handle, SpanDirection::kRecv>;

 public:
  SelectRecvAwaiter(std::span<const Handle> channels, bool has_default) noexcept
      : Base(channels, has_default, std::nullopt), size_(channels.size()) {}
  using Base::await_ready;
  using Base::await_suspend;
  SelectRecvResult<T> await_resume() {
    const std::size_t index = Base::complete();
    return SelectRecvResult<T>(index, index == size_, std::move(Base::value()));
  }

 private:
  std::size_t size_;
};

template <class T, class Handle>
class SelectSendAwaiter : private SpanSelectAwaiter<T, Handle, SpanDirection::kSend> {
  using Base = SpanSelectAwaiter<T, Handle, SpanDirection::kSend>;

 public:
  SelectSendAwaiter(std::span<const Handle> channels, bool has_default, T value) noexcept
      : Base(channels, has_default, std::optional<T>(std::move(value))), size_(channels.size()) {}
  using Base::await_ready;
  using Base::await_suspend;
  SelectSendResult await_resume() {
    const std::size_t index = Base::complete();
    return SelectSendResult(index, index == size_);
  }

 private:
  std::size_t size_;
};

template <class Channels>
using HandleOf = std::ranges::range_value_t<Channels>;
template <class Channels>
using ElementOf = typename HandleOf<Channels>::value_type;

}  // namespace detail

// co_await goro::select_recv(channels): Go's reflect.Select over receive
// cases, one per channel of `channels` (a std::vector, std::array or
// std::span of Chan<T> or RecvChan<T>): blocks until one of them can
// receive, and receives from one of the ready ones, chosen uniformly at
// random as in select. Gives a SelectRecvResult: index() of that channel,
// value() (std::nullopt when it was closed and drained). Nil channels are
// never chosen; with only nil channels, or none, it blocks forever. A
// channel may appear more than once.
//
// Up to SpanSelectAwaiter::kInlineCases (8) channels the select allocates
// nothing; more allocate its per-case arrays once per select. `channels`
// must not change, and its handles must stay alive, until the select
// completes: await it in the expression that creates it, from a goroutine.
template <class Channels>
requires detail::RecvChannelRange<Channels>
[[nodiscard("co_await it: the select runs when awaited")]] auto select_recv(
    const Channels& channels) noexcept {
  using Handle = detail::HandleOf<Channels>;
  return detail::SelectRecvAwaiter<detail::ElementOf<Channels>, Handle>(
      std::span<const Handle>(std::ranges::data(channels), std::ranges::size(channels)), false);
}

// select_recv(channels, default_case()): as select_recv(channels), but
// when no channel can receive now it takes the default at once:
// took_default() is true and index() is channels' size.
template <class Channels>
requires detail::RecvChannelRange<Channels>
[[nodiscard("co_await it: the select runs when awaited")]] auto select_recv(
    const Channels& channels, DefaultCase) noexcept {
  using Handle = detail::HandleOf<Channels>;
  return detail::SelectRecvAwaiter<detail::ElementOf<Channels>, Handle>(
      std::span<const Handle>(std::ranges::data(channels), std::ranges::size(channels)), true);
}

// co_await goro::select_send(channels, v): a select with one send case of
// `v` per channel of `channels` (Chan<T> or SendChan<T>): blocks until one
// of them can take v, and sends it to one of the ready ones, chosen
// uniformly at random. Gives a SelectSendResult with the index() of that
// channel. A send case chosen on a closed channel throws ChannelClosed, as
// in select; v is moved in now and dropped if nothing was sent. Otherwise
// as select_recv.
template <class Channels, class U>
requires detail::SendChannelRange<Channels> &&
    std::is_constructible_v<detail::ElementOf<Channels>, U &&> [[nodiscard(
        "co_await it: the select runs when awaited")]] auto
    select_send(const Channels& channels, U&& value) {
  using Handle = detail::HandleOf<Channels>;
  using T = detail::ElementOf<Channels>;
  return detail::SelectSendAwaiter<T, Handle>(
      std::span<const Handle>(std::ranges::data(channels), std::ranges::size(channels)), false,
      T(std::forward<U>(value)));
}

// select_send(channels, v, default_case()): as select_send, taking the
// default at once when no channel can take v now (v is then dropped).
template <class Channels, class U>
requires detail::SendChannelRange<Channels> &&
    std::is_constructible_v<detail::ElementOf<Channels>, U &&> [[nodiscard(
        "co_await it: the select runs when awaited")]] auto
    select_send(const Channels& channels, U&& value, DefaultCase) {
  using Handle = detail::HandleOf<Channels>;
  using T = detail::ElementOf<Channels>;
  return detail::SelectSendAwaiter<T, Handle>(
      std::span<const Handle>(std::ranges::data(channels), std::ranges::size(channels)), true,
      T(std::forward<U>(value)));
}

}  // namespace goro

#endif  // GORO_SELECT_HPP_
