// lib/poller.hpp
//
// Defines: goro::detail::Poller (the per-P netpoller behind goro::io),
// PollerDriver (a backend's process-wide half), choose_poller(), and what
// the runtime knows of each kind of operation (kIoKinds, io_direction).
// The two backends: UringPoller in poller_uring.cpp; EpollPoller with its
// per-fd PollDesc table in poller_epoll.cpp.
//
// The netpoller, after Go's netpoll.go, with one poller per P because an
// io_uring ring belongs to the thread that submits to it
// (docs/ARCHITECTURE.md, "Why one thread per P").
//
// Glossary
//   op         an IoOp: one read, write, accept... embedded in the awaiter
//              in the waiting goroutine's frame (goro/detail/io_op.hpp).
//   owner      the P whose worker thread submitted the op (io_uring) or
//              whose epoll instance holds the fd (epoll).
//   in flight  submitted and not yet completed for the poller: its CQE has
//              not been reaped (io_uring), it is in its fd's waiter list
//              (epoll).
//   wake       making a worker that sleeps in its poller return: a write to
//              the poller's eventfd, which the worker keeps a read armed on
//              (io_uring) or has registered (epoll).
//
// The interface (one type per level, one implementation per backend;
// nothing outside the backends asks which backend runs):
//   PollerDriver   the process-wide half, one constant table per backend:
//                  its name, the factory of per-P pollers, the start and
//                  end of a run (epoll's registration epoch), and what
//                  io::close asks (forget_fd), which may come from any
//                  thread, inside a runtime or not.
//   Poller         one per P. The scheduler's side:
//     attach()     on the worker thread, before anything else: io_uring
//                  creates its ring here (SINGLE_ISSUER ties it to the thread).
//     poll()       owner thread, never blocks: submits what is queued and
//                  makes the goroutines of completed ops runnable on this P
//                  (runnext if free, then the local queue, in completion
//                  order), waking an idle P if any is stealable. Cheap when
//                  there is nothing to do.
//     wait(t)      owner thread: as poll(), but first sleeps until an op
//                  completes, wake() is called, or the steady clock reaches t
//                  (nanoseconds; kNever for no deadline). May return early.
//     wake()       any thread: makes the current or next wait() return. A wake
//                  before the wait is not lost (the eventfd counter keeps it);
//                  a flag makes repeated wakes cost one write.
//     detach()     owner thread, at shutdown: cancels every op in flight and
//                  reaps every completion without readying anyone, so that
//                  the sweep can destroy the frames (and their buffers).
//   and the operations' side (goro::io's awaiters, through io.cpp):
//     try_now(op)  the goroutine, on the owner thread: one attempt that does
//                  not wait (epoll: the non-blocking system call; io_uring: a
//                  send with MSG_DONTWAIT, nothing for other kinds). True
//                  when the op is complete.
//     start(op)    the goroutine, about to park: io_uring queues the SQE.
//     commit(op)   after the deadline and stop callback are set up: parks
//                  the op (epoll: in its fd's waiter list) unless it
//                  completed or was cancelled meanwhile; false to continue.
//     cancel(op)   any thread, once per op (io_cancel's compare-exchange
//                  decides): ends the op early; it completes with
//                  -ECANCELED unless its result came first.
//   The per-op calls are virtual: one indirect call per step of an op that
//   already costs a system call or a trip through the ring.
//
// Adding an operation (the net library's multishot accept, provided
// buffer rings): its IoKind and request fields in
// goro/detail/io_op.hpp; its name and direction in kIoKinds below; its SQE
// in UringPoller::prep and its system call in the epoll backend's
// attempt(); a new step of an op's life is a new virtual here, which both
// backends implement. Nothing else in the runtime changes.
//
// Invariants
//   1. An op's goroutine is made runnable exactly once, after the poller is
//      done with the op (its CQE was reaped / it left the waiter list).
//   2. Ops carry their own buffers in their frames; the poller copies
//      nothing.
//   3. io_uring: no completion is lost when more ops are in flight than the
//      CQ has entries: the kernel's overflow list holds the rest, and the
//      owner flushes it (poller_uring.cpp says how, and why ops are not
//      capped in user space instead).
//   4. epoll: each fd is registered once, edge-triggered, for input and
//      output, with the epoll of the P that first waits on it; its waiter
//      lists and ready flags are guarded by its PollDesc lock.
//
// Rescuing a busy P's I/O
//   A P polls when its goroutines park and every kPollInterval schedules,
//   so while one goroutine computes without suspending, the ops in its
//   poller complete for nobody. Timers do not have that problem (idle Ps
//   run a busy P's due timers); I/O is rescued by sysmon:
//   1. Each round, a P that has run the same goroutine for kIoRescueNanos
//      or longer (its schedule count has not moved, so it has not polled)
//      while ops wait in a poller is a rescue candidate; while there is
//      one, sysmon's rounds stay at most kIoRescuePeriodNanos apart
//      instead of backing off.
//   2. epoll: sysmon polls the candidate's epoll instance itself, with a
//      zero timeout: epoll_wait may be called on one instance from several
//      threads, the waiter lists are under their PollDesc locks, and each
//      edge goes to one caller. The completed goroutines go to the global
//      queue and an idle P is woken to run them (the owner cannot take
//      them: it is busy). The owner's wake eventfd, if it is ready, stays
//      ready for its owner (it is level-triggered).
//   3. io_uring: with SINGLE_ISSUER|DEFER_TASKRUN only the ring's thread
//      may run the kernel's completion work (io_uring_enter from any other
//      task fails), and that thread computes. So sysmon reaps the ring's
//      CQ itself, and asks the thread, with a signal, for what only it can
//      do (poller_uring.cpp names these steps in its code):
//      3a. Sysmon tries the ring's CQ lock (it never waits for it) and
//          takes the CQEs there are: an op's final result goes into the op
//          and its goroutine to the global queue, and an idle P is woken,
//          as in step 2. A CQE that only the owner can act on (the wake
//          read; a -EAGAIN or the readiness poll after it, which resubmit
//          the op) is handed back, under the lock, in a bounded list
//          (when it is full sysmon stops reaping: the rest waits in the
//          CQ, or in the kernel's overflow list, for the owner). Every CQE
//          taken is counted for the owner to take off its ops in flight.
//      3b. If the kernel holds completion work for the thread
//          (IORING_SQ_TASKRUN), completions it could not post
//          (IORING_SQ_CQ_OVERFLOW), SQEs the thread queued and has not
//          submitted, or resubmissions handed back, sysmon sends the
//          thread Config::io_rescue_signal (SIGURG by default, as Go's
//          preemption), tagged in si_value so that the handler tells
//          goro's from the program's, at most once per
//          kIoRescuePeriodNanos, and looks again kMinDelayNanos later. It
//          sends none to a thread that blocks the signal, and none once
//          the program has installed another handler for it.
//      3c. The handler, on the ring's thread between two of its
//          instructions: if the thread is inside the poller's ring code
//          (which then polls anyway), it returns. Otherwise it resubmits
//          the handed-back ops if it wins the CQ lock (a try), then enters
//          the ring with what is queued and GETEVENTS: the kernel submits
//          the SQEs and runs the completion work, posting the CQEs that
//          step 3a takes next round. Nothing else: no lock it could wait
//          for, no allocation, errno kept. A signal that is not goro's goes
//          to the handler installed before (SA_RESTART | SA_ONSTACK).
//      3d. The owner takes the CQ lock whenever it reaps (poll, wait, a
//          full SQ): uncontended, one compare-exchange and a store. It
//          first takes over what sysmon left: the count of CQEs taken, the
//          handed-back CQEs (completed then as its own), and a SIGPIPE
//          that a write sysmon completed raised on the thread.
//      3e. detach() closes the ring to sysmon under the lock before it
//          cancels everything; the handler finds its ring through a
//          thread-local pointer that is set from attach() to detach(), so
//          a signal that lands after the runtime stopped, or on a thread
//          that owns no ring, does nothing.
//      Each CQE leaves the CQ once, by the one holder of the lock who
//      advances the head past it: none is lost or completed twice. An SQE
//      is queued only once the awaiter has armed its deadline and stop
//      callback (commit), so a handler that submits it at any moment
//      cannot resume a goroutine still inside its await_suspend.
//   Rejected for epoll: nesting each P's epoll instance in the others'
//   (an idle P would wake at once, but every event of a P that polls for
//   itself would wake the idle ones too, and epoll refuses the loops two
//   busy Ps would make); one epoll instance for all Ps, as Go (every
//   wait would contend on one instance, where a P's own edges now stay
//   with it).
//   Rejected for io_uring:
//   * Rings without DEFER_TASKRUN (COOP_TASKRUN|TASKRUN_FLAG, or no
//     flags): the kernel would post completions through task work run at
//     the busy thread's next return to user space (with COOP_TASKRUN not
//     before its next tick or system call), which sysmon could reap under
//     the same lock without a signal. But every ring would lose the
//     batching DEFER_TASKRUN gives every enter call, on the owner's hot
//     path, to save a signal that only a computing goroutine costs; and
//     SQEs the busy thread queued would still wait for it. (Kernels that
//     refuse DEFER_TASKRUN get such rings from the probe; steps 3a-3e
//     serve them unchanged.)
//   * MSG_RING (another ring posting a CQE into the busy one): it moves a
//     CQE between rings, but the busy ring's completions are not posted
//     at all until its own thread runs their task work.
//   * Asking through PCore::preempt: honoured at yield() and suspension only,
//     which a computing goroutine does not reach.
//   * Sysmon entering the ring itself: refused (EEXIST) to any task but
//     the submitter under DEFER_TASKRUN.
//
// Choosing a backend (choose_poller, when a runtime starts): Config::poller,
// else GORO_POLLER=epoll|uring, else io_uring if the probe allows it. The
// probe creates a ring with SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG; on
// EINVAL (older kernels) with COOP_TASKRUN|TASKRUN_FLAG, then with no
// flags; EPERM/ENOSYS (seccomp, kernel.io_uring_disabled, no io_uring)
// selects epoll. That answer is kept for the process; a transient refusal
// (EMFILE, ENFILE, ENOMEM, EAGAIN) is not, and the next runtime probes
// again. io_uring asked for by name and refused makes run() throw
// std::system_error rather than run on epoll.
//
// Rejected alternatives
//   * One ring shared by all workers under a lock: every submission
//     contends, and a ring reaped by many threads cannot use
//     SINGLE_ISSUER/DEFER_TASKRUN, which batch completion work into the
//     owner's enter calls.
//   * A dedicated poller thread handing completions to workers (libuv,
//     early Tokio): a thread hop per completion, and the thread owns the
//     ring, so every submission would hop too.
//   * EPOLLONESHOT re-arming per wait: an epoll_ctl call for every park;
//     edge-triggered registration once per fd (as Go) costs nothing per
//     wait.
//   * A switch on the backend's kind at each call site (io, the scheduler,
//     blocking calls): every new operation or backend touches them all.
//   * A per-runtime table of function pointers for the per-op calls: the
//     same indirect call as a virtual one, without the type that groups a
//     backend's state with its code.
//   * io_uring linked timeouts (IORING_OP_LINK_TIMEOUT) for deadlines:
//     kernel-only, so they would not serve the epoll backend, and the
//     runtime's timers already wake workers on time.
#ifndef GORO_LIB_POLLER_HPP_
#define GORO_LIB_POLLER_HPP_

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <new>

