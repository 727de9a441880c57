// lib/poller_uring.cpp: the io_uring backend of the netpoller (the contract
// is at the top of poller.hpp).
//
// One ring per P, created on the P's worker thread. The life of an op:
//   0. A send is first tried at once with MSG_DONTWAIT (try_now): it
//      nearly always fits in the socket buffer, and completing it in place
//      saves parking the goroutine and a trip through the ring
//      (docs/PERFORMANCE.md, "Figures behind design choices"). Everything
//      else, and a send that would block, goes on:
//   1. start (goroutine, on the owner thread): the op gets a user_data
//      (its address, plus a 16-bit sequence number in the top bits), so
//      that the deadline timer and stop callback the awaiter arms next can
//      name it. commit, once they are armed, queues its SQE (or, if one
//      of them cancelled the op already, completes it with -ECANCELED at
//      once). The goroutine parks. Nothing is submitted yet (unless the SQ
//      is full: then what it holds goes to the kernel early).
//   2. The owner's next poll() or wait() submits every queued SQE in one
//      io_uring_enter and reaps completions. The scheduler polls when its
//      P runs out of goroutines (and every 61 schedules), so the SQEs of all
//      the goroutines that ran since go out together. (While one goroutine
//      computes without suspending, the rescue signal submits them and
//      sysmon reaps: poller.hpp, "Rescuing a busy P's I/O", step 3; the
//      code below names its sub-steps.)
//      poll() enters the kernel only when SQEs are queued or the kernel
//      flagged pending completion work (IORING_SQ_TASKRUN): with
//      DEFER_TASKRUN completions are posted during the owner's enter calls,
//      and TASKRUN_FLAG tells it when one is worth making.
//   3. A CQE: -EAGAIN (a non-blocking fd, on kernels that do not poll it
//      themselves) resubmits the op as a POLL_ADD for its direction and
//      then the op itself; anything else is the result: stored in the op,
//      and the goroutine goes to this P's queue.
//   4. Cancelling (a deadline timer or a stop callback, on any thread):
//      the op's cancel word is set first; on the owner thread an
//      ASYNC_CANCEL SQE for its user_data is queued; on another thread
//      (SINGLE_ISSUER: only the owner may submit) the user_data goes to
//      the poller's cancel requests and the owner is woken; its next
//      poll() or wait() queues the ASYNC_CANCEL before it submits. The op
//      still completes through its own CQE (step 3), with -ECANCELED or, if
//      it won the race, its result. A cancel that comes before commit
//      finds no SQE to cancel; commit sees the cancel word and ends the op.
//      A stale request (the op completed, its frame reused an address for
//      a new op) cannot hit the new op: the sequence number differs.
//   5. wake() writes the P's eventfd; a READ on it is kept armed in the
//      ring, so a sleeping wait() returns.
//   6. detach() (shutdown): ASYNC_CANCEL with CANCEL_ANY|CANCEL_ALL, then
//      reap until nothing is in flight, readying nobody.
//
// Multishot requests (multishot.hpp has the mechanism): a multishot
// accept's SQE carries its source's address with the low bit set, and posts
// CQEs with IORING_CQE_F_MORE while it stays armed. So a CQE ends a request
// (leaves in_flight_) only without that flag; each of the others hands a
// result to the source's first waiter or queue (complete_multishot). Sysmon
// never handles them: it hands them back to the owner, who alone may re-arm
// or cancel the request on this ring. An armed request is an op in flight
// (ops_waiting, C1) but not one a goroutine waits for: goroutines_waiting,
// the deadlock check's question, leaves the armed requests out
// (multishot_armed_) and counts the goroutines parked on any source
// instead (multishot.hpp, invariant 7).
// Closing an fd with ops in flight (io::close, PollerDriver::forget_fd). An
// SQE holds its own reference to the file once submitted, so a plain
// close(2) leaves those ops parked; and an SQE still queued, or an op
// resubmitted after -EAGAIN, names the fd number, which close(2) lets the
// kernel hand out again. So, before the number is released:
//   C0. Every op counts itself on its fd (ops_on_fd, a table indexed by fd
//       number) from commit, once its SQE is queued and published, until
//       its final CQE is reaped; a multishot request likewise from each arm
//       to its final CQE, so closing a listener cancels its multishot
//       accept (and the socket stops listening) before close returns. A
//       close that finds no op counted on fd (the common case: goro::net
//       closes a socket once its ops have left) is a plain close(2): no
//       ring is asked anything.
//   C1. Otherwise the closer (any thread) puts a CloseRequest for fd on
//       every ring in the registry (attach adds a ring, detach removes it)
//       that has ops in flight, under the registry lock, and wakes its
//       owner.
//   C2. The owner, at the start of its next poll() or wait(), takes the
//       requests; for each it counts a close (close_epoch_), notes the
//       count for fd (closed_at_), queues an ASYNC_CANCEL with
//       CANCEL_FD|CANCEL_ALL and submits the SQ: the ops queued before it
//       are issued first, and the cancel, issued at submission while fd
//       is still open, ends every op of this ring on fd's file (their CQEs
//       say -ECANCELED; end_as_closed marks them closed). Then it marks
//       the request done.
//   C3. A CQE of an op on fd that was not in the kernel then (its -EAGAIN
//       or readiness CQE not reaped yet) would resubmit it on the number:
//       an op started before the close (op.close_epoch below the count in
//       closed_at_) is ended as closed instead.
//   C4. The closer waits until every request is done, serving its own
//       ring's requests meanwhile (two closers on two Ps each wait for the
//       other's ring), then calls close(2). A detaching ring marks what is
//       left done (its ops are all cancelled anyway).
//   A P whose goroutine computes without suspending, or blocks its thread,
//   takes no request until it suspends or the scheduler polls: while that
//   P has ops in flight the closer waits that long (the rescue signal's
//   handler may not allocate, which closed_at_ needs).
//   Rejected: registered (fixed) files (every op and every accept would go
//   through a table per ring, and an fd is not tied to one ring); a
//   per-fd list of ops (a lock on every op's path, where C0's count costs
//   two uncontended atomic additions, on a line the fd's P keeps);
//   closing at once and letting the last ring close later (close(2)'s
//   result and the peer's prompt end of stream would be lost).
//
// More ops in flight than CQ entries: the kernel (IORING_FEAT_NODROP, every
// kernel since 5.5) keeps the completions that do not fit in an overflow
// list and flags IORING_SQ_CQ_OVERFLOW; poll() flushes it with another
// enter after reaping. If it cannot flush, submission fails with -EBUSY:
// submit_now() reaps (making room) and retries. That is the back-pressure.
// Rejected: capping ops in flight at the CQ size and queueing the rest in
// user space. It deadlocks: with the CQ full of polls waiting for a pipe to
// become readable, the write that would make it readable waits behind them
// in the queue (tests/io_test.cpp, MoreOperationsThanTheCompletionQueue).
//
// Who touches what (the rescue adds two parties to the owner thread):
//   the owner    everything, inside InRing (the SQ, liburing's tails,
//                in_flight_); the CQ only while it holds cq_lock_ (poll()
//                reads how many CQEs wait without it, as a hint).
//   sysmon       the CQ (reads CQEs, advances its head) and the handed-back
//                state, only while it holds cq_lock_ and the ring is open
//                (rescue_open_); reads the kernel's flags and SQ head.
//   the handler  runs on the owner thread between two of its instructions,
//                so it may act only where the owner is not in InRing; then
//                the SQ and in_flight_ are its own for the moment, and the
//                handed-back state if it wins cq_lock_ (a try).
//   in_flight_ and the InRing flag are atomics read and written relaxed:
//   the handler is the only other party, on the same thread, ordered by
//   signal fences; everything sysmon shares is under cq_lock_ or published
//   by queued_tail_ (publish_in_flight says why that is enough).
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "multishot.hpp"
#include "mutex.hpp"
#include "p_core.hpp"
#include "poller.hpp"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN_RING_ANNOTATIONS 1
#endif
#endif
#if !defined(GORO_TSAN_RING_ANNOTATIONS) && defined(__SANITIZE_THREAD__)
#define GORO_TSAN_RING_ANNOTATIONS 1
#endif

#ifdef GORO_TSAN_RING_ANNOTATIONS
// ThreadSanitizer's dynamic annotations (its runtime defines them).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif

