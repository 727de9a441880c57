// lib/io.cpp: goro::io's operations and the awaiter entry points
// (goro/detail/io_op.hpp), dispatching to the process's poller backend
// (poller.hpp). Cancellation, step by step:
//   1. A deadline timer or a stop callback calls io_cancel(op, reason). The
//      first compare-exchange of op.cancel from kNone wins; later calls stop.
//   2. epoll: epoll_cancel takes the op out of its fd's waiter list (if it is
//      still there) and readies it with -ECANCELED.
//   3. io_uring, on the ring owner's thread: an ASYNC_CANCEL SQE at once.
//      On any other thread (a thief P running the owner's timers, a thread
//      outside the runtime calling request_stop): the op's user_data goes
//      to the owner's inbox and the owner is woken; it queues the
//      ASYNC_CANCEL when it drains the inbox. The owner has to: with
//      SINGLE_ISSUER only it may submit to its ring.
//   4. The op completes through the poller as always; its awaiter maps
//      -ECANCELED to DeadlineExceeded or Cancelled by the reason in step 1.
#include "goro/io.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "poller.hpp"
#include "runtime_state.hpp"
#include "scheduler.hpp"

namespace goro::detail {
namespace {

// Called on a worker thread (tls_p set): this runtime's backend.
bool uring() noexcept { return tls_p->scheduler.poller_kind() == PollerKind::kIoUring; }

}  // namespace

bool io_try(IoOp& op) noexcept {
  if (tls_p == nullptr || tls_g == nullptr) {
    op.result = -EPERM;  // not in a goroutine: nothing could resume us
    return true;
  }
  if (uring()) return uring_try(op);
  return epoll_try(op);
}

bool io_start(IoOp& op, std::coroutine_handle<> awaiting) noexcept {
  P* p = tls_p;
  G* g = tls_g;
  g->resume = awaiting;
  note_wait(g, "IO wait");
  op.g = g;
  bump(p->stats.io_waits);
  if (uring()) uring_start(*p, op);
  return true;
}

bool io_commit(IoOp& op) noexcept {
  // io_uring: the SQE is queued only now, once the awaiter has armed its
  // deadline and stop callback: from here on the op may complete (the
  // rescue signal may submit it at any moment) and the goroutine run
  // elsewhere.
  if (uring()) return uring_commit(*tls_p, op);
  return epoll_commit(op);
}

void io_cancel(IoOp& op, IoCancel reason) noexcept {
  std::uint32_t none = 0;
  // Acq_rel: the poller's acquire load of the word sees the reason; and
  // ring_owner/user_data, written before the timer or callback that calls
  // us was set up, are visible through that set-up (a lock, or the stop
  // state's own synchronisation).
  if (!op.cancel.compare_exchange_strong(none, static_cast<std::uint32_t>(reason),
                                         std::memory_order_acq_rel)) {
    return;
  }
  // io_uring ops record their ring's P when submitted, and a cancel is
  // only ever armed after that; epoll ops never set it. (This may run on a
  // thread outside the runtime: no tls_p to ask.)
  P* owner = static_cast<P*>(op.ring_owner);
  if (owner == nullptr) {
    epoll_cancel(op);
    return;
  }
  if (tls_p == owner) {
    uring_cancel(*owner, op.user_data);
  } else {
    owner->scheduler.post_cancel(*owner, op.user_data);
  }
}

void Scheduler::post_cancel(P& owner, std::uint64_t user_data) noexcept {
  {
    MutexLock lock(owner.inbox_mu);
    owner.cancel_inbox.push_back(user_data);
    // seq_cst: read by the owner's idle re-check, as for blocking calls.
    owner.inbox_nonempty.store(true, std::memory_order_seq_cst);
  }
  owner.poller->wake();
}

bool Scheduler::ready_io(P& p, G* g) noexcept {
  // The first goroutine of a batch takes runnext if it is free (an echo
  // server's reader runs next, on this P), the rest go to the tail in
  // completion order; finish_batch() wakes a P once per batch, if any went
  // where a thief can take them (see ready_goroutine).
  return runq_put(p, entry_for(g, /*claim=*/false), Placement::kRunNextIfFree);
}

}  // namespace goro::detail

