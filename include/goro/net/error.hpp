// goro/net/error.hpp
//
// Defines: how goro::net reports errors, and the predicates that classify
// them: net::is_closed (Go's net.ErrClosed), net::is_timeout,
// net::is_refused, net::is_unreachable, net::is_eof, and net::errno_of.
//
// Every failure in goro::net is an absl::Status. Failures of a system call
// are built as goro::io builds them, by absl::ErrnoToStatus, so their code
// follows the errno (ECONNREFUSED and ENETUNREACH both map to kUnavailable,
// ETIMEDOUT to kDeadlineExceeded, ...); goro::net adds the errno itself as a
// payload, so that callers that must tell a refused connection from an
// unreachable network can (errno_of, is_refused, is_unreachable). The
// message says what was done to what, as Go's *net.OpError does:
// "dial tcp 127.0.0.1:1: connect: Connection refused".
//
// Three outcomes have their own shape:
//   * An operation on a closed Conn or Listener, and one that was parked
//     when another goroutine closed it, fails with kFailedPrecondition,
//     message "...: use of closed network connection", and a payload that
//     is_closed checks (never the message).
//   * A deadline (the Conn's, the dial's or a Context's) that passes fails
//     the operation with kDeadlineExceeded ("i/o timeout" in the message);
//     a cancelled Context with kCancelled.
//   * End of stream is not an error for read (a 0 read); read_full
//     reports it as kOutOfRange (is_eof).
#ifndef GORO_NET_ERROR_HPP_
#define GORO_NET_ERROR_HPP_

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace goro::net {

// The status of an operation on a closed Conn, Listener or PacketConn
// (Go's net.ErrClosed). `operation` names it ("read", "accept"...).
[[nodiscard]] absl::Status closed_error(std::string_view operation);

// True for a status made by closed_error: the socket was closed before or
// while the operation ran.
[[nodiscard]] bool is_closed(const absl::Status& status) noexcept;

// The errno behind a failed system call, when the status came from one
// (kept by goro::net as a payload, or recovered from a goro::io status,
// whose message ends in strerror's text for its errno).
[[nodiscard]] std::optional<int> errno_of(const absl::Status& status);

// True when a deadline ended the operation (kDeadlineExceeded), or the
// kernel gave up on a connection (ETIMEDOUT), as Go's Timeout().
[[nodiscard]] bool is_timeout(const absl::Status& status);

// True when the peer refused the connection (ECONNREFUSED).
[[nodiscard]] bool is_refused(const absl::Status& status);

// True when no route led to the peer (ENETUNREACH, EHOSTUNREACH).
[[nodiscard]] bool is_unreachable(const absl::Status& status);

// True for read_full's end of stream (kOutOfRange).
[[nodiscard]] bool is_eof(const absl::Status& status) noexcept;

}  // namespace goro::net

#endif  // GORO_NET_ERROR_HPP_
