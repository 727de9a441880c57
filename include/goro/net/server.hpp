// goro/net/server.hpp
//
// Defines: goro::net::Server, a stream server that runs one goroutine per
// connection and shuts down gracefully, as Go's net/http Server does with
// Serve, Shutdown and Close, for raw connections.
//
//   goro::Task<void> handle(goro::Context ctx, goro::net::Conn conn) {
//     char buffer[4096];
//     for (;;) {
//       auto n = co_await conn.read(buffer, sizeof buffer, ctx);
//       if (!n.ok() || *n == 0) co_return;
//       if (!(co_await conn.write(buffer, *n, ctx)).ok()) co_return;
//     }
//   }
//
//   goro::net::Server server(handle);
//   auto serving = goro::spawn(server.serve(std::move(*listener)));
//   ...                                         // later, e.g. on SIGTERM:
//   auto [grace, release] = goro::with_timeout(goro::background(), 5s);
//   absl::Status drained = co_await server.shutdown(grace);
//   co_await serving;                           // OK: serve ended by shutdown
//
// Contract:
//   * serve(listener) accepts until shutdown or close begins, starting
//     handler(ctx, conn) in a goroutine of its own for each connection. It
//     owns the listener and closes it before it returns. Accept errors
//     that say the process or the system is short of something (ENOBUFS,
//     ENOMEM; EMFILE and ENFILE Listener::accept waits out itself, and
//     never returns) or that one connection failed early
//     (ECONNABORTED, EPROTO, EPERM; also EINTR, EAGAIN) are retried after
//     a pause that doubles from 5 ms to 1 s, so the loop never spins; any
//     other error ends serve with that status. serve returns OK once shutdown or close stopped it,
//     and at once (closing the listener) when called after that. Several
//     serve calls, on several listeners, may run at once.
//   * The handler's ctx is cancelled by close(), or when shutdown's own
//     context is done (its deadline) before the handlers have all
//     returned. The handler owns its Conn; a handler should return
//     promptly once ctx is cancelled or its Conn fails with closed_error.
//   * draining() is a Context cancelled as soon as shutdown or close
//     begins: a handler that can stop at a clean point (between messages)
//     reads with it, so that an idle connection ends at once rather than
//     at the deadline.
//   * shutdown(ctx): (1) stops accepting: every serve loop closes its
//     listener and returns, and a connection accepted in the race is
//     closed unserved; (2) waits for the handlers to return; (3) if ctx is
//     done first, cancels the handlers' ctx and closes every connection
//     they still hold (their parked operations wake with closed_error),
//     then waits for those handlers to return. It returns OK when the
//     handlers all finished by themselves, ctx.err() when step 3 ran. When
//     it returns, every serve loop and handler goroutine of this server
//     has returned and every socket it accepted is closed, unless a
//     handler moved its Conn elsewhere (that Conn was still closed in
//     step 3). A handler that neither uses its Conn nor watches ctx keeps
//     shutdown waiting. May be called more than once, from several
//     goroutines; each call waits as above.
//   * close(): steps (1) and (3) at once, without waiting (Go's Close);
//     shutdown may be awaited afterwards to wait for the goroutines.
//   * Thread-safe: serve, shutdown, close and the accessors may be called
//     from any goroutine (close and the accessors from any thread). Not
//     movable (running goroutines refer to it indirectly, through shared
//     state that outlives it). Destroying a Server closes it (close()),
//     without waiting for its goroutines.
#ifndef GORO_NET_SERVER_HPP_
#define GORO_NET_SERVER_HPP_

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "goro/context.hpp"
#include "goro/net/conn.hpp"
#include "goro/net/listener.hpp"
#include "goro/task.hpp"

namespace goro::net {

namespace internal {
struct ServerState;
}  // namespace internal

namespace detail {

// The handler behind its type: one virtual call per connection. (Not
// std::function: a library's call operator returning a Task is not marked
// as a coroutine wrapper, which clang's coroutine lifetime checks reject,
// goro/task.hpp.)
class ServerHandler {
 public:
  virtual ~ServerHandler() = default;
  [[nodiscard]] virtual Task<void> serve(Context ctx, Conn conn) = 0;
};

template <class Handler>
class ServerHandlerOf final : public ServerHandler {
 public:
  explicit ServerHandlerOf(Handler handler) : handler_(std::move(handler)) {}
  [[nodiscard]] GORO_CORO_WRAPPER Task<void> serve(Context ctx, Conn conn) override {
    return handler_(std::move(ctx), std::move(conn));
  }

 private:
  Handler handler_;
};

}  // namespace detail

class Server {
 public:
  // `handler(ctx, conn)` serves one connection: called once per accepted
  // connection, in a goroutine of its own, and returns a Task<void>. A
  // function, or a callable object (a lambda) that must be callable from
  // any thread; the Server keeps it (and what it captures) until its last
  // goroutine returns. The Task must not refer to the callable's own
  // state beyond that (a lambda's captures do live that long).
  template <class Handler>
  requires std::is_invocable_r_v<Task<void>, Handler&, Context, Conn> explicit Server(
      Handler handler)
      : Server(std::make_unique<detail::ServerHandlerOf<Handler>>(std::move(handler))) {}
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // close(): stops accepting and ends the handlers, without waiting.
  ~Server();

  // Accepts on `listener` until shutdown or close (see the contract).
  [[nodiscard("co_await it (or spawn it): nothing is accepted until then")]] GORO_CORO_WRAPPER
      Task<absl::Status>
      serve(Listener listener);

  // Stops accepting, waits for the handlers until ctx is done, then
  // cancels them and closes their connections and waits for them to
  // return (see the contract). OK if they finished in time, else ctx.err().
  [[nodiscard("co_await it: the shutdown happens then")]] GORO_CORO_WRAPPER Task<absl::Status>
  shutdown(Context ctx);

  // Stops accepting, cancels the handlers' ctx and closes their
  // connections now, without waiting (Go's Close). OK, or closed_error on
  // a second close.
  absl::Status close();

  // A Context cancelled when shutdown or close begins (see the contract).
  [[nodiscard]] Context draining() const;

  // The handlers running now (connections being served).
  [[nodiscard]] std::size_t connections() const;

 private:
  explicit Server(std::unique_ptr<detail::ServerHandler> handler);

  std::shared_ptr<internal::ServerState> state_;
};

}  // namespace goro::net

#endif  // GORO_NET_SERVER_HPP_
