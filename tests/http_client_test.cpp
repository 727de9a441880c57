// tests/http_client_test.cpp: goro::http::Client over loopback, on both
// poller backends (run the binary again with GORO_POLLER=epoll), against
// goro's own http::Server and against a scripted server: a raw
// net::Listener whose connections run a test's script byte for byte, to
// send chunked, Content-Length, close-delimited, malformed, slow and
// truncated responses, and to count the connections the client opens.
// The response parser is also fed directly, split at every byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

#include "response_parser.hpp"
#include "test_util.hpp"

namespace goro::http {
namespace {

using namespace std::chrono_literals;

// What a test body reports: "" when it passed, else what went wrong.
using Verdict = std::string;

// Runs `body()` (a Task<Verdict>) under a watchdog with GORO_MAXPROCS's Ps
// (the machine's when unset), and expects "".
template <class Body>
void run_verdict(Body body) {
  test::Watchdog watchdog(::testing::UnitTest::GetInstance()->current_test_info()->name(),
                          std::chrono::seconds(120));
  const Verdict verdict = run(body(), Config{});
  EXPECT_EQ(verdict, "");
}

// ---------------------------------------------------------------------
// The response parser, fed in pieces.

// Parses `wire` fed in pieces of `piece` bytes; the state it ends in.
internal::ResponseParser::State parse_in_pieces(std::string_view wire, std::size_t piece,
                                                Response& response) {
  internal::ResponseParser parser({1 << 20, 1 << 20}, &response, false);
  for (std::size_t at = 0; at < wire.size(); at += piece) {
    const auto result = parser.feed(wire.data() + at, std::min(piece, wire.size() - at));
    if (result.state != internal::ResponseParser::State::kNeedMore) return result.state;
  }
  return parser.finish().state;
}

TEST(HttpResponseParser, ParsesTheSameWhereverTheReadsSplitIt) {
  const std::string wire =
      "HTTP/1.1 200 Fine Thanks\r\nX-Spaced:   a b  c  \r\nTransfer-Encoding: chunked\r\n"
      "Set-Cookie: one\r\nSet-Cookie: two\r\n\r\n"
      "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    SCOPED_TRACE(piece);
    Response response;
    ASSERT_EQ(parse_in_pieces(wire, piece, response), internal::ResponseParser::State::kComplete);
    EXPECT_EQ(response.status_code, 200);
    EXPECT_EQ(response.reason, "Fine Thanks");
    ASSERT_EQ(response.headers.size(), 4u);
    EXPECT_EQ(response.headers[0].name, "X-Spaced");
    EXPECT_EQ(response.headers[0].value, "a b  c");
    EXPECT_EQ(response.headers[3].value, "two");
    EXPECT_EQ(response.header("set-cookie"), "one");
    EXPECT_EQ(response.body, "abc0123456789abcdef");
  }
}

TEST(HttpResponseParser, RefusesObsFoldWhereverTheReadsSplitIt) {
  const std::string wire = "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    SCOPED_TRACE(piece);
    Response response;
    EXPECT_EQ(parse_in_pieces(wire, piece, response), internal::ResponseParser::State::kError);
  }
}

// ---------------------------------------------------------------------
// The scripted server.

// A script is a callable `Task<void>(net::Conn& conn, int index)`: what
// the server does with the connection numbered `index` (0 for the first
// accepted). It is kept, with the count of accepted connections, for as
// long as a connection may run it.
template <class Script>
struct ScriptState {
  explicit ScriptState(Script s) : script(std::move(s)) {}
  Script script;
  // Connections accepted so far. Sequentially consistent (the default):
  // a test reads it after exchanges whose connections were accepted
  // before the server answered on them, and any order would do for that;
  // the default costs nothing here and needs no argument.
  std::atomic<int> accepted{0};
};

template <class Script>
Task<void> run_script(std::shared_ptr<ScriptState<Script>> state, net::Conn conn, int index) {
  co_await state->script(conn, index);
}

template <class Script>
Task<void> accept_loop(std::shared_ptr<ScriptState<Script>> state, net::Listener listener) {
  for (;;) {
    auto conn = co_await listener.accept();
    if (!conn.ok()) co_return;
    const int index = state->accepted.fetch_add(1);
    goro::go(run_script<Script>, state, std::move(*conn), index);
  }
}

