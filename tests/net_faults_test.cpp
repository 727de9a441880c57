// tests/net_faults_test.cpp: goro::net under bad conditions, on both
// pollers with one P and with four: an accept loop that runs out of file
// descriptors (EMFILE, under a low RLIMIT_NOFILE in a forked child, since
// the limit is the whole process's), peers that reset in the middle of a
// read or a write, a peer that half-closes, and a peer that does not read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "descriptor_exhaustion.hpp"
#include "fd_shortage.hpp"
#include "net_test_util.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

using test::describe;
using test::exhaust_descriptors;
using test::highest_open_fd;
using test::raw_peer;
using test::RawPeer;
using test::resident_bytes;
using test::Verdict;

Config config_for(PollerBackend backend, unsigned procs) {
  Config config = test::with_procs(procs);
  config.poller = backend;
  return config;
}

const char* name_of(PollerBackend backend) {
  return backend == PollerBackend::kEpoll ? "epoll" : "io_uring";
}

// Runs body() on each poller with one P and with four.
void on_each_poller_and_procs(Task<Verdict> (*body)()) {
  test::Watchdog watchdog(::testing::UnitTest::GetInstance()->current_test_info()->name(), 240s);
  for (PollerBackend backend : {PollerBackend::kIoUring, PollerBackend::kEpoll}) {
    for (unsigned procs : {1U, 4U}) {
      EXPECT_EQ(run(body(), config_for(backend, procs)), "")
          << name_of(backend) << ", procs " << procs;
    }
  }
}

// --- Running out of file descriptors ---------------------------------------

// Yields until `condition()` holds (false after a minute).
template <class Condition>
Task<bool> yield_until(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    co_await goro::sleep(1ms);
  }
  co_return true;
}

// The process's CPU time (user and system).
std::chrono::microseconds cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// A raw client socket, blocking, with a receive timeout so that no check
// can hang the child.
int raw_client() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

struct AcceptResult {
  absl::StatusOr<net::Conn> conn = absl::UnknownError("not yet");
  std::atomic<bool> done{false};
};

Task<void> accept_into(net::Listener* listener, AcceptResult* result) {
  result->conn = co_await listener->accept();
  result->done.store(true);
}

