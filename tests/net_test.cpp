// tests/net_test.cpp: goro::net on both poller backends (run the binary
// again with GORO_POLLER=epoll): addresses, listen/accept/dial over
// loopback (IPv4, IPv6, Unix), echo of random sizes byte for byte,
// refused and timed-out dials, deadlines (also changed while an operation
// is parked), close and destruction while operations are parked, peer
// reset, half-close; UDP and unixgram datagrams.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
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
using test::echo_client;
using test::run_verdict;
using test::unique_unix_path;
using test::Verdict;

// A client and the server end of one loopback connection.
struct ConnPair {
  net::Conn client;
  net::Conn server;
};

Task<absl::StatusOr<ConnPair>> connected_pair(std::string network, std::string address) {
  auto listener = co_await net::listen(network, address);
  if (!listener.ok()) co_return listener.status();
  auto client = co_await net::dial(network, listener->addr().to_string());
  if (!client.ok()) co_return client.status();
  auto server = co_await listener->accept();
  if (!server.ok()) co_return server.status();
  co_return ConnPair{std::move(*client), std::move(*server)};
}

GORO_CORO_WRAPPER Task<absl::StatusOr<ConnPair>> tcp_pair() {
  return connected_pair("tcp", "127.0.0.1:0");
}

// One read of up to 8 bytes on `conn`, as a status: spawned, it parks a
// reader on a connection nobody writes to.
Task<absl::Status> read_status(net::Conn* conn) {
  char buffer[8];
  auto n = co_await conn->read(buffer, sizeof buffer);
  co_return n.status();
}

// A write of 64 MiB, more than the socket buffers hold: spawned, it parks
// a writer until the peer reads or something ends the write.
Task<absl::Status> write_beyond_buffers(net::Conn* conn) {
  std::vector<char> big(64 << 20, 'w');
  co_return co_await conn->write(big.data(), big.size());
}

// --- Addresses -------------------------------------------------------------

TEST(NetAddress, SplitHostPortAcceptsGoForms) {
  auto plain = net::split_host_port("127.0.0.1:80");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, "80");
  auto v6 = net::split_host_port("[::1]:8080");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8080");
  auto empty_host = net::split_host_port(":0");
  ASSERT_TRUE(empty_host.ok());
  EXPECT_EQ(empty_host->host, "");
  EXPECT_EQ(empty_host->port, "0");
  auto name = net::split_host_port("example.com:http");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "example.com");
}

