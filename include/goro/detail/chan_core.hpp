// goro/detail/chan_core.hpp
//
// Defines: goro::detail::Waiter (Go's sudog), WaitQueue (waiter_list.hpp's
// list, plus select arbitration), SelectState,
// ChanAttachment, ChanCore (the untyped part of a channel: lock, queues, counters),
// ChanState<T> (a ChanCore plus its ring buffer), the operations that run
// with a channel's lock held (send_locked, recv_locked), close_chan, and the
// lock-free "would block" checks of non-blocking operations. goro/chan.hpp
// and goro/select.hpp build the public API on these.
//
// This is goro's counterpart of Go's runtime/chan.go, and follows it.
//
// Glossary
//   channel     a ChanState<T>, shared by every Chan/SendChan/RecvChan handle
//               that refers to it (refcounted; the last handle frees it).
//   nil channel a handle with no ChanState. Send and receive block forever;
//               a select case on it is never chosen.
//   buffer      ring of `cap` slots; `count` values from `recvx` onwards.
//   waiter      a Waiter: one goroutine blocked in one operation (or one case
//               of a select) on one channel. It lives in the awaiter, in the
//               goroutine's coroutine frame, so blocking allocates nothing.
//   recvq/sendq FIFO lists of waiters blocked receiving / sending.
//   elem        a waiter's value slot: a sender's T (source), a receiver's
//               std::optional<T> (destination).
//   select      a goroutine blocked in goro::select has one waiter per case,
//               all pointing at one SelectState in its frame; the first
//               party to win SelectState::done (an atomic exchange) completes
//               the select, every other party skips that select's waiters.
//
// Invariants (with the lock held; every field below but `refs` is guarded
// by `lock`, the atomics are atomic only for the lock-free reads below)
//   I1. At least one of recvq and sendq is empty, except for a goroutine
//       blocked in a select on both sides of one unbuffered channel (its
//       send and receive waiters never match each other: the select's own
//       waiters are enqueued only after its poll found nothing, and only a
//       different goroutine dequeues them).
//   I2. Buffered: count > 0 implies recvq is empty (a receiver would have
//       taken the value); count < cap implies sendq is empty (a sender would
//       have used the free slot). Unbuffered: count == 0 always.
//   I3. closed implies recvq and sendq are empty: close() wakes every waiter,
//       and nobody enqueues on a closed channel (send throws; receive on a
//       closed, empty channel returns at once).
//   I4. A waiter is in at most one queue; `in_queue` says whether. A waiter
//       leaves its queue only under the channel lock, either dequeued by a
//       waker (who then owns the waiter until it readies its goroutine) or
//       withdrawn by its own goroutine.
//   I5. A parked goroutine is readied exactly once: a plain waiter by the
//       single party that dequeues it; a select by the party that wins its
//       SelectState::done, which happens at most once.
//   I6. A waker reads or writes a waiter only before readying its goroutine,
//       and touches nothing of it afterwards (the goroutine may run, return
//       and free its frame at once on another thread).
//
// Algorithm (send; receive is its mirror image)
//   1. Lock the channel.
//   2. Closed: unlock, throw ChannelClosed.
//   3. A receiver waits (recvq, skipping select waiters whose select was
//      already won by someone else): dequeue it, move the value straight into
//      its elem (Go's direct handoff: the value never touches the buffer),
//      mark it successful, unlock, ready its goroutine. Done.
//   4. Room in the buffer: move the value into slot `sendx`, count++,
//      unlock. Done.
//   5. Non-blocking: unlock, report "would block".
//   6. Otherwise fill in our waiter (goroutine, elem = our value), link it at
//      the tail of sendq, unlock, park. Whoever dequeues it has taken the
//      value (success) or closed the channel (failure: throw on resume).
//   Receive, step 3: a sender waits. Unbuffered: take its value directly.
//   Buffered (so the buffer is full, I2): take the value at recvx and put the
//   sender's value in its place (recvx and sendx advance together), so that
//   values stay in FIFO order. A closed, empty channel returns "closed".
//   close: lock; throw if closed; set closed; dequeue every waiter of both
//   queues (winning each select's done) into a local list, marking each
//   failed; unlock; ready them all.
//
// Lock-free fast paths (only for non-blocking operations, as chan.go's):
//   try_recv / a select with one receive case and a default: if the channel
//   is empty (unbuffered: no waiting sender; buffered: count == 0) and then
//   not closed, it would block, and we return without locking. Both loads
//   are acquires, so the closed load cannot be performed before the empty
//   load. Argument: say the empty load read the value stored by critical
//   section S (every store to count and sendq.first is made under the lock
//   with release). If the channel had been closed before S, close()'s
//   critical section would happen-before S (lock order), S's store
//   happens-before our acquire load (release/acquire), so our later closed
//   load would have to see true. It saw false, so at the end of S the channel
//   was empty and not closed: the operation linearises there, as if it ran
//   then and found nothing. A stale "empty" is the same as having run a bit
//   earlier, which a non-blocking operation racing a send is allowed to do.
//   try_send / a select with one send case and a default: if the channel is
//   not closed and then full (unbuffered: no waiting receiver; buffered:
//   count == cap), it would block. The first load is an acquire, so the
//   second is performed after it. chan.go's argument: a closed channel never
//   goes from "ready for sending" to "not ready" (nobody sends into it), so
//   if a close came between the two loads, the channel was already full when
//   it was closed; either way there is a moment between the loads at which
//   it was both open and full, and we report what a send then would have
//   done: block. The caller sees a close on its next operation.
//
// Rejected alternatives
//   * A lock-free ring (Vyukov MPMC) for buffered channels: it cannot park
//     waiters or keep FIFO order of waiters without a lock or a second
//     protocol beside it, and Go's semantics need both. The lock is cheap
//     where it matters: a channel used from one worker thread is locked
//     with plain stores (ChanLock, a biased lock), one shared across
//     threads with one atomic exchange.
//   * Allocating waiter nodes (a sudog cache): the awaiter already lives in
//     the coroutine frame, which outlives the wait.
//   * Waking under the lock: readying a goroutine may wake a P; doing it
//     after unlock keeps the critical section short (Go does the same).
#ifndef GORO_DETAIL_CHAN_CORE_HPP_
#define GORO_DETAIL_CHAN_CORE_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "goro/detail/chan_lock.hpp"
#include "goro/detail/frame_allocator.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/detail/waiter_list.hpp"

