// tests/example_process.hpp: runs an example server as a user would, for
// the tests of examples/: spawned with an address argument, its first
// line of standard output read (where it says what it listens on), and
// stopped with SIGTERM; or, for a client, its whole output read and its
// exit awaited.
#ifndef GORO_TESTS_EXAMPLE_PROCESS_HPP_
#define GORO_TESTS_EXAMPLE_PROCESS_HPP_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

extern char** environ;

namespace goro::test {

class ExampleProcess {
 public:
  // Starts `program` with `argument`, its standard output to a pipe.
  // started() says whether it ran.
  ExampleProcess(const char* program, const char* argument) {
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::string program_copy = program;
    std::string argument_copy = argument;
    char* argv[] = {program_copy.data(), argument_copy.data(), nullptr};
    if (::posix_spawn(&pid_, program, &actions, nullptr, argv, environ) != 0) pid_ = 0;
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

}  // namespace goro::test

#endif  // GORO_TESTS_EXAMPLE_PROCESS_HPP_
