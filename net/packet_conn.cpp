// net/packet_conn.cpp: listen_packet and PacketConn (goro/net/packet_conn.hpp).
//
// goro::io has no recvfrom/sendto, so each operation is the readiness loop
// that the epoll backend runs for every operation, here on the public API:
//   1. Check the side's deadline and the Context (NetFd::check_deadline),
//      so that a passed deadline fails the operation even when a datagram
//      is waiting, as for Conn.
//   2. Try the system call with MSG_DONTWAIT under NetFd::with_fd (the fd
//      stays open meanwhile). A result or a real error is the answer.
//   3. On EAGAIN, wait for POLLIN/POLLOUT through NetFd::run(goro::io::poll)
//      (deadline changes and close wake it, net_fd.hpp), then go to step 1.
// Under io_uring this costs a poll and a system call per datagram that has
// to wait; one that is already there costs the system call alone.
#include "goro/net/packet_conn.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "net_fd.hpp"
#include "socket.hpp"

namespace goro::net {

using internal::NetFd;
using internal::Side;

namespace {

struct PollFor {
  short events;
  io::EventsAwaiter operator()(int fd, const io::IoOptions& options) const {
    return io::poll(fd, events, options);
  }
};

// Steps 1-3 above. `attempt(fd)` returns the result, std::nullopt when the
// call would block, or an error status.
template <class Value, class Attempt>
Task<absl::StatusOr<Value>> when_ready(std::shared_ptr<NetFd> socket, Side side,
                                       const char* operation, Context ctx, Attempt attempt) {
  for (;;) {
    if (absl::Status late = socket->check_deadline(side, ctx, operation); !late.ok()) {
      co_return late;
    }
    absl::StatusOr<std::optional<Value>> tried = socket->with_fd(operation, attempt);
    if (!tried.ok()) co_return tried.status();
    if (tried->has_value()) co_return std::move(**tried);
    auto ready = co_await NetFd::run(socket, side, operation, ctx, Clock::time_point::max(),
                                     PollFor{side == Side::kRead ? short{POLLIN} : short{POLLOUT}});
    if (!ready.ok()) co_return ready.status();
  }
}

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

Task<absl::StatusOr<Datagram>> recv_from_on(std::shared_ptr<NetFd> socket, void* buffer,
                                            std::size_t length, Context ctx) {
  if (socket == nullptr) co_return closed_error("recv_from");
  co_return co_await when_ready<Datagram>(
      std::move(socket), Side::kRead, "recv_from", std::move(ctx),
      [buffer, length](int fd) -> absl::StatusOr<std::optional<Datagram>> {
        sockaddr_storage from{};
        iovec part{buffer, length};
        msghdr message{};
        message.msg_name = &from;
        message.msg_namelen = sizeof from;
        message.msg_iov = &part;
        message.msg_iovlen = 1;
        const ssize_t n = ::recvmsg(fd, &message, MSG_DONTWAIT);
        if (n < 0) {
          if (would_block(errno)) return std::optional<Datagram>();
          return internal::errno_error(errno, "recv_from: recvmsg");
        }
        Datagram datagram;
        datagram.size = static_cast<std::size_t>(n);
        datagram.from =
            Addr::from_sockaddr(reinterpret_cast<const sockaddr*>(&from), message.msg_namelen);
        datagram.truncated = (message.msg_flags & MSG_TRUNC) != 0;
        return std::optional<Datagram>(std::move(datagram));
      });
}

Task<absl::Status> send_to_on(std::shared_ptr<NetFd> socket, const void* data, std::size_t length,
                              Addr to, Context ctx) {
  if (socket == nullptr) co_return closed_error("send_to");
  auto sent = co_await when_ready<std::size_t>(
      std::move(socket), Side::kWrite, "send_to", std::move(ctx),
      [data, length, &to](int fd) -> absl::StatusOr<std::optional<std::size_t>> {
        const ssize_t n = ::sendto(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL,
                                   to.sockaddr_pointer(), to.length());
        if (n < 0) {
          if (would_block(errno)) return std::optional<std::size_t>();
          return internal::errno_error(errno, "send_to: sendto " + to.to_string());
        }
        return std::optional<std::size_t>(static_cast<std::size_t>(n));
      });
  co_return sent.status();
}

}  // namespace

PacketConn::PacketConn() noexcept = default;
PacketConn::PacketConn(std::shared_ptr<NetFd> socket, Addr address,
                       std::string unlink_path) noexcept
    : socket_(std::move(socket)), address_(address), unlink_path_(std::move(unlink_path)) {}
PacketConn::PacketConn(PacketConn&& other) noexcept = default;
PacketConn& PacketConn::operator=(PacketConn&& other) noexcept {
  if (this != &other) {
    (void)close();
    socket_ = std::move(other.socket_);
    address_ = other.address_;
    unlink_path_ = std::move(other.unlink_path_);
  }
  return *this;
}
PacketConn::~PacketConn() { (void)close(); }

GORO_CORO_WRAPPER Task<absl::StatusOr<Datagram>> PacketConn::recv_from(void* buffer,
                                                                       std::size_t length,
                                                                       Context ctx) {
  return recv_from_on(socket_, buffer, length, std::move(ctx));
}

GORO_CORO_WRAPPER Task<absl::Status> PacketConn::send_to(const void* data, std::size_t length,
                                                         const Addr& to, Context ctx) {
  return send_to_on(socket_, data, length, to, std::move(ctx));
}

absl::Status PacketConn::close() { return internal::close_bound(socket_.get(), unlink_path_); }

void PacketConn::set_deadline(Clock::time_point deadline) {
  set_read_deadline(deadline);
  set_write_deadline(deadline);
}
void PacketConn::set_read_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kRead, deadline);
}
void PacketConn::set_write_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kWrite, deadline);
}

Task<absl::StatusOr<PacketConn>> listen_packet(std::string network, std::string address,
                                               ListenOptions options) {
  std::string context = "listen " + network + " " + address;
  auto bound = co_await internal::open_bound_socket(std::move(network), std::move(address), options,
                                                    SOCK_DGRAM, std::move(context));
  if (!bound.ok()) co_return bound.status();
  co_return PacketConn(std::make_shared<NetFd>(bound->fd), bound->address,
                       std::move(bound->unlink_path));
}

}  // namespace goro::net
