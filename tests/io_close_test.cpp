// tests/io_close_test.cpp: goro::io::close(fd) while other goroutines are
// parked on fd (in read, write and accept), on both pollers, with one P
// and with four: every parked operation ends with a closed error (is_closed,
// errno EBADF) long before its deadline, and an fd number handed out again
// right after the close never reaches the operation that waited on it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "poller.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using io::IoOptions;

// Far enough that an operation the close did not end fails the test by
// its deadline rather than by hanging it.
constexpr auto kSafetyDeadline = 20s;

using test::SocketPair;

// A TCP socket listening on 127.0.0.1 (port chosen by the kernel).
int listening_socket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 16) != 0) {
    std::abort();
  }
  return fd;
}

// Fills fd's send buffer (and its peer's receive buffer), so that the next
// write parks. Leaves fd non-blocking, which both pollers handle.
void fill_send_buffer(int fd) {
  const int size = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  char chunk[4096] = {};
  while (::send(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
  }
}

// How many operations wait on fd in the running runtime's poller.
std::uint32_t ops_parked_on(int fd) {
  if (std::string_view(io::poller_backend()) == "epoll") {
    return detail::epoll_ops_parked_on_fd_for_testing(fd);
  }
  return detail::uring_ops_on_fd_for_testing(fd);
}

// Yields until `count` operations wait on fd (false after a minute).
Task<bool> yield_until_parked(int fd, std::uint32_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (ops_parked_on(fd) < count) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    co_await goro::yield();
  }
  co_return true;
}

enum class Kind { kRead, kWrite, kAccept };

// What a parked operation ended with.
struct Outcome {
  absl::Status status;
  std::atomic<bool> done{false};
};

Task<void> park_in(Kind kind, int fd, Outcome* outcome) {
  const IoOptions options = IoOptions::timeout(kSafetyDeadline);
  std::vector<char> storage(1 << 16);
  char* const buffer = storage.data();
  const std::size_t size = storage.size();
  switch (kind) {
    case Kind::kRead: {
      auto n = co_await io::read(fd, buffer, size, options);
      outcome->status = n.ok() ? absl::InternalError("read returned data") : n.status();
      break;
    }
    case Kind::kWrite: {
      auto n = co_await io::write_some(fd, buffer, size, options);
      outcome->status = n.ok() ? absl::InternalError("write returned") : n.status();
      break;
    }
    case Kind::kAccept: {
      auto accepted = co_await io::accept(fd, nullptr, nullptr, options);
      if (accepted.ok()) (void)io::close(*accepted);
      outcome->status = accepted.ok() ? absl::InternalError("accepted") : accepted.status();
      break;
    }
  }
  outcome->done.store(true);
}

// Whether `outcome` is the closed error, reporting it otherwise.
bool ended_closed(const Outcome& outcome, const char* what) {
  const bool closed = io::is_closed(outcome.status) && io::errno_of(outcome.status) == EBADF;
  if (!closed) ADD_FAILURE() << what << ": " << outcome.status;
  return closed;
}

// `kinds` park on fd (each in its goroutine); the main goroutine closes fd
// and checks that all of them end closed. With `settle`, it first sleeps a
// little, so that its P polls and io_uring's SQEs are in the kernel (where
// a plain close(2) would leave them parked until their deadline); without,
// the close may come while they are still queued. Either way they must end
// closed: the sleep only picks which path the test covers.
Task<bool> close_while_parked(std::vector<Kind> kinds, int fd, bool settle = false) {
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (Kind kind : kinds) {
    outcomes.push_back(std::make_unique<Outcome>());
    go(park_in, kind, fd, outcomes.back().get());
  }
  const bool parked = co_await yield_until_parked(fd, static_cast<std::uint32_t>(kinds.size()));
  if (!parked) co_return false;
  if (settle) co_await goro::sleep(20ms);
  if (!io::close(fd).ok()) co_return false;
  bool all = true;
  for (auto& outcome : outcomes) {
    const bool done = co_await test::yield_until_set(outcome->done);
    all = all && done && ended_closed(*outcome, "parked operation");
  }
  co_return all;
}

