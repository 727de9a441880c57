// lib/context.cpp
//
// Go's context package (context.go) on goro's channels and timers.
//
// Glossary
//   node        a ContextNode: what a Context handle points to. Background
//               is no node at all (a null handle). Nodes are immutable but
//               for their reference count and, in a CancelNode, the
//               cancellation state.
//   cancel node a CancelNode (with_cancel, with_deadline, with_timeout): it
//               can be cancelled, and has a lock, a code, a lazily made done
//               channel and stop source, a list of children, maybe a timer.
//   value node  a ValueNode<T> (with_value): a key and a value; it shares
//               the cancellation of its nearest cancel-node ancestor.
//   canceller   for any node, the cancel node whose state it shares (itself
//               for a cancel node); nullptr below the background only.
//   children    the cancel nodes registered with a cancel node: those whose
//               parent's canceller it is (Go's cancelCtx.children). Value
//               nodes never register; cancel nodes under them register with
//               the value node's canceller, as in Go.
//   code        why a cancel node was cancelled: kNone, kCanceled,
//               kDeadlineExceeded (err() turns it into an absl::Status).
//   cause       the absl::Status that goes with the code (Go's
//               context.Cause): what a CancelCauseFunc was given, or the
//               cause of a with_deadline_cause deadline; OK for none, and
//               then cause() reports err().
//   after-func  an AfterFunc: an after_func registration, a not yet started
//               goroutine (its body, a Task holding f and its arguments)
//               waiting in a cancel node's list for the node's cancel.
//   without-cancel node  without_cancel's node: a parent link and nothing
//               else (no canceller, no deadline), so values are found
//               through it and nothing above it cancels what is below.
//
// Ownership
//   Every node holds a reference to its parent; handles (Context,
//   CancelFunc) hold references to their node. A parent's list of children
//   is weak: a child unregisters when cancelled and, at the latest, when
//   its last reference goes. So a long-lived parent never accumulates dead
//   children, whether or not their CancelFuncs are called (Go leaks them
//   until its cancel is called; its vet check exists for that reason).
//
// Invariants
//   C1. code goes from kNone to a final value once, under mu; nothing else
//       changes it. (In between it may hold kCancelling, while the node's
//       own cancel checks the ancestors under mu: never seen under mu.) done_made / stop_made go
//       false -> true once, under mu, and done_ / stop_ are never written after that.
//   C2. If code != kNone and done_made, the done channel is closed or about
//       to be closed by the canceller (it closes it right after unlocking);
//       a done channel made after code was set is made closed. The same for
//       stop_ and request_stop. So "done closed" implies "err() not OK"
//       (code is stored first), Go's rule.
//   C3. A child is linked in its parent canceller's list only while that
//       parent is not cancelled and the child's count is not zero, or the
//       child is being freed and waits for the parent's lock to unlink.
//       `linked` and the sibling links are guarded by the parent's mu.
//   C4. Lock order: a parent's mu before a child's, never the other way.
//       In fact no code holds two context locks at once: cancel() takes the
//       children out of the list under the parent's lock and cancels them
//       after unlocking.
//   C5. No context lock is held while calling out: closing the done
//       channel (which readies goroutines), request_stop (which runs stop
//       callbacks: goro::io's, users'), disarming the timer, releasing
//       references (which may free nodes).
//   C6. A deadline timer's fire callback never cancels in place: it runs
//       under a P's timer lock, where disarming timers (ours, or a child's
//       on the same P) would deadlock. It starts a goroutine that cancels
//       (Go's time.AfterFunc does the same: f runs in its own goroutine).
//   C7. code() is the node's own code, else its nearest cancelled
//       ancestor's, so a parent's cancellation is seen by every descendant
//       the moment the parent's code is stored (Go gets this by holding the
//       parent's lock while it cancels the children, and taking that lock
//       in Err()). A node cancelling itself while an ancestor is cancelled
//       takes the ancestor's code, so code() never changes its answer.
//       Why that holds when a node N and an ancestor A are cancelled at
//       once, each by its own cancel: N's cancel stores kCancelling, then
//       reads the ancestors, then stores its final code; A's stores its
//       final code; a reader (cancelled_source) that finds A re-reads the
//       nodes below A, so its reads of them come after its read of A. All
//       of these are seq_cst, so they have one order. If the reader's
//       re-read of N sees neither the mark nor a code, N's mark comes after
//       it, hence after A's store, and N's read of A (after its mark) sees
//       A: N takes A's code and cause, the reader's answer. If the re-read
//       sees the mark, the reader waits for N's final code and answers
//       N's, as every later reader will.
//   C8. cause_ is written once, under mu, before the release store of code
//       (step 2), and never again. So a reader that loads code != kNone
//       with acquire reads cause_ without the lock. A node that takes an
//       ancestor's code (from the parent's cancel, or by C7) takes its
//       cause with it: cause() names the same cancellation as err(), and
//       never changes its answer.
//   C9. An after-func is in at most one list, its owner's; `linked` and its
//       links are guarded by the owner's mu. Whoever takes it out (cancel's
//       step 2, stop, freeing) holds the registration's reference from then
//       on. Its body is touched only by the one caller whose claim() wins
//       (the cancel that starts it, or stop, or freeing): f runs at most
//       once, and stop says true only when it kept f from running.
//
// Cancel, step by step (cancel(code, cause, from_parent))
//   1. Lock mu. Already cancelled: unlock, done (idempotent; concurrent
//      callers all end here but one).
//   2. If not called by our parent and an ancestor is cancelled already,
//      take its code and cause instead of ours (C7, C8). Store the cause,
//      then the code (release). Note whether done_ and stop_ were made.
//      Detach every child from the list: mark it unlinked and, if its count
//      is not zero, take a reference to it (try_add_ref) and chain it on
//      cancel_next; a child whose count is zero is being freed and waits
//      for our lock to unlink itself, and finds itself unlinked already.
//      Take the after-func list (each now unlinked). Unlock.
//   3. Close done_ (wakes every select and receive waiting on it), request
//      stop on stop_ (runs the stop callbacks: an io operation's asks its
//      poller to cancel at once).
//   4. Cancel each detached child with the same code and cause
//      (from_parent = true: it is already off our list) and drop our
//      reference to it.
//   5. Start each taken after-func whose claim we win (go(body)), and drop
//      its registration's reference. After step 3: f sees done() closed.
//   6. Disarm our deadline timer (a fire in progress is waited for; it
//      finds the code set and does nothing).
//   7. Unless our parent did this: lock the parent canceller's mu and
//      unlink ourselves if still linked.
//
// Registration (with_cancel / with_deadline)
//   The new node gets its deadline: min(own, parent's); if the parent's is
//   not later there is no own timer. If there is, the timer is armed
//   (before the node is visible to anyone but the timer). Then the node
//   registers: lock the parent canceller's mu; if it is cancelled, note its
//   code and cause; else link (unless a fired timer cancelled us already);
//   unlock; with a noted code, cancel ourselves with it. A deadline already
//   past cancels the node before it is returned (with the deadline cause).
//   with_deadline_cause stores the deadline cause in the node before the
//   timer is armed; it never changes, so the fire's goroutine reads it
//   freely.
//
// Deadline fire (on a worker, under the P's timer lock; C6)
//   If the node is not cancelled and its count is not zero (try_add_ref),
//   start a goroutine holding that reference that calls
//   cancel(kDeadlineExceeded, deadline cause). The node outlives the fire:
//   freeing it
//   disarms the timer first, which waits for a fire in progress.
//
// Freeing (release, when the count reaches zero)
//   Disarm the timer; unlink from the parent canceller; drop the
//   after-funcs still listed (claim each, destroy its body unrun, drop the
//   registration's reference: nobody can cancel us any more, so they would
//   never start; no lock, since every stop handle holds a reference to us);
//   delete; release the parent (iteratively up the chain, so a long chain
//   frees without recursion). There are no children left: each holds a
//   reference to us.
//   One case cannot disarm: the fire's goroutine start failing during
//   runtime shutdown destroys the task, and with it the last reference,
//   inside our own fire, whose lock disarm would need. A thread-local
//   marks "inside this node's fire"; then the node is leaked (only during
//   shutdown, and only if every other handle went in that instant).
//
// After-funcs (after_func, AfterFuncStop)
//   after_func builds the goroutine's root Task (the callable and its
//   arguments moved into its frame, as goro::go(f, args...) does) and an
//   AfterFunc holding it, with two references: the stop handle's and the
//   registration's. Add: lock the context's canceller's mu; if its own code
//   is set, step 2 has passed, so unlock and start it now (claim, go);
//   else link it (an ancestor cancelled already reaches us through step 4
//   and finds it). Stop: claim (lost: false, f started or was stopped);
//   lock mu, unlink it if still linked (then the registration's reference
//   is ours to drop; if not, the cancel that took it drops it after losing
//   the claim), unlock, destroy the body unrun, true. The stop handle holds
//   a Context, so the canceller outlives every stop call. A context that
//   can never be cancelled (no canceller) registers nothing: the body is
//   destroyed at once and only the claim is left for stop.
//
// Memory orders
//   refs: see ContextNode (increments relaxed, decrement acq_rel,
//   try_add_ref relaxed because the caller's lock or the timer lock keeps
//   the memory valid). code_: seq_cst stores under mu (the kCancelling
//   mark and the final code) and seq_cst loads in cancelled_source(),
//   behind code()/err()/cause(): C7 needs their one order, and they
//   include release/acquire (a goroutine that sees the error also sees the
//   canceller's earlier writes); relaxed loads under mu (the lock orders
//   them; the mark is never seen there, it is replaced before unlocking).
//   cause_: a plain field published by code_'s final store (C8); the
//   lock-free readers (cause(), an inheriting cancel) first load code_ in
//   cancelled_source(). done_made_/stop_made_: release
//   store under mu after making the object, acquire load on the lock-free
//   fast path (the object is then fully built); relaxed under mu.
//   AfterFunc::refs: as ContextNode's (increments relaxed, decrement
//   acq_rel). AfterFunc::claimed: an exchange, acq_rel, so that exactly one
//   caller wins and its use of the body is ordered after the node's
//   construction whichever thread published it.
//
// Rejected alternatives
//   * A goroutine per after_func parked on done(): a frame and a channel
//     waiter for every registration for as long as the context lives; the
//     list costs two pointers and starts the goroutine only when needed.
//   * A registration that holds its context: f would keep alive a context
//     that nobody can cancel any more (Go's garbage collector drops such a
//     registration); here freeing the node drops it.
//   * The cause behind its own atomic pointer, or under the lock for
//     readers: code_ already publishes the cancellation once, and the cause
//     is fixed before it (C8), so readers stay lock-free.
//   * Cancelling children while holding the parent's lock (Go's way): it
//     would run channel wakeups and stop callbacks under our spinlock and
//     nest locks down the tree; taking the list out first keeps every
//     critical section a few stores (C4, C5).
//   * Strong references from parent to children: a cycle, and the leak Go
//     has when a CancelFunc is dropped.
//   * An eager done channel and stop source per cancel node: most contexts
//     (a group's, one passed only to io) never use one of them; lazily
//     made, a with_cancel is one allocation.
//   * Cancelling in the timer's fire callback: see C6.
//   * A goroutine per deadline context waiting on its timer: a frame for
//     every context with a deadline; the fire starts one only when the
//     deadline comes (C6).
//   * A CancelFunc that cancels when destroyed: `auto [ctx, _] =
//     with_cancel(parent)` would cancel at the end of the scope for users
//     who expect Go's explicit call; with weak children, dropping it leaks
//     nothing anyway (Ownership).
//   * std::mutex / absl::Mutex for mu: a worker thread must not sleep in
//     futex (goro/detail/spinlock.hpp); the critical sections are short.
#include "goro/context.hpp"

