// net/socket.hpp: the socket plumbing shared by listen, dial and the
// packet sockets: what a network name means, making a socket, setting its
// options.
#ifndef GORO_NET_SOCKET_HPP_
#define GORO_NET_SOCKET_HPP_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/net/address.hpp"
#include "goro/net/listener.hpp"
#include "goro/task.hpp"

namespace goro::net::internal {

class NetFd;

// What a network name ("tcp", "udp6", "unix", ...) asks for.
struct Network {
  int family = AF_UNSPEC;  // AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC ("tcp", "udp": either IP)
  int type = SOCK_STREAM;  // SOCK_STREAM or SOCK_DGRAM
  [[nodiscard]] bool is_ip() const noexcept { return family != AF_UNIX; }
};

// kInvalidArgument for an unknown name.
[[nodiscard]] absl::StatusOr<Network> parse_network(std::string_view name);

// Whether an IP address of `family` suits `network`.
[[nodiscard]] inline bool family_fits(const Network& network, int family) noexcept {
  return network.family == AF_UNSPEC || network.family == family;
}

// socket(2) with SOCK_CLOEXEC (and SOCK_NONBLOCK when asked): the fd, or
// the errno status with `context`.
[[nodiscard]] absl::StatusOr<int> make_socket(int family, int type, bool nonblocking,
                                              std::string_view context);

// setsockopt(2) of an int option.
[[nodiscard]] absl::Status set_int_option(int fd, int level, int option, int value,
                                          std::string_view context);

// The address getsockname(2) / getpeername(2) reports (empty on failure).
[[nodiscard]] Addr local_address(int fd) noexcept;
[[nodiscard]] Addr peer_address(int fd) noexcept;

// Keep-alive on with `idle_seconds` of idleness before the first probe and
// between probes, or off for a value <= 0.
[[nodiscard]] absl::Status set_keepalive(int fd, int idle_seconds);

// What every TCP connection that dial makes or a Listener accepts gets, as
// in Go: TCP_NODELAY, and keep-alive after 15 s of idleness. Best effort:
// a connection without them still works, so failures are ignored.
void set_connection_options(int fd, std::string_view context);

// A bound socket (listening, for SOCK_STREAM) and what its owner keeps.
struct BoundSocket {
  int fd = -1;
  Addr address;             // as getsockname reports it (the chosen port)
  std::string unlink_path;  // a Unix path socket's file, removed on close
};

// Steps 1-5 of net/socket.cpp: parse, resolve, choose the address,
// socket, options, bind, and listen for `type` SOCK_STREAM.
[[nodiscard]] Task<absl::StatusOr<BoundSocket>> open_bound_socket(std::string network,
                                                                  std::string address,
                                                                  ListenOptions options, int type,
                                                                  std::string context);

// Closes a socket that open_bound_socket made (a null `socket` is a
// moved-from or default owner: closed_error) and, once it is closed,
// removes its Unix socket file `unlink_path` (then cleared).
absl::Status close_bound(NetFd* socket, std::string& unlink_path);

}  // namespace goro::net::internal

#endif  // GORO_NET_SOCKET_HPP_
