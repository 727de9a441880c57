// tests/chat_example_test.cpp: smoke test of examples/chat_server over
// loopback, as users run it: start it on port 0, read the address it
// prints, chat with plain blocking sockets (joins, messages, leaves), let a
// client that never reads fall behind until the room drops it while the
// others go on, and stop the server with SIGTERM: it closes every
// connection and exits 0.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <goro/net/address.hpp>

#include "example_process.hpp"

namespace {

using goro::test::connect_with_receive_timeout;
using goro::test::write_all;

// A chat client on a blocking socket whose receives give up after 30 s.
class ChatClient {
 public:
  // Connects; a receive buffer of `receive_buffer` bytes when not 0 (set
  // before connecting, so that the window stays that small).
  explicit ChatClient(const goro::net::Addr& address, int receive_buffer = 0) {
    if (receive_buffer == 0) {
      fd_ = connect_with_receive_timeout(address);
      return;
    }
    fd_ = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd_, address.sockaddr_pointer(), address.length()) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ChatClient(const ChatClient&) = delete;
  ChatClient& operator=(const ChatClient&) = delete;
  ~ChatClient() { close(); }

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  bool say(const std::string& line) {
    return write_all(fd_, (line + "\n").data(), line.size() + 1);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next line, without its newline; "<end>" at end of stream, "<error
  // N>" on a failed receive (a timeout included).
  std::string line() {
    for (;;) {
      const std::size_t newline = buffered_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffered_.substr(0, newline);
        buffered_.erase(0, newline + 1);
        return line;
      }
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n == 0) return "<end>";
      if (n < 0) return "<error " + std::to_string(errno) + ">";
      buffered_.append(buffer, static_cast<std::size_t>(n));
    }
  }

  // Reads until the end of stream: true if it came (not an error).
  bool read_to_end() {
    buffered_.clear();
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n == 0) return true;
      if (n < 0) return false;
    }
  }

 private:
  int fd_ = -1;
  std::string buffered_;
};

// Sends SIGTERM and checks the graceful exit: the notice, then status 0.
void expect_graceful_exit(goro::test::ExampleProcess& server) {
  server.terminate();
  EXPECT_EQ(server.read_line(30'000), "chat_server: shutting down");
  const int status = server.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ChatExample, BroadcastsJoinsMessagesAndLeavesUntilTerminated) {
  goro::test::ExampleProcess server(CHAT_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("chat_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();

  ChatClient alice(*address);
  ASSERT_TRUE(alice.connected()) << errno;
  ASSERT_TRUE(alice.say("alice"));
  EXPECT_EQ(alice.line(), "alice has joined");
  ChatClient bob(*address);
  ASSERT_TRUE(bob.connected()) << errno;
  ASSERT_TRUE(bob.say("bob"));
  EXPECT_EQ(bob.line(), "bob has joined");
  EXPECT_EQ(alice.line(), "bob has joined");

  ASSERT_TRUE(alice.say("hello, bob"));
  EXPECT_EQ(alice.line(), "alice: hello, bob");
  EXPECT_EQ(bob.line(), "alice: hello, bob");
  ASSERT_TRUE(bob.say("hi alice\r"));  // a CRLF line ends the same way
  EXPECT_EQ(alice.line(), "bob: hi alice");
  EXPECT_EQ(bob.line(), "bob: hi alice");

  bob.close();
  EXPECT_EQ(alice.line(), "bob has left");

  // Shutting down closes alice's connection.
  expect_graceful_exit(server);
  EXPECT_EQ(alice.line(), "<end>");
}

TEST(ChatExample, ClientThatDoesNotReadIsDroppedAndTheRoomGoesOn) {
  goro::test::ExampleProcess server(CHAT_SERVER_PATH, "127.0.0.1:0");
  ASSERT_TRUE(server.started());
  auto address = server.listening_address("chat_server: listening on ");
  ASSERT_TRUE(address.ok()) << address.status();

  ChatClient slow(*address, 4096);
  ASSERT_TRUE(slow.connected()) << errno;
  ASSERT_TRUE(slow.say("slow"));
  EXPECT_EQ(slow.line(), "slow has joined");  // and then it stops reading
  ChatClient fast(*address);
  ASSERT_TRUE(fast.connected()) << errno;
  ASSERT_TRUE(fast.say("fast"));
  EXPECT_EQ(fast.line(), "fast has joined");

  // fast talks, and reads each of its messages back, until the socket
  // buffers towards slow and slow's backlog are full and the room drops
  // it. The bound only keeps a broken server from looping forever.
  const std::string padding(1000, 'x');
  bool dropped = false;
  for (int i = 0; i < 100'000 && !dropped; ++i) {
    const std::string message = std::to_string(i) + " " + padding;
    ASSERT_TRUE(fast.say(message));
    for (;;) {
      const std::string line = fast.line();
      if (line == "slow was dropped (too slow)") {
        dropped = true;
        continue;
      }
      ASSERT_EQ(line, "fast: " + message);
      break;
    }
  }
  ASSERT_TRUE(dropped);
  // slow's connection was closed: it reads what was sent, then the end.
  EXPECT_TRUE(slow.read_to_end());

  // The room goes on without it.
  ChatClient late(*address);
  ASSERT_TRUE(late.connected()) << errno;
  ASSERT_TRUE(late.say("late"));
  EXPECT_EQ(late.line(), "late has joined");
  EXPECT_EQ(fast.line(), "late has joined");
  ASSERT_TRUE(fast.say("still here"));
  EXPECT_EQ(fast.line(), "fast: still here");
  EXPECT_EQ(late.line(), "fast: still here");

  expect_graceful_exit(server);
}

}  // namespace
