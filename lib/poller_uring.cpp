// lib/poller_uring.cpp: the io_uring backend of the netpoller (the contract
// is at the top of poller.hpp).
//
// One ring per P, created on the P's worker thread. The life of an op:
//   0. A send is first tried at once with MSG_DONTWAIT (try_now): it
//      nearly always fits in the socket buffer, and completing it in place
//      saves parking the goroutine and a trip through the ring. (Measured:
//      a socket ping-pong between two Ps went from 5.9 to 2.4 us per round
//      trip.) Everything else, and a send that would block, goes on:
//   1. start (goroutine, on the owner thread): the op gets a user_data
//      (its address, plus a 16-bit sequence number in the top bits) and an
//      SQE. The goroutine parks. Nothing is submitted yet (unless the SQ is
//      full: then what it holds goes to the kernel early).
//   2. The owner's next poll() or wait() submits every queued SQE in one
//      io_uring_enter and reaps completions. The scheduler polls when its
//      P runs out of goroutines (and every 61 schedules), so the SQEs of all
//      the goroutines that ran since go out together.
//      poll() enters the kernel only when SQEs are queued or the kernel
//      flagged pending completion work (IORING_SQ_TASKRUN): with
//      DEFER_TASKRUN completions are posted during the owner's enter calls,
//      and TASKRUN_FLAG tells it when one is worth making.
//   3. A CQE: -EAGAIN (a non-blocking fd) resubmits the op as a POLL_ADD
//      for its direction and then the op itself; anything else is the
//      result: stored in the op, and the goroutine goes to this P's queue.
//   4. Cancelling (a deadline timer or a stop callback, on any thread):
//      the op's cancel word is set first; on the owner thread an
//      ASYNC_CANCEL SQE for its user_data is queued; on another thread
//      (SINGLE_ISSUER: only the owner may submit) the user_data goes to
//      the poller's cancel requests and the owner is woken; its next
//      poll() or wait() queues the ASYNC_CANCEL before it submits. The op
//      still completes through its own CQE (step 3), with -ECANCELED or, if
//      it won the race, its result.
//      A stale request (the op completed, its frame reused an address for
//      a new op) cannot hit the new op: the sequence number differs.
//   5. wake() writes the P's eventfd; a READ on it is kept armed in the
//      ring, so a sleeping wait() returns.
//   6. detach() (shutdown): ASYNC_CANCEL with CANCEL_ANY|CANCEL_ALL, then
//      reap until nothing is in flight, readying nobody.
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
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

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

class UringPoller;

namespace {

// Marks a scope that reads or writes ring memory (SQEs, CQEs, the kernel's
// flags word). That memory is shared with the kernel and mapped by liburing
// with raw system calls that ThreadSanitizer does not see, so when a later
// runtime's ring lands at the address of an earlier one it reports the
// owner threads of the two as racing. Within one ring only its owner
// thread touches it. The scopes are kept to the ring accesses themselves,
// so that the scheduler code they call stays checked.
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

constexpr std::uint64_t kCancelTag = 0;  // an ASYNC_CANCEL's own CQE
constexpr std::uint64_t kWakeTag = 1;    // the eventfd read
constexpr unsigned kSequenceShift = 48;  // user-space addresses fit in 48 bits
constexpr std::uint64_t kAddressMask = (std::uint64_t{1} << kSequenceShift) - 1;

IoOp* op_of(std::uint64_t user_data) noexcept {
  return reinterpret_cast<IoOp*>(static_cast<std::uintptr_t>(user_data & kAddressMask));
}

short poll_events_for(const IoRequest& r) noexcept {
  if (r.kind == IoKind::kPoll) return static_cast<short>(r.flags);
  return io_direction(r) == IoDirection::kRead ? POLLIN : POLLOUT;
}

// The ring this thread owns (attach() to detach()), so that a cancel knows
// whether it may submit itself.
constinit thread_local const UringPoller* tls_ring = nullptr;

}  // namespace

