// goro/net/dial.hpp
//
// Defines: goro::net::dial, Go's net.Dial / DialContext / DialTimeout:
// stream sockets ("tcp", "tcp4", "tcp6", "unix") and connected datagram
// sockets ("udp", "udp4", "udp6", "unixgram").
//
//   auto conn = co_await goro::net::dial("tcp", "example.com:80",
//                                        goro::Clock::now() + 5s);
//   if (net::is_refused(conn.status())) ...   // nobody listens there
//
// Contract:
//   * The address is resolved as net::resolve does (a literal at once, a
//     name through getaddrinfo on a syscall thread), and each address is
//     tried in turn until one connects (no Happy Eyeballs racing). While
//     more than one address is left, an attempt gets an equal share of
//     the time left until the deadline, but at least 2 s (Go's rule), so a
//     dead first address does not eat the whole budget.
//   * The connect is non-blocking and waits on the netpoller: it parks the
//     goroutine, never the worker thread.
//   * Errors name the operation and address ("dial tcp 127.0.0.1:1:
//     connect: Connection refused") and keep the errno: is_refused
//     (ECONNREFUSED), is_unreachable (ENETUNREACH, EHOSTUNREACH) and
//     is_timeout (the deadline passed: kDeadlineExceeded; or the kernel
//     gave up: ETIMEDOUT) tell the three apart. With several addresses the
//     first address's error is returned, as in Go.
//   * The Conn has TCP_NODELAY and 15 s keep-alive on (TCP).
//   * A datagram network gives a Conn connected to the one peer, as Go's
//     Dial("udp") does: connect(2) sends nothing, so it succeeds for any
//     address the kernel can route to (the first address of a name).
//     write sends the bytes as one datagram (all or an error: EMSGSIZE
//     when too large); read receives one datagram, cut to the buffer (the
//     rest is dropped), and only from that peer; a read of 0 is an empty
//     datagram, not an end of stream. When nothing listens at the peer's
//     port, the kernel's ICMP answer fails a later read or write with
//     ECONNREFUSED (is_refused). A "unixgram" Conn has no address of its
//     own, so its peer cannot answer it (as in Go without a local
//     address).
//   * A name lookup is not interrupted by the deadline or ctx (getaddrinfo
//     cannot be); they are checked when it returns.
#ifndef GORO_NET_DIAL_HPP_
#define GORO_NET_DIAL_HPP_

#include <string>

#include "absl/status/statusor.h"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/net/conn.hpp"
#include "goro/task.hpp"

namespace goro::net {

// Dials with no deadline (the kernel's own connect timeout, minutes for an
// unanswered TCP SYN, still applies and is reported as ETIMEDOUT).
[[nodiscard("co_await it: the dial happens then")]] Task<absl::StatusOr<Conn>> dial(
    std::string network, std::string address);

// Dials until `deadline` (kDeadlineExceeded past it).
[[nodiscard("co_await it: the dial happens then")]] Task<absl::StatusOr<Conn>> dial(
    std::string network, std::string address, Clock::time_point deadline);

// Dials until ctx's deadline (kDeadlineExceeded) or cancellation
// (kCancelled). Only the dial: the Conn does not keep ctx.
[[nodiscard("co_await it: the dial happens then")]] Task<absl::StatusOr<Conn>> dial(
    std::string network, std::string address, Context ctx);

}  // namespace goro::net

#endif  // GORO_NET_DIAL_HPP_