TEST(NetAddress, SplitHostPortRejectsMalformed) {
  for (const char* bad :
       {"127.0.0.1", "::1:80", "[::1]", "[::1:80", "[::1]x:80", "a]:80", "a:[80]"}) {
    EXPECT_EQ(net::split_host_port(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NetAddress, ParseAndPrintRoundTrip) {
  for (const char* text : {"127.0.0.1:80", "[::1]:8080", "0.0.0.0:0", "[::]:65535"}) {
    auto address = net::Addr::parse_ip_port(text);
    ASSERT_TRUE(address.ok()) << text << ": " << address.status();
    EXPECT_EQ(address->to_string(), text);
  }
  auto v4 = net::Addr::parse_ip_port("10.1.2.3:443");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 443);
  EXPECT_EQ(v4->ip(), "10.1.2.3");
  EXPECT_EQ(net::join_host_port("::1", "80"), "[::1]:80");
  EXPECT_EQ(net::join_host_port("h", "80"), "h:80");
}

TEST(NetAddress, ParseRejectsNamesBadPortsAndEmptyHosts) {
  for (const char* bad : {"localhost:80", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:", ":80",
                          "1.2.3.4:8o", "[::1%]:80"}) {
    EXPECT_EQ(net::Addr::parse_ip_port(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(NetAddress, UnixPathsAndAbstractNames) {
  auto path = net::Addr::unix_socket("/tmp/x.sock");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->family(), AF_UNIX);
  EXPECT_EQ(path->to_string(), "/tmp/x.sock");
  auto abstract = net::Addr::unix_socket("@goro");
  ASSERT_TRUE(abstract.ok());
  EXPECT_EQ(abstract->to_string(), "@goro");
  EXPECT_FALSE(net::Addr::unix_socket("").ok());
  EXPECT_FALSE(net::Addr::unix_socket(std::string(200, 'a')).ok());
}

Task<Verdict> resolve_literal_and_name() {
  auto literal = co_await net::resolve("tcp", "127.0.0.1:7");
  if (!literal.ok() || literal->size() != 1 || (*literal)[0].to_string() != "127.0.0.1:7") {
    co_return "literal: " + describe(literal.status());
  }
  auto wrong_family = co_await net::resolve("tcp6", "127.0.0.1:7");
  if (wrong_family.status().code() != absl::StatusCode::kInvalidArgument) {
    co_return "tcp6 of an IPv4 literal: " + describe(wrong_family.status());
  }
  auto name = co_await net::resolve("tcp4", "localhost:9");
  if (!name.ok() || name->empty()) co_return "localhost: " + describe(name.status());
  for (const net::Addr& a : *name) {
    if (a.family() != AF_INET || a.port() != 9) co_return "localhost gave " + a.to_string();
  }
  auto missing = co_await net::resolve("tcp", "no-such-host.invalid:80");
  if (missing.ok()) co_return "no-such-host.invalid resolved";
  co_return "";
}

TEST(NetAddress, ResolveReturnsLiteralsAtOnceAndLooksUpNames) {
  run_verdict(resolve_literal_and_name);
}

// --- Listen, accept, dial --------------------------------------------------

Task<Verdict> port_zero_is_reported() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  if (listener->addr().port() == 0) co_return "port 0 reported";
  if (listener->addr().ip() != "127.0.0.1") co_return "ip " + listener->addr().ip();
  // A second listener on the same port fails (no SO_REUSEPORT asked).
  auto again = co_await net::listen("tcp", listener->addr().to_string());
  if (again.ok()) co_return "second listen on a used port succeeded";
  if (net::errno_of(again.status()) != EADDRINUSE) co_return describe(again.status());
  co_return "";
}

TEST(NetListen, PortZeroGetsAPortThatAddrReports) { run_verdict(port_zero_is_reported); }

Task<Verdict> reuse_port_shares() {
  auto first = co_await net::listen("tcp", "127.0.0.1:0", net::ListenOptions{.reuse_port = true});
  if (!first.ok()) co_return describe(first.status());
  auto second = co_await net::listen("tcp", first->addr().to_string(),
                                     net::ListenOptions{.reuse_port = true});
  if (!second.ok()) co_return "second: " + describe(second.status());
  co_return "";
}

TEST(NetListen, ReusePortLetsTwoListenersShareAPort) { run_verdict(reuse_port_shares); }

Task<Verdict> dual_stack_listener() {
  auto listener = co_await net::listen("tcp", "[::]:0");
  if (!listener.ok()) {
    if (net::errno_of(listener.status()) == EAFNOSUPPORT) co_return "";  // no IPv6 here
    co_return describe(listener.status());
  }
  const std::string port = std::to_string(listener->addr().port());
  auto v4 = co_await net::dial("tcp", "127.0.0.1:" + port);
  if (!v4.ok()) co_return "IPv4 dial: " + describe(v4.status());
  auto accepted = co_await listener->accept();
  if (!accepted.ok()) co_return describe(accepted.status());
  co_return "";
}

TEST(NetListen, DualStackWildcardAcceptsIpv4) { run_verdict(dual_stack_listener); }

Task<Verdict> ipv6_loopback() {
  auto listener = co_await net::listen("tcp6", "[::1]:0");
  if (!listener.ok()) co_return "skip";
  auto pair = co_await connected_pair("tcp6", "[::1]:0");
  if (!pair.ok()) co_return describe(pair.status());
  if (pair->client.remote_addr().ip() != "::1") co_return pair->client.remote_addr().to_string();
  if (!(co_await pair->client.write("v6", 2)).ok()) co_return "write";
  char buffer[2];
  if (!(co_await pair->server.read_full(buffer, 2)).ok()) co_return "read";
  if (std::memcmp(buffer, "v6", 2) != 0) co_return "wrong bytes";
  co_return "";
}

TEST(NetListen, Ipv6Loopback) {
  test::Watchdog watchdog("Ipv6Loopback", std::chrono::seconds(120));
  const Verdict verdict = run(ipv6_loopback(), test::with_procs(2));
  if (verdict == "skip") GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  EXPECT_EQ(verdict, "");
}

Task<Verdict> addresses_of_both_ends() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  if (pair->client.remote_addr() != pair->server.local_addr()) co_return "client remote";
  if (pair->client.local_addr() != pair->server.remote_addr()) co_return "client local";
  if (pair->client.local_addr().ip() != "127.0.0.1") co_return "ip";
  co_return "";
}

TEST(NetConn, LocalAndRemoteAddressesMatchAcrossTheConnection) {
  run_verdict(addresses_of_both_ends);
}

Task<Verdict> refused_dial() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  const std::string address = listener->addr().to_string();
  (void)listener->close();
  auto conn = co_await net::dial("tcp", address, Clock::now() + 30s);
  if (conn.ok()) co_return "dial to a closed port succeeded";
  if (!net::is_refused(conn.status())) co_return "not refused: " + describe(conn.status());
  if (net::is_timeout(conn.status()) || net::is_unreachable(conn.status())) {
    co_return "also timeout/unreachable: " + describe(conn.status());
  }
  if (conn.status().message().find(address) == absl::string_view::npos) {
    co_return "address missing from " + describe(conn.status());
  }
  co_return "";
}

TEST(NetDial, RefusedIsItsOwnError) { run_verdict(refused_dial); }

// Linux answers a TCP connect to a broadcast or multicast address with
// ENETUNREACH at once, which makes "unreachable" testable without a route
// change.
Task<Verdict> unreachable_dial() {
  auto conn = co_await net::dial("tcp", "255.255.255.255:9", Clock::now() + 30s);
  if (conn.ok()) co_return "dial to the broadcast address connected";
  if (!net::is_unreachable(conn.status())) co_return "not unreachable: " + describe(conn.status());
  if (net::is_refused(conn.status()) || net::is_timeout(conn.status())) {
    co_return "also refused/timeout: " + describe(conn.status());
  }
  co_return "";
}

TEST(NetDial, UnreachableIsItsOwnError) { run_verdict(unreachable_dial); }

// A listener with a full accept queue drops new SYNs, so a dial to it can
// only end by its deadline: the verdict is the kind of error, not when.
Task<Verdict> dial_times_out() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0", net::ListenOptions{.backlog = 0});
  if (!listener.ok()) co_return describe(listener.status());
  std::vector<net::Conn> queued;
  for (int attempt = 0; attempt < 64; ++attempt) {
    auto conn = co_await net::dial("tcp", listener->addr().to_string(), Clock::now() + 300ms);
    if (conn.ok()) {
      queued.push_back(std::move(*conn));
      continue;
    }
    if (!net::is_timeout(conn.status())) co_return "not a timeout: " + describe(conn.status());
    if (conn.status().code() != absl::StatusCode::kDeadlineExceeded) {
      co_return "code: " + describe(conn.status());
    }
    if (net::is_refused(conn.status())) co_return "also refused";
    co_return "";
  }
  co_return "64 dials to a backlog-0 listener all connected";
}

TEST(NetDial, DeadlineEndsADialThatGetsNoAnswer) { run_verdict(dial_times_out); }

Task<Verdict> dial_cancelled_by_context() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0", net::ListenOptions{.backlog = 0});
  if (!listener.ok()) co_return describe(listener.status());
  std::vector<net::Conn> queued;
  auto [ctx, cancel] = with_cancel(background());
  go(
      [](CancelFunc cancel) -> Task<void> {
        co_await sleep(100ms);
        cancel();
      },
      cancel);
  for (int attempt = 0; attempt < 64; ++attempt) {
    auto conn = co_await net::dial("tcp", listener->addr().to_string(), ctx);
    if (conn.ok()) {
      queued.push_back(std::move(*conn));
      continue;
    }
    if (conn.status().code() != absl::StatusCode::kCancelled) co_return describe(conn.status());
    co_return "";
  }
  co_return "64 dials to a backlog-0 listener all connected";
}

