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

using goro::test::connect_with_receive_timeout;
using goro::test::read_all;
using goro::test::write_all;

TEST(EchoServer, EchoesOverLoopbackUntilKilled) {
  goro::test::ExampleProcess server(ECHO_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());

  auto address = server.listening_address("echo_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_NE(address->port(), 0);

  std::vector<int> clients;
  for (int i = 0; i < 8; ++i) {
    const int fd = connect_with_receive_timeout(*address);
    ASSERT_GE(fd, 0) << errno;
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