#include "absl/container/inlined_vector.h"
#include "goro/config.hpp"
#include "goro/detail/io_op.hpp"

namespace goro::detail {

struct PCore;
struct G;
class Poller;
struct PollerDriver;

// Which way an operation moves data, for readiness: a reader waits for
// input (POLLIN), a writer for output (POLLOUT).
enum class IoDirection : std::uint8_t { kRead, kWrite };

// What the runtime knows of each IoKind, in IoKind's order: the name its
// errors carry (goro::io::<name>) and its direction. kPoll's direction
// depends on the events asked for (io_direction).
struct IoKindInfo {
  const char* name;
  IoDirection direction;
};
inline constexpr IoKindInfo kIoKinds[] = {
    {"read", IoDirection::kRead},  {"write", IoDirection::kWrite}, {"recv", IoDirection::kRead},
    {"send", IoDirection::kWrite}, {"accept", IoDirection::kRead}, {"connect", IoDirection::kWrite},
    {"poll", IoDirection::kRead},
};
static_assert(std::size(kIoKinds) == static_cast<std::size_t>(IoKind::kPoll) + 1,
              "one kIoKinds row per IoKind");

[[nodiscard]] inline IoDirection io_direction(const IoRequest& r) noexcept {
  if (r.kind == IoKind::kPoll) {
    // Output only when output alone is asked for.
    return (r.flags & POLLIN) == 0 && (r.flags & POLLOUT) != 0 ? IoDirection::kWrite
                                                               : IoDirection::kRead;
  }
  return kIoKinds[static_cast<std::size_t>(r.kind)].direction;
}

// A table indexed by fd number, one Entry per fd (epoll's PollDescs,
// io_uring's counts of ops per fd): three levels of 1024 (top,
// directories, chunks of entries), allocated on first use and kept for the
// life of the process (fd numbers are dense and reused), so fds up to 2^30
// (above the largest nr_open Linux allows) have one while a table for 2^20
// fds costs one directory. Entries are default-constructed.
template <class Entry>
class FdTable {
 public:
  static constexpr int kLevelBits = 10;
  static constexpr int kLevelSize = 1 << kLevelBits;
  static constexpr int kLimit = 1 << (3 * kLevelBits);  // fds below 2^30

