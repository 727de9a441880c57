// goro/detail/context_node.hpp
//
// Defines: goro::detail::ContextNode (a node of the context tree, shared by
// the goro::Context handles that refer to it), CancelNode (a node that can
// be cancelled: with_cancel, with_cancel_cause, with_deadline), ValueNode<T>
// (with_value), WithoutCancelNode (without_cancel), and the error codes a
// cancelled node records. AfterFunc (one after_func registration) is only
// named here: it holds the goroutine's Task and lives in lib/context.cpp,
// so this header needs no goroutine type. goro/context.hpp builds the
// public API on these; lib/context.cpp implements them and opens with the
// design (glossary, invariants, cancellation step by step, memory orders,
// rejected alternatives).
#ifndef GORO_DETAIL_CONTEXT_NODE_HPP_
#define GORO_DETAIL_CONTEXT_NODE_HPP_

#include <atomic>
#include <cstdint>
#include <limits>
#include <stop_token>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "goro/detail/cpu_relax.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/timer.hpp"

namespace goro {

template <class T>
class RecvChan;  // goro/chan.hpp; only lib/context.cpp needs it whole

namespace detail {

class CancelNode;
struct AfterFunc;  // one after_func registration (lib/context.cpp)

// Why a node was cancelled (CancelNode::code). 0 while it is not.
enum class CancelCode : std::uint8_t { kNone = 0, kCanceled = 1, kDeadlineExceeded = 2 };

// The error a node cancelled with `code` reports (Context::err): OK for
// kNone, "context canceled", "context deadline exceeded".
[[nodiscard]] absl::Status status_for(CancelCode code);

// "No deadline", in steady-clock nanoseconds.
inline constexpr std::int64_t kNoContextDeadline = std::numeric_limits<std::int64_t>::max();

// A node of the context tree. Immutable after construction except for the
// reference count (and, in a CancelNode, the cancellation state).
class ContextNode {
 public:
  enum class Kind : std::uint8_t { kCancel, kValue, kWithoutCancel };

  ContextNode(const ContextNode&) = delete;
  ContextNode& operator=(const ContextNode&) = delete;

  // A new handle from an existing one. Relaxed: the existing handle keeps
  // the node alive, so the increment orders nothing (the shared_ptr rule).
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

  // Takes a reference only if the node is not already dying (count 0):
  // for the parties that reach a node without a handle (its parent's
  // cancel walking the children, its deadline timer). Relaxed: the caller
  // keeps the memory valid by other means (the parent's lock, the timer
  // lock) while it tries, and a successful increment orders nothing.
  [[nodiscard]] bool try_add_ref() noexcept {
    std::uint32_t n = refs_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  // Drops a reference; the last one frees the node, then drops the node's
  // reference to its parent, and so on up (iteratively). Any thread.
  static void release(ContextNode* node) noexcept;

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  // The parent (nullptr: background). Each node holds a reference to it.
  [[nodiscard]] ContextNode* parent() const noexcept { return parent_; }
  // The node whose cancellation this one shares: itself for a CancelNode,
  // the nearest CancelNode above for a ValueNode; nullptr when there is
  // none (the background never cancels).
  [[nodiscard]] CancelNode* canceller() const noexcept { return canceller_; }
  // The deadline (steady-clock ns), kNoContextDeadline if none; never later
  // than the parent's.
  [[nodiscard]] std::int64_t deadline_ns() const noexcept { return deadline_ns_; }
  // A ValueNode's key (the address of its ContextKey); nullptr otherwise.
  [[nodiscard]] const void* key() const noexcept { return key_; }

 protected:
  // Adopts a reference to `parent` (may be nullptr).
  ContextNode(Kind kind, ContextNode* parent, CancelNode* canceller, std::int64_t deadline_ns,
              const void* key) noexcept
      : kind_(kind), parent_(parent), canceller_(canceller), deadline_ns_(deadline_ns), key_(key) {}
  virtual ~ContextNode() = default;

 private:
  // Handles (Context, CancelFunc), children (each holds its parent) and
  // in-flight cancellations. Decrement acq_rel: the freeing thread sees
  // every other holder's writes (the shared_ptr argument).
  std::atomic<std::uint32_t> refs_{1};
  const Kind kind_;
  ContextNode* const parent_;
  CancelNode* const canceller_;
  const std::int64_t deadline_ns_;
  const void* const key_;
};

// with_value's node: one key and its value, immutable.
template <class T>
class ValueNode final : public ContextNode {
 public:
  // Adopts the reference to `parent`.
  ValueNode(ContextNode* parent, const void* key, T value)
      : ContextNode(Kind::kValue, parent, parent == nullptr ? nullptr : parent->canceller(),
                    parent == nullptr ? kNoContextDeadline : parent->deadline_ns(), key),
        value_(std::move(value)) {}