class UringPoller final : public Poller {
 public:
  UringPoller(PCore& p, unsigned setup_flags) : Poller(p), setup_flags_(setup_flags) {}
  ~UringPoller() override {
    if (attached_) io_uring_queue_exit(&ring_);
  }

  void attach() override {
    io_uring_params params{};
    params.flags = setup_flags_ | IORING_SETUP_CQSIZE;
    params.cq_entries = PollerTuning::kCompletionEntries;
    const int rc = io_uring_queue_init_params(PollerTuning::kSubmissionEntries, &ring_, &params);
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "goro: io_uring_setup");
    attached_ = true;
    tls_ring = this;
    block_sigpipe();
    arm_wake_read();
  }

  void detach() override {
    if (!attached_) {
      restore_signal_mask();
      return;
    }
    draining_ = true;
    io_uring_sqe* sqe = get_sqe();
    {
      RingMemoryScope ring_memory;
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      sqe->user_data = kCancelTag;
    }
    ++in_flight_;
    while (in_flight_ > 0) {
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR && rc != -ETIME) break;
      reap();
    }
    io_uring_queue_exit(&ring_);
    attached_ = false;
    tls_ring = nullptr;
    restore_signal_mask();
  }

  // Publishes the ops in flight for ops_waiting(). Release: an owner that
  // goes idle afterwards is seen with its final count.
  void publish_in_flight() noexcept {
    ops_in_flight_.store(in_flight_ - (wake_armed_ ? 1U : 0U), std::memory_order_release);
  }

  void poll() override {
    take_cancel_requests();
    // Nothing but the wake read in flight: nothing to do (a wake that
    // completed meanwhile is reaped by the next wait()).
    if (in_flight_ == (wake_armed_ ? 1U : 0U) && io_uring_sq_ready(&ring_) == 0) return;
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
    finish_batch();
  }

  void wait(std::int64_t deadline_ns) override {
    take_cancel_requests();
    arm_wake_read();
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
    finish_batch();
  }

  bool has_ops_in_flight() const noexcept override { return in_flight_ > (wake_armed_ ? 1U : 0U); }
  bool ops_waiting() const noexcept override {
    // Acquire: pairs with publish_in_flight's release; an idle owner's last
    // store is exact.
    return ops_in_flight_.load(std::memory_order_acquire) != 0;
  }
  // With DEFER_TASKRUN or COOP_TASKRUN + TASKRUN_FLAG the kernel flags
  // pending completion work in the SQ ring; with no flags it posts CQEs
  // directly. Either way a poll with nothing to do is a few memory reads.
  bool cheap_to_poll() const noexcept override { return true; }

  // Step 0.
  bool try_now(IoOp& op) noexcept override {
    const IoRequest& r = op.request;
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
    prep(op);
    publish_in_flight();
  }

  // The SQE goes out at the next poll or wait, on this very thread, so
  // nothing can have completed yet.
  bool commit(IoOp&) noexcept override { return true; }

  // Step 4.
  void cancel(IoOp& op) noexcept override {
    if (tls_ring == this) {
      queue_cancel(op.user_data);
      return;
    }
    {
      MutexLock lock(cancel_mu_);
      cancel_requests_.push_back(op.user_data);
      // Release: the owner's acquire load in take_cancel_requests sees a
      // request whenever it sees the flag; the lock orders the rest.
      cancel_requested_.store(true, std::memory_order_release);
    }
    wake();
  }

 private:
  void queue_cancel(std::uint64_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe();
    RingMemoryScope ring_memory;
    io_uring_prep_cancel64(sqe, user_data, 0);
    sqe->user_data = kCancelTag;
    ++in_flight_;
  }

  // Owner thread, before it submits: the cancels other threads asked for.
  // A request that arrives after this look comes with a wake(), which ends
  // the wait that follows, so the next poll or wait takes it.
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

  unsigned kernel_flags() const noexcept {
    RingMemoryScope ring_memory;
    return IO_URING_READ_ONCE(*ring_.sq.kflags);
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
      reap();  // may nest (a completion resubmitting into a full SQ): bounded by the SQ
    }
  }

  void arm_wake_read() noexcept {
    if (wake_armed_) return;
    io_uring_sqe* sqe = get_sqe();
    RingMemoryScope ring_memory;
    io_uring_prep_read(sqe, wake_fd_, &wake_buffer_, sizeof wake_buffer_, 0);
    sqe->user_data = kWakeTag;
    wake_armed_ = true;
    ++in_flight_;
  }

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
    ++in_flight_;
  }

  // Takes every CQE. A completion may queue SQEs (resubmissions, the wake
  // read), which may submit early if the SQ fills up.
  void reap() noexcept {
    for (;;) {
      std::uint64_t user_data[64];
      int res[64];
      unsigned n;
      {
        RingMemoryScope ring_memory;
        io_uring_cqe* cqes[64];
        n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
        if (n == 0) return;
        // Copy out before advancing: the kernel may reuse the slots at once.
        for (unsigned i = 0; i < n; ++i) {
          user_data[i] = cqes[i]->user_data;
          res[i] = cqes[i]->res;
        }
        io_uring_cq_advance(&ring_, n);
      }
      in_flight_ -= n;
      for (unsigned i = 0; i < n; ++i) complete(user_data[i], res[i]);
    }
  }

  void complete(std::uint64_t user_data, int res) noexcept {
    if (user_data == kCancelTag) return;
    if (user_data == kWakeTag) {
      wake_armed_ = false;
      wake_consumed();
      if (!draining_) arm_wake_read();
      return;
    }
    IoOp& op = *op_of(user_data);
    if (!draining_) {
      // Acquire: pairs with io_cancel's compare-exchange. A cancel that was
      // asked for must not be undone by resubmitting the op.
      const bool cancelled = op.cancel.load(std::memory_order_acquire) != 0;
      if (op.repoll) {
        // The readiness poll of step 3 completed: now the op itself.
        op.repoll = false;
        if (res >= 0 && !cancelled) {
          prep(op);
          return;
        }
        if (res >= 0) res = -ECANCELED;
      } else if ((res == -EAGAIN && !io_never_waits(op.request)) || res == -EINTR) {
        if (!cancelled) {
          op.repoll = true;
          prep(op);
          return;
        }
        res = -ECANCELED;
      }
    }
    // The write ran on this thread (inline or in its task work), where
    // SIGPIPE is blocked: take the signal it raised.
    if (res == -EPIPE) consume_sigpipe();
    op.result = res;
    op.repoll = false;
    if (!draining_) ready(op);
  }

  io_uring ring_{};
  const unsigned setup_flags_;
  bool attached_ = false;
  bool draining_ = false;
  bool wake_armed_ = false;
  std::uint64_t wake_buffer_ = 0;
  unsigned in_flight_ = 0;                  // SQEs queued or submitted whose CQE is not reaped
  std::atomic<unsigned> ops_in_flight_{0};  // in_flight_ less the wake read
  std::uint16_t sequence_ = 0;
  // Cancels asked for by other threads (step 4), for the owner to submit.
  Mutex cancel_mu_;
  std::vector<std::uint64_t> cancel_requests_ ABSL_GUARDED_BY(cancel_mu_);
  std::atomic<bool> cancel_requested_{false};
};

namespace {

std::unique_ptr<Poller> make_uring_poller(PCore& p, const PollerChoice& choice) {
  return std::make_unique<UringPoller>(p, choice.uring_flags);
}

// Each run's rings are its own: nothing to reset between runs.
void new_uring_run() noexcept {}

// Nothing parks outside the rings: an op on a closed fd completes with its
// error through its own CQE.
void forget_uring_fd(int) noexcept {}

constinit const PollerDriver kUringDriver{"io_uring", &make_uring_poller, &new_uring_run,
                                          &forget_uring_fd};

}  // namespace

const PollerDriver& uring_driver() noexcept { return kUringDriver; }

}  // namespace goro::detail
