// tests/net_test_util.hpp
//
// What the goro::net tests share: a test body is a coroutine returning a
// Verdict ("" when it passed, else what went wrong), run in a fresh
// runtime under a watchdog; fresh Unix socket paths; the counts of open
// fds and threads, for leak checks; and an echo client that checks what
// comes back byte for byte.
#ifndef GORO_TESTS_NET_TEST_UTIL_HPP_
#define GORO_TESTS_NET_TEST_UTIL_HPP_

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "test_util.hpp"

namespace goro::test {

// What a test body reports: "" when it passed, else what went wrong.
using Verdict = std::string;

inline std::string describe(const absl::Status& status) { return status.ToString(); }

// Runs `body()` (a Task<Verdict>) with `procs` Ps and expects "".
template <class Body>
void run_verdict(Body body, unsigned procs = 2) {
  Watchdog watchdog(::testing::UnitTest::GetInstance()->current_test_info()->name(),
                    std::chrono::seconds(120));
  const Verdict verdict = run(body(), with_procs(procs));
  EXPECT_EQ(verdict, "");
}

// A fresh Unix socket path under /tmp, `what` in its name.
inline std::string unique_unix_path(const char* what) {
  static std::atomic<int> counter{0};
  return "/tmp/goro-net-test-" + std::to_string(::getpid()) + "-" + what + "-" +
         std::to_string(counter.fetch_add(1));
}

// The entries of the directory at `path` (without "." and ".."); -1 if
// it cannot be read.
inline int directory_entries(const char* path) {
  DIR* directory = ::opendir(path);
  if (directory == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = ::readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(directory);
  return count;
}

// The fds this process has open now (the directory's own fd included, the
// same in every count).
inline int open_fd_count() { return directory_entries("/proc/self/fd"); }

// The threads of this process now.
inline int thread_count() { return directory_entries("/proc/self/task"); }

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
