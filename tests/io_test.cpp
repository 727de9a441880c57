// tests/io_test.cpp: goro::io on both poller backends (CI runs the whole
// suite once more with GORO_POLLER=epoll): pipes and sockets between
// goroutines, deadlines, cancellation racing completion, back-pressure past
// the completion queue, accept/connect, poll, peers that reset, and
// shutdown with operations in flight.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "poller.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using io::IoOptions;

using test::SocketPair;

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) std::abort();
  }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) (void)io::close(f);
    }
  }
};

Task<std::string> backend_in_use() { co_return std::string(io::poller_backend()); }

TEST(Io, BackendFollowsConfigThenEnvironment) {
  Config epoll = test::with_procs(1);
  epoll.poller = PollerBackend::kEpoll;
  EXPECT_EQ(run(backend_in_use(), epoll), "epoll");
  Config uring = test::with_procs(1);
  uring.poller = PollerBackend::kIoUring;
  // io_uring, or std::system_error where this kernel or sandbox refuses it
  // (then auto must pick epoll).
  std::string forced_uring = "epoll";
  try {
    forced_uring = run(backend_in_use(), uring);
    EXPECT_EQ(forced_uring, "io_uring");
  } catch (const std::system_error&) {
  }
  const std::string automatic = run(backend_in_use(), test::with_procs(1));
  const char* env = std::getenv("GORO_POLLER");
  if (env != nullptr && std::string(env) == "epoll") {
    EXPECT_EQ(automatic, "epoll");
  } else {
    EXPECT_EQ(automatic, forced_uring);  // auto prefers io_uring where it works
  }
}

// Spawnable forms of single operations (spawn takes a Task).
Task<absl::StatusOr<std::size_t>> read_task(int fd, char* c, IoOptions options = {}) {
  co_return co_await io::read(fd, c, 1, options);
}
Task<absl::StatusOr<short>> poll_task(int fd, short events) {
  co_return co_await io::poll(fd, events);
}

// --- data between goroutines ---

Task<long> echo_server(int fd, long messages) {
  long echoed = 0;
  for (long i = 0; i < messages; ++i) {
    std::uint64_t value = 0;
    auto n = co_await io::recv(fd, &value, sizeof value, MSG_WAITALL);
    if (!n.ok() || *n != sizeof value) co_return -1;
    value += 1;
    if (!(co_await io::send(fd, &value, sizeof value)).ok()) co_return -1;
    ++echoed;
  }
  co_return echoed;
}

Task<bool> echo_client(int fd, long messages, std::uint64_t seed) {
  for (long i = 0; i < messages; ++i) {
    std::uint64_t value = seed + static_cast<std::uint64_t>(i) * 7;
    if (!(co_await io::write(fd, &value, sizeof value)).ok()) co_return false;
    std::uint64_t reply = 0;
    auto n = co_await io::recv(fd, &reply, sizeof reply, MSG_WAITALL);
    if (!n.ok() || *n != sizeof reply || reply != value + 1) co_return false;
  }
  co_return true;
}

Task<bool> many_socket_pairs(int pairs, long messages) {
  std::vector<std::unique_ptr<SocketPair>> sockets;
  std::vector<JoinHandle<long>> servers;
  std::vector<JoinHandle<bool>> clients;
  for (int i = 0; i < pairs; ++i) {
    sockets.push_back(std::make_unique<SocketPair>());
    servers.push_back(spawn(echo_server(sockets.back()->fd[0], messages)));
    clients.push_back(spawn(echo_client(sockets.back()->fd[1], messages, 1000u * i)));
  }
  bool ok = true;
  for (auto& c : clients) ok = (co_await c) && ok;
  for (auto& s : servers) ok = (co_await s) == messages && ok;
  co_return ok;
}

TEST(Io, ManySocketPairsEchoCheckedData) {
  test::Watchdog watchdog("Io.ManySocketPairsEchoCheckedData");
  EXPECT_TRUE(run(many_socket_pairs(64, test::scaled(500, 20)), test::with_procs(4)));
  EXPECT_TRUE(run(many_socket_pairs(8, test::scaled(2000, 50)), test::with_procs(1)));
}

Task<bool> pipe_writer(int fd, int total) {
  std::vector<unsigned char> chunk(1000);
  for (int sent = 0; sent < total;) {
    const int n = std::min<int>(static_cast<int>(chunk.size()), total - sent);
    for (int i = 0; i < n; ++i) chunk[i] = static_cast<unsigned char>((sent + i) % 251);
    if (!(co_await io::write(fd, chunk.data(), n)).ok()) co_return false;
    sent += n;
  }
  co_return io::close(fd).ok();
}

Task<bool> pipe_transfer(int total) {
  Pipe pipe;
  auto writer = spawn(pipe_writer(pipe.fd[1], total));
  std::array<unsigned char, 4096> buffer{};
  int received = 0;
  bool data_ok = true;
  for (;;) {
    auto n = co_await io::read(pipe.fd[0], buffer.data(), buffer.size());
    if (!n.ok()) co_return false;
    if (*n == 0) break;  // end of file: the writer closed
    for (std::size_t i = 0; i < *n; ++i) {
      data_ok = data_ok && buffer[i] == static_cast<unsigned char>((received + i) % 251);
    }
    received += static_cast<int>(*n);
  }
  pipe.fd[1] = -1;  // closed by the writer
  const bool writer_ok = co_await writer;
  co_return writer_ok&& data_ok&& received == total;
}

TEST(Io, PipeCarriesEveryByteInOrderThroughFullBuffers) {
  // 4 MiB: far beyond a pipe's 64 KiB, so the writer parks on a full pipe.
  EXPECT_TRUE(run(pipe_transfer(4 << 20), test::with_procs(2)));
}

Task<bool> large_write_all(int size) {
  SocketPair s;
  std::vector<char> out(size);
  for (int i = 0; i < size; ++i) out[i] = static_cast<char>(i * 31 + 7);
  auto writer = spawn(io::write(s.fd[0], out.data(), out.size()));
  std::vector<char> in(size);
  std::size_t got = 0;
  while (got < in.size()) {
    auto n = co_await io::read(s.fd[1], in.data() + got, in.size() - got);
    if (!n.ok() || *n == 0) co_return false;
    got += *n;
  }
  co_return (co_await writer).ok() && in == out;
}

