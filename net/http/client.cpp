// net/http/client.cpp: goro::http::Client, a small HTTP/1.1 client on
// goro::net's public API, with a keep-alive pool per host.
//
// Why
//   Tools, tests and services written with goro need to call HTTP
//   services without leaving the runtime: a blocking client would park a
//   worker thread per request. This client does one request per
//   goroutine, parks only the goroutine (net::dial and net::Conn do the
//   waiting), and keeps connections open between requests, because a TCP
//   handshake per request costs more than the request itself on loopback
//   and a round trip on any other network.
//
// Glossary
//   host key   "host:port" as dialed (IPv6 in brackets): the pool's key.
//   exchange   one request written and its response read on one
//              connection.
//   reused     the connection came from the pool, not from a dial made
//              for this request.
//   started    at least one byte of the response arrived.
//
// Invariants
//   1. A connection is in the pool only between two exchanges, and only
//      after an exchange that read a complete response, with no byte left
//      over, on a connection both sides agreed to keep alive (the
//      response parser's keep_alive, and no "Connection: close" in the
//      request). Anything else (an error, a timeout, a cancellation, a
//      body the close delimited, bytes after the response) closes it. So
//      a pooled connection is always at a message boundary, never holds
//      half of an earlier response, and no two requests share one.
//   2. The pool is touched only under ClientState::mutex, and only for
//      moves of Conn objects in and out of vectors: no system call, no
//      park, no co_await inside. Connections to close (expired, over the
//      per-host limit) are moved out and closed after the lock is
//      released.
//   3. Requests hold the ClientState through a shared_ptr, so a Client
//      destroyed (or moved from) while requests are in flight leaves them
//      a live pool: they finish, and put their connections back into a
//      pool that is freed with the last of them.
//   4. A request is sent at most twice, and twice only when the first
//      exchange ran on a reused connection, failed before it started,
//      with end of stream, a reset or a broken pipe (what a server's idle
//      close looks like from here), the method is idempotent, and ctx is
//      still live. The second attempt always dials, so it cannot meet a
//      second stale connection.
//
// Algorithm (one request)
//   1. Parse the URL (http only) and validate the method and header
//      fields; build the request head once, as one string: request line,
//      Host, the caller's fields, Content-Length.
//   2. Take the most recently pooled connection for the host key, closing
//      those idle past idle_timeout; none: dial with ctx.
//   3. Write head and body with one writev under ctx.
//   4. Read under ctx into a 16 KiB buffer and feed each read to a
//      ResponseParser (llhttp, response mode) until it says complete. End
//      of stream is handed to the parser (a body delimited by the close
//      ends there; anything else is "unexpected EOF").
//   5. On success: pool the connection when invariant 1 allows, else close
//      it; return the Response. On failure: close the connection, and
//      retry from step 2 with a fresh dial when invariant 4 allows;
//      otherwise return the error, its message prefixed with the method
//      and URL, its code and errno payload kept.
//
// Rejected alternatives
//   * A background reader per pooled connection (Go's persistConn), to
//     notice a server's close while the connection is idle: a goroutine
//     and a pending read per idle connection, and a handoff between it and
//     the request. Retrying once (invariant 4) gives the same result for
//     idempotent requests, and Go itself still needs the retry for the
//     race where the close crosses the request. The price: a POST on a
//     pooled connection the server closed long ago fails, where Go's
//     reader would usually have seen the close and dialed instead.
//   * A goro::Mutex (parking) for the pool: the critical sections are a
//     few moves (invariant 2), so a parked waiter would cost more than the
//     wait. A std::mutex, as the server's registry of connections uses
//     (ThreadSanitizer intercepts it; Debian's Abseil is not built for
//     it, so absl::Mutex's edges would be invisible to it).
//   * Pipelining requests on a pooled connection: a slow response would
//     hold up the ones behind it, and an error would lose them all;
//     connections are cheap, so each request gets its own.
//   * A hand-written status-line and header parser: llhttp is strict and
//     fuzzed, and the server already compiles it in.
//   * Streaming the body to the caller: the client is for small bodies;
//     a whole std::string, bounded by max_response_bytes, keeps the API
//     one co_await.
#include "goro/http/client.hpp"

#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "goro/clock.hpp"
#include "goro/net/conn.hpp"
#include "goro/net/dial.hpp"
#include "goro/net/error.hpp"
#include "request_parser.hpp"
#include "response_parser.hpp"

