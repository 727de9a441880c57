// goro/io_multishot.hpp
//
// Defines: goro::io::AcceptStream, the connections accepted on one
// listening socket, taken one accept() at a time (goro::net::Listener is
// built on it).
//
// Under the io_uring backend with Config::multishot_accept (the default),
// the stream keeps one multishot accept in the kernel for the socket:
// connections accepted while no goroutine waits in accept() are queued
// (up to Config::accept_queue_capacity; beyond that the kernel's request
// is cancelled and further connections wait in the listen backlog until
// the next accept() finds the queue empty and asks again: none is lost or
// closed), and handed to the next accept() in the order they came. Under
// epoll, or with multishot_accept off, each accept() is goro::io::accept
// on the socket (epoll: accept4 when the socket is readable).
//
//   goro::io::AcceptStream stream(listen_fd);
//   for (;;) {
//     auto fd = co_await stream.accept();   // StatusOr<int>, SOCK_CLOEXEC
//     if (!fd.ok()) break;
//     ...
//   }
//   stream.stop();   // or its destructor
#ifndef GORO_IO_MULTISHOT_HPP_
#define GORO_IO_MULTISHOT_HPP_

#include <atomic>
#include <cstddef>

#include "goro/io.hpp"

namespace goro::io {

// Contract:
//   * accept() behaves as goro::io::accept(fd, nullptr, nullptr, options)
//     (same errors, deadlines and cancellation; the peer's address is not
//     returned: getpeername tells it). An error of the kernel's request
//     (EMFILE...) is returned to one accept() and the next accept() asks
//     again.
//   * Any number of goroutines may accept on one stream, from any P;
//     waiting ones are served in the order they parked.
//   * stop() (any thread, idempotent; the destructor calls it): later
//     accept()s fail with EBADF, queued connections are closed, and the
//     kernel's request is cancelled; accept()s parked in the multishot
//     request fail with EBADF (under epoll they stay parked on the fd until
//     it is closed with io::close, or their deadline or stop). The
//     listening fd stays open: the caller closes it. A connection the
//     kernel accepts before the cancel takes effect is closed.
//   * The stream must outlive the accept()s awaited on it.
class AcceptStream {
 public:
  explicit AcceptStream(int listening_fd);
  ~AcceptStream();
  AcceptStream(const AcceptStream&) = delete;
  AcceptStream& operator=(const AcceptStream&) = delete;

  // The next connection's fd (see the contract).
  [[nodiscard("co_await it: the operation does not start until it is awaited")]] FdAwaiter accept(
      const IoOptions& options = IoOptions());

  // Stops the stream (see the contract).
  void stop() noexcept;

  // How many results (accepted connections, or an error of the kernel's
  // request) wait for accept(): always 0 under epoll or with
  // multishot_accept off. For tests and monitoring.
  [[nodiscard]] std::size_t queued() const;

 private:
  const int fd_;
  goro::detail::MultishotSource* const source_;  // one reference, ours
  // Relaxed: only tells the first stop() and lets accept() fail early; the
  // source's own lock orders what stop() does against the ring.
  std::atomic<bool> stopped_{false};
};

// The bytes received on one connected socket, taken one read() at a time
// (goro::net::Conn reads through one).
//
// Under the io_uring backend with Config::multishot_receive, the stream
// keeps one multishot receive in the kernel for the socket, which fills
// buffers of the P's provided buffer ring (Config::receive_buffer_count
// buffers of Config::receive_buffer_size bytes, per P) as data arrives; an
// idle socket holds no buffer. read() copies what arrived into the
// caller's buffer and gives the buffers back. When the ring has no free
// buffer, the kernel's request ends (ENOBUFS) and the reader that waits
// receives straight into its own buffer once; the next read() asks again.
// At most Config::receive_queue_capacity buffers wait per socket: past
// that the request is cancelled and data waits in the socket until read.
// Under epoll, or with multishot_receive off, each read() is
// goro::io::recv on the socket.
//
// Contract:
//   * read() behaves as goro::io::recv(fd, buffer, length, 0, options):
//     it returns what has arrived (at least one byte), 0 at the end of the
//     stream, or the error; bytes are never lost, duplicated or reordered.
//     Concurrent reads on one stream each take a distinct part of the
//     stream (which part is unspecified, as with recv).
//   * stop() (any thread, idempotent; the destructor calls it): later
//     read()s fail with EBADF, queued bytes are dropped, and the kernel's
//     request is cancelled; read()s parked in it fail with EBADF (under
//     epoll see AcceptStream::stop). The fd stays open: the caller closes
//     it.
//   * The stream must outlive the read()s awaited on it.
class ReceiveStream {
 public:
  explicit ReceiveStream(int fd);
  ~ReceiveStream();
  ReceiveStream(const ReceiveStream&) = delete;
  ReceiveStream& operator=(const ReceiveStream&) = delete;

  // The next bytes (see the contract).
  [[nodiscard("co_await it: the operation does not start until it is awaited")]] SizeAwaiter read(
      void* buffer, std::size_t length, const IoOptions& options = IoOptions());

  // Whether read()s on the current runtime go through a multishot receive
  // (io_uring with Config::multishot_receive). When false (epoll, the
  // option off, or not called from a goroutine), a stream's read() is
  // exactly goro::io::recv(fd, buffer, length, 0, options), so a caller
  // may skip making the stream (its source is an allocation). The answer
  // is the same for the whole life of a runtime. A TLS load and a virtual
  // call: cheap enough to ask before every read.
  [[nodiscard]] static bool multishot_active() noexcept;

  // Stops the stream (see the contract).
  void stop() noexcept;

 private:
  const int fd_;
  goro::detail::MultishotSource* const source_;  // one reference, ours
  // Relaxed: as AcceptStream::stopped_.
  std::atomic<bool> stopped_{false};
};

}  // namespace goro::io

#endif  // GORO_IO_MULTISHOT_HPP_
