// tests/net_dial_datagram_test.cpp: net::dial on datagram networks ("udp",
// "udp4", "udp6", "unixgram"), the connected Conn that Go's
// net.Dial("udp") gives, on both poller backends (run the binary again
// with GORO_POLLER=epoll).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "net_test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::describe;
using test::Verdict;

// A dialled UDP Conn writes datagrams to its peer and reads its replies,
// one datagram per read, truncated to the buffer.
Task<Verdict> udp_dial_round_trip(std::string network, std::string wildcard) {
  auto server = co_await net::listen_packet(network, wildcard);
  if (!server.ok()) co_return "listen_packet: " + describe(server.status());
  auto conn = co_await net::dial(network, server->local_addr().to_string());
  if (!conn.ok()) co_return "dial: " + describe(conn.status());
  if (conn->remote_addr() != server->local_addr()) co_return "remote_addr";
  if (!(co_await conn->write("ping", 4)).ok()) co_return "write";
  char buffer[16];
  auto got = co_await server->recv_from(buffer, sizeof buffer);
  if (!got.ok() || got->size != 4 || std::memcmp(buffer, "ping", 4) != 0) co_return "recv_from";
  if (got->from != conn->local_addr()) co_return "from " + got->from.to_string();
  // Two datagrams stay two: each read returns one, the longer one cut.
  if (!(co_await server->send_to("0123456789", 10, got->from)).ok()) co_return "send_to long";
  if (!(co_await server->send_to("ok", 2, got->from)).ok()) co_return "send_to short";
  char small[4];
  auto first = co_await conn->read(small, sizeof small);
  if (!first.ok() || *first != 4 || std::memcmp(small, "0123", 4) != 0) co_return "first read";
  auto second = co_await conn->read(buffer, sizeof buffer);
  if (!second.ok() || *second != 2 || std::memcmp(buffer, "ok", 2) != 0) co_return "second read";
  co_return "";
}

TEST(NetDialDatagram, UdpConnWritesAndReadsWholeDatagramsWithItsPeer) {
  test::run_verdict([]() GORO_CORO_WRAPPER { return udp_dial_round_trip("udp", "127.0.0.1:0"); });
}

TEST(NetDialDatagram, Udp6ConnOverIpv6Loopback) {
  test::Watchdog watchdog("udp6", std::chrono::seconds(120));
  auto probe =
      run([]() -> Task<bool> { co_return (co_await net::listen_packet("udp6", "[::1]:0")).ok(); }(),
          test::with_procs(1));
  if (!probe) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  test::run_verdict([]() GORO_CORO_WRAPPER { return udp_dial_round_trip("udp6", "[::1]:0"); });
}

// The kernel filters a connected socket's input: a datagram from another
// sender never reaches read.
Task<Verdict> udp_dial_ignores_other_senders() {
  auto server = co_await net::listen_packet("udp4", "127.0.0.1:0");
  auto stranger = co_await net::listen_packet("udp4", "127.0.0.1:0");
  if (!server.ok() || !stranger.ok()) co_return "listen_packet";
  auto conn = co_await net::dial("udp4", server->local_addr().to_string());
  if (!conn.ok()) co_return describe(conn.status());
  if (!(co_await stranger->send_to("bad", 3, conn->local_addr())).ok()) co_return "stranger";
  if (!(co_await server->send_to("good", 4, conn->local_addr())).ok()) co_return "server";
  char buffer[8];
  auto n = co_await conn->read(buffer, sizeof buffer);
  if (!n.ok() || std::string(buffer, *n) != "good") co_return "read a stranger's datagram";
  co_return "";
}

TEST(NetDialDatagram, UdpConnReadsOnlyFromItsPeer) {
  test::run_verdict(udp_dial_ignores_other_senders);
}

// Nothing listens at the peer's port: the ICMP answer to the first
// datagram fails the read that waits for a reply with ECONNREFUSED.
Task<Verdict> udp_dial_refused() {
  auto closed = co_await net::listen_packet("udp4", "127.0.0.1:0");
  if (!closed.ok()) co_return describe(closed.status());
  const std::string address = closed->local_addr().to_string();
  (void)closed->close();
  auto conn = co_await net::dial("udp4", address);
  if (!conn.ok()) co_return "dial: " + describe(conn.status());
  conn->set_read_deadline(Clock::now() + 30s);  // the verdict is the error, not when
  if (!(co_await conn->write("anyone?", 7)).ok()) co_return "write";
  char buffer[8];
  auto n = co_await conn->read(buffer, sizeof buffer);
  if (!net::is_refused(n.status())) co_return "read: " + describe(n.status());
  co_return "";
}

TEST(NetDialDatagram, UdpConnToAClosedPortReadsRefused) { test::run_verdict(udp_dial_refused); }

Task<Verdict> unixgram_dial(std::string name) {
  auto server = co_await net::listen_packet("unixgram", name);
  if (!server.ok()) co_return "listen_packet: " + describe(server.status());
  auto conn = co_await net::dial("unixgram", name);
  if (!conn.ok()) co_return "dial: " + describe(conn.status());
  for (const char* message : {"one", "", "three"}) {
    const std::size_t size = std::strlen(message);
    if (!(co_await conn->write(message, size)).ok()) co_return "write";
    char buffer[8];
    auto got = co_await server->recv_from(buffer, sizeof buffer);
    if (!got.ok() || std::string(buffer, got->size) != message) co_return "recv_from";
  }
  co_return "";
}

TEST(NetDialDatagram, UnixgramConnSendsDatagramsToAPathOrAbstractName) {
  const std::string path = test::unique_unix_path("path");
  test::run_verdict([&path]() GORO_CORO_WRAPPER { return unixgram_dial(path); });
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "socket file left behind";
  test::run_verdict(
      []() GORO_CORO_WRAPPER { return unixgram_dial("@" + test::unique_unix_path("abstract")); });
}

TEST(NetDialDatagram, UnixgramDialToAMissingPathFails) {
  test::run_verdict([]() -> Task<Verdict> {
    auto conn = co_await net::dial("unixgram", test::unique_unix_path("missing"));
    if (conn.ok() || net::errno_of(conn.status()) != ENOENT) co_return describe(conn.status());
    co_return "";
  });
}

}  // namespace
}  // namespace goro
