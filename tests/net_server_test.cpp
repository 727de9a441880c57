// tests/net_server_test.cpp: goro::net::Server's graceful shutdown on both
// poller backends (run the binary again with GORO_POLLER=epoll): handlers
// that finish in time, handlers cut off at the deadline (context cancelled,
// connections closed), draining, close, serve after shutdown. Every test
// checks that no fd is left open (/proc/self/fd before and after) and no
// goroutine is left running (the scheduler's started and finished counts,
// exact once run() has returned).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "absl/cleanup/cleanup.h"
#include "net_test_util.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

using test::describe;
using test::open_fd_count;
using test::open_fd_listing;
using test::Verdict;

// Runs `body` as test::run_verdict does and checks, after run() returned,
// that every goroutine it started ran to its end (the sweep at shutdown
// destroys, without counting as finished, the ones still parked).
template <class Body>
void run_without_leaks(Body body, unsigned procs = 2) {
  test::run_verdict(body, procs);
  const SchedulerStats stats = scheduler_stats();
  EXPECT_EQ(stats.goroutines_started, stats.goroutines_finished)
      << "goroutines left running when main returned";
}

// Replies to each byte with the byte in upper case until end of stream; a
// byte 'z' ends the handler at once.
Task<void> upper_case(Context ctx, net::Conn conn) {
  char byte;
  for (;;) {
    auto n = co_await conn.read(&byte, 1);
    if (!n.ok() || *n == 0 || byte == 'z') co_return;
    byte = static_cast<char>(byte - 'a' + 'A');
    if (!(co_await conn.write(&byte, 1, ctx)).ok()) co_return;
  }
}

// Sends `byte` and checks the upper-case reply.
Task<bool> exchange(net::Conn& conn, char byte) {
  if (!(co_await conn.write(&byte, 1)).ok()) co_return false;
  char reply = 0;
  if (!(co_await conn.read_full(&reply, 1)).ok()) co_return false;
  co_return reply == byte - 'a' + 'A';
}

// A serve loop of `server` on a fresh loopback port.
struct Serving {
  std::string address;
  JoinHandle<absl::Status> loop;
};

Task<absl::StatusOr<Serving>> serve_on_loopback(net::Server* server) {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status();
  std::string address = listener->addr().to_string();
  co_return Serving{std::move(address), spawn(server->serve(std::move(*listener)))};
}

// A connection to `address` on which `byte` went out and one byte came
// back: its handler runs, and has got as far as its first reply.
Task<absl::StatusOr<net::Conn>> dial_and_send(std::string address, char byte) {
  auto conn = co_await net::dial("tcp", address);
  if (!conn.ok()) co_return conn.status();
  if (auto s = co_await conn->write(&byte, 1); !s.ok()) co_return s;
  char reply;
  if (auto s = co_await conn->read_full(&reply, 1); !s.ok()) co_return s;
  co_return std::move(*conn);
}