TEST(NetDial, ContextCancelEndsADial) { run_verdict(dial_cancelled_by_context); }

TEST(NetDial, UnknownNetworkAndBadAddressAreInvalidArgument) {
  run_verdict([]() -> Task<Verdict> {
    auto bad_network = co_await net::dial("tcp5", "127.0.0.1:1");
    if (bad_network.status().code() != absl::StatusCode::kInvalidArgument) {
      co_return describe(bad_network.status());
    }
    auto bad_address = co_await net::dial("tcp", "127.0.0.1");
    if (bad_address.status().code() != absl::StatusCode::kInvalidArgument) {
      co_return describe(bad_address.status());
    }
    co_return "";
  });
}

// --- Echo -----------------------------------------------------------------

Task<void> echo_server(std::shared_ptr<net::Listener> listener) {
  for (;;) {
    auto conn = co_await listener->accept();
    if (!conn.ok()) co_return;
    go(test::echo_until_end, std::move(*conn), std::size_t{16 * 1024});
  }
}

Task<Verdict> echo_many() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  auto shared = std::make_shared<net::Listener>(std::move(*listener));
  go(echo_server, shared);
  const int clients = test::scaled(64, 8);
  const int rounds = test::scaled(20, 4);
  auto done = std::make_shared<WaitGroup>();
  auto failures = std::make_shared<std::atomic<long>>(0);
  done->add(clients);
  for (int i = 0; i < clients; ++i) {
    go(echo_client, shared->addr().to_string(), i, rounds, done, failures);
  }
  co_await done->wait();
  (void)shared->close();
  if (failures->load() != 0) co_return std::to_string(failures->load()) + " clients failed";
  co_return "";
}

TEST(NetConn, EchoOfRandomSizesOverManyConnectionsIsByteExact) { run_verdict(echo_many, 4); }

TEST(NetConn, EchoOnOneP) { run_verdict(echo_many, 1); }

Task<Verdict> writev_in_order() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  std::string a(100'000, 'a'), b = "", c(3'000'000, 'c'), d = "tail";
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<char>('A' + i % 26);
  std::vector<iovec> buffers = {
      {a.data(), a.size()}, {b.data(), 0}, {c.data(), c.size()}, {d.data(), d.size()}};
  const std::string expected = a + b + c + d;
  auto reader = spawn(
      [](net::Conn* conn, std::size_t size) -> Task<std::string> {
        std::string got(size, '\0');
        if (!(co_await conn->read_full(got.data(), size)).ok()) co_return "";
        co_return got;
      },
      &pair->server, expected.size());
  const absl::Status written = co_await pair->client.writev(buffers);
  const std::string got = co_await reader;
  if (!written.ok()) co_return describe(written);
  if (got != expected) co_return "bytes differ";
  co_return "";
}

