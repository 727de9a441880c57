// goro/context.hpp
//
// Defines: goro::Context, goro::CancelFunc, goro::CancelCauseFunc,
// goro::ContextWithCancel, goro::ContextWithCancelCause, goro::ContextKey<T>,
// goro::AfterFuncStop, goro::background, goro::with_cancel,
// goro::with_cancel_cause, goro::cause, goro::with_deadline,
// goro::with_deadline_cause, goro::with_timeout, goro::with_timeout_cause,
// goro::with_value, goro::without_cancel, goro::after_func: Go's context
// package (as of Go 1.21). The operations that honour a context live with their kind:
// goro::sleep(d, ctx) in goro/time.hpp, goro::io::options_from(ctx) in
// goro/io.hpp, select on ctx.done() in goro/select.hpp.
//
//   goro::Task<absl::Status> handler(goro::Context ctx, int fd) {
//     auto [child, cancel] = goro::with_timeout(ctx, 2s);
//     char buf[512];
//     auto n = co_await goro::io::read(fd, buf, sizeof buf, goro::io::options_from(child));
//     if (!n.ok()) co_return n.status();  // kDeadlineExceeded, kCancelled, ...
//     auto r = co_await goro::select(goro::recv_from(child.done()), goro::recv_from(jobs));
//     if (r.index() == 0) co_return child.err();
//     ...
//   }
//
// Semantics are Go's: a context carries cancellation, a deadline and
// request-scoped values down a tree. Cancelling a context (its CancelFunc,
// its deadline passing, or its parent being cancelled) cancels every
// context below it at once: their done() channels close, their err()
// becomes non-OK, their stop tokens are stopped (which cancels goro::io
// operations in flight). A context's deadline is never later than its
// parent's. Contexts are immutable handles and thread-safe: copy them
// freely, use them from any goroutine or thread.
//
// Unlike Go, dropping a CancelFunc without calling it leaks nothing: a
// child unregisters from its parent when its last handle goes (and an
// after_func registered on a context that nobody can cancel any more is
// dropped unrun). Cancelling
// still releases the child's resources early (its timer, its place in the
// parent), as in Go. Contexts with a deadline must be released before the
// runtime that armed their timer returns.
//
// The machinery is in goro/detail/context_node.hpp and lib/context.cpp,
// whose top comment explains it.
#ifndef GORO_CONTEXT_HPP_
#define GORO_CONTEXT_HPP_

#include <atomic>
#include <chrono>
#include <concepts>
#include <functional>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "goro/chan.hpp"
#include "goro/clock.hpp"
#include "goro/detail/context_node.hpp"
#include "goro/detail/invoke_task.hpp"
#include "goro/detail/timer.hpp"
#include "goro/task.hpp"

namespace goro {

// A key for with_value / Context::value, for values of type T. Its identity
// is its address (Go's unexported key types): declare one object per key,
// e.g. `inline constexpr goro::ContextKey<std::string> kRequestId{"request id"};`.
// Not copyable, so that a copy cannot silently become a different key.
template <class T>
class ContextKey {
 public:
  constexpr explicit ContextKey(const char* name = "") noexcept : name_(name) {}
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;

  // The name given at construction, for diagnostics.
  [[nodiscard]] constexpr const char* name() const noexcept { return name_; }