TEST(Io, WriteAllLoopsOverShortWrites) {
  EXPECT_TRUE(run(large_write_all(8 << 20), test::with_procs(2)));
}

// --- deadlines and cancellation ---

Task<bool> read_times_out_then_fd_still_works() {
  SocketPair s;
  char c = 0;
  auto timed_out = co_await io::read(s.fd[0], &c, 1, IoOptions::timeout(20ms));
  if (timed_out.ok() || timed_out.status().code() != absl::StatusCode::kDeadlineExceeded) {
    co_return false;
  }
  // A deadline already in the past fails at once, the same way.
  auto past = co_await io::read(s.fd[0], &c, 1, IoOptions(Clock::now() - 1s));
  if (past.status().code() != absl::StatusCode::kDeadlineExceeded) co_return false;
  // The fd still works, and nothing was lost.
  if (!(co_await io::write(s.fd[1], "x", 1)).ok()) co_return false;
  auto n = co_await io::read(s.fd[0], &c, 1, IoOptions::timeout(10s));
  co_return n.ok() && *n == 1 && c == 'x';
}

TEST(Io, ReadDeadlineGivesDeadlineExceededAndFdStillWorks) {
  EXPECT_TRUE(run(read_times_out_then_fd_still_works(), test::with_procs(2)));
}

Task<bool> deadline_never_early() {
  SocketPair s;
  char c = 0;
  const auto start = Clock::now();
  auto r = co_await io::recv(s.fd[0], &c, 1, 0, IoOptions::timeout(5ms));
  co_return !r.ok() && Clock::now() - start >= 5ms;
}

TEST(Io, DeadlineNeverFiresEarly) { EXPECT_TRUE(run(deadline_never_early(), test::with_procs(2))); }

Task<void> request_stop_later(std::stop_source* source) {
  co_await sleep(2ms);
  source->request_stop();
}

Task<bool> stop_token_cancels_read() {
  SocketPair s;
  std::stop_source source;
  go(request_stop_later(&source));
  char c = 0;
  auto r = co_await io::read(s.fd[0], &c, 1, IoOptions(source.get_token()));
  co_return r.status().code() == absl::StatusCode::kCancelled;
}

TEST(Io, StopTokenCancelsAParkedRead) {
  EXPECT_TRUE(run(stop_token_cancels_read(), test::with_procs(2)));
  EXPECT_TRUE(run(stop_token_cancels_read(), test::with_procs(1)));
}

// Cancellation racing completion: each round a byte is written while the
// read is being cancelled from another goroutine (often on another P). The
// read either returns the byte or reports Cancelled, and then the byte is
// still there: never both lost and never delivered twice.
Task<void> canceller(std::stop_source* source) {
  source->request_stop();
  co_return;
}

Task<void> byte_writer(int fd) { (void)co_await io::write(fd, "z", 1); }

Task<bool> cancel_races_completion(long rounds) {
  SocketPair s;
  for (long i = 0; i < rounds; ++i) {
    std::stop_source source;
    go(byte_writer(s.fd[1]));
    auto stopper = spawn(canceller(&source));  // joined below: `source` dies with the round
    char c = 0;
    auto r = co_await io::read(s.fd[0], &c, 1, IoOptions(source.get_token()));
    co_await stopper;
    if (!r.ok()) {
      if (r.status().code() != absl::StatusCode::kCancelled) co_return false;
      // The byte was not consumed by the cancelled read: read it now.
      r = co_await io::read(s.fd[0], &c, 1, IoOptions::timeout(30s));
    }
    if (!r.ok() || *r != 1 || c != 'z') co_return false;
  }
  // Nothing extra is left over either.
  char extra = 0;
  auto left = co_await io::recv(s.fd[0], &extra, 1, MSG_DONTWAIT);
  co_return !left.ok() && absl::IsUnavailable(left.status());
}

TEST(Io, CancellationRacingCompletionLosesNothing) {
  test::Watchdog watchdog("Io.CancellationRacingCompletionLosesNothing");
  // 100k rounds in every optimised build, ThreadSanitizer's included (that
  // stays within its time budget, test_scale.hpp); a tenth at -O0.
  EXPECT_TRUE(run(cancel_races_completion(test::kOptimized ? 100000 : 10000), test::with_procs(2)));
}

Task<bool> deadlines_race_completion(long rounds) {
  SocketPair s;
  for (long i = 0; i < rounds; ++i) {
    go(byte_writer(s.fd[1]));
    char c = 0;
    auto r =
        co_await io::read(s.fd[0], &c, 1, IoOptions::timeout(std::chrono::microseconds(i % 20)));
    if (!r.ok()) {
      if (r.status().code() != absl::StatusCode::kDeadlineExceeded) co_return false;
      r = co_await io::read(s.fd[0], &c, 1, IoOptions::timeout(30s));
    }
    if (!r.ok() || *r != 1 || c != 'z') co_return false;
  }
  co_return true;
}

TEST(Io, DeadlinesRacingCompletionLoseNothing) {
  test::Watchdog watchdog("Io.DeadlinesRacingCompletionLoseNothing");
  EXPECT_TRUE(run(deadlines_race_completion(test::scaled(20000, 2000)), test::with_procs(2)));
}

// A stop requested from a thread outside the runtime.
Task<bool> cancel_from_outside_thread() {
  SocketPair s;
  std::stop_source source;
  std::thread outside([&source] {
    std::this_thread::sleep_for(5ms);
    source.request_stop();
  });
  char c = 0;
  auto r = co_await io::read(s.fd[0], &c, 1, IoOptions(source.get_token()));
  co_await blocking([&outside] { outside.join(); });
  co_return r.status().code() == absl::StatusCode::kCancelled;
}

TEST(Io, StopFromAThreadOutsideTheRuntime) {
  EXPECT_TRUE(run(cancel_from_outside_thread(), test::with_procs(2)));
}

// --- many operations in flight: more than a ring's completion queue ---

Task<short> wait_readable(int fd, std::atomic<long>* parked) {
  parked->fetch_add(1);
  auto r = co_await io::poll(fd, POLLIN);
  co_return r.ok() ? *r : short{-1};
}

Task<bool> more_ops_than_the_completion_queue(long waiters) {
  Pipe pipe;
  std::atomic<long> parked{0};
  std::vector<JoinHandle<short>> all;
  for (long i = 0; i < waiters; ++i) all.push_back(spawn(wait_readable(pipe.fd[0], &parked)));
  if (!co_await test::yield_until_at_least(parked, waiters)) co_return false;
  co_await sleep(10ms);  // let them all park
  if (!(co_await io::write(pipe.fd[1], "!", 1)).ok()) co_return false;
  bool ok = true;
  for (auto& h : all) ok = ((co_await h) & POLLIN) != 0 && ok;
  co_return ok;
}