TEST(NetConn, WritevWritesEveryBufferInOrder) { run_verdict(writev_in_order); }

// try_write sends what the socket takes at once and reports a full send
// buffer as 0 bytes, never waiting; once the peer drains, it sends again.
// Every byte it reported arrives, in order.
Task<Verdict> try_write_without_waiting() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto small = pair->client.try_write("hello", 5);
  if (!small.ok() || *small != 5) co_return "small try_write: " + describe(small.status());
  auto none = pair->client.try_write("x", 0);
  if (!none.ok() || *none != 0) co_return "empty try_write: " + describe(none.status());
  std::string expected = "hello";
  std::vector<char> chunk(1 << 16);
  for (std::size_t i = 0;; ++i) {
    for (std::size_t j = 0; j < chunk.size(); ++j) chunk[j] = static_cast<char>('a' + (i + j) % 26);
    auto n = pair->client.try_write(chunk.data(), chunk.size());
    if (!n.ok()) co_return "filling: " + describe(n.status());
    if (*n == 0) break;  // full: the loopback socket buffers are bounded
    expected.append(chunk.data(), *n);
  }
  std::string got(expected.size(), '\0');
  if (auto read = co_await pair->server.read_full(got.data(), got.size()); !read.ok()) {
    co_return "draining: " + describe(read);
  }
  if (got != expected) co_return "bytes differ";
  auto again = pair->client.try_write("again", 5);
  if (!again.ok() || *again != 5) co_return "after draining: " + describe(again.status());
  if (!(co_await pair->server.read_full(got.data(), 5)).ok() || got.compare(0, 5, "again") != 0) {
    co_return "the last bytes did not arrive";
  }
  // From a thread outside the runtime, as from a goroutine.
  absl::StatusOr<std::size_t> from_thread;
  std::thread([&] { from_thread = pair->client.try_write("t", 1); }).join();
  if (!from_thread.ok() || *from_thread != 1)
    co_return "from a thread: " + describe(from_thread.status());
  co_return "";
}

TEST(NetConn, TryWriteSendsWhatFitsWithoutWaiting) { run_verdict(try_write_without_waiting); }

// try_write fails as write would: after the write deadline ("i/o
// timeout", until the deadline is cleared), after close (closed error),
// and on a reset connection.
Task<Verdict> try_write_failures() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  pair->client.set_write_deadline(Clock::now() - 1s);
  auto late = pair->client.try_write("x", 1);
  if (late.status().code() != absl::StatusCode::kDeadlineExceeded ||
      !net::is_timeout(late.status())) {
    co_return "past deadline: " + describe(late.status());
  }
  pair->client.set_write_deadline(Clock::time_point::max());
  if (auto n = pair->client.try_write("x", 1); !n.ok() || *n != 1) {
    co_return "cleared deadline: " + describe(n.status());
  }
  (void)pair->client.close();
  if (auto closed = pair->client.try_write("x", 1); !net::is_closed(closed.status())) {
    co_return "closed: " + describe(closed.status());
  }
  net::Conn moved_from = std::move(pair->server);
  if (auto empty = pair->server.try_write("x", 1); !net::is_closed(empty.status())) {
    co_return "moved-from: " + describe(empty.status());
  }

  auto peer = co_await test::raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  auto reader = spawn(read_status, &peer->server);
  test::close_with_reset(peer->raw);
  // The read seeing the reset orders the try_write after it.
  const absl::Status read = co_await reader;
  if (net::errno_of(read) != ECONNRESET) co_return "read: " + describe(read);
  auto reset = peer->server.try_write("x", 1);
  if (reset.ok()) co_return "try_write to a reset connection succeeded";
  const std::optional<int> error = net::errno_of(reset.status());
  if (error != EPIPE && error != ECONNRESET) co_return "reset: " + describe(reset.status());
  co_return "";
}

TEST(NetConn, TryWriteFailsAsWriteWould) { run_verdict(try_write_failures); }

// --- End of stream, half-close, reset -------------------------------------

Task<Verdict> half_close() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  if (!(co_await pair->client.write("ping", 4)).ok()) co_return "write";
  if (auto s = pair->client.close_write(); !s.ok()) co_return describe(s);
  char buffer[8];
  if (!(co_await pair->server.read_full(buffer, 4)).ok()) co_return "read ping";
  auto eof = co_await pair->server.read(buffer, sizeof buffer);
  if (!eof.ok() || *eof != 0) co_return "expected end of stream: " + describe(eof.status());
  // The other direction still works.
  if (!(co_await pair->server.write("pong", 4)).ok()) co_return "write pong";
  if (!(co_await pair->client.read_full(buffer, 4)).ok()) co_return "read pong";
  if (std::memcmp(buffer, "pong", 4) != 0) co_return "wrong pong";
  // read_full at end of stream: EOF, and unexpected EOF after a part.
  (void)pair->server.close_write();
  const absl::Status at_end = co_await pair->client.read_full(buffer, 4);
  if (!net::is_eof(at_end)) co_return "read_full at end: " + describe(at_end);
  co_return "";
}

