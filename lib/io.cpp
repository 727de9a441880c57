// lib/io.cpp: goro::io's operations and the awaiter entry points
// (goro/detail/io_op.hpp), which hand each step of an operation to the
// current P's poller (poller.hpp) without asking which backend it is.
// Cancellation, step by step:
//   1. A deadline timer or a stop callback calls io_cancel(op, reason). The
//      first compare-exchange of op.cancel from kNone wins; later calls stop.
//   2. The winner asks the poller that holds the op (op.poller, set by
//      io_start) to end it: epoll takes it out of its fd's waiter list (if
//      it is still there) and readies it with -ECANCELED; io_uring queues an
//      ASYNC_CANCEL, at once on the ring owner's thread, through the owner
//      otherwise (with SINGLE_ISSUER only the owner may submit to its ring).
//   3. The op completes through the poller as always; its awaiter maps
//      -ECANCELED to DeadlineExceeded or Cancelled by the reason in step 1.
// close(fd) first asks the backend to end every op parked on fd
// (PollerDriver::forget_fd; poller_uring.cpp, C0-C4, and poller_epoll.cpp
// say how), which marks them IoCancel::kClosed as step 1 would, so that
// their awaiters report a closed error (is_closed, errno EBADF); only then
// is the number released. Every error status carries its errno as a
// payload (kErrnoPayloadUrl), so callers need not parse messages.
#include "goro/io.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "p.hpp"
#include "poller.hpp"
#include "runtime_state.hpp"

namespace goro::detail {

bool io_try(IoOp& op) noexcept {
  P* p = tls_p;
  if (p == nullptr || tls_g == nullptr) {
    op.result = -EPERM;  // not in a goroutine: nothing could resume us
    return true;
  }
  return p->poller->try_now(op);
}

bool io_start(IoOp& op, std::coroutine_handle<> awaiting) noexcept {
  P* p = tls_p;
  G* g = tls_g;
  g->resume = awaiting;
  note_wait(g, "IO wait");
  op.g = g;
  op.poller = p->poller.get();
  bump(p->stats.io_waits);
  p->poller->start(op);
  return true;
}

bool io_commit(IoOp& op) noexcept {
  // The op is handed over only now, once the awaiter has armed its
  // deadline and stop callback: from here on it may complete (io_uring's
  // rescue signal may submit it at any moment) and the goroutine run
  // elsewhere.
  return static_cast<Poller*>(op.poller)->commit(op);
}

void io_cancel(IoOp& op, IoCancel reason) noexcept {
  std::uint32_t none = 0;
  // Acq_rel: the poller's acquire load of the word sees the reason; and
  // op.poller and what start() wrote, written before the timer or callback
  // that calls us was set up, are visible through that set-up (a lock, or
  // the stop state's own synchronisation). This may run on a thread
  // outside the runtime: the op, not tls_p, says which poller holds it.
  if (!op.cancel.compare_exchange_strong(none, static_cast<std::uint32_t>(reason),
                                         std::memory_order_acq_rel)) {
    return;
  }
  static_cast<Poller*>(op.poller)->cancel(op);
}

}  // namespace goro::detail

namespace goro::io {

namespace detail_io {

absl::Status error_status(int result, IoCancel reason, IoKind kind) {
  const char* name = goro::detail::kIoKinds[static_cast<std::size_t>(kind)].name;
  if (result == -ECANCELED) {
    if (reason == IoCancel::kDeadline) {
      return absl::DeadlineExceededError(std::string("goro::io::") + name + ": deadline exceeded");
    }
    if (reason == IoCancel::kCancelled) {
      return absl::CancelledError(std::string("goro::io::") + name + ": cancelled");
    }
    if (reason == IoCancel::kClosed) {
      absl::Status status = absl::FailedPreconditionError(
          std::string("goro::io::") + name + ": file descriptor closed while the operation waited");
      status.SetPayload(kClosedPayloadUrl, absl::Cord("1"));
      status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::string_view(std::to_string(EBADF))));
      return status;
    }
  }
  if (result == -EPERM && goro::detail::tls_g == nullptr) {
    return absl::FailedPreconditionError(std::string("goro::io::") + name +
                                         ": must be awaited from a goroutine");
  }
  absl::Status status = absl::ErrnoToStatus(-result, std::string("goro::io::") + name);
  status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::string_view(std::to_string(-result))));
  return status;
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
  // Every operation parked on fd is ended (and none can resubmit itself)
  // before the number is released: the fd stays open until then.
  goro::detail::active_poller_driver().forget_fd(fd);
  // Linux releases the fd even when close reports EINTR: never retry.
  if (::close(fd) != 0 && errno != EINTR) {
    const int error = errno;
    absl::Status status = absl::ErrnoToStatus(error, "goro::io::close");
    status.SetPayload(kErrnoPayloadUrl, absl::Cord(absl::string_view(std::to_string(error))));
    return status;
  }
  return absl::OkStatus();
}

std::optional<int> errno_of(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  const auto payload = status.GetPayload(kErrnoPayloadUrl);
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool is_closed(const absl::Status& status) noexcept {
  return !status.ok() && status.GetPayload(kClosedPayloadUrl).has_value();
}

const char* poller_backend() noexcept { return goro::detail::active_poller_driver().name; }

}  // namespace goro::io