namespace goro::http {

namespace internal {

namespace {

// Bytes asked of each read of a response.
constexpr std::size_t kReadBufferBytes = 16 * 1024;

struct IdleConnection {
  net::Conn conn;
  Clock::time_point idle_since;
};

}  // namespace

struct ClientState {
  explicit ClientState(ClientOptions client_options) : options(client_options) {}

  // Step 2: the most recently pooled connection to `host_key` that is not
  // past idle_timeout, if any.
  std::optional<net::Conn> take(const std::string& host_key) {
    std::vector<IdleConnection> expired;  // closed after the lock (invariant 2)
    std::optional<net::Conn> taken;
    {
      std::lock_guard lock(mutex);
      const auto found = idle.find(host_key);
      if (found == idle.end()) return std::nullopt;
      std::vector<IdleConnection>& connections = found->second;
      // A zero or negative idle_timeout is no limit, as in Go; one longer
      // than the clock has run cannot expire anything yet (and must not
      // underflow the subtraction).
      const Clock::time_point now = Clock::now();
      const bool expires = options.idle_timeout > std::chrono::nanoseconds::zero() &&
                           options.idle_timeout < now.time_since_epoch();
      const Clock::time_point oldest_allowed =
          expires ? now - options.idle_timeout : Clock::time_point::min();
      // The oldest are at the front: drop those past idle_timeout.
      std::size_t first_live = 0;
      while (first_live < connections.size() &&
             connections[first_live].idle_since < oldest_allowed) {
        ++first_live;
      }
      for (std::size_t i = 0; i < first_live; ++i) expired.push_back(std::move(connections[i]));
      connections.erase(connections.begin(),
                        connections.begin() + static_cast<std::ptrdiff_t>(first_live));
      if (!connections.empty()) {
        taken.emplace(std::move(connections.back().conn));
        connections.pop_back();
        ++first_live;  // counts the taken one out of idle_count too
      }
      idle_count -= first_live;
      if (connections.empty()) idle.erase(found);
    }
    return taken;
  }

  // Step 5: pools `conn` (invariant 1 holds for it), closing the oldest
  // idle connection to the host when that makes one too many.
  void put(const std::string& host_key, net::Conn conn) {
    std::optional<IdleConnection> dropped;  // closed after the lock
    {
      std::lock_guard lock(mutex);
      if (options.max_idle_connections_per_host == 0) {
        dropped.emplace(IdleConnection{std::move(conn), {}});
      } else {
        std::vector<IdleConnection>& connections = idle[host_key];
        if (connections.size() >= options.max_idle_connections_per_host) {
          dropped.emplace(std::move(connections.front()));
          connections.erase(connections.begin());
          --idle_count;
        }
        connections.push_back({std::move(conn), Clock::now()});
        ++idle_count;
      }
    }
  }

  void close_idle() {
    absl::flat_hash_map<std::string, std::vector<IdleConnection>> closing;
    {
      std::lock_guard lock(mutex);
      closing.swap(idle);
      idle_count = 0;
    }
  }

  std::size_t idle_connections() {
    std::lock_guard lock(mutex);
    return idle_count;
  }

  const ClientOptions options;
  std::mutex mutex;
  // Under `mutex`.
  absl::flat_hash_map<std::string, std::vector<IdleConnection>> idle;
  std::size_t idle_count = 0;
};

namespace {

// What step 1 makes of a URL.
struct Target {
  std::string host_key;        // what is dialed: "host:port"
  std::string host_header;     // the URL's authority, as written
  std::string request_target;  // "/path?query"
};

bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

// Whether `text` can go on a request line or into a Host field: no
// space, no control byte.
bool is_visible(std::string_view text) noexcept {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) return false;
  }
  return true;
}

absl::StatusOr<Target> parse_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return absl::InvalidArgumentError("URL has no scheme (want http://host/path)");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (!equals_ignore_case(scheme, "http")) {
    if (equals_ignore_case(scheme, "https")) {
      return absl::InvalidArgumentError("https is not supported (no TLS): use http://");
    }
    return absl::InvalidArgumentError("unsupported URL scheme \"" + std::string(scheme) + "\"");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError("URL user info is not supported");
  }
  if (!is_visible(authority)) return absl::InvalidArgumentError("URL host has invalid bytes");

  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return absl::InvalidArgumentError("URL has an open '['");
    host = authority.substr(1, close - 1);
    ipv6 = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return absl::InvalidArgumentError("URL has bytes after ']'");
      port = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError("URL has no host");
  if (port.empty()) port = "80";
  unsigned long port_number = 0;
  for (const char c : port) {
    if (c < '0' || c > '9' || port_number > 65535) {
      return absl::InvalidArgumentError("URL has an invalid port");
    }
    port_number = port_number * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port_number == 0 || port_number > 65535) {
    return absl::InvalidArgumentError("URL has an invalid port");
  }

