// goro/net/address.hpp
//
// Defines: goro::net::Addr (a socket address: IPv4, IPv6 with its zone, or
// a Unix socket path or abstract name), net::split_host_port and
// net::join_host_port (Go's "host:port" grammar), and net::resolve (names
// to addresses, Go's cgo resolver: getaddrinfo on a syscall thread).
//
// Address strings are Go's:
//   "127.0.0.1:80"  "[::1]:80"  "[fe80::1%eth0]:80"  "example.com:80"
//   ":80" (no host: every local address to listen on, loopback to dial)
//   "host:0" (port 0: the kernel picks one when listening)
// The port is a decimal number from 0 to 65535 (service names such as
// "http" are not looked up). Unix sockets are named by their path;
// a name starting with '@' is in Linux's abstract namespace ("@goro" is
// the name "\0goro"), which has no file and so nothing to remove.
//
//   auto addresses = co_await goro::net::resolve("tcp", "localhost:8080");
//   if (!addresses.ok()) ...;                 // kNotFound for an unknown name
//   for (const net::Addr& a : *addresses) std::puts(a.to_string().c_str());
#ifndef GORO_NET_ADDRESS_HPP_
#define GORO_NET_ADDRESS_HPP_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "goro/task.hpp"

namespace goro::net {

// A socket address, held by value (a sockaddr_storage and its length).
// Default-constructed it is empty (family AF_UNSPEC), as the address of a
// socket that has none. Copyable, comparable (same family, bytes and
// length).
class Addr {
 public:
  Addr() noexcept = default;

  // The address the kernel wrote: `length` bytes of `address` (truncated to
  // a sockaddr_storage).
  [[nodiscard]] static Addr from_sockaddr(const sockaddr* address, socklen_t length) noexcept;

  // A literal IP address and port, "1.2.3.4:80" or "[::1]:80" (with an
  // optional "%zone" inside the brackets). No name lookup: a host name is
  // kInvalidArgument; so is an empty host (use the wildcard you mean).
  [[nodiscard]] static absl::StatusOr<Addr> parse_ip_port(std::string_view address);

  // An IP literal ("1.2.3.4", "::1", "fe80::1%eth0") and a port.
  [[nodiscard]] static absl::StatusOr<Addr> from_ip(std::string_view ip, std::uint16_t port);

  // A Unix socket address: a path, or "@name" for an abstract name.
  // kInvalidArgument when empty or longer than sun_path allows.
  [[nodiscard]] static absl::StatusOr<Addr> unix_socket(std::string_view name);

  // AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  [[nodiscard]] bool empty() const noexcept { return length_ == 0; }
  [[nodiscard]] bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  // The port (IP addresses), 0 otherwise.
  [[nodiscard]] std::uint16_t port() const noexcept;
  // The IP address alone, "127.0.0.1" or "::1" (with "%zone" when it has
  // one); empty for other families.
  [[nodiscard]] std::string ip() const;
  // Go's String(): "127.0.0.1:80", "[::1]:80", the Unix path, "@name" for
  // an abstract name, "" when empty.
  [[nodiscard]] std::string to_string() const;

  // For system calls.
  [[nodiscard]] const sockaddr* sockaddr_pointer() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] socklen_t length() const noexcept { return length_; }

  friend bool operator==(const Addr& a, const Addr& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// Go's net.SplitHostPort: "host:port", "[host]:port" (the form an IPv6
// literal needs) or ":port" into host (without brackets) and port text.
// kInvalidArgument for a missing port, a stray bracket, or too many
// colons outside brackets.
struct HostPort {
  std::string host;
  std::string port;
};
[[nodiscard]] absl::StatusOr<HostPort> split_host_port(std::string_view address);

// Go's net.JoinHostPort: "host:port", bracketing a host that holds a colon.
[[nodiscard]] std::string join_host_port(std::string_view host, std::string_view port);

// The addresses `address` ("host:port") stands for on `network` ("tcp",
// "tcp4", "tcp6", "udp", "udp4", "udp6"), in the resolver's order. A
// literal IP is returned as it is, without a lookup and without
// suspending; an empty host gives the loopback address(es); a name goes to
// getaddrinfo(3) on a syscall thread (goro::blocking), so a slow DNS
// server parks only this goroutine. "tcp4"/"tcp6" keep only that family.
// Errors: kInvalidArgument (bad address, unknown network, a literal of the
// wrong family), kNotFound (no such host), kUnavailable (resolver failure
// worth a retry). getaddrinfo cannot be interrupted: a lookup runs to its
// end (the resolver's own timeouts bound it), whatever deadline the caller
// has.
[[nodiscard("co_await it: the lookup happens then")]] Task<absl::StatusOr<std::vector<Addr>>>
resolve(std::string network, std::string address);

}  // namespace goro::net

#endif  // GORO_NET_ADDRESS_HPP_
