// lib/multishot.hpp: MultishotSource, the state of one io_uring multishot
// request that outlives the goroutines it serves (goro::io::AcceptStream
// and goro::io::ReceiveStream, goro/io_multishot.hpp, are its public face;
// the ring's side is in poller_uring.cpp, "Multishot requests"), and
// ProvidedBuffers, a P's provided buffer ring for multishot receives.
//
// Why. A one-shot accept costs an SQE and a trip through the ring per
// connection, and a connection that arrives while no goroutine is parked
// in accept waits in the kernel's backlog until one is. A multishot accept
// (IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT) is submitted once and
// posts a CQE per accepted connection (IORING_CQE_F_MORE while it stays
// armed). Those CQEs belong to no goroutine's frame: they may arrive while
// nobody waits, and the goroutine that takes one may run on any P. So the
// request's state lives in a source of its own, shared by the ring that
// holds the request and by the goroutines that take its results.
//
// The same holds for reading a connection: a one-shot recv needs the
// reader's buffer in the SQE, so a parked reader pins its buffer while the
// connection is idle, and every read is a trip through the ring. A
// multishot receive (IORING_RECV_MULTISHOT with IOSQE_BUFFER_SELECT) stays
// armed and takes a buffer from the P's provided buffer ring only when
// bytes arrive: an idle connection pins none.
//
// Glossary
//   source     a MultishotSource: one listening socket's multishot accept,
//              or one connection's multishot receive.
//   armed      the multishot request is in a ring (`armed_on`): between the
//              SQE queued by commit and its terminal CQE (one without
//              IORING_CQE_F_MORE).
//   result     one CQE's res: an accepted fd, bytes in a provided buffer
//              (MultishotResult: buffer id, bytes left, offset), 0 for the
//              end of the stream, or -errno.
//   waiter     a parked op (IoOp, in its goroutine's frame) whose goroutine
//              waits for the next result.
//
// Invariants (everything below is guarded by `mu`)
//   1. Each result goes to exactly one party: the first waiter, else the
//      queue's tail; `results` is FIFO and waiters are served in FIFO
//      order, so results are taken in the order the kernel posted them.
//   2. A waiter exists only while the source is armed (or being armed on
//      the committing thread's ring): a terminal CQE that leaves waiters
//      re-arms the request on the ring that reaped it (except while the
//      ring drains at shutdown: then the waiters are dropped unreadied, and
//      the sweep destroys their frames).
//   3. A waiter is readied exactly once, by whoever takes it out of
//      `waiters` under `mu`: a result (the ring's owner), a cancel (any
//      thread: deadline, stop token), or stop (any thread).
//   4. The ring holds a reference while armed; the creator (an
//      AcceptStream) holds one until it is destroyed. The source is freed
//      when both are gone, so a CQE never reaches a freed source.
//   5. `results` holds at most `capacity` entries plus what the kernel
//      posts before a cancel takes effect: when it reaches the capacity
//      the ring cancels the request, and connections wait in the kernel's
//      listen backlog (bytes in the socket's receive buffer) until a
//      waiter parks with the queue empty and re-arms it. Nothing is lost
//      or dropped.
//   6. Receive: bytes leave the queue only in order, front first (a
//      partly read buffer stays at the front with its offset), and a
//      buffer goes back to its pool's ring once its last byte is taken;
//      the request is armed at most once at a time, and a one-shot recv
//      runs only while it is not armed and the queue is empty, so the
//      kernel hands each byte to one party, in order.
//   7. multishot_waiters_parked() is true while any source of the
//      process has a waiter: every change of `waiters` adds its size
//      change to one process-wide count, under `mu`. The deadlock detector
//      counts a goroutine parked on a source through it, and not the armed
//      request itself (an armed request nobody waits on only queues).
//
// An accept, step by step:
//   1. try_now (the goroutine, on any P): a queued result is taken at once
//      (stopped: -EBADF). Nothing queued: the goroutine goes to park.
//   2. commit (same thread): under `mu`, a cancel already asked ends the
//      op; a result queued meanwhile is taken; otherwise the op is appended
//      to `waiters`, and if the source is not armed this P's ring arms it
//      (the SQE goes out with the ring's next submission).
//   3. A CQE, on the owner of the ring it is armed on (a CQE sysmon takes
//      from a busy ring is handed back to that owner, never handled by
//      sysmon): its result goes to the first waiter, readied on that P, or
//      to the queue (step 5 of the invariants). Terminal: disarmed, and
//      re-armed at once if waiters are left (invariant 2).
//   4. A cancel (deadline or stop token) takes its op out of `waiters` and
//      readies it with -ECANCELED; an op already taken out completes with
//      its result instead.
//   5. stop (Listener::close): marks the source stopped, fails the
//      waiters with -EBADF, closes the queued fds, and asks the ring it is
//      armed on to cancel the request; fds accepted before the cancel
//      takes effect are closed by the CQE handler.
//
// Receiving (ReceiveStream): the steps above, with these differences.
//   a. A result is bytes in buffer `id` of the ring's pool. A waiter's
//      read copies from the queue front into its own buffer, as many
//      queued bytes as fit (take_received), under `mu`; emptied buffers go
//      back to the pool's ring (its own lock, any thread: the ring's tail
//      is written by one thread at a time, then published with a release
//      store the kernel reads). The reader may run on any P: the queue is
//      under `mu`, and the pool's memory is plain memory.
//   b. The pool ran dry: the request ends with -ENOBUFS (the bytes stay in
//      the socket). The ring's owner then receives into the first
//      waiter's own buffer with a non-blocking recv, under `mu`, and
//      re-arms the request if waiters are left; with no waiter the next
//      read re-arms it. Nothing was queued after the end, so no byte
//      passes another.
//   c. The pool is the ring's (one per P, Config::receive_buffer_count x
//      receive_buffer_size), registered at attach. A result holds a
//      reference to it, so a buffer queued when the runtime ends is still
//      memory; giving it back then only drops the reference.
//
// Rejected alternatives
//   * Provided buffers per connection: every connection would pin its
//     buffers while idle, which is what a multishot receive avoids; one
//     pool per P is shared by all its connections, and a busy connection
//     is bounded (invariant 5) so that it cannot take the whole pool.
//   * One pool for the whole runtime: a ring registers its own buffer
//     groups, and a shared ring's tail would be written from every P.
//   * Falling back by moving the waiter's op to a one-shot SQE: the op
//     would change rings after its deadline and stop callback were armed
//     for another, so a cancel could miss it; the non-blocking recv on the
//     owner needs no SQE.
//   * Keeping the results in the ring's CQ until a goroutine asks: the CQ
//     is shared by all the P's ops, and a CQE left in it blocks nothing
//     but is read by whoever reaps next, so it must be moved out anyway.
//   * A waiter slot per source instead of a FIFO: several goroutines may
//     accept on one listener (a pool of acceptors).
//   * Multishot accept without a bound: a listener nobody accepts on
//     would turn the kernel's bounded backlog into an unbounded queue of
//     open fds in user space.
#ifndef GORO_LIB_MULTISHOT_HPP_
#define GORO_LIB_MULTISHOT_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "goro/detail/io_op.hpp"
#include "mutex.hpp"