namespace goro {

// Thrown, as Go panics, by a send on a closed channel (also when the close
// happens while the sender waits), by closing a closed channel and by
// closing a nil channel. what() says which, in Go's words.
class ChannelClosed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

// The arbitration of one blocked select (Go's g.selectDone).
struct SelectState {
  // 0 until a waker or close() claims the select. Relaxed is enough: the
  // exchange is read and written only by parties holding the lock of some
  // channel the select waits on, the atomicity of the exchange alone makes
  // exactly one party win, and the winner's writes to the select (fired,
  // the value) reach the select's goroutine through ready_goroutine's
  // run-queue hand-over, not through this flag.
  std::atomic<std::uint32_t> done{0};
  // The waiter whose case fired, written by the winner before readying.
  struct Waiter* fired = nullptr;
};

// Go's sudog: one goroutine waiting in one operation on one channel.
struct Waiter {
  G* g = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  // Sender: T* (the value to send). Receiver: std::optional<T>* (empty
  // until a sender fills it; stays empty when woken by close).
  void* elem = nullptr;
  // The select this waiter belongs to, or nullptr for a plain send/recv.
  SelectState* select = nullptr;
  // close()'s list of waiters to ready once the lock is released.
  Waiter* wake_next = nullptr;
  // Set by the waker: true when the value was exchanged, false when the
  // waiter was woken by close().
  bool success = false;
  bool in_queue = false;