  // The fd's entry; nullptr if fd is out of range or (create: memory ran
  // out; !create: none was ever made).
  Entry* find(int fd, bool create) noexcept {
    if (fd < 0 || fd >= kLimit) return nullptr;
    Directory* directory = load_or_make(top_[fd >> (2 * kLevelBits)], create);
    if (directory == nullptr) return nullptr;
    Chunk* chunk = load_or_make(directory->chunks[(fd >> kLevelBits) & (kLevelSize - 1)], create);
    if (chunk == nullptr) return nullptr;
    return &chunk->entries[fd & (kLevelSize - 1)];
  }

 private:
  struct Chunk {
    Entry entries[kLevelSize]{};
  };
  struct Directory {
    std::atomic<Chunk*> chunks[kLevelSize] = {};
  };

  template <class Node>
  static Node* load_or_make(std::atomic<Node*>& slot, bool create) noexcept {
    // Acquire: pairs with the release below, so the node is constructed.
    Node* node = slot.load(std::memory_order_acquire);
    if (node != nullptr || !create) return node;
    auto* fresh = new (std::nothrow) Node;
    if (fresh == nullptr) return nullptr;
    // Release on success publishes the constructed node; acquire on
    // failure sees the winner's.
    if (!slot.compare_exchange_strong(node, fresh, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      delete fresh;
      return node;
    }
    return fresh;
  }

  std::atomic<Directory*> top_[kLevelSize] = {};
};

// Ends `op` as io::close(fd) ended it: the cancel word says kClosed (unless
// a deadline or a stop came first) and the result -ECANCELED. Acq_rel, as
// io_cancel's compare-exchange, which it races with.
inline void end_as_closed(IoOp& op) noexcept {
  std::uint32_t none = 0;
  op.cancel.compare_exchange_strong(none, static_cast<std::uint32_t>(IoCancel::kClosed),
                                    std::memory_order_acq_rel);
  op.result = -ECANCELED;
}

// The goroutines of the ops one rescue completed.
using RescuedGoroutines = absl::InlinedVector<G*, 16>;

// The backend a runtime runs on: its driver, the io_uring setup flags the
// probe accepted, and what to log.
struct PollerChoice {
  const PollerDriver* driver = nullptr;
  unsigned uring_flags = 0;
  const char* description = "";
  // Config::multishot_accept and Config::accept_queue_capacity (io_uring;
  // multishot.hpp), set by with_multishot_settings.
  bool multishot_accept = false;
  unsigned accept_queue_capacity = 0;
  // Config::multishot_receive and the provided buffer ring's shape.
  bool multishot_receive = false;
  unsigned receive_buffer_count = 0;
  unsigned receive_buffer_size = 0;
  unsigned receive_queue_capacity = 0;
};

// `choice` with the runtime's multishot settings from `config`.
[[nodiscard]] PollerChoice with_multishot_settings(PollerChoice choice, const Config& config);

// The process-wide half of a backend (the top of this file): a table of
// functions, one constant instance per backend (its process-wide state,
// epoll's fd table, lives in the backend's file). Any thread.
struct PollerDriver {
  // "io_uring" or "epoll" (goro::io::poller_backend()).
  const char* name;
  // The poller of P `p` (not attached yet), whose completed goroutines go
  // to p's queues. `rescue_signal` is Config::io_rescue_signal (io_uring
  // signals a busy ring's thread with it; 0 sends none).
  std::unique_ptr<Poller> (*make_poller)(PCore& p, const PollerChoice& choice, int rescue_signal);
  // A runtime on this backend is about to start, or its workers have all
  // exited (before the sweep frees the frames its ops are in).
  void (*new_run)() noexcept;
  // io::close(fd), before the fd is closed: wakes every op parked on fd
  // with -EBADF and forgets what the backend knows of it.
  void (*forget_fd)(int fd) noexcept;
  // Whether an fd's I/O goes to the poller of the P whose goroutine starts
  // the operation (io_uring: each op is submitted to that P's ring), rather
  // than to one P's poller for the fd's life (epoll: the fd stays in the
  // epoll of the P that first used it). Standby Ps (scheduler.hpp) rely
  // on the first: a goroutine handed over takes its I/O with it.
  bool io_follows_the_goroutine;
};

const PollerDriver& uring_driver() noexcept;  // poller_uring.cpp
const PollerDriver& epoll_driver() noexcept;  // poller_epoll.cpp

// The backend for a runtime with `requested` (see the top of this file).
// Throws std::system_error when io_uring was requested by name (Config or
// GORO_POLLER) and cannot be used.
PollerChoice choose_poller(PollerBackend requested);
// Tests: forgets the probe's kept answer, so that the next runtime probes
// io_uring again as the first one in a process does.
void forget_uring_probe() noexcept;
// The backend of the runtime running now, or of the last one (epoll before
// any): for calls that may come from outside the runtime (io::close).
const PollerDriver& active_poller_driver() noexcept;
void set_active_poller_driver(const PollerDriver& driver) noexcept;

// Ring and epoll sizes.
struct PollerTuning {
  // Submission queue entries per ring; a full SQ is submitted early.
  static constexpr unsigned kSubmissionEntries = 256;
  // Completion queue entries per ring: completions beyond this many wait
  // in the kernel's overflow list until the owner reaps.
  static constexpr unsigned kCompletionEntries = 4096;
  // epoll events taken per epoll_wait.
  static constexpr int kEpollBatch = 128;
};

// The per-P half of a backend (the top of this file).
class Poller {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  explicit Poller(PCore& p);
  virtual ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // The scheduler's side.
  virtual void attach() = 0;
  virtual void detach() = 0;
  virtual void poll() = 0;
  virtual void wait(std::int64_t deadline_ns) = 0;
  void wake() noexcept;
  // Owner thread: whether ops of this P are in flight in the kernel, and
  // whether poll() costs no system call when nothing completed (so that
  // spinning on it before going idle is cheap).
  [[nodiscard]] virtual bool has_ops_in_flight() const noexcept = 0;
  [[nodiscard]] virtual bool cheap_to_poll() const noexcept = 0;
  // Any thread (sysmon's rescue): whether ops wait in this poller (epoll:
  // in any PollDesc; io_uring: any SQE in flight but the wake read,
  // multishot requests included). Exact whenever the P is idle.
  [[nodiscard]] virtual bool ops_waiting() const noexcept = 0;
  // Any thread (the deadlock check, deadlock.cpp): whether a goroutine
  // waits for an op of this poller, or (io_uring) for a result of any
  // multishot source. A multishot request armed in the ring with no
  // goroutine waiting on it does not count: it can only queue results for
  // nobody (Go's view: a goroutine blocked in Accept is not deadlocked, an
  // open listener nobody accepts on is). Exact whenever every P is idle.
  [[nodiscard]] virtual bool goroutines_waiting() const noexcept { return ops_waiting(); }
  // What one rescue did: how many goroutines it made runnable, and whether
  // it signalled the owner's thread (io_uring, step 3b), whose results
  // the next rescue collects.
  struct Rescue {
    std::uint32_t readied = 0;
    bool signalled = false;
  };
  // Sysmon, at `now_ns`, while the owner runs one goroutine and so does
  // not poll (see "Rescuing a busy P's I/O" above): makes the goroutines
  // of ops that completed runnable through the global queue, so that idle
  // Ps run them. A backend that must signal the owner's thread does so at
  // most once per `signal_period_ns`.
  virtual Rescue rescue(std::int64_t now_ns, std::int64_t signal_period_ns) noexcept = 0;

