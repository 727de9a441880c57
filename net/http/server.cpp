// net/http/server.cpp: Server's accept loop; each connection runs
// Connection::serve (connection.hpp) in its own goroutine.
#include "goro/http/server.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "absl/cleanup/cleanup.h"
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
  bool hijacked = false;
  {
    internal::Connection connection(std::move(conn), state);
    co_await connection.serve();
    hijacked = connection.hijacked();
  }
  // Relaxed: a count (server_state.hpp). A hijacked connection left the
  // count when its handler took it.
  if (!hijacked) state->open_connections.fetch_sub(1, std::memory_order_relaxed);
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
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    // Under the mutex, with which shutdown sets the flag: a loop counted
    // here sees `draining` cancelled, one that comes later sees the flag.
    if (state->shutting_down.load()) co_return absl::OkStatus();
    state->serving.fetch_add(1, std::memory_order_relaxed);  // under the mutex
  }
  absl::Cleanup leave = [&state, &listener] {
    (void)listener.close();                                  // before shutdown sees the loop gone
    state->serving.fetch_sub(1, std::memory_order_release);  // see serving
  };
  for (;;) {
    auto conn = co_await listener.accept(state->draining);
    if (!conn.ok()) {
      if (state->draining.cancelled() || net::is_closed(conn.status())) {
        co_return absl::OkStatus();
      }
      // EMFILE and the like: pause rather than spin, as Go's Serve does.
      (void)co_await goro::sleep(10ms, state->draining);
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

Task<absl::Status> Server::shutdown(Context ctx) {
  const std::shared_ptr<internal::ServerState> state = state_;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    // Step s1 of the handshake (server_state.hpp), then s2.
    state->shutting_down.store(true);
    for (internal::Connection* c = state->connections; c != nullptr; c = c->next()) {
      c->close_for_shutdown(/*only_idle=*/true);
    }
  }
  // The serve loops wake and close their listeners (server_state.hpp).
  state->stop_draining();
  // Wait for them and for the busy connections, polling as Go's Shutdown
  // does: a connection ending is not worth a wake-up mechanism of its own.
  auto interval = 1ms;
  while (state->serving.load(std::memory_order_acquire) > 0 ||
         state->open_connections.load(std::memory_order_relaxed) > 0) {
    if (!(co_await goro::sleep(interval, ctx)).ok()) {
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        for (internal::Connection* c = state->connections; c != nullptr; c = c->next()) {
          c->close_for_shutdown(/*only_idle=*/false);
        }
      }
      // The loops' accepts were cancelled: they are closing their
      // listeners now, and no dial succeeds once shutdown returns.
      while (state->serving.load(std::memory_order_acquire) > 0) co_await goro::sleep(1ms);
      co_return ctx.err();
    }
    interval = std::min<std::chrono::milliseconds>(interval * 2, 50ms);
  }
  co_return absl::OkStatus();
}

Task<absl::Status> Server::listen_and_serve(std::string address) {
  auto listener = co_await net::listen("tcp", std::move(address));
  if (!listener.ok()) co_return listener.status();
  co_return co_await serve(std::move(*listener));
}

}  // namespace goro::http