namespace goro::detail {
namespace {

#ifdef GORO_TSAN_RING_ANNOTATIONS
// The longest an idle worker sleeps in its ring under ThreadSanitizer
// (UringPoller::wait says why).
constexpr std::int64_t kTsanWaitCapNanos = 10'000'000;  // 10 ms
#endif

// Marks a scope that reads or writes ring memory (SQEs, CQEs, the kernel's
// flags word and indices). That memory is shared with the kernel and
// mapped by liburing with raw system calls that ThreadSanitizer does not
// see, so when a later runtime's ring lands at the address of an earlier
// one it reports the threads of the two as racing. Within one ring the
// accesses are ordered by its owner thread and cq_lock_ (the top of this
// file). The scopes are kept to the ring accesses themselves, so that the
// scheduler code they call stays checked.
class RingMemoryScope {
 public:
#ifdef GORO_TSAN_RING_ANNOTATIONS
  RingMemoryScope() noexcept {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~RingMemoryScope() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
#else
  RingMemoryScope() noexcept {}  // user-provided: a scope object is never "unused"
  ~RingMemoryScope() {}
#endif
  RingMemoryScope(const RingMemoryScope&) = delete;
  RingMemoryScope& operator=(const RingMemoryScope&) = delete;
};

constexpr std::uint64_t kCancelTag = 0;  // an ASYNC_CANCEL's own CQE (ops' and closes')
constexpr std::uint64_t kWakeTag = 1;    // the eventfd read
constexpr unsigned kSequenceShift = 48;  // user-space addresses fit in 48 bits
constexpr std::uint64_t kAddressMask = (std::uint64_t{1} << kSequenceShift) - 1;

IoOp* op_of(std::uint64_t user_data) noexcept {
  return reinterpret_cast<IoOp*>(static_cast<std::uintptr_t>(user_data & kAddressMask));
}

// A multishot request's user_data (multishot.hpp): its source's address
// with the low bit set (IoOps and sources are aligned, so an op's address
// never has it), plus a sequence number in the top bits.
constexpr std::uint64_t kMultishotBit = 1;
bool is_multishot(std::uint64_t user_data) noexcept {
  return (user_data & kMultishotBit) != 0 && user_data != kWakeTag;
}
MultishotSource* source_of(std::uint64_t user_data) noexcept {
  return reinterpret_cast<MultishotSource*>(
      static_cast<std::uintptr_t>(user_data & kAddressMask & ~kMultishotBit));
}
// Whether a CQE ends its request: a multishot request posts CQEs with
// IORING_CQE_F_MORE while it stays armed; every other CQE is its op's last.
bool ends_request(unsigned cqe_flags) noexcept { return (cqe_flags & IORING_CQE_F_MORE) == 0; }

// References to a provided buffer pool (multishot.hpp, ProvidedBuffers).
void retain_pool(ProvidedBuffers& pool) noexcept {
  // Relaxed: the caller holds a reference already (the poller's).
  pool.references.fetch_add(1, std::memory_order_relaxed);
}
void release_pool(ProvidedBuffers& pool) noexcept {
  // Acq_rel: see ProvidedBuffers::references.
  if (pool.references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (pool.ring != nullptr) munmap(pool.ring, pool.ring_bytes);
  std::free(pool.memory);
  delete &pool;
}

// The readiness a resubmitted op waits for (step 3): its direction's
// (poller.hpp, io_direction), or the events a poll asks for.
short poll_events_for(const IoRequest& r) noexcept {
  if (r.kind == IoKind::kPoll) return static_cast<short>(r.flags);
  return io_direction(r) == IoDirection::kRead ? POLLIN : POLLOUT;
}

// What a CQE with `res` means for `op` (step 3 of the top): the result it
// ends with, or nullopt when the op goes round again (a readiness poll
// after -EAGAIN, or the op itself once that poll fired); op.repoll says
// which round the CQE ended. Reads the op, changes nothing, so that sysmon
// can ask and leave the answer to the owner.
std::optional<int> final_result(const IoOp& op, int res) noexcept {
  // Acquire: pairs with io_cancel's compare-exchange. A cancel that was
  // asked for must not be undone by resubmitting the op.
  const bool cancelled = op.cancel.load(std::memory_order_acquire) != 0;
  if (op.repoll) {
    if (res < 0) return res;  // the poll itself failed
    if (cancelled) return -ECANCELED;
    return std::nullopt;
  }
  if ((res == -EAGAIN && !io_never_waits(op.request)) || res == -EINTR) {
    if (cancelled) return -ECANCELED;
    return std::nullopt;
  }
  return res;
}

// uring_reads_say_eagain_for_testing (poller.hpp).
std::atomic<bool> reads_say_eagain{false};
// uring_receive_exhaustions_for_testing (poller.hpp). Relaxed: a count
// read after the runtime that bumps it has stopped.
std::atomic<std::uint64_t> receive_exhaustions{0};

// C0 of the top: the ops in flight per fd number (fds below 2^30 are
// counted).
using OpsOnFd = FdTable<std::atomic<std::uint32_t>>;

OpsOnFd& ops_on_fd() noexcept {
  static auto* table = new OpsOnFd;  // never destroyed: fds outlive runtimes
  return *table;
}

// C0: an op on `fd` is in flight from now (owner, at commit) / is over
// (whoever reaps its final CQE). The increment is a release and close's
// load an acquire: an op that started before close was called is seen.
// The decrement is relaxed: a close that still sees it asks the rings for
// nothing they hold, which costs time, not correctness. An fd whose
// counter could not be made (out of memory) is counted nowhere and closes
// plainly, as before C0 existed.
void count_op_on_fd(int fd) noexcept {
  if (std::atomic<std::uint32_t>* count = ops_on_fd().find(fd, /*create=*/true)) {
    count->fetch_add(1, std::memory_order_release);
  }
}
void uncount_op_on_fd(int fd) noexcept {
  if (std::atomic<std::uint32_t>* count = ops_on_fd().find(fd, /*create=*/false)) {
    count->fetch_sub(1, std::memory_order_relaxed);
  }
}

// One ring's part of an io::close (C1-C4 of the top), on the closer's stack
// until `done`.
struct CloseRequest {
  int fd = -1;
  CloseRequest* next = nullptr;
  // Set by the ring's owner once the cancel is submitted (C2). Release:
  // the closer's acquire load sees the submission done before it closes.
  std::atomic<bool> done{false};
};

// --- The rescue signal (poller.hpp, "Rescuing a busy P's I/O", 3b-3c).

// Its address, in si_value, marks the signals goro sends (3b), so that the
// handler passes any other signal to the handler installed before.
constinit const char kRescueSignalTag = 0;

// Per signal number: whether goro's handler was installed for it, and the
// handler it replaced. `previous` is written once, before `installed` is
// set (release), and read by the handler after an acquire load of it.
struct RescueSignalSlot {
  std::atomic<bool> installed{false};
  struct sigaction previous {};
};
RescueSignalSlot rescue_signal_slots[NSIG];
Mutex rescue_signal_install_mu;

void rescue_signal_handler(int signo, siginfo_t* info, void* context);

// Installs goro's handler for `signo` once per process (it stays: a signal
// sent just before a runtime stopped may still be on its way).
void install_rescue_signal_handler(int signo) {
  MutexLock lock(rescue_signal_install_mu);
  RescueSignalSlot& slot = rescue_signal_slots[signo];
  if (slot.installed.load(std::memory_order_relaxed)) return;  // under the lock
  if (sigaction(signo, nullptr, &slot.previous) != 0) {
    throw std::system_error(errno, std::generic_category(), "goro: sigaction (io_rescue_signal)");
  }
  // Release: the handler's acquire load of `installed` sees `previous`.
  slot.installed.store(true, std::memory_order_release);
  struct sigaction action {};
  action.sa_sigaction = &rescue_signal_handler;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, nullptr) != 0) {
    const int error = errno;
    slot.installed.store(false, std::memory_order_relaxed);
    throw std::system_error(error, std::generic_category(), "goro: sigaction (io_rescue_signal)");
  }
}

// Sysmon, before each signal: whether goro's handler is still the one
// installed (the program may have replaced it since; then its handler
// would get signals it did not ask for, so none are sent).
bool rescue_signal_handler_installed(int signo) noexcept {
  struct sigaction current {};
  return sigaction(signo, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) != 0 &&
         current.sa_sigaction == &rescue_signal_handler;
}

// Step 3b: sends goro's rescue signal to thread `tid` of this process.
void send_rescue_signal(int signo, pid_t tid) noexcept {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = signo;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_ptr = const_cast<char*>(&kRescueSignalTag);
  // ESRCH (the thread is gone) and EAGAIN (the queue of signals is full)
  // leave nothing to do: the next round asks again if it must.
  (void)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info);
}

// A signal goro did not send: to the handler installed before goro's. (A
// default action is not reproduced: SIGURG's is to ignore it.)
void pass_to_previous_handler(int signo, siginfo_t* info, void* context) noexcept {
  const RescueSignalSlot& slot = rescue_signal_slots[signo];
  // Acquire: pairs with the release in install_rescue_signal_handler.
  if (!slot.installed.load(std::memory_order_acquire)) return;
  const struct sigaction& previous = slot.previous;
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(signo, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
             previous.sa_handler != nullptr) {
    previous.sa_handler(signo);
  }
}

}  // namespace

