// tests/net_multishot_test.cpp: multishot accept (goro::io::AcceptStream and
// net::Listener on it) on both poller backends (run the binary again with
// GORO_POLLER=epoll, where the stream accepts on readiness and queues
// nothing): connections that arrive while nobody accepts are queued up to
// Config::accept_queue_capacity (a tiny one here), the rest wait in the
// listen backlog, and every one is accepted once, in arrival order; several
// acceptors, deadlines, stop and close with queued connections, and a
// runtime that ends with an accept parked.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/io_multishot.hpp>
#include <goro/net.hpp>

#include "net_test_util.hpp"
#include "poller.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

using test::run_verdict;
using test::Verdict;

bool multishot_runs() { return std::string(io::poller_backend()) == "io_uring"; }

Config tiny_queue_config(unsigned procs, unsigned capacity) {
  Config config = test::with_procs(procs);
  config.accept_queue_capacity = capacity;
  return config;
}

// A listening TCP socket on 127.0.0.1 with `backlog`; its fd and port.
struct RawListener {
  int fd = -1;
  int port = 0;
};
RawListener raw_listener(int backlog) {
  RawListener l;
  l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (l.fd < 0 || ::bind(l.fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(l.fd, backlog) != 0 ||
      ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return RawListener{};
  }
  l.port = ntohs(address.sin_port);
  return l;
}

// A scenario on an AcceptStream: its body, given the stream and the port
// its raw listener listens on.
using StreamScenario = Task<Verdict> (*)(io::AcceptStream& stream, int port);

// Runs `Scenario` on an AcceptStream over a fresh raw listener with
// `Backlog`, then stops the stream and closes the listener.
template <int Backlog, StreamScenario Scenario>
Task<Verdict> on_raw_stream() {
  RawListener listener = raw_listener(Backlog);
  if (listener.fd < 0) co_return "listen failed";
  io::AcceptStream stream(listener.fd);
  const Verdict verdict = co_await Scenario(stream, listener.port);
  stream.stop();
  (void)io::close(listener.fd);
  co_return verdict;
}

// Dials `count` clients to `address`, sending nothing.
Task<absl::StatusOr<std::vector<net::Conn>>> dial_many(std::string address, int count) {
  std::vector<net::Conn> clients;
  for (int i = 0; i < count; ++i) {
    auto conn = co_await net::dial("tcp", address);
    if (!conn.ok()) co_return conn.status();
    clients.push_back(std::move(*conn));
  }
  co_return clients;
}

// Dials `count` clients one after another, each writing its index (4
// bytes), so that the listener's queue sees them in index order.
Task<absl::StatusOr<std::vector<net::Conn>>> dial_numbered(int port, int count) {
  std::vector<net::Conn> clients;
  for (int i = 0; i < count; ++i) {
    auto conn = co_await net::dial("tcp", "127.0.0.1:" + std::to_string(port));
    if (!conn.ok()) co_return conn.status();
    const std::uint32_t index = static_cast<std::uint32_t>(i);
    if (auto s = co_await conn->write(&index, sizeof index); !s.ok()) co_return s;
    clients.push_back(std::move(*conn));
  }
  co_return clients;
}

// The index the client of accepted fd `fd` wrote.
Task<absl::StatusOr<std::uint32_t>> read_index(int fd) {
  std::uint32_t index = 0;
  std::size_t done = 0;
  while (done < sizeof index) {
    auto n = co_await io::recv(fd, reinterpret_cast<char*>(&index) + done, sizeof index - done, 0,
                               io::IoOptions::timeout(30s));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return absl::OutOfRangeError("EOF before the index");
    done += *n;
  }
  co_return index;
}

// Waits (a bounded poll) until `stream` holds `count` queued results.
Task<bool> wait_queued(const io::AcceptStream& stream, std::size_t count) {
  const auto limit = Clock::now() + 30s;
  while (stream.queued() < count) {
    if (Clock::now() > limit) co_return false;
    co_await sleep(1ms);
  }
  co_return true;
}

// Accepts `count` connections from `stream`: the i-th must come from the
// client that wrote index i.
Task<Verdict> accept_in_order(io::AcceptStream& stream, int count) {
  for (int i = 0; i < count; ++i) {
    auto fd = co_await stream.accept(io::IoOptions::timeout(30s));
    if (!fd.ok()) co_return "accept " + std::to_string(i) + ": " + fd.status().ToString();
    auto index = co_await read_index(*fd);
    (void)io::close(*fd);
    if (!index.ok()) co_return index.status().ToString();
    if (*index != static_cast<std::uint32_t>(i)) {
      co_return "accepted client " + std::to_string(*index) + " as number " + std::to_string(i);
    }
  }
  co_return "";
}

// Dials `count` numbered clients, then accepts them in order (the first
// accept on a stream arms its multishot request).
Task<Verdict> dial_and_accept(io::AcceptStream& stream, int port, int count) {
  auto clients = co_await dial_numbered(port, count);
  if (!clients.ok()) co_return clients.status().ToString();
  co_return co_await accept_in_order(stream, count);
}

// --- AcceptStream -------------------------------------------------------------

// Capacity 3, 12 clients dialled while nobody accepts: 3 wait accepted in
// the stream (under io_uring), the rest in the backlog; all 12 are then
// accepted once each, in the order they were dialled.
Task<Verdict> queue_then_backlog_keeps_order(io::AcceptStream& stream, int port) {
  if (Verdict v = co_await dial_and_accept(stream, port, 1); !v.empty()) co_return v;
  constexpr int kClients = 12;
  auto clients = co_await dial_numbered(port, kClients);
  if (!clients.ok()) co_return clients.status().ToString();
  if (multishot_runs()) {
    if (!co_await wait_queued(stream, 3)) co_return "the stream never queued 3 connections";
    // The bound: the kernel's request was cancelled at the capacity, and
    // what it posted before the cancel took effect is all that is over it.
    co_await sleep(20ms);
    if (stream.queued() > 3 + 2) {
      co_return "queued " + std::to_string(stream.queued()) + " past a capacity of 3";
    }
  } else if (stream.queued() != 0) {
    co_return "epoll queued connections";
  }
  if (Verdict v = co_await accept_in_order(stream, kClients); !v.empty()) co_return v;
  if (stream.queued() != 0) co_return "results left over";
  co_return "";
}

TEST(NetMultishot, ConnectionsArrivingWhileNobodyAcceptsAreQueuedBoundedAndAcceptedInOrder) {
  run_verdict(on_raw_stream<64, queue_then_backlog_keeps_order>, tiny_queue_config(2, 3));
}

// Capacity 1 on one P: rounds of dials, each accepted until an accept
// waits 200 ms for nothing.
Task<Verdict> queue_of_one(io::AcceptStream& stream, int port) {
  auto clients = co_await dial_numbered(port, 1);
  if (!clients.ok()) co_return clients.status().ToString();
  for (int round = 0; round < 3; ++round) {
    if (round > 0) {
      auto more = co_await dial_numbered(port, 5);
      if (!more.ok()) co_return more.status().ToString();
      for (auto& c : *more) clients->push_back(std::move(c));
    }
    while (true) {
      auto fd = co_await stream.accept(io::IoOptions::timeout(200ms));
      if (!fd.ok()) {
        if (fd.status().code() == absl::StatusCode::kDeadlineExceeded) break;
        co_return fd.status().ToString();
      }
      (void)io::close(*fd);
    }
  }
  co_return "";
}

TEST(NetMultishot, QueueOfOneOnOneP) {
  run_verdict(on_raw_stream<64, queue_of_one>, tiny_queue_config(1, 1));
}

// Four acceptors share a stream while 200 clients dial: each connection is
// accepted exactly once.
Task<Verdict> many_acceptors() {
  RawListener listener = raw_listener(512);
  if (listener.fd < 0) co_return "listen failed";
  auto stream = std::make_shared<io::AcceptStream>(listener.fd);
  constexpr int kClients = 200;
  // Acceptors count, the test polls: relaxed atomics (the joins below
  // order the final counts).
  using Counts = std::vector<std::atomic<int>>;
  auto seen = std::make_shared<Counts>(kClients);
  auto all_seen = [&seen] {
    for (const auto& count : *seen) {
      if (count.load(std::memory_order_relaxed) == 0) return false;
    }
    return true;
  };
  auto acceptor = [](std::shared_ptr<io::AcceptStream> stream,
                     std::shared_ptr<Counts> seen) -> Task<void> {
    for (;;) {
      auto fd = co_await stream->accept(io::IoOptions::timeout(30s));
      if (!fd.ok()) co_return;  // stopped
      auto index = co_await read_index(*fd);
      (void)io::close(*fd);
      if (index.ok() && *index < seen->size())
        (*seen)[*index].fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::vector<JoinHandle<void>> acceptors;
  for (int i = 0; i < 4; ++i) acceptors.push_back(spawn(acceptor(stream, seen)));
  auto clients = co_await dial_numbered(listener.port, kClients);
  if (!clients.ok()) co_return clients.status().ToString();
  const auto limit = Clock::now() + 30s;
  while (!all_seen() && Clock::now() < limit) {
    co_await sleep(1ms);
  }
  stream->stop();
  (void)io::close(listener.fd);  // wakes the acceptors parked under epoll
  for (auto& a : acceptors) co_await a;
  for (int i = 0; i < kClients; ++i) {
    const int count = (*seen)[i].load(std::memory_order_relaxed);
    if (count != 1) {
      co_return "client " + std::to_string(i) + " accepted " + std::to_string(count) + " times";
    }
  }
  co_return "";
}

TEST(NetMultishot, SeveralAcceptorsTakeEachConnectionOnce) {
  run_verdict(many_acceptors, tiny_queue_config(4, 2));
}

// An accept that times out while the request stays armed leaves nothing
// behind: the next connection goes to the next accept.
Task<Verdict> deadline_then_accept(io::AcceptStream& stream, int port) {
  for (int round = 0; round < 3; ++round) {
    auto late = co_await stream.accept(io::IoOptions::timeout(10ms));
    if (late.status().code() != absl::StatusCode::kDeadlineExceeded) {
      co_return "expected a deadline, got " + late.status().ToString();
    }
    if (Verdict v = co_await dial_and_accept(stream, port, 1); !v.empty()) co_return v;
  }
  co_return "";
}

TEST(NetMultishot, AcceptDeadlineWhileArmedLosesNoConnection) {
  run_verdict(on_raw_stream<16, deadline_then_accept>, tiny_queue_config(2, 4));
}

// stop() with an accept parked: it fails with EBADF once the fd is closed
// too (under io_uring at stop already), and later accepts fail with EBADF.
Task<Verdict> stop_with_parked_and_queued() {
  RawListener listener = raw_listener(16);
  if (listener.fd < 0) co_return "listen failed";
  auto stream = std::make_shared<io::AcceptStream>(listener.fd);
  if (Verdict v = co_await dial_and_accept(*stream, listener.port, 1); !v.empty()) co_return v;
  auto clients = co_await dial_numbered(listener.port, 3);
  if (!clients.ok()) co_return clients.status().ToString();
  if (multishot_runs() && !co_await wait_queued(*stream, 3)) co_return "nothing queued";
  // Take all three, then park a fourth accept.
  if (Verdict v = co_await accept_in_order(*stream, 3); !v.empty()) co_return v;
  JoinHandle<absl::StatusOr<int>> parked =
      spawn([](std::shared_ptr<io::AcceptStream> s) -> Task<absl::StatusOr<int>> {
        co_return co_await s->accept(io::IoOptions::timeout(60s));
      }(stream));
  co_await sleep(10ms);
  stream->stop();
  (void)io::close(listener.fd);
  auto result = co_await parked;
  if (result.ok()) co_return "the parked accept got a connection after stop";
  if (result.status().code() == absl::StatusCode::kDeadlineExceeded) {
    co_return "the parked accept was not woken";
  }
  auto later = co_await stream->accept(io::IoOptions::timeout(5s));
  if (later.ok() || !absl::IsFailedPrecondition(later.status())) {
    // EBADF maps to kFailedPrecondition.
    co_return "a later accept: " + later.status().ToString();
  }
  co_return "";
}

TEST(NetMultishot, StopWakesTheParkedAcceptAndFailsLaterOnes) {
  run_verdict(stop_with_parked_and_queued, tiny_queue_config(2, 8));
}

// --- net::Listener ------------------------------------------------------------

// close() with connections queued in the stream: their clients see the end
// of the stream (EOF, or a reset), none is left open.
Task<Verdict> close_closes_queued() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status().ToString();
  const std::string address = listener->addr().to_string();
  auto warm = co_await net::dial("tcp", address);
  if (!warm.ok()) co_return warm.status().ToString();
  auto first = co_await listener->accept();
  if (!first.ok()) co_return first.status().ToString();
  auto clients = co_await dial_many(address, 4);
  if (!clients.ok()) co_return clients.status().ToString();
  co_await sleep(20ms);  // lets the queue fill (not needed for the outcome)
  if (auto s = listener->close(); !s.ok()) co_return s.ToString();
  for (auto& c : *clients) {
    char byte;
    c.set_read_deadline(Clock::now() + 30s);
    auto n = co_await c.read(&byte, 1);
    if (n.ok() && *n != 0) co_return "a queued connection sent data";
    if (!n.ok() && n.status().code() == absl::StatusCode::kDeadlineExceeded) {
      co_return "a queued connection was left open";
    }
  }
  auto after = co_await listener->accept();
  if (after.ok() || !net::is_closed(after.status())) co_return "accept after close";
  co_return "";
}

TEST(NetMultishot, ListenerCloseClosesConnectionsAcceptedForNobody) {
  run_verdict(close_closes_queued, tiny_queue_config(2, 8));
}

// The runtime ends while an accept is parked on an armed request with
// connections queued: the sweep destroys the parked frame, the stream and
// its queued fds go (asan checks for leaks and use after free).
TEST(NetMultishot, RuntimeEndsWithAnAcceptParked) {
  run_verdict(
      []() -> Task<Verdict> {
        auto listener = co_await net::listen("tcp", "127.0.0.1:0");
        if (!listener.ok()) co_return listener.status().ToString();
        const std::string address = listener->addr().to_string();
        auto shared = std::make_shared<net::Listener>(std::move(*listener));
        go([](std::shared_ptr<net::Listener> l) -> Task<void> {
          for (;;) {
            auto conn = co_await l->accept();
            if (!conn.ok()) co_return;
            co_await sleep(1h);  // keeps the connection, then parks in the next accept
          }
        }(shared));
        auto clients = co_await dial_many(address, 3);
        if (!clients.ok()) co_return clients.status().ToString();
        co_await sleep(20ms);
        co_return "";
      },
      tiny_queue_config(2, 8));
}

// Listeners with multishot_accept off run the one-shot accept.
Task<Verdict> accept_one_shot(io::AcceptStream& stream, int port) {
  auto clients = co_await dial_numbered(port, 3);
  if (!clients.ok()) co_return clients.status().ToString();
  for (int i = 0; i < 3; ++i) {
    auto fd = co_await stream.accept(io::IoOptions::timeout(30s));
    if (!fd.ok()) co_return fd.status().ToString();
    if (stream.queued() != 0) co_return "queued with multishot off";
    (void)io::close(*fd);
  }
  co_return "";
}

TEST(NetMultishot, OneShotAcceptWhenTurnedOff) {
  Config config = tiny_queue_config(2, 8);
  config.multishot_accept = false;
  run_verdict(on_raw_stream<16, accept_one_shot>, config);
}

// --- Multishot receive ----------------------------------------------------------

// A provided buffer ring of 4 buffers of 64 bytes per P, and 2 queued
// buffers per connection: many connections exhaust it at once.
Config tiny_ring_config(unsigned procs) {
  Config config = test::with_procs(procs);
  config.multishot_receive = true;
  config.receive_buffer_count = 4;
  config.receive_buffer_size = 64;
  config.receive_queue_capacity = 2;
  return config;
}

// Sends `messages` random messages (1 to 20,000 bytes) and checks each
// echo byte for byte.
Task<Verdict> echo_client(std::string address, std::uint32_t seed, int messages) {
  auto conn = co_await net::dial("tcp", address);
  if (!conn.ok()) co_return conn.status().ToString();
  std::mt19937 random(seed);
  for (int m = 0; m < messages; ++m) {
    std::vector<char> message(std::uniform_int_distribution<std::size_t>(1, 20000)(random));
    for (char& c : message) c = static_cast<char>(random());
    if (auto s = co_await conn->write(message.data(), message.size()); !s.ok()) {
      co_return s.ToString();
    }
    std::vector<char> echo(message.size());
    conn->set_read_deadline(Clock::now() + 60s);
    if (auto s = co_await conn->read_full(echo.data(), echo.size()); !s.ok()) {
      co_return "read_full: " + s.ToString();
    }
    if (echo != message) co_return "an echo differs from its message";
  }
  co_return "";
}

// 40 connections echo random sizes through the tiny ring: every byte comes
// back in order, and under io_uring the ring ran dry (the one-shot
// fallback ran) along the way.
Task<Verdict> echo_through_tiny_ring() {
  const std::uint64_t exhaustions_before = detail::uring_receive_exhaustions_for_testing();
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status().ToString();
  const std::string address = listener->addr().to_string();
  constexpr int kConnections = 40;
  go([](std::shared_ptr<net::Listener> l) -> Task<void> {
    for (std::size_t i = 0;; ++i) {
      auto conn = co_await l->accept();
      if (!conn.ok()) co_return;
      go(test::echo_until_end(std::move(*conn), 1 + (i * 997) % 3000));
    }
  }(std::make_shared<net::Listener>(std::move(*listener))));
  std::vector<JoinHandle<Verdict>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(spawn(echo_client(address, static_cast<std::uint32_t>(i), 8)));
  }
  Verdict verdict;
  for (auto& c : clients) {
    Verdict v = co_await c;
    if (verdict.empty()) verdict = v;
  }
  if (!verdict.empty()) co_return verdict;
  if (multishot_runs() && detail::uring_receive_exhaustions_for_testing() == exhaustions_before) {
    co_return "the tiny ring never ran dry";
  }
  co_return "";
}

TEST(NetMultishot, EchoOfRandomSizesThroughAnExhaustedBufferRingIsByteExact) {
  run_verdict(echo_through_tiny_ring, tiny_ring_config(4));
}

TEST(NetMultishot, EchoThroughAnExhaustedBufferRingOnOneP) {
  run_verdict(echo_through_tiny_ring, tiny_ring_config(1));
}

// A connected pair whose server side has read one byte, `first`, from the
// client: under multishot receive that first read arms the socket's
// receive stream.
struct ArmedPair {
  net::Listener listener;
  net::Conn client;
  net::Conn server;
};

Task<absl::StatusOr<ArmedPair>> armed_pair(std::uint8_t first) {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status();
  auto client = co_await net::dial("tcp", listener->addr().to_string());
  if (!client.ok()) co_return client.status();
  auto server = co_await listener->accept();
  if (!server.ok()) co_return server.status();
  if (auto sent = co_await client->write(&first, 1); !sent.ok()) co_return sent;
  std::uint8_t got = 0;
  auto n = co_await server->read(&got, 1);
  if (!n.ok()) co_return n.status();
  if (*n != 1 || got != first) co_return absl::DataLossError("the first byte did not arrive");
  co_return ArmedPair{std::move(*listener), std::move(*client), std::move(*server)};
}

// Bytes that arrive while nobody reads (more than the connection may
// queue), then the peer's close: the reader gets every byte in order,
// then the end of the stream.
Task<Verdict> slow_reader_then_eof() {
  auto pair = co_await armed_pair(7);
  if (!pair.ok()) co_return pair.status().ToString();
  net::Conn* client = &pair->client;
  net::Conn* server = &pair->server;
  std::vector<std::uint8_t> sent(50000);
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<std::uint8_t>(i * 31 + 5);
  if (!(co_await client->write(sent.data(), sent.size())).ok()) co_return "write";
  (void)client->close();
  co_await sleep(20ms);  // lets the data queue (not needed for the outcome)
  std::vector<std::uint8_t> received;
  std::mt19937 random(1);
  for (;;) {
    std::vector<std::uint8_t> chunk(std::uniform_int_distribution<std::size_t>(1, 300)(random));
    server->set_read_deadline(Clock::now() + 30s);
    auto n = co_await server->read(chunk.data(), chunk.size());
    if (!n.ok()) co_return "read: " + n.status().ToString();
    if (*n == 0) break;
    received.insert(received.end(), chunk.begin(), chunk.begin() + static_cast<long>(*n));
  }
  if (received != sent) co_return "received bytes differ";
  co_return "";
}

TEST(NetMultishot, SlowReaderGetsEveryQueuedByteThenEndOfStream) {
  run_verdict(slow_reader_then_eof, tiny_ring_config(2));
}

TEST(NetMultishot, SlowReaderWithTheDefaultRing) {
  Config config = test::with_procs(2);
  config.multishot_receive = true;
  run_verdict(slow_reader_then_eof, config);
}

// A read parked in the socket's receive stream is ended by the socket's
// read deadline (its timer stops the read, which finds the deadline passed:
// an i/o timeout), a deadline pushed later leaves the next read parked past
// the old one, `margin` out, and the bytes that come after are read in
// order. On one P the yield runs the reader until it parks. "late" when
// this goroutine pushed the deadline out only after the old one had passed
// (the read may have timed out then, rightly): the attempt shows nothing.
Task<Verdict> stream_read_deadlines_attempt(Clock::duration margin) {
  auto pair = co_await armed_pair(1);
  if (!pair.ok()) co_return pair.status().ToString();
  net::Conn* client = &pair->client;
  net::Conn* server = &pair->server;
  std::uint8_t got = 0;
  server->set_read_deadline(Clock::now() + 20ms);
  auto timed_out = co_await server->read(&got, 1);
  if (!net::is_timeout(timed_out.status())) {
    co_return "expected a timeout, got " + timed_out.status().ToString();
  }
  const Clock::time_point old_deadline = Clock::now() + margin;
  server->set_read_deadline(old_deadline);
  auto reader = spawn(
      [](net::Conn* conn) -> Task<absl::StatusOr<std::uint8_t>> {
        std::uint8_t b = 0;
        auto n = co_await conn->read(&b, 1);
        if (!n.ok()) co_return n.status();
        if (*n != 1) co_return absl::OutOfRangeError("end of stream");
        co_return b;
      },
      server);
  co_await yield();
  server->set_read_deadline(Clock::now() + 1h);
  const bool late = Clock::now() >= old_deadline;
  if (!late) co_await sleep_until(old_deadline);  // the old deadline's timer fires meanwhile
  std::uint8_t byte = 2;
  if (!(co_await client->write(&byte, 1)).ok()) co_return "write";
  auto second = co_await reader;
  if (late) co_return "late";
  if (!second.ok()) co_return "read after the deadline moved: " + second.status().ToString();
  if (*second != 2) co_return "read the wrong byte";
  co_return "";
}

// Tries with a doubling margin until an attempt comes in time: how fast
// the machine is decides how long the test runs, never its verdict.
Task<Verdict> stream_read_deadlines() {
  for (Clock::duration margin = 50ms;; margin *= 2) {
    Verdict verdict = co_await stream_read_deadlines_attempt(margin);
    if (verdict != "late") co_return verdict;
  }
}

TEST(NetMultishot, StreamReadsKeepTheSocketsDeadlines) {
  Config config = test::with_procs(1);
  config.multishot_receive = true;
  run_verdict(stream_read_deadlines, config);
}

// The runtime ends with a reader parked and bytes queued on other
// connections: the buffers go back, the frames go (asan checks).
TEST(NetMultishot, RuntimeEndsWithBytesQueuedAndAReadParked) {
  run_verdict(
      []() -> Task<Verdict> {
        auto listener = co_await net::listen("tcp", "127.0.0.1:0");
        if (!listener.ok()) co_return listener.status().ToString();
        auto shared = std::make_shared<std::vector<net::Conn>>();
        for (int i = 0; i < 4; ++i) {
          auto client = co_await net::dial("tcp", listener->addr().to_string());
          if (!client.ok()) co_return client.status().ToString();
          auto server = co_await listener->accept();
          if (!server.ok()) co_return server.status().ToString();
          char byte = 1;
          if (!(co_await client->write(&byte, 1)).ok()) co_return "write";
          if (!(co_await server->read(&byte, 1)).ok()) co_return "read";
          char data[300] = {};
          if (!(co_await client->write(data, sizeof data)).ok()) co_return "write";
          shared->push_back(std::move(*client));
          shared->push_back(std::move(*server));
        }
        go([](std::shared_ptr<std::vector<net::Conn>> conns) -> Task<void> {
          char byte;
          (void)co_await (*conns)[0].read(&byte, 1);  // parks: the client sends nothing
        }(shared));
        co_await sleep(20ms);
        co_return "";
      },
      tiny_ring_config(2));
}

}  // namespace
}  // namespace goro