// The child's body: "" when accept survived the shortage.
Task<Verdict> accept_survives_emfile() {
  // A low limit, set before the listener exists: io_uring's accept takes
  // the limit when its request is prepared, so a multishot accept armed
  // under a higher one would not see the shortage.
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 1 + 32);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) co_return "setrlimit";
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return "listen: " + describe(listener.status());
  const net::Addr address = listener->addr();
  // Clients made before the shortage: connecting needs no new descriptor.
  const int shed_client = raw_client();
  const int served_client = raw_client();
  const int closing_client = raw_client();
  if (shed_client < 0 || served_client < 0 || closing_client < 0) co_return "client sockets";

  // Accepting works before the shortage. (This also runs, once, the code
  // the shortage runs: UBSan's vptr check caches each type it has checked,
  // and a check it has not cached probes memory through a pipe(2), which
  // fails while every descriptor is taken.)
  {
    auto warm_client = co_await net::dial("tcp", address.to_string());
    if (!warm_client.ok()) co_return "dial: " + describe(warm_client.status());
    auto warm_server = co_await listener->accept();
    if (!warm_server.ok()) co_return "accept: " + describe(warm_server.status());
    warm_server->set_read_deadline(Clock::now() + 1ms);
    char byte = 0;
    (void)co_await warm_server->read(&byte, 1);
  }

  // Every descriptor number below the limit taken.
  std::vector<int> fillers = exhaust_descriptors();
  if (::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 || errno != EMFILE) co_return "not exhausted";

  const net::internal::ShortageCounts before = net::internal::shortage_counts_for_testing();
  AcceptResult first;
  go(accept_into, &*listener, &first);
  // A connection arriving in the shortage makes the accept meet EMFILE (a
  // one-shot accept meets it at once; io_uring's multishot accept when the
  // connection comes): it is shed, its peer sees end of stream, and the
  // accept pauses rather than returning the error.
  if (::connect(shed_client, address.sockaddr_pointer(), address.length()) != 0) {
    co_return "connect the shed client";
  }
  const bool paused = co_await yield_until(
      [&] { return net::internal::shortage_counts_for_testing().pauses >= before.pauses + 1; });
  if (!paused) co_return "accept did not pause";
  const bool shed = co_await yield_until(
      [&] { return net::internal::shortage_counts_for_testing().shed >= before.shed + 1; });
  if (!shed) co_return "nothing shed";
  char byte = 0;
  if (::recv(shed_client, &byte, 1, 0) != 0) co_return "the shed peer did not see end of stream";

  // No spinning: over a stretch of the shortage the process is mostly idle
  // (a loop retrying accept4 at once would use a whole CPU).
  const auto cpu_before = cpu_time();
  const auto wall_before = std::chrono::steady_clock::now();
  co_await goro::sleep(300ms);
  const auto cpu_used = cpu_time() - cpu_before;
  const auto wall = std::chrono::steady_clock::now() - wall_before;
  if (cpu_used * 2 > wall) co_return "accept spins: " + std::to_string(cpu_used.count()) + " us";
  if (first.done.load()) co_return "accept returned: " + describe(first.conn.status());

  // Descriptors free again: the same accept takes the next connection.
  test::release_descriptors(fillers);
  if (::connect(served_client, address.sockaddr_pointer(), address.length()) != 0) {
    co_return "connect the served client";
  }
  const bool accepted = co_await test::yield_until_set(first.done);
  if (!accepted || !first.conn.ok()) co_return "accept after the shortage";
  if (!(co_await first.conn->write("ok", 2)).ok()) co_return "write";
  char reply[2] = {};
  if (::recv(served_client, reply, 2, MSG_WAITALL) != 2 || std::memcmp(reply, "ok", 2) != 0) {
    co_return "the served client got nothing";
  }

  // Closing the listener ends an accept that pauses in a shortage.
  fillers = exhaust_descriptors();
  const std::uint64_t pauses = net::internal::shortage_counts_for_testing().pauses;
  AcceptResult second;
  go(accept_into, &*listener, &second);
  if (::connect(closing_client, address.sockaddr_pointer(), address.length()) != 0) {
    co_return "connect the closing client";
  }
  const bool paused_again = co_await yield_until(
      [&] { return net::internal::shortage_counts_for_testing().pauses >= pauses + 1; });
  if (!paused_again) co_return "second accept did not pause";
  (void)listener->close();
  const bool ended = co_await test::yield_until_set(second.done);
  if (!ended || !net::is_closed(second.conn.status())) {
    co_return "accept after close: " + describe(second.conn.status());
  }
  test::release_descriptors(fillers);
  ::close(shed_client);
  ::close(served_client);
  ::close(closing_client);
  co_return "";
}

// First in this file, so that when the whole binary runs the fork happens
// before any test has started threads (ctest runs each test alone); no
// watchdog thread either: verdict_in_child bounds the wait itself.
TEST(NetFaults, AcceptSurvivesRunningOutOfDescriptors) {
  for (PollerBackend backend : {PollerBackend::kIoUring, PollerBackend::kEpoll}) {
    for (unsigned procs : {1U, 4U}) {
      EXPECT_EQ(test::verdict_in_child(
                    [&] { return run(accept_survives_emfile(), config_for(backend, procs)); }),
                "")
          << name_of(backend) << ", procs " << procs;
    }
  }
}

// --- Peers that reset, half-close, or do not read --------------------------

struct Outcome {
  absl::Status status;
  std::atomic<bool> done{false};
};

Task<void> read_once(net::Conn* conn, Outcome* outcome) {
  char buffer[64];
  auto n = co_await conn->read(buffer, sizeof buffer);
  outcome->status = n.ok() ? absl::InternalError("read " + std::to_string(*n)) : n.status();
  outcome->done.store(true);
}

Task<void> write_all(net::Conn* conn, const std::vector<char>* data, Outcome* outcome) {
  outcome->status = co_await conn->write(data->data(), data->size());
  outcome->done.store(true);
}

Task<Verdict> peer_resets_mid_read() {
  auto peer = co_await raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  Outcome outcome;
  go(read_once, &peer->server, &outcome);
  co_await goro::sleep(10ms);  // the read parks first, or meets the reset at once: same verdict
  test::close_with_reset(peer->raw);
  const bool done = co_await test::yield_until_set(outcome.done);
  if (!done) co_return "read never ended";
  if (net::errno_of(outcome.status) != ECONNRESET) co_return "read: " + describe(outcome.status);
  co_return "";
}

TEST(NetFaults, PeerResetMidReadFailsWithConnectionReset) {
  on_each_poller_and_procs(peer_resets_mid_read);
}

