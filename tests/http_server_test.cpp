// tests/http_server_test.cpp: goro::http::Server over loopback, driven by
// raw requests written with a net::Conn client, on both poller backends
// (run the binary again with GORO_POLLER=epoll): keep-alive, pipelining
// answered in order, each framing error with its status and the
// connection closed, the limits (431, 413), HEAD, routing (404, 405 with
// Allow, {param}), a throwing handler, chunked responses, Expect:
// 100-continue, max_connections, a slowloris client cut off by
// read_header_timeout, a stalled body cut off by read_timeout, responses
// larger than the socket buffers, and a client that does not read cut off
// by write_timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

#include "http_test_util.hpp"
#include "test_util.hpp"

namespace goro::http {
namespace {

using namespace std::chrono_literals;

// Handlers of /slow and /hang that have started (shutdown tests).
std::atomic<int> slow_started{0};
std::atomic<int> hang_started{0};
// Handlers of /enormous that have started (write_timeout test).
std::atomic<int> enormous_started{0};

// A body large enough for reply_static to send it in place (not copied).
const std::string kLargeStaticBody(4096, 's');

// A copied body larger than the loopback socket buffers hold, so that the
// flush that sends it sends part at once and waits for the rest.
const std::string& huge_body() {
  static const std::string body = [] {
    std::string bytes(8 << 20, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i * 7 % 26);
    return bytes;
  }();
  return body;
}

Router test_router() {
  Router router;
  router.get("/plaintext", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply_static(200, "text/plain", "Hello, World!");
    co_return;
  });
  router.get("/large", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply_static(200, "text/plain", kLargeStaticBody);
    co_return;
  });
  router.get("/huge", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(200, "application/octet-stream", huge_body());
    co_return;
  });
  // More than any loopback socket buffers hold: a client that does not
  // read leaves most of it in the server's output buffer.
  router.get("/enormous", [](Request&, ResponseWriter& w) -> Task<void> {
    enormous_started.fetch_add(1);
    static const std::string body(64 << 20, 'e');
    w.reply_static(200, "application/octet-stream", body);
    co_return;
  });
  router.get("/slow", [](Request&, ResponseWriter& w) -> Task<void> {
    slow_started.fetch_add(1);
    co_await goro::sleep(200ms);
    w.reply(200, "text/plain", "slow");
  });
  router.get("/hang", [](Request&, ResponseWriter&) -> Task<void> {
    hang_started.fetch_add(1);
    co_await goro::sleep(std::chrono::hours(1));
  });
  router.get("/json", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply_json(200, R"({"message":"Hello, World!"})");
    co_return;
  });
  router.get("/users/{id}", [](Request& r, ResponseWriter& w) -> Task<void> {
    w.reply(200, "text/plain", r.param("id"));
    co_return;
  });
  router.post("/echo", [](Request& r, ResponseWriter& w) -> Task<void> {
    std::string body;
    if (!(co_await r.read_all(body)).ok()) co_return;  // the server answers for the body
    w.reply(200, "text/plain", body);
  });
  router.get("/throw", [](Request&, ResponseWriter&) -> Task<void> {
    throw std::runtime_error("handler failed");
    co_return;
  });
  router.get("/stream", [](Request&, ResponseWriter& w) -> Task<void> {
    const std::string part(10000, 'x');
    for (int i = 0; i < 3; ++i) {
      if (!(co_await w.write(part)).ok()) co_return;
    }
  });
  // Declares 5 body bytes, tries 11 (refused whole), then writes 2.
  router.get("/declared-length", [](Request&, ResponseWriter& w) -> Task<void> {
    w.add_header("Content-Length", "5");
    const bool refused = (co_await w.write("hello world")).code() == absl::StatusCode::kOutOfRange;
    (void)co_await w.write(refused ? "hi" : "not refused");
  });
  // A 304 whose head goes out before the handler writes body bytes.
  router.get("/not-modified-stream", [](Request&, ResponseWriter& w) -> Task<void> {
    w.set_status(304);
    (void)co_await w.flush();
    (void)co_await w.write("stale body");
  });
  // Reads the body (for GET and HEAD) before answering.
  router.get("/read-all", [](Request& r, ResponseWriter& w) -> Task<void> {
    std::string body;
    if (!(co_await r.read_all(body)).ok()) co_return;  // the server answers for the body
    w.reply(200, "text/plain", body);
  });
  // Statuses that are no final response.
  router.get("/status-7", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(7, "text/plain", "seven");
    co_return;
  });
  router.get("/status-150", [](Request&, ResponseWriter& w) -> Task<void> {
    w.set_status(150);
    (void)co_await w.write("interim?");
  });
  return router;
}

