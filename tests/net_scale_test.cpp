// tests/net_scale_test.cpp: goro::net with many connections at once, on
// both poller backends (run the binary again with GORO_POLLER=epoll).
//
// A server (net::Server, one goroutine per connection, parked in read)
// holds `connections` idle connections at once (10,000 in release builds,
// fewer under sanitizers; GORO_NET_SCALE_CONNECTIONS sets the number), then
// they close, and again, for several rounds. The clients live in a child
// process forked before the runtime starts, so that the server's process
// has one fd per connection (both ends would not fit under a 20,000 fd
// limit); each round binds its clients to a loopback address of its own
// (127.P.R.1 for process P and round R), so that the ports left in
// TIME_WAIT by one round, or by an earlier run, never run out. Checked: after each round the
// server's fd and thread counts are back at their baseline, and its RSS stays within a generous
// bound of the first round's. Printed: the memory per idle connection (RSS delta and the frame
// allocator's bytes in use, over the connection count), which docs/PERFORMANCE.md records.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "net_test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::describe;
using test::open_fd_count;
using test::resident_bytes;
using test::thread_count;
using test::Verdict;

int connection_count() {
  if (const char* text = std::getenv("GORO_NET_SCALE_CONNECTIONS")) return std::atoi(text);
  return static_cast<int>(test::scaled(10'000, 500));
}

// 127.<1 + pid % 250>.<1 + round>.1, in host order.
std::uint32_t source_address(int round) {
  const auto process = static_cast<std::uint32_t>(1 + ::getpid() % 250);
  return (127u << 24) | (process << 16) | (static_cast<std::uint32_t>(1 + round) << 8) | 1u;
}

// What the parent asks of the client process, over a socketpair.
struct Command {
  char what;             // 'o': open `count` connections; 'c': close them all
  std::uint32_t source;  // 'o': the loopback address to bind to (host order)
  std::uint16_t port;    // 'o': the server's port on 127.0.0.1
  std::int32_t count;    // 'o'
};

// The client process's loop: only system calls (it is forked from a
// process that may have threads), on fds it keeps in `fds` (allocated
// before the fork). Answers each command with 0, or the errno that stopped
// it.
[[noreturn]] void client_process(int control, std::vector<int>& fds) {
  std::size_t open = 0;
  Command command;
  while (::read(control, &command, sizeof command) == sizeof command) {
    int error = 0;
    if (command.what == 'o') {
      sockaddr_in source{}, server{};
      source.sin_family = server.sin_family = AF_INET;
      source.sin_addr.s_addr = htonl(command.source);
      server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      server.sin_port = htons(command.port);
      for (int i = 0; i < command.count && open < fds.size() && error == 0; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0 ||
            ::connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) {
          error = errno;
          if (fd >= 0) ::close(fd);
          break;
        }
        fds[open++] = fd;
      }
    } else {
      while (open > 0) ::close(fds[--open]);
    }
    if (::write(control, &error, sizeof error) != sizeof error) break;
  }
  ::_exit(0);
}

// Parks in read until the client closes (the idle connection measured).
Task<void> idle_handler(Context, net::Conn conn) {
  char byte;
  for (;;) {
    auto n = co_await conn.read(&byte, 1);
    if (!n.ok() || *n == 0) co_return;
  }
}

// Waits (bounded, generously) until the server serves `count` connections.
Task<bool> wait_for_connections(const net::Server& server, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (server.connections() != count) {
    if (std::chrono::steady_clock::now() > give_up) co_return false;
    co_await sleep(1ms);
  }
  co_return true;
}

// Sends `command` to the client process; "" or what failed.
Task<Verdict> ask(net::Conn& control, Command command) {
  if (!(co_await control.write(&command, sizeof command)).ok()) co_return "command";
  int error = 0;
  if (!(co_await control.read_full(&error, sizeof error)).ok()) co_return "client process gone";
  if (error != 0) co_return std::string("client process: ") + std::strerror(error);
  co_return "";
}

Task<Verdict> open_and_close_rounds(int control_fd, int connections, int rounds) {
  net::Conn control = net::Conn::from_fd(control_fd);
  net::Server server(idle_handler);
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  const auto port = static_cast<std::uint16_t>(listener->addr().port());
  auto serving = spawn(server.serve(std::move(*listener)));
  co_await sleep(10ms);  // the serve loop parks in accept

  const int fds_before = open_fd_count();
  const int threads_before = thread_count();
  const long resident_before = resident_bytes();
  const MemoryStats frames_before = memory_stats();
  long resident_after_first = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::uint32_t source = source_address(round);
    if (auto v = co_await ask(control, Command{'o', source, port, connections}); !v.empty()) {
      co_return "round " + std::to_string(round) + ": " + v;
    }
    if (!co_await wait_for_connections(server, static_cast<std::size_t>(connections))) {
      co_return "round " + std::to_string(round) + ": the server did not get every connection";
    }
    if (round == 0) {
      co_await sleep(50ms);  // every handler parks in its read
      const double resident = static_cast<double>(resident_bytes() - resident_before);
      const MemoryStats frames_now = memory_stats();
      const double frames =
          static_cast<double>(frames_now.bytes_in_use - frames_before.bytes_in_use);
      std::printf(
          "%d idle connections (%s): %.0f bytes of RSS and %.0f bytes of goroutine "
          "frames per connection; frames per connection by size:",
          connections, io::poller_backend(), resident / connections, frames / connections);
      for (std::size_t c = 1; c < frames_now.size_classes.size(); ++c) {
        const double added = static_cast<double>(frames_now.size_classes[c].objects_in_use -
                                                 frames_before.size_classes[c].objects_in_use);
        if (added >= connections / 2.0) {
          std::printf(" %.2f x %u B", added / connections, frames_now.size_classes[c].object_size);
        }
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    if (auto v = co_await ask(control, Command{'c', 0, 0, 0}); !v.empty()) co_return v;
    if (!co_await wait_for_connections(server, 0)) {
      co_return "round " + std::to_string(round) + ": handlers still running after close";
    }
    const std::string when = "after round " + std::to_string(round) + ": ";
    if (open_fd_count() != fds_before) {
      co_return when + std::to_string(open_fd_count()) + " fds open, " +
          std::to_string(fds_before) + " before";
    }
    if (thread_count() != threads_before) {
      co_return when + std::to_string(thread_count()) + " threads, " +
          std::to_string(threads_before) + " before";
    }
    // Caches keep what the first round allocated; later rounds reuse it.
    const long resident = resident_bytes();
    if (round == 0) resident_after_first = resident;
    constexpr long kSlack = 64L << 20;
    if (resident > resident_after_first + kSlack) {
      co_return when + "RSS grew by " + std::to_string((resident - resident_after_first) >> 20) +
          " MiB since the first round";
    }
  }
  auto [grace, release] = with_timeout(background(), 10s);
  if (auto s = co_await server.shutdown(grace); !s.ok()) co_return "shutdown: " + describe(s);
  if (auto s = co_await serving; !s.ok()) co_return "serve: " + describe(s);
  co_return "";
}

TEST(NetScale, ConnectionsOpenAndCloseInRoundsWithoutFdThreadOrMemoryGrowth) {
  const int connections = connection_count();
  constexpr int kRounds = 3;
  int control[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control), 0);
  std::vector<int> client_fds(static_cast<std::size_t>(connections));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(control[0]);
    client_process(control[1], client_fds);
  }
  ::close(control[1]);
  test::run_verdict(
      [&]() GORO_CORO_WRAPPER { return open_and_close_rounds(control[0], connections, kRounds); });
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);  // control's close ended its loop
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace goro