class UringPoller;

// The rings of running runtimes (C1): a ring is added by attach() and
// removed by detach(), under the lock; closers put their requests under it,
// so a ring they reach is alive.
namespace {
Mutex ring_registry_mu;
std::vector<UringPoller*>& ring_registry() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ring_registry_mu) {
  static auto* rings = new std::vector<UringPoller*>;  // never destroyed: closes may outlive runs
  return *rings;
}
}  // namespace

// The ring this thread owns: set by attach() once the ring exists, cleared
// by detach() before it goes. The rescue signal's handler finds its ring
// here (3c, 3e), and a cancel whether it may submit itself (step 4).
// Initial-exec: a handler must not resolve TLS lazily (which may allocate).
// Relaxed: written and read on the same thread only.
[[gnu::tls_model("initial-exec")]] constinit thread_local std::atomic<UringPoller*> tls_ring{
    nullptr};

class UringPoller final : public Poller {
 public:
  UringPoller(PCore& p, const PollerChoice& choice, int rescue_signal)
      : Poller(p),
        setup_flags_(choice.uring_flags),
        rescue_signal_(rescue_signal),
        multishot_accept_(choice.multishot_accept),
        accept_queue_capacity_(choice.accept_queue_capacity),
        multishot_receive_(choice.multishot_receive),
        receive_buffer_count_(choice.receive_buffer_count),
        receive_buffer_size_(choice.receive_buffer_size),
        receive_queue_capacity_(choice.receive_queue_capacity) {}
  ~UringPoller() override {
    if (attached_) {
      io_uring_queue_exit(&ring_);
      retire_provided_buffers();
    }
  }