namespace goro::detail {

class Poller;

// A P's provided buffer ring (io_uring, poller_uring.cpp): `count`
// buffers of `size` bytes that the kernel fills for multishot receives.
// Shared by the ring's poller and every queued result that holds one of its
// buffers, so that a result outliving the runtime still has its memory.
struct ProvidedBuffers {
  // The poller's reference, plus one per buffer handed out with a result.
  // Acq_rel decrements: the last owner's writes happen before the free.
  std::atomic<unsigned> references{1};
  unsigned count = 0;                    // a power of two
  unsigned size = 0;                     // bytes per buffer
  std::byte* memory = nullptr;           // count * size bytes
  void* ring = nullptr;                  // the io_uring_buf_ring (count entries)
  std::size_t ring_bytes = 0;            // its mapping's length
  Mutex mu;                              // the ring's tail: buffers come back from any thread
  bool live ABSL_GUARDED_BY(mu) = true;  // registered with a ring that still exists

  [[nodiscard]] std::byte* buffer(std::uint16_t id) const noexcept {
    return memory + static_cast<std::size_t>(id) * size;
  }
};

// Puts buffer `id` back in `pool`'s ring (any thread) and drops the
// reference its result held (poller_uring.cpp).
void give_back(ProvidedBuffers& pool, std::uint16_t id) noexcept;

// One result of a multishot request. Accept: `value` is the fd or -errno.
// Receive: `value` is the bytes left in buffer `buffer_id` of `pool`,
// starting at `offset` (pool null: 0 for the end of stream, or -errno).
struct MultishotResult {
  int value = 0;
  std::uint32_t offset = 0;
  std::uint16_t buffer_id = 0;
  ProvidedBuffers* pool = nullptr;
};

struct MultishotSource {
  enum class Kind : std::uint8_t { kAccept, kReceive };

  MultishotSource(Kind kind, int fd) noexcept : kind(kind), fd(fd) {}

  const Kind kind;
  const int fd;
  // Invariant 4. Acq_rel decrements: the last owner's writes (under `mu`
  // or not) happen before the delete.
  std::atomic<unsigned> references{1};

  Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  // The poller whose ring holds the request (null: not armed), the
  // user_data its SQE carries, and whether a cancel of it was asked.
  Poller* armed_on ABSL_GUARDED_BY(mu) = nullptr;
  std::uint64_t user_data ABSL_GUARDED_BY(mu) = 0;
  bool cancel_asked ABSL_GUARDED_BY(mu) = false;
  absl::InlinedVector<MultishotResult, 2> results ABSL_GUARDED_BY(mu);  // FIFO
  absl::InlinedVector<IoOp*, 2> waiters ABSL_GUARDED_BY(mu);            // FIFO
};

// Takes a reference.
inline void retain(MultishotSource& source) noexcept {
  // Relaxed: the caller already holds a reference (or the lock that keeps
  // the armed ring's one alive), so the count cannot reach zero meanwhile.
  source.references.fetch_add(1, std::memory_order_relaxed);
}
// Drops a reference; the last one frees the source (and closes queued fds).
void release(MultishotSource& source) noexcept;

// A result left for nobody: an accepted fd is closed, a buffer given back.
void discard_result(const MultishotResult& result, MultishotSource::Kind kind) noexcept;

// Invariant 7: adds `delta` to the process-wide count of waiters (any
// thread, holding the lock of the source whose `waiters` changed).
void count_multishot_waiters(std::int64_t delta) noexcept;
// Whether any source of the process has a waiter (the deadlock detector;
// a hint, exact while nothing runs).
[[nodiscard]] bool multishot_waiters_parked() noexcept;

// Receive: moves queued bytes into `buffer` (at most `length`), in order,
// giving back the buffers emptied; stops at an end of stream or error,
// which it returns (and pops) only when no byte was moved. The result of
// one read: bytes moved, 0, or -errno. The queue must not be empty.
int take_received(MultishotSource& source, void* buffer, std::size_t length) noexcept
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(source.mu);

}  // namespace goro::detail

#endif  // GORO_LIB_MULTISHOT_HPP_
