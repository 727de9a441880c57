// goro/context.hpp
//
// Defines: goro::Context, goro::CancelFunc, goro::ContextWithCancel,
// goro::ContextKey<T>, goro::background, goro::with_cancel,
// goro::with_deadline, goro::with_timeout, goro::with_value: Go's context
// package. The operations that honour a context live with their kind:
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
// child unregisters from its parent when its last handle goes. Cancelling
// still releases the child's resources early (its timer, its place in the
// parent), as in Go. Contexts with a deadline must be released before the
// runtime that armed their timer returns.
//
// The machinery is in goro/detail/context_node.hpp and lib/context.cpp,
// whose top comment explains it.
#ifndef GORO_CONTEXT_HPP_
#define GORO_CONTEXT_HPP_

#include <chrono>
#include <optional>
#include <stop_token>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "goro/chan.hpp"
#include "goro/clock.hpp"
#include "goro/detail/context_node.hpp"
#include "goro/detail/timer.hpp"

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
  // whichever its cancelled ancestor recorded). Never goes back to OK.
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

// Go's context.Background(): the root, never cancelled (also what a
// default-constructed Context is). Costs nothing.
[[nodiscard]] inline Context background() noexcept { return Context(); }

// Go's context.WithCancel: a child of `parent` that is cancelled when
// `cancel` is called or when the parent is cancelled (at once, if it
// already is). Any thread.
[[nodiscard]] ContextWithCancel with_cancel(const Context& parent);

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
};

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