struct ScriptedServer {
  std::string address;  // "127.0.0.1:port"
  std::shared_ptr<const std::atomic<int>> accepted_count;

  [[nodiscard]] std::string url(std::string_view path) const {
    return "http://" + address + std::string(path);
  }
  [[nodiscard]] int accepted() const { return accepted_count->load(); }
};

// Listens on a loopback port and runs `script` on every connection.
template <class Script>
Task<absl::StatusOr<ScriptedServer>> start_scripted(Script script) {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status();
  auto state = std::make_shared<ScriptState<Script>>(std::move(script));
  ScriptedServer server{listener->addr().to_string(),
                        std::shared_ptr<const std::atomic<int>>(state, &state->accepted)};
  goro::go(accept_loop<Script>, state, std::move(*listener));
  co_return server;
}

// Reads one request (head, and a body by Content-Length) from `conn`;
// bytes past it stay in `pending`. "" at end of stream or error.
Task<std::string> read_request(net::Conn& conn, std::string& pending) {
  char chunk[4096];
  std::size_t head_end;
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    auto n = co_await conn.read(chunk, sizeof chunk);
    if (!n.ok() || *n == 0) co_return "";
    pending.append(chunk, *n);
  }
  std::size_t length = head_end + 4;
  const std::size_t at = pending.find("Content-Length: ");
  if (at != std::string::npos && at < head_end) {
    length += std::stoul(pending.substr(at + 16));
  }
  while (pending.size() < length) {
    auto n = co_await conn.read(chunk, sizeof chunk);
    if (!n.ok() || *n == 0) co_return "";
    pending.append(chunk, *n);
  }
  std::string request = pending.substr(0, length);
  pending.erase(0, length);
  co_return request;
}

Task<bool> send(net::Conn& conn, std::string_view bytes) {
  co_return (co_await conn.write(bytes.data(), bytes.size())).ok();
}

// Whether the peer closed `conn` (end of stream or an error other than
// a timeout) within 10 s, bytes before that ignored.
Task<bool> closed_by_peer(net::Conn& conn) {
  char chunk[256];
  conn.set_read_deadline(Clock::now() + 10s);
  for (;;) {
    auto n = co_await conn.read(chunk, sizeof chunk);
    if (!n.ok()) co_return !net::is_timeout(n.status());
    if (*n == 0) co_return true;
  }
}

// A script answering every request on the connection with `response`.
auto answer_every_request(std::string response) {
  return [response](net::Conn& conn, int) -> Task<void> {
    std::string pending;
    while (!(co_await read_request(conn, pending)).empty()) {
      if (!co_await send(conn, response)) co_return;
    }
  };
}

// A script that answers one request with `response` and closes.
auto answer_once(std::string response) {
  return [response](net::Conn& conn, int) -> Task<void> {
    std::string pending;
    if ((co_await read_request(conn, pending)).empty()) co_return;
    (void)co_await send(conn, response);
    (void)conn.close();
  };
}

// A request's header fields: just this one. (A function, not a braced
// list in the coroutine: GCC 12 cannot compile the latter there.)
std::vector<HeaderField> one_field(std::string name, std::string value) {
  std::vector<HeaderField> fields;
  fields.push_back({std::move(name), std::move(value)});
  return fields;
}

std::string describe(const absl::StatusOr<Response>& response) {
  if (!response.ok()) return response.status().ToString();
  return "status " + std::to_string(response->status_code) + " " + response->reason + ", body \"" +
         response->body.substr(0, 200) + "\"";
}

// ---------------------------------------------------------------------
// goro's own server.

Router test_router() {
  Router router;
  router.get("/hello", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(200, "text/plain", "Hello, World!");
    co_return;
  });
  router.post("/echo", [](Request& r, ResponseWriter& w) -> Task<void> {
    std::string body;
    if (!(co_await r.read_all(body)).ok()) co_return;
    w.reply(200, std::string(r.header("content-type").value_or("none")), body);
  });
  router.get("/users/{id}", [](Request& r, ResponseWriter& w) -> Task<void> {
    w.reply(200, "text/plain", r.param("id"));
    co_return;
  });
  // No length known up front: a chunked response, 10,000 bytes of 'a',
  // then of 'b', then of 'c'.
  router.get("/stream", [](Request&, ResponseWriter& w) -> Task<void> {
    for (const char letter : {'a', 'b', 'c'}) {
      if (!(co_await w.write(std::string(10000, letter))).ok()) co_return;
    }
  });
  return router;
}

