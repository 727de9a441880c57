// tests/net_test_util.hpp
//
// What the goro::net tests share: a test body is a coroutine returning a
// Verdict ("" when it passed, else what went wrong), run in a fresh
// runtime under a watchdog; fresh Unix socket paths; the open fds'
// listing, the thread count and the resident set size, for leak checks
// (the fd count is test_util.hpp's); a loopback
// connection whose client end is a raw socket that can reset; an echo
// handler; and an echo client that checks what comes back byte for byte.
#ifndef GORO_TESTS_NET_TEST_UTIL_HPP_
#define GORO_TESTS_NET_TEST_UTIL_HPP_

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test_util.hpp"

namespace goro::test {

// What a test body reports: "" when it passed, else what went wrong.
using Verdict = std::string;

inline std::string describe(const absl::Status& status) { return status.ToString(); }

// Runs `body()` (a Task<Verdict>) in a runtime made with `config` and
// expects "".
template <class Body>
void run_verdict(Body body, const Config& config) {
  Watchdog watchdog(::testing::UnitTest::GetInstance()->current_test_info()->name(),
                    std::chrono::seconds(120));
  const Verdict verdict = run(body(), config);
  EXPECT_EQ(verdict, "");
}

// Runs `body()` (a Task<Verdict>) with `procs` Ps and expects "".
template <class Body>
void run_verdict(Body body, unsigned procs = 2) {
  run_verdict(body, with_procs(procs));
}

// A fresh Unix socket path under /tmp, `what` in its name.
inline std::string unique_unix_path(const char* what) {
  static std::atomic<int> counter{0};
  return "/tmp/goro-net-test-" + std::to_string(::getpid()) + "-" + what + "-" +
         std::to_string(counter.fetch_add(1));
}

// The open descriptors of this process and what each names ("3 socket:[42]"),
// for a test that found a different count than it expected to say which.
inline std::string open_fd_listing() {
  std::string listing;
  DIR* directory = ::opendir("/proc/self/fd");
  if (directory == nullptr) return "(unreadable)";
  while (const dirent* entry = ::readdir(directory)) {
    if (entry->d_name[0] == '.') continue;
    char target[256] = {};
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    const ssize_t length = ::readlink(link.c_str(), target, sizeof target - 1);
    listing += std::string(entry->d_name) + " " + (length > 0 ? target : "?") + "; ";
  }
  ::closedir(directory);
  return listing;
}

// The threads of this process now.
inline int thread_count() { return directory_entries("/proc/self/task"); }

// The resident set size of this process in bytes (/proc/self/statm); -1
// if it cannot be read.
inline long resident_bytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (file == nullptr) return -1;
  long pages = 0, resident = 0;
  const int read = std::fscanf(file, "%ld %ld", &pages, &resident);
  std::fclose(file);
  return read == 2 ? resident * ::sysconf(_SC_PAGESIZE) : -1;
}

// A loopback TCP connection whose client end is a raw socket (so that it
// can reset: SO_LINGER 0), with the server end as a Conn.
struct RawPeer {
  int raw = -1;
  net::Conn server;
};

inline Task<absl::StatusOr<RawPeer>> raw_peer() {
  auto listener = co_await net::listen("tcp", "127.0.0.1:0");
  if (!listener.ok()) co_return listener.status();
  const int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(raw, listener->addr().sockaddr_pointer(), listener->addr().length()) != 0) {
    co_return absl::InternalError("raw connect");
  }
  auto server = co_await listener->accept();
  if (!server.ok()) co_return server.status();
  co_return RawPeer{raw, std::move(*server)};
}

// Closes the raw socket `raw` with SO_LINGER 0: its peer sees a reset.
inline void close_with_reset(int raw) {
  linger hard{1, 0};
  ::setsockopt(raw, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(raw);
}

// Echoes what `conn` reads, at most `chunk` bytes at a time, until end of
// stream or an error.
inline Task<void> echo_until_end(net::Conn conn, std::size_t chunk) {
  std::vector<char> buffer(chunk);
  for (;;) {
    auto n = co_await conn.read(buffer.data(), buffer.size());
    if (!n.ok() || *n == 0) co_return;
    if (!(co_await conn.write(buffer.data(), *n)).ok()) co_return;
  }
}

// One client of an echo server at `address`: `rounds` messages of random
// size (1 to 200,000 bytes, from `seed`), each checked byte for byte; a
// failure adds 1 to `failures`. Counts `done` down when it ends.
inline Task<void> echo_client(std::string address, int seed, int rounds,
                              std::shared_ptr<WaitGroup> done,
                              std::shared_ptr<std::atomic<long>> failures) {
  auto guard = absl::Cleanup([&] { done->done(); });
  auto conn = co_await net::dial("tcp", address, Clock::now() + std::chrono::seconds(60));
  if (!conn.ok()) {
    failures->fetch_add(1);
    co_return;
  }
  std::mt19937 random(seed);
  std::vector<char> sent;
  std::vector<char> received;
  for (int round = 0; round < rounds; ++round) {
    const std::size_t size = std::uniform_int_distribution<std::size_t>(1, 200'000)(random);
    sent.resize(size);
    for (char& c : sent) c = static_cast<char>(random());
    received.assign(size, 0);
    // Write from another goroutine: a message larger than the socket
    // buffers would otherwise deadlock against its own echo.
    auto writer = spawn(
        [](net::Conn* conn, const std::vector<char>* data) -> Task<absl::Status> {
          co_return co_await conn->write(data->data(), data->size());
        },
        &*conn, &sent);
    const absl::Status read = co_await conn->read_full(received.data(), size);
    const absl::Status written = co_await writer;
    if (!read.ok() || !written.ok() || received != sent) {
      failures->fetch_add(1);
      co_return;
    }
  }
}

}  // namespace goro::test

#endif  // GORO_TESTS_NET_TEST_UTIL_HPP_