TEST(NetConn, HalfCloseEndsOneDirectionOnly) { run_verdict(half_close); }

Task<Verdict> unexpected_eof() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  if (!(co_await pair->client.write("abc", 3)).ok()) co_return "write";
  (void)pair->client.close();
  char buffer[8] = {};
  const absl::Status partial = co_await pair->server.read_full(buffer, 8);
  if (!net::is_eof(partial)) co_return describe(partial);
  if (partial.message().find("unexpected EOF") == absl::string_view::npos) {
    co_return describe(partial);
  }
  if (std::memcmp(buffer, "abc", 3) != 0) co_return "partial bytes lost";
  co_return "";
}

TEST(NetConn, ReadFullReportsUnexpectedEofAndKeepsThePart) { run_verdict(unexpected_eof); }

Task<Verdict> peer_reset() {
  // The peer is a raw socket so that it can close with SO_LINGER 0 (RST).
  auto peer = co_await test::raw_peer();
  if (!peer.ok()) co_return describe(peer.status());
  auto reader = spawn(read_status, &peer->server);
  co_await sleep(20ms);  // lets the read park first (either order gives the same verdict)
  test::close_with_reset(peer->raw);
  const absl::Status read = co_await reader;
  if (net::errno_of(read) != ECONNRESET) co_return "read: " + describe(read);
  // Writing to the reset connection fails too (EPIPE or ECONNRESET), as
  // a value.
  const absl::Status write = co_await peer->server.write("x", 1);
  if (write.ok()) co_return "write to a reset connection succeeded";
  co_return "";
}

TEST(NetConn, PeerResetFailsTheParkedReadWithConnectionReset) { run_verdict(peer_reset); }

// --- Deadlines --------------------------------------------------------------

Task<Verdict> read_deadline() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  pair->server.set_read_deadline(Clock::now() + 50ms);
  char buffer[8];
  auto n = co_await pair->server.read(buffer, sizeof buffer);
  if (n.status().code() != absl::StatusCode::kDeadlineExceeded || !net::is_timeout(n.status())) {
    co_return "first read: " + describe(n.status());
  }
  // The deadline stays until changed: the next read fails at once, even
  // with data waiting; clearing it lets the data through.
  if (!(co_await pair->client.write("hi", 2)).ok()) co_return "write";
  auto again = co_await pair->server.read(buffer, sizeof buffer);
  if (again.status().code() != absl::StatusCode::kDeadlineExceeded) {
    co_return "second read: " + describe(again.status());
  }
  pair->server.set_read_deadline(Clock::time_point::max());
  if (!(co_await pair->server.read_full(buffer, 2)).ok()) co_return "read after clearing";
  if (std::memcmp(buffer, "hi", 2) != 0) co_return "data lost";
  co_return "";
}

TEST(NetDeadline, ReadDeadlineFailsReadsUntilChanged) { run_verdict(read_deadline); }

Task<Verdict> write_deadline() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  std::vector<char> big(64 << 20, 'w');  // more than the socket buffers hold
  pair->client.set_write_deadline(Clock::now() + 100ms);
  const absl::Status written = co_await pair->client.write(big.data(), big.size());
  if (written.code() != absl::StatusCode::kDeadlineExceeded) co_return describe(written);
  co_return "";
}

TEST(NetDeadline, WriteDeadlineEndsAWriteThePeerDoesNotRead) { run_verdict(write_deadline); }

Task<Verdict> accept_deadline() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  listener->set_deadline(Clock::now() + 50ms);
  auto conn = co_await listener->accept();
  if (conn.status().code() != absl::StatusCode::kDeadlineExceeded)
    co_return describe(conn.status());
  listener->set_deadline(Clock::time_point::max());
  auto client = co_await net::dial("tcp", listener->addr().to_string());
  if (!client.ok()) co_return describe(client.status());
  auto accepted = co_await listener->accept();
  if (!accepted.ok()) co_return "after clearing: " + describe(accepted.status());
  co_return "";
}

TEST(NetDeadline, AcceptDeadlineExpiresAndClears) { run_verdict(accept_deadline); }

// A read parked with no deadline wakes when a deadline in the past is set
// from another goroutine.
Task<Verdict> deadline_moved_into_past_wakes_parked_read() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto reader = spawn(read_status, &pair->server);
  co_await sleep(20ms);  // lets the read park first (either order gives the same verdict)
  pair->server.set_read_deadline(Clock::now());
  const absl::Status read = co_await reader;
  if (read.code() != absl::StatusCode::kDeadlineExceeded) co_return describe(read);
  co_return "";
}

TEST(NetDeadline, SetWhileParkedWakesTheRead) {
  run_verdict(deadline_moved_into_past_wakes_parked_read);
}

