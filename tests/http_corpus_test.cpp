// tests/http_corpus_test.cpp: a corpus of tricky raw requests run through a
// live goro::http::Server over loopback, the way an independent request
// corpus and Go's net/http server tests probe a server: for each, the
// exact status codes of the responses, and whether the server then closes
// the connection (read to end of stream, bounded) or keeps it open (a
// following valid request is answered). Then CONNECT and Upgrade, served
// as normal requests or taken over by the handler (ResponseWriter::hijack).
// Run the binary again with GORO_POLLER=epoll for the other poller.
//
// Where RFC 9112 leaves a choice, the corpus pins goro's (documented in
// goro/http/server.hpp): line endings must be CRLF (llhttp strict mode; a
// bare LF is 400, where Go accepts it), a repeated Content-Length is 400
// even when the copies agree, a method llhttp does not know (lowercase
// included) is 400, and the rest follows Go: a Transfer-Encoding other
// than exactly "chunked" is 501, an HTTP/1.x minor version other than 0
// and 1 is served as HTTP/1.1, a major version other than 1 is 505, an
// expectation other than 100-continue is 417.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

#include "http_test_util.hpp"

namespace goro::http {
namespace {

using namespace std::chrono_literals;

Router corpus_router() {
  Router router;
  router.get("/plaintext", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply_static(200, "text/plain", "Hello, World!");
    co_return;
  });
  router.post("/echo", [](Request& r, ResponseWriter& w) -> Task<void> {
    std::string body;
    if (!(co_await r.read_all(body)).ok()) co_return;  // the server answers for the body
    w.reply(200, "text/plain", body);
  });
  router.get("/target", [](Request& r, ResponseWriter& w) -> Task<void> {
    w.reply(200, "text/plain", std::string(r.target()) + " " + std::string(r.path()));
    co_return;
  });
  router.handle("OPTIONS", "*", [](Request& r, ResponseWriter& w) -> Task<void> {
    w.add_header("Allow", "GET, HEAD, POST, OPTIONS");
    w.reply(200, "text/plain", r.target());
    co_return;
  });
  router.handle("CONNECT", "open:443", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(200, "text/plain", "not a tunnel");
    co_return;
  });
  router.get("/throw", [](Request&, ResponseWriter&) -> Task<void> {
    throw std::runtime_error("handler failed");
    co_return;
  });
  router.get("/no-content", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(204, "text/plain", "a body a 204 must not carry");
    co_return;
  });
  router.get("/not-modified", [](Request&, ResponseWriter& w) -> Task<void> {
    w.reply(304, "text/plain", "a body a 304 must not carry");
    co_return;
  });
  return router;
}

constexpr int kMaxBody = 1024;

// What the server does with the connection after the probe's responses.
enum class After { kOpen, kClosed };

struct Probe {
  const char* name;
  std::string request;
  std::vector<int> statuses;  // the responses, in order; none: closed without an answer
  After after;
  // Checks the responses beyond their status codes: "" or what is wrong.
  std::function<std::string(const std::vector<RawResponse>&)> check = {};
  bool head = false;  // the responses answer HEAD requests (no body follows)
};

std::string post(std::string_view headers, std::string_view body) {
  return "POST /echo HTTP/1.1\r\nHost: t\r\n" + std::string(headers) + "\r\n" + std::string(body);
}

std::string get(std::string_view target, std::string_view headers = "",
                std::string_view version = "HTTP/1.1") {
  return "GET " + std::string(target) + " " + std::string(version) + "\r\nHost: t\r\n" +
         std::string(headers) + "\r\n";
}

// Expects response `index`'s body to be `body`.
std::function<std::string(const std::vector<RawResponse>&)> body_is(std::size_t index,
                                                                    std::string body) {
  return [index, body](const std::vector<RawResponse>& responses) -> std::string {
    if (responses[index].body == body) return "";
    return "response " + std::to_string(index) + ": " + describe(responses[index]);
  };
}

