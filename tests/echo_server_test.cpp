// tests/echo_server_test.cpp: smoke test of examples/echo_server over
// loopback, as a user runs it: start it on port 0, read the address it
// prints, echo over several connections with plain blocking sockets,
// stop it with SIGTERM: the connected clients are still served until they
// leave, then it exits 0.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <goro/net/address.hpp>

#include "example_process.hpp"

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, data, size, 0);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

TEST(EchoServer, EchoesOverLoopbackUntilKilled) {
  goro::test::ExampleProcess server(ECHO_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());

  const std::string line = server.read_line(30'000);
  const std::string prefix = "echo_server: listening on ";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << "first line: \"" << line << "\"";
  auto address = goro::net::Addr::parse_ip_port(line.substr(prefix.size()));
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_NE(address->port(), 0);

  std::vector<int> clients;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    timeval timeout{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ASSERT_EQ(::connect(fd, address->sockaddr_pointer(), address->length()), 0) << errno;
    clients.push_back(fd);
  }
  for (int round = 0; round < 10; ++round) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      std::string message(1 + (round * 997 + i * 131) % 20000, 'a' + static_cast<char>(i));
      message.front() = static_cast<char>('0' + round);
      ASSERT_TRUE(write_all(clients[i], message.data(), message.size()));
      std::string echoed(message.size(), '\0');
      ASSERT_TRUE(read_all(clients[i], echoed.data(), echoed.size()));
      ASSERT_EQ(echoed, message);
    }
  }
  // A client that leaves does not disturb the others.
  ::close(clients.back());
  clients.pop_back();
  ASSERT_TRUE(write_all(clients[0], "still", 5));
  char still[5];
  ASSERT_TRUE(read_all(clients[0], still, 5));
  EXPECT_EQ(std::string(still, 5), "still");

  // SIGTERM starts a graceful shutdown: the connected clients are still
  // served, and the server exits 0 once they have left.
  server.terminate();
  ASSERT_EQ(server.read_line(30'000), "echo_server: shutting down");
  for (int fd : clients) {
    ASSERT_TRUE(write_all(fd, "after", 5));
    char after[5];
    ASSERT_TRUE(read_all(fd, after, 5));
    EXPECT_EQ(std::string(after, 5), "after");
  }
  for (int fd : clients) ::close(fd);
  const int status = server.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
