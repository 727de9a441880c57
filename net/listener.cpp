// net/listener.cpp: listen and accept (goro/net/listener.hpp).
//
// listen, step by step:
//   1. Parse the network; for a Unix socket build the address (step 5).
//   2. TCP: an empty host or "::" on "tcp" is the wildcard of a dual-stack
//      AF_INET6 socket with IPV6_V6ONLY off (or "0.0.0.0" when the kernel
//      refuses AF_INET6); "tcp4" takes 0.0.0.0, "tcp6" takes "::" with
//      IPV6_V6ONLY on. Another host is resolved (net::resolve), and the
//      first address of the network's family, IPv4 first for "tcp", is
//      used, as Go does.
//   3. socket, SO_REUSEADDR (and SO_REUSEPORT when asked), bind, listen.
//   4. getsockname gives addr(), with the port the kernel chose.
//   5. Unix: bind; on EADDRINUSE with remove_stale, a blocking connect to
//      the path tells whether anyone listens there (answered at once by
//      the local kernel); refused means stale, so unlink and bind again.
//      The path is removed again by close.
// Steps 1-5 (open_bound_socket) serve listen_packet too, without listen(2).
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
#include <unistd.h>

#include <cerrno>
#include <optional>
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

// A socket bound to `address` (and listening, for a stream socket); the
// fd, or why not.
absl::StatusOr<int> bind_and_listen(const Addr& address, int type, const ListenOptions& options,
                                    std::optional<bool> v6_only, const std::string& context) {
  auto fd = internal::make_socket(address.family(), type, /*nonblocking=*/false, context);
  if (!fd.ok()) return fd.status();
  auto fail = [&](absl::Status status) {
    ::close(*fd);
    return status;
  };
  if (address.is_ip()) {
    if (auto s = internal::set_int_option(*fd, SOL_SOCKET, SO_REUSEADDR, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (options.reuse_port) {
    if (auto s = internal::set_int_option(*fd, SOL_SOCKET, SO_REUSEPORT, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (v6_only) {
    if (auto s =
            internal::set_int_option(*fd, IPPROTO_IPV6, IPV6_V6ONLY, *v6_only ? 1 : 0, context);
        !s.ok()) {
      return fail(s);
    }
  }
  if (::bind(*fd, address.sockaddr_pointer(), address.length()) != 0) {
    return fail(internal::errno_error(errno, context + ": bind"));
  }
  if (type == SOCK_STREAM && ::listen(*fd, options.backlog) != 0) {
    return fail(internal::errno_error(errno, context + ": listen"));
  }
  return *fd;
}

// Whether a Unix socket file at `address` has nobody accepting on it.
bool unix_socket_is_stale(const Addr& address, int type) {
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool refused =
      ::connect(probe, address.sockaddr_pointer(), address.length()) != 0 && errno == ECONNREFUSED;
  ::close(probe);
  return refused;
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
  if (socket_ == nullptr) return closed_error("close");
  absl::Status status = socket_->close();
  if (status.ok()) stop_multishot_accept(accepts_.get());
  if (status.ok() && !unlink_path_.empty()) {
    ::unlink(unlink_path_.c_str());
    unlink_path_.clear();
  }
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

namespace internal {

Task<absl::StatusOr<BoundSocket>> open_bound_socket(std::string network, std::string address,
                                                    ListenOptions options, int type,
                                                    std::string context) {
  auto parsed = parse_network(network);
  if (!parsed.ok()) co_return parsed.status();
  if (parsed->type != type) {
    co_return absl::InvalidArgumentError(
        context + (type == SOCK_STREAM ? ": not a stream network" : ": not a datagram network"));
  }

  if (!parsed->is_ip()) {
    auto unix_address = Addr::unix_socket(address);
    if (!unix_address.ok()) co_return unix_address.status();
    const bool abstract = address.front() == '@';
    auto fd = bind_and_listen(*unix_address, type, options, std::nullopt, context);
    if (!fd.ok() && !abstract && options.remove_stale && errno_of(fd.status()) == EADDRINUSE &&
        unix_socket_is_stale(*unix_address, type)) {
      ::unlink(address.c_str());
      fd = bind_and_listen(*unix_address, type, options, std::nullopt, context);
    }
    if (!fd.ok()) co_return fd.status();
    co_return BoundSocket{*fd, *unix_address, abstract ? std::string() : address};
  }

  auto host_port = split_host_port(address);
  if (!host_port.ok()) co_return host_port.status();
  const std::string& host = host_port->host;
  Addr chosen;
  std::optional<bool> v6_only;
  if (host.empty() || host == "::" || host == "0.0.0.0") {
    auto wildcard_v4 = Addr::parse_ip_port(join_host_port("0.0.0.0", host_port->port));
    auto wildcard_v6 = Addr::parse_ip_port(join_host_port("::", host_port->port));
    if (!wildcard_v4.ok()) co_return wildcard_v4.status();
    if (parsed->family == AF_INET || host == "0.0.0.0") {
      if (parsed->family == AF_INET6) {
        co_return absl::InvalidArgumentError(context + ": not an IPv6 address");
      }
      chosen = *wildcard_v4;
    } else {
      chosen = *wildcard_v6;
      v6_only = parsed->family == AF_INET6;
    }
  } else {
    auto addresses = co_await resolve(network, address);
    if (!addresses.ok()) co_return annotate(addresses.status(), context);
    chosen = addresses->front();
    if (parsed->family == AF_UNSPEC) {
      for (const Addr& candidate : *addresses) {
        if (candidate.family() == AF_INET) {
          chosen = candidate;
          break;
        }
      }
    }
    if (chosen.family() == AF_INET6) v6_only = true;  // a specific address: that family
  }

  auto fd = bind_and_listen(chosen, type, options, v6_only, context);
  if (!fd.ok() && chosen.family() == AF_INET6 && !v6_only.value_or(true) &&
      errno_of(fd.status()) == EAFNOSUPPORT) {
    // No IPv6 in this kernel: ":port" on "tcp" or "udp" means IPv4.
    chosen = *Addr::parse_ip_port(join_host_port("0.0.0.0", host_port->port));
    fd = bind_and_listen(chosen, type, options, std::nullopt, context);
  }
  if (!fd.ok()) co_return fd.status();
  co_return BoundSocket{*fd, local_address(*fd), std::string()};
}

}  // namespace internal

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
