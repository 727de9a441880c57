// tests/descriptor_exhaustion.hpp
//
// Helpers for tests that run code while the process has no free file
// descriptor: the highest open descriptor (to set a low RLIMIT_NOFILE just
// above it), taking every free descriptor and giving them back, and
// running a check in a forked child, since the limit and the descriptor
// table are the whole process's.
#ifndef GORO_TESTS_DESCRIPTOR_EXHAUSTION_HPP_
#define GORO_TESTS_DESCRIPTOR_EXHAUSTION_HPP_

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace goro::test {

// The highest fd this process has open.
inline int highest_open_fd() {
  int highest = 2;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* entry = ::readdir(dir)) {
      highest = std::max(highest, std::atoi(entry->d_name));
    }
    ::closedir(dir);
  }
  return highest;
}

// Takes every free descriptor the (lowered) limit leaves.
inline std::vector<int> exhaust_descriptors() {
  std::vector<int> fillers;
  for (;;) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  return fillers;
}

inline void release_descriptors(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

// Runs `body()` (returning a std::string verdict: "" when it passed) in a
// forked child and returns its verdict, or what went wrong with the child
// (it died, or it ran past two minutes and was killed). Call it before the
// test process has started threads (ctest runs each test in a process of
// its own; put such a test first in its file): only the forking thread
// lives on in the child.
template <class Body>
std::string verdict_in_child(Body body) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "pipe";
  const pid_t child = ::fork();
  if (child < 0) return "fork";
  if (child == 0) {
    ::close(pipe_fds[0]);
    const std::string verdict = body();
    (void)!::write(pipe_fds[1], verdict.data(), verdict.size());
    ::_exit(verdict.empty() ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  // The verdict, until the child exits (end of file), or two minutes.
  std::string verdict;
  char buffer[256];
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    pollfd readable{pipe_fds[0], POLLIN, 0};
    if (::poll(&readable, 1, 1000) == 0) {
      if (std::chrono::steady_clock::now() < give_up) continue;
      ::kill(child, SIGKILL);
      verdict = "child hung";
      break;
    }
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    verdict.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status)) return "child died: " + std::to_string(status) + " " + verdict;
  if (WEXITSTATUS(status) != 0 && verdict.empty()) return "child failed";
  return verdict;
}

}  // namespace goro::test

#endif  // GORO_TESTS_DESCRIPTOR_EXHAUSTION_HPP_