  // For WaiterList (waiter_list.hpp, L1).
  [[nodiscard]] bool queued() const noexcept { return in_queue; }
  void set_queued(bool queued) noexcept { in_queue = queued; }
};

// A FIFO of waiters (Go's waitq), guarded by the channel lock: a
// WaiterList (waiter_list.hpp, whose L1 is I4 here) that knows selects.
class WaitQueue : public WaiterList<Waiter> {
 public:
  // Dequeues the first waiter that can still be completed: plain waiters,
  // and select waiters whose select this call wins. Waiters of selects won
  // by someone else are unlinked and skipped (their goroutine withdraws
  // nothing then). Returns nullptr if none is left.
  Waiter* dequeue() noexcept {
    for (;;) {
      Waiter* w = pop_front();
      if (w == nullptr) return nullptr;
      if (w->select == nullptr) return w;
      // Relaxed: see SelectState::done.
      if (w->select->done.exchange(1, std::memory_order_relaxed) == 0) {
        w->select->fired = w;
        return w;
      }
    }
  }
};

// Result of an operation attempted with the lock held.
enum class OpStatus {
  kDone,        // the value moved (for a receive on a closed, empty channel:
                // nothing moved and the destination stays empty)
  kClosed,      // send on a closed channel
  kWouldBlock,  // nobody to hand over to and no buffer room / value
};

// State tied to a channel's life (Go 1.23's hchan.timer): goro::after
// attaches its timer, so that the timer goes when the last handle does.
struct ChanAttachment {
  // Runs once, when the last handle is gone, before the channel is freed.
  void (*detach)(ChanAttachment* self) noexcept;
};

// The untyped part of a channel.
struct ChanCore {
  explicit ChanCore(std::size_t capacity, void (*destroy_fn)(ChanCore*) noexcept) noexcept
      : cap(capacity), destroy(destroy_fn) {}

  ChanLock lock;
  // Handles referring to this channel. Increments are relaxed (a new handle
  // is made from an existing one, which keeps the channel alive); the
  // decrement is acq_rel so that the last handle's destruction happens after
  // every other handle's use (the shared_ptr argument).
  std::atomic<std::uint32_t> refs{1};
  // Guarded by lock; atomic for the lock-free checks and len(): stored with
  // release under the lock, loaded with acquire (see the file comment).
  std::atomic<bool> closed{false};
  std::atomic<std::size_t> count{0};
  const std::size_t cap;
  std::size_t recvx = 0;  // next slot to receive from
  std::size_t sendx = 0;  // next slot to send into
  WaitQueue recvq;
  WaitQueue sendq;
  void (*const destroy)(ChanCore*) noexcept;
  // Set once, before the first handle is shared; nullptr for most channels.
  ChanAttachment* attachment = nullptr;

  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (attachment != nullptr) attachment->detach(attachment);
      destroy(this);
    }
  }

  // Lock-free: would a non-blocking receive block now? (file comment)
  [[nodiscard]] bool recv_would_block() const noexcept {
    const bool empty = cap == 0 ? sendq.looks_empty() : count.load(std::memory_order_acquire) == 0;
    return empty && !closed.load(std::memory_order_acquire);
  }
  // Lock-free: would a non-blocking send block now? (file comment)
  [[nodiscard]] bool send_would_block() const noexcept {
    if (closed.load(std::memory_order_acquire)) return false;
    return cap == 0 ? recvq.looks_empty() : count.load(std::memory_order_acquire) == cap;
  }
};

// Readies, after the lock is released, the goroutine of a dequeued waiter.
inline void wake(G* g) noexcept {
  if (g != nullptr) ready_goroutine(g);
}

// close(): see the file comment. Throws ChannelClosed if already closed.
inline void close_chan(ChanCore* c) {
  WakeList<Waiter> to_wake;
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    throw ChannelClosed("close of closed channel");
  }
  // Release: see the file comment (lock-free checks).
  c->closed.store(true, std::memory_order_release);
  for (WaitQueue* q : {&c->recvq, &c->sendq}) {
    while (Waiter* w = q->dequeue()) {
      w->success = false;
      to_wake.push(w);
    }
  }
  c->lock.unlock();
  // The dequeued goroutines stay parked until readied, so their waiters are
  // still valid until then (I6).
  to_wake.wake_all([](Waiter* w) { ready_goroutine(w->g); });
}

