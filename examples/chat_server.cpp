// examples/chat_server.cpp: a TCP chat room, written as the Go chat server
// of "The Go Programming Language" (section 8.10) is: one goroutine per
// client reads its lines, one writer goroutine per client writes what the
// room sends it, and one broadcaster goroutine owns the set of clients and
// is fed through channels:
//
//   entering, leaving, messages := make(chan client), make(chan client), make(chan string)
//   func broadcaster() {
//     clients := map[client]bool{}
//     for { select {
//       case msg := <-messages: for cli := range clients {
//         select { case cli <- msg: default: /* too slow: drop it */ } }
//       case cli := <-entering: clients[cli] = true
//       case cli := <-leaving: delete(clients, cli); close(cli) } }
//   }
//
// A client that does not read its messages does not hold up the room: its
// channel holds kBacklog messages, the broadcaster sends without blocking,
// and a client whose channel is full is dropped (its connection closed,
// the room told; a write it is stuck in is cancelled).
//
// Protocol: lines of text. A client's first line is its name; the room
// then says "NAME has joined" (to everyone, the newcomer included); every
// later line goes to everyone as "NAME: LINE"; "NAME has left" when it
// disconnects, "NAME was dropped (too slow)" when it is dropped.
//
// usage: chat_server [ADDRESS]   (default 127.0.0.1:9102; port 0 lets the
// kernel pick one). Prints "chat_server: listening on ADDRESS"; on SIGINT
// or SIGTERM prints "chat_server: shutting down", closes every connection
// and exits 0. Try: nc 127.0.0.1 9102 (twice).
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>
#include <goro/signal.hpp>

#include "absl/container/flat_hash_map.h"

namespace {

constexpr std::size_t kBacklog = 16;    // messages a client may fall behind by
constexpr std::size_t kMaxLine = 4096;  // longer lines are cut
constexpr std::size_t kReadBuffer = 4096;

struct Client {
  int id = 0;
  std::string name;
  goro::Chan<std::string> out;  // what the room sends it; closed when it leaves
  goro::CancelFunc drop;        // ends a write stuck on a client that stopped reading
};

struct Room {
  goro::Chan<Client> entering = goro::make_chan<Client>();
  goro::Chan<int> leaving = goro::make_chan<int>();
  goro::Chan<std::string> messages = goro::make_chan<std::string>();
};

// Owns the clients: the only goroutine that sends to their channels. Ends
// when `messages` is closed.
goro::Task<void> broadcaster(Room room) {
  absl::flat_hash_map<int, Client> clients;
  auto send_to_all = [&clients](const std::string& message) {
    std::vector<int> too_slow;
    for (auto& [id, client] : clients) {
      if (!client.out.try_send(message + "\n")) too_slow.push_back(id);
    }
    return too_slow;
  };
  auto announce = [&](std::string message) {
    // Dropping a client is news too, which may drop another.
    while (!message.empty()) {
      std::vector<int> too_slow = send_to_all(message);
      message.clear();
      for (int id : too_slow) {
        auto node = clients.extract(id);
        node.mapped().drop();
        node.mapped().out.close();
        message += (message.empty() ? "" : "\n") + node.mapped().name + " was dropped (too slow)";
      }
    }
  };
  bool open = true;
  auto on_message = [&](std::optional<std::string> message) {
    open = message.has_value();  // closed: the server has shut down
    if (open) announce(std::move(*message));
  };
  auto on_entering = [&](std::optional<Client> client) {
    const std::string name = client->name;
    clients.emplace(client->id, std::move(*client));
    announce(name + " has joined");
  };
  auto on_leaving = [&](std::optional<int> id) {
    auto node = clients.extract(*id);
    if (node.empty()) return;  // dropped already
    node.mapped().out.close();
    announce(node.mapped().name + " has left");
  };
  while (open) {
    co_await goro::select(goro::on(goro::recv_from(room.messages), on_message),
                          goro::on(goro::recv_from(room.entering), on_entering),
                          goro::on(goro::recv_from(room.leaving), on_leaving));
  }
}

// Writes what the room sends to `conn` until the room closes the channel
// or drops the client (`ctx`), then closes the connection (which also ends
// the client's reader).
goro::Task<void> write_lines(goro::Context ctx, goro::net::Conn& conn,
                             goro::Chan<std::string> out) {
  while (auto line = co_await out.recv()) {
    if (!(co_await conn.write(line->data(), line->size(), ctx)).ok()) break;
  }
  (void)conn.close();
}

// Reads lines from `conn` into `line`: false at end of stream or on an error.
class LineReader {
 public:
  explicit LineReader(goro::net::Conn& conn) : conn_(conn) {}