  // The fragment stays with the client (RFC 9110 4.2.4).
  const std::string_view path_and_query = rest.substr(0, rest.find('#'));
  if (!is_visible(path_and_query)) {
    return absl::InvalidArgumentError("URL path has a space or a control byte");
  }
  Target target;
  target.host_key = ipv6 ? "[" + std::string(host) + "]:" + std::string(port)
                         : std::string(host) + ":" + std::string(port);
  target.host_header = std::string(authority);
  target.request_target = path_and_query.empty() || path_and_query.front() != '/'
                              ? "/" + std::string(path_and_query)
                              : std::string(path_and_query);
  return target;
}

// A request head, built once (step 1), and what it says about the
// connection.
struct RequestHead {
  std::string bytes;
  bool close_requested = false;  // the caller said "Connection: close"
};

absl::StatusOr<RequestHead> build_head(const std::string& method, const Target& target,
                                       const std::vector<HeaderField>& headers,
                                       std::size_t body_bytes) {
  if (!is_token(method)) return absl::InvalidArgumentError("invalid method \"" + method + "\"");
  RequestHead head;
  bool has_host = false;
  for (const HeaderField& field : headers) {
    if (!is_token(field.name)) {
      return absl::InvalidArgumentError("invalid header name \"" + field.name + "\"");
    }
    if (field.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError("header " + field.name + " has CR, LF or NUL in its value");
    }
    if (equals_ignore_case(field.name, "content-length") ||
        equals_ignore_case(field.name, "transfer-encoding")) {
      return absl::InvalidArgumentError("header " + field.name +
                                        " is the client's to set (it frames the body)");
    }
    if (equals_ignore_case(field.name, "host")) has_host = true;
    if (equals_ignore_case(field.name, "connection") &&
        contains_ignore_case(field.value, "close")) {
      head.close_requested = true;
    }
  }
  std::string& bytes = head.bytes;
  bytes.reserve(64 + target.request_target.size() + target.host_header.size());
  bytes.append(method).append(" ").append(target.request_target).append(" HTTP/1.1\r\n");
  if (!has_host) bytes.append("Host: ").append(target.host_header).append("\r\n");
  for (const HeaderField& field : headers) {
    bytes.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  // A body, or a method whose request has one by definition (RFC 9110
  // 8.6: a user agent should send Content-Length: 0 for them).
  if (body_bytes > 0 || method == "POST" || method == "PUT" || method == "PATCH") {
    bytes.append("Content-Length: ").append(std::to_string(body_bytes)).append("\r\n");
  }
  bytes.append("\r\n");
  return head;
}

// RFC 9110 9.2.2.
bool is_idempotent(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// Invariant 4: the failures a server's close of an idle connection
// causes on the next exchange, before any response byte.
bool is_stale_connection_error(const absl::Status& status) {
  if (net::is_eof(status)) return true;
  const std::optional<int> error_number = net::errno_of(status);
  return error_number &&
         (*error_number == ECONNRESET || *error_number == EPIPE || *error_number == ECONNABORTED);
}

// `status` with "METHOD URL: " before its message; code and payloads
// (the errno net::errno_of reads, net::is_closed's mark) kept.
absl::Status annotate(const absl::Status& status, std::string_view method, std::string_view url) {
  absl::Status annotated(status.code(), std::string(method) + " " + std::string(url) + ": " +
                                            std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    annotated.SetPayload(type_url, payload);
  });
  return annotated;
}

// What one exchange (steps 3 and 4) ends with.
struct Exchange {
  absl::StatusOr<Response> response;
  bool started = false;   // a response byte arrived
  bool reusable = false;  // invariant 1, the response's side of it
};

Task<Exchange> exchange(net::Conn& conn, const ClientOptions& options, const std::string& head,
                        const std::string& body, bool head_request, Context ctx) {
  Exchange outcome{Response{}, false, false};
  // Step 3.
  const iovec pieces[2] = {{const_cast<char*>(head.data()), head.size()},
                           {const_cast<char*>(body.data()), body.size()}};
  const std::size_t piece_count = body.empty() ? 1 : 2;
  if (auto written = co_await conn.writev(std::span(pieces, piece_count), ctx); !written.ok()) {
    outcome.response = std::move(written);
    co_return outcome;
  }
  // Step 4.
  ResponseParser parser({options.max_header_bytes, options.max_response_bytes}, &*outcome.response,
                        head_request);
  std::string buffer(kReadBufferBytes, '\0');
  for (;;) {
    auto read = co_await conn.read(buffer.data(), buffer.size(), ctx);
    if (!read.ok()) {
      outcome.response = read.status();
      co_return outcome;
    }
    ResponseParser::Result result{ResponseParser::State::kError, 0};
    if (*read == 0) {
      if (!outcome.started) {
        outcome.response =
            absl::OutOfRangeError("EOF: the server closed the connection unanswered");
        co_return outcome;
      }
      result = parser.finish();
    } else {
      outcome.started = true;
      result = parser.feed(buffer.data(), *read);
    }
    switch (result.state) {
      case ResponseParser::State::kNeedMore:
        continue;
      case ResponseParser::State::kComplete:
        // Bytes past the response were never asked for: the connection is
        // not at a message boundary (invariant 1).
        outcome.reusable = *read != 0 && parser.keep_alive() && result.consumed == *read;
        co_return outcome;
      case ResponseParser::State::kError:
        outcome.response = parser.error();
        co_return outcome;
    }
  }
}

// Steps 1 to 5.
Task<absl::StatusOr<Response>> round_trip(std::shared_ptr<ClientState> state, std::string method,
                                          std::string url, std::vector<HeaderField> headers,
                                          std::string body, Context ctx) {
  const absl::StatusOr<Target> target = parse_url(url);
  if (!target.ok()) co_return annotate(target.status(), method, url);
  const absl::StatusOr<RequestHead> head = build_head(method, *target, headers, body.size());
  if (!head.ok()) co_return annotate(head.status(), method, url);
  const bool head_request = method == "HEAD";

  for (int attempt = 0;; ++attempt) {
    if (absl::Status done = ctx.err(); !done.ok()) co_return annotate(done, method, url);
    // Step 2 (invariant 4: a retry always dials).
    std::optional<net::Conn> pooled;
    if (attempt == 0) pooled = state->take(target->host_key);
    const bool reused = pooled.has_value();
    net::Conn conn;
    if (reused) {
      conn = std::move(*pooled);
    } else {
      auto dialed = co_await net::dial("tcp", target->host_key, ctx);
      if (!dialed.ok()) co_return annotate(dialed.status(), method, url);
      conn = std::move(*dialed);
    }
    Exchange outcome =
        co_await exchange(conn, state->options, head->bytes, body, head_request, ctx);
    // Step 5.
    if (outcome.response.ok()) {
      if (outcome.reusable && !head->close_requested) state->put(target->host_key, std::move(conn));
      co_return std::move(outcome.response);
    }
    (void)conn.close();
    if (reused && !outcome.started && is_idempotent(method) &&
        is_stale_connection_error(outcome.response.status()) && ctx.err().ok()) {
      continue;
    }
    co_return annotate(outcome.response.status(), method, url);
  }
}

}  // namespace

}  // namespace internal