TEST(Io, MoreOperationsThanTheCompletionQueueAllComplete) {
  test::Watchdog watchdog("Io.MoreOperationsThanTheCompletionQueueAllComplete");
  EXPECT_TRUE(
      run(more_ops_than_the_completion_queue(test::scaled(10000, 5000)), test::with_procs(1)));
}

// --- sockets: accept, connect, reset peers ---

struct Listener {
  int fd = -1;
  sockaddr_in address{};
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t len = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, 128) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
      std::abort();
    }
  }
  ~Listener() { (void)io::close(fd); }
};

Task<bool> serve_one(int listen_fd) {
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  auto conn = co_await io::accept(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len);
  if (!conn.ok()) co_return false;
  char buf[5] = {};
  auto n = co_await io::recv(*conn, buf, sizeof buf, MSG_WAITALL);
  bool ok = n.ok() && *n == 5 && std::memcmp(buf, "hello", 5) == 0 && peer.sin_family == AF_INET;
  ok = (co_await io::send(*conn, "world", 5)).ok() && ok;
  (void)io::close(*conn);
  co_return ok;
}

Task<bool> accept_and_connect(int clients) {
  Listener listener;
  std::vector<JoinHandle<bool>> servers;
  for (int i = 0; i < clients; ++i) servers.push_back(spawn(serve_one(listener.fd)));
  bool ok = true;
  for (int i = 0; i < clients; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto connected = co_await io::connect(fd, reinterpret_cast<sockaddr*>(&listener.address),
                                          sizeof listener.address, IoOptions::timeout(10s));
    ok = connected.ok() && ok;
    ok = (co_await io::send(fd, "hello", 5)).ok() && ok;
    char buf[5] = {};
    auto n = co_await io::recv(fd, buf, sizeof buf, MSG_WAITALL);
    ok = n.ok() && *n == 5 && std::memcmp(buf, "world", 5) == 0 && ok;
    (void)io::close(fd);
  }
  for (auto& s : servers) ok = (co_await s) && ok;
  co_return ok;
}

TEST(Io, AcceptAndConnectOverLoopback) {
  EXPECT_TRUE(run(accept_and_connect(20), test::with_procs(2)));
}

Task<bool> connect_refused() {
  Listener listener;
  sockaddr_in address = listener.address;
  (void)io::close(listener.fd);  // nobody listens on that port any more
  listener.fd = -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto r = co_await io::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  (void)io::close(fd);
  co_return r.code() == absl::ErrnoToStatusCode(ECONNREFUSED) &&
      r.message().find("connect") != std::string::npos;
}

TEST(Io, ConnectToAClosedPortFailsWithAnError) {
  EXPECT_TRUE(run(connect_refused(), test::with_procs(2)));
}

Task<bool> accept_times_out() {
  Listener listener;
  auto r = co_await io::accept(listener.fd, nullptr, nullptr, IoOptions::timeout(10ms));
  co_return r.status().code() == absl::StatusCode::kDeadlineExceeded;
}

TEST(Io, AcceptHonoursItsDeadline) { EXPECT_TRUE(run(accept_times_out(), test::with_procs(2))); }

Task<bool> send_to_reset_peer() {
  SocketPair s;
  (void)io::close(s.fd[1]);
  s.fd[1] = -1;
  // No SIGPIPE (it would kill the test): an EPIPE status instead.
  absl::Status st = co_await io::send(s.fd[0], "data", 4);
  auto n = co_await io::read(s.fd[0], nullptr, 0);  // the runtime keeps serving
  co_return !st.ok() && absl::ErrnoToStatusCode(EPIPE) == st.code() && n.ok();
}

TEST(Io, SendToAClosedPeerIsAnErrorNotASignal) {
  EXPECT_TRUE(run(send_to_reset_peer(), test::with_procs(2)));
}

// A read parked on s.fd[0] ends with 0 (end of file) when `end` of the pair
// is shut down with `how`: the peer's write side, or the reader's own socket
// (the portable way to end a read parked in either backend).
Task<bool> parked_read_ends_at_shutdown(int end, int how) {
  SocketPair s;
  char c = 0;
  auto reader = spawn(read_task(s.fd[0], &c, IoOptions::timeout(10s)));
  co_await sleep(2ms);
  ::shutdown(s.fd[end], how);
  auto n = co_await reader;
  co_return n.ok() && *n == 0;
}

TEST(Io, ReadReturnsZeroAtEndOfFile) {
  EXPECT_TRUE(run(parked_read_ends_at_shutdown(1, SHUT_WR), test::with_procs(2)));
}

TEST(Io, ShutdownOfTheSocketEndsAParkedRead) {
  EXPECT_TRUE(run(parked_read_ends_at_shutdown(0, SHUT_RDWR), test::with_procs(2)));
}

Task<bool> poll_for_readiness() {
  SocketPair s;
  auto writable = co_await io::poll(s.fd[0], POLLOUT, IoOptions::timeout(10s));
  if (!writable.ok() || (*writable & POLLOUT) == 0) co_return false;
  auto not_yet = co_await io::poll(s.fd[0], POLLIN, IoOptions::timeout(5ms));
  if (not_yet.status().code() != absl::StatusCode::kDeadlineExceeded) co_return false;
  auto waiter = spawn(poll_task(s.fd[0], POLLIN));
  co_await sleep(1ms);
  (void)co_await io::write(s.fd[1], "p", 1);
  auto readable = co_await waiter;
  co_return readable.ok() && (*readable & POLLIN) != 0;
}

TEST(Io, PollWaitsForReadiness) { EXPECT_TRUE(run(poll_for_readiness(), test::with_procs(2))); }

Task<bool> regular_file_round_trip() {
  char path[] = "/tmp/goro-io-test-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) co_return false;
  ::unlink(path);
  const bool wrote = (co_await io::write(fd, "file data", 9)).ok();
  ::lseek(fd, 0, SEEK_SET);
  char buf[16] = {};
  auto n = co_await io::read(fd, buf, sizeof buf);
  (void)io::close(fd);
  co_return wrote&& n.ok() && *n == 9 && std::memcmp(buf, "file data", 9) == 0;
}