// A read parked under a near deadline keeps waiting once the deadline is
// cleared, and gets the data written afterwards.
Task<Verdict> deadline_cleared_while_parked() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  pair->server.set_read_deadline(Clock::now() + 1h);
  auto reader = spawn(
      [](net::Conn* conn) -> Task<absl::StatusOr<std::string>> {
        char buffer[8];
        auto n = co_await conn->read(buffer, sizeof buffer);
        if (!n.ok()) co_return n.status();
        co_return std::string(buffer, *n);
      },
      &pair->server);
  co_await sleep(20ms);
  pair->server.set_read_deadline(Clock::now() + 1h + 1min);
  pair->server.set_read_deadline(Clock::time_point::max());
  co_await sleep(20ms);
  if (!(co_await pair->client.write("late", 4)).ok()) co_return "write";
  auto read = co_await reader;
  if (!read.ok()) co_return describe(read.status());
  if (*read != "late") co_return "read " + *read;
  co_return "";
}

TEST(NetDeadline, ChangedWhileParkedKeepsTheReadAndItsData) {
  run_verdict(deadline_cleared_while_parked);
}

Task<Verdict> context_read() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto [ctx, cancel] = with_cancel(background());
  go(
      [](CancelFunc cancel) -> Task<void> {
        co_await sleep(20ms);
        cancel();
      },
      cancel);
  char buffer[8];
  auto n = co_await pair->server.read(buffer, sizeof buffer, ctx);
  if (n.status().code() != absl::StatusCode::kCancelled) co_return describe(n.status());
  auto [timed, release] = with_timeout(background(), 30ms);
  auto late = co_await pair->server.read(buffer, sizeof buffer, timed);
  if (late.status().code() != absl::StatusCode::kDeadlineExceeded) {
    co_return describe(late.status());
  }
  // The connection is still usable.
  if (!(co_await pair->client.write("ok", 2)).ok()) co_return "write";
  if (!(co_await pair->server.read_full(buffer, 2)).ok()) co_return "read after";
  co_return "";
}

TEST(NetDeadline, ContextCancelAndDeadlineEndARead) { run_verdict(context_read); }

// A write parked on a full socket buffer wakes when a write deadline in
// the past is set from another goroutine; the connection's read side is
// untouched.
Task<Verdict> write_deadline_set_while_parked() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto writer = spawn(write_beyond_buffers, &pair->client);
  co_await sleep(50ms);  // lets the write fill the buffers and park (either order: same verdict)
  pair->client.set_write_deadline(Clock::now());
  const absl::Status written = co_await writer;
  if (written.code() != absl::StatusCode::kDeadlineExceeded) co_return describe(written);
  if (!(co_await pair->server.write("r", 1)).ok()) co_return "peer write";
  char byte;
  if (!(co_await pair->client.read_full(&byte, 1)).ok()) co_return "read after";
  co_return "";
}

TEST(NetDeadline, WriteDeadlineSetWhileParkedWakesTheWrite) {
  run_verdict(write_deadline_set_while_parked);
}

TEST(NetConn, DefaultAndMovedFromConnsAreClosed) {
  run_verdict([]() -> Task<Verdict> {
    net::Conn empty;
    char buffer[1];
    auto n = co_await empty.read(buffer, 1);
    if (!net::is_closed(n.status())) co_return "default read: " + describe(n.status());
    auto pair = co_await tcp_pair();
    if (!pair.ok()) co_return describe(pair.status());
    net::Conn moved = std::move(pair->client);
    if (!net::is_closed(co_await pair->client.write("x", 1))) co_return "moved-from write";
    if (!(co_await moved.write("x", 1)).ok()) co_return "moved-to write";
    if (!(co_await pair->server.read_full(buffer, 1)).ok()) co_return "read";
    co_return "";
  });
}

// --- Close with operations parked ------------------------------------------

Task<Verdict> close_wakes_accept() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return describe(listener.status());
  auto acceptor = spawn(
      [](net::Listener* listener) -> Task<absl::Status> {
        auto conn = co_await listener->accept();
        co_return conn.status();
      },
      &*listener);
  co_await sleep(20ms);  // lets the accept park first (either order gives the same verdict)
  if (auto s = listener->close(); !s.ok()) co_return describe(s);
  const absl::Status accepted = co_await acceptor;
  if (!net::is_closed(accepted)) co_return "accept: " + describe(accepted);
  auto after = co_await listener->accept();
  if (!net::is_closed(after.status())) co_return "later accept: " + describe(after.status());
  if (!net::is_closed(listener->close())) co_return "second close";
  co_return "";
}

TEST(NetClose, CloseWakesAParkedAcceptWithClosedError) { run_verdict(close_wakes_accept); }

Task<Verdict> close_wakes_read_and_write() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto reader = spawn(read_status, &pair->server);
  auto writer = spawn(write_beyond_buffers, &pair->server);
  co_await sleep(50ms);  // lets both park (either order gives the same verdict)
  if (auto s = pair->server.close(); !s.ok()) co_return describe(s);
  const absl::Status read = co_await reader;
  const absl::Status written = co_await writer;
  if (!net::is_closed(read)) co_return "read: " + describe(read);
  if (!net::is_closed(written)) co_return "write: " + describe(written);
  char buffer[1];
  auto later = co_await pair->server.read(buffer, 1);
  if (!net::is_closed(later.status())) co_return "later read: " + describe(later.status());
  // The peer sees the connection end.
  std::vector<char> drain(1 << 20);
  for (;;) {
    auto n = co_await pair->client.read(drain.data(), drain.size());
    if (!n.ok() || *n == 0) break;
  }
  co_return "";
}

