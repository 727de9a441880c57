// goro/io.hpp
//
// Defines: goro::io::IoOptions and the asynchronous operations on file
// descriptors: read, recv, write_some, send_some, write, send, accept,
// connect, poll and close, and io::options_from (the options that honour a
// goro::Context). goro::net builds its sockets on these.
//
// Each operation parks the calling goroutine, not its worker thread, until
// the operation completes: the P goes on running other goroutines. Under
// the io_uring backend the operation is an SQE in the ring of the caller's
// P; under the epoll backend it is a non-blocking system call, retried when
// epoll reports the fd ready (lib/poller.hpp). Both behave the same:
//
//   * Errors are values: absl::Status / absl::StatusOr, built from errno
//     (absl::ErrnoToStatus, the errno kept as a payload: errno_of), never
//     exceptions.
//   * A deadline that passes ends the operation with
//     absl::StatusCode::kDeadlineExceeded; a stop request on the
//     std::stop_token ends it with kCancelled, unless the deadline has
//     passed by then (a context's deadline also cancels its stop token:
//     the operation reports the deadline, as Go's ctx.Err() does). Either
//     way nothing the
//     operation did is lost: if it completed before the cancellation took
//     effect, its result is returned instead, and an fd whose read timed out
//     stays usable (no data was consumed).
//   * read/recv return 0 at end of file; write_some/send_some may write
//     less than asked; write/send loop until everything is written. One
//     operation moves at most detail::kMaxIoLength bytes (2 GiB - 4 KiB,
//     what read(2) and write(2) move at most): longer requests are short
//     transfers, never a false 0.
//   * A write to a pipe without a reader or to a socket whose peer shut
//     down fails with EPIPE, as a value, and never kills the process with
//     SIGPIPE: the process's disposition of SIGPIPE is left alone; instead
//     goro's worker threads block SIGPIPE while they serve a runtime (the
//     thread that calls run() too, until run() returns: its mask is then
//     restored) and take the signal such a write raised on them. So a
//     goroutine's own write(2) outside goro::io gets EPIPE without a
//     signal too. send and send_some add MSG_NOSIGNAL as well.
//   * They must be awaited from a goroutine. The fd may be blocking or
//     not; under epoll goro makes it non-blocking the first time it is used,
//     and no operation blocks a worker thread even when the fd number was
//     closed with ::close (not io::close) and reused by a blocking file.
//     Such a file is unknown to epoll: an operation parked on it ends only
//     at its deadline or stop, and then goro registers the new file, so
//     the next operation works. Under epoll any fd the kernel hands out
//     works (up to 2^30).
//
// An operation completes even while another goroutine on its P computes
// without suspending: the runtime's monitor thread then finds the
// completion and another P resumes the goroutine (under io_uring by
// signalling the busy thread, see Config::io_rescue_signal).
//
// Closing: close(fd) ends every operation parked on fd, on every P and on
// both backends, before it releases the fd number: they fail with a closed
// error (is_closed; kFailedPrecondition, errno_of says EBADF). io_uring:
// each ring that has operations in flight cancels those on fd (one
// ASYNC_CANCEL with CANCEL_FD|CANCEL_ALL) before the fd is closed; epoll:
// the fd leaves epoll and its waiters are woken. An operation that started
// before close was called is ended; none can resubmit itself on the number
// afterwards, so a recycled number never reaches it. An operation that
// starts concurrently with close, unordered with it, is a race as with
// read(2) and close(2): it may fail with EBADF, or act on whatever file
// holds the number by then (goro::net's sockets count their operations so
// that this cannot happen). close may wait for another P to take its
// request: while a goroutine on that P computes without suspending, and
// the P has operations in flight, close waits until it suspends.
//
// Example:
//   char buf[4096];
//   auto n = co_await goro::io::read(fd, buf, sizeof buf,
//                                    goro::io::IoOptions::timeout(1s));
//   if (!n.ok()) { ... n.status() ... }
#ifndef GORO_IO_HPP_
#define GORO_IO_HPP_

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <stop_token>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/context.hpp"
#include "goro/detail/io_op.hpp"
#include "goro/task.hpp"
#include "goro/time.hpp"

namespace goro::io {

// When an operation gives up. Default: never, and not cancellable.
//
// Deliberately not an aggregate (it has constructors): GCC 12 destroys an
// aggregate temporary made inside a co_await expression twice, so
// `co_await io::read(fd, buf, n, IoOptions{...})` would free the stop
// token's state twice. Constructors make the same call safe on every
// compiler.
struct IoOptions {
  // The operation fails with kDeadlineExceeded once the steady clock
  // passes this point.
  Clock::time_point deadline = Clock::time_point::max();
  // The operation fails with kCancelled once a stop is requested.
  std::stop_token cancel{};

  IoOptions() noexcept {}
  explicit IoOptions(Clock::time_point deadline, std::stop_token cancel = {}) noexcept
      : deadline(deadline), cancel(std::move(cancel)) {}
  explicit IoOptions(std::stop_token cancel) noexcept : cancel(std::move(cancel)) {}

  // Options with a deadline `timeout` from now. A timeout too long to add
  // to now means no deadline (it saturates, never wrapping into the past).
  [[nodiscard]] static IoOptions timeout(std::chrono::nanoseconds timeout,
                                         std::stop_token cancel = {}) noexcept {
    return IoOptions(goro::detail::saturating_time_add(Clock::now(), timeout), std::move(cancel));
  }
};

namespace detail_io {

using goro::detail::IoCancel;
using goro::detail::IoKind;

// Builds the status for a failed operation (result < 0).
[[nodiscard]] absl::Status error_status(int result, IoCancel reason, IoKind kind);

inline std::int64_t deadline_ns(const IoOptions& options) noexcept {
  if (options.deadline == Clock::time_point::max()) return goro::detail::IoAwaiter::kNoDeadline;
  return goro::detail::to_ns(options.deadline);
}

// The awaiter of one operation; Result converts a non-negative result.
template <class Result>
class OpAwaiter : public goro::detail::IoAwaiter {
 public:
  OpAwaiter(const goro::detail::IoRequest& request, const IoOptions& options) noexcept
      : IoAwaiter(request, deadline_ns(options), options.cancel) {}