TEST(Io, RegularFilesWork) { EXPECT_TRUE(run(regular_file_round_trip(), test::with_procs(2))); }

Task<bool> bad_fd_is_an_error() {
  char c = 0;
  auto r = co_await io::read(-1, &c, 1);
  auto w = co_await io::write_some(1 << 19, &c, 1);  // not open
  co_return !r.ok() && !w.ok();
}

TEST(Io, BadFdIsAnErrorValue) { EXPECT_TRUE(run(bad_fd_is_an_error(), test::with_procs(1))); }

// --- errors that must be values on both backends ---

// Runs `make()` once under each poller backend; true if both returned true.
template <class Make>
bool on_both_pollers(Make make, unsigned procs = 2) {
  bool all = true;
  for (PollerBackend backend : {PollerBackend::kIoUring, PollerBackend::kEpoll}) {
    Config config = test::with_procs(procs);
    config.poller = backend;
    const bool ok = run(make(), config);
    if (!ok) {
      ADD_FAILURE() << "failed under " << (backend == PollerBackend::kEpoll ? "epoll" : "io_uring");
    }
    all = all && ok;
  }
  return all;
}

// --- reads after a short read (the epoll backend's drained streams) ---

// A stream socket's short read means an empty receive queue: the next read
// may wait for the next edge without trying (poller_epoll.cpp, step 6).
// Bytes written after that read, before the next read starts, and while it
// waits, all arrive.
Task<bool> stream_reads_after_short_reads_get_every_byte() {
  SocketPair s;
  char buffer[64];
  for (int round = 0; round < 200; ++round) {
    const char out[3] = {'a', static_cast<char>(round), 'z'};
    if (::write(s.fd[1], out, sizeof out) != 3) co_return false;
    std::size_t got = 0;
    while (got < sizeof out) {  // short reads: 3 bytes into 64
      auto n = co_await io::read(s.fd[0], buffer + got, sizeof buffer - got);
      if (!n.ok() || *n == 0) co_return false;
      got += *n;
    }
    if (got != 3 || buffer[1] != static_cast<char>(round)) co_return false;
    if (round % 2 == 0) {
      // The next read parks (drained) before the byte comes.
      auto reader = spawn(read_task(s.fd[0], buffer));
      co_await yield();
      if (::write(s.fd[1], "x", 1) != 1) co_return false;
      auto n = co_await reader;
      if (!n.ok() || *n != 1 || buffer[0] != 'x') co_return false;
    }
  }
  co_return true;
}

TEST(Io, StreamReadsAfterShortReadsGetEveryByte) {
  EXPECT_TRUE(on_both_pollers(stream_reads_after_short_reads_get_every_byte));
}

// A datagram socket's short read (one datagram, smaller than the buffer)
// leaves the next datagram queued, with no edge to come for it: the next
// read must still try at once.
Task<bool> queued_datagrams_are_read_without_a_new_edge() {
  int fd[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fd) != 0) co_return false;
  char buffer[64];
  // Registered and drained once, so that edges have come and gone.
  auto first = co_await io::recv(fd[0], buffer, sizeof buffer, 0, IoOptions::timeout(1ms));
  bool ok = !first.ok();
  for (int i = 0; i < 3 && ok; ++i) ok = ::send(fd[1], "dgram", 5, 0) == 5;
  // Lets the idle P handle the datagrams' edges before the reads start
  // (the pass does not depend on it; a read that waited for a new edge
  // would wait for ever only if those edges are gone).
  co_await sleep(2ms);
  for (int i = 0; i < 3 && ok; ++i) {
    auto n = co_await io::recv(fd[0], buffer, sizeof buffer, 0);
    ok = n.ok() && *n == 5;
  }
  (void)io::close(fd[0]);
  (void)io::close(fd[1]);
  co_return ok;
}

TEST(Io, QueuedDatagramsAreReadWithoutANewEdge) {
  EXPECT_TRUE(on_both_pollers(queued_datagrams_are_read_without_a_new_edge));
}

// A short MSG_PEEK leaves the bytes queued: the read after it must get
// them at once.
Task<bool> read_after_a_short_peek_gets_the_bytes() {
  SocketPair s;
  char buffer[64];
  if (::write(s.fd[1], "peek", 4) != 4) co_return false;
  auto peeked = co_await io::recv(s.fd[0], buffer, sizeof buffer, MSG_PEEK);
  if (!peeked.ok() || *peeked != 4) co_return false;
  auto n = co_await io::recv(s.fd[0], buffer, sizeof buffer, 0);
  co_return n.ok() && *n == 4 && std::string_view(buffer, 4) == "peek";
}

TEST(Io, ReadAfterAShortPeekGetsTheBytes) {
  EXPECT_TRUE(on_both_pollers(read_after_a_short_peek_gets_the_bytes));
}