TEST(NetClose, CloseWakesParkedReadAndWriteWithClosedError) {
  run_verdict(close_wakes_read_and_write);
}

// Closing from a thread outside the runtime works the same way.
Task<Verdict> close_from_outside_thread() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  std::thread closer([conn = &pair->server] {
    std::this_thread::sleep_for(20ms);
    (void)conn->close();
  });
  char buffer[8];
  auto n = co_await pair->server.read(buffer, sizeof buffer);
  closer.join();
  if (!net::is_closed(n.status())) co_return describe(n.status());
  co_return "";
}

TEST(NetClose, CloseFromAThreadOutsideTheRuntimeWakesTheRead) {
  run_verdict(close_from_outside_thread);
}

// Destroying the Conn a goroutine is parked on closes it and wakes that
// goroutine, which then finishes without touching freed memory.
Task<Verdict> destroy_with_parked_reader() {
  auto pair = co_await tcp_pair();
  if (!pair.ok()) co_return describe(pair.status());
  auto owned = std::make_unique<net::Conn>(std::move(pair->server));
  auto reader = spawn(read_status, owned.get());
  co_await sleep(20ms);  // the read parks (started, it no longer needs the Conn)
  owned.reset();
  const absl::Status read = co_await reader;
  if (!net::is_closed(read)) co_return describe(read);
  co_return "";
}

TEST(NetClose, DestroyingAConnWakesItsParkedReader) { run_verdict(destroy_with_parked_reader); }

// Many rounds of close racing parked and starting operations, while new
// sockets are opened (so fd numbers are recycled at once): no operation
// ever reports data from another connection, and none hangs.
Task<Verdict> close_races_recycled_fds() {
  const int rounds = test::scaled(300, 40);
  for (int round = 0; round < rounds; ++round) {
    auto pair = co_await tcp_pair();
    if (!pair.ok()) co_return describe(pair.status());
    auto reader = spawn(
        [](net::Conn* conn) -> Task<absl::StatusOr<std::size_t>> {
          char buffer[8];
          co_return co_await conn->read(buffer, sizeof buffer);
        },
        &pair->server);
    if (round % 2 == 0) co_await yield();
    (void)pair->server.close();
    // A fresh pair likely gets the number just released.
    auto other = co_await tcp_pair();
    if (!other.ok()) co_return describe(other.status());
    if (!(co_await other->client.write("zz", 2)).ok()) co_return "write";
    auto read = co_await reader;
    if (read.ok()) co_return "a read on a closed Conn returned " + std::to_string(*read) + " bytes";
    if (!net::is_closed(read.status())) co_return describe(read.status());
  }
  co_return "";
}

TEST(NetClose, CloseRacingReadsWhileFdNumbersAreReusedReportsOnlyClosed) {
  run_verdict(close_races_recycled_fds);
}

// --- Unix sockets -------------------------------------------------------------

Task<Verdict> unix_stream(std::string address) {
  auto pair = co_await connected_pair("unix", address);
  if (!pair.ok()) co_return describe(pair.status());
  if (!(co_await pair->client.write("unix", 4)).ok()) co_return "write";
  char buffer[4];
  if (!(co_await pair->server.read_full(buffer, 4)).ok()) co_return "read";
  if (std::memcmp(buffer, "unix", 4) != 0) co_return "bytes";
  co_return "";
}

TEST(NetUnix, PathSocketCarriesBytesAndIsRemovedOnClose) {
  const std::string path = unique_unix_path("path");
  test::Watchdog watchdog("unix path", std::chrono::seconds(120));
  EXPECT_EQ(run(unix_stream(path), test::with_procs(2)), "");
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "socket file left behind";
}

TEST(NetUnix, AbstractName) {
  test::Watchdog watchdog("unix abstract", std::chrono::seconds(120));
  EXPECT_EQ(run(unix_stream("@" + unique_unix_path("abstract")), test::with_procs(2)), "");
}

Task<Verdict> stale_socket_file(std::string path) {
  // A socket bound and closed leaves its file behind: stale.
  auto address = net::Addr::unix_socket(path);
  const int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::bind(raw, address->sockaddr_pointer(), address->length()) != 0) co_return "bind";
  ::close(raw);
  auto refused = co_await net::listen("unix", path);
  if (refused.ok() || net::errno_of(refused.status()) != EADDRINUSE) {
    co_return "without remove_stale: " + describe(refused.status());
  }
  auto listener = co_await net::listen("unix", path, net::ListenOptions{.remove_stale = true});
  if (!listener.ok()) co_return "with remove_stale: " + describe(listener.status());
  // A live listener's file is never removed, even when asked.
  auto live = co_await net::listen("unix", path, net::ListenOptions{.remove_stale = true});
  if (live.ok() || net::errno_of(live.status()) != EADDRINUSE) {
    co_return "over a live listener: " + describe(live.status());
  }
  auto conn = co_await net::dial("unix", path);
  if (!conn.ok()) co_return "dial: " + describe(conn.status());
  co_return "";
}