  Result await_resume() noexcept {
    const int result = finish();
    if (result < 0) return error_status(result, cancel_reason(), op_.request.kind);
    if constexpr (std::is_same_v<Result, absl::Status>) {
      return absl::OkStatus();
    } else {
      return static_cast<typename Result::value_type>(result);
    }
  }
};

}  // namespace detail_io

// The awaiters returned below (awaitable once, from a goroutine).
using SizeAwaiter = detail_io::OpAwaiter<absl::StatusOr<std::size_t>>;
using FdAwaiter = detail_io::OpAwaiter<absl::StatusOr<int>>;
using StatusAwaiter = detail_io::OpAwaiter<absl::Status>;
using EventsAwaiter = detail_io::OpAwaiter<absl::StatusOr<short>>;

// read(2): up to `length` bytes into `buffer`; 0 at end of file.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] SizeAwaiter read(
    int fd, void* buffer, std::size_t length, const IoOptions& options = {});
[[nodiscard("co_await it: the operation does not start until it is awaited")]] inline SizeAwaiter
read(int fd, std::span<std::byte> buffer, const IoOptions& options = {}) {
  return read(fd, buffer.data(), buffer.size(), options);
}

// recv(2) with `flags` (MSG_PEEK, MSG_WAITALL...): as read, for sockets.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] SizeAwaiter recv(
    int fd, void* buffer, std::size_t length, int flags = 0, const IoOptions& options = {});

// write(2): writes some of the bytes (at least one unless it fails).
[[nodiscard("co_await it: the operation does not start until it is awaited")]] SizeAwaiter
write_some(int fd, const void* data, std::size_t length, const IoOptions& options = {});

// send(2) with `flags` | MSG_NOSIGNAL: sends some of the bytes.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] SizeAwaiter
send_some(int fd, const void* data, std::size_t length, int flags = 0,
          const IoOptions& options = {});

// Writes all `length` bytes, looping over short writes. On failure the
// status says why; how much was written before is not reported (use
// write_some for that). `data` must stay valid until the task completes.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] Task<absl::Status>
write(int fd, const void* data, std::size_t length, IoOptions options = {});
[[nodiscard(
    "co_await it: the operation does not start until it is "
    "awaited")]] GORO_CORO_WRAPPER inline Task<absl::Status>
write(int fd, std::span<const std::byte> data, IoOptions options = {}) {
  return write(fd, data.data(), data.size(), std::move(options));
}

// send(2) of all `length` bytes with `flags` | MSG_NOSIGNAL, looping.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] Task<absl::Status>
send(int fd, const void* data, std::size_t length, int flags = 0, IoOptions options = {});

// accept4(2) with SOCK_CLOEXEC: the new connection's fd. `address` and
// `address_length` may be null, as for accept4.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] FdAwaiter accept(
    int fd, sockaddr* address = nullptr, socklen_t* address_length = nullptr,
    const IoOptions& options = {});

// connect(2), waiting for the connection to be established. `address` must
// stay valid until the operation completes.
[[nodiscard("co_await it: the operation does not start until it is awaited")]] StatusAwaiter
connect(int fd, const sockaddr* address, socklen_t address_length, const IoOptions& options = {});

// Waits until fd is ready for `events` (POLLIN, POLLOUT, ...); returns the
// ready events (POLLHUP and POLLERR are always reported).
[[nodiscard("co_await it: the operation does not start until it is awaited")]] EventsAwaiter poll(
    int fd, short events, const IoOptions& options = {});

// Closes fd, first ending every operation parked on it with a closed error
// (see "Closing" at the top of this header). Callable from any thread,
// inside a runtime or not; the errno of close(2) as the status otherwise.
absl::Status close(int fd) noexcept;

// The payload URLs goro::io's statuses carry: the errno of the failed
// system call (its decimal text), and a mark on the status of an operation
// that close(fd) ended.
inline constexpr char kErrnoPayloadUrl[] = "goro.io/errno";
inline constexpr char kClosedPayloadUrl[] = "goro.io/closed";

// The errno behind a failed operation (a status from goro::io), if any.
[[nodiscard]] std::optional<int> errno_of(const absl::Status& status);

// True for the status of an operation that close(fd) ended while it was
// parked.
[[nodiscard]] bool is_closed(const absl::Status& status) noexcept;

// The poller backend of the running runtime (or of the last one): "io_uring"
// or "epoll". Chosen when a runtime starts, from Config::poller, else the
// environment variable GORO_POLLER (uring|epoll), else io_uring where the
// kernel allows it. GORO_DEBUG=1 logs the choice (and the ring flags) to
// stderr.
[[nodiscard]] const char* poller_backend() noexcept;

// IoOptions that end an operation when `ctx` is done: its deadline (the
// operation fails with kDeadlineExceeded) and its cancellation (kCancelled,
// at once, even for a read parked in the poller). As Go's net package
// honours a context.
[[nodiscard]] inline IoOptions options_from(const Context& ctx) {
  IoOptions options;
  if (auto deadline = ctx.deadline()) options.deadline = *deadline;
  options.cancel = ctx.stop_token();
  return options;
}

}  // namespace goro::io

#endif  // GORO_IO_HPP_