 private:
  const char* name_;
};

// Go's context.Context: a cheap, copyable, thread-safe handle to a node of
// the context tree. Default-constructed it is the background context
// (goro::background()): never cancelled, no deadline, no values.
class Context {
 public:
  Context() noexcept = default;
  Context(const Context& other) noexcept : node_(other.node_) {
    if (node_ != nullptr) node_->add_ref();
  }
  Context(Context&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  Context& operator=(const Context& other) noexcept {
    if (other.node_ != nullptr) other.node_->add_ref();
    reset(other.node_);
    return *this;
  }
  Context& operator=(Context&& other) noexcept {
    if (this != &other) reset(std::exchange(other.node_, nullptr));
    return *this;
  }
  ~Context() { reset(nullptr); }

  // Go's ctx.Err(): OK while the context is live; absl::CancelledError
  // ("context canceled") once cancelled, absl::DeadlineExceededError
  // ("context deadline exceeded") once its deadline passed (for a child,
  // whichever its cancelled ancestor recorded). Never goes back to OK. A
  // cause given to the cancellation does not change it (see goro::cause).
  [[nodiscard]] absl::Status err() const;

  // True once err() is not OK (one atomic load, no Status built).
  [[nodiscard]] bool cancelled() const noexcept {
    const detail::CancelNode* c = canceller();
    return c != nullptr && c->code() != detail::CancelCode::kNone;
  }

  // Go's ctx.Done(): a channel closed when the context is cancelled, for a
  // select case: `goro::recv_from(ctx.done())` fires (with std::nullopt)
  // once it is. The background's is a nil channel, which never fires. Made
  // on first use; the reference stays valid while this handle does (copy
  // it to keep it longer). Once done() is closed, err() is not OK.
  [[nodiscard]] const RecvChan<std::monostate>& done() const;

  // Go's ctx.Deadline(): when the context will be cancelled by a deadline
  // (its own or an ancestor's), if it has one.
  [[nodiscard]] std::optional<Clock::time_point> deadline() const noexcept {
    if (node_ == nullptr || node_->deadline_ns() == detail::kNoContextDeadline) return std::nullopt;
    return detail::from_ns(node_->deadline_ns());
  }

  // Go's ctx.Value(key): the value stored under `key` by the nearest
  // with_value above (or at) this context, or nullptr. The pointer stays
  // valid while this handle does.
  template <class T>
  [[nodiscard]] const T* value(const ContextKey<T>& key) const noexcept {
    const void* k = &key;
    for (const detail::ContextNode* n = node_; n != nullptr; n = n->parent()) {
      if (n->key() == k) return &static_cast<const detail::ValueNode<T>*>(n)->value();
    }
    return nullptr;
  }

  // A std::stop_token that is stopped when the context is cancelled (an
  // empty token, never stopped, for a context that cannot be cancelled).
  // goro::io operations take it as IoOptions::cancel (see
  // io::options_from), and stop_callbacks registered on it run on the
  // thread that cancels.
  [[nodiscard]] std::stop_token stop_token() const;

  // True for two handles to the same context.
  friend bool operator==(const Context& a, const Context& b) noexcept { return a.node_ == b.node_; }

 private:
  friend struct ContextAccess;
  explicit Context(detail::ContextNode* node) noexcept : node_(node) {}  // adopts a reference

  [[nodiscard]] detail::CancelNode* canceller() const noexcept {
    return node_ == nullptr ? nullptr : node_->canceller();
  }
  void reset(detail::ContextNode* node) noexcept {
    detail::ContextNode* old = std::exchange(node_, node);
    if (old != nullptr) detail::ContextNode::release(old);
  }

  detail::ContextNode* node_ = nullptr;
};

// Go's context.CancelFunc: cancels its context (with absl::CancelledError)
// and everything below it, and releases the context's timer and its place
// in its parent. Idempotent; callable from any goroutine or thread, and
// concurrently. Copyable (copies cancel the same context); a
// default-constructed one does nothing. Holds a reference to the context.
class CancelFunc {
 public:
  CancelFunc() noexcept = default;
  CancelFunc(const CancelFunc& other) noexcept : node_(other.node_) {
    if (node_ != nullptr) node_->add_ref();
  }
  CancelFunc(CancelFunc&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  CancelFunc& operator=(CancelFunc other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~CancelFunc() {
    if (node_ != nullptr) detail::ContextNode::release(node_);
  }

  void operator()() const noexcept {
    if (node_ != nullptr) node_->cancel(detail::CancelCode::kCanceled);
  }

 private:
  friend struct ContextAccess;
  explicit CancelFunc(detail::CancelNode* node) noexcept : node_(node) {}  // adopts a reference

  detail::CancelNode* node_ = nullptr;
};

// What with_cancel, with_deadline and with_timeout return:
//   auto [ctx, cancel] = goro::with_cancel(parent);
struct ContextWithCancel {
  Context ctx;
  CancelFunc cancel;
};

// Go's context.CancelCauseFunc: as CancelFunc, and the first cancellation
// of its context also records `cause`, which goro::cause reports for the
// context and everything below it (err() stays absl::CancelledError). An
// OK cause records none: goro::cause then reports err(), as for a plain
// cancel. Calls after the context is cancelled (by any means) change
// nothing, their cause included. Any thread; copyable; holds a reference.
class CancelCauseFunc {
 public:
  CancelCauseFunc() noexcept = default;
  CancelCauseFunc(const CancelCauseFunc& other) noexcept : node_(other.node_) {
    if (node_ != nullptr) node_->add_ref();
  }
  CancelCauseFunc(CancelCauseFunc&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  CancelCauseFunc& operator=(CancelCauseFunc other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~CancelCauseFunc() {
    if (node_ != nullptr) detail::ContextNode::release(node_);
  }

  void operator()(absl::Status cause) const noexcept {
    if (node_ != nullptr) node_->cancel(detail::CancelCode::kCanceled, std::move(cause));
  }

 private:
  friend struct ContextAccess;
  explicit CancelCauseFunc(detail::CancelNode* node) noexcept : node_(node) {}  // adopts

  detail::CancelNode* node_ = nullptr;
};

// What with_cancel_cause returns:
//   auto [ctx, cancel] = goro::with_cancel_cause(parent);
//   cancel(absl::UnavailableError("backend gone"));
struct ContextWithCancelCause {
  Context ctx;
  CancelCauseFunc cancel;
};

// Go's context.AfterFunc's stop function. Calling it stops the
// registration: true if that kept f from being started (f and its
// arguments are then destroyed, unrun); false if f was started already
// (the context was done) or the registration was stopped before. It does
// not wait for a started f to finish. Any thread; copyable (copies stop
// the same registration); a default-constructed one returns false. Holds
// a reference to the context (not to what f captured, once stopped).
class AfterFuncStop {
 public:
  AfterFuncStop() noexcept = default;
  AfterFuncStop(const AfterFuncStop& other) noexcept;
  AfterFuncStop(AfterFuncStop&& other) noexcept
      : ctx_(std::move(other.ctx_)), func_(std::exchange(other.func_, nullptr)) {}
  AfterFuncStop& operator=(AfterFuncStop other) noexcept {
    std::swap(ctx_, other.ctx_);
    std::swap(func_, other.func_);
    return *this;
  }
  ~AfterFuncStop();

  bool operator()() const noexcept;

 private:
  friend struct ContextAccess;
  AfterFuncStop(Context ctx, detail::AfterFunc* func) noexcept  // adopts a reference to func
      : ctx_(std::move(ctx)), func_(func) {}

  Context ctx_;
  detail::AfterFunc* func_ = nullptr;
};

// Go's context.Background(): the root, never cancelled (also what a
// default-constructed Context is). Costs nothing.
[[nodiscard]] inline Context background() noexcept { return Context(); }

// Go's context.WithCancel: a child of `parent` that is cancelled when
// `cancel` is called or when the parent is cancelled (at once, if it
// already is). Any thread.
[[nodiscard]] ContextWithCancel with_cancel(const Context& parent);

// Go's context.WithCancelCause: as with_cancel, but `cancel` takes the
// cause to record (CancelCauseFunc). Any thread.
[[nodiscard]] ContextWithCancelCause with_cancel_cause(const Context& parent);

// Go's context.Cause: why `ctx` was cancelled. OK while it is not (and
// always for the background and for without_cancel's contexts). Once it
// is: the cause given to the first cancellation that reached it, its own
// or an ancestor's, whichever err() reports (a CancelCauseFunc's argument,
// the cause of with_deadline_cause's deadline), or err() itself when that
// cancellation had none. Never changes once not OK. Any thread; lock-free.
[[nodiscard]] absl::Status cause(const Context& ctx);

// Go's context.WithDeadline: as with_cancel, and also cancelled with
// DeadlineExceeded when the steady clock reaches `deadline` (on goro's
// timers; never early). If the parent's deadline is not later, the child
// simply shares it (no timer). A deadline already past cancels at once.
// Otherwise it arms a timer, so it must be called from a goroutine
// (std::logic_error otherwise).
[[nodiscard]] ContextWithCancel with_deadline(const Context& parent, Clock::time_point deadline);

// Go's context.WithTimeout: with_deadline(parent, now + timeout). A
// timeout too long to add to now saturates to no deadline of its own.
[[nodiscard]] inline ContextWithCancel with_timeout(const Context& parent,
                                                    std::chrono::nanoseconds timeout) {
  return with_deadline(parent, detail::saturating_time_add(Clock::now(), timeout));
}

// Go's context.WithDeadlineCause: with_deadline, and when the deadline
// (this context's own, not an inherited earlier one) cancels it, `cause`
// is what goro::cause reports (err() is still DeadlineExceeded). The
// returned CancelFunc cancels without a cause. Same threading as
// with_deadline.
[[nodiscard]] ContextWithCancel with_deadline_cause(const Context& parent,
                                                    Clock::time_point deadline, absl::Status cause);

// Go's context.WithTimeoutCause: with_deadline_cause(parent, now +
// timeout, cause).
[[nodiscard]] inline ContextWithCancel with_timeout_cause(const Context& parent,
                                                          std::chrono::nanoseconds timeout,
                                                          absl::Status cause) {
  return with_deadline_cause(parent, detail::saturating_time_add(Clock::now(), timeout),
                             std::move(cause));
}

// Go's context.WithoutCancel: a child of `parent` that has the parent's
// values but is never cancelled (not when the parent is), has no
// deadline, and whose done() is the nil channel, err() and cause() OK.
// Contexts made from it are cancelled only by their own means. Any thread.
[[nodiscard]] Context without_cancel(const Context& parent);

// Go's context.WithValue: a child of `parent` that carries `value` under
// `key` (the key object must outlive every lookup). Shares the parent's
// cancellation and deadline. Any thread.
template <class T, class U>
requires std::is_constructible_v<T, U&&>
[[nodiscard]] Context with_value(const Context& parent, const ContextKey<T>& key, U&& value);

// What the friends above use to reach the private parts.
struct ContextAccess {
  static detail::ContextNode* node(const Context& ctx) noexcept { return ctx.node_; }
  static Context adopt(detail::ContextNode* node) noexcept { return Context(node); }
  static CancelFunc adopt_cancel(detail::CancelNode* node) noexcept { return CancelFunc(node); }
  static detail::CancelNode* cancel_node(const CancelFunc& cancel) noexcept { return cancel.node_; }
  static CancelCauseFunc adopt_cancel_cause(detail::CancelNode* node) noexcept {
    return CancelCauseFunc(node);
  }
  // after_func's work once the callable is a Task (lib/context.cpp).
  static AfterFuncStop after_func_from_task(const Context& ctx, Task<void> body);
};

namespace detail {
// The root of an after_func goroutine made from a callable returning void:
// owns the callable and its arguments (decayed types), calls it once.
template <class F, class... Args>
Task<void> call_in_frame(F f, Args... args) {
  std::invoke(std::move(f), std::move(args)...);
  co_return;
}
}  // namespace detail

// Go's context.AfterFunc: arranges for `f(args...)` to run in a goroutine
// of its own once `ctx` is done (cancelled, by any means, or past its
// deadline), and returns the stop function (AfterFuncStop).
//  * f runs at most once. If ctx is done already, the goroutine is started
//    at once. Registrations on one context are independent of each other.
//  * f is either a callable returning Task<void> (as goro::go(f, args...)
//    takes: its body is the goroutine's) or a callable returning void (the
//    goroutine calls it). f and the arguments are decay-copied into the
//    goroutine's frame at once (safe for capturing lambdas: see
//    goro/go.hpp) and are destroyed unrun if stop wins, or if nobody can
//    cancel ctx any more (its last handle and CancelFunc are gone), or if
//    ctx is done while no runtime is running (go() has none to start on).
//  * The goroutine is started by whoever cancels ctx (its CancelFunc's
//    caller, the deadline's timer goroutine), after ctx's done() is closed:
//    f sees ctx.err() not OK. An exception escaping f is the goroutine's,
//    as with goro::go.
//  * On a context that can never be done (background, without_cancel), f
//    never runs and is destroyed at once; stop still answers true once.
//  * An f that holds ctx (or a context below it) keeps it alive: if ctx
//    is then neither cancelled nor its registration stopped, both stay
//    allocated for good (a cycle of references; Go's collector would
//    reclaim it). Cancel ctx or call stop, as Go asks for a CancelFunc.
//  * Any thread. Throws what copying f and the arguments throws, or
//    std::bad_alloc; then nothing is registered.
template <class F, class... Args>
requires detail::TaskInvocable<F, Args...> &&
    std::same_as<detail::InvokeResult<F, Args...>, Task<void>>
        AfterFuncStop after_func(const Context& ctx, F&& f, Args&&... args) {
  return ContextAccess::after_func_from_task(
      ctx, detail::invoke_in_frame<void, std::decay_t<F>, std::decay_t<Args>...>(
               std::forward<F>(f), std::forward<Args>(args)...));
}

template <class F, class... Args>
requires std::constructible_from<std::decay_t<F>, F> &&
    (std::constructible_from<std::decay_t<Args>, Args>&&...) &&
    std::invocable<std::decay_t<F>, std::decay_t<Args>...>&& std::is_void_v<
        detail::InvokeResult<F, Args...>> AfterFuncStop
    after_func(const Context& ctx, F&& f, Args&&... args) {
  return ContextAccess::after_func_from_task(
      ctx, detail::call_in_frame<std::decay_t<F>, std::decay_t<Args>...>(
               std::forward<F>(f), std::forward<Args>(args)...));
}

template <class T, class U>
requires std::is_constructible_v<T, U&&> Context with_value(const Context& parent,
                                                            const ContextKey<T>& key, U&& value) {
  detail::ContextNode* p = ContextAccess::node(parent);
  if (p != nullptr) p->add_ref();
  detail::ContextNode* node;
  try {
    node = new detail::ValueNode<T>(p, &key, T(std::forward<U>(value)));
  } catch (...) {
    if (p != nullptr) detail::ContextNode::release(p);
    throw;
  }
  return ContextAccess::adopt(node);
}

}  // namespace goro

#endif  // GORO_CONTEXT_HPP_