  [[nodiscard]] const T& value() const noexcept { return value_; }

 private:
  const T value_;
};

// without_cancel's node: no key, no canceller, no deadline; it only links
// to its parent, so that values are still found up the chain.
class WithoutCancelNode final : public ContextNode {
 public:
  // Adopts the reference to `parent`.
  explicit WithoutCancelNode(ContextNode* parent) noexcept
      : ContextNode(Kind::kWithoutCancel, parent, nullptr, kNoContextDeadline, nullptr) {}
};

// with_cancel's, with_cancel_cause's and with_deadline's node. Everything
// but the constructor and the inline fast paths is in lib/context.cpp.
class CancelNode final : public ContextNode {
 public:
  // A new node under `parent` (adopted reference; may be nullptr), with
  // deadline `deadline_ns` (already capped by the parent's). Returns it
  // registered with the parent's canceller, already cancelled if that is,
  // and with its timer armed if it has a deadline of its own (`arm_timer`):
  // then it must be called from a goroutine (std::logic_error otherwise).
  // `deadline_cause` is what cause() reports once the deadline cancels the
  // node (OK: the deadline error itself).
  static CancelNode* create(ContextNode* parent, std::int64_t deadline_ns, bool arm_timer,
                            absl::Status deadline_cause = absl::OkStatus());

  // Cancels this node and every node below it, once; later calls do
  // nothing. `cause` (OK: none) is what cause() reports for them. Any
  // thread, any number of concurrent callers.
  void cancel(CancelCode code, absl::Status cause = absl::OkStatus()) noexcept {
    cancel(code, std::move(cause), /*from_parent=*/false);
  }
  // cancel(kDeadlineExceeded) with the cause given to create().
  void cancel_at_deadline() noexcept { cancel(CancelCode::kDeadlineExceeded, deadline_cause_); }

  // The node whose cancellation this one reports: the nearest one, going
  // up from this node, whose own code is set; nullptr if none is (not
  // cancelled). Once a node is found, the nodes below it are read again:
  // one cancelled meanwhile is the answer instead, and the walk repeats
  // below it. A node met in the middle of its own cancel (kCancelling, a
  // few instructions under its lock) is waited for. Together with
  // cancel()'s mark this keeps the answer's code and cause from ever
  // changing (lib/context.cpp, C7). Ends: each repeat stops strictly
  // lower; one pass for an uncancelled chain, one load for a node whose
  // own code is set.
  //
  // seq_cst: the argument of C7 needs one order of these loads, the
  // kCancelling stores and the final code stores of every node; acquire
  // alone would not forbid a reader passing a node before its mark while
  // that node's check of the ancestors misses the ancestor's store. On
  // x86 a seq_cst load is a plain load. It includes acquire: a caller that
  // sees the code also sees the cause stored before it and what the
  // canceller did before cancelling.
  [[nodiscard]] const CancelNode* cancelled_source() const noexcept {
    const CancelNode* found = nullptr;
    for (;;) {
      const CancelNode* nearer = nullptr;
      for (const CancelNode* n = this; n != found; n = n->parent_canceller_) {
        std::uint8_t c = n->code_.load(std::memory_order_seq_cst);
        while (c == kCancelling) {
          cpu_relax();
          c = n->code_.load(std::memory_order_seq_cst);
        }
        if (c != 0) {
          nearer = n;
          break;
        }
      }
      if (nearer == nullptr) return found;
      found = nearer;
    }
  }

  // Go's context.Cause: OK while not cancelled; then the cause given to
  // the first cancellation that reached this node (its own or an
  // ancestor's, the one code() reports), or status_for(code()) if it had
  // none.
  [[nodiscard]] absl::Status cause() const;

  // Registers `f` (whose reference the registration adopts) to start once
  // this node is cancelled; starts it at once if it already is.
  void add_after_func(AfterFunc* f) noexcept;
  // Go's stop: true if this call kept f from being started (f's body is
  // destroyed unrun); false if f was started or stopped already.
  [[nodiscard]] bool stop_after_func(AfterFunc* f) noexcept;

  // kNone until this node or one of its cancellable ancestors is
  // cancelled, then why: the code of cancelled_source(). Reading the
  // ancestors too makes cancellation of a subtree linearisable, as Go's
  // (whose Err() waits for the parent's lock while it cancels the
  // children): once a parent's code is stored, every descendant reports
  // it, before the canceller has reached them. O(depth of the chain of
  // cancel nodes); one load for a node whose own code is set.
  [[nodiscard]] CancelCode code() const noexcept {
    const CancelNode* source = cancelled_source();
    // Relaxed: cancelled_source() loaded it with acquire; it never changes.
    return source == nullptr
               ? CancelCode::kNone
               : static_cast<CancelCode>(source->code_.load(std::memory_order_relaxed));
  }

