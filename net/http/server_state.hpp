// net/http/server_state.hpp: what a Server shares with its connections.
// Each connection goroutine holds a shared_ptr to it, so the handler and
// the options live as long as the last connection, whatever happens to
// the Server object.
#ifndef GORO_NET_HTTP_SERVER_STATE_HPP_
#define GORO_NET_HTTP_SERVER_STATE_HPP_

#include <atomic>
#include <cstddef>

#include "goro/http/server.hpp"

namespace goro::http::internal {

struct ServerState {
  ServerState(Handler h, ServerOptions o) : handler(std::move(h)), options(o) {}

  Handler handler;
  const ServerOptions options;
  // Connections open now. Relaxed: a counter for max_connections and for
  // reports; it orders nothing else (a connection admitted one over the
  // limit in a race is harmless).
  std::atomic<std::size_t> open_connections{0};
};

}  // namespace goro::http::internal

#endif  // GORO_NET_HTTP_SERVER_STATE_HPP_