// Expects every response's head to hold `line`, or not (`present`).
std::function<std::string(const std::vector<RawResponse>&)> heads_have(std::string line,
                                                                       bool present = true) {
  return [line, present](const std::vector<RawResponse>& responses) -> std::string {
    for (const RawResponse& r : responses) {
      if (has_header(r, line) != present) return describe(r);
    }
    return "";
  };
}

std::vector<Probe> corpus() {
  const std::string chunked = "Transfer-Encoding: chunked\r\n";
  std::string many_headers;
  for (int i = 0; i < 101; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  return {
      // Request smuggling: two framings, or one framing given twice.
      {"CL then TE", post("Content-Length: 5\r\n" + chunked, "0\r\n\r\n"), {400}, After::kClosed},
      {"TE then CL", post(chunked + "Content-Length: 5\r\n", "0\r\n\r\n"), {400}, After::kClosed},
      {"duplicate CL differing",
       post("Content-Length: 1\r\nContent-Length: 2\r\n", "xy"),
       {400},
       After::kClosed},
      {"duplicate CL equal",
       post("Content-Length: 1\r\nContent-Length: 1\r\n", "x"),
       {400},
       After::kClosed},
      {"CL list", post("Content-Length: 1, 1\r\n", "x"), {400}, After::kClosed},
      {"CL with plus sign", post("Content-Length: +1\r\n", "x"), {400}, After::kClosed},
      {"CL negative", post("Content-Length: -1\r\n", "x"), {400}, After::kClosed},
      {"CL hex", post("Content-Length: 0x1\r\n", "x"), {400}, After::kClosed},
      {"CL with inner space", post("Content-Length: 1 1\r\n", "x"), {400}, After::kClosed},
      {"CL overflowing 64 bits",
       post("Content-Length: 99999999999999999999999\r\n", "x"),
       {400},
       After::kClosed},
      {"CL with leading whitespace",
       post("Content-Length: \t 3\r\n", "abc"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"CL with a trailing space",
       post("Content-Length: 3 \r\n", "abc"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"CL with a trailing tab", post("Content-Length: 3\t\r\n", "abc"), {400}, After::kClosed},
      {"TE chunked",
       post(chunked, "3\r\nabc\r\n0\r\n\r\n"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"TE chunked in capitals",
       post("Transfer-Encoding: CHUNKED\r\n", "3\r\nabc\r\n0\r\n\r\n"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"TE chunked not last",
       post("Transfer-Encoding: chunked, gzip\r\n", "3\r\nabc\r\n0\r\n\r\n"),
       {501},
       After::kClosed},
      {"TE gzip then chunked",
       post("Transfer-Encoding: gzip, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
       {501},
       After::kClosed},
      {"TE unknown coding", post("Transfer-Encoding: identity\r\n", "abc"), {501}, After::kClosed},
      {"TE chunked, chunked",
       post("Transfer-Encoding: chunked, chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
       {501},
       After::kClosed},
      {"TE chunked twice", post(chunked + chunked, "3\r\nabc\r\n0\r\n\r\n"), {501}, After::kClosed},
      // Chunked bodies.
      {"chunk size not hex", post(chunked, "zz\r\nabc\r\n0\r\n\r\n"), {400}, After::kClosed},
      {"chunk size overflowing 64 bits",
       post(chunked, "10000000000000000\r\nabc\r\n0\r\n\r\n"),
       {400},
       After::kClosed},
      {"chunk size with plus sign", post(chunked, "+3\r\nabc\r\n0\r\n\r\n"), {400}, After::kClosed},
      {"chunk extension",
       post(chunked, "3;name=value\r\nabc\r\n0;last\r\n\r\n"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"chunk extension with a control byte",
       post(chunked, "3;n\x01\r\nabc\r\n0\r\n\r\n"),
       {400},
       After::kClosed},
      {"chunk data without its CRLF", post(chunked, "3\r\nabcX0\r\n\r\n"), {400}, After::kClosed},
      {"chunk size line ending in bare LF",
       post(chunked, "3\nabc\r\n0\r\n\r\n"),
       {400},
       After::kClosed},
      {"chunked trailer fields",
       post(chunked, "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n"),
       {200},
       After::kOpen,
       body_is(0, "abc")},
      // Header block syntax.
      {"obs-fold", get("/plaintext", "X-A: b\r\n c\r\n"), {400}, After::kClosed},
      {"bare CR in a value", get("/plaintext", "X-A: b\rc\r\n"), {400}, After::kClosed},
      {"bare CR ending a line", "GET /plaintext HTTP/1.1\rHost: t\r\n\r\n", {400}, After::kClosed},
      {"bare LF line endings", "GET /plaintext HTTP/1.1\nHost: t\n\n", {400}, After::kClosed},
      {"space before colon", "GET /plaintext HTTP/1.1\r\nHost : t\r\n\r\n", {400}, After::kClosed},
      {"tab before colon", get("/plaintext", "X-A\t: b\r\n"), {400}, After::kClosed},
      {"header name with a parenthesis", get("/plaintext", "X(A): b\r\n"), {400}, After::kClosed},
      {"header name with a space", get("/plaintext", "X A: b\r\n"), {400}, After::kClosed},
      {"empty header name", get("/plaintext", ": b\r\n"), {400}, After::kClosed},
      {"NUL in a header value",
       get("/plaintext", std::string("X-A: b\0c\r\n", 10)),
       {400},
       After::kClosed},
      {"obs-text in a header value",
       get("/plaintext", "X-A: caf\xc3\xa9\r\n"),
       {200},
       After::kOpen},
      // Host.
      {"HTTP/1.1 without Host", "GET /plaintext HTTP/1.1\r\n\r\n", {400}, After::kClosed},
      {"two Host fields", get("/plaintext", "Host: u\r\n"), {400}, After::kClosed},
      {"empty Host", "GET /plaintext HTTP/1.1\r\nHost:\r\n\r\n", {200}, After::kOpen},
      {"Host with a port and an IPv6 literal",
       "GET /plaintext HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
       {200},
       After::kOpen},
      {"Host with a space", "GET /plaintext HTTP/1.1\r\nHost: a b\r\n\r\n", {400}, After::kClosed},
      {"Host with a slash", "GET /plaintext HTTP/1.1\r\nHost: a/b\r\n\r\n", {400}, After::kClosed},
      {"HTTP/1.0 without Host",
       "GET /plaintext HTTP/1.0\r\n\r\n",
       {200},
       After::kClosed,
       heads_have("Connection: close")},
      {"HTTP/1.0 with Transfer-Encoding",
       "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n" + chunked + "\r\n3\r\nabc\r\n0\r\n\r\n",
       {200},
       After::kClosed,
       body_is(0, "abc")},
      {"HTTP/1.0 keep-alive",
       "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       {200},
       After::kOpen,
       heads_have("Connection: keep-alive")},
      // Request targets.
      {"absolute-form target",
       get("http://t/target?q=1"),
       {200},
       After::kOpen,
       body_is(0, "http://t/target?q=1 /target")},
      {"absolute-form target in capitals",
       get("HTTP://T/target"),
       {200},
       After::kOpen,
       body_is(0, "HTTP://T/target /target")},
      {"asterisk-form OPTIONS",
       "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
       {200},
       After::kOpen,
       body_is(0, "*")},
      {"NUL in the target",
       std::string("GET /plain\0text HTTP/1.1\r\nHost: t\r\n\r\n", 38),
       {400},
       After::kClosed},
      {"two spaces after the method",
       "GET  /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
       {400},
       After::kClosed},
      {"empty line before the request line", "\r\n" + get("/plaintext"), {200}, After::kOpen},
      // Versions.
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {}, After::kClosed},
      {"HTTP/0.9 request line", "GET /plaintext\r\n\r\n", {400}, After::kClosed},
      {"HTTP/0.9 version", get("/plaintext", "", "HTTP/0.9"), {505}, After::kClosed},
      {"HTTP/2.0 version", get("/plaintext", "", "HTTP/2.0"), {505}, After::kClosed},
      {"HTTP/3.0 version", get("/plaintext", "", "HTTP/3.0"), {505}, After::kClosed},
      {"HTTP/1.2 version", get("/plaintext", "", "HTTP/1.2"), {200}, After::kOpen},
      {"lowercase version", get("/plaintext", "", "http/1.1"), {400}, After::kClosed},
      // Limits.
      {"request line over 8 KiB", get("/" + std::string(9000, 'x')), {431}, After::kClosed},
      {"header block over 8 KiB",
       get("/plaintext", "X-Big: " + std::string(9000, 'x') + "\r\n"),
       {431},
       After::kClosed},
      {"too many header fields", get("/plaintext", many_headers), {431}, After::kClosed},
      {"CL over max_body_bytes",
       post("Content-Length: " + std::to_string(kMaxBody + 1) + "\r\n", ""),
       {413},
       After::kClosed},
      {"chunked body over max_body_bytes",
       post(chunked, "401\r\n" + std::string(kMaxBody + 1, 'x') + "\r\n0\r\n\r\n"),
       {413},
       After::kClosed},
      // Expectations.
      {"Expect: 100-continue",
       post("Content-Length: 3\r\nExpect: 100-continue\r\n", "abc"),
       {100, 200},
       After::kOpen,
       body_is(1, "abc")},
      {"Expect: 100-continue on HTTP/1.0",
       "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n"
       "Expect: 100-continue\r\n\r\nabc",
       {200},
       After::kOpen,
       body_is(0, "abc")},
      {"unknown expectation",
       post("Content-Length: 3\r\nExpect: teapot\r\n", "abc"),
       {417},
       After::kClosed},
      // Keep-alive, pipelining, and bodies that must not be sent.
      {"pipelined requests",
       get("/target?1") + post("Content-Length: 1\r\n", "2") + get("/target?3"),
       {200, 200, 200},
       After::kOpen,
       [](const std::vector<RawResponse>& r) -> std::string {
         if (r[0].body == "/target?1 /target" && r[1].body == "2" &&
             r[2].body == "/target?3 /target") {
           return "";
         }
         return describe(r[0]) + describe(r[1]) + describe(r[2]);
       }},
      {"HEAD",
       "HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
       {200},
       After::kOpen,
       heads_have("Content-Length: 13"),
       /*head=*/true},
      {"204 has no body",
       get("/no-content"),
       {204},
       After::kOpen,
       heads_have("Content-Length: 27", /*present=*/false)},
      {"304 has no body",
       get("/not-modified"),
       {304},
       After::kOpen,
       heads_have("Content-Length: 27", /*present=*/false)},
      {"GET with a body",
       "GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
       {200},
       After::kOpen},
      {"Connection: close",
       get("/plaintext", "Connection: close\r\n"),
       {200},
       After::kClosed,
       heads_have("Connection: close")},
      {"throwing handler", get("/throw"), {500}, After::kOpen},
      // Methods.
      {"lowercase method", "get /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", {400}, After::kClosed},
      {"unknown method", "FROB /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", {400}, After::kClosed},
      {"known method not routed",
       "DELETE /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
       {405},
       After::kOpen,
       heads_have("Allow: GET, HEAD")},
      // CONNECT and Upgrade with a handler that does not take them over.
      {"CONNECT not taken over",
       "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n" + get("/plaintext"),
       {404},
       After::kClosed},
      {"CONNECT answered 2xx, not taken over",
       "CONNECT open:443 HTTP/1.1\r\nHost: open:443\r\n\r\n" + get("/plaintext"),
       {200},
       After::kClosed,
       [](const std::vector<RawResponse>& r) -> std::string {
         // No framing and no body: the tunnel would have followed.
         if (r[0].head.find("Content-Length") != std::string::npos ||
             r[0].head.find("Transfer-Encoding") != std::string::npos) {
           return describe(r[0]);
         }
         return "";
       }},
      {"CONNECT without Host",
       "CONNECT t:443 HTTP/1.1\r\n\r\n" + get("/plaintext"),
       {400},
       After::kClosed},
      {"Upgrade not taken over",
       get("/plaintext", "Connection: Upgrade\r\nUpgrade: websocket\r\n") + get("/plaintext"),
       {200, 200},
       After::kOpen},
      {"Upgrade with a body not taken over",
       post("Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 3\r\n", "abc") +
           get("/plaintext"),
       {200, 200},
       After::kOpen,
       body_is(0, "abc")},
  };
}

// Runs each probe on a connection of its own; "" or one line per failure.
Task<Verdict> run_probes(std::string address) {
  std::string failures;
  for (const Probe& probe : corpus()) {
    const std::string name = std::string(probe.name) + ": ";
    auto client = co_await connect(address);
    if (!client.ok()) co_return name + client.status().ToString();
    if (!co_await client->send(probe.request)) {
      failures += name + "send failed\n";
      continue;
    }
    std::vector<RawResponse> responses;
    std::string got;
    bool ok = true;
    for (std::size_t i = 0; i < probe.statuses.size(); ++i) {
      responses.push_back(co_await client->response(probe.head));
      got += std::to_string(responses.back().status) + " ";
      ok = ok && responses.back().status == probe.statuses[i];
    }
    if (!ok) {
      failures += name + "statuses " + got + "\n";
      continue;
    }
    if (probe.check) {
      if (std::string wrong = probe.check(responses); !wrong.empty()) {
        failures += name + wrong + "\n";
        continue;
      }
    }
    if (probe.after == After::kClosed) {
      // A 2xx to CONNECT does not announce the close (a tunnel would follow).
      const bool tunnel = probe.request.starts_with("CONNECT");
      for (const RawResponse& r : responses) {
        if (r.status >= 200 && !(tunnel && r.status / 100 == 2) &&
            !has_header(r, "Connection: close")) {
          failures += name + "no Connection: close in " + describe(r) + "\n";
        }
      }
      if (!client->buffer.empty() || !co_await client->closed_by_server()) {
        failures += name + "the connection stayed open\n";
      }
      continue;
    }
    if (!co_await client->send(get("/plaintext"))) {
      failures += name + "the connection was closed\n";
      continue;
    }
    const RawResponse next = co_await client->response();
    if (next.status != 200 || next.body != "Hello, World!") {
      failures += name + "the next request got " + describe(next) + "\n";
    }
  }
  co_return failures;
}

TEST(HttpCorpus, EachProbeGetsItsStatusesAndLeavesTheConnectionAsExpected) {
  with_http_server(corpus_router(), {.max_body_bytes = kMaxBody}, run_probes);
}

// Echoes what the client sends on a hijacked connection, starting with
// the bytes the server had already read, until the client closes.
Task<void> echo(HijackedConnection taken) {
  if (!taken.buffered.empty() &&
      !(co_await taken.conn.write(taken.buffered.data(), taken.buffered.size())).ok()) {
    co_return;
  }
  char chunk[1024];
  for (;;) {
    auto n = co_await taken.conn.read(chunk, sizeof chunk);
    if (!n.ok() || *n == 0) co_return;
    if (!(co_await taken.conn.write(chunk, *n)).ok()) co_return;
  }
}

// A CONNECT proxy that echoes its tunnel, and an "Upgrade: echo" protocol
// that does the same after its own 101; everything else is corpus_router's.
Task<void> tunnel_handler(const Router& router, Request& request, ResponseWriter& response) {
  if (request.method() == "CONNECT") {
    response.set_status(200);
    if (!(co_await response.flush()).ok()) co_return;
    auto taken = co_await response.hijack();
    if (!taken.ok()) co_return;
    if ((co_await response.hijack()).status().code() != absl::StatusCode::kFailedPrecondition) {
      co_return;  // a second hijack must fail; the client sees no echo
    }
    co_await echo(std::move(*taken));
    co_return;
  }
  if (request.header("upgrade") == "echo") {
    auto taken = co_await response.hijack();
    if (!taken.ok()) co_return;
    constexpr std::string_view kSwitching =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n";
    if (!(co_await taken->conn.write(kSwitching.data(), kSwitching.size())).ok()) co_return;
    co_await echo(std::move(*taken));
    co_return;
  }
  co_await router(request, response);
}

auto tunnel_server_handler() {
  return [router = corpus_router()](Request& request, ResponseWriter& response) -> Task<void> {
    co_await tunnel_handler(router, request, response);
  };
}

// Sends `bytes` on the client and expects them echoed back exactly.
Task<std::string> echoes(RawClient& client, std::string_view bytes) {
  if (!co_await client.send(bytes)) co_return "send " + std::string(bytes);
  std::string back;
  // The awaited result is named: g++ 12 misreads a co_await on the left of ||.
  const bool took = co_await client.take(bytes.size(), back);
  if (!took || back != bytes) {
    co_return "sent \"" + std::string(bytes) + "\", got \"" + back + client.buffer + "\"";
  }
  co_return "";
}

TEST(HttpHijack, ConnectTunnelCarriesTheBytesAfterTheHeadUnparsedAndOutlivesShutdown) {
  with_http_server(
      tunnel_server_handler(), {},
      [](std::string address, std::shared_ptr<Server> server) -> Task<Verdict> {
        auto client = co_await connect(address);
        if (!client.ok()) co_return client.status().ToString();
        // An HTTP request inside the tunnel, sent with the CONNECT: echoed
        // as bytes, never answered by the server.
        const std::string inside = get("/plaintext");
        if (!co_await client->send("CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n" + inside)) {
          co_return "send";
        }
        const RawResponse established = co_await client->response();
        if (established.status != 200 ||
            established.head.find("Content-Length") != std::string::npos ||
            established.head.find("Transfer-Encoding") != std::string::npos ||
            has_header(established, "Connection: close")) {
          co_return "CONNECT: " + describe(established);
        }
        std::string echoed;
        const bool took = co_await client->take(inside.size(), echoed);  // named, as in echoes
        if (!took || echoed != inside) {
          co_return "tunnel: \"" + echoed + client->buffer + "\"";
        }
        if (auto wrong = co_await echoes(*client, "ping"); !wrong.empty()) co_return wrong;
        if (server->open_connections() != 0) co_return "the tunnel still counts as a connection";
        // Shutdown neither waits for the tunnel nor closes it.
        auto [ctx, cancel] = goro::with_timeout(goro::background(), 30s);
        if (auto status = co_await server->shutdown(ctx); !status.ok()) {
          co_return "shutdown: " + status.ToString();
        }
        if (auto wrong = co_await echoes(*client, "after shutdown"); !wrong.empty()) {
          co_return wrong;
        }
        co_return "";
      });
}

TEST(HttpHijack, UpgradeTakenOverAfterPipelinedRequestsSpeaksTheNewProtocol) {
  with_http_server(tunnel_server_handler(), {}, [](std::string address) -> Task<Verdict> {
    auto client = co_await connect(address);
    if (!client.ok()) co_return client.status().ToString();
    // A request answered before the takeover, then the upgrade with the
    // new protocol's first bytes right behind it.
    if (!co_await client->send(get("/plaintext") +
                               get("/plaintext", "Connection: Upgrade\r\nUpgrade: echo\r\n") +
                               "hello")) {
      co_return "send";
    }
    const RawResponse first = co_await client->response();
    if (first.status != 200 || first.body != "Hello, World!") co_return "first: " + describe(first);
    const RawResponse switched = co_await client->response();
    if (switched.status != 101 || !has_header(switched, "Upgrade: echo")) {
      co_return "upgrade: " + describe(switched);
    }
    std::string echoed;
    const bool took = co_await client->take(5, echoed);  // named, as in echoes
    if (!took || echoed != "hello") co_return "echo: " + echoed;
    co_return co_await echoes(*client, get("/plaintext"));
  });
}

}  // namespace
}  // namespace goro::http