  // The operations' side (io.cpp).
  [[nodiscard]] virtual bool try_now(IoOp& op) noexcept = 0;
  virtual void start(IoOp& op) noexcept = 0;
  [[nodiscard]] virtual bool commit(IoOp& op) noexcept = 0;
  virtual void cancel(IoOp& op) noexcept = 0;
  // Any thread, holding the source's lock (multishot.hpp, step 5): cancels
  // the multishot request this poller's ring holds under `user_data`. Only
  // a backend that arms multishot requests is ever asked.
  virtual void cancel_multishot(std::uint64_t user_data) noexcept { (void)user_data; }
  // Any thread: whether this poller serves a kRecv op that names a
  // multishot source with that source (io_uring with
  // Config::multishot_receive); false: as a plain recv on the fd. Fixed for
  // the poller's life (goro::io::ReceiveStream::multishot_active).
  [[nodiscard]] virtual bool serves_multishot_receive() const noexcept { return false; }

 protected:
  // Owner thread, in attach() and detach(): SIGPIPE is blocked on a worker
  // thread while it serves a runtime, and its previous mask restored after
  // (poller.cpp, "SIGPIPE").
  void block_sigpipe() noexcept;
  void restore_signal_mask() noexcept;
  // Makes op's goroutine runnable on this P (owner thread).
  void ready(IoOp& op) noexcept;
  // After a batch: wakes an idle P if goroutines were readied.
  void finish_batch() noexcept;
  // Sysmon, after a rescue: makes `goroutines` (their ops completed) runnable
  // through the global queue and wakes an idle P to run them; the owner's
  // queues are its own.
  void ready_rescued(const RescuedGoroutines& goroutines) noexcept;
  // The eventfd was read: later wakes must write again. Acq_rel: acquires
  // what the wakers wrote before waking.
  void wake_consumed() noexcept { wake_pending_.exchange(false, std::memory_order_acq_rel); }