#include <atomic>
#include <cstdint>
#include <new>
#include <utility>

#include "goro/go.hpp"
#include "goro/select.hpp"
#include "goro/task.hpp"
#include "goro/time.hpp"

namespace goro::detail {

// One after_func registration: the goroutine to start once the context is
// done, not started yet. Shared by the stop handle (AfterFuncStop) and the
// registration (the canceller's list, or whoever took it from there); the
// last reference frees it. See "After-funcs" above.
struct AfterFunc {
  explicit AfterFunc(Task<void> task) noexcept : body(std::move(task)) {}

  // Drops a reference; the last frees the node (and an unstarted body).
  static void release(AfterFunc* f) noexcept {
    // acq_rel: the freeing thread sees every other holder's writes (the
    // body moved out or reset by whoever claimed it).
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete f;
  }
  // Decides f's fate once: true for the one caller (the canceller starting
  // it, or stop) that may touch `body`. acq_rel: the winner's accesses to
  // the body come after every earlier holder's (release of the node is
  // ordered by `refs` in any case; this keeps the claim self-contained).
  [[nodiscard]] bool claim() noexcept { return !claimed.exchange(true, std::memory_order_acq_rel); }

  std::atomic<std::uint32_t> refs{1};
  std::atomic<bool> claimed{false};
  Task<void> body;  // the goroutine; touched only by the claim's winner
  // Guarded by the owning CancelNode's mu_: the links in its list.
  AfterFunc* prev = nullptr;
  AfterFunc* next = nullptr;
  bool linked = false;
};
namespace {

// The DeadlineTimer whose fire callback is running on this thread (see
// "Freeing").
constinit thread_local const TimerNode* tls_firing = nullptr;

// The goroutine a deadline fire starts: cancels, then drops the reference
// the fire took (through the Context it adopted).
Task<void> cancel_when_due(Context ctx) {
  static_cast<CancelNode*>(ContextAccess::node(ctx))->cancel_at_deadline();
  co_return;
}

}  // namespace

absl::Status status_for(CancelCode code) {
  switch (code) {
    case CancelCode::kNone:
      return absl::OkStatus();
    case CancelCode::kCanceled:
      return absl::CancelledError("context canceled");
    case CancelCode::kDeadlineExceeded:
      return absl::DeadlineExceededError("context deadline exceeded");
  }
  return absl::OkStatus();
}

void ContextNode::release(ContextNode* node) noexcept {
  while (node != nullptr) {
    if (node->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    ContextNode* parent = node->parent_;
    if (node->kind_ == Kind::kCancel && !static_cast<CancelNode*>(node)->prepare_free()) {
      return;  // leaked: see "Freeing"
    }
    delete node;
    node = parent;  // drop the reference the node held
  }
}

CancelNode::CancelNode(ContextNode* parent, std::int64_t deadline_ns) noexcept
    : ContextNode(Kind::kCancel, parent, this, deadline_ns, nullptr),
      parent_canceller_(parent == nullptr ? nullptr : parent->canceller()) {
  timer_.owner = this;
}

CancelNode* CancelNode::create(ContextNode* parent, std::int64_t deadline_ns, bool arm_timer,
                               absl::Status deadline_cause) {
  CancelNode* node;
  try {
    node = new CancelNode(parent, deadline_ns);
  } catch (...) {
    if (parent != nullptr) ContextNode::release(parent);
    throw;
  }
  node->deadline_cause_ = std::move(deadline_cause);  // before the timer can fire
  if (arm_timer) {
    node->timer_.node.when = deadline_ns;
    node->timer_.node.fire = &CancelNode::fire;
    node->timer_armed_ = true;  // published to the fire by the timer lock
    try {
      detail::arm_timer(&node->timer_.node);
    } catch (...) {
      node->timer_armed_ = false;
      ContextNode::release(node);  // not registered yet: frees it and the parent ref
      throw;
    }
  }
  node->register_with_parent();
  return node;
}

void CancelNode::register_with_parent() noexcept {
  CancelNode* p = parent_canceller_;
  if (p == nullptr) return;
  std::uint8_t parent_code;
  absl::Status parent_cause;
  p->mu_.lock();
  parent_code = p->code_.load(std::memory_order_relaxed);  // under p's lock (C1)
  if (parent_code != 0) parent_cause = p->cause_;          // fixed once the code is (C8)
  // Our own code may have been set by a fire that beat us (acquire: any
  // value is fine, the lock below orders the deregistration).
  if (parent_code == 0 && code_.load(std::memory_order_acquire) == 0) {
    prev_sibling_ = nullptr;
    next_sibling_ = p->first_child_;
    if (next_sibling_ != nullptr) next_sibling_->prev_sibling_ = this;
    p->first_child_ = this;
    linked_ = true;
  }
  p->mu_.unlock();
  if (parent_code != 0) {
    cancel(static_cast<CancelCode>(parent_code), std::move(parent_cause), /*from_parent=*/true);
  }
}

void CancelNode::deregister() noexcept {
  CancelNode* p = parent_canceller_;
  if (p == nullptr) return;
  p->mu_.lock();
  if (linked_) {
    if (prev_sibling_ != nullptr) {
      prev_sibling_->next_sibling_ = next_sibling_;
    } else {
      p->first_child_ = next_sibling_;
    }
    if (next_sibling_ != nullptr) next_sibling_->prev_sibling_ = prev_sibling_;
    prev_sibling_ = next_sibling_ = nullptr;
    linked_ = false;
  }
  p->mu_.unlock();
}

void CancelNode::cancel(CancelCode code, absl::Status cause, bool from_parent) noexcept {
  // Steps 1-2.
  mu_.lock();
  // Relaxed: code_ is written only under mu_, which we hold.
  if (code_.load(std::memory_order_relaxed) != 0) {
    mu_.unlock();
    return;
  }
  // An ancestor already cancelled (its cancel has not reached us yet):
  // take its code and cause, so that code() and cause() keep giving what
  // they gave (C7, C8). Mark first. seq_cst, and release would not do: the
  // mark is a store followed by loads of the ancestors' codes, and only a
  // seq_cst store stays ahead of later seq_cst loads (a release store may
  // be overtaken by them: we could then miss the ancestor's code while a
  // reader that found the ancestor misses our mark, and this node's code
  // would change its answer; C7). seq_cst also puts the mark in the one
  // order that C7's argument reasons about, with the ancestors' final
  // stores and every reader's loads. The ancestor's cause_ is fixed once
  // its code is set, and cancelled_source() loaded that code with (at
  // least) acquire: the cause is visible.
  if (!from_parent && parent_canceller_ != nullptr) {
    code_.store(kCancelling, std::memory_order_seq_cst);
    if (const CancelNode* source = parent_canceller_->cancelled_source(); source != nullptr) {
      // Relaxed: final, and loaded by cancelled_source() already.
      code = static_cast<CancelCode>(source->code_.load(std::memory_order_relaxed));
      cause = source->cause_;
    }
  }
  // The cause first (C8), then the code. seq_cst (a release, and C7's one
  // order): err(), code() and cause() read code_ without the lock and must
  // see a cancelled context as cancelled from then on, with its cause. The
  // two flags are written only under mu_: relaxed reads under it suffice.
  cause_ = std::move(cause);
  code_.store(static_cast<std::uint8_t>(code), std::memory_order_seq_cst);
  const bool close_done = done_made_.load(std::memory_order_relaxed);
  const bool stop = stop_made_.load(std::memory_order_relaxed);
  CancelNode* to_cancel = nullptr;
  for (CancelNode* c = std::exchange(first_child_, nullptr); c != nullptr;) {
    CancelNode* next = c->next_sibling_;
    c->prev_sibling_ = c->next_sibling_ = nullptr;
    c->linked_ = false;
    if (c->try_add_ref()) {
      c->cancel_next_ = to_cancel;
      to_cancel = c;
    }
    c = next;
  }
  // The after-funcs: ours now, with their registrations' references.
  AfterFunc* to_start = std::exchange(first_after_func_, nullptr);
  for (AfterFunc* f = to_start; f != nullptr; f = f->next) f->linked = false;
  mu_.unlock();
  // Step 3 (C5: no lock held). done_ and stop_ are no longer written (C1).
  if (close_done) close_chan(done_chan().state());
  if (stop) stop_.request_stop();
  // Step 4.
  while (to_cancel != nullptr) {
    CancelNode* c = to_cancel;
    to_cancel = c->cancel_next_;
    c->cancel(code, cause_, /*from_parent=*/true);
    ContextNode::release(c);
  }
  // Step 5.
  while (to_start != nullptr) {
    AfterFunc* f = to_start;
    to_start = f->next;
    start_after_func(f);
  }
  // Step 6. Not from inside our own fire: the fire never cancels (C6).
  if (timer_armed_) disarm_timer(&timer_.node);
  // Step 7.
  if (!from_parent) deregister();
}

absl::Status CancelNode::cause() const {
  const CancelNode* source = cancelled_source();
  if (source == nullptr) return absl::OkStatus();
  // Relaxed: cancelled_source() loaded it with acquire already. cause_ was
  // written before that release store and is never written again (C8).
  const auto code = static_cast<CancelCode>(source->code_.load(std::memory_order_relaxed));
  return source->cause_.ok() ? status_for(code) : source->cause_;
}

void CancelNode::start_after_func(AfterFunc* f) noexcept {
  if (f->claim()) {
    // Without a runtime to run it (cancelled after run() returned), or if
    // starting it fails, the body is destroyed unrun: go() destroys it.
    try {
      go(std::move(f->body));
    } catch (...) {
    }
  }
  AfterFunc::release(f);  // the registration's reference
}

void CancelNode::add_after_func(AfterFunc* f) noexcept {
  mu_.lock();
  // Relaxed: under mu_ (C1). Cancelled: step 2 has run, and will not see f.
  // Only an ancestor cancelled: our own cancel is on its way (step 4 of the
  // ancestor's) and will find f in the list.
  const bool cancelled = code_.load(std::memory_order_relaxed) != 0;
  if (!cancelled) {
    f->prev = nullptr;
    f->next = first_after_func_;
    if (f->next != nullptr) f->next->prev = f;
    first_after_func_ = f;
    f->linked = true;
  }
  mu_.unlock();
  if (cancelled) start_after_func(f);  // C5: outside the lock
}

bool CancelNode::stop_after_func(AfterFunc* f) noexcept {
  if (!f->claim()) return false;  // started, or stopped before
  mu_.lock();
  const bool was_linked = f->linked;
  if (was_linked) {
    (f->prev != nullptr ? f->prev->next : first_after_func_) = f->next;
    if (f->next != nullptr) f->next->prev = f->prev;
    f->prev = f->next = nullptr;
    f->linked = false;
  }
  mu_.unlock();
  f->body = Task<void>();  // C5: destroyed (unrun) outside the lock
  // Linked: the registration's reference is ours to drop. Not linked: a
  // cancel took it out and drops it in start_after_func, having lost the
  // claim.
  if (was_linked) AfterFunc::release(f);
  return true;
}

static_assert(sizeof(RecvChan<std::monostate>) <= sizeof(void*) &&
                  alignof(RecvChan<std::monostate>) <= alignof(void*),
              "CancelNode::done_storage_ holds one RecvChan");

RecvChan<std::monostate>& CancelNode::done_chan() noexcept {
  return *std::launder(reinterpret_cast<RecvChan<std::monostate>*>(done_storage_));
}

CancelNode::~CancelNode() {
  // Relaxed: the last reference's release (acq_rel) ordered every write.
  if (done_made_.load(std::memory_order_relaxed)) done_chan().~RecvChan();
}

const RecvChan<std::monostate>& CancelNode::done() {
  // Acquire: pairs with the release store that publishes done_storage_.
  if (done_made_.load(std::memory_order_acquire)) return done_chan();
  return make_done();
}

const RecvChan<std::monostate>& CancelNode::make_done() {
  Chan<std::monostate> chan = make_chan<std::monostate>(0);  // outside the lock: allocates
  mu_.lock();
  // Relaxed reads: both flags and code_ change only under mu_.
  if (!done_made_.load(std::memory_order_relaxed)) {
    ::new (static_cast<void*>(done_storage_)) RecvChan<std::monostate>(std::move(chan));
    // Already cancelled: made closed (C2). No waiter can be on it yet, so
    // closing under our lock calls nobody out (C5).
    if (code_.load(std::memory_order_relaxed) != 0) close_chan(done_chan().state());
    // Release: a lock-free reader of done_made_ (acquire) sees the handle
    // built.
    done_made_.store(true, std::memory_order_release);
  }
  mu_.unlock();
  return done_chan();  // an unused `chan` (another thread made one first) is freed here
}

std::stop_token CancelNode::make_stop_token() {
  std::stop_source source;  // outside the lock: allocates
  mu_.lock();
  // Relaxed reads: both flags and code_ change only under mu_.
  if (!stop_made_.load(std::memory_order_relaxed)) {
    stop_ = std::move(source);
    // A fresh source has no callbacks: requesting under the lock runs
    // nothing (C5).
    if (code_.load(std::memory_order_relaxed) != 0) stop_.request_stop();
    // Release: as done_made_ above.
    stop_made_.store(true, std::memory_order_release);
  }
  mu_.unlock();
  return stop_.get_token();
}

bool CancelNode::prepare_free() noexcept {
  if (timer_armed_) {
    if (tls_firing == &timer_.node) return false;  // see "Freeing"
    disarm_timer(&timer_.node);
  }
  deregister();
  // Nobody can cancel us any more: the after-funcs left would never start.
  // Nobody else touches the list now (every stop handle holds a reference
  // to us), so no lock.
  for (AfterFunc* f = std::exchange(first_after_func_, nullptr); f != nullptr;) {
    AfterFunc* next = f->next;
    f->linked = false;
    if (f->claim()) f->body = Task<void>();
    AfterFunc::release(f);
    f = next;
  }
  return true;
}

void CancelNode::fire(TimerNode* node) noexcept {
  CancelNode* self = reinterpret_cast<DeadlineTimer*>(node)->owner;
  // Relaxed: a stale kNone only starts a goroutine that finds the node
  // cancelled and does nothing.
  if (self->code_.load(std::memory_order_relaxed) != 0) return;
  if (!self->try_add_ref()) return;  // being freed: its release disarms us
  const TimerNode* outer = std::exchange(tls_firing, node);
  go(cancel_when_due(ContextAccess::adopt(self)));
  tls_firing = outer;
}

static_assert(std::is_standard_layout_v<TimerNode>, "fire() casts the node back");

}  // namespace goro::detail

namespace goro {

absl::Status Context::err() const {
  const detail::CancelNode* c = canceller();
  return detail::status_for(c == nullptr ? detail::CancelCode::kNone : c->code());
}

absl::Status cause(const Context& ctx) {
  const detail::ContextNode* node = ContextAccess::node(ctx);
  const detail::CancelNode* c = node == nullptr ? nullptr : node->canceller();
  return c == nullptr ? absl::OkStatus() : c->cause();
}

const RecvChan<std::monostate>& Context::done() const {
  detail::CancelNode* c = canceller();
  if (c == nullptr) {
    static const RecvChan<std::monostate> nil;  // never fires
    return nil;
  }
  return c->done();
}

std::stop_token Context::stop_token() const {
  detail::CancelNode* c = canceller();
  return c == nullptr ? std::stop_token() : c->stop_token();
}

ContextWithCancel with_cancel(const Context& parent) {
  detail::ContextNode* p = ContextAccess::node(parent);
  if (p != nullptr) p->add_ref();
  const std::int64_t deadline = p == nullptr ? detail::kNoContextDeadline : p->deadline_ns();
  detail::CancelNode* node = detail::CancelNode::create(p, deadline, /*arm_timer=*/false);
  node->add_ref();  // one for the Context, one for the CancelFunc
  return {ContextAccess::adopt(node), ContextAccess::adopt_cancel(node)};
}

ContextWithCancelCause with_cancel_cause(const Context& parent) {
  auto [ctx, cancel] = with_cancel(parent);
  detail::CancelNode* node = ContextAccess::cancel_node(cancel);
  node->add_ref();  // the CancelCauseFunc's; `cancel` drops its own
  return {std::move(ctx), ContextAccess::adopt_cancel_cause(node)};
}

ContextWithCancel with_deadline_cause(const Context& parent, Clock::time_point deadline,
                                      absl::Status cause) {
  detail::ContextNode* p = ContextAccess::node(parent);
  const std::int64_t parent_deadline = p == nullptr ? detail::kNoContextDeadline : p->deadline_ns();
  const std::int64_t own = detail::to_ns(deadline);
  if (parent_deadline <= own) return with_cancel(parent);  // the parent's comes first
  if (own <= detail::monotonic_now_ns()) {
    // Already past: cancelled before anyone sees it, no timer.
    if (p != nullptr) p->add_ref();
    detail::CancelNode* node =
        detail::CancelNode::create(p, own, /*arm_timer=*/false, std::move(cause));
    node->cancel_at_deadline();
    node->add_ref();
    return {ContextAccess::adopt(node), ContextAccess::adopt_cancel(node)};
  }
  if (p != nullptr) p->add_ref();
  detail::CancelNode* node =
      detail::CancelNode::create(p, own, /*arm_timer=*/true, std::move(cause));
  node->add_ref();
  return {ContextAccess::adopt(node), ContextAccess::adopt_cancel(node)};
}

ContextWithCancel with_deadline(const Context& parent, Clock::time_point deadline) {
  return with_deadline_cause(parent, deadline, absl::OkStatus());
}

Context without_cancel(const Context& parent) {
  detail::ContextNode* p = ContextAccess::node(parent);
  if (p == nullptr) return Context();  // the background already is one
  p->add_ref();
  detail::ContextNode* node;
  try {
    node = new detail::WithoutCancelNode(p);
  } catch (...) {
    detail::ContextNode::release(p);
    throw;
  }
  return ContextAccess::adopt(node);
}

AfterFuncStop::AfterFuncStop(const AfterFuncStop& other) noexcept
    : ctx_(other.ctx_), func_(other.func_) {
  // Relaxed: `other` keeps the node alive (the shared_ptr rule).
  if (func_ != nullptr) func_->refs.fetch_add(1, std::memory_order_relaxed);
}

AfterFuncStop::~AfterFuncStop() {
  if (func_ != nullptr) detail::AfterFunc::release(func_);
}

AfterFuncStop ContextAccess::after_func_from_task(const Context& ctx, Task<void> body) {
  const detail::ContextNode* node = ContextAccess::node(ctx);
  detail::CancelNode* owner = node == nullptr ? nullptr : node->canceller();
  // Never done: the body can never run, so it goes at once; the node stays
  // for stop's answer.
  if (owner == nullptr) body = Task<void>();
  auto* f = new detail::AfterFunc(std::move(body));
  AfterFuncStop stop(ctx, f);  // adopts the first reference
  if (owner != nullptr) {
    // Relaxed: the stop handle's reference keeps the node alive meanwhile.
    f->refs.fetch_add(1, std::memory_order_relaxed);  // the registration's
    owner->add_after_func(f);
  }
  return stop;
}

bool AfterFuncStop::operator()() const noexcept {
  if (func_ == nullptr) return false;
  const detail::ContextNode* node = ContextAccess::node(ctx_);
  detail::CancelNode* owner = node == nullptr ? nullptr : node->canceller();
  if (owner == nullptr) return func_->claim();  // never registered
  return owner->stop_after_func(func_);
}

namespace {

// The context-aware sleep. `parks`: the sleep was positive when asked for
// (sleep(d > 0), or sleep_until a time still ahead), so it gives the P up
// even if its deadline has passed by the time it runs, as the plain sleep
// does: `while (!flag) co_await sleep(1ns, ctx);` must let others run.
Task<absl::Status> sleep_until_or_done(Clock::time_point t, Context ctx, bool parks) {
  if (absl::Status e = ctx.err(); !e.ok()) co_return e;
  if (ctx.done().nil()) {  // cannot be cancelled: a plain sleep
    if (parks && t <= Clock::now()) {
      co_await goro::sleep(std::chrono::nanoseconds(1));  // parks (time.hpp)
    } else {
      co_await goro::sleep_until(t);
    }
    co_return absl::OkStatus();
  }
  // Saturating: t may be as far off as time_point::min() or max().
  const std::chrono::nanoseconds left(
      detail::saturating_add(detail::to_ns(t), -detail::monotonic_now_ns()));
  if (left <= std::chrono::nanoseconds::zero() && parks) {
    // Due already: a select on a fired `after` would not park.
    co_await goro::sleep(std::chrono::nanoseconds(1));
    co_return absl::OkStatus();
  }
  auto r = co_await select(recv_from(after(left)), recv_from(ctx.done()));
  if (r.index() == 0) co_return absl::OkStatus();
  co_return ctx.err();
}

}  // namespace

Task<absl::Status> sleep_until(Clock::time_point t, Context ctx) {
  return sleep_until_or_done(t, std::move(ctx), /*parks=*/t > Clock::now());
}

Task<absl::Status> sleep(std::chrono::nanoseconds d, Context ctx) {
  return sleep_until_or_done(detail::saturating_time_add(Clock::now(), d), std::move(ctx),
                             /*parks=*/d > std::chrono::nanoseconds::zero());
}

}  // namespace goro
