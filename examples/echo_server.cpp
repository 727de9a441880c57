// examples/echo_server.cpp: a TCP echo server, one goroutine per
// connection, that shuts down gracefully on SIGINT or SIGTERM, as the
// idiomatic Go server is written:
//
//   ln, err := net.Listen("tcp", addr)
//   go serve(ln)   // accept; go handle(c): read into a 4 KiB buffer, write it back, until EOF
//   ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//   <-ctx.Done()
//   shutdown(5 * time.Second)   // stop accepting; let handlers finish, cut off the rest
//
// usage: echo_server [ADDRESS]   (default 127.0.0.1:9101; port 0 lets the
// kernel pick one). Prints "echo_server: listening on ADDRESS" once it
// listens and "echo_server: shutting down" when a signal arrives; exits 0
// once the clients have left (or 5 s later, with their connections closed).
#include <csignal>
#include <cstdio>
#include <string>
#include <utility>

#include <goro/goro.hpp>
#include <goro/net.hpp>
#include <goro/signal.hpp>

namespace {

using namespace std::chrono_literals;

goro::Task<void> handle(goro::Context ctx, goro::net::Conn conn) {
  char buffer[4096];
  for (;;) {
    auto n = co_await conn.read(buffer, sizeof buffer, ctx);
    if (!n.ok() || *n == 0) co_return;  // an error, the client is done, or shutdown's deadline
    if (!(co_await conn.write(buffer, *n, ctx)).ok()) co_return;
  }
}  // conn's destructor closes the connection

goro::Task<int> serve(std::string address) {
  // Caught from here on: a signal cannot come between "listening" and this.
  auto [stopping, stop] = goro::signal_context(goro::background(), {SIGINT, SIGTERM});
  auto listener = co_await goro::net::listen("tcp", address);
  if (!listener.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", listener.status().ToString().c_str());
    co_return 1;
  }
  std::printf("echo_server: listening on %s\n", listener->addr().to_string().c_str());
  std::fflush(stdout);
  goro::net::Server server(handle);
  auto serving = goro::spawn(server.serve(std::move(*listener)));

  (void)co_await stopping.done().recv();
  stop();  // a second Ctrl-C ends the process at once
  std::printf("echo_server: shutting down\n");
  std::fflush(stdout);
  auto [grace, release] = goro::with_timeout(goro::background(), 5s);
  (void)co_await server.shutdown(grace);
  auto served = co_await serving;
  if (!served.ok()) std::fprintf(stderr, "echo_server: %s\n", served.ToString().c_str());
  co_return served.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return goro::run(serve(argc > 1 ? argv[1] : "127.0.0.1:9101")); }
