// net/listener.cpp: listen and accept (goro/net/listener.hpp).
//
// listen is open_bound_socket (net/socket.cpp: parse, resolve, socket,
// options, bind, listen) for SOCK_STREAM, wrapped in a Listener.
// accept is NetFd::run of goro::io::accept (so close and deadlines wake it,
// net_fd.hpp); ECONNABORTED (a connection reset while it was queued) goes
// round again; a new TCP connection gets TCP_NODELAY and keep-alive.
#include "goro/net/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "conn_access.hpp"
#include "net_fd.hpp"
#include "socket.hpp"

namespace goro::net {

using internal::NetFd;
using internal::Side;

namespace {

constexpr int kKeepAliveSeconds = 15;

struct Accept {
  sockaddr_storage* address;
  socklen_t* length;
  io::FdAwaiter operator()(int fd, const io::IoOptions& options) const {
    *length = sizeof(sockaddr_storage);
    return io::accept(fd, reinterpret_cast<sockaddr*>(address), length, options);
  }
};

}  // namespace

Listener::Listener() noexcept = default;
Listener::Listener(std::shared_ptr<NetFd> socket, Addr address, std::string unlink_path) noexcept
    : socket_(std::move(socket)), address_(address), unlink_path_(std::move(unlink_path)) {}
Listener::Listener(Listener&& other) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    (void)close();
    socket_ = std::move(other.socket_);
    address_ = other.address_;
    unlink_path_ = std::move(other.unlink_path_);
  }
  return *this;
}
Listener::~Listener() { (void)close(); }

absl::Status Listener::close() { return internal::close_bound(socket_.get(), unlink_path_); }

void Listener::set_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kRead, deadline);
}

namespace {

Task<absl::StatusOr<Conn>> accept_on(std::shared_ptr<NetFd> socket, Context ctx) {
  if (socket == nullptr) co_return closed_error("accept");
  for (;;) {
    sockaddr_storage address{};
    socklen_t length = 0;
    auto fd = co_await NetFd::run(socket, Side::kRead, "accept", ctx, Clock::time_point::max(),
                                  Accept{&address, &length});
    if (!fd.ok()) {
      if (errno_of(fd.status()) == ECONNABORTED) continue;
      co_return fd.status();
    }
    Conn conn = internal::ConnAccess::make(std::make_shared<NetFd>(*fd));
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
      // Best effort, as in Go: a connection without them still works.
      (void)internal::set_int_option(*fd, IPPROTO_TCP, TCP_NODELAY, 1, "accept");
      (void)internal::set_keepalive(*fd, kKeepAliveSeconds);
    }
    co_return conn;
  }
}

}  // namespace

GORO_CORO_WRAPPER Task<absl::StatusOr<Conn>> Listener::accept(Context ctx) {
  return accept_on(socket_, std::move(ctx));
}

Task<absl::StatusOr<Listener>> listen(std::string network, std::string address,
                                      ListenOptions options) {
  std::string context = "listen " + network + " " + address;
  auto bound = co_await internal::open_bound_socket(std::move(network), std::move(address), options,
                                                    SOCK_STREAM, std::move(context));
  if (!bound.ok()) co_return bound.status();
  co_return Listener(std::make_shared<NetFd>(bound->fd), bound->address,
                     std::move(bound->unlink_path));
}

}  // namespace goro::net
