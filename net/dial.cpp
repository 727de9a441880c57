// net/dial.cpp: dial (goro/net/dial.hpp).
//
// One attempt (connect_one), step by step:
//   1. A non-blocking socket of the address's family and the network's
//      type (stream, or datagram for "udp" and "unixgram"), owned at once
//      by a Conn (so every failure below closes it).
//   2. connect(2). Success or a final error (ECONNREFUSED, ENETUNREACH...)
//      is the answer; EINPROGRESS means the handshake is under way. A
//      datagram socket's connect only sets its peer, at once.
//   3. Wait for POLLOUT through NetFd::run (goro::io::poll: parks the
//      goroutine; the attempt's deadline and ctx end the wait with
//      kDeadlineExceeded or kCancelled).
//   4. getsockopt(SO_ERROR) gives the outcome with its errno, which goro::io
//      would keep only in the message: 0 is connected, EINPROGRESS or
//      EALREADY (a wake-up before the end of the handshake) goes back to
//      step 3, anything else is the attempt's error.
//   5. Under io_uring the socket goes back to blocking mode, so that
//      reads and writes are queued by the kernel rather than answered
//      EAGAIN and polled again; under epoll it stays non-blocking (goro::io
//      expects that once it has seen the fd).
//   6. TCP_NODELAY and keep-alive, as in Go (TCP only).
// dial resolves the address, then runs connect_one for each address with a
// share of the time left (Go's partial deadline), and returns the first
// error if none connects.
#include "goro/net/dial.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "conn_access.hpp"
#include "net_fd.hpp"
#include "socket.hpp"

namespace goro::net {

using internal::NetFd;
using internal::Side;

namespace {

constexpr std::chrono::seconds kMinimumAttemptTime{2};

struct PollWritable {
  io::EventsAwaiter operator()(int fd, const io::IoOptions& options) const {
    return io::poll(fd, POLLOUT, options);
  }
};

Task<absl::StatusOr<Conn>> connect_one(Addr address, int type, Clock::time_point deadline,
                                       Context ctx, std::string context) {
  auto fd = internal::make_socket(address.family(), type, /*nonblocking=*/true, context);
  if (!fd.ok()) co_return fd.status();
  auto socket = std::make_shared<NetFd>(*fd);
  Conn conn = internal::ConnAccess::make(socket);

  if (::connect(*fd, address.sockaddr_pointer(), address.length()) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) {
      co_return internal::errno_error(errno, context + ": connect");
    }
    for (;;) {
      auto ready =
          co_await NetFd::run(socket, Side::kWrite, "connect", ctx, deadline, PollWritable{});
      if (!ready.ok()) co_return internal::annotate(ready.status(), context);
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(*fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
      if (error == 0) break;
      if (error == EINPROGRESS || error == EALREADY || error == EINTR) continue;
      co_return internal::errno_error(error, context + ": connect");
    }
  }
  if (std::strcmp(io::poller_backend(), "io_uring") == 0) {
    const int flags = ::fcntl(*fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  if (address.is_ip() && type == SOCK_STREAM) {
    internal::set_connection_options(*fd, context);
  }
  co_return std::move(conn);
}

// The deadline of one attempt with `left` addresses still to try.
Clock::time_point attempt_deadline(Clock::time_point deadline, std::size_t left) {
  if (deadline == Clock::time_point::max() || left <= 1) return deadline;
  const Clock::time_point now = Clock::now();
  if (deadline <= now) return deadline;
  const auto share = (deadline - now) / static_cast<long>(left);
  if (share < kMinimumAttemptTime) return std::min(deadline, now + kMinimumAttemptTime);
  return now + share;
}

Task<absl::StatusOr<Conn>> dial_until(std::string network, std::string address,
                                      Clock::time_point deadline, Context ctx) {
  const std::string context = "dial " + network + " " + address;
  auto parsed = internal::parse_network(network);
  if (!parsed.ok()) co_return parsed.status();
  if (auto context_deadline = ctx.deadline(); context_deadline && *context_deadline < deadline) {
    deadline = *context_deadline;
  }
  if (!parsed->is_ip()) {
    auto unix_address = Addr::unix_socket(address);
    if (!unix_address.ok()) co_return unix_address.status();
    co_return co_await connect_one(*unix_address, parsed->type, deadline, ctx, context);
  }

  auto addresses = co_await resolve(network, address);
  if (!addresses.ok()) co_return internal::annotate(addresses.status(), "dial " + network);
  std::optional<absl::Status> first_error;
  for (std::size_t i = 0; i < addresses->size(); ++i) {
    if (ctx.cancelled()) co_return internal::annotate(ctx.err(), context);
    if (deadline != Clock::time_point::max() && deadline <= Clock::now()) {
      co_return absl::DeadlineExceededError(context + ": i/o timeout");
    }
    const Addr& candidate = (*addresses)[i];
    const std::string attempt_context = "dial " + network + " " + candidate.to_string();
    auto conn = co_await connect_one(candidate, parsed->type,
                                     attempt_deadline(deadline, addresses->size() - i), ctx,
                                     attempt_context);
    if (conn.ok()) co_return std::move(conn);
    if (!first_error) first_error = conn.status();
  }
  co_return *first_error;
}

}  // namespace

Task<absl::StatusOr<Conn>> dial(std::string network, std::string address) {
  co_return co_await dial_until(std::move(network), std::move(address), Clock::time_point::max(),
                                Context());
}

Task<absl::StatusOr<Conn>> dial(std::string network, std::string address,
                                Clock::time_point deadline) {
  co_return co_await dial_until(std::move(network), std::move(address), deadline, Context());
}

Task<absl::StatusOr<Conn>> dial(std::string network, std::string address, Context ctx) {
  co_return co_await dial_until(std::move(network), std::move(address), Clock::time_point::max(),
                                std::move(ctx));
}

}  // namespace goro::net
