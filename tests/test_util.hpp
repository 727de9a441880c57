// tests/test_util.hpp
//
// Helpers shared by goro's tests: an awaitable that parks a goroutine for
// good, guards that count their constructions and destructions, an
// exception type carrying a code, the count of open fds, "yield until"
// loops, and a watchdog that names a test still running after a while.
#ifndef GORO_TESTS_TEST_UTIL_HPP_
#define GORO_TESTS_TEST_UTIL_HPP_

#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <goro/goro.hpp>

#include "test_scale.hpp"
#include "thread_census.hpp"

namespace goro::test {

// A Config with `procs` Ps (and optionally a small local run queue).
inline Config with_procs(unsigned procs, unsigned local_run_queue_capacity = 0) {
  Config config;
  config.procs = procs;
  config.local_run_queue_capacity = local_run_queue_capacity;
  return config;
}

// Suspends the awaiting coroutine and never resumes it. With a void
// await_suspend control returns to whoever resumed the chain (a worker
// loop, or a test's driver); the goroutine is destroyed only when the
// runtime shuts down.
struct ParkForever {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

// Counts the lives of Guard objects.
struct LifeCounts {
  std::atomic<long> constructed{0};
  std::atomic<long> destroyed{0};
  [[nodiscard]] long alive() const { return constructed.load() - destroyed.load(); }
};

// An RAII object that records its construction and destruction (copies and
// moves count as constructions, so constructed == destroyed exactly when
// every object was destroyed once).
class Guard {
 public:
  explicit Guard(LifeCounts& counts) noexcept : counts_(&counts) {
    counts_->constructed.fetch_add(1);
  }
  Guard(const Guard& other) noexcept : counts_(other.counts_) { counts_->constructed.fetch_add(1); }
  Guard(Guard&& other) noexcept : counts_(other.counts_) { counts_->constructed.fetch_add(1); }
  Guard& operator=(const Guard&) = delete;
  Guard& operator=(Guard&&) = delete;
  ~Guard() { counts_->destroyed.fetch_add(1); }

 private:
  LifeCounts* counts_;
};

// An exception with a code, so that a test can tell which throw reached it
// (and that it arrived with its type and message).
struct CodedError : std::runtime_error {
  CodedError(const std::string& what, int code) : std::runtime_error(what), code(code) {}
  int code;
};

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

// Yields until `value` >= `target`, then returns true. There is no time
// limit: how long a correct runtime takes depends on the machine's load,
// so a wait that never ends is left to ctest's per-test timeout, and the
// test's Watchdog says what was still running. The bool answer keeps the
// callers' `if (!co_await ...)` checks, which read as the condition they
// wait for. A coroutine that tests the answer of this or yield_until_set
// in an if condition and declares no named local variable is miscompiled
// by g++ 12 (goro/detail/frame_allocator.hpp, Frame layout check): name
// the answer first, `const bool set = co_await yield_until_set(flag); if
// (!set) ...`.
inline Task<bool> yield_until_at_least(const std::atomic<long>& value, long target) {
  while (value.load() < target) co_await goro::yield();
  co_return true;
}

inline Task<bool> yield_until_set(const std::atomic<bool>& flag) {
  while (!flag.load()) co_await goro::yield();
  co_return true;
}

// Yields until `done()` is true, as above.
template <class Done>
Task<bool> yield_until(Done done) {
  while (!done()) co_await goro::yield();
  co_return true;
}

// Reports, once, a test still running after `after` (default 240 s): its
// name and "hang / lost wakeup?" on stderr. It decides nothing: the test
// passes or fails on what it asserts, however long it takes, and a test
// that never ends is stopped by ctest's per-test timeout, with this line
// in its output saying which scope was still waiting. Its thread wakes no
// goroutine, so it is hidden from the deadlock detector's thread census:
// a test that expects a deadlock may keep a watchdog.
class Watchdog {
 public:
  explicit Watchdog(std::string what, std::chrono::seconds after = std::chrono::seconds(240))
      : what_(std::move(what)), thread_([this, after] {
          goro::detail::RuntimeThreadMark hidden;
          watch(after);
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void watch(std::chrono::seconds after) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, after, [this] { return done_; })) {
      std::fprintf(stderr, "watchdog: %s still running after %lld s (hang / lost wakeup?)\n",
                   what_.c_str(), static_cast<long long>(after.count()));
      std::fflush(stderr);
      cv_.wait(lock, [this] { return done_; });
    }
  }

  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// Both ends of a Unix stream socketpair, closed with goro::io::close when
// it goes (a test that closes an end itself sets it to -1).
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0) std::abort();
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) (void)io::close(f);
    }
  }
};

// SIGPIPE's default disposition (terminate) while it lives, whatever the
// test runner set.
class DefaultSigpipe {
 public:
  DefaultSigpipe() {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(SIGPIPE, &default_action, &saved_);
  }
  DefaultSigpipe(const DefaultSigpipe&) = delete;
  DefaultSigpipe& operator=(const DefaultSigpipe&) = delete;
  ~DefaultSigpipe() { ::sigaction(SIGPIPE, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

}  // namespace goro::test

#endif  // GORO_TESTS_TEST_UTIL_HPP_
