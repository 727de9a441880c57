// lib/multishot.hpp: MultishotSource, the state of one io_uring multishot
// request that outlives the goroutines it serves (goro::io::AcceptStream,
// goro/io_multishot.hpp, is its public face; the ring's side is in
// poller_uring.cpp, "Multishot requests").
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
// Glossary
//   source     a MultishotSource: one listening socket's multishot accept.
//   armed      the multishot request is in a ring (`armed_on`): between the
//              SQE queued by commit and its terminal CQE (one without
//              IORING_CQE_F_MORE).
//   result     one CQE's res: an accepted fd, or -errno.
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
//      listen backlog (as with no accept at all) until a waiter parks with
//      the queue empty and re-arms it. Nothing is lost or dropped.
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
// Rejected alternatives
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
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "goro/detail/io_op.hpp"
#include "mutex.hpp"

namespace goro::detail {

class Poller;

struct MultishotSource {
  enum class Kind : std::uint8_t { kAccept };

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
  std::deque<int> results ABSL_GUARDED_BY(mu);
  absl::InlinedVector<IoOp*, 2> waiters ABSL_GUARDED_BY(mu);  // FIFO
};

// Takes a reference.
inline void retain(MultishotSource& source) noexcept {
  // Relaxed: the caller already holds a reference (or the lock that keeps
  // the armed ring's one alive), so the count cannot reach zero meanwhile.
  source.references.fetch_add(1, std::memory_order_relaxed);
}
// Drops a reference; the last one frees the source (and closes queued fds).
void release(MultishotSource& source) noexcept;

// The result the kernel's request leaves for nobody: an accepted fd is
// closed.
void discard_result(const MultishotSource& source, int result) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_MULTISHOT_HPP_