  PCore& p_;
  const int wake_fd_;
  sigset_t saved_signal_mask_{};
  bool signal_mask_saved_ = false;
  std::uint32_t readied_ = 0;  // goroutines readied in the current batch
  bool stealable_ = false;     // one of them went where a thief can take it

 private:
  std::atomic<bool> wake_pending_{false};
};

// Worker thread, after an op failed with EPIPE: takes the SIGPIPE that the
// failing write raised on this thread, where it is blocked, so that it is
// neither delivered later nor left pending (poller.cpp, "SIGPIPE").
void consume_sigpipe() noexcept;

// Tests (poller_uring.cpp): while set, every read SQE carries RWF_NOWAIT,
// so that io_uring answers -EAGAIN where no data is ready (as some kernels
// do for every non-blocking file, where others poll inside the kernel) and
// the ops go round as readiness polls (poller_uring.cpp, step 3).
void uring_reads_say_eagain_for_testing(bool on) noexcept;
// Tests: how many multishot receives ended because their P's provided
// buffer ring was empty (ENOBUFS), in this process so far.
[[nodiscard]] std::uint64_t uring_receive_exhaustions_for_testing() noexcept;
// Tests (poller_uring.cpp): how many io_uring ops on fd are in flight
// (committed, final CQE not reaped yet).
std::uint32_t uring_ops_on_fd_for_testing(int fd) noexcept;
// Tests (poller_epoll.cpp): how many epoll ops are parked on fd.
std::uint32_t epoll_ops_parked_on_fd_for_testing(int fd) noexcept;
// Tests: sends thread `tid` of this process goro's rescue signal `signo`,
// as sysmon does (step 3b of "Rescuing a busy P's I/O"), whatever the
// thread is doing.
void uring_send_rescue_signal_for_testing(int signo, pid_t tid) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_POLLER_HPP_