// Runs make() on each poller with one P and with four.
void on_each_poller_and_procs(Task<bool> (*make)()) {
  test::Watchdog watchdog("io_close_test", 240s);
  for (PollerBackend backend : {PollerBackend::kIoUring, PollerBackend::kEpoll}) {
    for (unsigned procs : {1U, 4U}) {
      Config config = test::with_procs(procs);
      config.poller = backend;
      EXPECT_TRUE(run(make(), config))
          << (backend == PollerBackend::kEpoll ? "epoll" : "io_uring") << ", procs " << procs;
    }
  }
}

Task<bool> read_parked() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  const std::vector<Kind> kinds = {Kind::kRead};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, fd);
}

Task<bool> read_parked_in_the_kernel() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  const std::vector<Kind> kinds = {Kind::kRead};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, fd, /*settle=*/true);
}

Task<bool> accept_parked_in_the_kernel() {
  const std::vector<Kind> kinds = {Kind::kAccept};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, listening_socket(), /*settle=*/true);
}

Task<bool> write_parked() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  fill_send_buffer(fd);
  const std::vector<Kind> kinds = {Kind::kWrite};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, fd);
}

Task<bool> accept_parked() {
  const std::vector<Kind> kinds = {Kind::kAccept};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, listening_socket());
}

Task<bool> reads_and_writes_parked() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  fill_send_buffer(fd);
  const std::vector<Kind> kinds = {Kind::kRead, Kind::kWrite,
                                   Kind::kRead};  // not in the co_await: g++ 12
  co_return co_await close_while_parked(kinds, fd);
}

TEST(IoClose, ReadParkedOnTheFdEndsClosed) { on_each_poller_and_procs(read_parked); }
TEST(IoClose, ReadParkedInTheKernelEndsClosedBeforeItsDeadline) {
  on_each_poller_and_procs(read_parked_in_the_kernel);
}
TEST(IoClose, AcceptParkedInTheKernelEndsClosedBeforeItsDeadline) {
  on_each_poller_and_procs(accept_parked_in_the_kernel);
}
TEST(IoClose, WriteParkedOnTheFdEndsClosed) { on_each_poller_and_procs(write_parked); }
TEST(IoClose, AcceptParkedOnTheFdEndsClosed) { on_each_poller_and_procs(accept_parked); }
TEST(IoClose, ReadsAndWritesParkedOnOneFdAllEndClosed) {
  on_each_poller_and_procs(reads_and_writes_parked);
}

// The number the close released is handed out again at once, and data
// written to the new file is all there for its own reader: the operation
// that was parked on the old file took none of it.
Task<bool> reused_number_does_not_reach_the_parked_read() {
  SocketPair old_pair;
  const int fd = std::exchange(old_pair.fd[0], -1);
  Outcome outcome;
  go(park_in, Kind::kRead, fd, &outcome);
  const bool parked = co_await yield_until_parked(fd, 1);
  if (!parked || !io::close(fd).ok()) co_return false;
  // New pairs take the lowest free numbers, fd among them unless lower
  // ones are free too (or another thread of the process took fd in
  // between): a few more pairs reach it.
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::string numbers;
  int reused = -1;
  while (reused < 0 && pairs.size() < 8) {
    pairs.push_back(std::make_unique<SocketPair>());
    const SocketPair& pair = *pairs.back();
    numbers += " " + std::to_string(pair.fd[0]) + "," + std::to_string(pair.fd[1]);
    reused = pair.fd[0] == fd ? 0 : pair.fd[1] == fd ? 1 : -1;
  }
  if (reused < 0) {
    ADD_FAILURE() << "the closed number " << fd << " was not reused; new pairs:" << numbers;
    co_return false;
  }
  const SocketPair& fresh = *pairs.back();
  const char message[] = "for the new file";
  if (::write(fresh.fd[1 - reused], message, sizeof message) != sizeof message) co_return false;
  const bool done = co_await test::yield_until_set(outcome.done);
  if (!done || !ended_closed(outcome, "read on the closed number")) co_return false;
  char got[sizeof message] = {};
  auto n = co_await io::read(fresh.fd[reused], got, sizeof got, IoOptions::timeout(10s));
  const bool intact = n.ok() && *n == sizeof message && std::string_view(got) == message;
  co_return intact;
}

