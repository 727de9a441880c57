// net/http/server_state.hpp: what a Server shares with its connections.
// Each connection goroutine holds a shared_ptr to it, so the handler and
// the options live as long as the last connection, whatever happens to
// the Server object.
//
// Graceful shutdown (Server::shutdown) needs to reach the serve() loops
// and the connections. A loop counts itself in `serving` under `mutex`
// unless shutting_down is set, and accepts with `draining`, which shutdown
// cancels after setting shutting_down: the accept wakes and the loop closes
// its own listener as it returns. No lock is held across that close, which
// may wait for other Ps' rings (goro::io::close, C4), and the listener dies
// with the loop's frame, which nothing else touches. Connections are
// registered here under `mutex`.
//
// Shutdown's handshake with a connection about to wait for its next
// request (the connection's steps c1-c2, shutdown's s1-s2):
//   c1. connection: idle = true;         s1. shutdown: shutting_down = true;
//   c2. connection: if shutting_down,    s2. shutdown: for each registered
//       close instead of reading.            connection, if idle, close it.
// All four are sequentially consistent, so at least one side sees the
// other's store: an idle connection is either closed by shutdown or leaves
// by itself; it never waits out a keep-alive behind a finished shutdown.
// A busy connection sees shutting_down when its request ends (and says
// "Connection: close" in the response when it sees it before the head).
//
// `mutex` is a std::mutex: its critical sections are a few pointer
// updates and Conn::close calls (a close with operations in flight only
// wakes them; the last one out releases the fd), and are never held
// across a park.
#ifndef GORO_NET_HTTP_SERVER_STATE_HPP_
#define GORO_NET_HTTP_SERVER_STATE_HPP_

#include <atomic>
#include <cstddef>
#include <mutex>

#include "goro/context.hpp"
#include "goro/http/server.hpp"
#include "goro/net/listener.hpp"

namespace goro::http::internal {

class Connection;

struct ServerState {
  ServerState(Handler h, ServerOptions o) : handler(std::move(h)), options(o) {
    auto [context, cancel] = with_cancel(background());
    draining = std::move(context);
    stop_draining = std::move(cancel);
  }

  Handler handler;
  const ServerOptions options;
  // Connections open now. Relaxed: a counter for max_connections and for
  // reports; it orders nothing else (a connection admitted one over the
  // limit in a race is harmless).
  std::atomic<std::size_t> open_connections{0};

  // Set once by shutdown (the handshake above).
  std::atomic<bool> shutting_down{false};
  // Cancelled by shutdown after s1: the serve() loops' accepts wake.
  Context draining;
  CancelFunc stop_draining;
  // serve() loops running, each counted under `mutex` (see the top).
  // The increment is ordered by `mutex` (relaxed is enough: shutdown reads
  // it only after its own critical section). The decrement is a release
  // after the loop closed its listener, and shutdown's loads acquire: a
  // shutdown that sees 0 sees every listener closed.
  std::atomic<int> serving{0};
  std::mutex mutex;
  Connection* connections = nullptr;  // the registered ones, linked
};

}  // namespace goro::http::internal

#endif  // GORO_NET_HTTP_SERVER_STATE_HPP_