TEST(NetUnix, RemoveStaleRemovesOnlyAStaleFileAndOnlyWhenAsked) {
  const std::string path = unique_unix_path("stale");
  test::Watchdog watchdog("unix stale", std::chrono::seconds(120));
  EXPECT_EQ(run(stale_socket_file(path), test::with_procs(2)), "");
  ::unlink(path.c_str());
}

TEST(NetUnix, DialToAMissingPathFails) {
  run_verdict([]() -> Task<Verdict> {
    auto conn = co_await net::dial("unix", unique_unix_path("missing"));
    if (conn.ok() || net::errno_of(conn.status()) != ENOENT) co_return describe(conn.status());
    co_return "";
  });
}

// --- Datagram sockets ------------------------------------------------------

Task<Verdict> udp_round_trip() {
  auto a = co_await net::listen_packet("udp", "127.0.0.1:0");
  auto b = co_await net::listen_packet("udp4", "127.0.0.1:0");
  if (!a.ok() || !b.ok()) co_return "listen_packet";
  if (a->local_addr().port() == 0) co_return "port 0 reported";
  if (!(co_await a->send_to("hello", 5, b->local_addr())).ok()) co_return "send_to";
  char buffer[16];
  auto got = co_await b->recv_from(buffer, sizeof buffer);
  if (!got.ok()) co_return describe(got.status());
  if (got->size != 5 || std::memcmp(buffer, "hello", 5) != 0) co_return "payload";
  if (got->from != a->local_addr()) co_return "from " + got->from.to_string();
  // Reply to the sender; a datagram longer than the buffer is truncated.
  if (!(co_await b->send_to("0123456789", 10, got->from)).ok()) co_return "reply";
  char small[4];
  auto reply = co_await a->recv_from(small, sizeof small);
  if (!reply.ok() || reply->size != 4 || !reply->truncated) co_return "truncation";
  // An empty datagram is a datagram.
  if (!(co_await a->send_to("", 0, b->local_addr())).ok()) co_return "empty send";
  auto empty = co_await b->recv_from(buffer, sizeof buffer);
  if (!empty.ok() || empty->size != 0) co_return "empty datagram";
  co_return "";
}

TEST(NetPacket, UdpSendToAndRecvFromKeepDatagramsAndSenders) { run_verdict(udp_round_trip); }

Task<Verdict> udp_deadline_and_close() {
  auto socket = co_await net::listen_packet("udp", "127.0.0.1:0");
  if (!socket.ok()) co_return describe(socket.status());
  socket->set_read_deadline(Clock::now() + 30ms);
  char buffer[8];
  auto late = co_await socket->recv_from(buffer, sizeof buffer);
  if (late.status().code() != absl::StatusCode::kDeadlineExceeded) {
    co_return "deadline: " + describe(late.status());
  }
  socket->set_read_deadline(Clock::time_point::max());
  auto receiver = spawn(
      [](net::PacketConn* socket) -> Task<absl::Status> {
        char buffer[8];
        auto got = co_await socket->recv_from(buffer, sizeof buffer);
        co_return got.status();
      },
      &*socket);
  co_await sleep(20ms);  // lets the receive park first (either order gives the same verdict)
  (void)socket->close();
  const absl::Status received = co_await receiver;
  if (!net::is_closed(received)) co_return "close: " + describe(received);
  co_return "";
}

TEST(NetPacket, RecvFromHonoursDeadlinesAndWakesOnClose) { run_verdict(udp_deadline_and_close); }

Task<Verdict> unixgram(std::string server_name, std::string client_name) {
  auto server = co_await net::listen_packet("unixgram", server_name);
  auto client = co_await net::listen_packet("unixgram", client_name);
  if (!server.ok()) co_return describe(server.status());
  if (!client.ok()) co_return describe(client.status());
  if (!(co_await client->send_to("dgram", 5, server->local_addr())).ok()) co_return "send";
  char buffer[8];
  auto got = co_await server->recv_from(buffer, sizeof buffer);
  if (!got.ok() || got->size != 5) co_return "recv";
  if (got->from.to_string() != client_name) co_return "from " + got->from.to_string();
  co_return "";
}

TEST(NetPacket, UnixgramPathsAndAbstractNames) {
  test::Watchdog watchdog("unixgram", std::chrono::seconds(120));
  const std::string server = unique_unix_path("dgram-server");
  const std::string client = unique_unix_path("dgram-client");
  EXPECT_EQ(run(unixgram(server, client), test::with_procs(2)), "");
  EXPECT_NE(::access(server.c_str(), F_OK), 0) << "socket file left behind";
  EXPECT_EQ(run(unixgram("@" + server, "@" + client), test::with_procs(2)), "");
}

}  // namespace
}  // namespace goro