TEST(IoClose, ReusedNumberDoesNotReachTheParkedRead) {
  on_each_poller_and_procs(reused_number_does_not_reach_the_parked_read);
}

// Under io_uring, reads that answer -EAGAIN go round as readiness polls:
// a completion reaped after the close must not resubmit the read on the
// released number.
TEST(IoClose, ReusedNumberDoesNotReachAReadGoingRoundAsAPoll) {
  test::Watchdog watchdog("IoClose.ReusedNumberDoesNotReachAReadGoingRoundAsAPoll", 240s);
  detail::uring_reads_say_eagain_for_testing(true);
  for (unsigned procs : {1U, 4U}) {
    Config config = test::with_procs(procs);
    config.poller = PollerBackend::kIoUring;
    EXPECT_TRUE(run(reused_number_does_not_reach_the_parked_read(), config)) << procs;
  }
  detail::uring_reads_say_eagain_for_testing(false);
}

// A thread outside the runtime closes the fd.
Task<bool> close_from_a_plain_thread() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  Outcome outcome;
  go(park_in, Kind::kRead, fd, &outcome);
  const bool parked = co_await yield_until_parked(fd, 1);
  if (!parked) co_return false;
  std::atomic<bool> closed_ok{false};
  std::atomic<bool> closer_finished{false};
  std::thread closer([&] {
    closed_ok.store(io::close(fd).ok());
    closer_finished.store(true);
  });
  const bool done = co_await test::yield_until_set(outcome.done);
  // Joined only once it has finished: joining earlier would block this P's
  // thread, which the close may be waiting for.
  const bool finished = co_await test::yield_until_set(closer_finished);
  closer.join();
  const bool ok = done && finished && closed_ok.load() && ended_closed(outcome, "read");
  co_return ok;
}

TEST(IoClose, CloseFromAThreadOutsideTheRuntime) {
  on_each_poller_and_procs(close_from_a_plain_thread);
}

// Many fds, a reader parked on each, closed by as many goroutines at once
// (on four Ps, closers on different Ps wait for each other's rings).
Task<void> close_one(int fd, std::atomic<long>* closed) {
  if (io::close(fd).ok()) closed->fetch_add(1);
  co_return;
}

Task<bool> many_closers_at_once() {
  constexpr int kFds = 16;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::unique_ptr<Outcome>> outcomes;
  std::vector<int> fds;
  for (int i = 0; i < kFds; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    fds.push_back(std::exchange(pairs.back()->fd[0], -1));
    outcomes.push_back(std::make_unique<Outcome>());
    go(park_in, Kind::kRead, fds.back(), outcomes.back().get());
  }
  for (int fd : fds) {
    const bool parked = co_await yield_until_parked(fd, 1);
    if (!parked) co_return false;
  }
  std::atomic<long> closed{0};
  for (int fd : fds) go(close_one, fd, &closed);
  const bool all_closed = co_await test::yield_until_at_least(closed, kFds);
  bool all = all_closed;
  for (auto& outcome : outcomes) {
    const bool done = co_await test::yield_until_set(outcome->done);
    all = all && done && ended_closed(*outcome, "read");
  }
  co_return all;
}

TEST(IoClose, ManyClosersAtOnce) { on_each_poller_and_procs(many_closers_at_once); }

// An fd nobody waits on closes as close(2) does; a second close says EBADF,
// with the errno kept.
Task<bool> plain_close() {
  SocketPair pair;
  const int fd = std::exchange(pair.fd[0], -1);
  if (!io::close(fd).ok()) co_return false;
  const absl::Status again = io::close(fd);
  co_return !again.ok() && io::errno_of(again) == EBADF && !io::is_closed(again);
}

TEST(IoClose, IdleFdClosesPlainlyAndErrorsKeepTheirErrno) { on_each_poller_and_procs(plain_close); }

}  // namespace
}  // namespace goro