// Starts a Server with test_router() and `options` on a loopback port,
// then runs `body(address)` and reports its verdict.
template <class Body>
void with_server(ServerOptions options, Body body) {
  with_http_server(test_router(), options, std::move(body));
}

TEST(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    for (int i = 0; i < 5; ++i) {
      if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
      const RawResponse r = co_await client->response();
      if (r.status != 200 || r.body != "Hello, World!" ||
          !has_header(r, "Content-Type: text/plain") ||
          r.head.find("\r\nDate: ") == std::string::npos) {
        co_return "request " + std::to_string(i) + ": " + describe(r);
      }
    }
    const std::string json = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
    if (!co_await client->send(json)) co_return "send";
    const RawResponse r = co_await client->response();
    if (r.body != R"({"message":"Hello, World!"})" ||
        !has_header(r, "Content-Type: application/json")) {
      co_return "json: " + describe(r);
    }
    co_return "";
  });
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    std::string requests;
    for (int i = 0; i < 16; ++i) {
      requests += "GET /users/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
    }
    if (!co_await client->send(requests)) co_return "send";
    for (int i = 0; i < 16; ++i) {
      const RawResponse r = co_await client->response();
      if (r.status != 200 || r.body != std::to_string(i)) {
        co_return "response " + std::to_string(i) + ": " + describe(r);
      }
    }
    co_return "";
  });
}

TEST(HttpServer, ResponsesLargerThanTheSocketBuffersArriveWholeAndInOrder) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    const std::string requests =
        "GET /huge HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /huge HTTP/1.1\r\nHost: t\r\n\r\n";
    if (!co_await client->send(requests)) co_return "send";
    for (int i = 0; i < 3; ++i) {
      const RawResponse r = co_await client->response();
      const bool huge = i != 1;
      if (r.status != 200 || (huge ? r.body != huge_body() : r.body != "Hello, World!")) {
        co_return "response " + std::to_string(i) + ": status " + std::to_string(r.status) +
            ", body of " + std::to_string(r.body.size()) + " bytes";
      }
    }
    co_return "";
  });
}

TEST(HttpServer, StaticBodiesInterleaveWithCopiedOnesWhenPipelined) {
  // 40 requests alternating a large static body (written in place, up to
  // the per-flush limit of in-place pieces, copied past it) and a copied one.
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    std::string requests;
    for (int i = 0; i < 20; ++i) {
      requests += "GET /large HTTP/1.1\r\nHost: t\r\n\r\n";
      requests += "GET /users/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
    }
    if (!co_await client->send(requests)) co_return "send";
    for (int i = 0; i < 20; ++i) {
      const RawResponse large = co_await client->response();
      if (large.status != 200 || large.body != kLargeStaticBody) {
        co_return "large " + std::to_string(i) + ": " + describe(large);
      }
      const RawResponse small = co_await client->response();
      if (small.body != std::to_string(i)) co_return "small: " + describe(small);
    }
    co_return "";
  });
}

struct Refused {
  const char* name;
  std::string request;
  int status;  // 0: closed without an answer
};

