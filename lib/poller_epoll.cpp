// lib/poller_epoll.cpp: the epoll backend of the netpoller (the contract is
// at the top of poller.hpp), for kernels or sandboxes without io_uring.
//
// Readiness, not completion: the goroutine makes the non-blocking system
// call itself, and parks only when it says EAGAIN. As Go does, each fd is
// registered once, edge-triggered for input and output, in the epoll of
// the P that first uses it, and O_NONBLOCK is set on it then.
//
// Per-fd state (PollDesc, in a table indexed by fd, as Go's pollCache):
//   readers, writers  FIFO lists of parked ops (read/recv/accept and poll
//                     for input; write/send/connect and poll for output).
//   read_ready,       an edge arrived while nobody waited in that
//   write_ready       direction: the next op to park tries once more first.
//   epoch             the runtime the registration belongs to; a PollDesc
//                     of an earlier run() is reset before use.
//   edges             events step 3 handled for the fd that can mean
//                     bytes to read (input, hang-up, error), counted.
//   drained_at        for a stream socket: 1 + the edge count read just
//                     before a read-side call that said EAGAIN or
//                     returned fewer bytes than asked (the receive queue
//                     was empty then); 0 for none (step 6).
//
// The life of an op:
//   1. try_now (await_ready): register the fd if needed, then try the call.
//      Done unless it says EAGAIN (or EINPROGRESS for connect). A read on
//      a stream socket that is known drained (step 6) skips the try and
//      goes to step 2 as if it had said EAGAIN.
//   2. commit (await_suspend): the deadline timer and stop
//      callback are set up, then, under the PollDesc lock: if the op was
//      cancelled meanwhile, complete it with -ECANCELED; if an edge arrived
//      since step 1 (ready flag), clear it and try again (a read on a
//      stream socket instead tries again exactly when the fd is not known
//      drained, step 6); otherwise append the op to its list and park.
//   3. An edge (on the owner P's worker, from poll()/wait()): under the
//      lock, for each list the event concerns, try the ops in FIFO order,
//      completing them, until one says EAGAIN; if none did, set the ready
//      flag; the completed goroutines go to this P's queue. Readers are
//      retried for input, hang-up and error events (and for output ones
//      while a poll for input and output waits among them), writers for
//      output, hang-up and error: epoll reports with an edge every
//      direction ready at that moment, so a reader with bytes to read is
//      never passed over, while the output edges a TCP sender gets as its
//      data is acknowledged do not retry a parked reader for nothing.
//   4. A cancel (any thread): under the lock, if the op is still in its
//      list, take it out and ready it with -ECANCELED; otherwise it is
//      completing already, or step 2 will see its cancel word.
//   Step 2's check and step 4 both run under the PollDesc lock, and the
//   cancel word is set before step 4 takes it, so no cancel is lost.
//   5. io::close (forget_fd, any thread, before close(2)): under the lock,
//      every parked op leaves its list as closed (end_as_closed), the fd
//      leaves the epoll instance and its PollDesc is reset; an op between
//      steps 1 and 2 finds the registration gone in step 2 and ends as
//      closed too.
//   6. Known drained (nginx's "ready" flag, which spares a server the
//      EAGAIN read before each wait for the next request): a read-side
//      call on a stream socket (recv without MSG_PEEK or MSG_OOB, or read)
//      first reads `edges` (relaxed: a value no newer than the call), and
//      if it says EAGAIN or returns more than 0 but fewer bytes than
//      asked, stores drained_at = that count + 1; any other result (end of
//      stream, an error, a full buffer) stores 0, and so does a cancelled
//      park (step 4). A stream socket returns fewer bytes than asked only
//      once its receive queue is empty (bytes the kernel queues meanwhile,
//      its backlog included, raise an edge after they are queued). So
//      while `edges` still equals drained_at - 1 under the lock, every
//      byte in the queue arrived after that call and its edge is not
//      handled yet: a reader that parks is retried by it (step 3). The
//      check that lets a reader park without trying runs under the lock
//      (step 2), where `edges` is exact; step 1's look at drained_at is
//      only the hint to skip its try. The end of the peer's stream and a
//      pending error are readable without bytes, and their edge comes
//      once: once an event has said EPOLLRDHUP, EPOLLHUP or EPOLLERR
//      (input_ended), step 6 stops for the fd; one that arrives after a
//      drained call counts as an edge. Datagram and seqpacket sockets,
//      pipes and ttys keep the try: a short read there does not mean an
//      empty queue. An fd closed behind goro's back and reused (below) may
//      park with bytes queued, where it would have read them: it waits
//      until its deadline or a stop, as it would for bytes still to come,
//      and the cancel resets drained_at, so the next read tries first.
//
// No attempt blocks its worker, even when the fd number was closed behind
// goro's back (::close, not io::close) and reused by a blocking file that
// epoll never saw: read and write go through preadv2/pwritev2 with
// RWF_NOWAIT (a would-block is EAGAIN whatever O_NONBLOCK says), recv and
// send pass MSG_DONTWAIT, and accept, connect and the fds that refuse
// RWF_NOWAIT (EOPNOTSUPP: ttys, some devices, older kernels) have their
// O_NONBLOCK checked before the call. Such a file is not in the epoll
// instance either, so an op parked on it waits for an edge that never
// comes, until its deadline or a stop: when an op is cancelled while
// parked, its fd's O_NONBLOCK is checked (one fcntl): registration set it,
// so a clear flag means another file holds the number now, and the fd is
// registered again; the caller's next operation works.
// Rejected: an fcntl or fstat before every attempt or every park, and an
// epoll_ctl before every park (it would also detect a reuse by a
// non-blocking file): a system call more per operation, where the fast
// path makes one (measured on the development machine, where a system
// call costs microseconds, as a visible slowdown of the socket ping-pong).
//
// The PollDesc table: three levels of 1024 (top, directories, chunks of
// PollDescs), allocated on first use and kept, so fds up to 2^30 (above
// the largest nr_open Linux allows) work while a table for 2^20 fds costs
// one directory. An fd beyond that cannot exist: EBADF.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