std::optional<std::string_view> Response::header(std::string_view name) const noexcept {
  for (const HeaderField& field : headers) {
    if (internal::equals_ignore_case(field.name, name)) return std::string_view(field.value);
  }
  return std::nullopt;
}

Client::Client(ClientOptions options) : state_(std::make_shared<internal::ClientState>(options)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() {
  if (state_ != nullptr) state_->close_idle();
}

Task<absl::StatusOr<Response>> Client::get(std::string url, Context ctx) {
  return internal::round_trip(state_, "GET", std::move(url), {}, {}, std::move(ctx));
}

Task<absl::StatusOr<Response>> Client::post(std::string url, std::string content_type,
                                            std::string body, Context ctx) {
  std::vector<HeaderField> headers;
  headers.push_back({"Content-Type", std::move(content_type)});
  return internal::round_trip(state_, "POST", std::move(url), std::move(headers), std::move(body),
                              std::move(ctx));
}

Task<absl::StatusOr<Response>> Client::request(std::string method, std::string url,
                                               std::vector<HeaderField> headers, std::string body,
                                               Context ctx) {
  return internal::round_trip(state_, std::move(method), std::move(url), std::move(headers),
                              std::move(body), std::move(ctx));
}

void Client::close_idle_connections() { state_->close_idle(); }

std::size_t Client::idle_connections() const { return state_->idle_connections(); }

const ClientOptions& Client::options() const noexcept { return state_->options; }

}  // namespace goro::http