TEST(HttpServer, FramingErrorsAreAnsweredAndTheConnectionClosed) {
  const std::vector<Refused> cases = {
      {"content-length with chunked",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"duplicate content-length",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
      {"malformed content-length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\nx",
       400},
      {"invalid chunk size",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n",
       400},
      {"obs-fold", "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n", 400},
      {"bare CR", "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-A: b\rc\r\n\r\n", 400},
      {"space before colon", "GET /plaintext HTTP/1.1\r\nHost : t\r\n\r\n", 400},
      {"HTTP/1.1 without Host", "GET /plaintext HTTP/1.1\r\n\r\n", 400},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0},
      {"head over 8 KiB",
       "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n", 431},
      {"content-length over max_body_bytes",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413},
      {"chunked body over max_body_bytes",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
           std::string("800\r\n") + std::string(0x800, 'x') + "\r\n0\r\n\r\n",
       413},
  };
  with_server({.max_body_bytes = 1024}, [&cases](std::string address) -> Task<Verdict> {
    for (const Refused& c : cases) {
      auto client = co_await connect(address);
      if (!client.ok()) co_return client.status().ToString();
      if (!co_await client->send(c.request)) co_return std::string(c.name) + ": send";
      if (c.status != 0) {
        const RawResponse r = co_await client->response();
        if (r.status != c.status || !has_header(r, "Connection: close")) {
          co_return std::string(c.name) + ": " + describe(r);
        }
      }
      if (!client->buffer.empty() || !co_await client->closed_by_server()) {
        co_return std::string(c.name) + ": the connection stayed open";
      }
    }
    co_return "";
  });
}

TEST(HttpServer, HeadGetsTheHeadersOfGetAndNoBody) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /users/7 HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse head = co_await client->response(/*head_only=*/true);
    if (head.status != 200 || !has_header(head, "Content-Length: 13")) {
      co_return "HEAD: " + describe(head);
    }
    // No body bytes: the next thing on the wire is the GET's answer.
    const RawResponse get = co_await client->response();
    if (get.status != 200 || get.body != "7") co_return "GET after HEAD: " + describe(get);
    co_return "";
  });
}

TEST(HttpServer, RouterAnswers404And405WithAllow) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
                               "DELETE /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /users/ HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse missing = co_await client->response();
    if (missing.status != 404) co_return "404: " + describe(missing);
    const RawResponse wrong = co_await client->response();
    if (wrong.status != 405 || !has_header(wrong, "Allow: GET, HEAD")) {
      co_return "405: " + describe(wrong);
    }
    const RawResponse empty_param = co_await client->response();
    if (empty_param.status != 404) co_return "empty {id}: " + describe(empty_param);
    co_return "";
  });
}

TEST(HttpServer, RouterAnswersTheAsteriskFormAsGoDoes) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET * HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse options = co_await client->response();
    if (options.status != 200 || !options.body.empty() ||
        !has_header(options, "Content-Length: 0")) {
      co_return "OPTIONS *: " + describe(options);
    }
    const RawResponse get = co_await client->response();
    if (get.status != 400 || !has_header(get, "Connection: close")) {
      co_return "GET *: " + describe(get);
    }
    // The connection closed after the 400: the third request is never read.
    if (!co_await client->closed_by_server()) co_return "served on after GET *";
    co_return "";
  });
}

TEST(HttpServer, ThrowingHandlerGets500AndTheConnectionServesOn) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /throw HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    const RawResponse failed = co_await client->response();
    if (failed.status != 500) co_return "throw: " + describe(failed);
    if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    const RawResponse next = co_await client->response();
    if (next.status != 200 || next.body != "Hello, World!") co_return "next: " + describe(next);
    co_return "";
  });
}

TEST(HttpServer, BodiesStreamInBothFramingsAndUnknownLengthsGoChunked) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                               "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                               "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                               "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse fixed = co_await client->response();
    if (fixed.body != "hello") co_return "content-length: " + describe(fixed);
    const RawResponse chunked = co_await client->response();
    if (chunked.body != "abcde") co_return "chunked: " + describe(chunked);
    const RawResponse stream = co_await client->response();
    if (!has_header(stream, "Transfer-Encoding: chunked") ||
        stream.body != std::string(30000, 'x')) {
      co_return "stream: " + describe(stream);
    }
    co_return "";
  });
}

TEST(HttpServer, ExpectContinueIsAnsweredWhenTheHandlerReadsTheBody) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                               "Expect: 100-continue\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse go_on = co_await client->response();
    if (go_on.status != 100) co_return "100: " + describe(go_on);
    if (!co_await client->send("hello")) co_return "send body";
    const RawResponse echoed = co_await client->response();
    if (echoed.status != 200 || echoed.body != "hello") co_return "echo: " + describe(echoed);
    co_return "";
  });
}

