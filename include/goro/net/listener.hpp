// goro/net/listener.hpp
//
// Defines: goro::net::ListenOptions, goro::net::Listener and
// goro::net::listen, Go's net.Listen for stream sockets ("tcp", "tcp4",
// "tcp6", "unix").
//
//   auto listener = co_await goro::net::listen("tcp", "127.0.0.1:0");
//   if (!listener.ok()) co_return listener.status();
//   std::printf("listening on %s\n", listener->addr().to_string().c_str());
//   for (;;) {
//     auto conn = co_await listener->accept();
//     if (!conn.ok()) break;               // is_closed: someone closed it
//     goro::go(serve, std::move(*conn));   // serve(goro::net::Conn)
//   }
//
// Contract:
//   * SO_REUSEADDR is always set on TCP listeners (a restarted server binds
//     at once while old connections sit in TIME_WAIT); SO_REUSEPORT only
//     when asked (several processes or runtimes share the port and the
//     kernel spreads connections among them).
//   * Addresses: "host:port" with a literal IP or a name (resolved, the
//     first IPv4 address preferred, as Go does); "[::]:port" and ":port"
//     on "tcp" listen on every address, IPv4 and IPv6 (one dual-stack
//     socket; IPv4 alone where the kernel has no IPv6); "tcp6" with "[::]"
//     is IPv6 only; port 0 lets the kernel choose, and addr() tells which.
//   * Unix: a path, or "@name" for an abstract name. An existing socket
//     file at the path fails the bind (EADDRINUSE, see errno_of) unless
//     ListenOptions::remove_stale is set and nobody accepts on it (a
//     connect to it is refused): then the stale file is removed and the
//     bind retried. A path listener removes its socket file when closed.
//   * accept parks the goroutine until a connection arrives; the Conn has
//     TCP_NODELAY and 15 s keep-alive on (TCP). Under io_uring the
//     listener keeps one multishot accept in the kernel, and connections
//     that arrive while nobody accepts wait, already accepted, for the
//     next accept (up to Config::accept_queue_capacity; beyond that in the
//     listen backlog); close() closes those. Connections aborted
//     before they were accepted (ECONNABORTED) are skipped. The listener's
//     deadline (set_deadline) bounds every accept, including one parked.
//   * Running out of file descriptors (EMFILE, ENFILE) does not end an
//     accept: it sheds one queued connection with a descriptor the process
//     keeps in reserve (its peer sees the connection end instead of
//     waiting), pauses (5 ms, doubling up to 1 s; close, the deadline and
//     ctx end the pause), and tries again, until a descriptor is free. It
//     never spins. The reserve and the pause cost the process two
//     descriptors, opened by its first listen (net/listener.cpp, E1-E2).
//   * close() may be called from any goroutine or thread while accepts are
//     parked: they wake with closed_error (is_closed), as do later ones.
//     The listening socket is released once they have left.
//   * Move-only; destroying a Listener closes it.
#ifndef GORO_NET_LISTENER_HPP_
#define GORO_NET_LISTENER_HPP_

#include <memory>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/io_multishot.hpp"
#include "goro/net/address.hpp"
#include "goro/net/conn.hpp"
#include "goro/task.hpp"

namespace goro::net {

// How to listen. An aggregate of plain values (designated initializers
// read well: `ListenOptions{.reuse_port = true}`); being trivially
// destructible, a temporary of it inside a co_await expression is safe on
// every compiler (see goro::io::IoOptions for the compiler bug that
// forbids aggregates with destructors there).
struct ListenOptions {
  // SO_REUSEPORT: several sockets (processes, runtimes) listen on one port.
  bool reuse_port = false;
  // listen(2)'s backlog; the kernel caps it at net.core.somaxconn.
  int backlog = 4096;
  // Unix paths: remove a stale socket file (one nobody accepts on) first.
  bool remove_stale = false;
};
static_assert(std::is_trivially_destructible_v<ListenOptions>);

class Listener {
 public:
  // A closed Listener.
  Listener() noexcept;
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // The next connection. Errors: closed_error when the listener is (or
  // gets) closed; kDeadlineExceeded past the deadline or ctx's deadline;
  // kCancelled when ctx is cancelled; the errno status of accept4(2)
  // otherwise, after which accepting may go on. EMFILE and ENFILE are
  // not returned: accept waits them out (see the contract above).
  [[nodiscard("co_await it: the accept happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<Conn>>
  accept(Context ctx = {});

  // Stops listening (see the contract above). closed_error on a second
  // close.
  absl::Status close();

  // The deadline for accept (Clock::time_point::max(): none).
  void set_deadline(Clock::time_point deadline);

  // The address listened on, with the port the kernel chose for port 0.
  [[nodiscard]] const Addr& addr() const noexcept { return address_; }

 private:
  friend Task<absl::StatusOr<Listener>> listen(std::string network, std::string address,
                                               ListenOptions options);
  Listener(std::shared_ptr<internal::NetFd> socket, std::shared_ptr<io::AcceptStream> accepts,
           Addr address, std::string unlink_path) noexcept;

  std::shared_ptr<internal::NetFd> socket_;
  // What accept takes connections from (a multishot accept under
  // io_uring, goro/io_multishot.hpp); shared with the accepts running.
  std::shared_ptr<io::AcceptStream> accepts_;
  Addr address_;
  std::string unlink_path_;  // a Unix path listener's socket file
};

// Go's net.Listen: a listening socket on `network` ("tcp", "tcp4",
// "tcp6", "unix") at `address`. Errors: kInvalidArgument (bad network or
// address); the errno of socket, bind or listen (EADDRINUSE comes as
// kFailedPrecondition, EACCES for a privileged port as kPermissionDenied:
// errno_of tells which); the resolver's errors for a name.
[[nodiscard("co_await it: the listen happens then")]] Task<absl::StatusOr<Listener>> listen(
    std::string network, std::string address, ListenOptions options = {});

}  // namespace goro::net

#endif  // GORO_NET_LISTENER_HPP_