  goro::Task<bool> next(std::string& line) {
    line.clear();
    for (;;) {
      for (; start_ < end_; ++start_) {
        const char c = buffer_[start_];
        if (c == '\n') {
          ++start_;
          if (!line.empty() && line.back() == '\r') line.pop_back();
          co_return true;
        }
        if (line.size() < kMaxLine) line += c;
      }
      auto n = co_await conn_.read(buffer_, sizeof buffer_);
      if (!n.ok() || *n == 0) co_return false;
      start_ = 0;
      end_ = *n;
    }
  }

 private:
  goro::net::Conn& conn_;
  char buffer_[kReadBuffer];
  std::size_t start_ = 0;
  std::size_t end_ = 0;
};

// One client: its name, then its lines, until it leaves or is dropped.
goro::Task<void> handle(Room room, int id, goro::net::Conn conn) {
  auto [writing, drop] = goro::with_cancel(goro::background());
  Client client{id, {}, goro::make_chan<std::string>(kBacklog), drop};
  LineReader reader(conn);
  if (!co_await reader.next(client.name) || client.name.empty()) co_return;
  const std::string name = client.name;
  auto writer = goro::spawn(write_lines(writing, conn, client.out));
  co_await room.entering.send(std::move(client));
  std::string line;
  while (co_await reader.next(line)) co_await room.messages.send(name + ": " + line);
  co_await room.leaving.send(id);
  co_await writer;  // it uses conn, which this frame owns
}

goro::Task<int> serve(std::string address) {
  // Caught from here on: a signal cannot come between "listening" and this.
  auto [stopping, stop] = goro::signal_context(goro::background(), {SIGINT, SIGTERM});
  auto listener = co_await goro::net::listen("tcp", address);
  if (!listener.ok()) {
    std::fprintf(stderr, "chat_server: %s\n", listener.status().ToString().c_str());
    co_return 1;
  }
  std::printf("chat_server: listening on %s\n", listener->addr().to_string().c_str());
  std::fflush(stdout);

  Room room;
  auto broadcasting = goro::spawn(broadcaster(room));
  auto next_id = std::make_shared<std::atomic<int>>(0);
  goro::net::Server server(
      [room, next_id](goro::Context, goro::net::Conn conn) -> goro::Task<void> {
        // relaxed: the ids only need to differ
        co_await handle(room, next_id->fetch_add(1, std::memory_order_relaxed), std::move(conn));
      });
  auto serving = goro::spawn(server.serve(std::move(*listener)));

  (void)co_await stopping.done().recv();
  stop();  // a second Ctrl-C ends the process at once
  std::printf("chat_server: shutting down\n");
  std::fflush(stdout);
  // A chat never finishes by itself: close every connection now (Go's
  // Server.Close) and wait for the clients' goroutines, then the room's.
  (void)server.close();
  (void)co_await server.shutdown(goro::background());
  room.messages.close();
  co_await broadcasting;
  const absl::Status served = co_await serving;
  if (!served.ok()) std::fprintf(stderr, "chat_server: %s\n", served.ToString().c_str());
  co_return served.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return goro::run(serve(argc > 1 ? argv[1] : "127.0.0.1:9102")); }