// The write is parked (the peer's receive buffer and our send buffer are
// full) when the peer resets. The test runs with SIGPIPE's default
// disposition (terminate): a SIGPIPE would kill the test.
Task<Verdict> peer_resets_mid_write() {
  auto peer = co_await raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  std::vector<char> big(32 << 20, 'w');
  Outcome outcome;
  go(write_all, &peer->server, &big, &outcome);
  co_await goro::sleep(10ms);  // the write fills the buffers and parks, or fails at once
  test::close_with_reset(peer->raw);
  const bool done = co_await test::yield_until_set(outcome.done);
  if (!done) co_return "write never ended";
  const std::optional<int> error = net::errno_of(outcome.status);
  if (error != ECONNRESET && error != EPIPE) co_return "write: " + describe(outcome.status);
  // Later writes fail the same way, as values.
  const absl::Status again = co_await peer->server.write("x", 1);
  const std::optional<int> again_error = net::errno_of(again);
  if (again_error != ECONNRESET && again_error != EPIPE) co_return "again: " + describe(again);
  co_return "";
}

TEST(NetFaults, PeerResetMidWriteFailsWithResetOrBrokenPipeAndNoSignal) {
  test::DefaultSigpipe default_disposition;
  on_each_poller_and_procs(peer_resets_mid_write);
}

// The peer half-closes (FIN) while the server is parked in read: the read
// returns 0, not an error, and the server can still write to the peer.
Task<Verdict> peer_half_closes_mid_read() {
  auto peer = co_await raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  auto reader = spawn(
      [](net::Conn* conn) -> Task<absl::StatusOr<std::size_t>> {
        char buffer[16];
        co_return co_await conn->read(buffer, sizeof buffer);
      },
      &peer->server);
  co_await goro::sleep(10ms);  // the read parks first, or meets the FIN at once: same verdict
  if (::shutdown(peer->raw, SHUT_WR) != 0) co_return "shutdown";
  auto n = co_await reader;
  if (!n.ok() || *n != 0) co_return "read after FIN: " + describe(n.status());
  if (!(co_await peer->server.write("late", 4)).ok()) co_return "write after the peer's FIN";
  char buffer[4] = {};
  // Sent already: the blocking receive returns at once.
  const bool received = ::recv(peer->raw, buffer, 4, MSG_WAITALL) == 4;
  ::close(peer->raw);
  if (!received || std::memcmp(buffer, "late", 4) != 0) co_return "the half-closed peer reads";
  co_return "";
}

TEST(NetFaults, PeerHalfCloseMidReadIsEndOfStream) {
  on_each_poller_and_procs(peer_half_closes_mid_read);
}

// A peer that does not read: the writer parks once the socket buffers are
// full, copies nothing of its own (the process does not grow by the
// unsent bytes), and the write deadline ends it; what reached the peer is
// at most what the buffers hold.
Task<Verdict> slow_reader() {
  auto peer = co_await raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  std::vector<char> big(64 << 20, 's');  // touched: resident before the write
  const long resident_before = resident_bytes();
  peer->server.set_write_deadline(Clock::now() + 200ms);
  const absl::Status written = co_await peer->server.write(big.data(), big.size());
  if (!net::is_timeout(written)) co_return "write: " + describe(written);
  const long resident_after = resident_bytes();
  if (resident_after > resident_before + (16 << 20)) {
    co_return "grew by " + std::to_string(resident_after - resident_before) + " bytes";
  }
  // The peer drains what was sent: far less than the whole.
  std::vector<char> sink(1 << 20);
  std::size_t received = 0;
  for (;;) {
    const ssize_t n = ::recv(peer->raw, sink.data(), sink.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    received += static_cast<std::size_t>(n);
  }
  if (received == 0 || received >= big.size() / 2) {
    co_return "the peer received " + std::to_string(received) + " bytes";
  }
  // The connection stays usable once the deadline is moved.
  peer->server.set_write_deadline(Clock::time_point::max());
  const bool more = (co_await peer->server.write("more", 4)).ok();
  ::close(peer->raw);
  if (!more) co_return "write after the deadline";
  co_return "";
}

TEST(NetFaults, SlowReaderParksTheWriterWithoutGrowthUntilTheWriteDeadline) {
  on_each_poller_and_procs(slow_reader);
}

}  // namespace
}  // namespace goro
