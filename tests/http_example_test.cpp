// tests/http_example_test.cpp: smoke test of examples/http_server over
// loopback, as a user runs it: start it on port 0, read the address it
// prints, ask for /plaintext, /json and / on one keep-alive connection
// (the last request closing it), stop it with SIGTERM: it shuts down
// gracefully, prints the runtime's summary and exits 0. And examples/fetch
// against it: a line per URL, in order, with status and size; an
// unreachable URL an error line and exit status 1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include <goro/net/address.hpp>

#include "example_process.hpp"

namespace {

// The poller the example should report: epoll where GORO_POLLER asks for
// it, else io_uring or (where the kernel refuses it) epoll.
bool expected_poller(const std::string& reported) {
  const char* asked = std::getenv("GORO_POLLER");
  if (asked != nullptr && std::string(asked) == "epoll") return reported == "epoll";
  return reported == "io_uring" || reported == "epoll";
}

TEST(HttpExample, AnswersPlaintextAndJsonThenShutsDownOnSigterm) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();

  const int fd = goro::test::connect_with_receive_timeout(*address);
  ASSERT_GE(fd, 0) << errno;
  const std::string requests =
      "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /json HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(goro::test::write_all(fd, requests.data(), requests.size()));
  std::string answers;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    ASSERT_GE(n, 0) << "no end of stream: " << errno << ", got \"" << answers << "\"";
    if (n == 0) break;
    answers.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);

  const std::size_t plain = answers.find("\r\n\r\nHello, World!");
  const std::size_t json = answers.find("Content-Type: application/json\r\n");
  const std::size_t json_body = answers.find("\r\n\r\n{\"message\":\"Hello, World!\"}");
  const std::size_t root = answers.find("Connection: close\r\n\r\nHello, World!");
  EXPECT_EQ(answers.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answers;
  EXPECT_NE(plain, std::string::npos) << answers;
  EXPECT_NE(json, std::string::npos) << answers;
  EXPECT_LT(plain, json_body) << answers;
  EXPECT_LT(json_body, root) << answers;
  EXPECT_NE(root, std::string::npos) << answers;

  // SIGTERM: a graceful shutdown, the runtime's summary, exit 0.
  server.terminate();
  const std::string output = server.read_to_end(30'000);
  const int status = server.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(output.rfind("http_server: shutting down\n", 0), 0u) << output;
  const std::size_t poller = output.find("\nruntime: poller ");
  ASSERT_NE(poller, std::string::npos) << output;
  const std::size_t poller_name = poller + std::string("\nruntime: poller ").size();
  EXPECT_TRUE(
      expected_poller(output.substr(poller_name, output.find(',', poller_name) - poller_name)))
      << output;
  for (const char* line : {"\nruntime: goroutines started ", "\nruntime: steals ",
                           "\nruntime: I/O waits ", "\nruntime: allocator frames allocated "}) {
    EXPECT_NE(output.find(line), std::string::npos) << line << " in " << output;
  }
}

// Sends SIGTERM and checks the graceful exit (status 0).
void expect_graceful_exit(goro::test::ExampleProcess& server) {
  server.terminate();
  (void)server.read_to_end(30'000);
  const int status = server.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(HttpExample, FetchPrintsStatusAndSizePerUrlInTheOrderGiven) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const std::string base = "http://" + address->to_string();
  // More URLs than fetch runs at once (4), so that some wait for a slot.
  const std::vector<std::string> urls = {base + "/json", base + "/plaintext",
                                         base + "/",     base + "/missing",
                                         base + "/json", base + "/plaintext"};

  goro::test::ExampleProcess fetch(FETCH_PATH, urls);
  ASSERT_TRUE(fetch.started());
  const std::string output = fetch.read_to_end(30'000);
  const int status = fetch.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(output, urls[0] + ": 200 OK, 27 bytes\n" +             //
                        urls[1] + ": 200 OK, 13 bytes\n" +         //
                        urls[2] + ": 200 OK, 13 bytes\n" +         //
                        urls[3] + ": 404 Not Found, 13 bytes\n" +  //
                        urls[4] + ": 200 OK, 27 bytes\n" +         //
                        urls[5] + ": 200 OK, 13 bytes\n");
  expect_graceful_exit(server);
}

TEST(HttpExample, FetchReportsAnUnreachableUrlAndExitsOne) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  // A port bound but not listening refuses connections while it stays bound.
  const int bound = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(bound, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(bound, reinterpret_cast<const sockaddr*>(&local), sizeof local), 0);
  socklen_t length = sizeof local;
  ASSERT_EQ(::getsockname(bound, reinterpret_cast<sockaddr*>(&local), &length), 0);
  const std::string refused = "http://127.0.0.1:" + std::to_string(ntohs(local.sin_port)) + "/";
  const std::string answered = "http://" + address->to_string() + "/json";

  goro::test::ExampleProcess fetch(FETCH_PATH, std::vector<std::string>{refused, answered});
  ASSERT_TRUE(fetch.started());
  const std::string output = fetch.read_to_end(30'000);
  const int status = fetch.wait();
  ::close(bound);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_EQ(output.rfind(refused + ": error: ", 0), 0u) << output;
  EXPECT_NE(output.find("\n" + answered + ": 200 OK, 27 bytes\n"), std::string::npos) << output;
  expect_graceful_exit(server);
}

}  // namespace
