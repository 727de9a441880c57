// goro/net/packet_conn.hpp
//
// Defines: goro::net::PacketConn (a datagram socket: UDP or Unix
// "unixgram"), goro::net::Datagram and goro::net::listen_packet, Go's
// net.ListenPacket / net.PacketConn.
//
//   auto socket = co_await goro::net::listen_packet("udp", "127.0.0.1:0");
//   char buffer[1500];
//   auto datagram = co_await socket->recv_from(buffer, sizeof buffer);
//   if (datagram.ok()) {
//     (void)co_await socket->send_to(buffer, datagram->size, datagram->from);
//   }
//
// Contract:
//   * recv_from parks until a datagram arrives and returns it whole, or
//     its first `length` bytes when it is longer (the rest is dropped, as
//     recvfrom(2) does; Datagram::truncated says so). A 0-byte datagram is
//     a Datagram of size 0, not an end of stream.
//   * send_to sends one datagram (all bytes or an error: EMSGSIZE when it
//     is too large), parking while the socket buffer is full.
//   * Deadlines, Context variants, close while parked (closed_error) and
//     destruction are as for Conn (goro/net/conn.hpp): a read deadline
//     bounds recv_from, a write deadline send_to, changes reach a parked
//     operation.
//   * "udp" with an empty host or "::" listens on every address, IPv4 and
//     IPv6 (dual-stack); "unixgram" binds a path (removed on close) or an
//     "@abstract" name; ListenOptions::remove_stale applies to a path,
//     reuse_port to UDP.
#ifndef GORO_NET_PACKET_CONN_HPP_
#define GORO_NET_PACKET_CONN_HPP_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/net/address.hpp"
#include "goro/net/listener.hpp"
#include "goro/task.hpp"

namespace goro::net {

// What recv_from received.
struct Datagram {
  std::size_t size = 0;    // bytes stored in the buffer
  Addr from;               // the sender (empty for an unbound Unix sender)
  bool truncated = false;  // the datagram was longer than the buffer
};

class PacketConn {
 public:
  // A closed PacketConn.
  PacketConn() noexcept;
  PacketConn(PacketConn&& other) noexcept;
  PacketConn& operator=(PacketConn&& other) noexcept;
  PacketConn(const PacketConn&) = delete;
  PacketConn& operator=(const PacketConn&) = delete;
  ~PacketConn();

  // The next datagram, into `buffer`.
  [[nodiscard(
      "co_await it: the receive happens then")]] GORO_CORO_WRAPPER Task<absl::StatusOr<Datagram>>
  recv_from(void* buffer, std::size_t length, Context ctx = {});

  // Sends `length` bytes as one datagram to `to`.
  [[nodiscard("co_await it: the send happens then")]] GORO_CORO_WRAPPER Task<absl::Status> send_to(
      const void* data, std::size_t length, const Addr& to, Context ctx = {});

  // Closes the socket (operations parked on it wake with closed_error);
  // closed_error on a second close.
  absl::Status close();

  void set_deadline(Clock::time_point deadline);
  void set_read_deadline(Clock::time_point deadline);
  void set_write_deadline(Clock::time_point deadline);

  // The bound address, with the port the kernel chose for port 0.
  [[nodiscard]] const Addr& local_addr() const noexcept { return address_; }

 private:
  friend Task<absl::StatusOr<PacketConn>> listen_packet(std::string network, std::string address,
                                                        ListenOptions options);
  PacketConn(std::shared_ptr<internal::NetFd> socket, Addr address,
             std::string unlink_path) noexcept;

  std::shared_ptr<internal::NetFd> socket_;
  Addr address_;
  std::string unlink_path_;
};

// Go's net.ListenPacket: a datagram socket bound to `address` on `network`
// ("udp", "udp4", "udp6", "unixgram"). Addresses as for listen (port 0
// lets the kernel choose); ListenOptions::backlog is ignored.
[[nodiscard("co_await it: the bind happens then")]] Task<absl::StatusOr<PacketConn>> listen_packet(
    std::string network, std::string address, ListenOptions options = {});

}  // namespace goro::net

#endif  // GORO_NET_PACKET_CONN_HPP_