Task<void> serve_in_background(std::shared_ptr<Server> server, net::Listener listener) {
  (void)co_await server->serve(std::move(listener));
}

Task<absl::StatusOr<std::string>> start_goro_server() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status();
  std::string address = listener->addr().to_string();
  goro::go(serve_in_background, std::make_shared<Server>(test_router()), std::move(*listener));
  co_return address;
}

// ---------------------------------------------------------------------
// Against goro's server.

TEST(HttpClient, GetsAndPostsAgainstGoroServer) {
  run_verdict([]() -> Task<Verdict> {
    auto address = co_await start_goro_server();
    if (!address.ok()) co_return address.status().ToString();
    Client client;
    auto hello = co_await client.get("http://" + *address + "/hello");
    if (!hello.ok() || hello->status_code != 200 || hello->reason != "OK" ||
        hello->body != "Hello, World!" || hello->header("CONTENT-type") != "text/plain" ||
        hello->header("content-length") != "13" || hello->version_minor != 1) {
      co_return "GET /hello: " + describe(hello);
    }
    std::string body(100'000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
    auto echo =
        co_await client.post("http://" + *address + "/echo", "application/octet-stream", body);
    if (!echo.ok() || echo->status_code != 200 || echo->body != body ||
        echo->header("Content-Type") != "application/octet-stream") {
      co_return "POST /echo: " + describe(echo);
    }
    auto missing = co_await client.get("http://" + *address + "/missing");
    if (!missing.ok() || missing->status_code != 404)
      co_return "GET /missing: " + describe(missing);
    // A chunked response of goro's server, read whole.
    auto stream = co_await client.get("http://" + *address + "/stream");
    if (!stream.ok() ||
        stream->body !=
            std::string(10000, 'a') + std::string(10000, 'b') + std::string(10000, 'c') ||
        stream->header("transfer-encoding") != "chunked") {
      co_return "GET /stream: " + describe(stream);
    }
    auto head = co_await client.request("HEAD", "http://" + *address + "/hello", {}, {});
    if (!head.ok() || head->status_code != 200 || !head->body.empty()) {
      co_return "HEAD /hello: " + describe(head);
    }
    // Every exchange above left its connection reusable.
    if (client.idle_connections() != 1) {
      co_return "idle connections: " + std::to_string(client.idle_connections());
    }
    co_return "";
  });
}

TEST(HttpClient, ConcurrentRequestsFrom32GoroutinesShareThePool) {
  run_verdict([]() -> Task<Verdict> {
    auto address = co_await start_goro_server();
    if (!address.ok()) co_return address.status().ToString();
    auto client = std::make_shared<Client>(ClientOptions{.max_idle_connections_per_host = 8});
    // Counted by the 32 goroutines, read after group.wait(), which orders
    // every count before the read; the first failure's text is written by
    // the one goroutine that wins failure_once's exchange.
    auto failures = std::make_shared<std::atomic<int>>(0);
    auto first_failure = std::make_shared<std::string>();
    auto failure_once = std::make_shared<std::atomic<bool>>(false);
    WaitGroup group;
    for (int g = 0; g < 32; ++g) {
      group.go(
          [client, failures, first_failure, failure_once, address = *address, g]() -> Task<void> {
            for (int i = 0; i < 20; ++i) {
              const std::string id = std::to_string(g * 1000 + i);
              auto response = co_await client->get("http://" + address + "/users/" + id);
              if (!response.ok() || response->status_code != 200 || response->body != id) {
                if (!failure_once->exchange(true)) *first_failure = id + ": " + describe(response);
                failures->fetch_add(1);
              }
            }
          });
    }
    co_await group.wait();
    if (failures->load() != 0) {
      co_return std::to_string(failures->load()) + " failed, first " + *first_failure;
    }
    if (client->idle_connections() == 0 || client->idle_connections() > 8) {
      co_return "idle connections: " + std::to_string(client->idle_connections());
    }
    co_return "";
  });
}

// ---------------------------------------------------------------------
// Keep-alive and retries.

TEST(HttpClient, ReusesAnIdleConnectionForTheSameHost) {
  run_verdict([]() -> Task<Verdict> {
    auto server = co_await start_scripted(
        answer_every_request("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    for (int i = 0; i < 5; ++i) {
      auto response = co_await client.get(server->url("/"));
      if (!response.ok() || response->body != "ok") co_return describe(response);
      if (client.idle_connections() != 1) co_return "not pooled after request " + std::to_string(i);
    }
    if (server->accepted() != 1) co_return "accepted " + std::to_string(server->accepted());
    client.close_idle_connections();
    if (client.idle_connections() != 0) co_return "close_idle_connections left some";
    auto again = co_await client.get(server->url("/"));
    if (!again.ok() || server->accepted() != 2) co_return "after close_idle: " + describe(again);
    co_return "";
  });
}

TEST(HttpClient, IdleConnectionsPastTheLimitsAreClosedNotReused) {
  run_verdict([]() -> Task<Verdict> {
    auto server = co_await start_scripted(
        answer_every_request("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    if (!server.ok()) co_return server.status().ToString();
    // Past idle_timeout by the time the next request looks.
    Client expiring(ClientOptions{.idle_timeout = std::chrono::nanoseconds(1)});
    for (int i = 0; i < 2; ++i) {
      auto response = co_await expiring.get(server->url("/"));
      if (!response.ok()) co_return describe(response);
    }
    if (server->accepted() != 2) co_return "reused past idle_timeout";
    // No idle connection kept at all.
    Client keeping_none(ClientOptions{.max_idle_connections_per_host = 0});
    for (int i = 0; i < 2; ++i) {
      auto response = co_await keeping_none.get(server->url("/"));
      if (!response.ok()) co_return describe(response);
      if (keeping_none.idle_connections() != 0) co_return "pooled with a limit of 0";
    }
    if (server->accepted() != 4) co_return "accepted " + std::to_string(server->accepted());
    // A zero idle_timeout is no limit.
    Client unlimited(ClientOptions{.idle_timeout = std::chrono::nanoseconds::zero()});
    for (int i = 0; i < 2; ++i) {
      auto response = co_await unlimited.get(server->url("/"));
      if (!response.ok()) co_return describe(response);
    }
    if (server->accepted() != 5) co_return "accepted " + std::to_string(server->accepted());
    co_return "";
  });
}

// The server answers one request per connection and closes it (an idle
// close, as far as the client can tell: its response said nothing of
// it); `closed` gets a value once it has.
auto answer_once_then_close(Chan<int> closed) {
  return [closed](net::Conn& conn, int index) -> Task<void> {
    std::string pending;
    if ((co_await read_request(conn, pending)).empty()) co_return;
    (void)co_await send(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    (void)conn.close();
    co_await closed.send(index);
  };
}

TEST(HttpClient, RetriesOnceAfterTheServerClosedAnIdleConnection) {
  run_verdict([]() -> Task<Verdict> {
    Chan<int> closed = make_chan<int>(4);
    auto server = co_await start_scripted(answer_once_then_close(closed));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    for (int i = 0; i < 3; ++i) {
      auto response = co_await client.get(server->url("/"));
      if (!response.ok() || response->body != "ok") {
        co_return "request " + std::to_string(i) + ": " + describe(response);
      }
      // The pooled connection is closed by the server before the next GET.
      (void)co_await closed.recv();
    }
    // Each later GET met a stale connection and dialed once more.
    if (server->accepted() != 3) co_return "accepted " + std::to_string(server->accepted());
    co_return "";
  });
}

TEST(HttpClient, DoesNotResendAPostOnAStaleConnection) {
  run_verdict([]() -> Task<Verdict> {
    Chan<int> closed = make_chan<int>(4);
    auto server = co_await start_scripted(answer_once_then_close(closed));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto first = co_await client.get(server->url("/"));
    if (!first.ok()) co_return "first: " + describe(first);
    (void)co_await closed.recv();
    auto post = co_await client.post(server->url("/"), "text/plain", "once");
    if (post.ok()) co_return "the POST on a closed connection succeeded";
    const auto error_number = net::errno_of(post.status());
    if (!net::is_eof(post.status()) && error_number != ECONNRESET && error_number != EPIPE) {
      co_return "unexpected error: " + post.status().ToString();
    }
    if (post.status().message().find("POST http://") == std::string_view::npos) {
      co_return "error does not name the request: " + post.status().ToString();
    }
    if (server->accepted() != 1) co_return "accepted " + std::to_string(server->accepted());
    co_return "";
  });
}

TEST(HttpClient, ConnectionCloseIsHonoured) {
  run_verdict([]() -> Task<Verdict> {
    auto server = co_await start_scripted(answer_every_request(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    for (int i = 0; i < 2; ++i) {
      auto response = co_await client.get(server->url("/"));
      if (!response.ok() || response->body != "ok") co_return describe(response);
      if (client.idle_connections() != 0) co_return "pooled a Connection: close response";
    }
    if (server->accepted() != 2) co_return "accepted " + std::to_string(server->accepted());

    // The request's own "Connection: close" too.
    auto keep_alive = co_await start_scripted(
        answer_every_request("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    if (!keep_alive.ok()) co_return keep_alive.status().ToString();
    auto response =
        co_await client.request("GET", keep_alive->url("/"), one_field("Connection", "close"), {});
    if (!response.ok() || client.idle_connections() != 0) {
      co_return "request's Connection: close: " + describe(response);
    }
    co_return "";
  });
}

TEST(HttpClient, BytesAfterAResponseKeepItsConnectionOutOfThePool) {
  run_verdict([]() -> Task<Verdict> {
    // One write (so one read takes it all on loopback): a response and
    // bytes no request asked for.
    auto server = co_await start_scripted(
        answer_every_request("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto response = co_await client.get(server->url("/"));
    if (!response.ok() || response->body != "ok") co_return describe(response);
    if (client.idle_connections() != 0) co_return "pooled a connection with bytes left over";
    co_return "";
  });
}

// ---------------------------------------------------------------------
// Framing.

TEST(HttpClient, ChunkedBodyIsByteExact) {
  std::string expected;
  for (int i = 0; i < 3000; ++i) expected.push_back(static_cast<char>(i % 256));
  run_verdict([&expected]() -> Task<Verdict> {
    // Chunks of 1, 255 and 2744 bytes, one with an extension, a trailer
    // field after the last; written in pieces that cut the framing
    // anywhere (a size line, a CRLF, the middle of a chunk).
    std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    wire += "1\r\n" + expected.substr(0, 1) + "\r\n";
    wire += "ff;name=value\r\n" + expected.substr(1, 255) + "\r\n";
    wire += "ab8\r\n" + expected.substr(256) + "\r\n";
    wire += "0\r\nX-Trailer: yes\r\n\r\n";
    // Named first: g++ 12 destroys twice a capturing closure made inside a
    // co_await expression (goro/task.hpp).
    auto script = [wire](net::Conn& conn, int) -> Task<void> {
      std::string pending;
      while (!(co_await read_request(conn, pending)).empty()) {
        for (std::size_t at = 0; at < wire.size(); at += 7) {
          if (!co_await send(conn, std::string_view(wire).substr(at, 7))) co_return;
          if (at % 700 == 0) co_await goro::yield();
        }
      }
    };
    auto server = co_await start_scripted(std::move(script));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    for (int i = 0; i < 2; ++i) {
      auto response = co_await client.get(server->url("/chunked"));
      if (!response.ok()) co_return describe(response);
      if (response->body != expected) {
        co_return "body of " + std::to_string(response->body.size()) + " bytes differs";
      }
      if (response->header("X-Trailer")) co_return "a trailer field became a header";
    }
    if (server->accepted() != 1) co_return "chunked response not reused";
    co_return "";
  });
}

TEST(HttpClient, ReadsABodyDelimitedByTheClose) {
  run_verdict([]() -> Task<Verdict> {
    const std::string body(50'000, 'c');
    auto server = co_await start_scripted(answer_once("HTTP/1.1 200 OK\r\n\r\n" + body));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto response = co_await client.get(server->url("/"));
    if (!response.ok() || response->body != body) co_return describe(response);
    if (client.idle_connections() != 0) co_return "pooled a connection the close delimited";
    co_return "";
  });
}

TEST(HttpClient, HeadAnd204And304HaveNoBody) {
  run_verdict([]() -> Task<Verdict> {
    // One connection answers a HEAD (with the GET's Content-Length), a 204
    // and a 304 (each with bytes llhttp must not take as a body: none
    // follow), then a 200: all four on one connection.
    auto server = co_await start_scripted([](net::Conn& conn, int) -> Task<void> {
      std::string pending;
      const char* answers[] = {
          "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
          "HTTP/1.1 204 No Content\r\n\r\n",
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast",
      };
      for (const char* answer : answers) {
        if ((co_await read_request(conn, pending)).empty()) co_return;
        if (!co_await send(conn, answer)) co_return;
      }
    });
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto head = co_await client.request("HEAD", server->url("/"), {}, {});
    if (!head.ok() || head->status_code != 200 || !head->body.empty() ||
        head->header("Content-Length") != "100") {
      co_return "HEAD: " + describe(head);
    }
    for (const int status : {204, 304}) {
      auto response = co_await client.get(server->url("/"));
      if (!response.ok() || response->status_code != status || !response->body.empty()) {
        co_return std::to_string(status) + ": " + describe(response);
      }
    }
    auto last = co_await client.get(server->url("/"));
    if (!last.ok() || last->body != "last") co_return "last: " + describe(last);
    if (server->accepted() != 1) co_return "accepted " + std::to_string(server->accepted());
    co_return "";
  });
}

TEST(HttpClient, SkipsInterimResponses) {
  run_verdict([]() -> Task<Verdict> {
    auto server = co_await start_scripted(
        answer_every_request("HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                             "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto response = co_await client.post(server->url("/"), "text/plain", "body");
    if (!response.ok() || response->status_code != 201 || response->reason != "Created" ||
        response->body != "done" || response->header("X-Interim")) {
      co_return describe(response);
    }
    co_return "";
  });
}

TEST(HttpClient, SendsTheRequestLineHostAndContentLength) {
  run_verdict([]() -> Task<Verdict> {
    // Each request as received, handed over on a channel (which orders the
    // script's writes before the test's reads; the socket would too, but
    // ThreadSanitizer cannot see that).
    Chan<std::string> requests = make_chan<std::string>(8);
    // Named first, as above (g++ 12).
    auto script = [requests](net::Conn& conn, int) -> Task<void> {
      std::string pending;
      for (;;) {
        std::string request = co_await read_request(conn, pending);
        if (request.empty()) co_return;
        co_await requests.send(std::move(request));
        if (!co_await send(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) co_return;
      }
    };
    auto server = co_await start_scripted(std::move(script));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto get = co_await client.get(server->url("/path?query=1#fragment"));
    auto post =
        co_await client.request("POST", server->url(""), one_field("X-Custom", "value"), "abc");
    auto host =
        co_await client.request("GET", "http://" + server->address, one_field("Host", "other"), {});
    if (!get.ok() || !post.ok() || !host.ok()) {
      co_return "requests failed: " + describe(get) + "; " + describe(post) + "; " + describe(host);
    }
    const std::string expected[] = {
        "GET /path?query=1 HTTP/1.1\r\nHost: " + server->address + "\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: " + server->address +
            "\r\nX-Custom: value\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: other\r\n\r\n",
    };
    for (const std::string& want : expected) {
      const std::optional<std::string> sent = co_await requests.recv();
      if (sent != want)
        co_return "sent \"" + sent.value_or("nothing") + "\", want \"" + want + "\"";
    }
    co_return "";
  });
}

TEST(HttpClient, MalformedResponsesFailWithDataLossAndAreNotReused) {
  const char* malformed[] = {
      "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",                         // status not a number
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",  // two lengths
      // Content-Length with Transfer-Encoding.
      ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\nok\r\n0\r\n\r\n"),
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",  // chunk size
      "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",  // space before the colon
      "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",  // obs-fold
      "HTTP/1.1 200 OK\r\nX-Bare: a\rb\r\nContent-Length: 2\r\n\r\nok",       // bare CR
      "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",                       // not HTTP/1.x
      "garbage\r\n\r\n",
  };
  for (const char* response : malformed) {
    SCOPED_TRACE(response);
    run_verdict([response]() -> Task<Verdict> {
      auto server = co_await start_scripted(answer_every_request(response));
      if (!server.ok()) co_return server.status().ToString();
      Client client;
      auto result = co_await client.get(server->url("/"));
      if (result.ok()) co_return "accepted: " + describe(result);
      if (result.status().code() != absl::StatusCode::kDataLoss) {
        co_return "not DataLoss: " + result.status().ToString();
      }
      if (client.idle_connections() != 0) co_return "pooled after a framing error";
      co_return "";
    });
  }
}

TEST(HttpClient, TruncatedResponsesAreUnexpectedEof) {
  const char* truncated[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
      "HTTP/1.1 200 OK\r\nContent-Le",
  };
  for (const char* response : truncated) {
    SCOPED_TRACE(response);
    run_verdict([response]() -> Task<Verdict> {
      auto server = co_await start_scripted(answer_once(response));
      if (!server.ok()) co_return server.status().ToString();
      Client client;
      auto result = co_await client.get(server->url("/"));
      if (result.ok()) co_return "accepted: " + describe(result);
      if (!net::is_eof(result.status()) ||
          result.status().message().find("unexpected EOF") == std::string_view::npos) {
        co_return "not an unexpected EOF: " + result.status().ToString();
      }
      // A fresh connection that ends before it started is not retried.
      if (server->accepted() != 1) co_return "accepted " + std::to_string(server->accepted());
      co_return "";
    });
  }
}

TEST(HttpClient, ResponsesOverTheLimitsFailWithResourceExhausted) {
  run_verdict([]() -> Task<Verdict> {
    const std::string big(5000, 'b');
    const std::string chunked_big = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" +
                                    big.substr(0, 1000) + "\r\n3e8\r\n" + big.substr(0, 1000) +
                                    "\r\n0\r\n\r\n";
    const std::string long_head =
        "HTTP/1.1 200 OK\r\nX-Long: " + big + "\r\nContent-Length: 0\r\n\r\n";
    const std::string many_fields = [] {
      std::string head = "HTTP/1.1 200 OK\r\n";
      for (int i = 0; i < 200; ++i) head += "a: b\r\n";
      return head + "Content-Length: 0\r\n\r\n";
    }();
    const std::string responses[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + big,
        chunked_big,
        "HTTP/1.1 200 OK\r\n\r\n" + big,
        long_head,
        many_fields,
    };
    const ClientOptions small{.max_response_bytes = 1500, .max_header_bytes = 2000};
    for (const std::string& wire : responses) {
      auto server = co_await start_scripted(answer_once(wire));
      if (!server.ok()) co_return server.status().ToString();
      Client client(small);
      auto result = co_await client.get(server->url("/"));
      if (result.status().code() != absl::StatusCode::kResourceExhausted) {
        co_return "not ResourceExhausted for " + wire.substr(0, 60) + ": " + describe(result);
      }
      if (client.idle_connections() != 0) co_return "pooled past a limit";
    }
    // At the limit exactly: fine.
    auto server = co_await start_scripted(
        answer_once("HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n" + big.substr(0, 1500)));
    if (!server.ok()) co_return server.status().ToString();
    Client client(small);
    auto at_limit = co_await client.get(server->url("/"));
    if (!at_limit.ok() || at_limit->body.size() != 1500)
      co_return "at limit: " + describe(at_limit);
    co_return "";
  });
}

// ---------------------------------------------------------------------
// Timeouts and cancellation.

// Sends a head and half a body, says so on `started`, then waits for the
// client to go: `closed` gets whether it saw the client close.
auto stall_mid_body(Chan<int> started, Chan<bool> closed) {
  return [started, closed](net::Conn& conn, int) -> Task<void> {
    std::string pending;
    if ((co_await read_request(conn, pending)).empty()) co_return;
    (void)co_await send(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    co_await started.send(1);
    co_await closed.send(co_await closed_by_peer(conn));
  };
}

TEST(HttpClient, ContextDeadlineEndsAStalledResponseAndClosesItsConnection) {
  run_verdict([]() -> Task<Verdict> {
    Chan<int> started = make_chan<int>(1);
    Chan<bool> closed = make_chan<bool>(1);
    auto server = co_await start_scripted(stall_mid_body(started, closed));
    if (!server.ok()) co_return server.status().ToString();
    Client client;
    auto [ctx, cancel] = with_timeout(background(), 100ms);
    auto result = co_await client.get(server->url("/"), ctx);
    cancel();
    if (result.ok() || !net::is_timeout(result.status()) ||
        result.status().code() != absl::StatusCode::kDeadlineExceeded) {
      co_return "not a timeout: " + describe(result);
    }
    (void)co_await started.recv();
    if (!(co_await closed.recv()).value_or(false)) co_return "connection left open";
    if (client.idle_connections() != 0) co_return "pooled a timed-out connection";
    co_return "";
  });
}

TEST(HttpClient, CancelEndsARequestInFlightAndClosesItsConnection) {
  run_verdict([]() -> Task<Verdict> {
    Chan<int> started = make_chan<int>(1);
    Chan<bool> closed = make_chan<bool>(1);
    auto server = co_await start_scripted(stall_mid_body(started, closed));
    if (!server.ok()) co_return server.status().ToString();
    auto client = std::make_shared<Client>();
    auto [ctx, cancel] = with_cancel(background());
    auto request = goro::spawn(
        [](std::shared_ptr<Client> client, std::string url,
           Context ctx) -> Task<absl::StatusOr<Response>> {
          co_return co_await client->get(std::move(url), std::move(ctx));
        },
        client, server->url("/"), ctx);
    // The response is half sent: the request is in flight, reading.
    (void)co_await started.recv();
    cancel();
    auto result = co_await std::move(request);
    if (result.ok() || result.status().code() != absl::StatusCode::kCancelled) {
      co_return "not cancelled: " + describe(result);
    }
    if (!(co_await closed.recv()).value_or(false)) co_return "connection left open";
    if (client->idle_connections() != 0) co_return "pooled a cancelled connection";
    // A context cancelled before the request: nothing is dialed.
    auto late = co_await client->get(server->url("/"), ctx);
    if (late.status().code() != absl::StatusCode::kCancelled || server->accepted() != 1) {
      co_return "already cancelled: " + describe(late);
    }
    co_return "";
  });
}

// ---------------------------------------------------------------------
// Errors before any exchange.

TEST(HttpClient, RejectsHttpsAndInvalidRequestsBeforeDialing) {
  run_verdict([]() -> Task<Verdict> {
    Client client;
    auto https = co_await client.get("https://127.0.0.1:1/");
    if (https.status().code() != absl::StatusCode::kInvalidArgument ||
        https.status().message().find("https is not supported") == std::string_view::npos) {
      co_return "https: " + describe(https);
    }
    const char* bad_urls[] = {
        "ftp://127.0.0.1/", "127.0.0.1:80/",         "http://",
        "http://:80/",      "http://127.0.0.1:0/",   "http://127.0.0.1:99999/",
        "http://u@host/",   "http://127.0.0.1/a b",  "http://[::1/",
        "http://host:8x/",  "http://127.0.0.1/\x01",
    };
    for (const char* url : bad_urls) {
      auto result = co_await client.get(url);
      if (result.status().code() != absl::StatusCode::kInvalidArgument) {
        co_return std::string(url) + ": " + describe(result);
      }
    }
    const char* bad_fields[][2] = {
        {"X-Injected", "a\r\nEvil: yes"}, {"Bad Name", "v"}, {"", "v"}, {"Content-Length", "5"},
        {"transfer-encoding", "chunked"},
    };
    for (const auto& field : bad_fields) {
      auto result =
          co_await client.request("GET", "http://127.0.0.1:1/", one_field(field[0], field[1]), {});
      if (result.status().code() != absl::StatusCode::kInvalidArgument) {
        co_return std::string(field[0]) + ": " + describe(result);
      }
    }
    auto method = co_await client.request("GE T", "http://127.0.0.1:1/", {}, {});
    if (method.status().code() != absl::StatusCode::kInvalidArgument) {
      co_return "method: " + describe(method);
    }
    co_return "";
  });
}

TEST(HttpClient, DialErrorsKeepTheirErrno) {
  run_verdict([]() -> Task<Verdict> {
    // A port nobody listens on: listen, note the port, close.
    std::string address;
    {
      auto listener = co_await net::listen("tcp", "127.0.0.1:0");
      if (!listener.ok()) co_return listener.status().ToString();
      address = listener->addr().to_string();
    }
    Client client;
    auto result = co_await client.get("http://" + address + "/");
    if (!net::is_refused(result.status())) co_return "not refused: " + describe(result);
    if (result.status().message().find("GET http://" + address) == std::string_view::npos) {
      co_return "error does not name the request: " + result.status().ToString();
    }
    co_return "";
  });
}

}  // namespace
}  // namespace goro::http
