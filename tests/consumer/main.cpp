// Built by the consumer tests against goro::goro, goro::net and
// goro::http: a goroutine tree that must sum to 2^depth, one message over
// a loopback TCP connection, and one HTTP request to a goro::http::Server.
// Returns non-zero on a wrong result.
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

namespace {

std::atomic<int> detached_runs{0};

goro::Task<long> tree(int depth) {
  if (depth == 0) co_return 1;
  auto a = goro::spawn(tree(depth - 1));
  auto b = goro::spawn(tree(depth - 1));
  co_await goro::yield();
  co_return co_await a + co_await b;
}

goro::Task<void> bump() {
  detached_runs.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

// 0 when "ping" crosses a loopback connection intact.
goro::Task<int> loopback() {
  auto listener = co_await goro::net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return 1;
  auto client = co_await goro::net::dial("tcp", listener->addr().to_string());
  if (!client.ok()) co_return 2;
  auto server = co_await listener->accept();
  if (!server.ok()) co_return 3;
  if (!(co_await client->write("ping", 4)).ok()) co_return 4;
  char buffer[4];
  if (!(co_await server->read_full(buffer, 4)).ok()) co_return 5;
  co_return std::string_view(buffer, 4) == "ping" ? 0 : 6;
}

goro::Task<void> serve(std::shared_ptr<goro::http::Server> server, goro::net::Listener listener) {
  (void)co_await server->serve(std::move(listener));
}

// 0 when a GET is answered "200 OK" with the handler's body.
goro::Task<int> http_roundtrip() {
  auto listener = co_await goro::net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return 1;
  const std::string address = listener->addr().to_string();
  auto server = std::make_shared<goro::http::Server>(
      [](goro::http::Request&, goro::http::ResponseWriter& response) -> goro::Task<void> {
        response.reply(200, "text/plain", "consumer");
        co_return;
      });
  goro::go(serve, server, std::move(*listener));
  auto client = co_await goro::net::dial("tcp", address);
  if (!client.ok()) co_return 2;
  const std::string_view request = "GET / HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
  if (!(co_await client->write(request.data(), request.size())).ok()) co_return 3;
  std::string answer;
  char buffer[512];
  for (;;) {
    auto n = co_await client->read(buffer, sizeof buffer);
    if (!n.ok()) co_return 4;
    if (*n == 0) break;
    answer.append(buffer, *n);
  }
  const bool ok = answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nconsumer");
  co_return ok ? 0 : 5;
}

goro::Task<long> main_task() {
  for (int i = 0; i < 4; ++i) goro::go(bump());
  if (const int failed = co_await loopback(); failed != 0) {
    std::fprintf(stderr, "consumer: loopback failed at step %d\n", failed);
    co_return -1;
  }
  if (const int failed = co_await http_roundtrip(); failed != 0) {
    std::fprintf(stderr, "consumer: http failed at step %d\n", failed);
    co_return -1;
  }
  co_return co_await goro::spawn(tree(10));
}

}  // namespace

int main() {
  const long sum = goro::run(main_task(), goro::Config{.procs = 2});
  if (sum != 1024) {
    std::fprintf(stderr, "consumer: tree(10) = %ld, want 1024\n", sum);
    return 1;
  }
  std::printf("consumer: ok (tree(10) = %ld, detached ran %d of 4)\n", sum, detached_runs.load());
  return 0;
}
