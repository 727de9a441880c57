// examples/echo_server.cpp: a TCP echo server, one goroutine per
// connection, as the idiomatic Go server is written:
//
//   ln, err := net.Listen("tcp", addr)
//   for {
//     c, err := ln.Accept()
//     if err != nil { continue }
//     go handle(c)   // read into a 4 KiB buffer, write it back, until EOF
//   }
//
// usage: echo_server [ADDRESS]   (default 127.0.0.1:9101; port 0 lets the
// kernel pick one). Prints "echo_server: listening on ADDRESS" once it
// listens, then serves until killed.
#include <cstdio>
#include <string>
#include <utility>

#include <goro/goro.hpp>
#include <goro/net.hpp>

namespace {

using namespace std::chrono_literals;

goro::Task<void> handle(goro::net::Conn conn) {
  char buffer[4096];
  for (;;) {
    auto n = co_await conn.read(buffer, sizeof buffer);
    if (!n.ok() || *n == 0) co_return;  // an error, or the client is done
    if (!(co_await conn.write(buffer, *n)).ok()) co_return;
  }
}  // conn's destructor closes the connection

goro::Task<int> serve(std::string address) {
  auto listener = co_await goro::net::listen("tcp", address);
  if (!listener.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", listener.status().ToString().c_str());
    co_return 1;
  }
  std::printf("echo_server: listening on %s\n", listener->addr().to_string().c_str());
  std::fflush(stdout);
  for (;;) {
    auto conn = co_await listener->accept();
    if (!conn.ok()) {
      // Out of fds (EMFILE) and the like: back off instead of spinning.
      std::fprintf(stderr, "echo_server: %s\n", conn.status().ToString().c_str());
      co_await goro::sleep(10ms);
      continue;
    }
    goro::go(handle, std::move(*conn));
  }
}

}  // namespace

int main(int argc, char** argv) { return goro::run(serve(argc > 1 ? argv[1] : "127.0.0.1:9101")); }
