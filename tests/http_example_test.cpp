// tests/http_example_test.cpp: smoke test of examples/http_server over
// loopback, as a user runs it: start it on port 0, read the address it
// prints, ask for /plaintext, /json and / on one keep-alive connection
// (the last request closing it), stop it with SIGTERM. And examples/fetch
// against it: the status line, header fields and body it prints.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <goro/net/address.hpp>

#include "example_process.hpp"

namespace {

TEST(HttpExample, AnswersPlaintextAndJsonUntilKilled) {
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
  EXPECT_TRUE(server.stop());
}

TEST(HttpExample, FetchPrintsTheStatusLineHeadersAndBody) {
  goro::test::ExampleProcess server(HTTP_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("http_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  const std::string url = "http://" + address->to_string() + "/json";

  goro::test::ExampleProcess fetch(FETCH_PATH, url.c_str());
  ASSERT_TRUE(fetch.started());
  const std::string output = fetch.read_to_end(30'000);
  const int status = fetch.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(output.rfind("HTTP/1.1 200 OK\n", 0), 0u) << output;
  EXPECT_NE(output.find("\nContent-Type: application/json\n"), std::string::npos) << output;
  EXPECT_NE(output.find("\nContent-Length: 27\n"), std::string::npos) << output;
  const std::string body = R"({"message":"Hello, World!"})";
  EXPECT_EQ(output.substr(output.size() - body.size() - 2), "\n\n" + body) << output;
  EXPECT_TRUE(server.stop());
}

}  // namespace