TEST(HttpServer, ConnectionCloseRequestIsAnsweredThenClosed) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse r = co_await client->response();
    if (r.status != 200 || !has_header(r, "Connection: close")) co_return describe(r);
    if (!co_await client->closed_by_server()) co_return "still open";
    co_return "";
  });
}

TEST(HttpServer, ConnectionsBeyondMaxConnectionsGet503) {
  with_server({.max_connections = 1}, [](std::string address) -> Task<Verdict> {
    auto first = co_await connect(address);
    if (!first.ok()) co_return first.status().ToString();
    // Answered: the server has accepted and counted it.
    if (!co_await first->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    if ((co_await first->response()).status != 200) co_return "first connection not served";
    auto second = co_await connect(address);
    if (!second.ok()) co_return second.status().ToString();
    const RawResponse busy = co_await second->response();
    if (busy.status != 503) co_return "second: " + describe(busy);
    if (!co_await second->closed_by_server()) co_return "second stayed open";
    co_return "";
  });
}

// Sends an unfinished head's first line, then a header line every 20 ms,
// never ending the head: "" once the server cut the client off (end of
// stream or a reset). The loop's bound (2000 lines, 40 s) is far beyond
// the read_header_timeout of the tests below.
Task<Verdict> trickle_a_head(RawClient* client) {
  if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n")) co_return "send";
  for (int i = 0; i < 2000; ++i) {
    if (!co_await client->send("X-A: b\r\n")) co_return "";  // the server closed
    char byte;
    client->conn.set_read_deadline(Clock::now() + 20ms);
    auto n = co_await client->conn.read(&byte, 1);
    if (n.ok() && *n == 0) co_return "";                        // end of stream
    if (!n.ok() && !net::is_timeout(n.status())) co_return "";  // reset
    if (n.ok()) co_return "the server answered an unfinished head";
  }
  co_return "the trickling client was never cut off";
}

TEST(HttpServer, ReadTimeoutEndsABodyThatStalls) {
  // Only read_timeout, counted from the request's start, can end the wait
  // for the rest of the body: the handler's read fails, and the
  // connection, whose next request cannot be found, closes.
  with_server({.read_timeout = 300ms}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")) {
      co_return "send";
    }
    std::string answer;
    char chunk[4096];
    client->conn.set_read_deadline(Clock::now() + 10s);
    for (;;) {
      auto n = co_await client->conn.read(chunk, sizeof chunk);
      if (!n.ok() && net::is_timeout(n.status())) co_return "the stalled body was never cut off";
      if (!n.ok() || *n == 0) break;  // reset or end of stream
      answer.append(chunk, *n);
    }
    if (answer.find("abc") != std::string::npos) co_return "the partial body was echoed: " + answer;
    co_return "";
  });
}

TEST(HttpServer, WriteTimeoutEndsAResponseTheClientDoesNotRead) {
  // Only the server's write_timeout can end the write: the client reads
  // nothing until the server has dropped the connection.
  with_server({.write_timeout = 200ms},
              [](std::string address, std::shared_ptr<Server> server) -> Task<Verdict> {
                const int started_before = enormous_started.load();
                auto stalled = co_await connect(address);
                if (!stalled.ok()) co_return stalled.status().ToString();
                if (!co_await stalled->send("GET /enormous HTTP/1.1\r\nHost: t\r\n\r\n")) {
                  co_return "send";
                }
                // Conditions polled each millisecond: the handler has run (its
                // connection is counted), then the connection is gone.
                while (enormous_started.load() == started_before) co_await goro::sleep(1ms);
                while (server->open_connections() != 0) co_await goro::sleep(1ms);
                // What the kernel held arrives, then the end: never the whole
                // body (reading stops there, as a connection kept open would
                // wait for the next request).
                std::size_t received = 0;
                char chunk[1 << 16];
                while (received < (64u << 20)) {
                  auto n = co_await stalled->conn.read(chunk, sizeof chunk);
                  if (!n.ok() || *n == 0) break;
                  received += *n;
                }
                if (received >= (64u << 20)) co_return "the whole body arrived";
                // The server serves on.
                auto next = co_await connect(address);
                if (!next.ok()) co_return next.status().ToString();
                if (!co_await next->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
                  co_return "send after";
                }
                const RawResponse r = co_await next->response();
                if (r.status != 200 || r.body != "Hello, World!") co_return "after: " + describe(r);
                co_return "";
              });
}

