// goro/detail/context_node.hpp
//
// Defines: goro::detail::ContextNode (a node of the context tree, shared by
// the goro::Context handles that refer to it), CancelNode (a node that can
// be cancelled: with_cancel, with_deadline), ValueNode<T> (with_value), and
// the error codes a cancelled node records. goro/context.hpp builds the
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

#include "goro/chan.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/timer.hpp"

namespace goro::detail {

class CancelNode;

// Why a node was cancelled (CancelNode::code). 0 while it is not.
enum class CancelCode : std::uint8_t { kNone = 0, kCanceled = 1, kDeadlineExceeded = 2 };

// "No deadline", in steady-clock nanoseconds.
inline constexpr std::int64_t kNoContextDeadline = std::numeric_limits<std::int64_t>::max();

// A node of the context tree. Immutable after construction except for the
// reference count (and, in a CancelNode, the cancellation state).
class ContextNode {
 public:
  enum class Kind : std::uint8_t { kCancel, kValue };

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

// with_cancel's and with_deadline's node. Everything but the constructor
// and the inline fast paths is in lib/context.cpp.
class CancelNode final : public ContextNode {
 public:
  // A new node under `parent` (adopted reference; may be nullptr), with
  // deadline `deadline_ns` (already capped by the parent's). Returns it
  // registered with the parent's canceller, already cancelled if that is,
  // and with its timer armed if it has a deadline of its own (`arm_timer`):
  // then it must be called from a goroutine (std::logic_error otherwise).
  static CancelNode* create(ContextNode* parent, std::int64_t deadline_ns, bool arm_timer);

  // Cancels this node and every node below it, once; later calls do
  // nothing. Any thread, any number of concurrent callers.
  void cancel(CancelCode code) noexcept { cancel(code, /*from_parent=*/false); }

  // kNone until this node or one of its cancellable ancestors is
  // cancelled, then why: this node's own code if set, else the nearest
  // ancestor's. Reading the ancestors too makes cancellation of a subtree
  // linearisable, as Go's (whose Err() waits for the parent's lock while
  // it cancels the children): once a parent's code is stored, every
  // descendant reports it, before the canceller has reached them. Acquire:
  // pairs with cancel's release store, so a caller that sees the code also
  // sees what the canceller did before cancelling. O(depth of the chain of
  // cancel nodes); one load for a node whose own code is set.
  [[nodiscard]] CancelCode code() const noexcept {
    for (const CancelNode* n = this; n != nullptr; n = n->parent_canceller_) {
      const std::uint8_t c = n->code_.load(std::memory_order_acquire);
      if (c != 0) return static_cast<CancelCode>(c);
    }
    return CancelCode::kNone;
  }

  // The done channel, made on first use (closed at once if the node is
  // already cancelled). The reference stays valid while the node lives.
  [[nodiscard]] const RecvChan<std::monostate>& done() {
    // Acquire: pairs with the release store that publishes done_.
    if (done_made_.load(std::memory_order_acquire)) return done_;
    return make_done();
  }

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
  ~CancelNode() override = default;

  void cancel(CancelCode code, bool from_parent) noexcept;
  const RecvChan<std::monostate>& make_done();
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
  // This node's own CancelCode; written once, under mu_ (release), read
  // lock-free. Once an ancestor's code is set, ours is set to the same
  // value (code() never changes its answer).
  std::atomic<std::uint8_t> code_{0};
  // Set (release) under mu_ once done_ / stop_ are made; they never change
  // afterwards, so a reader that saw the flag reads them without the lock.
  std::atomic<bool> done_made_{false};
  std::atomic<bool> stop_made_{false};
  RecvChan<std::monostate> done_;
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

  // Set before the timer is armed and never changed: whether there is a
  // deadline timer to disarm.
  bool timer_armed_ = false;
  DeadlineTimer timer_;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_CONTEXT_NODE_HPP_
