// goro/http/client.hpp
//
// Defines: goro::http::Client, a small HTTP/1.1 client on goro::net (Go's
// http.Client with its default Transport, cut down), goro::http::
// ClientOptions, goro::http::Response and goro::http::HeaderField.
//
//   goro::http::Client client;
//   auto [ctx, cancel] = goro::with_timeout(goro::background(), 5s);
//   auto response = co_await client.get("http://127.0.0.1:8080/json", ctx);
//   if (response.ok()) std::printf("%d %s\n", response->status_code, response->body.c_str());
//
// Contract:
//   * URLs are "http://host[:port][/path][?query]" (port 80 by default;
//     an IPv6 host in brackets; a "#fragment" is dropped, never sent).
//     Any other scheme, https included, fails with kInvalidArgument before
//     anything is dialed, as does a URL with user info, no host, a bad
//     port, or a space or control byte (the caller percent-encodes). A
//     header name or value holding CR, LF or NUL, a method that is not a
//     token, and a Content-Length or Transfer-Encoding header of the
//     caller's (the client frames the body itself) are kInvalidArgument
//     too.
//   * The request says "Host" (the caller's Host header replaces it) and
//     carries its body with Content-Length (for POST, PUT and PATCH also
//     when empty). Responses are framed by Content-Length, chunked
//     transfer coding, or the end of the connection; a response to HEAD
//     and a 1xx, 204 or 304 response have no body. Interim 1xx responses
//     (100 Continue) are skipped; 101 ends the exchange and the
//     connection.
//   * Keep-alive: a connection whose response was read to its end, where
//     neither side said "Connection: close" and the body was not delimited
//     by the close, and no byte came after the response in its last read,
//     goes back to a pool kept per "host:port", where the next request to
//     that host takes it (the most recently used first).
//     At most max_idle_connections_per_host wait there; more are closed.
//     An idle connection older than idle_timeout is closed instead of
//     reused when the pool is next touched.
//   * A reused connection may have been closed by the server while it was
//     idle. When a request on one fails before any byte of a response
//     arrived (end of stream, reset, broken pipe), and the method is
//     idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), it is sent once
//     more on a newly dialed connection, as Go does. A POST is never
//     resent: its error is returned.
//   * ctx bounds the whole request: the dial, the write and every read end
//     at its deadline (kDeadlineExceeded, net::is_timeout) or cancellation
//     (kCancelled). A connection whose request ended that way is closed,
//     never pooled.
//   * Errors: a malformed response (llhttp's strict framing: bad status
//     line, bad chunk size, Content-Length with Transfer-Encoding,
//     duplicate Content-Length, obs-fold, an HTTP version other than
//     1.x...) is kDataLoss with llhttp's reason; a body over
//     max_response_bytes or a head over max_header_bytes is
//     kResourceExhausted; the connection ending before the response did
//     is kOutOfRange (net::is_eof, "unexpected EOF"). Dial, write and
//     read errors keep their code and errno payload (net::is_refused,
//     net::is_timeout... still apply), their message prefixed with the
//     method and URL. In every error case the connection is closed.
//   * Thread-safe: one Client may serve requests from many goroutines at
//     once; the pool is shared by them. Each request runs on its own
//     connection. The Client's state is shared with its requests, so
//     destroying the Client while requests are in flight is safe (they
//     finish, and their connections close when the last of them ends);
//     it closes the idle ones at once.
//   * Responses are read into memory whole (std::string body): the client
//     is meant for tools, tests and small services, not for streaming.
#ifndef GORO_HTTP_CLIENT_HPP_
#define GORO_HTTP_CLIENT_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "goro/context.hpp"
#include "goro/task.hpp"

namespace goro::http {

// Limits of a Client. Plain values (trivially destructible, see
// net::ListenOptions for why).
struct ClientOptions {
  // Decoded body bytes of one response; more is kResourceExhausted.
  std::uint64_t max_response_bytes = std::uint64_t{64} << 20;
  // Status line and header block of one response; more is
  // kResourceExhausted (Go's MaxResponseHeaderBytes).
  std::size_t max_header_bytes = std::size_t{1} << 20;
  // Idle keep-alive connections kept per host:port (Go's
  // MaxIdleConnsPerHost default); zero keeps none.
  std::size_t max_idle_connections_per_host = 2;
  // How long an idle connection may wait for reuse (Go's IdleConnTimeout);
  // zero or negative: no limit.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(90);
};
static_assert(std::is_trivially_destructible_v<ClientOptions>);

// One header field of a request or a response.
struct HeaderField {
  std::string name;
  std::string value;
};

// A response read whole.
struct Response {
  int status_code = 0;
  // The reason phrase as sent ("OK"; may be empty).
  std::string reason;
  // 0 for HTTP/1.0, 1 for HTTP/1.1.
  int version_minor = 1;
  // Every header field in the order received (repeated names included),
  // values without surrounding whitespace.
  std::vector<HeaderField> headers;
  std::string body;

  // The first field named `name` (ASCII case-insensitive), if any. The
  // view lies in `headers`.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
};

namespace internal {
struct ClientState;
}  // namespace internal

class Client {
 public:
  explicit Client(ClientOptions options = {});
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // GET `url`.
  [[nodiscard(
      "co_await it: the request happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<Response>>
  get(std::string url, Context ctx = {});

  // POST `body` to `url` with the given Content-Type.
  [[nodiscard(
      "co_await it: the request happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<Response>>
  post(std::string url, std::string content_type, std::string body, Context ctx = {});

  // Any method ("GET", "PUT", "HEAD"...) with the caller's header fields
  // (sent as given, after Host) and body.
  [[nodiscard(
      "co_await it: the request happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<Response>>
  request(std::string method, std::string url, std::vector<HeaderField> headers, std::string body,
          Context ctx = {});

  // Closes every idle connection in the pool now.
  void close_idle_connections();

  // Idle connections in the pool now, all hosts together.
  [[nodiscard]] std::size_t idle_connections() const;

  [[nodiscard]] const ClientOptions& options() const noexcept;

 private:
  // Null in a moved-from Client, which may only be assigned to or
  // destroyed.
  std::shared_ptr<internal::ClientState> state_;
};

}  // namespace goro::http

#endif  // GORO_HTTP_CLIENT_HPP_