// poll(POLLIN | POLLOUT) parks among the readers (poller.hpp,
// io_direction): a socket that becomes writable, with nothing to read,
// must still end it.
Task<bool> poll_for_input_or_output_wakes_on_output() {
  SocketPair s;
  (void)::fcntl(s.fd[0], F_SETFL, ::fcntl(s.fd[0], F_GETFL) | O_NONBLOCK);
  // Fill fd[0]'s send buffer (and the peer's receive buffer).
  std::vector<char> chunk(64 * 1024, 'f');
  std::size_t queued = 0;
  for (;;) {
    const ssize_t n = ::send(s.fd[0], chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    queued += static_cast<std::size_t>(n);
  }
  if (queued == 0) co_return false;
  auto poller = spawn(poll_task(s.fd[0], POLLIN | POLLOUT));
  co_await sleep(2ms);  // lets it park (a pass does not depend on it)
  // Drain the peer: fd[0] becomes writable; it has nothing to read.
  std::size_t drained = 0;
  while (drained < queued) {
    auto n = co_await io::recv(s.fd[1], chunk.data(), chunk.size(), 0);
    if (!n.ok() || *n == 0) co_return false;
    drained += *n;
  }
  auto events = co_await poller;
  co_return events.ok() && (*events & POLLOUT) != 0;
}

TEST(Io, PollForInputOrOutputWakesOnOutput) {
  EXPECT_TRUE(on_both_pollers(poll_for_input_or_output_wakes_on_output));
}

using test::DefaultSigpipe;

bool sigpipe_is_default() {
  struct sigaction current {};
  ::sigaction(SIGPIPE, nullptr, &current);
  return current.sa_handler == SIG_DFL;
}

// write_some and write to `fd`, whose reader is gone, give EPIPE; the
// runtime keeps serving afterwards.
Task<bool> writes_give_epipe(int fd) {
  auto some = co_await io::write_some(fd, "data", 4);
  absl::Status all = co_await io::write(fd, "more", 4);
  co_await sleep(1ms);  // a SIGPIPE left pending would be delivered by now
  co_return !some.ok() && some.status().code() == absl::ErrnoToStatusCode(EPIPE) && !all.ok() &&
      all.code() == absl::ErrnoToStatusCode(EPIPE);
}

Task<bool> write_to_pipe_without_reader() {
  Pipe p;
  (void)io::close(p.fd[0]);
  p.fd[0] = -1;
  co_return co_await writes_give_epipe(p.fd[1]);
}

Task<bool> write_to_socket_whose_peer_closed() {
  SocketPair s;
  (void)io::close(s.fd[1]);
  s.fd[1] = -1;
  co_return co_await writes_give_epipe(s.fd[0]);
}

TEST(Io, WriteToAPipeWithoutReaderIsEpipeNotASignal) {
  DefaultSigpipe default_disposition;
  ASSERT_TRUE(sigpipe_is_default());
  EXPECT_TRUE(on_both_pollers(write_to_pipe_without_reader));
  EXPECT_TRUE(sigpipe_is_default());
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(Io, WriteToASocketWhosePeerClosedIsEpipeNotASignal) {
  DefaultSigpipe default_disposition;
  ASSERT_TRUE(sigpipe_is_default());
  EXPECT_TRUE(on_both_pollers(write_to_socket_whose_peer_closed));
  EXPECT_TRUE(sigpipe_is_default());
  // The calling thread's signal mask is as it was (it ran P 0).
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  EXPECT_FALSE(sigismember(&mask, SIGPIPE));
}

// --- lengths beyond what one system call or SQE carries ---

// An address range of `length` bytes that costs no memory until touched.
struct HugeSparseBuffer {
  std::size_t length;
  void* data;
  explicit HugeSparseBuffer(std::size_t length)
      : length(length),
        data(::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) {}
  ~HugeSparseBuffer() {
    if (data != MAP_FAILED) ::munmap(data, length);
  }
};

constexpr std::size_t kFourGiB = std::size_t{1} << 32;

Task<bool> huge_read_gets_the_message(void* buffer, std::size_t length) {
  Pipe p;
  (void)co_await io::write(p.fd[1], "hello", 5);
  auto n = co_await io::read(p.fd[0], buffer, length, IoOptions::timeout(10s));
  co_return n.ok() && *n == 5 && std::memcmp(buffer, "hello", 5) == 0;
}

Task<bool> huge_writes_progress(const void* buffer, std::size_t length) {
  Pipe p;
  auto some = co_await io::write_some(p.fd[1], buffer, length, IoOptions::timeout(10s));
  if (!some.ok() || *some == 0) co_return false;
  // write() loops over the clamped writes (to /dev/null: nothing is
  // copied). io_uring only: under epoll the same length goes to write(2),
  // which clamps it itself, and a sanitizer's write(2) interceptor would
  // check every one of the 4 GiB it reports written.
  if (std::string(io::poller_backend()) != "io_uring") co_return true;
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  absl::Status all = co_await io::write(null_fd, buffer, length, IoOptions::timeout(20s));
  (void)io::close(null_fd);
  co_return all.ok();
}

TEST(Io, ReadIntoAFourGibibyteBufferIsNotEndOfFile) {
  for (std::size_t length : {kFourGiB, kFourGiB + 1}) {
    HugeSparseBuffer buffer(length);
    ASSERT_NE(buffer.data, MAP_FAILED);
    EXPECT_TRUE(on_both_pollers([&]() GORO_CORO_WRAPPER {
      return huge_read_gets_the_message(buffer.data, length);
    })) << length;
  }
}

TEST(Io, WritesOfFourGibibytesProgress) {
  for (std::size_t length : {kFourGiB, kFourGiB + 1}) {
    HugeSparseBuffer buffer(length);
    ASSERT_NE(buffer.data, MAP_FAILED);
    EXPECT_TRUE(on_both_pollers([&]() GORO_CORO_WRAPPER {
      return huge_writes_progress(buffer.data, length);
    })) << length;
  }
}

// --- epoll: fd numbers and reuse ---

Task<bool> echo_on(int a, int b) {
  if (!(co_await io::write(a, "ping", 4)).ok()) co_return false;
  char buf[4] = {};
  auto n = co_await io::read(b, buf, sizeof buf, IoOptions::timeout(10s));
  co_return n.ok() && *n == 4 && std::memcmp(buf, "ping", 4) == 0;
}

// The kernel's ceiling on any process's fd limit (fs.nr_open, 2^20 by
// default). Returns the old value if it had to be raised (as root), else 0.
long raise_nr_open_to(long wanted) {
  std::FILE* in = std::fopen("/proc/sys/fs/nr_open", "r");
  if (in == nullptr) return 0;
  long current = 0;
  const bool read_ok = std::fscanf(in, "%ld", &current) == 1;
  std::fclose(in);
  if (!read_ok || current >= wanted) return 0;
  std::FILE* out = std::fopen("/proc/sys/fs/nr_open", "w");
  if (out == nullptr) return 0;
  const bool written = std::fprintf(out, "%ld", wanted) > 0;
  if (std::fclose(out) != 0 || !written) return 0;
  return current;
}

void restore_nr_open(long old_value) {
  if (old_value == 0) return;
  if (std::FILE* out = std::fopen("/proc/sys/fs/nr_open", "w")) {
    std::fprintf(out, "%ld", old_value);
    std::fclose(out);
  }
}

TEST(Io, FdsAboveTwoToTheTwentyWorkUnderEpoll) {
  constexpr int kHighFd = (1 << 20) + 5;
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  rlimit raised = old_limit;
  raised.rlim_cur = raised.rlim_max = std::max<rlim_t>(old_limit.rlim_max, kHighFd + 16);
  // Root may raise the kernel's ceiling (fs.nr_open) for the test's length.
  const long old_nr_open = raise_nr_open_to(kHighFd + 16);
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    raised.rlim_cur = old_limit.rlim_max;
    if (raised.rlim_cur <= static_cast<rlim_t>(kHighFd) ||
        ::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      restore_nr_open(old_nr_open);
      GTEST_SKIP() << "cannot raise RLIMIT_NOFILE above " << kHighFd
                   << " (not root, and fs.nr_open is lower)";
    }
  }
  SocketPair s;
  ASSERT_EQ(::dup2(s.fd[0], kHighFd), kHighFd);
  Config config = test::with_procs(2);
  config.poller = PollerBackend::kEpoll;
  EXPECT_TRUE(run(echo_on(s.fd[1], kHighFd), config));
  EXPECT_TRUE(run(echo_on(kHighFd, s.fd[1]), config));
  (void)io::close(kHighFd);
  ::setrlimit(RLIMIT_NOFILE, &old_limit);
  restore_nr_open(old_nr_open);
}

Task<bool> read_of_an_impossible_fd_is_ebadf() {
  char c = 0;
  auto r = co_await io::read((1 << 30) + 1, &c, 1);  // above the largest nr_open
  co_return r.status().code() == absl::ErrnoToStatusCode(EBADF);
}

TEST(Io, FdAboveAnyPossibleFdIsEbadfNotResourceExhausted) {
  EXPECT_TRUE(on_both_pollers(read_of_an_impossible_fd_is_ebadf));
}

// A goroutine's fd closed behind goro's back (::close, not io::close) and its
// number reused by a blocking socket that epoll has never seen: a read on
// it must not block the worker thread (procs=1: a timer goroutine must keep
// running while it waits), it ends at its deadline, and the fd is then
// registered again: the next read completes when the byte arrives.
Task<void> count_ticks(std::atomic<int>* ticks, std::atomic<bool>* stop) {
  while (!stop->load()) {
    co_await sleep(1ms);
    ticks->fetch_add(1);
  }
}

Task<bool> reused_blocking_fd_does_not_block_the_worker() {
  SocketPair first;
  char c = 0;
  // Registers the fd with the epoll and makes it non-blocking.
  auto timed_out = co_await io::read(first.fd[0], &c, 1, IoOptions::timeout(1ms));
  if (timed_out.ok()) co_return false;
  const int number = first.fd[0];
  ::close(first.fd[0]);
  int fresh[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fresh) != 0) co_return false;
  first.fd[0] = -1;
  if (fresh[0] != number) {  // the number must be reused for the test to mean anything
    ::close(fresh[0]);
    ::close(fresh[1]);
    co_return false;
  }
  std::atomic<int> ticks{0};
  std::atomic<bool> stop{false};
  auto ticker = spawn(count_ticks(&ticks, &stop));
  // Blocks the only worker in read(2) without the precautions; with them
  // the read parks and the ticker runs until the deadline.
  const int ticks_before = ticks.load();
  auto waited = co_await io::read(fresh[0], &c, 1, IoOptions::timeout(50ms));
  const bool deadline = waited.status().code() == absl::StatusCode::kDeadlineExceeded;
  const bool ticked = ticks.load() > ticks_before;
  // Registered again: a parked read completes when the byte arrives.
  auto reader = spawn(read_task(fresh[0], &c, IoOptions::timeout(30s)));
  const int parked_at = ticks.load();
  while (ticks.load() < parked_at + 5) co_await sleep(1ms);
  (void)::write(fresh[1], "r", 1);
  auto n = co_await reader;
  stop.store(true);
  co_await ticker;
  (void)io::close(fresh[0]);
  (void)io::close(fresh[1]);
  co_return deadline&& ticked&& n.ok() && *n == 1 && c == 'r';
}

