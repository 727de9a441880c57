// goro/net/conn.hpp
//
// Defines: goro::net::Conn, a connected stream socket (TCP or Unix), as
// Go's net.Conn: read, read_full, write (all bytes), writev, try_write
// (what fits now, without waiting), half-close, close, deadlines, socket
// options and addresses. dial also makes Conns of connected datagram
// sockets (UDP, unixgram: goro/net/dial.hpp says how read and write treat
// datagrams).
//
//   goro::Task<void> echo(goro::net::Conn conn) {
//     char buffer[4096];
//     for (;;) {
//       auto n = co_await conn.read(buffer, sizeof buffer);
//       if (!n.ok() || *n == 0) co_return;          // error, or end of stream
//       if (!(co_await conn.write(buffer, *n)).ok()) co_return;
//     }
//   }
//
// Contract, for every operation:
//   * It must be awaited from a goroutine; it parks the goroutine, never
//     the worker thread (goro::io under the hood, on either poller).
//   * Errors are absl::Status values (goro/net/error.hpp); end of stream is
//     a read of 0 bytes, not an error.
//   * Deadlines are absolute and per direction, as in Go:
//     set_read_deadline applies to every read until changed, including a
//     read already parked (it takes the new deadline: one moved earlier
//     wakes it at once, failing it if that has passed; one moved later
//     lets it wait on, and costs no allocation); set_write_deadline
//     likewise for writes;
//     set_deadline sets both. A passed deadline fails operations with
//     kDeadlineExceeded (is_timeout) without consuming data, and the
//     connection stays usable once the deadline is moved.
//   * Variants taking a goro::Context end also at the context's deadline
//     (kDeadlineExceeded) or cancellation (kCancelled), whichever of the
//     two and the Conn's deadline comes first.
//   * close() may be called from any goroutine or thread while others are
//     parked in read or write: they wake with closed_error
//     (net::is_closed), and later operations fail with it too. The fd is
//     released once the last of them has left, so a recycled fd number
//     never reaches a pending operation.
//   * Bad peers. A peer that resets fails reads and writes with
//     ECONNRESET (errno_of); a write to a peer that is gone may say EPIPE
//     instead. Neither raises SIGPIPE: sends carry MSG_NOSIGNAL, and
//     goro's worker threads block SIGPIPE (goro/io.hpp), whatever the
//     process's disposition. A peer's half-close is end of stream (a 0
//     read). A peer that does not read parks the writer once the socket
//     buffers are full; write copies nothing, so memory does not grow
//     with what is unsent, and the write deadline ends the wait.
//   * One goroutine reading while another writes is the intended use.
//     Concurrent reads (or concurrent writes) are memory-safe, but their
//     bytes interleave in no defined order.
//   * Move-only. Destroying a Conn closes it (goroutines still parked on
//     it wake as for close()). A moved-from Conn is closed: its operations
//     fail with closed_error.
#ifndef GORO_NET_CONN_HPP_
#define GORO_NET_CONN_HPP_

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/net/address.hpp"
#include "goro/task.hpp"

namespace goro::net {

namespace internal {
class NetFd;
struct ConnAccess;
}  // namespace internal

class Conn {
 public:
  // A closed Conn.
  Conn() noexcept;
  Conn(Conn&& other) noexcept;
  Conn& operator=(Conn&& other) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // Takes ownership of `fd`, a connected stream socket (as accept or dial
  // make one; also a socketpair end). Closes it when the Conn goes.
  [[nodiscard]] static Conn from_fd(int fd);

  // Reads up to `length` bytes: how many were read (at least 1 when
  // `length` > 0), or 0 at end of stream.
  [[nodiscard(
      "co_await it: the read happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>>
  read(void* buffer, std::size_t length);
  [[nodiscard(
      "co_await it: the read happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>>
  read(void* buffer, std::size_t length, Context ctx);
  [[nodiscard(
      "co_await it: the read happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>>
  read(std::span<std::byte> buffer) {
    return read(buffer.data(), buffer.size());
  }

  // Reads exactly `length` bytes (Go's io.ReadFull). End of stream first
  // is kOutOfRange (is_eof), with "EOF" in the message if nothing was
  // read and "unexpected EOF" otherwise; what was read stays in `buffer`.
  [[nodiscard("co_await it: the read happens then")]] GORO_CORO_WRAPPER Task<absl::Status>
  read_full(void* buffer, std::size_t length, Context ctx = {});

  // Writes all `length` bytes (looping over short sends), or fails; how
  // much went out before a failure is not reported.
  [[nodiscard("co_await it: the write happens then")]] GORO_CORO_WRAPPER Task<absl::Status> write(
      const void* data, std::size_t length);
  [[nodiscard("co_await it: the write happens then")]] GORO_CORO_WRAPPER Task<absl::Status> write(
      const void* data, std::size_t length, Context ctx);
  [[nodiscard("co_await it: the write happens then")]] GORO_CORO_WRAPPER Task<absl::Status> write(
      std::span<const std::byte> data) {
    return write(data.data(), data.size());
  }

  // Writes what the socket takes now, without waiting (Tokio's try_write;
  // one send(2)): how many of the first `length` bytes went out, 0 when
  // the socket's send buffer is full or `length` is 0. A caller that needs
  // the rest sent awaits write() for it. Fails as write() would:
  // closed_error when closed, "i/o timeout" when the write deadline has
  // passed, the send's error (EPIPE, ECONNRESET, errno_of) otherwise.
  // Callable from any thread, inside a goroutine or not.
  [[nodiscard]] absl::StatusOr<std::size_t> try_write(const void* data, std::size_t length);

  // Writes all bytes of the buffers in order (sendmsg(2) over the span,
  // advancing past what each call sent). The buffers must stay valid until
  // the task completes; the iovec array itself is copied.
  [[nodiscard("co_await it: the write happens then")]] GORO_CORO_WRAPPER Task<absl::Status> writev(
      std::span<const iovec> buffers, Context ctx = {});

  // Half-close (shutdown(2)): close_read stops receiving (later reads
  // return 0), close_write sends FIN (the peer reads end of stream; this
  // side may still read).
  absl::Status close_read();
  absl::Status close_write();

  // Closes the connection (see the contract above). closed_error on a
  // second close.
  absl::Status close();

  // Deadlines, absolute on goro::Clock; Clock::time_point::max() clears.
  // Thread-safe; see the contract above for what a change does.
  void set_deadline(Clock::time_point deadline);
  void set_read_deadline(Clock::time_point deadline);
  void set_write_deadline(Clock::time_point deadline);

  // TCP_NODELAY (on for every Conn that accept and dial make, as in Go).
  absl::Status set_nodelay(bool on);
  // TCP keep-alive probes after `idle` without traffic (and every `idle`
  // after that); a zero or negative `idle` turns keep-alive off. accept
  // and dial turn it on with 15 s, as Go does.
  absl::Status set_keepalive(std::chrono::seconds idle);

  // The addresses of the two ends (empty when closed or unknown).
  [[nodiscard]] Addr local_addr() const;
  [[nodiscard]] Addr remote_addr() const;

  // Whether the Conn holds a socket that is not closed.
  [[nodiscard]] bool is_open() const;

 private:
  friend struct internal::ConnAccess;
  explicit Conn(std::shared_ptr<internal::NetFd> socket) noexcept;

  std::shared_ptr<internal::NetFd> socket_;
};

}  // namespace goro::net

#endif  // GORO_NET_CONN_HPP_
