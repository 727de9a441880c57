// goro/http/server.hpp
//
// Defines: goro::http::Server, an HTTP/1.1 server on goro::net (Go's
// http.Server), goro::http::ServerOptions and goro::http::Handler.
//
//   goro::http::Router router;
//   router.get("/plaintext", [](goro::http::Request&, goro::http::ResponseWriter& w)
//                                -> goro::Task<void> {
//     w.reply_static(200, "text/plain", "Hello, World!");
//     co_return;
//   });
//   goro::http::Server server(std::move(router), {.read_header_timeout = 10s});
//   auto status = co_await server.listen_and_serve("127.0.0.1:8080");
//
// Contract:
//   * One goroutine per connection. Requests on a connection are served
//     one after another, in order (keep-alive and pipelining: several
//     requests in one read are parsed from the buffer, and their
//     responses leave together in one write).
//   * The handler is any callable `Task<void>(Request&, ResponseWriter&)
//     const`, kept by the server (moved in) for as long as any connection
//     may call it, so a capturing lambda coroutine is safe: its Task reads
//     the captures from the server's copy. It is called concurrently from
//     connections on different threads, as in Go: shared state in it needs
//     synchronization.
//   * A handler that throws: the client gets 500 if nothing of the
//     response had been written out yet, and the connection serves on (it
//     closes if part of the response had left). Nothing escapes the
//     server.
//   * Malformed framing (RFC 9112) gets 400 and a closed connection; a
//     head over max_header_bytes 431 (request line included; also more
//     than 100 header fields); a body over max_body_bytes 413 (a declared
//     Content-Length before the handler runs, a chunked body when it grows
//     past the limit); a Transfer-Encoding other than one "chunked" field
//     501 (as Go); an Expect other than 100-continue 417 (as Go); an HTTP
//     major version other than 1 505; an HTTP/2 preface a close without
//     answer. A connection is never reused after a framing error.
//   * Strictness where RFC 9112 leaves a choice: lines end in CRLF (a bare LF
//     is 400, where Go accepts it); Content-Length given twice is 400 even when
//     the values agree; the request line has one space on each side of the
//     target and a version (no HTTP/0.9); a method llhttp does not know,
//     lowercase names included, is 400. HTTP/1.2 to 1.9 are served as HTTP/1.1
//     (as Go). HTTP/1.1 needs exactly one Host, CONNECT included, and a Host
//     holds only the bytes of a URI authority; Transfer-Encoding on HTTP/1.0
//     closes the connection after the request. "Expect: 100-continue" on
//     HTTP/1.0 gets no 100.
//   * Request targets: origin form; absolute form ("http://host/p?q",
//     Request::path() and query() are then the part after the authority);
//     "*" (OPTIONS *, path "*") and CONNECT's authority form ("host:443")
//     go to the handler like any other (Router answers "*" itself unless a
//     route takes it: router.hpp).
//   * CONNECT and Upgrade, as Go: the handler answers them; it may take
//     the connection over with ResponseWriter::hijack (a tunnel, a
//     WebSocket). Otherwise a CONNECT connection closes after the
//     response (what follows it is never read as HTTP), and an Upgrade
//     header is ignored: the request is an ordinary one, the connection
//     serves on.
//   * Timeouts (zero: none, Go's defaults) use the Conn's deadlines:
//     read_header_timeout bounds the time from the first byte of a request
//     (from the accept, for the first one) to the end of its head: a client
//     that trickles headers is cut off; read_timeout bounds each body read
//     from the request's start; write_timeout bounds each write of the
//     output buffer; idle_timeout the wait for the next request on a
//     keep-alive connection (read_header_timeout's value when zero). A
//     timed-out connection is closed without an answer.
//   * max_connections (zero: no limit): a connection accepted beyond it
//     gets "503 Service Unavailable" with "Connection: close" and is
//     closed; the server keeps accepting.
//   * Server must outlive the serve() call; the state connections use is
//     shared with them, so connections still running when serve() returns
//     (the listener closed) are safe, and end when their clients go.
//     shutdown() ends them gracefully.
#ifndef GORO_HTTP_SERVER_HPP_
#define GORO_HTTP_SERVER_HPP_

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "goro/context.hpp"
#include "goro/http/handler.hpp"
#include "goro/http/request.hpp"
#include "goro/http/response_writer.hpp"
#include "goro/net/listener.hpp"
#include "goro/task.hpp"

namespace goro::http {

// Limits and timeouts, Go's http.Server names where Go has them. Plain
// values (trivially destructible, see net::ListenOptions for why).
struct ServerOptions {
  // Request line and header block together; more is 431.
  std::size_t max_header_bytes = 8192;
  // Request body bytes; more is 413 (nginx's client_max_body_size).
  std::uint64_t max_body_bytes = 1 << 20;
  std::chrono::nanoseconds read_header_timeout{0};
  std::chrono::nanoseconds read_timeout{0};
  std::chrono::nanoseconds write_timeout{0};
  std::chrono::nanoseconds idle_timeout{0};
  // Open connections; beyond it new ones get 503 and are closed.
  std::size_t max_connections = 0;
};
static_assert(std::is_trivially_destructible_v<ServerOptions>);

namespace internal {
struct ServerState;
}  // namespace internal

class Server {
 public:
  // A server calling `handler` for every request.
  template <HandlerCallable F>
  explicit Server(F&& handler, ServerOptions options = {})
      : Server(Handler(std::forward<F>(handler)), options, 0) {}

  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  ~Server();

  // Accepts connections from `listener` and serves each in its own
  // goroutine, until the listener is closed or shutdown() is called (OK).
  // Accept errors (EMFILE...) are retried after a pause.
  [[nodiscard("co_await it: serving happens then")]] Task<absl::Status> serve(
      net::Listener listener);

  // Go's Server.Shutdown: stops accepting (every serve() returns OK),
  // closes idle keep-alive connections at once, lets requests in flight
  // finish (their responses say "Connection: close" where the head is
  // still unsent, and their connections close after them), and returns OK
  // when no connection is left. At ctx's deadline or cancellation it
  // closes the connections still open (handlers doing I/O on them then
  // fail) and returns ctx.err() at once, even if a handler never returns.
  // A request that arrives on an idle connection at the very moment it is
  // closed is lost, as in Go: the client sees the connection close.
  // Hijacked connections are the handler's: shutdown neither closes nor
  // waits for them (as Go).
  // serve() called after shutdown returns OK at once.
  [[nodiscard("co_await it: the shutdown happens then")]] Task<absl::Status> shutdown(
      Context ctx = {});

  // Listens on `address` ("host:port", TCP) and serves (Go's
  // ListenAndServe).
  [[nodiscard("co_await it: serving happens then")]] Task<absl::Status> listen_and_serve(
      std::string address);

  // Connections open now (served or being refused; not hijacked ones).
  [[nodiscard]] std::size_t open_connections() const noexcept;

  [[nodiscard]] const ServerOptions& options() const noexcept;

 private:
  Server(Handler handler, ServerOptions options, int);

  std::shared_ptr<internal::ServerState> state_;
};

}  // namespace goro::http

#endif  // GORO_HTTP_SERVER_HPP_
