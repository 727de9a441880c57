// tests/example_process.hpp: runs an example server as a user would, for
// the tests of examples/: spawned with an address argument, its first
// line of standard output read (where it says what it listens on), and
// stopped with SIGTERM; or, for a client, its whole output read and its
// exit awaited; and the plain blocking client side: a connected socket
// with a receive timeout, and sending or receiving a whole buffer.
#ifndef GORO_TESTS_EXAMPLE_PROCESS_HPP_
#define GORO_TESTS_EXAMPLE_PROCESS_HPP_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <goro/net/address.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

extern char** environ;

namespace goro::test {

class ExampleProcess {
 public:
  // Starts `program` with `argument`, its standard output to a pipe.
  // started() says whether it ran.
  ExampleProcess(const char* program, const char* argument)
      : ExampleProcess(program, std::vector<std::string>{argument}) {}
  // The same with several arguments.
  ExampleProcess(const char* program, std::vector<std::string> arguments) {
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::string program_copy = program;
    std::vector<char*> argv = {program_copy.data()};
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, program, &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    out_ = out[0];
  }
  ExampleProcess(const ExampleProcess&) = delete;
  ExampleProcess& operator=(const ExampleProcess&) = delete;
  ~ExampleProcess() {
    if (pid_ > 0) (void)stop();
    if (out_ >= 0) ::close(out_);
  }

  [[nodiscard]] bool started() const { return pid_ > 0; }

  // One line of its standard output within `timeout_ms`; "" on timeout or
  // end of output.
  std::string read_line(int timeout_ms) {
    std::string line;
    char c;
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return "";
      if (::read(out_, &c, 1) != 1) return "";
      if (c == '\n') return line;
      line += c;
    }
  }

  // The rest of its standard output, up to its end (the program closed it
  // or exited); what came before `timeout_ms` passed without a byte.
  std::string read_to_end(int timeout_ms) {
    std::string output;
    char buffer[4096];
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return output;
      const ssize_t n = ::read(out_, buffer, sizeof buffer);
      if (n <= 0) return output;
      output.append(buffer, static_cast<std::size_t>(n));
    }
  }

  // The address in its first line of output, `prefix` followed by
  // host:port, read within 30 seconds.
  absl::StatusOr<net::Addr> listening_address(std::string_view prefix) {
    const std::string line = read_line(30'000);
    if (line.rfind(prefix, 0) != 0) {
      return absl::FailedPreconditionError("first line: \"" + line + "\"");
    }
    return net::Addr::parse_ip_port(line.substr(prefix.size()));
  }

  // Sends SIGTERM and returns at once.
  void terminate() { ::kill(pid_, SIGTERM); }

  // Waits for it to end: waitpid's status, or -1 when it cannot be waited.
  int wait() {
    int status = 0;
    const bool waited = ::waitpid(pid_, &status, 0) == pid_;
    pid_ = 0;
    return waited ? status : -1;
  }

  // Sends SIGTERM and waits: whether SIGTERM is what ended it.
  bool stop() {
    terminate();
    const int status = wait();
    return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
  }

 private:
  pid_t pid_ = 0;
  int out_ = -1;
};

// A blocking TCP socket connected to `address`, whose receives give up
// after 30 seconds; -1 (errno set) when it cannot be made or connected.
inline int connect_with_receive_timeout(const net::Addr& address) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, address.sockaddr_pointer(), address.length()) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// Sends all `size` bytes at `data` on the blocking socket `fd`.
inline bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Receives exactly `size` bytes into `data` from the blocking socket `fd`.
inline bool read_all(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, data, size, 0);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace goro::test

#endif  // GORO_TESTS_EXAMPLE_PROCESS_HPP_