TEST(Io, ReusedFdNumberOfABlockingSocketDoesNotBlockTheWorker) {
  Config config = test::with_procs(1);
  config.poller = PollerBackend::kEpoll;
  test::Watchdog watchdog("Io.ReusedFdNumberOfABlockingSocketDoesNotBlockTheWorker", 60s);
  EXPECT_TRUE(run(reused_blocking_fd_does_not_block_the_worker(), config));
}

// --- I/O beside a goroutine that computes ---

// The reader of the test below: announces itself, then reads one byte.
Task<void> read_then_flag(int fd, std::atomic<bool>* reading, std::atomic<bool>* done) {
  char c = 0;
  reading->store(true);
  auto n = co_await io::read(fd, &c, 1, IoOptions::timeout(60s));
  done->store(n.ok() && *n == 1);
}

// The main goroutine registers the socket with its own P's epoll (a read
// that completes at once: no suspension, so it stays on that P), then
// computes without ever suspending until the reader's read has completed.
// The byte arrives while it computes: only a rescue of the busy P's I/O
// can complete the read, so a missing rescue shows as the 30 s bound.
Task<bool> read_completes_while_its_p_computes() {
  SocketPair s;
  char c = 0;
  if (::write(s.fd[1], "r", 1) != 1) co_return false;
  auto first = co_await io::read(s.fd[0], &c, 1);
  if (!first.ok() || *first != 1) co_return false;
  std::atomic<bool> reading{false};
  std::atomic<bool> done{false};
  go(read_then_flag(s.fd[0], &reading, &done));
  std::thread writer([&] {
    while (!reading.load()) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // lets the reader park (a pass needs no sleep)
    (void)::write(s.fd[1], "w", 1);
  });
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!done.load() && std::chrono::steady_clock::now() < give_up) {
  }
  writer.join();
  co_return done.load();
}

TEST(Io, ReadCompletesWhileItsPComputesUnderEpoll) {
  Config config = test::with_procs(2);
  config.poller = PollerBackend::kEpoll;
  EXPECT_TRUE(run(read_completes_while_its_p_computes(), config));
}

