// net/http/server.cpp: Server's accept loop; each connection runs
// Connection::serve (connection.hpp) in its own goroutine.
#include "goro/http/server.hpp"

#include <chrono>
#include <cstdio>

#include "connection.hpp"
#include "goro/go.hpp"
#include "goro/net/error.hpp"
#include "goro/time.hpp"
#include "server_state.hpp"

namespace goro::http {

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kBusy =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 23\r\nConnection: close\r\n\r\n503 Service Unavailable";

// One connection's goroutine: the state keeps the handler alive while it runs.
Task<void> serve_connection(std::shared_ptr<internal::ServerState> state, net::Conn conn) {
  {
    internal::Connection connection(std::move(conn), state);
    co_await connection.serve();
  }
  // Relaxed: a count (server_state.hpp).
  state->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

// A connection beyond max_connections: told so, and closed.
Task<void> refuse_connection(std::shared_ptr<internal::ServerState> state, net::Conn conn) {
  conn.set_write_deadline(Clock::now() + 1s);
  (void)co_await conn.write(kBusy.data(), kBusy.size());
  (void)conn.close_write();
  conn.set_read_deadline(Clock::now() + 500ms);
  char scratch[1024];
  for (int i = 0; i < 16; ++i) {
    auto n = co_await conn.read(scratch, sizeof scratch);
    if (!n.ok() || *n == 0) break;
  }
  state->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

Server::Server(Handler handler, ServerOptions options, int)
    : state_(std::make_shared<internal::ServerState>(std::move(handler), options)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&&) noexcept = default;
Server::~Server() = default;

std::size_t Server::open_connections() const noexcept {
  return state_->open_connections.load(std::memory_order_relaxed);
}

const ServerOptions& Server::options() const noexcept { return state_->options; }

Task<absl::Status> Server::serve(net::Listener listener) {
  const std::shared_ptr<internal::ServerState> state = state_;
  const std::size_t limit = state->options.max_connections;
  for (;;) {
    auto conn = co_await listener.accept();
    if (!conn.ok()) {
      if (net::is_closed(conn.status())) co_return absl::OkStatus();
      // EMFILE and the like: pause rather than spin, as Go's Serve does.
      co_await goro::sleep(10ms);
      continue;
    }
    // Relaxed: a count (server_state.hpp).
    const std::size_t open = state->open_connections.fetch_add(1, std::memory_order_relaxed);
    if (limit != 0 && open >= limit) {
      goro::go(refuse_connection, state, std::move(*conn));
    } else {
      goro::go(serve_connection, state, std::move(*conn));
    }
  }
}

Task<absl::Status> Server::listen_and_serve(std::string address) {
  auto listener = co_await net::listen("tcp", std::move(address));
  if (!listener.ok()) co_return listener.status();
  co_return co_await serve(std::move(*listener));
}

}  // namespace goro::http