// "" when `server` serves no connection and the process has `fds_before`
// fds open. A runtime thread may hold a descriptor for a moment (sysmon
// reads /proc/self/task for its thread census), so a count that differs
// is read again for up to two seconds before it counts as a leak: a
// leaked descriptor stays.
Verdict nothing_left(const net::Server& server, int fds_before) {
  if (server.connections() != 0) return "connections() after shutdown";
  for (int i = 0; i < 200 && open_fd_count() != fds_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (const int fds = open_fd_count(); fds != fds_before) {
    return "fds before and after differ: " + std::to_string(fds_before) + " then " +
           std::to_string(fds) + " (" + open_fd_listing() + ")";
  }
  return "";
}

// The process's first listen opens the descriptors it keeps for a
// shortage (the reserve and the pause's eventfd, net/listener.cpp E1-E2):
// one listen before any test counts descriptors.
Task<void> listen_once() { (void)co_await net::listen("tcp", "127.0.0.1:0"); }

class ListenOnceFirst : public ::testing::Environment {
 public:
  void SetUp() override { run(listen_once()); }
};
[[maybe_unused]] ::testing::Environment* const listen_once_first =
    ::testing::AddGlobalTestEnvironment(new ListenOnceFirst);

Task<Verdict> shutdown_waits_for_handlers() {
  const int fds_before = open_fd_count();
  net::Server server(upper_case);
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  std::vector<net::Conn> conns;
  for (int i = 0; i < 4; ++i) {
    auto conn = co_await dial_and_send(serving->address, 'a');
    if (!conn.ok()) co_return describe(conn.status());
    conns.push_back(std::move(*conn));
  }
  if (server.connections() != conns.size()) co_return "connections() before shutdown";

  auto shutting_down = spawn(
      [](net::Server* server) -> Task<absl::Status> {
        auto [grace, release] = with_timeout(background(), 60s);
        co_return co_await server->shutdown(grace);
      },
      &server);
  // Stopping accepting comes first: serve returns and the port refuses.
  if (auto s = co_await serving->loop; !s.ok()) co_return "serve: " + describe(s);
  auto late = co_await net::dial("tcp", serving->address);
  if (!net::is_refused(late.status())) co_return "dial after shutdown: " + describe(late.status());
  // The handlers go on serving until their clients are done.
  for (net::Conn& conn : conns) {
    if (!co_await exchange(conn, 'b')) co_return "exchange during shutdown";
  }
  conns.clear();  // end of stream for every handler
  if (auto s = co_await shutting_down; !s.ok()) co_return "shutdown: " + describe(s);
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, ShutdownStopsAcceptingAndWaitsForHandlersToFinish) {
  run_without_leaks(shutdown_waits_for_handlers);
}

// Handlers that would never end by themselves: two parked in a read
// without a context (only closing their connection ends them), one asleep
// on its ctx (only the cancellation ends it).
Task<Verdict> shutdown_deadline_ends_handlers() {
  const int fds_before = open_fd_count();
  auto sleeper_woken_by_ctx = std::make_shared<std::atomic<int>>(0);
  net::Server server([sleeper_woken_by_ctx](Context ctx, net::Conn conn) -> Task<void> {
    char byte;
    if (!(co_await conn.read_full(&byte, 1)).ok()) co_return;
    if (!(co_await conn.write(&byte, 1)).ok()) co_return;  // "parked from now on"
    if (byte == 's') {
      const absl::Status slept = co_await sleep(24h, ctx);
      if (slept.code() == absl::StatusCode::kCancelled) sleeper_woken_by_ctx->fetch_add(1);
      co_return;
    }
    (void)co_await conn.read(&byte, 1);
  });
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  std::vector<net::Conn> conns;
  for (char kind : {'r', 's', 'r'}) {
    auto conn = co_await dial_and_send(serving->address, kind);
    if (!conn.ok()) co_return describe(conn.status());
    conns.push_back(std::move(*conn));
  }

  auto [grace, release] = with_timeout(background(), 100ms);
  const absl::Status shut = co_await server.shutdown(grace);
  if (shut.code() != absl::StatusCode::kDeadlineExceeded) co_return "shutdown: " + describe(shut);
  if (sleeper_woken_by_ctx->load() != 1) co_return "the sleeping handler's ctx was not cancelled";
  if (!(co_await serving->loop).ok()) co_return "serve";
  // Every client sees its connection end.
  for (net::Conn& conn : conns) {
    char byte;
    auto n = co_await conn.read(&byte, 1);
    if (n.ok() && *n != 0) co_return "a client read data after shutdown";
  }
  conns.clear();
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, ShutdownDeadlineCancelsHandlersAndClosesTheirConnections) {
  run_without_leaks(shutdown_deadline_ends_handlers);
}

// A handler that reads with draining() ends as soon as shutdown begins, so
// a server of idle connections shuts down without reaching any deadline.
Task<Verdict> draining_ends_idle_reads() {
  const int fds_before = open_fd_count();
  auto draining = std::make_shared<Context>();
  net::Server server([draining](Context, net::Conn conn) -> Task<void> {
    char byte;
    for (;;) {
      auto n = co_await conn.read(&byte, 1, *draining);
      if (!n.ok() || *n == 0) co_return;
      if (!(co_await conn.write(&byte, 1)).ok()) co_return;
    }
  });
  *draining = server.draining();
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  std::vector<net::Conn> conns;
  for (int i = 0; i < 3; ++i) {
    auto conn = co_await dial_and_send(serving->address, 'x');
    if (!conn.ok()) co_return describe(conn.status());
    conns.push_back(std::move(*conn));
  }
  // No deadline at all: only draining can end the idle handlers.
  if (auto s = co_await server.shutdown(background()); !s.ok()) co_return describe(s);
  if (!(co_await serving->loop).ok()) co_return "serve";
  conns.clear();
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, HandlersReadingWithDrainingEndWhenShutdownBegins) {
  run_without_leaks(draining_ends_idle_reads);
}

// close() stops everything at once; a shutdown after it only waits.
Task<Verdict> close_ends_everything() {
  const int fds_before = open_fd_count();
  net::Server server(upper_case);
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  auto conn = co_await dial_and_send(serving->address, 'c');
  if (!conn.ok()) co_return describe(conn.status());
  if (auto s = server.close(); !s.ok()) co_return "close: " + describe(s);
  if (!net::is_closed(server.close())) co_return "second close";
  char byte;
  auto n = co_await conn->read(&byte, 1);
  if (n.ok() && *n != 0) co_return "read data after close";
  if (auto s = co_await server.shutdown(background()); !s.ok())
    co_return "shutdown: " + describe(s);
  if (!(co_await serving->loop).ok()) co_return "serve";
  conn->close().IgnoreError();
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, CloseEndsHandlersAtOnceAndShutdownThenWaitsForThem) {
  run_without_leaks(close_ends_everything);
}

Task<Verdict> serve_after_shutdown() {
  const int fds_before = open_fd_count();
  net::Server server(upper_case);
  if (!(co_await server.shutdown(background())).ok()) co_return "shutdown of an idle server";
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  if (auto s = co_await serving->loop; !s.ok()) co_return "serve: " + describe(s);
  auto conn = co_await net::dial("tcp", serving->address);
  if (!net::is_refused(conn.status())) co_return "dial: " + describe(conn.status());
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, ServeAfterShutdownClosesTheListenerAndReturns) {
  run_without_leaks(serve_after_shutdown);
}

// One client of shutdown_under_load: a few exchanges, cut off by the
// shutdown at any point. A dial after shutdown began may be refused, reset
// when the listener closed with it queued, or see EPIPE when the server
// closed the new connection (its FIN) and then reset it before the dial
// read the outcome: none of them is a failure.
Task<void> short_lived_client(std::string address, std::shared_ptr<WaitGroup> done,
                              std::shared_ptr<std::atomic<int>> failures,
                              std::shared_ptr<std::string> first_failure) {
  // Declared first, so destroyed last: done() comes after the Conn closed,
  // and the fd count the test takes after done->wait() does not see it.
  auto count_down = absl::Cleanup([&done] { done->done(); });
  auto conn = co_await net::dial("tcp", address);
  if (conn.ok()) {
    for (char c = 'a'; c <= 'f'; ++c) {
      if (!co_await exchange(*conn, c)) break;
    }
  } else if (const auto error = net::errno_of(conn.status());
             !net::is_refused(conn.status()) && error != ECONNRESET && error != EPIPE) {
    if (failures->fetch_add(1) == 0) *first_failure = describe(conn.status());
  }
}

// Cancels ctx (through `cancel`) after `grace`, or ends early once ctx is
// cancelled by someone else.
Task<void> cancel_after(std::chrono::milliseconds grace, Context ctx, CancelFunc cancel) {
  (void)co_await sleep(grace, ctx);
  cancel();
}

// Many connections served and ended while shutdown runs, over two serve
// loops: all handlers finish, nothing leaks. The grace period is a
// goroutine the test joins rather than with_timeout: a context's deadline
// cancels through a goroutine of its own, which a deadline that fires as
// main returns would leave unstarted, and the goroutine count of
// run_without_leaks would see it.
Task<Verdict> shutdown_under_load() {
  const int fds_before = open_fd_count();
  net::Server server(upper_case);
  std::vector<Serving> loops;
  for (int i = 0; i < 2; ++i) {
    auto serving = co_await serve_on_loopback(&server);
    if (!serving.ok()) co_return describe(serving.status());
    loops.push_back(std::move(*serving));
  }
  const int clients = static_cast<int>(test::scaled(200, 20));
  auto done = std::make_shared<WaitGroup>();
  auto failures = std::make_shared<std::atomic<int>>(0);
  auto first_failure = std::make_shared<std::string>();
  done->add(clients);
  for (int i = 0; i < clients; ++i) {
    go(short_lived_client, loops[static_cast<std::size_t>(i) % loops.size()].address, done,
       failures, first_failure);
  }
  co_await sleep(5ms);
  auto [grace, end_grace] = with_cancel(background());
  auto grace_period = spawn(cancel_after(20ms, grace, end_grace));
  const absl::Status shut = co_await server.shutdown(grace);
  end_grace();
  co_await grace_period;
  if (!shut.ok() && shut.code() != absl::StatusCode::kCancelled) co_return describe(shut);
  for (Serving& serving : loops) {
    if (!(co_await serving.loop).ok()) co_return "serve";
  }
  co_await done->wait();
  if (failures->load() != 0) {
    co_return std::to_string(failures->load()) + " dials failed, the first with " + *first_failure;
  }
  co_return nothing_left(server, fds_before);
}

TEST(NetServer, ShutdownWhileConnectionsComeAndGoLeavesNothingBehind) {
  run_without_leaks(shutdown_under_load, 4);
}

// The example's handler: echoes through a 4 KiB buffer until end of
// stream, ctx bounding it.
Task<void> echo(Context ctx, net::Conn conn) {
  char buffer[4096];
  for (;;) {
    auto n = co_await conn.read(buffer, sizeof buffer, ctx);
    if (!n.ok() || *n == 0) co_return;
    if (!(co_await conn.write(buffer, *n, ctx)).ok()) co_return;
  }
}

Task<Verdict> echo_through_server() {
  const int fds_before = open_fd_count();
  net::Server server(echo);
  auto serving = co_await serve_on_loopback(&server);
  if (!serving.ok()) co_return describe(serving.status());
  const int clients = static_cast<int>(test::scaled(32, 8));
  auto done = std::make_shared<WaitGroup>();
  auto failures = std::make_shared<std::atomic<long>>(0);
  done->add(clients);
  for (int i = 0; i < clients; ++i) {
    go(test::echo_client, serving->address, i, static_cast<int>(test::scaled(8, 2)), done,
       failures);
  }
  co_await done->wait();
  if (failures->load() != 0) co_return std::to_string(failures->load()) + " clients failed";
  // The clients have gone: the handlers end by themselves.
  if (auto s = co_await server.shutdown(background()); !s.ok()) co_return describe(s);
  if (!(co_await serving->loop).ok()) co_return "serve";
  co_return nothing_left(server, fds_before);
}

// On each backend whatever GORO_POLLER says (Config::poller decides).
TEST(NetServer, EchoOfRandomSizesOverManyConnectionsIsByteExactOnBothPollers) {
  for (PollerBackend backend : {PollerBackend::kIoUring, PollerBackend::kEpoll}) {
    test::Watchdog watchdog("echo through a Server", std::chrono::seconds(120));
    Config config = test::with_procs(2);
    config.poller = backend;
    EXPECT_EQ(run(echo_through_server(), config), "") << static_cast<int>(backend);
    const SchedulerStats stats = scheduler_stats();
    EXPECT_EQ(stats.goroutines_started, stats.goroutines_finished);
  }
}

}  // namespace
}  // namespace goro
