// tests/loadgen_test.cpp: smoke test of benchmarks/loadgen against the
// example servers, as scripts/demo.sh runs it: each server started on a
// free port, loadgen run for about a second with few connections, its exit
// status 0 and its JSON line saying that requests completed without
// errors. No speed is asserted. And loadgen's answer to bad options and to
// a port where nothing listens: a message and a non-zero exit, no crash.
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "example_process.hpp"

namespace {

struct Finished {
  int status = -1;     // waitpid's
  std::string output;  // standard output and standard error together
};

// Runs `arguments` (the program first) to its end, within 60 seconds.
Finished run_to_end(std::vector<std::string> arguments) {
  Finished finished;
  int out[2];
  if (::pipe(out) != 0) return finished;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const bool spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0;
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (spawned) {
    char buffer[4096];
    for (;;) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 60'000) <= 0) break;
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      finished.output.append(buffer, static_cast<std::size_t>(n));
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) == pid) finished.status = status;
  }
  ::close(out[0]);
  return finished;
}

// The number after "\"key\":" in loadgen's JSON line; -1 if absent.
std::int64_t json_number(const std::string& output, const std::string& key) {
  const std::string quoted = "\"" + key + "\":";
  const std::size_t at = output.find(quoted);
  if (at == std::string::npos) return -1;
  return std::strtoll(output.c_str() + at + quoted.size(), nullptr, 10);
}

bool exited_with(const Finished& finished, int code) {
  return finished.status != -1 && WIFEXITED(finished.status) &&
         WEXITSTATUS(finished.status) == code;
}

TEST(Loadgen, DrivesTheHttpServerAndReportsRequests) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const Finished loadgen =
      run_to_end({LOADGEN_PATH, "--duration=1s", "--connections=4", "--pipeline=2", "--json",
                  "--histogram=60", "http://" + address->to_string() + "/plaintext"});
  EXPECT_TRUE(exited_with(loadgen, 0)) << loadgen.status << "\n" << loadgen.output;
  EXPECT_GT(json_number(loadgen.output, "requests"), 0) << loadgen.output;
  EXPECT_EQ(json_number(loadgen.output, "errors"), 0) << loadgen.output;
  EXPECT_EQ(json_number(loadgen.output, "non_2xx_3xx"), 0) << loadgen.output;
  EXPECT_NE(loadgen.output.find("latency    p50 "), std::string::npos) << loadgen.output;
  EXPECT_NE(loadgen.output.find("latency histogram"), std::string::npos) << loadgen.output;
}

TEST(Loadgen, OpenLoopAtARateReportsRequests) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const Finished loadgen =
      run_to_end({LOADGEN_PATH, "--duration=1s", "--connections=2", "--rate=200", "--json",
                  "http://" + address->to_string() + "/json"});
  EXPECT_TRUE(exited_with(loadgen, 0)) << loadgen.status << "\n" << loadgen.output;
  EXPECT_GT(json_number(loadgen.output, "requests"), 0) << loadgen.output;
  EXPECT_NE(loadgen.output.find("open loop at 200 req/s"), std::string::npos) << loadgen.output;
}

TEST(Loadgen, DrivesTheEchoServerAndReportsRequests) {
  goro::test::ExampleProcess server(ECHO_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("echo_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const Finished loadgen =
      run_to_end({LOADGEN_PATH, "--mode=echo", "--duration=1s", "--connections=4", "--size=1000",
                  "--pipeline=4", "--json", address->to_string()});
  EXPECT_TRUE(exited_with(loadgen, 0)) << loadgen.status << "\n" << loadgen.output;
  EXPECT_GT(json_number(loadgen.output, "requests"), 0) << loadgen.output;
  EXPECT_EQ(json_number(loadgen.output, "errors"), 0) << loadgen.output;
}

TEST(Loadgen, NothingListeningIsCountedAsConnectErrorsAndExitsOne) {
  // A port just released by a listener of our own: nothing listens there.
  goro::test::ExampleProcess server(ECHO_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("echo_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  (void)server.stop();
  const Finished loadgen = run_to_end({LOADGEN_PATH, "--duration=500ms", "--connections=2",
                                       "--json", "http://" + address->to_string() + "/"});
  EXPECT_TRUE(exited_with(loadgen, 1)) << loadgen.status << "\n" << loadgen.output;
  EXPECT_EQ(json_number(loadgen.output, "requests"), 0) << loadgen.output;
  EXPECT_GT(json_number(loadgen.output, "errors"), 0) << loadgen.output;
  EXPECT_NE(loadgen.output.find("first connect error: "), std::string::npos) << loadgen.output;
}

TEST(Loadgen, BadOptionsAreRefusedWithUsage) {
  for (const char* bad :
       {"--connections=0", "--mode=udp", "--duration=soon", "--pipeline=-1", "--frobnicate"}) {
    const Finished loadgen = run_to_end({LOADGEN_PATH, bad, "http://127.0.0.1:1/"});
    EXPECT_TRUE(exited_with(loadgen, 2)) << bad << ": " << loadgen.status << "\n" << loadgen.output;
    EXPECT_NE(loadgen.output.find("usage: loadgen"), std::string::npos)
        << bad << ": " << loadgen.output;
  }
  const Finished no_target = run_to_end({LOADGEN_PATH});
  EXPECT_TRUE(exited_with(no_target, 2)) << no_target.output;
  const Finished https = run_to_end({LOADGEN_PATH, "https://127.0.0.1:1/"});
  EXPECT_TRUE(exited_with(https, 2)) << https.output;
}

}  // namespace
