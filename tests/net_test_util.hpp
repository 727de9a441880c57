// tests/net_test_util.hpp
//
// What the goro::net tests share: a test body is a coroutine returning a
// Verdict ("" when it passed, else what went wrong), run in a fresh
// runtime under a watchdog; fresh Unix socket paths; and the count of
// open fds, for leak checks.
#ifndef GORO_TESTS_NET_TEST_UTIL_HPP_
#define GORO_TESTS_NET_TEST_UTIL_HPP_

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include <goro/goro.hpp>

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

}  // namespace goro::test

#endif  // GORO_TESTS_NET_TEST_UTIL_HPP_
