// examples/http_server.cpp: an HTTP/1.1 server with goro::http, answering
// TechEmpower's two simplest tests, that shuts down gracefully on SIGINT or
// SIGTERM and then says what the runtime did:
//
//   GET /plaintext (and GET /)  ->  "Hello, World!"             text/plain
//   GET /json                   ->  {"message":"Hello, World!"}  application/json
//
// As the Go program is written:
//
//   ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//   go srv.Serve(ln)
//   <-ctx.Done(); stop()
//   srv.Shutdown(context.WithTimeout(context.Background(), 5*time.Second))
//   // then runtime.ReadMemStats and friends
//
// usage: http_server [ADDRESS]   (default 127.0.0.1:8080; port 0 lets the
// kernel pick one). Prints "http_server: listening on ADDRESS" once it
// listens; on SIGINT or SIGTERM "http_server: shutting down", then, once
// the connections are done (or 5 s later, with them closed), the runtime's
// summary ("runtime: ..." lines: poller backend, goroutines, steals, I/O
// waits, blocking calls, allocator bytes) and exits 0. Try:
//   curl -i http://127.0.0.1:8080/json
//   wrk -t1 -c50 -d5s http://127.0.0.1:8080/plaintext
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>
#include <goro/signal.hpp>

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
  // Caught from here on: a signal cannot come between "listening" and this.
  auto [stopping, stop] = goro::signal_context(goro::background(), {SIGINT, SIGTERM});
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
  auto serving = goro::spawn(server.serve(std::move(*listener)));

  (void)co_await stopping.done().recv();
  stop();  // a second Ctrl-C ends the process at once
  std::printf("http_server: shutting down\n");
  std::fflush(stdout);
  auto [grace, release] = goro::with_timeout(goro::background(), 5s);
  const absl::Status shutdown = co_await server.shutdown(grace);
  if (!shutdown.ok())
    std::printf("http_server: connections cut off: %s\n", shutdown.ToString().c_str());
  const absl::Status served = co_await serving;
  if (!served.ok()) std::fprintf(stderr, "http_server: %s\n", served.ToString().c_str());
  co_return served.ok() ? 0 : 1;
}

// What the runtime did, from its counters (exact once run() has returned).
void print_summary() {
  const goro::SchedulerStats stats = goro::scheduler_stats();
  const goro::MemoryStats memory = goro::memory_stats();
  std::printf("runtime: poller %s, %" PRIu32 " Ps\n", goro::io::poller_backend(), stats.procs);
  std::printf("runtime: goroutines started %" PRIu64 ", finished %" PRIu64 "\n",
              stats.goroutines_started, stats.goroutines_finished);
  std::printf("runtime: steals %" PRIu64 " (%" PRIu64 " goroutines moved), %" PRIu64
              " goroutines handed over by standby Ps\n",
              stats.steals, stats.stolen_goroutines, stats.handed_over_goroutines);
  std::printf("runtime: I/O waits %" PRIu64 ", blocking calls %" PRIu64 "\n", stats.io_waits,
              stats.blocking_calls);
  std::uint64_t frames = 0;
  for (const goro::SizeClassStats& size_class : memory.size_classes)
    frames += size_class.allocations;
  std::printf("runtime: allocator frames allocated %" PRIu64 ", bytes mapped %" PRIu64
              ", in use %" PRIu64 "\n",
              frames, memory.bytes_mapped, memory.bytes_in_use);
}

}  // namespace

int main(int argc, char** argv) {
  const int status = goro::run(serve(argc > 1 ? argv[1] : "127.0.0.1:8080"));
  print_summary();
  return status;
}
