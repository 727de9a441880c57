// lib/poller.hpp
//
// Defines: goro::detail::Poller (the per-P netpoller behind goro::io),
// choose_poller(), and the entry points of its two backends (UringPoller in
// poller_uring.cpp; EpollPoller with its per-fd PollDesc table in
// poller_epoll.cpp).
//
// The netpoller, after Go's netpoll.go, with one poller per P because an
// io_uring ring belongs to the thread that submits to it (docs/
// ARCHITECTURE.md, "Why one thread per P").
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
// The contract (what the scheduler relies on)
//   attach()     on the worker thread, before anything else: io_uring
//                creates its ring here (SINGLE_ISSUER ties it to the thread).
//   poll()       owner thread, never blocks: submits what is queued and
//                makes the goroutines of completed ops runnable on this P
//                (runnext if free, then the local queue, in completion
//                order), waking an idle P if any is stealable. Cheap when
//                there is nothing to do.
//   wait(t)      owner thread: as poll(), but first sleeps until an op
//                completes, wake() is called, or the steady clock reaches t
//                (nanoseconds; kNever for no deadline). May return early.
//   wake()       any thread: makes the current or next wait() return. A wake
//                before the wait is not lost (the eventfd counter keeps it);
//                a flag makes repeated wakes cost one write.
//   detach()     owner thread, at shutdown: cancels every op in flight and
//                reaps every completion without readying anyone, so that
//                the sweep can destroy the frames (and their buffers).
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
//   3. io_uring: not rescued. With SINGLE_ISSUER|DEFER_TASKRUN only the
//      ring's thread may run the kernel's completion work (io_uring_enter
//      from any other task fails), and a goroutine that computes cannot be
//      preempted (goro is cooperative: P::preempt is honoured at yield()
//      and at suspension only). Its ops complete when it suspends.
//   Rejected for epoll: nesting each P's epoll instance in the others'
//   (an idle P would wake at once, but every event of a P that polls for
//   itself would wake the idle ones too, and epoll refuses the loops two
//   busy Ps would make); one epoll instance for all Ps, as Go (every
//   wait would contend on one instance, where a P's own edges now stay
//   with it).
//   Considered for io_uring, not done: a signal (as Go's async
//   preemption) whose handler, on the ring's thread, enters the ring to
//   run the completion work, with sysmon then reaping the CQ under a lock
//   the owner takes too and handing resubmissions back; it installs a
//   process-wide handler, and SQEs queued but not yet submitted by the
//   busy thread stay invisible to the kernel (an op parked just before the
//   goroutine that computes was scheduled is often one: SQEs go out when
//   the P polls). Rings without DEFER_TASKRUN
//   post completions from the kernel (through task work run at the busy
//   thread's next interrupt), which another thread could reap under the
//   same lock, at the cost of the batching DEFER_TASKRUN gives every
//   enter call.
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
//   * io_uring linked timeouts (IORING_OP_LINK_TIMEOUT) for deadlines:
//     kernel-only, so they would not serve the epoll backend, and the
//     runtime's timers already wake workers on time.
#ifndef GORO_LIB_POLLER_HPP_
#define GORO_LIB_POLLER_HPP_

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>

#include "goro/config.hpp"
#include "goro/detail/io_op.hpp"

namespace goro::detail {

struct P;
struct G;

enum class PollerKind : std::uint8_t { kIoUring, kEpoll };

struct PollerChoice {
  PollerKind kind = PollerKind::kEpoll;
  unsigned uring_flags = 0;  // the io_uring setup flags the probe accepted
  const char* description = "";
};

// The backend for a runtime with `requested` (see the top of this file).
// Throws std::system_error when io_uring was requested by name (Config or
// GORO_POLLER) and cannot be used.
PollerChoice choose_poller(PollerBackend requested);
// Tests: forgets the probe's kept answer, so that the next runtime probes
// io_uring again as the first one in a process does.
void forget_uring_probe() noexcept;
// The backend of the runtime running now, or of the last one (epoll before
// any): for calls that may come from outside the runtime (io::close).
PollerKind active_poller_kind() noexcept;
void set_active_poller_kind(PollerKind kind) noexcept;

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

class Poller {
 public:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

  explicit Poller(P& p);
  virtual ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

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
  // Any thread (sysmon's deadlock check): whether ops wait in this poller
  // (epoll: in any PollDesc). Exact whenever the P is idle.
  [[nodiscard]] virtual bool ops_waiting() const noexcept = 0;
  // Sysmon, while the owner runs one goroutine and so does not poll (see
  // "Rescuing a busy P's I/O" above): makes the goroutines of ops that
  // completed runnable through the global queue, so that idle Ps run them.
  // Returns how many; 0 where the backend cannot (io_uring).
  virtual std::uint32_t rescue() noexcept { return 0; }

  // Owner thread, in attach() and detach(): SIGPIPE is blocked on a worker
  // thread while it serves a runtime, and its previous mask restored after
  // (poller.cpp, "SIGPIPE").
  void block_sigpipe() noexcept;
  void restore_signal_mask() noexcept;

  // Makes every P's poller for `kind`.
  static std::unique_ptr<Poller> make(P& p, const PollerChoice& choice);

 protected:
  // Makes op's goroutine runnable on this P (owner thread).
  void ready(IoOp& op) noexcept;
  // After a batch: wakes an idle P if goroutines were readied.
  void finish_batch() noexcept;
  // The eventfd was read: later wakes must write again. Acq_rel: acquires
  // what the wakers wrote before waking.
  void wake_consumed() noexcept { wake_pending_.exchange(false, std::memory_order_acq_rel); }

  P& p_;
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

// --- io_uring backend entry points (poller_uring.cpp), owner thread only.
// Sends on a socket are tried at once (MSG_DONTWAIT): they almost always
// fit in the socket buffer. Returns true when complete.
bool uring_try(IoOp& op) noexcept;
// Queues op for submission at the next poll/wait.
void uring_submit(P& p, IoOp& op) noexcept;
// Cancels the op whose SQE carries `user_data`, if it is still in flight.
void uring_cancel(P& p, std::uint64_t user_data) noexcept;

// --- epoll backend (poller_epoll.cpp): per-fd state, any thread.
// Tries op's system call once (non-blocking). Returns true when complete.
bool epoll_try(IoOp& op) noexcept;
// Parks op in its fd's waiter list unless it completed or was cancelled
// meanwhile. Returns false to continue at once.
bool epoll_commit(IoOp& op) noexcept;
// Takes op out of its fd's waiter list and readies it with -ECANCELED.
void epoll_cancel(IoOp& op) noexcept;
// Wakes every op parked on fd with -EBADF and forgets the fd's registration.
void epoll_forget_fd(int fd) noexcept;
// Starts a new registration epoch: every PollDesc of the run before is
// reset on its next use. Called when an epoll runtime starts and once its
// workers have exited (before the sweep frees the frames its ops are in).
void epoll_new_epoch() noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_POLLER_HPP_
