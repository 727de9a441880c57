// net/listener.cpp: listen and accept (goro/net/listener.hpp).
//
// listen is open_bound_socket (net/socket.cpp: parse, resolve, socket,
// options, bind, listen) for SOCK_STREAM, wrapped in a Listener.
// accept is NetFd::run of the listener's goro::io::AcceptStream (a
// multishot accept under io_uring, goro/io_multishot.hpp; close and
// deadlines wake it, net_fd.hpp); ECONNABORTED (a connection reset while
// it was queued) goes round again; a new TCP connection gets TCP_NODELAY
// and keep-alive. close stops the stream after closing the socket
// (stop_multishot_accept), which cancels the kernel's request and closes
// the connections accepted for nobody.
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

// One accept from the listener's stream (which knows the fd).
struct AcceptFrom {
  io::AcceptStream* accepts;
  io::FdAwaiter operator()(int, const io::IoOptions& options) const {
    return accepts->accept(options);
  }
};

// Cancels the listener's multishot accept and closes the connections it
// accepted for nobody (after the socket's close woke the parked accepts).
void stop_multishot_accept(io::AcceptStream* accepts) {
  if (accepts != nullptr) accepts->stop();
}

}  // namespace

Listener::Listener() noexcept = default;
Listener::Listener(std::shared_ptr<NetFd> socket, std::shared_ptr<io::AcceptStream> accepts,
                   Addr address, std::string unlink_path) noexcept
    : socket_(std::move(socket)),
      accepts_(std::move(accepts)),
      address_(address),
      unlink_path_(std::move(unlink_path)) {}
Listener::Listener(Listener&& other) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    (void)close();
    socket_ = std::move(other.socket_);
    accepts_ = std::move(other.accepts_);
    address_ = other.address_;
    unlink_path_ = std::move(other.unlink_path_);
  }
  return *this;
}
Listener::~Listener() { (void)close(); }

absl::Status Listener::close() {
  absl::Status status = internal::close_bound(socket_.get(), unlink_path_);
  if (status.ok()) stop_multishot_accept(accepts_.get());
  return status;
}

void Listener::set_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kRead, deadline);
}

namespace {

Task<absl::StatusOr<Conn>> accept_on(std::shared_ptr<NetFd> socket,
                                     std::shared_ptr<io::AcceptStream> accepts, bool is_ip,
                                     Context ctx) {
  if (socket == nullptr) co_return closed_error("accept");
  for (;;) {
    auto fd = co_await NetFd::run(socket, Side::kRead, "accept", ctx, Clock::time_point::max(),
                                  AcceptFrom{accepts.get()});
    if (!fd.ok()) {
      if (errno_of(fd.status()) == ECONNABORTED) continue;
      co_return fd.status();
    }
    Conn conn = internal::ConnAccess::make(std::make_shared<NetFd>(*fd));
    if (is_ip) {
      // Best effort, as in Go: a connection without them still works.
      (void)internal::set_int_option(*fd, IPPROTO_TCP, TCP_NODELAY, 1, "accept");
      (void)internal::set_keepalive(*fd, kKeepAliveSeconds);
    }
    co_return conn;
  }
}

}  // namespace

GORO_CORO_WRAPPER Task<absl::StatusOr<Conn>> Listener::accept(Context ctx) {
  return accept_on(socket_, accepts_, address_.is_ip(), std::move(ctx));
}

Task<absl::StatusOr<Listener>> listen(std::string network, std::string address,
                                      ListenOptions options) {
  std::string context = "listen " + network + " " + address;
  auto bound = co_await internal::open_bound_socket(std::move(network), std::move(address), options,
                                                    SOCK_STREAM, std::move(context));
  if (!bound.ok()) co_return bound.status();
  co_return Listener(std::make_shared<NetFd>(bound->fd),
                     std::make_shared<io::AcceptStream>(bound->fd), bound->address,
                     std::move(bound->unlink_path));
}

}  // namespace goro::net