namespace goro::io {

namespace detail_io {

absl::Status error_status(int result, IoCancel reason, IoKind kind) {
  static constexpr const char* kNames[] = {"read",   "write",   "recv", "send",
                                           "accept", "connect", "poll"};
  const char* name = kNames[static_cast<int>(kind)];
  if (result == -ECANCELED) {
    if (reason == IoCancel::kDeadline) {
      return absl::DeadlineExceededError(std::string("goro::io::") + name + ": deadline exceeded");
    }
    if (reason == IoCancel::kCancelled) {
      return absl::CancelledError(std::string("goro::io::") + name + ": cancelled");
    }
  }
  if (result == -EPERM && goro::detail::tls_g == nullptr) {
    return absl::FailedPreconditionError(std::string("goro::io::") + name +
                                         ": must be awaited from a goroutine");
  }
  return absl::ErrnoToStatus(-result, std::string("goro::io::") + name);
}

}  // namespace detail_io

using goro::detail::IoKind;
using goro::detail::IoRequest;

namespace {

// What one operation may move (goro/detail/io_op.hpp, kMaxIoLength).
std::size_t clamp_length(std::size_t length) noexcept {
  return std::min(length, goro::detail::kMaxIoLength);
}

}  // namespace

SizeAwaiter read(int fd, void* buffer, std::size_t length, const IoOptions& options) {
  return SizeAwaiter(
      IoRequest{.kind = IoKind::kRead, .fd = fd, .buffer = buffer, .length = clamp_length(length)},
      options);
}

SizeAwaiter recv(int fd, void* buffer, std::size_t length, int flags, const IoOptions& options) {
  return SizeAwaiter(IoRequest{.kind = IoKind::kRecv,
                               .fd = fd,
                               .flags = flags,
                               .buffer = buffer,
                               .length = clamp_length(length)},
                     options);
}

SizeAwaiter write_some(int fd, const void* data, std::size_t length, const IoOptions& options) {
  return SizeAwaiter(IoRequest{.kind = IoKind::kWrite,
                               .fd = fd,
                               .buffer = const_cast<void*>(data),  // only read from
                               .length = clamp_length(length)},
                     options);
}

SizeAwaiter send_some(int fd, const void* data, std::size_t length, int flags,
                      const IoOptions& options) {
  return SizeAwaiter(IoRequest{.kind = IoKind::kSend,
                               .fd = fd,
                               .flags = flags,
                               .buffer = const_cast<void*>(data),  // only read from
                               .length = clamp_length(length)},
                     options);
}

Task<absl::Status> write(int fd, const void* data, std::size_t length, IoOptions options) {
  const auto* bytes = static_cast<const std::byte*>(data);
  while (length > 0) {
    absl::StatusOr<std::size_t> n = co_await write_some(fd, bytes, length, options);
    if (!n.ok()) co_return n.status();
    bytes += *n;
    length -= *n;
  }
  co_return absl::OkStatus();
}

Task<absl::Status> send(int fd, const void* data, std::size_t length, int flags,
                        IoOptions options) {
  const auto* bytes = static_cast<const std::byte*>(data);
  while (length > 0) {
    absl::StatusOr<std::size_t> n = co_await send_some(fd, bytes, length, flags, options);
    if (!n.ok()) co_return n.status();
    bytes += *n;
    length -= *n;
  }
  co_return absl::OkStatus();
}

FdAwaiter accept(int fd, sockaddr* address, socklen_t* address_length, const IoOptions& options) {
  return FdAwaiter(IoRequest{.kind = IoKind::kAccept,
                             .fd = fd,
                             .buffer = address,
                             .address_length_out = address_length},
                   options);
}

StatusAwaiter connect(int fd, const sockaddr* address, socklen_t address_length,
                      const IoOptions& options) {
  return StatusAwaiter(
      IoRequest{
          .kind = IoKind::kConnect, .fd = fd, .address = address, .address_length = address_length},
      options);
}

EventsAwaiter poll(int fd, short events, const IoOptions& options) {
  return EventsAwaiter(IoRequest{.kind = IoKind::kPoll, .fd = fd, .flags = events}, options);
}

absl::Status close(int fd) noexcept {
  // Under io_uring nothing is parked in PollDescs: nothing to wake.
  if (goro::detail::active_poller_kind() == goro::detail::PollerKind::kEpoll) {
    goro::detail::epoll_forget_fd(fd);
  }
  // Linux releases the fd even when close reports EINTR: never retry.
  if (::close(fd) != 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "goro::io::close");
  return absl::OkStatus();
}

const char* poller_backend() noexcept {
  return goro::detail::active_poller_kind() == goro::detail::PollerKind::kIoUring ? "io_uring"
                                                                                  : "epoll";
}

}  // namespace goro::io