#include "absl/container/inlined_vector.h"
#include "mutex.hpp"
#include "poller.hpp"
#include "runtime_state.hpp"
#include "scheduler_interface.hpp"

namespace goro::detail {
namespace {

struct PollDesc {
  Mutex mu;
  // The run this fd was registered in (0: not registered in this run).
  // Written under `mu`; read without it by io's fast path (try_now), so
  // that an op on a registered fd takes no lock before its system call.
  std::atomic<std::uint64_t> epoch{0};
  int epoll_fd ABSL_GUARDED_BY(mu) = -1;
  // false: epoll refuses the fd (a regular file, whose calls never say
  // EAGAIN). Written under `mu` before `epoch` publishes the registration;
  // read without the lock by attempts (relaxed: ordered by that epoch).
  std::atomic<bool> pollable{true};
  // The fd refused RWF_NOWAIT: its attempts check O_NONBLOCK instead.
  // Relaxed: a hint, set once per registration.
  std::atomic<bool> no_nowait{false};
  // A SOCK_STREAM socket (step 6). Written under `mu` before `epoch`
  // publishes the registration; read like `pollable`.
  std::atomic<bool> stream{false};
  // Step 6: an event said the peer shut down its side, hung up or left
  // an error: a read can end without bytes and without another edge, so
  // step 6 stops. Set under `mu` (step 3), reset only with the
  // registration; read like `stream`.
  std::atomic<bool> input_ended{false};
  // Step 6. Incremented under `mu` only (step 3); read without it by
  // attempts (relaxed: the value bounds what the call can have missed, see
  // step 6) and exactly under it by commit.
  std::atomic<std::uint32_t> edges{0};
  // Step 6. Written by any attempt, with or without `mu` (relaxed: a hint
  // whose every value names a real drained call; commit decides under
  // `mu` with the exact `edges`).
  std::atomic<std::uint32_t> drained_at{0};
  bool read_ready ABSL_GUARDED_BY(mu) = false;
  bool write_ready ABSL_GUARDED_BY(mu) = false;
  IoOp* readers ABSL_GUARDED_BY(mu) = nullptr;
  IoOp* writers ABSL_GUARDED_BY(mu) = nullptr;
};

// The fd -> PollDesc table (the top of this file).
using PollDescTable = FdTable<PollDesc>;

// Ops parked in any PollDesc (sysmon's deadlock check). Changed under the
// PollDesc lock; relaxed: a count, read by sysmon only once every P is idle.
std::atomic<std::int64_t> parked_ops{0};

PollDescTable& fd_table() noexcept {
  static auto* table = new PollDescTable;  // never destroyed: fds outlive runtimes
  return *table;
}

// The run the registrations belong to; changed when a runtime starts and
// when it stops, so that a PollDesc from another run is reset before use.
std::atomic<std::uint64_t> current_epoch{1};
std::atomic<std::uint64_t> epoch_source{1};

std::uint64_t live_epoch() noexcept {
  // Acquire: pairs with the release in new_epoch; a worker that sees a new
  // epoch sees the epoll instances made before it.
  return current_epoch.load(std::memory_order_acquire);
}

void new_epoch() noexcept {
  // The ops parked in the run that ended are forgotten with it.
  parked_ops.store(0, std::memory_order_relaxed);
  current_epoch.store(epoch_source.fetch_add(1, std::memory_order_relaxed) + 1,
                      std::memory_order_release);
}

int errno_result() noexcept { return errno == EWOULDBLOCK ? -EAGAIN : -errno; }

// Sets O_NONBLOCK on fd if it is clear; returns 0 or -errno.
int ensure_nonblocking(int fd) noexcept {
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
  return 0;
}

// read(2) or write(2) that never blocks (the top of this file); returns
// what the call returns, errno set on failure.
ssize_t transfer(PollDesc& pd, const IoRequest& r, bool write) noexcept {
  // Relaxed: written before the registration's epoch was published.
  if (!pd.pollable.load(std::memory_order_relaxed)) {
    // A regular file: its calls never say EAGAIN, and RWF_NOWAIT would
    // (on a page-cache miss).
    return write ? ::write(r.fd, r.buffer, r.length) : ::read(r.fd, r.buffer, r.length);
  }
  if (!pd.no_nowait.load(std::memory_order_relaxed)) {
    iovec vector{r.buffer, r.length};
    const ssize_t n = write ? ::pwritev2(r.fd, &vector, 1, -1, RWF_NOWAIT)
                            : ::preadv2(r.fd, &vector, 1, -1, RWF_NOWAIT);
    if (n >= 0 || errno != EOPNOTSUPP) return n;
    pd.no_nowait.store(true, std::memory_order_relaxed);
  }
  if (const int rc = ensure_nonblocking(r.fd); rc < 0) {
    errno = -rc;
    return -1;
  }
  return write ? ::write(r.fd, r.buffer, r.length) : ::read(r.fd, r.buffer, r.length);
}

// Whether a read-side request on a stream socket counts for step 6: a
// recv that consumes (no MSG_PEEK, no MSG_OOB) or a read.
bool drains_stream(const PollDesc& pd, const IoRequest& r) noexcept {
  // Relaxed: `stream` is published with the registration; `input_ended`
  // is a hint here and exact under mu, where commit reads it.
  if (!pd.stream.load(std::memory_order_relaxed) ||
      pd.input_ended.load(std::memory_order_relaxed)) {
    return false;
  }
  if (r.kind == IoKind::kRead) return true;
  return r.kind == IoKind::kRecv && (r.flags & (MSG_PEEK | MSG_OOB)) == 0;
}

// Step 6's test: the last read-side call drained the fd and no input edge
// was handled since. Relaxed loads: a hint without `mu`, exact under it
// (`edges` changes under mu only; see PollDesc).
bool known_drained(const PollDesc& pd) noexcept {
  const std::uint32_t drained_at = pd.drained_at.load(std::memory_order_relaxed);
  return drained_at != 0 && pd.edges.load(std::memory_order_relaxed) == drained_at - 1;
}

int attempt_call(PollDesc& pd, IoOp& op) noexcept;

// One non-blocking attempt: the result, or -EAGAIN. Keeps step 6's
// drained_at for reads on stream sockets.
int attempt(PollDesc& pd, IoOp& op) noexcept {
  if (!drains_stream(pd, op.request)) return attempt_call(pd, op);
  // Relaxed, before the call: see step 6.
  const std::uint32_t edges = pd.edges.load(std::memory_order_relaxed);
  const int r = attempt_call(pd, op);
  // EAGAIN, or fewer bytes than asked: the receive queue was empty.
  const bool drained = r == -EAGAIN || (r > 0 && static_cast<std::size_t>(r) < op.request.length);
  // Relaxed: a hint (PollDesc::drained_at).
  pd.drained_at.store(drained ? edges + 1 : 0, std::memory_order_relaxed);
  return r;
}

// The system call of one non-blocking attempt.
int attempt_call(PollDesc& pd, IoOp& op) noexcept {
  const IoRequest& r = op.request;
  for (;;) {
    ssize_t n = 0;
    switch (r.kind) {
      case IoKind::kRead:
        n = transfer(pd, r, /*write=*/false);
        break;
      case IoKind::kWrite:
        n = transfer(pd, r, /*write=*/true);
        break;
      case IoKind::kRecv:
        n = ::recv(r.fd, r.buffer, r.length, r.flags | MSG_DONTWAIT);
        break;
      case IoKind::kSend:
        n = ::send(r.fd, r.buffer, r.length, r.flags | MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
      case IoKind::kAccept:
        if (const int rc = ensure_nonblocking(r.fd); rc < 0) return rc;
        n = ::accept4(r.fd, static_cast<sockaddr*>(r.buffer), r.address_length_out, SOCK_CLOEXEC);
        break;
      case IoKind::kConnect: {
        if (!op.connect_started) {
          if (const int rc = ensure_nonblocking(r.fd); rc < 0) return rc;
          if (::connect(r.fd, r.address, r.address_length) == 0) return 0;
          if (errno == EINTR) continue;
          if (errno != EINPROGRESS) return -errno;
          op.connect_started = true;
          return -EAGAIN;
        }
        int error = 0;
        socklen_t len = sizeof error;
        if (::getsockopt(r.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return -errno;
        if (error != 0) return -error;
        // Writable with no error may still be "not yet" (Go checks the same).
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        if (::getpeername(r.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
          return errno == ENOTCONN ? -EAGAIN : -errno;
        }
        return 0;
      }
      case IoKind::kPoll: {
        pollfd pfd{r.fd, static_cast<short>(r.flags), 0};
        const int rc = ::poll(&pfd, 1, 0);
        if (rc < 0) {
          if (errno == EINTR) continue;
          return -errno;
        }
        if (rc == 0) return -EAGAIN;
        return pfd.revents;
      }
    }
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    // A write(2) that failed with EPIPE raised SIGPIPE on this thread.
    if (errno == EPIPE) consume_sigpipe();
    return errno_result();
  }
}

void append(IoOp*& list, IoOp* op) noexcept {
  op->next = nullptr;
  IoOp** link = &list;
  while (*link != nullptr) link = &(*link)->next;
  *link = op;
}

bool unlink(IoOp*& list, IoOp* op) noexcept {
  for (IoOp** link = &list; *link != nullptr; link = &(*link)->next) {
    if (*link == op) {
      *link = op->next;
      op->next = nullptr;
      return true;
    }
  }
  return false;
}

using OpBatch = absl::InlinedVector<IoOp*, 8>;

// The events that can end a reader's or a writer's wait (step 3). epoll
// reports, for an edge in either direction, every direction ready at that
// moment: an output edge while bytes are queued says EPOLLIN too.
constexpr std::uint32_t kInputEvents =
    EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kOutputEvents = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND | EPOLLHUP | EPOLLERR;

// Whether a reader list holds a poll for output too (poll(POLLIN |
// POLLOUT) parks as a reader: poller.hpp, io_direction), which an output
// edge must retry.
bool polls_for_output(const IoOp* list) noexcept {
  for (; list != nullptr; list = list->next) {
    if (list->request.kind == IoKind::kPoll && (list->request.flags & POLLOUT) != 0) return true;
  }
  return false;
}

// Step 3 for one list; returns whether it ran dry without an EAGAIN.
bool retry_list(PollDesc& pd, IoOp*& list, OpBatch& done) noexcept {
  while (IoOp* op = list) {
    const int r = attempt(pd, *op);
    if (r == -EAGAIN) return false;
    list = op->next;
    op->next = nullptr;
    op->result = r;
    parked_ops.fetch_sub(1, std::memory_order_relaxed);
    done.push_back(op);
  }
  return true;
}

// Resets a PollDesc left by an earlier run (its ops' frames are gone).
void refresh(PollDesc& pd) noexcept ABSL_EXCLUSIVE_LOCKS_REQUIRED(pd.mu) {
  if (pd.epoch.load(std::memory_order_relaxed) == live_epoch()) return;  // under mu
  pd.epoch.store(0, std::memory_order_relaxed);
  pd.epoll_fd = -1;
  // Relaxed: published by the epoch store of the next registration.
  pd.pollable.store(true, std::memory_order_relaxed);
  pd.no_nowait.store(false, std::memory_order_relaxed);
  pd.stream.store(false, std::memory_order_relaxed);
  pd.input_ended.store(false, std::memory_order_relaxed);
  pd.drained_at.store(0, std::memory_order_relaxed);
  pd.read_ready = pd.write_ready = false;
  pd.readers = pd.writers = nullptr;
}

// Sets O_NONBLOCK on fd and adds it to `epoll_fd` for pd (pd locked).
int register_with(int epoll_fd, PollDesc& pd, int fd) noexcept
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(pd.mu) {
  if (const int rc = ensure_nonblocking(fd); rc < 0) return rc;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &pd;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    if (errno == EPERM) {
      // A regular file or directory: always "ready"; its calls do not
      // return EAGAIN. Relaxed: published with the registration.
      pd.pollable.store(false, std::memory_order_relaxed);
    } else if (errno == EEXIST) {
      // Already in this epoll: registered by a PollDesc of an earlier run
      // on an epoll whose fd number was reused, or still registered when
      // its O_NONBLOCK was cleared: take it over.
      if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev) != 0) return -errno;
    } else {
      return -errno;
    }
  }
  // Step 6 applies to stream sockets only; not a socket (ENOTSOCK) is not
  // one. Relaxed: published with the registration.
  int type = 0;
  socklen_t type_length = sizeof type;
  const bool stream =
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) == 0 && type == SOCK_STREAM;
  pd.stream.store(stream, std::memory_order_relaxed);
  return 0;
}

}  // namespace

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(PCore& p) : Poller(p), epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "goro: epoll");
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: read until drained
    ev.data.ptr = nullptr;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      const int error = errno;
      ::close(epoll_fd_);
      throw std::system_error(error, std::generic_category(), "goro: epoll_ctl");
    }
  }
  ~EpollPoller() override { ::close(epoll_fd_); }

  // The steps of the top of this file.
  bool try_now(IoOp& op) noexcept override;  // step 1
  void start(IoOp&) noexcept override {}     // nothing to queue: the goroutine made the call
  bool commit(IoOp& op) noexcept override;   // step 2
  void cancel(IoOp& op) noexcept override;   // step 4

  // No ring to set up or drain: no op is in the kernel. Parked ops are in
  // PollDescs, which the driver's new_run() invalidates before the sweep.
  void attach() override { block_sigpipe(); }
  void detach() override { restore_signal_mask(); }

  // epoll_wait is a system call even when nothing is ready: no spinning.
  bool has_ops_in_flight() const noexcept override { return false; }
  bool ops_waiting() const noexcept override {
    return parked_ops.load(std::memory_order_relaxed) != 0;
  }
  bool cheap_to_poll() const noexcept override { return false; }

  void poll() override {
    // No op parked anywhere: an epoll_wait could only report edges nobody
    // waits for, which stay queued in the instance until an op parks (as
    // Go's netpollAnyWaiters). Relaxed: a hint; an op parked just now is
    // seen at the next round or by wait().
    if (parked_ops.load(std::memory_order_relaxed) == 0) return;
    epoll_event events[PollerTuning::kEpollBatch];
    const int n = epoll_wait(epoll_fd_, events, PollerTuning::kEpollBatch, 0);
    dispatch(events, n);
  }

  Rescue rescue(std::int64_t /*now_ns*/, std::int64_t /*signal_period_ns*/) noexcept override {
    // Step 2 of "Rescuing a busy P's I/O" (poller.hpp), on sysmon's thread.
    if (parked_ops.load(std::memory_order_relaxed) == 0) return {};  // a hint, as in poll()
    epoll_event events[PollerTuning::kEpollBatch];
    const int n = epoll_wait(epoll_fd_, events, PollerTuning::kEpollBatch, 0);
    OpBatch done;
    collect(events, n, /*owner=*/false, done);
    RescuedGoroutines goroutines;
    for (IoOp* op : done) goroutines.push_back(op->g);
    ready_rescued(goroutines);
    return {static_cast<std::uint32_t>(goroutines.size()), false};
  }

  void wait(std::int64_t deadline_ns) override {
    epoll_event events[PollerTuning::kEpollBatch];
    int n;
    if (deadline_ns == kNever) {
      n = epoll_pwait2(epoll_fd_, events, PollerTuning::kEpollBatch, nullptr, nullptr);
    } else {
      const std::int64_t left = std::max<std::int64_t>(0, deadline_ns - monotonic_now_ns());
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
      n = epoll_pwait2(epoll_fd_, events, PollerTuning::kEpollBatch, &ts, nullptr);
    }
    dispatch(events, n);
  }

  // Registers fd (pd locked, not yet registered in this epoch).
  int register_fd(PollDesc& pd, int fd) noexcept ABSL_EXCLUSIVE_LOCKS_REQUIRED(pd.mu) {
    if (const int rc = register_with(epoll_fd_, pd, fd); rc < 0) return rc;
    // Release: publishes the registration (and O_NONBLOCK, `pollable`) to
    // try_now's lock-free check.
    pd.epoch.store(live_epoch(), std::memory_order_release);
    pd.epoll_fd = epoll_fd_;
    return 0;
  }

 private:
  void dispatch(epoll_event* events, int n) noexcept {
    OpBatch done;
    collect(events, n, /*owner=*/true, done);
    for (IoOp* op : done) ready(*op);
    finish_batch();
  }

  // Step 3 of the top for each event: the completed ops go to `done`. The
  // wake eventfd is drained by its owner only.
  void collect(epoll_event* events, int n, bool owner, OpBatch& done) noexcept {
    for (int i = 0; i < n; ++i) {
      auto* pd = static_cast<PollDesc*>(events[i].data.ptr);
      if (pd == nullptr) {
        if (!owner) continue;
        std::uint64_t count = 0;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
        wake_consumed();
        continue;
      }
      MutexLock lock(pd->mu);
      if (pd->epoch.load(std::memory_order_relaxed) != live_epoch()) continue;  // stale; under mu
      // Step 3 by direction; `edges` (step 6) before the retries, whose
      // attempts read it. Relaxed: under mu, which commit takes to read it
      // exactly.
      const std::uint32_t ready = events[i].events;
      if ((ready & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        pd->input_ended.store(true, std::memory_order_relaxed);  // under mu
      }
      const bool input = (ready & kInputEvents) != 0;
      if (input) {
        pd->edges.store(pd->edges.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
      if (input || ((ready & kOutputEvents) != 0 && polls_for_output(pd->readers))) {
        if (retry_list(*pd, pd->readers, done)) pd->read_ready = true;
      }
      if ((ready & kOutputEvents) != 0 && retry_list(*pd, pd->writers, done)) {
        pd->write_ready = true;
      }
    }
  }

  const int epoll_fd_;
};

bool EpollPoller::try_now(IoOp& op) noexcept {
  PollDesc* pd = fd_table().find(op.request.fd, /*create=*/true);
  if (pd == nullptr) {
    const bool in_range = op.request.fd >= 0 && op.request.fd < PollDescTable::kLimit;
    op.result = in_range ? -ENOMEM : -EBADF;
    return true;
  }
  // Acquire: pairs with register_fd's release, so a registered fd is also
  // a non-blocking one. A stale "registered" (closed and reused since) is
  // what io::close prevents by resetting the PollDesc first.
  if (pd->epoch.load(std::memory_order_acquire) != live_epoch()) {
    MutexLock lock(pd->mu);
    refresh(*pd);
    if (pd->epoch.load(std::memory_order_relaxed) == 0) {
      const int rc = register_fd(*pd, op.request.fd);
      if (rc < 0) {
        op.result = rc;
        return true;
      }
    }
  }
  // Step 6: a stream known drained, with no edge handled since: the try
  // would say EAGAIN. Relaxed: hints; commit decides under the lock.
  if (drains_stream(*pd, op.request) && !io_never_waits(op.request) && known_drained(*pd)) {
    return false;
  }
  const int r = attempt(*pd, op);
  if (r == -EAGAIN && !io_never_waits(op.request)) return false;
  op.result = r;
  return true;
}

bool EpollPoller::commit(IoOp& op) noexcept {
  PollDesc& pd = *fd_table().find(op.request.fd, /*create=*/false);
  MutexLock lock(pd.mu);
  // Acquire: pairs with io_cancel's compare-exchange (step 4 of the top).
  if (op.cancel.load(std::memory_order_acquire) != 0) {
    op.result = -ECANCELED;
    return false;
  }
  if (pd.epoch.load(std::memory_order_relaxed) != live_epoch()) {  // under mu
    end_as_closed(op);  // io::close (forget_fd) since try_now
    return false;
  }
  const bool reader = io_direction(op.request) == IoDirection::kRead;
  bool& ready_flag = reader ? pd.read_ready : pd.write_ready;
  const bool pollable = pd.pollable.load(std::memory_order_relaxed);  // under mu
  bool try_first = ready_flag || !pollable;
  if (pollable && reader && drains_stream(pd, op.request)) {
    // Step 6: a stream reader tries first unless the fd is known drained
    // with no input edge handled since (exact here: `edges` changes under
    // mu only). Then a set ready flag is stale: the edge that set it was
    // counted before the drained call began, which read its bytes.
    const bool drained = known_drained(pd);
    if (drained) ready_flag = false;
    try_first = !drained;
  }
  if (try_first) {
    ready_flag = false;
    const int r = attempt(pd, op);
    if (r != -EAGAIN || !pollable) {
      op.result = r;
      return false;
    }
  }
  append(reader ? pd.readers : pd.writers, &op);
  parked_ops.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void EpollPoller::cancel(IoOp& op) noexcept {
  PollDesc* pd = fd_table().find(op.request.fd, /*create=*/false);
  if (pd == nullptr) return;
  bool removed;
  {
    MutexLock lock(pd->mu);
    if (pd->epoch.load(std::memory_order_relaxed) != live_epoch()) return;  // under mu
    removed =
        unlink(io_direction(op.request) == IoDirection::kRead ? pd->readers : pd->writers, &op);
    if (removed) {
      op.result = -ECANCELED;
      parked_ops.fetch_sub(1, std::memory_order_relaxed);
      // Step 6: the next read tries first (an fd reused behind goro's
      // back gets its queued bytes read). Relaxed: a hint.
      pd->drained_at.store(0, std::memory_order_relaxed);
      // An op that waited until its deadline or a stop may have waited on
      // an fd number reused behind goro's back (the top of this file).
      if (pd->pollable.load(std::memory_order_relaxed)) {  // under mu
        const int fl = fcntl(op.request.fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK) == 0) {
          (void)register_with(pd->epoll_fd, *pd, op.request.fd);
        }
      }
    }
  }
  if (removed) ready_goroutine(op.g);
}

namespace {

// io::close(fd) (PollerDriver::forget_fd): wakes every op parked on fd as
// closed and forgets the fd's registration. An op between try_now and
// commit finds the registration gone (commit, under the lock) and ends as
// closed too.
void forget_fd(int fd) noexcept {
  PollDesc* pd = fd_table().find(fd, /*create=*/false);
  if (pd == nullptr) return;
  OpBatch woken;
  {
    MutexLock lock(pd->mu);
    if (pd->epoch.load(std::memory_order_relaxed) == live_epoch()) {  // under mu
      for (IoOp** list : {&pd->readers, &pd->writers}) {
        while (IoOp* op = *list) {
          *list = op->next;
          op->next = nullptr;
          end_as_closed(*op);
          parked_ops.fetch_sub(1, std::memory_order_relaxed);
          woken.push_back(op);
        }
      }
      if (pd->pollable.load(std::memory_order_relaxed)) {  // under mu
        epoll_ctl(pd->epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      }
    }
    pd->epoch.store(0, std::memory_order_relaxed);  // under mu
    refresh(*pd);
  }
  for (IoOp* op : woken) ready_goroutine(op->g);
}

std::unique_ptr<Poller> make_epoll_poller(PCore& p, const PollerChoice&, int /*rescue_signal*/) {
  return std::make_unique<EpollPoller>(p);
}

// new_run: a new registration epoch, so that every PollDesc of the run
// before is reset on its next use (the ops parked in it are forgotten with
// the run).
constinit const PollerDriver kEpollDriver{"epoll", &make_epoll_poller, &new_epoch, &forget_fd,
                                          /*io_follows_the_goroutine=*/false};

}  // namespace

const PollerDriver& epoll_driver() noexcept { return kEpollDriver; }

std::uint32_t epoll_ops_parked_on_fd_for_testing(int fd) noexcept {
  PollDesc* pd = fd_table().find(fd, /*create=*/false);
  if (pd == nullptr) return 0;
  MutexLock lock(pd->mu);
  if (pd->epoch.load(std::memory_order_relaxed) != live_epoch()) return 0;  // under mu
  std::uint32_t parked = 0;
  for (const IoOp* op : {pd->readers, pd->writers}) {
    for (; op != nullptr; op = op->next) ++parked;
  }
  return parked;
}

}  // namespace goro::detail
