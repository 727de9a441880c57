// net/conn.cpp: Conn's operations, each a NetFd::run of one goro::io
// operation (net_fd.hpp has the mechanism); reads are goro::io::recv, or go
// through the socket's goro::io::ReceiveStream where the runtime receives
// with multishot requests (goro/io_multishot.hpp); writev is sendmsg(2) with
// MSG_DONTWAIT, waiting for POLLOUT through goro::io::poll when the socket
// buffer is full (goro::io has no vectored send).
#include "goro/net/conn.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "conn_access.hpp"
#include "net_fd.hpp"
#include "socket.hpp"

namespace goro::net {

using internal::NetFd;
using internal::Side;

namespace {

constexpr Clock::time_point kNever = Clock::time_point::max();

// One read into the caller's buffer: from the socket's receive stream
// where the runtime receives with multishot requests, else a plain recv
// (which is what the stream's read would be, without the stream's
// allocation).
struct Receive {
  NetFd* socket;
  void* buffer;
  std::size_t length;
  io::SizeAwaiter operator()(int fd, const io::IoOptions& options) const {
    if (io::ReceiveStream* stream = socket->receive_stream()) {
      return stream->read(buffer, length, options);
    }
    return io::recv(fd, buffer, length, 0, options);
  }
};

struct SendSome {
  const void* data;
  std::size_t length;
  io::SizeAwaiter operator()(int fd, const io::IoOptions& options) const {
    return io::send_some(fd, data, length, 0, options);
  }
};

struct PollFor {
  short events;
  io::EventsAwaiter operator()(int fd, const io::IoOptions& options) const {
    return io::poll(fd, events, options);
  }
};

Task<absl::Status> write_on(std::shared_ptr<NetFd> socket, const void* data, std::size_t length,
                            Context ctx) {
  if (socket == nullptr) co_return closed_error("write");
  const auto* next = static_cast<const std::byte*>(data);
  std::size_t left = length;
  // A zero-length write still checks the socket and the deadline, once.
  do {
    auto sent =
        co_await NetFd::run(socket, Side::kWrite, "write", ctx, kNever, SendSome{next, left});
    if (!sent.ok()) co_return sent.status();
    next += *sent;
    left -= *sent;
  } while (left > 0);
  co_return absl::OkStatus();
}

Task<absl::Status> read_full_on(std::shared_ptr<NetFd> socket, void* buffer, std::size_t length,
                                Context ctx) {
  if (socket == nullptr) co_return closed_error("read");
  auto* next = static_cast<std::byte*>(buffer);
  std::size_t done = 0;
  while (done < length) {
    auto n = co_await NetFd::run(socket, Side::kRead, "read", ctx, kNever,
                                 Receive{socket.get(), next + done, length - done});
    if (!n.ok()) co_return n.status();
    if (*n == 0) {
      co_return absl::OutOfRangeError(done == 0 ? "read: EOF" : "read: unexpected EOF");
    }
    done += *n;
  }
  co_return absl::OkStatus();
}

Task<absl::Status> writev_on(std::shared_ptr<NetFd> socket, absl::InlinedVector<iovec, 8> buffers,
                             Context ctx) {
  if (socket == nullptr) co_return closed_error("write");
  std::size_t first = 0;  // the first buffer with bytes left
  auto skip_empty = [&] {
    while (first < buffers.size() && buffers[first].iov_len == 0) ++first;
  };
  skip_empty();
  while (first < buffers.size()) {
    if (absl::Status late = socket->check_deadline(Side::kWrite, ctx, "write"); !late.ok()) {
      co_return late;
    }
    auto sent = socket->with_fd("write", [&](int fd) -> absl::StatusOr<std::size_t> {
      msghdr message{};
      message.msg_iov = buffers.data() + first;
      message.msg_iovlen = std::min<std::size_t>(buffers.size() - first, IOV_MAX);
      const ssize_t n = ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return std::size_t{0};
      return internal::errno_error(errno, "write: sendmsg");
    });
    if (!sent.ok()) co_return sent.status();
    std::size_t advance = *sent;
    if (advance == 0) {
      auto ready =
          co_await NetFd::run(socket, Side::kWrite, "write", ctx, kNever, PollFor{POLLOUT});
      if (!ready.ok()) co_return ready.status();
      continue;  // POLLERR/POLLHUP: the next sendmsg reports the error
    }
    while (advance > 0) {
      iovec& buffer = buffers[first];
      const std::size_t taken = std::min(advance, buffer.iov_len);
      buffer.iov_base = static_cast<std::byte*>(buffer.iov_base) + taken;
      buffer.iov_len -= taken;
      advance -= taken;
      if (buffer.iov_len == 0) ++first;
    }
    skip_empty();
  }
  co_return absl::OkStatus();
}

}  // namespace

Conn::Conn() noexcept = default;
Conn::Conn(std::shared_ptr<internal::NetFd> socket) noexcept : socket_(std::move(socket)) {}
Conn::Conn(Conn&& other) noexcept = default;
Conn& Conn::operator=(Conn&& other) noexcept {
  if (this != &other) {
    if (socket_ != nullptr) (void)socket_->close();
    socket_ = std::move(other.socket_);
  }
  return *this;
}
Conn::~Conn() {
  if (socket_ != nullptr) (void)socket_->close();
}

Conn Conn::from_fd(int fd) { return Conn(std::make_shared<NetFd>(fd)); }

GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>> Conn::read(void* buffer, std::size_t length) {
  return NetFd::run(socket_, Side::kRead, "read", Context(), kNever,
                    Receive{socket_.get(), buffer, length});
}
GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>> Conn::read(void* buffer, std::size_t length,
                                                               Context ctx) {
  return NetFd::run(socket_, Side::kRead, "read", std::move(ctx), kNever,
                    Receive{socket_.get(), buffer, length});
}
GORO_CORO_WRAPPER Task<absl::Status> Conn::read_full(void* buffer, std::size_t length,
                                                     Context ctx) {
  return read_full_on(socket_, buffer, length, std::move(ctx));
}
GORO_CORO_WRAPPER Task<absl::Status> Conn::write(const void* data, std::size_t length) {
  return write_on(socket_, data, length, Context());
}
GORO_CORO_WRAPPER Task<absl::Status> Conn::write(const void* data, std::size_t length,
                                                 Context ctx) {
  return write_on(socket_, data, length, std::move(ctx));
}
GORO_CORO_WRAPPER Task<absl::Status> Conn::writev(std::span<const iovec> buffers, Context ctx) {
  return writev_on(socket_, absl::InlinedVector<iovec, 8>(buffers.begin(), buffers.end()),
                   std::move(ctx));
}

absl::StatusOr<std::size_t> Conn::try_write(const void* data, std::size_t length) {
  if (socket_ == nullptr) return closed_error("write");
  return socket_->try_send(data, length);
}

namespace {

absl::Status shutdown_side(NetFd* socket, int how, const char* operation) {
  if (socket == nullptr) return closed_error(operation);
  return socket->with_fd(operation, [&](int fd) {
    if (::shutdown(fd, how) != 0) return internal::errno_error(errno, operation);
    return absl::OkStatus();
  });
}

}  // namespace

absl::Status Conn::close_read() { return shutdown_side(socket_.get(), SHUT_RD, "close_read"); }
absl::Status Conn::close_write() { return shutdown_side(socket_.get(), SHUT_WR, "close_write"); }

absl::Status Conn::close() {
  if (socket_ == nullptr) return closed_error("close");
  return socket_->close();
}

void Conn::set_deadline(Clock::time_point deadline) {
  set_read_deadline(deadline);
  set_write_deadline(deadline);
}
void Conn::set_read_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kRead, deadline);
}
void Conn::set_write_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kWrite, deadline);
}