  void attach() override {
    io_uring_params params{};
    params.flags = setup_flags_ | IORING_SETUP_CQSIZE;
    params.cq_entries = PollerTuning::kCompletionEntries;
    const int rc = io_uring_queue_init_params(PollerTuning::kSubmissionEntries, &ring_, &params);
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "goro: io_uring_setup");
    attached_ = true;
    if (multishot_receive_) provide_buffers();
    block_sigpipe();
    InRing in_ring(*this);
    arm_wake_read();
    // The signal is sent only where it is delivered at once: a thread that
    // blocks it (its mask comes from the thread that started the runtime)
    // would only gather a pending signal.
    pid_t signal_tid = 0;
    if (rescue_signal_ != 0) {
      sigset_t mask;
      if (pthread_sigmask(SIG_BLOCK, nullptr, &mask) == 0 &&
          sigismember(&mask, rescue_signal_) == 0) {
        signal_tid = static_cast<pid_t>(syscall(SYS_gettid));
      }
    }
    tls_ring.store(this, std::memory_order_relaxed);
    {
      OwnerCqLock cq(*this);
      rescue_open_ = true;
      signal_tid_ = signal_tid;
    }
    MutexLock lock(ring_registry_mu);
    ring_registry().push_back(this);
  }

  void detach() override {
    if (!attached_) {
      restore_signal_mask();
      return;
    }
    {
      // C4: no closer reaches this ring from here on.
      MutexLock lock(ring_registry_mu);
      std::erase(ring_registry(), this);
    }
    InRing in_ring(*this);
    OwnerCqLock cq(*this);
    // Step 3e: closed to sysmon first, then what it left is taken over,
    // readying nobody (as everything reaped from here on).
    rescue_open_ = false;
    draining_ = true;
    take_over_rescue();
    io_uring_sqe* sqe = get_sqe();
    {
      RingMemoryScope ring_memory;
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      sqe->user_data = kCancelTag;
    }
    add_in_flight(1);
    while (in_flight() > 0) {
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -ETIME) break;
      reap();
    }
    tls_ring.store(nullptr, std::memory_order_relaxed);
    // C4: the requests left (every op was cancelled above) are done.
    // Acquire: pairs with push_close_request's release.
    for (CloseRequest* request = close_requests_.exchange(nullptr, std::memory_order_acquire);
         request != nullptr;) {
      CloseRequest* next = request->next;
      request->done.store(true, std::memory_order_release);
      request = next;
    }
    io_uring_queue_exit(&ring_);
    retire_provided_buffers();
    attached_ = false;
    restore_signal_mask();
  }

  void poll() override {
    {
      InRing in_ring(*this);
      take_cancel_requests();
      take_close_requests();
      // Nothing but the wake read in flight: nothing to do (a wake that
      // completed meanwhile is reaped by the next wait()).
      if (in_flight() == (wake_armed_ ? 1U : 0U) && io_uring_sq_ready(&ring_) == 0) return;
      // Nothing queued, no completion work flagged, no CQE, nothing sysmon
      // left: done without the lock (spin_on_poller polls in a loop).
      // Relaxed: a hint; a take-over it misses waits for the next poll or
      // wait(), which always takes the lock.
      if (io_uring_sq_ready(&ring_) == 0 && cq_ready_hint() == 0 &&
          (kernel_flags() & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0 &&
          !rescued_hint_.load(std::memory_order_relaxed)) {
        return;
      }
      OwnerCqLock cq(*this);
      take_over_rescue();
      for (;;) {
        const unsigned kflags = kernel_flags();
        if (io_uring_sq_ready(&ring_) != 0 ||
            (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0) {
          submit_now();
        }
        if (io_uring_cq_ready(&ring_) == 0) break;
        reap();
        // Completions the kernel kept in its overflow list (more ops in
        // flight than CQ entries) are flushed by the next enter: go round.
        if ((kernel_flags() & IORING_SQ_CQ_OVERFLOW) == 0) break;
      }
      publish_in_flight();
    }
    finish_batch();
  }

  void wait(std::int64_t deadline_ns) override {
    {
      InRing in_ring(*this);
      // The lock is held while the thread sleeps in the kernel: sysmon
      // rescues only a P that runs a goroutine, and its try fails here.
      OwnerCqLock cq(*this);
      take_over_rescue();
      take_cancel_requests();
      take_close_requests();
      arm_wake_read();
#ifdef GORO_TSAN_RING_ANNOTATIONS
      // ThreadSanitizer defers a signal that lands on a thread blocked in a
      // system call it does not intercept (io_uring_enter, which liburing
      // makes itself) until that thread runs instrumented code again: a
      // SIGTERM sent to an idle server would wait for its next I/O. So under
      // TSan an idle worker comes back at least every kTsanWaitCapNanos.
      deadline_ns = std::min(deadline_ns, monotonic_now_ns() + kTsanWaitCapNanos);
#endif
      io_uring_cqe* cqe = nullptr;
      if (deadline_ns == kNever) {
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
      } else {
        const std::int64_t left = deadline_ns - monotonic_now_ns();
        if (left > 0) {
          __kernel_timespec ts{};
          ts.tv_sec = left / 1'000'000'000;
          ts.tv_nsec = left % 1'000'000'000;
          io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        } else {
          io_uring_submit_and_get_events(&ring_);
        }
      }
      reap();
      publish_in_flight();
    }
    finish_batch();
  }

  bool has_ops_in_flight() const noexcept override { return in_flight() > (wake_armed_ ? 1U : 0U); }
  bool ops_waiting() const noexcept override {
    // Acquire: pairs with publish_in_flight's release; an idle owner's last
    // store is exact.
    return ops_in_flight_.load(std::memory_order_acquire) != 0;
  }
  bool goroutines_waiting() const noexcept override {
    // Acquire: as ops_waiting. A goroutine parked on a multishot source
    // (on whichever ring it is armed) counts through the process-wide
    // count of waiters; an armed request counts for nothing by itself.
    return goroutine_ops_in_flight_.load(std::memory_order_acquire) != 0 ||
           multishot_waiters_parked();
  }
  // With DEFER_TASKRUN or COOP_TASKRUN + TASKRUN_FLAG the kernel flags
  // pending completion work in the SQ ring; with no flags it posts CQEs
  // directly. Either way a poll with nothing to do is a few memory reads.
  bool cheap_to_poll() const noexcept override { return true; }

  // Step 0.
  bool try_now(IoOp& op) noexcept override {
    const IoRequest& r = op.request;
    if (serves_multishot(r)) return multishot_try(op);
    if (r.kind != IoKind::kSend) return false;
    for (;;) {
      const ssize_t n = ::send(r.fd, r.buffer, r.length, r.flags | MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        op.result = static_cast<int>(n);
        return true;
      }
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && !io_never_waits(r)) return false;
      op.result = -errno;
      return true;
    }
  }

  // Step 1.
  void start(IoOp& op) noexcept override {
    op.user_data = reinterpret_cast<std::uintptr_t>(&op) |
                   (static_cast<std::uint64_t>(++sequence_) << kSequenceShift);
    op.repoll = false;
    op.close_epoch = close_epoch_;  // C3
  }

  bool commit(IoOp& op) noexcept override {
    // Acquire: pairs with io_cancel's compare-exchange; a cancel that came
    // before the SQE (its own ASYNC_CANCEL, if any, finds nothing) ends the
    // op here.
    if (op.cancel.load(std::memory_order_acquire) != 0) {
      op.result = -ECANCELED;
      return false;
    }
    if (serves_multishot(op.request)) return multishot_commit(op);
    InRing in_ring(*this);
    prep(op);
    publish_in_flight();
    // C0, after the publication: a closer that sees this count sees the
    // ring's ops in flight too.
    count_op_on_fd(op.request.fd);
    return true;
  }

  // Step 4.
  void cancel(IoOp& op) noexcept override {
    if (serves_multishot(op.request)) {
      multishot_withdraw(op);
      return;
    }
    // Relaxed: tls_ring is this thread's own.
    if (tls_ring.load(std::memory_order_relaxed) == this) {
      InRing in_ring(*this);
      queue_cancel(op.user_data);
      publish_in_flight();
      return;
    }
    request_cancel(op.user_data);
  }

  // Multishot step 5 (multishot.hpp), under the source's lock: always
  // through the owner's next poll, even on the owner's thread, where
  // queueing the cancel at once could reap (a full SQ) and so take the
  // source's lock again.
  void cancel_multishot(std::uint64_t user_data) noexcept override { request_cancel(user_data); }

  // C1, any thread, under ring_registry_mu: adds `request` for the owner.
  void push_close_request(CloseRequest* request) noexcept {
    CloseRequest* head = close_requests_.load(std::memory_order_relaxed);
    do {
      request->next = head;
      // Release: the owner's acquire exchange sees the request's fields.
    } while (!close_requests_.compare_exchange_weak(head, request, std::memory_order_release,
                                                    std::memory_order_relaxed));
  }

  // C4: the closer, on this ring's owner thread (a goroutine of its P),
  // takes the requests other closers left while it waits for theirs.
  void serve_close_requests() noexcept {
    InRing in_ring(*this);
    take_close_requests();
  }

  // Steps 3a and 3b, on sysmon's thread.
  Rescue rescue(std::int64_t now_ns, std::int64_t signal_period_ns) noexcept override {
    Rescue result;
    if (!try_lock_cq(kCqSysmon)) return result;  // the owner polls, or the handler resubmits
    if (!rescue_open_) {
      unlock_cq();
      return result;
    }
    unsigned queued_tail = 0;
    RescuedGoroutines goroutines;
    // 3a: take what the CQ holds, while the handback has room for all of a
    // batch (each CQE may need a place in it).
    for (;;) {
      const unsigned room = kHandbackCapacity - handback_count_;
      std::uint64_t user_data[kHandbackCapacity];
      int res[kHandbackCapacity];
      unsigned flags[kHandbackCapacity];
      unsigned n = 0;
      unsigned ended = 0;  // CQEs that end their request (ends_request)
      {
        RingMemoryScope ring_memory;
        unsigned head = *ring_.cq.khead;
        const unsigned tail = io_uring_smp_load_acquire(ring_.cq.ktail);
        for (; head != tail && n < room; ++head, ++n) {
          const io_uring_cqe& cqe = ring_.cq.cqes[head & ring_.cq.ring_mask];
          user_data[n] = cqe.user_data;
          res[n] = cqe.res;
          flags[n] = cqe.flags;
          if (ends_request(cqe.flags)) ++ended;
        }
        // Release: the kernel may reuse the slots once it sees the head.
        if (n != 0) io_uring_smp_store_release(ring_.cq.khead, head);
      }
      // Acquire: pairs with publish_in_flight's release, so that the ops
      // named by the CQEs just copied are seen as their goroutines wrote
      // them. Loaded after the CQ tail, never before: the handler (3c), or
      // an owner whose SQ filled up, submits without cq_lock_, so an op
      // may be published, submitted and completed between an earlier load
      // and the read of the tail. Its CQE then comes after its publication
      // (the kernel posts it only once the SQE is submitted, and every SQE
      // is published before it is submitted), so this load returns that
      // publication or a later one.
      queued_tail = queued_tail_.load(std::memory_order_acquire);
      if (n == 0) break;
      rescued_cqes_ += ended;
      rescued_hint_.store(true, std::memory_order_relaxed);  // under the lock
      for (unsigned i = 0; i < n; ++i) {
        if (user_data[i] == kCancelTag) continue;
        if (user_data[i] == kWakeTag) {
          wake_read_rescued_ = true;
          continue;
        }
        if (is_multishot(user_data[i])) {
          // Only the owner may re-arm or cancel the request: handed back.
          handback_[handback_count_++] = {user_data[i], res[i], flags[i]};
          continue;
        }
        IoOp& op = *op_of(user_data[i]);
        const std::optional<int> final = final_result(op, res[i]);
        if (!final) {
          handback_[handback_count_++] = {user_data[i], res[i], flags[i]};
          continue;
        }
        // The write ran on the owner's thread (inline or in its task
        // work), where SIGPIPE is blocked: the owner takes the signal.
        if (*final == -EPIPE) sigpipe_raised_ = true;
        if (*final == -ECANCELED) end_as_closed(op);  // C2; a cancel that came first stays
        uncount_op_on_fd(op.request.fd);              // C0
        op.result = *final;
        op.repoll = false;
        goroutines.push_back(op.g);
      }
    }
    // 3b: work only the owner's thread can do.
    bool ask_owner = false;
    for (unsigned i = 0; i < handback_count_ && !ask_owner; ++i) {
      ask_owner = is_multishot(handback_[i].user_data) ||
                  !final_result(*op_of(handback_[i].user_data), handback_[i].res);
    }
    {
      RingMemoryScope ring_memory;
      const unsigned kflags = IO_URING_READ_ONCE(*ring_.sq.kflags);
      const bool unsubmitted = queued_tail != io_uring_smp_load_acquire(ring_.sq.khead);
      ask_owner =
          ask_owner || unsubmitted || (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    }
    // At most once a period: a signal costs the computing thread a few
    // microseconds, and work keeps arriving while it computes.
    if (ask_owner && signal_tid_ != 0 && now_ns - last_signal_ns_ >= signal_period_ns &&
        rescue_signal_handler_installed(rescue_signal_)) {
      // Under the lock: detach, which takes it, has not begun, so the
      // thread `signal_tid_` names is this ring's owner.
      send_rescue_signal(rescue_signal_, signal_tid_);
      last_signal_ns_ = now_ns;
      result.signalled = true;
    }
    unlock_cq();
    ready_rescued(goroutines);
    result.readied = static_cast<std::uint32_t>(goroutines.size());
    return result;
  }

  // Step 3c: the rescue signal's handler, on the owner's thread, between
  // two of its instructions. Only async-signal-safe work: atomics, ring
  // memory, one system call; nothing that waits or allocates.
  void on_rescue_signal() noexcept {
    if (in_ring_.load(std::memory_order_relaxed)) return;  // the owner is about to poll
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (try_lock_cq(kCqHandler)) {
      unsigned kept = 0;
      for (unsigned i = 0; i < handback_count_; ++i) {
        const HandedBack h = handback_[i];
        // A resubmission; an op cancelled since (it ends, and its goroutine
        // is readied), one that finds the SQ full, one whose fd was closed
        // since it started (C3) and a multishot CQE stay for the owner.
        if (!is_multishot(h.user_data) && io_uring_sq_space_left(&ring_) != 0 &&
            !final_result(*op_of(h.user_data), h.res) && !closed_since_start(*op_of(h.user_data))) {
          IoOp& op = *op_of(h.user_data);
          op.repoll = !op.repoll;
          prep(op);
        } else {
          handback_[kept++] = h;
        }
      }
      handback_count_ = kept;
      unlock_cq();
    }
    {
      RingMemoryScope ring_memory;
      // Submits what is queued and runs the completion work, which posts
      // the CQEs (errors leave both for the owner, or the next signal).
      io_uring_submit_and_get_events(&ring_);
    }
    publish_in_flight();
  }

 private:
  static constexpr unsigned kHandbackCapacity = 64;
  enum : std::uint32_t { kCqFree = 0, kCqOwner = 1, kCqSysmon = 2, kCqHandler = 3 };

  // Marks the owner inside the ring's user-space state (the top of this
  // file); nests. The signal fences keep the compiler from moving ring
  // accesses out of the marked span, which is all the handler, on the
  // same thread, needs.
  class InRing {
   public:
    explicit InRing(UringPoller& poller) noexcept
        : poller_(poller), outer_(poller.in_ring_.load(std::memory_order_relaxed)) {
      poller_.in_ring_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    ~InRing() {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      poller_.in_ring_.store(outer_, std::memory_order_relaxed);
    }
    InRing(const InRing&) = delete;
    InRing& operator=(const InRing&) = delete;

   private:
    UringPoller& poller_;
    const bool outer_;
  };

  // The owner holds cq_lock_ while the scope lives (step 3d); nests.
  class OwnerCqLock {
   public:
    explicit OwnerCqLock(UringPoller& poller) noexcept : poller_(poller), outer_(poller.cq_held_) {
      if (!outer_) {
        poller_.lock_cq_as_owner();
        poller_.cq_held_ = true;
      }
    }
    ~OwnerCqLock() {
      if (!outer_) {
        poller_.cq_held_ = false;
        poller_.unlock_cq();
      }
    }
    OwnerCqLock(const OwnerCqLock&) = delete;
    OwnerCqLock& operator=(const OwnerCqLock&) = delete;

   private:
    UringPoller& poller_;
    const bool outer_;
  };

  struct HandedBack {
    std::uint64_t user_data;
    int res;
    unsigned flags;  // the CQE's
  };

  bool try_lock_cq(std::uint32_t holder) noexcept {
    std::uint32_t free = kCqFree;
    // Acquire: sees what the previous holder wrote under the lock (the
    // handback, the counts, the CQ head, ops it resubmitted).
    return cq_lock_.compare_exchange_strong(free, holder, std::memory_order_acquire,
                                            std::memory_order_relaxed);
  }
  void lock_cq_as_owner() noexcept {
    // The only other holder the owner can meet is sysmon (the handler runs
    // on this thread and is done before the owner goes on), for one reap,
    // and rarely: it rescues only while the owner runs a goroutine. Yield
    // rather than spin, in case sysmon was preempted holding it.
    while (!try_lock_cq(kCqOwner)) sched_yield();
  }
  // Release: publishes what was written under the lock to the next holder.
  void unlock_cq() noexcept { cq_lock_.store(kCqFree, std::memory_order_release); }

  // in_flight_: relaxed, see the top of this file.
  unsigned in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  // multishot_armed_: relaxed, as in_flight_ (the owner writes it, the
  // handler on the same thread reads it in publish_in_flight).
  unsigned multishot_armed() const noexcept {
    return multishot_armed_.load(std::memory_order_relaxed);
  }
  void add_in_flight(unsigned n) noexcept {
    in_flight_.store(in_flight() + n, std::memory_order_relaxed);
  }
  void remove_in_flight(unsigned n) noexcept {
    in_flight_.store(in_flight() - n, std::memory_order_relaxed);
  }

  // Publishes the ops in flight for ops_waiting(), and the SQ tail for
  // sysmon (3b): SQEs up to it are queued, and sysmon asks the thread to
  // submit them while the kernel's SQ head is elsewhere. Called after
  // every SQE the owner or the handler queues outside cq_lock_.
  void publish_in_flight() noexcept {
    // Release: an owner that goes idle afterwards is seen with its final
    // count.
    ops_in_flight_.store(in_flight() - (wake_armed_ ? 1U : 0U), std::memory_order_release);
    // Release: as above. The multishot requests are counted in in_flight_
    // from the same arm to the same terminal CQE; clamped anyway, so a
    // publish between the two could only say "ops" (a stale busy).
    const unsigned besides = (wake_armed_ ? 1U : 0U) + multishot_armed();
    goroutine_ops_in_flight_.store(in_flight() > besides ? in_flight() - besides : 0U,
                                   std::memory_order_release);
    // Release: sysmon reads an op's fields (its request, goroutine, repoll
    // flag) when it takes the op's CQE, which the kernel posts only after
    // the SQE was submitted, after this store; sysmon's acquire load of
    // queued_tail_, made after it reads the CQ tail (rescue), then sees
    // them. (SQEs queued under cq_lock_ are ordered by the lock as well.)
    queued_tail_.store(sq_tail(), std::memory_order_release);
  }

  // Any thread: the owner's next poll or wait queues an ASYNC_CANCEL for
  // `user_data` (step 4).
  void request_cancel(std::uint64_t user_data) noexcept {
    {
      MutexLock lock(cancel_mu_);
      cancel_requests_.push_back(user_data);
      // Release: the owner's acquire load in take_cancel_requests sees a
      // request whenever it sees the flag; the lock orders the rest.
      cancel_requested_.store(true, std::memory_order_release);
    }
    wake();
  }

  // Queues an ASYNC_CANCEL for the op with `user_data` (owner, InRing).
  void queue_cancel(std::uint64_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe();
    {
      RingMemoryScope ring_memory;
      io_uring_prep_cancel64(sqe, user_data, 0);
      sqe->user_data = kCancelTag;
    }
    add_in_flight(1);
  }

  // Owner thread, InRing, before it submits: the cancels other threads
  // asked for. A request that arrives after this look comes with a wake(),
  // which ends the wait that follows, so the next poll or wait takes it.
  // The caller publishes the SQEs (publish_in_flight) with its own.
  void take_cancel_requests() noexcept {
    // Acquire: pairs with the release in cancel().
    if (!cancel_requested_.load(std::memory_order_acquire)) return;
    std::vector<std::uint64_t> requests;
    {
      MutexLock lock(cancel_mu_);
      requests.swap(cancel_requests_);
      cancel_requested_.store(false, std::memory_order_relaxed);  // under the lock
    }
    for (std::uint64_t user_data : requests) queue_cancel(user_data);
  }

  // C2 (owner thread, InRing): the closes asked for, each cancelled in the
  // kernel before its request is marked done.
  void take_close_requests() noexcept {
    // Relaxed: a hint; the exchange below acquires.
    if (close_requests_.load(std::memory_order_relaxed) == nullptr) return;
    // Acquire: pairs with push_close_request's release.
    CloseRequest* requests = close_requests_.exchange(nullptr, std::memory_order_acquire);
    for (CloseRequest* request = requests; request != nullptr; request = request->next) {
      closed_at_[request->fd] = ++close_epoch_;
      io_uring_sqe* sqe = get_sqe();
      {
        RingMemoryScope ring_memory;
        io_uring_prep_cancel_fd(sqe, request->fd, IORING_ASYNC_CANCEL_ALL);
        sqe->user_data = kCancelTag;
      }
      add_in_flight(1);
    }
    // Submitted in SQ order: the ops queued before the cancels are in the
    // kernel when the cancels run. A submission that fails transiently
    // (EINTR) is retried; the bound keeps a broken ring from hanging here.
    for (int attempt = 0; attempt < 1000 && io_uring_sq_ready(&ring_) != 0; ++attempt) {
      submit_now();
    }
    publish_in_flight();
    while (requests != nullptr) {
      CloseRequest* next = requests->next;  // read before `done` frees it
      requests->done.store(true, std::memory_order_release);
      requests = next;
    }
  }

  // C3: whether op's fd was closed since the op started.
  [[nodiscard]] bool closed_since_start(const IoOp& op) const noexcept {
    if (closed_at_.empty()) return false;
    const auto it = closed_at_.find(op.request.fd);
    return it != closed_at_.end() && it->second > op.close_epoch;
  }

  unsigned kernel_flags() const noexcept {
    RingMemoryScope ring_memory;
    return IO_URING_READ_ONCE(*ring_.sq.kflags);
  }
  // CQEs waiting, read without cq_lock_: a hint (the kernel adds, sysmon
  // may be taking some).
  unsigned cq_ready_hint() const noexcept {
    RingMemoryScope ring_memory;
    return io_uring_cq_ready(&ring_);
  }
  // liburing's SQ tail: the SQEs queued so far, submitted or not.
  unsigned sq_tail() const noexcept { return ring_.sq.sqe_tail; }

  // Step 3d: the owner, holding cq_lock_, takes over what sysmon left.
  void take_over_rescue() noexcept {
    if (!rescued_hint_.load(std::memory_order_relaxed)) return;  // under the lock
    rescued_hint_.store(false, std::memory_order_relaxed);       // under the lock
    remove_in_flight(rescued_cqes_);
    rescued_cqes_ = 0;
    if (sigpipe_raised_) {
      sigpipe_raised_ = false;
      consume_sigpipe();
    }
    if (wake_read_rescued_) {
      wake_read_rescued_ = false;
      complete(kWakeTag, 0, 0);
    }
    // complete() may resubmit, and a full SQ reap (nested, under the lock
    // held here): the handback is emptied first.
    HandedBack handed[kHandbackCapacity];
    const unsigned n = handback_count_;
    std::copy(handback_, handback_ + n, handed);
    handback_count_ = 0;
    for (unsigned i = 0; i < n; ++i) complete(handed[i].user_data, handed[i].res, handed[i].flags);
  }

  io_uring_sqe* get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      // The SQ is full: submit what it holds (batching is best effort).
      submit_now();
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  // Submits the SQ. -EBUSY means the kernel holds overflowed completions
  // it could not flush to the full CQ: reap, which makes room, and retry
  // (the back-pressure of invariant 3).
  void submit_now() noexcept {
    for (;;) {
      const int rc = io_uring_submit_and_get_events(&ring_);
      if (rc != -EBUSY && rc != -EAGAIN) return;
      OwnerCqLock cq(*this);
      // What sysmon handed back came first: a multishot request's CQEs
      // keep their order (multishot.hpp, invariant 6).
      take_over_rescue();
      reap();  // may nest (a completion resubmitting into a full SQ): bounded by the SQ
    }
  }

  void arm_wake_read() noexcept {
    if (wake_armed_) return;
    io_uring_sqe* sqe = get_sqe();
    {
      RingMemoryScope ring_memory;
      io_uring_prep_read(sqe, wake_fd_, &wake_buffer_, sizeof wake_buffer_, 0);
      sqe->user_data = kWakeTag;
    }
    wake_armed_ = true;
    add_in_flight(1);
  }

  // Queues op's SQE. The handler (3c) calls it only with room in the SQ,
  // where get_sqe neither submits nor reaps.
  void prep(IoOp& op) noexcept {
    io_uring_sqe* sqe = get_sqe();
    RingMemoryScope ring_memory;
    const IoRequest& r = op.request;
    if (op.repoll) {
      io_uring_prep_poll_add(sqe, r.fd, static_cast<unsigned>(poll_events_for(r)));
    } else {
      switch (r.kind) {
        case IoKind::kRead:
          io_uring_prep_read(sqe, r.fd, r.buffer, static_cast<unsigned>(r.length),
                             static_cast<std::uint64_t>(-1));
          // Relaxed: a test switch, set before the runtime starts.
          if (reads_say_eagain.load(std::memory_order_relaxed)) sqe->rw_flags = RWF_NOWAIT;
          break;
        case IoKind::kWrite:
          io_uring_prep_write(sqe, r.fd, r.buffer, static_cast<unsigned>(r.length),
                              static_cast<std::uint64_t>(-1));
          break;
        case IoKind::kRecv:
          io_uring_prep_recv(sqe, r.fd, r.buffer, r.length, r.flags);
          break;
        case IoKind::kSend:
          io_uring_prep_send(sqe, r.fd, r.buffer, r.length, r.flags | MSG_NOSIGNAL);
          break;
        case IoKind::kAccept:
          io_uring_prep_accept(sqe, r.fd, static_cast<sockaddr*>(r.buffer), r.address_length_out,
                               SOCK_CLOEXEC);
          break;
        case IoKind::kConnect:
          io_uring_prep_connect(sqe, r.fd, r.address, r.address_length);
          break;
        case IoKind::kPoll:
          io_uring_prep_poll_add(sqe, r.fd, static_cast<unsigned>(r.flags));
          break;
      }
    }
    sqe->user_data = op.user_data;
    add_in_flight(1);
  }

  // Takes every CQE (cq_lock_ held). A completion may queue SQEs
  // (resubmissions, the wake read), which may submit early if the SQ fills
  // up.
  void reap() noexcept {
    for (;;) {
      std::uint64_t user_data[64];
      int res[64];
      unsigned flags[64];
      unsigned n;
      unsigned ended = 0;  // CQEs that end their request (ends_request)
      {
        RingMemoryScope ring_memory;
        io_uring_cqe* cqes[64];
        n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
        if (n == 0) return;
        // Copy out before advancing: the kernel may reuse the slots at once.
        for (unsigned i = 0; i < n; ++i) {
          user_data[i] = cqes[i]->user_data;
          res[i] = cqes[i]->res;
          flags[i] = cqes[i]->flags;
          if (ends_request(flags[i])) ++ended;
        }
        io_uring_cq_advance(&ring_, n);
      }
      remove_in_flight(ended);
      for (unsigned i = 0; i < n; ++i) complete(user_data[i], res[i], flags[i]);
    }
  }

  void complete(std::uint64_t user_data, int res, unsigned flags) noexcept {
    if (user_data == kCancelTag) return;
    if (user_data == kWakeTag) {
      wake_armed_ = false;
      wake_consumed();
      if (!draining_) arm_wake_read();
      return;
    }
    if (is_multishot(user_data)) {
      complete_multishot(user_data, res, flags);
      return;
    }
    IoOp& op = *op_of(user_data);
    if (!draining_) {
      std::optional<int> final = final_result(op, res);
      if (!final && closed_since_start(op)) final = -ECANCELED;  // C3
      if (!final) {
        // Step 3 of the top: the readiness poll after -EAGAIN, or, once it
        // fired, the op itself.
        op.repoll = !op.repoll;
        prep(op);
        return;
      }
      res = *final;
      if (res == -ECANCELED) end_as_closed(op);  // C2; a cancel that came first stays
    }
    // The write ran on this thread (inline or in its task work), where
    // SIGPIPE is blocked: take the signal it raised.
    if (res == -EPIPE) consume_sigpipe();
    uncount_op_on_fd(op.request.fd);  // C0: before the goroutine may close it
    op.result = res;
    op.repoll = false;
    if (!draining_) ready(op);
  }

  // --- Multishot requests: the ring's side of multishot.hpp's steps.

  bool serves_multishot_receive() const noexcept override { return multishot_receive_; }

  // Whether `r` is served by a multishot source on this ring.
  bool serves_multishot(const IoRequest& r) const noexcept {
    if (r.multishot == nullptr) return false;
    if (r.kind == IoKind::kAccept) return multishot_accept_;
    return r.kind == IoKind::kRecv && multishot_receive_;
  }

  // Moves the next result into `op` (the queue is not empty).
  static void take_result(MultishotSource& source, IoOp& op) noexcept
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(source.mu) {
    if (source.kind == MultishotSource::Kind::kReceive) {
      op.result = take_received(source, op.request.buffer, op.request.length);
      return;
    }
    op.result = source.results.front().value;
    source.results.erase(source.results.begin());
  }

  // Step 1: a queued result, if any (the goroutine, on any P).
  static bool multishot_try(IoOp& op) noexcept {
    MultishotSource& source = *op.request.multishot;
    MutexLock lock(source.mu);
    if (source.stopped) {
      op.result = -EBADF;
      return true;
    }
    if (source.results.empty()) return false;
    take_result(source, op);
    return true;
  }

  // Step 2 (the goroutine, on this ring's thread): parks the op as a
  // waiter, arming the request on this ring if no ring holds it.
  bool multishot_commit(IoOp& op) noexcept {
    MultishotSource& source = *op.request.multishot;
    std::uint64_t arm_as = 0;
    {
      MutexLock lock(source.mu);
      // Acquire: pairs with io_cancel's compare-exchange. Looked at under
      // the lock, so a cancel that comes later finds the op among the
      // waiters (step 4).
      if (op.cancel.load(std::memory_order_acquire) != 0) {
        op.result = -ECANCELED;
        return false;
      }
      if (source.stopped) {
        op.result = -EBADF;
        return false;
      }
      if (!source.results.empty()) {
        take_result(source, op);
        return false;
      }
      source.waiters.push_back(&op);
      count_multishot_waiters(1);
      if (source.armed_on == nullptr) arm_as = claim_multishot(source);
    }
    // Queued after unlocking (get_sqe may reap, which takes sources' locks);
    // a stop meanwhile sends its cancel through the next poll, after this.
    if (arm_as != 0) {
      InRing in_ring(*this);
      prep_multishot(source, arm_as);
      publish_in_flight();
    }
    return true;
  }

  // Step 4 (any thread): a cancelled waiter leaves; one already taken out
  // completes with its result.
  static void multishot_withdraw(IoOp& op) noexcept {
    MultishotSource& source = *op.request.multishot;
    bool withdrawn = false;
    {
      MutexLock lock(source.mu);
      auto it = std::find(source.waiters.begin(), source.waiters.end(), &op);
      if (it != source.waiters.end()) {
        source.waiters.erase(it);
        count_multishot_waiters(-1);
        withdrawn = true;
      }
    }
    if (!withdrawn) return;
    op.result = -ECANCELED;
    ready_goroutine(op.g);
  }

  // Marks `source` armed on this ring, with the ring's reference; the
  // user_data its SQE is to carry. The caller holds the source's lock and
  // queues the SQE (prep_multishot) after unlocking.
  std::uint64_t claim_multishot(MultishotSource& source) noexcept
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(source.mu) {
    const std::uint64_t user_data = reinterpret_cast<std::uintptr_t>(&source) | kMultishotBit |
                                    (static_cast<std::uint64_t>(++sequence_) << kSequenceShift);
    source.armed_on = this;
    source.user_data = user_data;
    source.cancel_asked = false;
    retain(source);
    return user_data;
  }

  // Queues the multishot SQE of `source` (owner, InRing).
  void prep_multishot(const MultishotSource& source, std::uint64_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe();
    {
      RingMemoryScope ring_memory;
      if (source.kind == MultishotSource::Kind::kAccept) {
        io_uring_prep_multishot_accept(sqe, source.fd, nullptr, nullptr, SOCK_CLOEXEC);
      } else {
        io_uring_prep_recv_multishot(sqe, source.fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufferGroup;
      }
      sqe->user_data = user_data;
    }
    add_in_flight(1);
    multishot_armed_.store(multishot_armed() + 1,
                           std::memory_order_relaxed);  // see multishot_armed
    count_op_on_fd(source.fd);  // C0: an io::close of the fd cancels the request first
  }

  // Step 3: a CQE of a multishot request (owner, holding cq_lock_).
  void complete_multishot(std::uint64_t user_data, int res, unsigned flags) noexcept {
    MultishotSource& source = *source_of(user_data);
    const bool ended = ends_request(flags);
    const bool receive = source.kind == MultishotSource::Kind::kReceive;
    MultishotResult result{.value = res};
    if (receive && res > 0) {
      // Data, in the buffer the kernel chose from this ring's pool.
      result.buffer_id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      result.pool = pool_;
      retain_pool(*pool_);
    }
    IoOp* taken = nullptr;
    bool discard = false;
    bool cancel = false;
    std::uint64_t rearm_as = 0;
    {
      MutexLock lock(source.mu);
      if (ended) {
        source.armed_on = nullptr;
        source.cancel_asked = false;
      }
      if (ended && res == -ECANCELED) {
        // The request was cancelled (stop, the queue's bound, shutdown):
        // nothing to hand on.
      } else if (source.stopped || draining_) {
        discard = true;
      } else if (receive && ended && res == -ENOBUFS) {
        receive_exhaustions.fetch_add(1, std::memory_order_relaxed);
        // The pool is exhausted: the first waiter receives into its own
        // buffer (step 3 of multishot.hpp, "Receiving").
        if (!source.waiters.empty()) {
          IoOp& op = *source.waiters.front();
          const int n = receive_now(source.fd, op);
          if (n != -EAGAIN) {
            op.result = n;
            taken = &op;
            source.waiters.erase(source.waiters.begin());
            count_multishot_waiters(-1);
          }
        }
      } else {
        source.results.push_back(result);
        if (!source.waiters.empty()) {
          taken = source.waiters.front();
          source.waiters.erase(source.waiters.begin());
          count_multishot_waiters(-1);
          take_result(source, *taken);
        } else if (!ended && !source.cancel_asked &&
                   source.results.size() >=
                       (receive ? receive_queue_capacity_ : accept_queue_capacity_)) {
          source.cancel_asked = true;  // invariant 5
          cancel = true;
        }
      }
      if (ended && draining_) {
        // Invariant 2: the sweep destroys the waiters' frames, unreadied.
        count_multishot_waiters(-static_cast<std::int64_t>(source.waiters.size()));
        source.waiters.clear();
      } else if (ended && !source.stopped && !source.waiters.empty()) {
        rearm_as = claim_multishot(source);
      }
    }
    if (discard) discard_result(result, source.kind);
    if (cancel) queue_cancel(user_data);
    if (taken != nullptr) ready(*taken);
    if (ended) {
      uncount_op_on_fd(source.fd);  // C0, before a re-arm counts it again
      // See multishot_armed; in_flight_ was left when the CQE was reaped.
      multishot_armed_.store(multishot_armed() - 1, std::memory_order_relaxed);
    }
    if (rearm_as != 0) prep_multishot(source, rearm_as);
    if (ended) release(source);  // the ring's reference to the ended request
  }

  // A non-blocking recv into op's own buffer: its result, or -EAGAIN.
  static int receive_now(int fd, const IoOp& op) noexcept {
    for (;;) {
      const ssize_t n = ::recv(fd, op.request.buffer, op.request.length, MSG_DONTWAIT);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR) continue;
      return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
  }

  // --- The provided buffer ring (multishot.hpp, "Receiving").

  static constexpr std::uint16_t kBufferGroup = 0;

  // attach(): registers this ring's pool. A kernel without buffer rings
  // refuses run() (multishot_receive was asked for).
  void provide_buffers() {
    auto* pool = new ProvidedBuffers;
    pool->count = receive_buffer_count_;
    pool->size = receive_buffer_size_;
    pool->ring_bytes = pool->count * sizeof(io_uring_buf);
    void* ring =
        mmap(nullptr, pool->ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    pool->memory = static_cast<std::byte*>(std::aligned_alloc(
        64, (static_cast<std::size_t>(pool->count) * pool->size + 63) / 64 * 64));
    if (ring == MAP_FAILED || pool->memory == nullptr) {
      if (ring != MAP_FAILED) munmap(ring, pool->ring_bytes);
      std::free(pool->memory);
      delete pool;
      throw std::system_error(ENOMEM, std::generic_category(), "goro: provided buffers");
    }
    pool->ring = ring;
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring);
    reg.ring_entries = pool->count;
    reg.bgid = kBufferGroup;
    auto* br = static_cast<io_uring_buf_ring*>(ring);
    io_uring_buf_ring_init(br);
    const int mask = io_uring_buf_ring_mask(pool->count);
    for (unsigned i = 0; i < pool->count; ++i) {
      io_uring_buf_ring_add(br, pool->buffer(static_cast<std::uint16_t>(i)), pool->size,
                            static_cast<unsigned short>(i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br, static_cast<int>(pool->count));
    const int rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rc < 0) {
      release_pool(*pool);
      throw std::system_error(-rc, std::generic_category(), "goro: io_uring_register_buf_ring");
    }
    pool_ = pool;
  }

  // After the ring is gone: buffers given back later go nowhere; the
  // memory stays until the last result holding a buffer lets go.
  void retire_provided_buffers() noexcept {
    ProvidedBuffers* pool = std::exchange(pool_, nullptr);
    if (pool == nullptr) return;
    {
      MutexLock lock(pool->mu);
      pool->live = false;
    }
    release_pool(*pool);
  }

  io_uring ring_{};
  const unsigned setup_flags_;
  const int rescue_signal_;                // Config::io_rescue_signal (0: none)
  const bool multishot_accept_;            // Config::multishot_accept
  const unsigned accept_queue_capacity_;   // Config::accept_queue_capacity
  const bool multishot_receive_;           // Config::multishot_receive
  const unsigned receive_buffer_count_;    // Config::receive_buffer_count (a power of two)
  const unsigned receive_buffer_size_;     // Config::receive_buffer_size
  const unsigned receive_queue_capacity_;  // Config::receive_queue_capacity
  ProvidedBuffers* pool_ = nullptr;        // this ring's provided buffers, while attached
  bool attached_ = false;
  bool draining_ = false;
  bool wake_armed_ = false;
  std::uint64_t wake_buffer_ = 0;
  std::uint16_t sequence_ = 0;
  // SQEs queued or submitted whose CQE the owner has not accounted for
  // (those sysmon took are taken off in take_over_rescue).
  std::atomic<unsigned> in_flight_{0};
  std::atomic<unsigned> ops_in_flight_{0};  // in_flight_ less the wake read, published
  // The multishot requests armed on this ring (counted in in_flight_ too).
  std::atomic<unsigned> multishot_armed_{0};
  // in_flight_ less the wake read and the multishot requests: the ops a
  // goroutine waits for in this ring, published (goroutines_waiting).
  std::atomic<unsigned> goroutine_ops_in_flight_{0};
  // The SQ tail as of the last publish_in_flight: sysmon compares it with
  // the kernel's SQ head (3b).
  std::atomic<unsigned> queued_tail_{0};
  // Set while the owner is inside ring code (InRing); read by the handler.
  std::atomic<bool> in_ring_{false};
  bool cq_held_ = false;  // the owner holds cq_lock_ (owner only)

  // The CQ lock (step 3d): kCqFree, or who holds it.
  std::atomic<std::uint32_t> cq_lock_{kCqFree};
  // Guarded by cq_lock_:
  bool rescue_open_ = false;   // attached, not yet detaching: sysmon may reap
  pid_t signal_tid_ = 0;       // the owner thread's id, to signal (0: not signalled)
  unsigned rescued_cqes_ = 0;  // CQEs taken by sysmon, not yet off in_flight_
  // rescued_cqes_ != 0, readable without the lock (poll's shortcut).
  std::atomic<bool> rescued_hint_{false};
  bool wake_read_rescued_ = false;
  bool sigpipe_raised_ = false;  // a write sysmon completed raised SIGPIPE on this thread
  HandedBack handback_[kHandbackCapacity]{};
  unsigned handback_count_ = 0;
  // Sysmon only: when it last signalled the owner (monotonic ns).
  std::int64_t last_signal_ns_ = std::numeric_limits<std::int64_t>::min() / 2;
  // Cancels asked for by other threads (step 4), for the owner to submit.
  Mutex cancel_mu_;
  std::vector<std::uint64_t> cancel_requests_ ABSL_GUARDED_BY(cancel_mu_);
  std::atomic<bool> cancel_requested_{false};
  // Closes asked for (C1), a stack pushed by closers and taken whole by the
  // owner.
  std::atomic<CloseRequest*> close_requests_{nullptr};
  // C2-C3, owner thread (the handler reads closed_at_ only outside InRing,
  // where the owner never is in the middle of changing it): the closes
  // taken so far, and for each fd closed the count when it last was.
  std::uint64_t close_epoch_ = 0;
  absl::flat_hash_map<int, std::uint64_t> closed_at_;
};

namespace {

void rescue_signal_handler(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (info != nullptr && info->si_code == SI_QUEUE &&
      info->si_value.sival_ptr == static_cast<const void*>(&kRescueSignalTag) &&
      info->si_pid == getpid()) {
    // One of goro's: for this thread's ring, if it still has one (3e).
    if (UringPoller* ring = tls_ring.load(std::memory_order_relaxed)) {
      ring->on_rescue_signal();
    }
  } else {
    pass_to_previous_handler(signo, info, context);
  }
  errno = saved_errno;
}

std::unique_ptr<Poller> make_uring_poller(PCore& p, const PollerChoice& choice, int rescue_signal) {
  if (rescue_signal != 0) install_rescue_signal_handler(rescue_signal);
  return std::make_unique<UringPoller>(p, choice, rescue_signal);
}

// Each run's rings are its own: nothing to reset between runs.
void new_uring_run() noexcept {}

// C1 and C4 of the top: every ring with ops in flight cancels those on fd
// before this returns (and io::close releases the number).
void forget_uring_fd(int fd) noexcept {
  // C0. Acquire: pairs with count_op_on_fd's release.
  std::atomic<std::uint32_t>* ops = ops_on_fd().find(fd, /*create=*/false);
  if (ops == nullptr || ops->load(std::memory_order_acquire) == 0) return;
  // Relaxed: tls_ring is this thread's own.
  UringPoller* const own = tls_ring.load(std::memory_order_relaxed);
  std::unique_ptr<CloseRequest[]> requests;
  std::size_t count = 0;
  {
    MutexLock lock(ring_registry_mu);
    std::vector<UringPoller*>& rings = ring_registry();
    requests = std::make_unique<CloseRequest[]>(rings.size());
    for (UringPoller* ring : rings) {
      // A ring without ops in flight holds none on fd: an op counted in C0
      // was published by its ring first (the acquire above, and
      // ops_waiting's, pair with those releases), and stays counted there
      // until its final CQE is reaped.
      if (!ring->ops_waiting()) continue;
      CloseRequest& request = requests[count++];
      request.fd = fd;
      ring->push_close_request(&request);
      if (ring != own) ring->wake();
    }
  }
  int spins = 0;
  for (std::size_t i = 0; i < count; ++i) {
    // Acquire: pairs with the owner's release once its cancel is submitted.
    while (!requests[i].done.load(std::memory_order_acquire)) {
      if (own != nullptr) own->serve_close_requests();
      if (++spins < 64) {
        sched_yield();
      } else {
        timespec pause{0, 50'000};  // another P takes its requests when it next polls
        nanosleep(&pause, nullptr);
      }
    }
  }
}

constinit const PollerDriver kUringDriver{"io_uring", &make_uring_poller, &new_uring_run,
                                          &forget_uring_fd, /*io_follows_the_goroutine=*/true};

}  // namespace

const PollerDriver& uring_driver() noexcept { return kUringDriver; }

void give_back(ProvidedBuffers& pool, std::uint16_t id) noexcept {
  {
    MutexLock lock(pool.mu);
    if (pool.live) {
      RingMemoryScope ring_memory;
      auto* ring = static_cast<io_uring_buf_ring*>(pool.ring);
      io_uring_buf_ring_add(ring, pool.buffer(id), pool.size, id,
                            io_uring_buf_ring_mask(pool.count), 0);
      // A release store of the ring's tail: the kernel sees the entry.
      io_uring_buf_ring_advance(ring, 1);
    }
  }
  release_pool(pool);
}

void uring_send_rescue_signal_for_testing(int signo, pid_t tid) noexcept {
  send_rescue_signal(signo, tid);
}

std::uint64_t uring_receive_exhaustions_for_testing() noexcept {
  return receive_exhaustions.load(std::memory_order_relaxed);
}

std::uint32_t uring_ops_on_fd_for_testing(int fd) noexcept {
  std::atomic<std::uint32_t>* ops = ops_on_fd().find(fd, /*create=*/false);
  return ops == nullptr ? 0 : ops->load(std::memory_order_acquire);
}

void uring_reads_say_eagain_for_testing(bool on) noexcept {
  reads_say_eagain.store(on, std::memory_order_relaxed);
}

}  // namespace goro::detail