// The io_uring mirror. An op belongs to the ring of the P whose goroutine
// queued it, so the computing goroutine must run on the reader's P: the
// reader starts it (into its P's runnext) just before it parks in its
// read, and the P runs it next. A thief may take it first (runnext is
// stealable after a few microseconds); that attempt does not count and
// the scenario is tried again.
struct BesideOptions {
  // How long the goroutine computes at most, and whether it stops as soon
  // as the read has completed.
  std::chrono::milliseconds compute_for{30'000};
  bool until_read_done = true;
  // A signal it sends its own thread (pthread_kill) as it starts, if any.
  int own_signal = 0;
};

struct BesideComputation {
  BesideOptions options;
  std::atomic<long> reader_thread{0};
  // 0: not decided yet; 1: computing on the reader's thread; 2: it ran on
  // another thread, so this attempt proves nothing.
  std::atomic<int> placement{0};
  std::atomic<bool> read_done{false};
  std::atomic<bool> read_ok{false};
  std::atomic<bool> saw_read_done{false};  // while it computed
  std::atomic<bool> finished{false};       // the computing goroutine returned
};

long this_thread_id() { return static_cast<long>(::gettid()); }

Task<void> compute_beside_the_read(BesideComputation* b) {
  if (this_thread_id() != b->reader_thread.load()) {
    b->placement.store(2);
    b->finished.store(true);
    co_return;
  }
  b->placement.store(1);
  if (b->options.own_signal != 0) pthread_kill(pthread_self(), b->options.own_signal);
  const auto give_up = std::chrono::steady_clock::now() + b->options.compute_for;
  while (!(b->options.until_read_done && b->read_done.load()) &&
         std::chrono::steady_clock::now() < give_up) {
  }
  b->saw_read_done.store(b->read_done.load());
  b->finished.store(true);
}

Task<void> read_beside_the_computation(int fd, BesideComputation* b) {
  char c = 0;
  b->reader_thread.store(this_thread_id());
  go(compute_beside_the_read(b));
  auto n = co_await io::read(fd, &c, 1, IoOptions::timeout(60s));
  b->read_ok.store(n.ok() && *n == 1 && c == 'w');
  b->read_done.store(true);
}

// Runs the scenario until the computing goroutine ran on the reader's P.
// 1: it did, and (until_read_done) the read completed while it computed;
// 0: the read did not; -1: it never ran on the reader's P.
Task<int> read_beside_a_computing_goroutine(BesideOptions options) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    SocketPair s;
    BesideComputation b;
    b.options = options;
    // The byte arrives once the goroutine computes (20 ms in: by then the
    // read's SQE is usually in the kernel; earlier, it is still queued on
    // the busy thread; a pass needs neither).
    std::thread writer([&] {
      while (b.placement.load() == 0) std::this_thread::yield();
      std::this_thread::sleep_for(20ms);
      (void)::write(s.fd[1], "w", 1);
    });
    auto reader = spawn(read_beside_the_computation(s.fd[0], &b));
    co_await reader;
    writer.join();
    if (!co_await test::yield_until_set(b.finished)) co_return 0;
    if (b.placement.load() != 1) continue;
    if (!options.until_read_done) co_return 1;
    co_return b.saw_read_done.load() && b.read_ok.load() ? 1 : 0;
  }
  co_return -1;
}

TEST(Io, ReadCompletesWhileItsPComputesUnderIoUring) {
  Config config = test::with_procs(2);
  config.poller = PollerBackend::kIoUring;
  test::Watchdog watchdog("Io.ReadCompletesWhileItsPComputesUnderIoUring", 120s);
  EXPECT_EQ(run(read_beside_a_computing_goroutine({}), config), 1);
}

// Counts the signals a handler of the test's own received.
std::atomic<int> own_handler_calls{0};
void count_own_signal(int) { own_handler_calls.fetch_add(1); }

// A signal of the program's (here, one a thread sends itself) reaches the
// handler that was installed before goro's; goro's own do not.
TEST(Io, RescueSignalPassesOtherSignalsToThePreviousHandler) {
  // A signal no other test uses, so that goro installs its handler over
  // the test's (once per process: a repeated run finds both in place).
  const int signo = SIGRTMIN + 7;
  struct sigaction current {};
  ASSERT_EQ(sigaction(signo, nullptr, &current), 0);
  if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction own {};
    own.sa_handler = &count_own_signal;
    sigemptyset(&own.sa_mask);
    ASSERT_EQ(sigaction(signo, &own, nullptr), 0);
  }
  Config config = test::with_procs(2);
  config.poller = PollerBackend::kIoUring;
  config.io_rescue_signal = signo;
  test::Watchdog watchdog("Io.RescueSignalPassesOtherSignalsToThePreviousHandler", 120s);
  const int before = own_handler_calls.load();
  BesideOptions options;
  options.own_signal = signo;
  EXPECT_EQ(run(read_beside_a_computing_goroutine(options), config), 1);
  EXPECT_EQ(own_handler_calls.load() - before, 1);
}

// Once the program has installed a handler of its own over goro's, goro
// sends it nothing (its reads then wait for the goroutine to suspend).
TEST(Io, RescueSignalIsNotSentOverTheProgramsHandler) {
  const int signo = SIGRTMIN + 8;
  Config config = test::with_procs(2);
  config.poller = PollerBackend::kIoUring;
  config.io_rescue_signal = signo;
  test::Watchdog watchdog("Io.RescueSignalIsNotSentOverTheProgramsHandler", 120s);
  (void)run(backend_in_use(), config);  // goro's handler is installed
  struct sigaction own {};
  own.sa_handler = &count_own_signal;
  sigemptyset(&own.sa_mask);
  ASSERT_EQ(sigaction(signo, &own, nullptr), 0);
  const int before = own_handler_calls.load();
  BesideOptions options;
  options.compute_for = 200ms;  // goro would signal within a few ms
  options.until_read_done = false;
  EXPECT_EQ(run(read_beside_a_computing_goroutine(options), config), 1);
  EXPECT_EQ(own_handler_calls.load() - before, 0);
}

TEST(Io, RescueSignalMustBeOneAHandlerCanBeInstalledFor) {
  for (int signo : {-1, SIGKILL, SIGSTOP, 32, 33, 65}) {
    Config config = test::with_procs(1);
    config.io_rescue_signal = signo;
    EXPECT_THROW((void)run(backend_in_use(), config), std::invalid_argument) << signo;
  }
}

// --- the rescue racing the owner's own reaping (io_uring) ---

// Reads `messages` bytes, i % 251 for the i-th, one read each; with
// `deadlines` each read gives up after 2 ms and is tried again (a cancel
// racing the completion and the rescue). Every 64 bytes it computes for
// 2 ms without suspending, so that the ops of the other readers on its P
// wait for a rescue or for the P's own poll.
Task<bool> read_in_order(int fd, long messages, bool deadlines) {
  for (long i = 0; i < messages;) {
    unsigned char c = 0;
    auto n = co_await io::read(fd, &c, 1, deadlines ? IoOptions::timeout(2ms) : IoOptions());
    if (!n.ok()) {
      if (n.status().code() == absl::StatusCode::kDeadlineExceeded) continue;
      co_return false;
    }
    if (*n != 1 || c != static_cast<unsigned char>(i % 251)) co_return false;
    ++i;
    if (i % 64 == 0) {
      const auto until = std::chrono::steady_clock::now() + 2ms;
      while (std::chrono::steady_clock::now() < until) {
      }
    }
  }
  co_return true;
}

