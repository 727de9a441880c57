// examples/http_server.cpp: an HTTP/1.1 server with goro::http, answering
// TechEmpower's two simplest tests:
//
//   GET /plaintext (and GET /)  ->  "Hello, World!"             text/plain
//   GET /json                   ->  {"message":"Hello, World!"}  application/json
//
// usage: http_server [ADDRESS]   (default 127.0.0.1:8080; port 0 lets the
// kernel pick one). Prints "http_server: listening on ADDRESS" once it
// listens, then serves until killed. Try:
//   curl -i http://127.0.0.1:8080/json
//   wrk -t1 -c50 -d5s http://127.0.0.1:8080/plaintext
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

namespace {

using namespace std::chrono_literals;

// The bodies are literals: reply_static sends them without a copy.
goro::Task<void> plaintext(goro::http::Request&, goro::http::ResponseWriter& response) {
  response.reply_static(200, "text/plain", "Hello, World!");
  co_return;
}

goro::Task<void> json(goro::http::Request&, goro::http::ResponseWriter& response) {
  response.reply_static(200, "application/json", R"({"message":"Hello, World!"})");
  co_return;
}

goro::Task<int> serve(std::string address) {
  auto listener = co_await goro::net::listen("tcp", address);
  if (!listener.ok()) {
    std::fprintf(stderr, "http_server: %s\n", listener.status().ToString().c_str());
    co_return 1;
  }
  std::printf("http_server: listening on %s\n", listener->addr().to_string().c_str());
  std::fflush(stdout);

  goro::http::Router router;
  router.get("/", plaintext);
  router.get("/plaintext", plaintext);
  router.get("/json", json);
  // A client that trickles its headers is cut off after 10 s; an idle
  // keep-alive connection after 60 s.
  goro::http::Server server(std::move(router), {.read_header_timeout = 10s, .idle_timeout = 60s});
  const absl::Status status = co_await server.serve(std::move(*listener));
  std::fprintf(stderr, "http_server: %s\n", status.ToString().c_str());
  co_return status.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return goro::run(serve(argc > 1 ? argv[1] : "127.0.0.1:8080")); }
