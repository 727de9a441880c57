// net/address.cpp: Addr, host:port strings and name resolution
// (goro/net/address.hpp).
//
// Resolution, as Go's cgo resolver does it:
//   1. Split "host:port"; parse the port as a decimal number.
//   2. An empty host stands for the loopback address(es) of the network's
//      family (for dial; listen handles the wildcard itself).
//   3. An IP literal is returned at once: no lookup, no suspension.
//   4. Anything else is a name: getaddrinfo(3) runs on a syscall thread
//      (goro::blocking), with AI_ADDRCONFIG and the family the network
//      asks for, and its answers are kept in the resolver's order with
//      duplicates dropped (getaddrinfo lists an address once per socket
//      type unless the type is given; it is given here).
// Rejected: an asynchronous DNS client of goro's own (Go's pure-Go
// resolver). It would honour deadlines and cost no thread, but it must
// reimplement /etc/nsswitch.conf, /etc/hosts, search domains and
// resolv.conf options to agree with the system; getaddrinfo agrees by
// definition, and a syscall thread parks only the goroutine that asked.
#include "goro/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

#include "absl/status/status.h"
#include "goro/blocking.hpp"
#include "socket.hpp"

namespace goro::net {
namespace {

absl::StatusOr<std::uint16_t> parse_port(std::string_view text, std::string_view address) {
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value > 65535) {
    return absl::InvalidArgumentError("address " + std::string(address) + ": invalid port");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

Addr Addr::from_sockaddr(const sockaddr* address, socklen_t length) noexcept {
  Addr result;
  length = std::min<socklen_t>(length, sizeof result.storage_);
  std::memcpy(&result.storage_, address, length);
  result.length_ = length;
  return result;
}

absl::StatusOr<Addr> Addr::from_ip(std::string_view ip, std::uint16_t port) {
  if (ip.find(':') == std::string_view::npos) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    const std::string text(ip);
    if (::inet_pton(AF_INET, text.c_str(), &v4.sin_addr) != 1) {
      return absl::InvalidArgumentError("not an IP address: " + text);
    }
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  std::string_view bare = ip;
  if (const auto percent = ip.find('%'); percent != std::string_view::npos) {
    bare = ip.substr(0, percent);
    const std::string zone(ip.substr(percent + 1));
    unsigned index = 0;
    auto [end, error] = std::from_chars(zone.data(), zone.data() + zone.size(), index);
    if (zone.empty()) return absl::InvalidArgumentError("empty IPv6 zone: " + std::string(ip));
    if (error != std::errc() || end != zone.data() + zone.size()) {
      index = ::if_nametoindex(zone.c_str());
      if (index == 0) return absl::InvalidArgumentError("unknown IPv6 zone: " + std::string(ip));
    }
    v6.sin6_scope_id = index;
  }
  const std::string text(bare);
  if (::inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) != 1) {
    return absl::InvalidArgumentError("not an IP address: " + std::string(ip));
  }
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
}

absl::StatusOr<Addr> Addr::parse_ip_port(std::string_view address) {
  auto host_port = split_host_port(address);
  if (!host_port.ok()) return host_port.status();
  auto port = parse_port(host_port->port, address);
  if (!port.ok()) return port.status();
  if (host_port->host.empty()) {
    return absl::InvalidArgumentError("address " + std::string(address) + ": no host");
  }
  return from_ip(host_port->host, *port);
}

absl::StatusOr<Addr> Addr::unix_socket(std::string_view name) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  // An abstract name is not NUL-terminated; a path is.
  const bool abstract = !name.empty() && name.front() == '@';
  if (name.empty() || name.size() > sizeof un.sun_path - (abstract ? 0 : 1)) {
    return absl::InvalidArgumentError("invalid unix socket name: \"" + std::string(name) + "\"");
  }
  std::memcpy(un.sun_path, name.data(), name.size());
  if (abstract) un.sun_path[0] = '\0';
  const auto length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&un), length);
}

std::uint16_t Addr::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string Addr::ip() const {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                sizeof text);
    return text;
  }
  if (family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    std::string result = text;
    if (v6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE] = {};
      result += '%';
      result += ::if_indextoname(v6->sin6_scope_id, name) != nullptr
                    ? std::string(name)
                    : std::to_string(v6->sin6_scope_id);
    }
    return result;
  }
  return "";
}