  // The done channel, made on first use (closed at once if the node is
  // already cancelled). The reference stays valid while the node lives.
  [[nodiscard]] const RecvChan<std::monostate>& done();

  // A token of the node's stop source, made on first use (stop already
  // requested if the node is cancelled).
  [[nodiscard]] std::stop_token stop_token() {
    // Acquire: pairs with the release store that publishes stop_.
    if (stop_made_.load(std::memory_order_acquire)) return stop_.get_token();
    return make_stop_token();
  }

 private:
  friend class ContextNode;

  // The deadline timer: the node and the CancelNode it belongs to.
  // Standard-layout, so that fire() casts the TimerNode back.
  struct DeadlineTimer {
    TimerNode node;
    CancelNode* owner = nullptr;
  };

  CancelNode(ContextNode* parent, std::int64_t deadline_ns) noexcept;
  ~CancelNode() override;  // destroys the done channel's handle, if made

  void cancel(CancelCode code, absl::Status cause, bool from_parent) noexcept;
  // Starts f's goroutine if f is still unclaimed, then drops the
  // registration's reference. No lock held (C5).
  static void start_after_func(AfterFunc* f) noexcept;
  const RecvChan<std::monostate>& make_done();
  // The handle in done_storage_; valid once done_made_ is set.
  RecvChan<std::monostate>& done_chan() noexcept;
  std::stop_token make_stop_token();
  // Links into parent_canceller_'s children, or cancels this node if that
  // is cancelled already.
  void register_with_parent() noexcept;
  // Unlinks from parent_canceller_'s children if still linked.
  void deregister() noexcept;
  // The last reference is gone: disarm the timer, deregister. False if the
  // node must be leaked instead (see lib/context.cpp, "Freeing").
  bool prepare_free() noexcept;
  static void fire(TimerNode* node) noexcept;

  SpinLock mu_;
  // This node's own CancelCode; written once, under mu_ (seq_cst, see
  // cancelled_source), read lock-free. Once an ancestor's code is set, ours is set to the same
  // value (code() never changes its answer).
  std::atomic<std::uint8_t> code_{0};
  // code_ while our own cancel (not our parent's) checks the ancestors,
  // under mu_ (C7): readers wait for the final code.
  static constexpr std::uint8_t kCancelling = 0xff;
  // The cause that goes with code_: written once, under mu_, before the
  // release store of code_, and never again; so a reader that saw code_ set
  // (acquire) reads it without the lock. OK: none given.
  absl::Status cause_;
  // What cause_ becomes when our own deadline timer cancels us; fixed by
  // create() before the timer is armed.
  absl::Status deadline_cause_;
  // Set (release) under mu_ once done_ / stop_ are made; they never change
  // afterwards, so a reader that saw the flag reads them without the lock.
  std::atomic<bool> done_made_{false};
  std::atomic<bool> stop_made_{false};
  // The done channel's handle, a RecvChan<std::monostate> built here in
  // place by make_done() (storage, not the member itself, so that this
  // header needs no public channel header; lib/context.cpp checks that the
  // handle fits).
  alignas(void*) unsigned char done_storage_[sizeof(void*)];
  std::stop_source stop_{std::nostopstate};

  // The children registered with us (guarded by mu_): a doubly linked list
  // through the children's sibling links. Weak: a child holds us, not the
  // other way round.
  CancelNode* first_child_ = nullptr;
  // The CancelNode we are registered with (our parent's canceller), fixed
  // at construction; nullptr when the parent never cancels.
  CancelNode* const parent_canceller_;
  // Guarded by parent_canceller_->mu_: our links in its children list.
  CancelNode* prev_sibling_ = nullptr;
  CancelNode* next_sibling_ = nullptr;
  bool linked_ = false;
  // Used only by the one cancel() that took us from the parent's list.
  CancelNode* cancel_next_ = nullptr;
  // The after_func registrations waiting for our cancellation (guarded by
  // mu_): a doubly linked list through AfterFunc::prev/next, each holding
  // the registration's reference.
  AfterFunc* first_after_func_ = nullptr;

  // Set before the timer is armed and never changed: whether there is a
  // deadline timer to disarm.
  bool timer_armed_ = false;
  DeadlineTimer timer_;
};

}  // namespace detail
}  // namespace goro

#endif  // GORO_DETAIL_CONTEXT_NODE_HPP_
