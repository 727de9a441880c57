// tests/http_test_util.hpp
//
// What the goro::http server tests share: a raw HTTP client on one
// net::Conn (bytes written as given, responses parsed back with a
// bounded wait, and a check that the server closed the connection), and
// a harness that starts a Server on a loopback port and runs a test body
// (a coroutine returning a Verdict: "" when it passed, else what went
// wrong) under a watchdog.
#ifndef GORO_TESTS_HTTP_TEST_UTIL_HPP_
#define GORO_TESTS_HTTP_TEST_UTIL_HPP_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

#include "test_util.hpp"

namespace goro::http {

// What a test body reports: "" when it passed, else what went wrong.
using Verdict = std::string;

struct RawResponse {
  int status = 0;
  std::string head;
  std::string body;
};

inline bool has_header(const RawResponse& response, std::string_view line) {
  return response.head.find(std::string("\r\n") + std::string(line) + "\r\n") != std::string::npos;
}

inline std::string describe(const RawResponse& r) {
  return "status " + std::to_string(r.status) + ", head \"" + r.head + "\", body \"" +
         r.body.substr(0, 200) + "\"";
}

// A raw HTTP client on one connection (goro::http::Client is the real
// one): bytes read and not yet returned stay in `buffer`.
struct RawClient {
  net::Conn conn;
  std::string buffer;

  // Reads more into the buffer: false at end of stream, error or 10 s.
  Task<bool> fill() {
    char chunk[4096];
    conn.set_read_deadline(Clock::now() + std::chrono::seconds(10));
    auto n = co_await conn.read(chunk, sizeof chunk);
    if (!n.ok() || *n == 0) co_return false;
    buffer.append(chunk, *n);
    co_return true;
  }

  Task<bool> send(std::string_view bytes) {
    co_return (co_await conn.write(bytes.data(), bytes.size())).ok();
  }

  // Reads until `count` bytes are buffered, then takes them (false if the
  // stream ends first).
  Task<bool> take(std::size_t count, std::string& out) {
    while (buffer.size() < count) {
      const bool filled = co_await fill();  // named: g++ 12 (goro/task.hpp)
      if (!filled) co_return false;
    }
    out = buffer.substr(0, count);
    buffer.erase(0, count);
    co_return true;
  }

  // The next response (`head_only`: the request was HEAD), or status 0.
  // A 1xx, 204 or 304 response has no body; a response with neither
  // Content-Length nor chunked framing has none either (a test that
  // expects a body up to the close reads it with fill()).
  Task<RawResponse> response(bool head_only = false) {
    RawResponse r;
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!co_await fill()) co_return r;
    }
    r.head = buffer.substr(0, end + 2);
    buffer.erase(0, end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    if (head_only || r.status < 200 || r.status == 204 || r.status == 304) co_return r;
    if (has_header(r, "Transfer-Encoding: chunked")) {
      for (;;) {
        std::size_t line;
        while ((line = buffer.find("\r\n")) == std::string::npos) {
          if (!co_await fill()) co_return RawResponse{};
        }
        const std::size_t size = std::strtoul(buffer.c_str(), nullptr, 16);
        while (buffer.size() < line + 2 + size + 2) {
          if (!co_await fill()) co_return RawResponse{};
        }
        r.body.append(buffer, line + 2, size);
        buffer.erase(0, line + 2 + size + 2);
        if (size == 0) co_return r;
      }
    }
    const std::size_t at = r.head.find("Content-Length: ");
    const std::size_t length = at == std::string::npos ? 0 : std::atol(r.head.c_str() + at + 16);
    while (buffer.size() < length) {
      if (!co_await fill()) co_return RawResponse{};
    }
    r.body = buffer.substr(0, length);
    buffer.erase(0, length);
    co_return r;
  }

  // Whether the server closed the connection (end of stream, or a reset)
  // with nothing more to read, within 10 s.
  Task<bool> closed_by_server() {
    char byte;
    conn.set_read_deadline(Clock::now() + std::chrono::seconds(10));
    auto n = co_await conn.read(&byte, 1);
    if (n.ok()) co_return *n == 0;
    co_return !net::is_timeout(n.status());
  }
};

inline Task<absl::StatusOr<RawClient>> connect(std::string address) {
  auto conn = co_await net::dial("tcp", address);
  if (!conn.ok()) co_return conn.status();
  co_return RawClient{std::move(*conn), {}};
}

inline Task<void> serve_in_background(std::shared_ptr<Server> server, net::Listener listener) {
  (void)co_await server->serve(std::move(listener));
}

// Starts a Server calling `handler` with `options` on a loopback port,
// then runs `body(address)` (or `body(address, server)`) and reports its
// verdict.
template <class Handler, class Body>
void with_http_server(Handler handler, ServerOptions options, Body body) {
  test::Watchdog watchdog(::testing::UnitTest::GetInstance()->current_test_info()->name(),
                          std::chrono::seconds(120));
  auto main = [&]() -> Task<Verdict> {
    auto listener = co_await net::listen("tcp", "127.0.0.1:0");
    if (!listener.ok()) co_return listener.status().ToString();
    const std::string address = listener->addr().to_string();
    auto server = std::make_shared<Server>(std::move(handler), options);
    goro::go(serve_in_background, server, std::move(*listener));
    if constexpr (std::is_invocable_v<Body, std::string, std::shared_ptr<Server>>) {
      co_return co_await body(address, server);
    } else {
      co_return co_await body(address);
    }
  };
  const Verdict verdict = run(main(), test::with_procs(2));
  EXPECT_EQ(verdict, "");
}

}  // namespace goro::http

#endif  // GORO_TESTS_HTTP_TEST_UTIL_HPP_
