// goro/http/request.hpp
//
// Defines: goro::http::Request, the request a goro::http::Server hands to
// its handler, and goro::http::Header.
//
//   goro::Task<void> upload(goro::http::Request& request,
//                           goro::http::ResponseWriter& response) {
//     std::string body;
//     if (auto status = co_await request.read_all(body); !status.ok()) co_return;
//     response.reply(200, "text/plain", request.header("content-type").value_or("none"));
//   }
//
// Contract:
//   * Zero-copy: method(), target(), path(), query(), headers() and
//     param() are views into the connection's read buffer. They stay valid
//     until the handler's Task completes, and not a moment longer: copy
//     what must outlive the request.
//   * The head was checked before the handler runs (RFC 9112 framing,
//     Host on HTTP/1.1, Content-Length not over max_body_bytes); a request
//     that fails those checks never reaches a handler.
//   * The body streams: read() decodes Content-Length and chunked bodies
//     into the caller's buffer as they arrive, nothing is buffered for it.
//     A chunked body that grows past ServerOptions::max_body_bytes fails
//     the read with kResourceExhausted (the server answers 413 if the
//     handler has not answered, and closes the connection). With
//     "Expect: 100-continue", the first read sends "100 Continue".
//   * A Request is used by one goroutine, the handler's; it is neither
//     copyable nor movable (the server owns it).
#ifndef GORO_HTTP_REQUEST_HPP_
#define GORO_HTTP_REQUEST_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/task.hpp"

namespace goro::http {

namespace internal {
class Connection;
}  // namespace internal

class Router;

// One header field as received: views into the request's buffer.
struct Header {
  std::string_view name;
  std::string_view value;
};

class Request {
 public:
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // "GET", "POST", ... as llhttp names the method.
  [[nodiscard]] std::string_view method() const noexcept { return method_; }
  // The request target as sent: "/path?query" (or "*", an absolute URI,
  // or CONNECT's "host:port").
  [[nodiscard]] std::string_view target() const noexcept { return target_; }
  // The target up to '?' (not percent-decoded); for an absolute URI, from
  // the '/' after its authority ("/" when none follows).
  [[nodiscard]] std::string_view path() const noexcept { return path_; }
  // The target after '?', without it; empty when it has none.
  [[nodiscard]] std::string_view query() const noexcept { return query_; }
  // 0 for HTTP/1.0, 1 for HTTP/1.1 (and for 1.2 to 1.9, served as 1.1).
  [[nodiscard]] int version_minor() const noexcept { return version_minor_; }

  // Every header field in the order received (repeated names included),
  // values without surrounding whitespace.
  [[nodiscard]] std::span<const Header> headers() const noexcept { return headers_; }
  // The first field named `name` (case-insensitive), if any.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;

  // The declared Content-Length; nullopt for a chunked body or none.
  [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept {
    return content_length_;
  }
  // Whether the body is chunked (Transfer-Encoding: chunked).
  [[nodiscard]] bool chunked() const noexcept { return chunked_; }

  // A `{name}` segment the Router matched, or "" when there is none.
  [[nodiscard]] std::string_view param(std::string_view name) const noexcept;

  // Reads body bytes into `buffer`: how many (at least 1 when `length` >
  // 0 and the body has more), or 0 at the end of the body. Errors:
  // kResourceExhausted past max_body_bytes, kInvalidArgument for a
  // malformed chunked body, the connection's error (is_timeout past
  // read_timeout, kOutOfRange when the client hung up mid-body).
  [[nodiscard("co_await it: the read happens then")]] Task<absl::StatusOr<std::size_t>> read(
      void* buffer, std::size_t length);
  [[nodiscard(
      "co_await it: the read happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<std::size_t>>
  read(std::span<std::byte> buffer) {
    return read(buffer.data(), buffer.size());
  }
  // Appends the rest of the body to `body` (at most max_body_bytes).
  [[nodiscard("co_await it: the read happens then")]] Task<absl::Status> read_all(
      std::string& body);

 private:
  friend class internal::Connection;
  friend class Router;
  explicit Request(internal::Connection* connection) noexcept : connection_(connection) {}

  internal::Connection* connection_;
  std::string_view method_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  int version_minor_ = 1;
  bool chunked_ = false;
  std::optional<std::uint64_t> content_length_;
  absl::InlinedVector<Header, 16> headers_;
  absl::InlinedVector<std::pair<std::string_view, std::string_view>, 4> params_;
};

}  // namespace goro::http

#endif  // GORO_HTTP_REQUEST_HPP_
