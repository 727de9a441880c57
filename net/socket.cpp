// net/socket.cpp: network names, socket creation and options (socket.hpp).
#include "socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "error_internal.hpp"

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

}  // namespace goro::net::internal