// Computes in bursts of 3 ms, with a short sleep between, until `stop`.
Task<void> compute_in_bursts(const std::atomic<bool>* stop) {
  while (!stop->load()) {
    const auto until = std::chrono::steady_clock::now() + 3ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    co_await sleep(500us);
  }
}

Task<bool> rescue_races_the_owners_reaping(long messages) {
  constexpr int kPairs = 24;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < kPairs; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    // A third read from non-blocking sockets: io_uring answers -EAGAIN and
    // the op goes round as a readiness poll (resubmitted by its owner, or
    // by the rescue signal's handler).
    if (i % 3 == 0) {
      const int flags = fcntl(pairs.back()->fd[0], F_GETFL);
      if (flags < 0 || fcntl(pairs.back()->fd[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        co_return false;
      }
    }
  }
  std::atomic<bool> stop{false};
  std::vector<JoinHandle<void>> bursts;
  for (int i = 0; i < 2; ++i) bursts.push_back(spawn(compute_in_bursts(&stop)));
  std::vector<JoinHandle<bool>> readers;
  for (int i = 0; i < kPairs; ++i) {
    readers.push_back(spawn(read_in_order(pairs[i]->fd[0], messages, i % 4 == 1)));
  }
  // Two writers outside the runtime, each feeding half of the pairs, with
  // a pause now and then so that reads park.
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (long i = 0; i < messages; ++i) {
        const auto byte = static_cast<unsigned char>(i % 251);
        for (int k = w; k < kPairs; k += 2) {
          if (::write(pairs[k]->fd[1], &byte, 1) != 1) std::abort();
        }
        if (i % 8 == 0) std::this_thread::sleep_for(200us);
      }
    });
  }
  bool all = true;
  for (auto& r : readers) all = (co_await r) && all;
  stop.store(true);
  for (auto& b : bursts) co_await b;
  for (auto& t : writers) t.join();
  co_return all;
}

// The ids of this process's threads now.
std::vector<pid_t> threads_of_this_process() {
  std::vector<pid_t> ids;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ids.push_back(static_cast<pid_t>(std::atoi(entry->d_name)));
    }
    ::closedir(dir);
  }
  return ids;
}

// goro's rescue signal landing at any moment on any thread of the process
// (a worker inside io_uring_enter, inside a reap, between goroutines; a
// thread that owns no ring; the test's own thread once run() returned)
// changes nothing: every byte still arrives once and in order.
TEST(Io, RescueSignalsLandingAnywhereLoseNothing) {
  Config config = test::with_procs(3);
  config.poller = PollerBackend::kIoUring;
  test::Watchdog watchdog("Io.RescueSignalsLandingAnywhereLoseNothing", 240s);
  (void)run(backend_in_use(), config);  // goro's handler is installed
  std::atomic<bool> stop{false};
  std::atomic<long> sent{0};
  std::thread sender([&] {
    while (!stop.load()) {
      for (pid_t tid : threads_of_this_process()) {
        detail::uring_send_rescue_signal_for_testing(SIGURG, tid);
        sent.fetch_add(1);
      }
      std::this_thread::sleep_for(20us);
    }
  });
  EXPECT_TRUE(run(rescue_races_the_owners_reaping(test::scaled(400, 50)), config));
  for (int i = 0; i < 100 && sent.load() < 100; ++i) std::this_thread::sleep_for(1ms);
  stop.store(true);
  sender.join();
  detail::uring_send_rescue_signal_for_testing(SIGURG, ::gettid());  // no ring here now
  RecordProperty("signals_sent", std::to_string(sent.load()));
}

// Run twice: with the kernel's own polling of reads that find no data,
// and with every read answered -EAGAIN first (as some kernels answer reads
// of non-blocking files), so that CQEs that resubmit go through the rescue
// too: handed back by sysmon, resubmitted by the signal's handler or by
// the owner.
TEST(Io, RescueRacesTheOwnersReapingUnderIoUring) {
  Config config = test::with_procs(4);
  config.poller = PollerBackend::kIoUring;
  test::Watchdog watchdog("Io.RescueRacesTheOwnersReapingUnderIoUring", 240s);
  for (const bool eagain : {false, true}) {
    detail::uring_reads_say_eagain_for_testing(eagain);
    EXPECT_TRUE(run(rescue_races_the_owners_reaping(test::scaled(800, 100)), config)) << eagain;
    detail::uring_reads_say_eagain_for_testing(false);
    RecordProperty(eagain ? "io_rescued_eagain" : "io_rescued",
                   std::to_string(scheduler_stats().io_rescued));
  }
}

// --- shutdown with operations in flight ---

Task<void> read_forever(int fd, test::LifeCounts* counts, std::atomic<long>* started,
                        Clock::time_point deadline) {
  test::Guard guard(*counts);
  std::array<char, 256> buffer{};
  started->fetch_add(1);
  (void)co_await io::read(fd, buffer.data(), buffer.size(), IoOptions(deadline));
}

Task<void> leave_reads_in_flight(int fd_a, int fd_b, test::LifeCounts* counts) {
  std::atomic<long> started{0};
  for (int i = 0; i < 16; ++i) {
    go(read_forever(i % 2 == 0 ? fd_a : fd_b, counts, &started,
                    i % 4 < 2 ? Clock::time_point::max() : Clock::now() + 1h));
  }
  (void)co_await test::yield_until_at_least(started, 16);
  co_await sleep(5ms);  // they park in the poller
}

TEST(Io, ShutdownWithReadsInFlightDestroysTheirFrames) {
  SocketPair a;
  SocketPair b;
  test::LifeCounts counts;
  run(leave_reads_in_flight(a.fd[0], b.fd[0], &counts), test::with_procs(2));
  EXPECT_EQ(counts.constructed.load(), 16);
  EXPECT_EQ(counts.alive(), 0);
  // The sockets are intact: a later runtime can use them.
  EXPECT_TRUE(run(read_times_out_then_fd_still_works(), test::with_procs(2)));
}

}  // namespace
}  // namespace goro