// A channel of T: the core and, right after it, `cap` slots.
template <class T>
class ChanState final : public ChanCore {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "goro::Chan<T> needs a T whose move constructor is noexcept");
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  static ChanState* create(std::size_t capacity) {
    void* memory = allocate_frame(bytes(capacity));
    return ::new (memory) ChanState(capacity);
  }

  // With the lock held: steps 2-5 of send. On kDone, *to_wake is the
  // goroutine to ready after unlocking (nullptr if none). Moves from
  // `value` only on kDone.
  OpStatus send_locked(T& value, G** to_wake) noexcept {
    *to_wake = nullptr;
    if (closed.load(std::memory_order_relaxed)) return OpStatus::kClosed;
    if (Waiter* w = recvq.dequeue()) {
      static_cast<std::optional<T>*>(w->elem)->emplace(std::move(value));
      w->success = true;
      *to_wake = w->g;
      return OpStatus::kDone;
    }
    const std::size_t n = count.load(std::memory_order_relaxed);
    if (n < cap) {
      ::new (static_cast<void*>(slot(sendx))) T(std::move(value));
      if (++sendx == cap) sendx = 0;
      // Release: see the file comment (lock-free checks).
      count.store(n + 1, std::memory_order_release);
      return OpStatus::kDone;
    }
    return OpStatus::kWouldBlock;
  }

  // With the lock held: steps 2-5 of receive into `out` (left empty when
  // the channel is closed and drained; then the result is kDone too).
  OpStatus recv_locked(std::optional<T>& out, G** to_wake) noexcept {
    *to_wake = nullptr;
    if (Waiter* w = sendq.dequeue()) {
      T* source = static_cast<T*>(w->elem);
      if (cap == 0) {
        out.emplace(std::move(*source));
      } else {
        // Full buffer (I2): take the oldest value, the sender's goes to the
        // tail, which is the same slot.
        T* s = slot(recvx);
        out.emplace(std::move(*s));
        s->~T();
        ::new (static_cast<void*>(s)) T(std::move(*source));
        if (++recvx == cap) recvx = 0;
        sendx = recvx;
      }
      w->success = true;
      *to_wake = w->g;
      return OpStatus::kDone;
    }
    const std::size_t n = count.load(std::memory_order_relaxed);
    if (n > 0) {
      T* s = slot(recvx);
      out.emplace(std::move(*s));
      s->~T();
      if (++recvx == cap) recvx = 0;
      count.store(n - 1, std::memory_order_release);  // release: file comment
      return OpStatus::kDone;
    }
    if (closed.load(std::memory_order_relaxed)) return OpStatus::kDone;
    return OpStatus::kWouldBlock;
  }

 private:
  explicit ChanState(std::size_t capacity) noexcept : ChanCore(capacity, &ChanState::destroy_fn) {}
  ~ChanState() = default;

  static constexpr std::size_t slots_offset() noexcept {
    return (sizeof(ChanState) + alignof(T) - 1) / alignof(T) * alignof(T);
  }
  static std::size_t bytes(std::size_t capacity) noexcept {
    return slots_offset() + capacity * sizeof(T);
  }
  T* slot(std::size_t i) noexcept {
    return std::launder(reinterpret_cast<T*>(reinterpret_cast<unsigned char*>(this) +
                                             slots_offset() + i * sizeof(T)));
  }

  // The last handle is gone: nobody waits (a waiter's frame holds a
  // handle), so only buffered values remain.
  static void destroy_fn(ChanCore* core) noexcept {
    auto* self = static_cast<ChanState*>(core);
    std::size_t i = self->recvx;
    for (std::size_t n = self->count.load(std::memory_order_relaxed); n > 0; --n) {
      self->slot(i)->~T();
      if (++i == self->cap) i = 0;
    }
    const std::size_t size = bytes(self->cap);
    self->~ChanState();
    free_frame(self, size);
  }

  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                "goro::Chan<T>: over-aligned element types are not supported");
};

}  // namespace detail
}  // namespace goro

#endif  // GORO_DETAIL_CHAN_CORE_HPP_