std::string Addr::to_string() const {
  if (is_ip()) return join_host_port(ip(), std::to_string(port()));
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    if (length_ <= offset) return "";  // unnamed (an unbound socket's peer)
    std::string name(un->sun_path, length_ - offset);
    if (name.front() == '\0') {
      name.front() = '@';
      return name;
    }
    return std::string(name.c_str());  // up to the terminating NUL
  }
  return "";
}

bool operator==(const Addr& a, const Addr& b) noexcept {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

absl::StatusOr<HostPort> split_host_port(std::string_view address) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError("address " + std::string(address) + ": " + std::string(why));
  };
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return invalid("missing port");
  std::string_view host;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    if (close + 1 != colon) {
      return invalid(close + 1 == address.size() ? "missing port" : "unexpected text after ']'");
    }
    host = address.substr(1, close - 1);
  } else {
    host = address.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return invalid("too many colons");
    if (host.find_first_of("[]") != std::string_view::npos) return invalid("unexpected bracket");
  }
  const std::string_view port = address.substr(colon + 1);
  if (port.find_first_of("[]") != std::string_view::npos) return invalid("unexpected bracket");
  return HostPort{std::string(host), std::string(port)};
}

std::string join_host_port(std::string_view host, std::string_view port) {
  if (host.find(':') != std::string_view::npos) {
    return "[" + std::string(host) + "]:" + std::string(port);
  }
  return std::string(host) + ":" + std::string(port);
}

namespace {

// What getaddrinfo answered, or its error code.
struct LookupResult {
  int error = 0;
  int system_errno = 0;
  std::vector<Addr> addresses;
};

LookupResult lookup(const std::string& host, std::uint16_t port, int family, int type) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  LookupResult result;
  result.error = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (result.error != 0) {
    result.system_errno = errno;
    return result;
  }
  for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
    Addr address = Addr::from_sockaddr(entry->ai_addr, entry->ai_addrlen);
    auto with_port = Addr::from_ip(address.ip(), port);
    if (!with_port.ok()) continue;
    if (std::find(result.addresses.begin(), result.addresses.end(), *with_port) ==
        result.addresses.end()) {
      result.addresses.push_back(*with_port);
    }
  }
  ::freeaddrinfo(list);
  return result;
}

}  // namespace

Task<absl::StatusOr<std::vector<Addr>>> resolve(std::string network, std::string address) {
  auto parsed_network = internal::parse_network(network);
  if (!parsed_network.ok()) co_return parsed_network.status();
  if (!parsed_network->is_ip()) {
    co_return absl::InvalidArgumentError("resolve: not an IP network: " + network);
  }
  auto host_port = split_host_port(address);
  if (!host_port.ok()) co_return host_port.status();
  auto port = parse_port(host_port->port, address);
  if (!port.ok()) co_return port.status();
  const int family = parsed_network->family;

  std::vector<Addr> result;
  if (host_port->host.empty()) {
    if (family != AF_INET6) result.push_back(*Addr::from_ip("127.0.0.1", *port));
    if (family != AF_INET) result.push_back(*Addr::from_ip("::1", *port));
    co_return result;
  }
  if (auto literal = Addr::from_ip(host_port->host, *port); literal.ok()) {
    if (!internal::family_fits(*parsed_network, literal->family())) {
      co_return absl::InvalidArgumentError("address " + address + ": not an address of " + network);
    }
    result.push_back(*literal);
    co_return result;
  }

  // A named closure: g++ 12 destroys a temporary with a destructor made
  // inside a co_await expression twice (goro/io.hpp, IoOptions).
  auto call = [host = host_port->host, port = *port, family, type = parsed_network->type] {
    return lookup(host, port, family, type);
  };
  LookupResult found = co_await goro::blocking(std::move(call));
  if (found.error != 0) {
    const std::string message = "lookup " + host_port->host + ": " +
                                (found.error == EAI_SYSTEM ? std::strerror(found.system_errno)
                                                           : ::gai_strerror(found.error));
    if (found.error == EAI_NONAME || found.error == EAI_NODATA || found.error == EAI_FAMILY) {
      co_return absl::NotFoundError(message);
    }
    co_return absl::UnavailableError(message);
  }
  if (found.addresses.empty()) {
    co_return absl::NotFoundError("lookup " + host_port->host + ": no suitable address");
  }
  co_return std::move(found.addresses);
}

}  // namespace goro::net