TEST(HttpServer, SlowlorisIsCutOffByReadHeaderTimeout) {
  // Only the server's read_header_timeout can end the trickle.
  with_server({.read_header_timeout = 300ms}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    co_return co_await trickle_a_head(&*client);
  });
}

TEST(HttpServer, SlowlorisAfterAServedRequestIsCutOffToo) {
  // As above on a keep-alive connection's second request, whose head's
  // start the server takes from the clock, not from the accept; the idle
  // timeout (an hour) cannot end it.
  with_server({.read_header_timeout = 300ms, .idle_timeout = 1h},
              [](std::string address) -> Task<Verdict> {
                auto client = co_await connect(address);
                if (!client.ok()) co_return client.status().ToString();
                if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
                  co_return "send";
                }
                if ((co_await client->response()).status != 200) co_return "not served";
                co_return co_await trickle_a_head(&*client);
              });
}

TEST(HttpServer, ALaterHeadSplitAcrossReadsIsTimedFromItsOwnStart) {
  // The second request's head comes in two writes 50 ms apart: it is
  // served, so its read_header_timeout (10 s) runs from its own start,
  // not from a time never read or from long ago.
  with_server({.read_header_timeout = 10s, .idle_timeout = 1h},
              [](std::string address) -> Task<Verdict> {
                auto client = co_await connect(address);
                if (!client.ok()) co_return client.status().ToString();
                for (int i = 0; i < 2; ++i) {
                  if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n")) {
                    co_return "send";
                  }
                  co_await goro::sleep(50ms);
                  if (!co_await client->send("X-A: b\r\n\r\n")) co_return "send the rest";
                  const RawResponse r = co_await client->response();
                  if (r.status != 200)
                    co_return "request " + std::to_string(i) + ": " + describe(r);
                }
                co_return "";
              });
}

TEST(HttpServer, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  // Only the server's idle_timeout can close it: the client waits 10 s.
  with_server({.idle_timeout = 200ms}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    if ((co_await client->response()).status != 200) co_return "not served";
    if (!co_await client->closed_by_server()) co_return "the idle connection stayed open";
    co_return "";
  });
}

TEST(HttpServer, Http10ClosesUnlessItAsksForKeepAlive) {
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto kept = co_await connect(address);
    if (!kept.ok()) co_return kept.status().ToString();
    for (int i = 0; i < 2; ++i) {
      if (!co_await kept->send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")) {
        co_return "send";
      }
      const RawResponse r = co_await kept->response();
      if (r.status != 200 || !has_header(r, "Connection: keep-alive")) {
        co_return "keep-alive " + std::to_string(i) + ": " + describe(r);
      }
    }
    auto closed = co_await connect(address);
    if (!closed.ok()) co_return closed.status().ToString();
    if (!co_await closed->send("GET /plaintext HTTP/1.0\r\n\r\n")) co_return "send";
    const RawResponse r = co_await closed->response();
    if (r.status != 200 || r.body != "Hello, World!" || !has_header(r, "Connection: close")) {
      co_return "plain HTTP/1.0: " + describe(r);
    }
    if (!co_await closed->closed_by_server()) co_return "HTTP/1.0 connection stayed open";
    co_return "";
  });
}

// Waits (10 s at most) until `counter` is non-zero.
Task<bool> started(const std::atomic<int>& counter) {
  for (int i = 0; i < 10000 && counter.load() == 0; ++i) co_await goro::sleep(1ms);
  co_return counter.load() != 0;
}

