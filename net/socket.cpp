// net/socket.cpp: network names, socket creation and options, and the
// bound socket under listen and listen_packet (socket.hpp).
//
// open_bound_socket, step by step:
//   1. Parse the network; for a Unix socket build the address (step 5).
//   2. IP: an empty host or "::" on "tcp"/"udp" is the wildcard of a
//      dual-stack AF_INET6 socket with IPV6_V6ONLY off (or "0.0.0.0" when
//      the kernel refuses AF_INET6); "tcp4" takes 0.0.0.0, "tcp6" takes
//      "::" with IPV6_V6ONLY on. Another host is resolved (net::resolve),
//      and the first address of the network's family, IPv4 first for
//      "tcp", is used, as Go does.
//   3. socket, SO_REUSEADDR (and SO_REUSEPORT when asked), bind, and
//      listen for a stream socket.
//   4. getsockname gives the address, with the port the kernel chose.
//   5. Unix: bind; on EADDRINUSE with remove_stale, a blocking connect to
//      the path tells whether anyone listens there (answered at once by
//      the local kernel); refused means stale, so unlink and bind again.
//      The owner removes the path again when it closes.
#include "socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>

#include "error_internal.hpp"
#include "goro/net/error.hpp"
#include "net_fd.hpp"

namespace goro::net::internal {

absl::StatusOr<Network> parse_network(std::string_view name) {
  if (name == "tcp") return Network{AF_UNSPEC, SOCK_STREAM};
  if (name == "tcp4") return Network{AF_INET, SOCK_STREAM};
  if (name == "tcp6") return Network{AF_INET6, SOCK_STREAM};
  if (name == "udp") return Network{AF_UNSPEC, SOCK_DGRAM};
  if (name == "udp4") return Network{AF_INET, SOCK_DGRAM};
  if (name == "udp6") return Network{AF_INET6, SOCK_DGRAM};
  if (name == "unix") return Network{AF_UNIX, SOCK_STREAM};
  if (name == "unixgram") return Network{AF_UNIX, SOCK_DGRAM};
  return absl::InvalidArgumentError("unknown network " + std::string(name));
}

absl::StatusOr<int> make_socket(int family, int type, bool nonblocking, std::string_view context) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return errno_error(errno, std::string(context) + ": socket");
  return fd;
}

absl::Status set_int_option(int fd, int level, int option, int value, std::string_view context) {
  if (::setsockopt(fd, level, option, &value, sizeof value) != 0) {
    return errno_error(errno, std::string(context) + ": setsockopt");
  }
  return absl::OkStatus();
}

Addr local_address(int fd) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return Addr();
  return Addr::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length);
}

Addr peer_address(int fd) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return Addr();
  return Addr::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), length);
}

absl::Status set_keepalive(int fd, int idle_seconds) {
  if (idle_seconds <= 0) return set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 0, "keepalive");
  if (auto s = set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "keepalive"); !s.ok()) return s;
  if (auto s = set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_seconds, "keepalive"); !s.ok()) {
    return s;
  }
  return set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, idle_seconds, "keepalive");
}

void set_connection_options(int fd, std::string_view context) {
  constexpr int kKeepAliveSeconds = 15;
  (void)set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1, context);
  (void)set_keepalive(fd, kKeepAliveSeconds);
}

namespace {

// A socket bound to `address` (and listening, for a stream socket); the
// fd, or why not.
absl::StatusOr<int> bind_and_listen(const Addr& address, int type, const ListenOptions& options,
                                    std::optional<bool> v6_only, const std::string& context) {
  auto fd = make_socket(address.family(), type, /*nonblocking=*/false, context);
  if (!fd.ok()) return fd.status();
  auto fail = [&](absl::Status status) {
    ::close(*fd);
    return status;
  };
  if (address.is_ip()) {
    if (auto s = set_int_option(*fd, SOL_SOCKET, SO_REUSEADDR, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (options.reuse_port) {
    if (auto s = set_int_option(*fd, SOL_SOCKET, SO_REUSEPORT, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (v6_only) {
    if (auto s = set_int_option(*fd, IPPROTO_IPV6, IPV6_V6ONLY, *v6_only ? 1 : 0, context);
        !s.ok()) {
      return fail(s);
    }
  }
  if (::bind(*fd, address.sockaddr_pointer(), address.length()) != 0) {
    return fail(errno_error(errno, context + ": bind"));
  }
  if (type == SOCK_STREAM && ::listen(*fd, options.backlog) != 0) {
    return fail(errno_error(errno, context + ": listen"));
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

absl::Status close_bound(NetFd* socket, std::string& unlink_path) {
  if (socket == nullptr) return closed_error("close");
  absl::Status status = socket->close();
  if (status.ok() && !unlink_path.empty()) {
    ::unlink(unlink_path.c_str());
    unlink_path.clear();
  }
  return status;
}

}  // namespace goro::net::internal