absl::Status Conn::set_nodelay(bool on) {
  if (socket_ == nullptr) return closed_error("set_nodelay");
  return socket_->with_fd("set_nodelay", [&](int fd) {
    return internal::set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "set_nodelay");
  });
}

absl::Status Conn::set_keepalive(std::chrono::seconds idle) {
  if (socket_ == nullptr) return closed_error("set_keepalive");
  return socket_->with_fd("set_keepalive", [&](int fd) {
    return internal::set_keepalive(fd, static_cast<int>(std::clamp<std::int64_t>(
                                           idle.count(), 0, std::numeric_limits<int>::max())));
  });
}

Addr Conn::local_addr() const {
  if (socket_ == nullptr) return Addr();
  auto address = socket_->with_fd(
      "local_addr", [](int fd) -> absl::StatusOr<Addr> { return internal::local_address(fd); });
  return address.ok() ? *address : Addr();
}

Addr Conn::remote_addr() const {
  if (socket_ == nullptr) return Addr();
  auto address = socket_->with_fd(
      "remote_addr", [](int fd) -> absl::StatusOr<Addr> { return internal::peer_address(fd); });
  return address.ok() ? *address : Addr();
}

bool Conn::is_open() const { return socket_ != nullptr && !socket_->closed(); }

namespace internal {

Conn ConnAccess::make(std::shared_ptr<NetFd> socket) noexcept { return Conn(std::move(socket)); }

}  // namespace internal
}  // namespace goro::net