TEST(HttpServer, ShutdownClosesIdleConnectionsAndLetsInFlightRequestsFinish) {
  with_server({}, [](std::string address, std::shared_ptr<Server> server) -> Task<Verdict> {
    auto idle = co_await connect(address);
    auto busy = co_await connect(address);
    if (!idle.ok() || !busy.ok()) co_return "connect";
    if (!co_await idle->send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    if ((co_await idle->response()).status != 200) co_return "idle connection not served";
    slow_started.store(0);
    if (!co_await busy->send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    if (!co_await started(slow_started)) co_return "the slow handler never started";
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 30s);
    const absl::Status status = co_await server->shutdown(ctx);
    if (!status.ok()) co_return "shutdown: " + status.ToString();
    if (server->open_connections() != 0) co_return "connections left after shutdown";
    const RawResponse slow = co_await busy->response();
    if (slow.status != 200 || slow.body != "slow" || !has_header(slow, "Connection: close")) {
      co_return "in-flight request: " + describe(slow);
    }
    if (!co_await busy->closed_by_server()) co_return "busy connection stayed open";
    if (!co_await idle->closed_by_server()) co_return "idle connection stayed open";
    auto late = co_await net::dial("tcp", address);
    if (late.ok()) co_return "still accepting after shutdown";
    co_return "";
  });
}

TEST(HttpServer, ShutdownReturnsAtItsDeadlineDespiteAHandlerThatNeverReturns) {
  with_server({}, [](std::string address, std::shared_ptr<Server> server) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    hang_started.store(0);
    if (!co_await client->send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")) co_return "send";
    if (!co_await started(hang_started)) co_return "the handler never started";
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 200ms);
    const absl::Status status = co_await server->shutdown(ctx);
    if (status.code() != absl::StatusCode::kDeadlineExceeded) {
      co_return "shutdown: " + status.ToString();
    }
    // Its connection was closed at the deadline.
    if (!co_await client->closed_by_server()) co_return "the connection stayed open";
    co_return "";
  });
}

TEST(HttpServer, DeclaredContentLengthIsKeptToAndAShortBodyCloses) {
  // The over-long write is refused, and the response that ends short of
  // its length says Connection: close and is the last on the connection.
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /declared-length HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    while (co_await client->fill()) {
    }
    const std::size_t head_end = client->buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) co_return "no response: " + client->buffer;
    const std::string head = client->buffer.substr(0, head_end + 2);
    if (head.find("\r\nContent-Length: 5\r\n") == std::string::npos ||
        head.find("\r\nConnection: close\r\n") == std::string::npos) {
      co_return "head: " + head;
    }
    if (client->buffer.substr(head_end + 4) != "hi") co_return "output: " + client->buffer;
    co_return "";
  });
}

TEST(HttpServer, NoBodyGoesOutForAStatusWithoutOne) {
  // 304 with its head flushed before the handler writes: the bytes are
  // dropped, and the pipelined request's answer follows the head at once.
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /not-modified-stream HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse not_modified = co_await client->response();
    if (not_modified.status != 304) co_return "first: " + describe(not_modified);
    const RawResponse next = co_await client->response();
    if (next.status != 200 || next.body != "Hello, World!") co_return "second: " + describe(next);
    co_return "";
  });
}

TEST(HttpServer, StatusOutside200To999IsAnswered500WithTheBody) {
  // The head and the body agree (500, the body given), for reply and for
  // write, and the connection serves on.
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("GET /status-7 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /status-150 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")) {
      co_return "send";
    }
    const RawResponse seven = co_await client->response();
    if (seven.status != 500 || seven.body != "seven") co_return "status 7: " + describe(seven);
    const RawResponse interim = co_await client->response();
    if (interim.status != 500 || interim.body != "interim?") {
      co_return "status 150: " + describe(interim);
    }
    const RawResponse next = co_await client->response();
    if (next.status != 200 || next.body != "Hello, World!") co_return "third: " + describe(next);
    co_return "";
  });
}

TEST(HttpServer, RefusedBodyOfAHeadRequestIsAnsweredWithoutABody) {
  // A HEAD request whose chunked body is malformed: 400, closing, and no
  // content, as no answer to HEAD has.
  with_server({}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    if (!co_await client->send("HEAD /read-all HTTP/1.1\r\nHost: t\r\n"
                               "Transfer-Encoding: chunked\r\n\r\nzz\r\n")) {
      co_return "send";
    }
    while (co_await client->fill()) {
    }
    const std::size_t head_end = client->buffer.find("\r\n\r\n");
    if (!client->buffer.starts_with("HTTP/1.1 400 ") || head_end == std::string::npos ||
        client->buffer.find("\r\nConnection: close\r\n") == std::string::npos ||
        head_end + 4 != client->buffer.size()) {
      co_return "output: " + client->buffer;
    }
    co_return "";
  });
}

}  // namespace
}  // namespace goro::http
