// goro/http/response_writer.hpp
//
// Defines: goro::http::ResponseWriter, how a handler answers a request,
// and goro::http::status_text.
//
//   response.reply(200, "text/plain", "Hello, World!");      // copies the body
//   response.reply_static(200, "text/plain", kPage);         // no copy: static storage
//   response.reply_json(200, R"({"message":"Hello, World!"})");
//
//   response.add_header("Cache-Control", "no-store");        // streaming:
//   if (!(co_await response.write(part1)).ok()) co_return;   // chunked unless
//   if (!(co_await response.write(part2)).ok()) co_return;   // Content-Length was set
//
// Contract:
//   * Responses are appended to the connection's output buffer, which the
//     server writes out in one writev when it has nothing else to do: when
//     it would otherwise wait for the client (pipelined requests answered
//     together), when the buffer grows past 64 KiB, or at flush().
//   * One response per request. reply*() make the whole response at once
//     (status, headers, body) and need a response not yet started; a
//     second reply, or one after write(), is ignored (the first stands).
//   * write() sends the head at its first flush: with Content-Length when
//     the handler set one (add_header), chunked otherwise (on HTTP/1.0:
//     the body runs to the connection's close). A handler that returns
//     with the head unsent gets Content-Length set to what it wrote; one
//     that wrote nothing answers 200 with an empty body.
//   * A Content-Length set with add_header is kept to: a write() that
//     would pass it fails with kOutOfRange and sends none of its bytes; a
//     body that ends short of it ends the connection after the response
//     (the head says "Connection: close" when it is still unsent).
//   * HEAD: the head says what a GET would (Content-Length of the body
//     given), and no body bytes go out. Nor do they for 204 and 304, whose
//     responses have no body: write() accepts the bytes and drops them.
//   * Only final responses are sent: a status outside 200-999 (a 1xx,
//     which is interim, or no valid code at all) is answered as 500.
//   * Date is added to every response; Content-Length, Transfer-Encoding
//     and Connection are the server's: add_header records what they ask
//     ("Connection: close" closes the connection after the response, a
//     Content-Length is the length write() must send) and adds no line.
//     A name that is not a token is dropped, CR and LF in a value become
//     spaces (no header injection).
//   * CONNECT: a 2xx answer has no body, no framing headers (RFC 9110
//     9.3.6) and no "Connection: close"; whatever follows is the tunnel's.
//     Unless the handler takes the connection over (hijack), it closes
//     after the response: the bytes the client sends after a CONNECT are
//     never read as HTTP.
//   * hijack() hands the connection to the handler (Go's Hijacker), for a
//     tunnel after CONNECT or another protocol after Upgrade. An Upgrade
//     request whose handler does not hijack is an ordinary request: the
//     header is ignored and the connection serves on.
//   * Not thread-safe: the handler's goroutine alone uses it.
#ifndef GORO_HTTP_RESPONSE_WRITER_HPP_
#define GORO_HTTP_RESPONSE_WRITER_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/net/conn.hpp"
#include "goro/task.hpp"

namespace goro::http {

namespace internal {
class Connection;
}  // namespace internal

// The reason phrase of a status code ("OK", "Not Found"); "Unknown" for
// codes it does not know.
[[nodiscard]] std::string_view status_text(int status) noexcept;

// What ResponseWriter::hijack hands over: the client's connection and
// the bytes already read from it that the server had not parsed.
struct HijackedConnection {
  net::Conn conn;
  std::string buffered;
};

class ResponseWriter {
 public:
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  // Adds a header line to the response (before it starts; ignored after).
  void add_header(std::string_view name, std::string_view value);

  // The status write() sends (200 unless set; 500 if outside 200-999);
  // before the response starts.
  void set_status(int status) noexcept {
    if (!started_) status_ = status;
  }

  // The whole response: `status`, Content-Type `content_type` (none when
  // empty), the headers added so far, and `body`, copied.
  void reply(int status, std::string_view content_type, std::string_view body);
  // As reply, but `body` is not copied: it must stay valid until the
  // response is written, which static storage (a literal) guarantees.
  // (A body under 1 KiB is copied all the same: cheaper than the iovec.)
  void reply_static(int status, std::string_view content_type, std::string_view body);
  // reply with Content-Type application/json; `json` is sent as given.
  void reply_json(int status, std::string_view json) { reply(status, "application/json", json); }

  // Appends body bytes (see the contract above): buffered, and written out
  // when the buffer passes 16 KiB (the head going first) or at flush().
  // Fails with the connection's error once writing has failed, with
  // kFailedPrecondition after a reply, and with kOutOfRange past a
  // declared Content-Length.
  [[nodiscard("co_await it: the write happens then")]] Task<absl::Status> write(
      std::string_view data);
  // Sends the head (if not sent) and every byte written so far.
  [[nodiscard("co_await it: the flush happens then")]] Task<absl::Status> flush();

  // Takes the connection over. First writes out what the server holds for
  // it: the answers to earlier pipelined requests and, if this response
  // has started (a reply, a flush), what was made of it; a response not
  // started is never sent (a handler switching protocols writes its own
  // "101 Switching Protocols" on the connection). Then the Conn is the
  // caller's, with no deadline set, and `buffered` holds the bytes the
  // client sent after this request's head that the server read but did
  // not parse (the tunnel's first bytes; the body's, if unread). From
  // then on the server does nothing more with the connection: no response
  // is completed for the request, Request::read and write() fail, reply()
  // is ignored, it no longer counts in Server::open_connections(), and
  // Server::shutdown neither closes it nor waits for it (as Go). The
  // Request's views stay valid until the handler returns. Fails with
  // kFailedPrecondition on a second call, or with the write's error (the
  // server then closes the connection as usual).
  [[nodiscard("co_await it: the takeover happens then")]] Task<absl::StatusOr<HijackedConnection>>
  hijack();

  // Whether the head has been made (by a reply or a flush): headers and
  // status can no longer change.
  [[nodiscard]] bool started() const noexcept { return started_; }

 private:
  friend class internal::Connection;
  explicit ResponseWriter(internal::Connection* connection) noexcept : connection_(connection) {}
  void reply_with(int status, std::string_view content_type, std::string_view body, bool copy);
  // Appends body bytes after the head: a chunk when chunked.
  void append_body_part(std::string_view data);

  internal::Connection* connection_;
  int status_ = 200;
  bool started_ = false;          // the head is in the output buffer
  bool chunked_ = false;          // the body goes in chunks
  bool until_close_ = false;      // HTTP/1.0, no length: the body ends at close
  bool replied_ = false;          // a reply*() made the whole response
  bool close_requested_ = false;  // "Connection: close" from the handler
  std::optional<std::uint64_t> declared_length_;
  std::uint64_t body_bytes_ = 0;  // body bytes accepted so far
  std::string header_lines_;      // "Name: value\r\n" lines, reused across requests
  std::string pending_body_;      // body written before the head went out
};

}  // namespace goro::http

#endif  // GORO_HTTP_RESPONSE_WRITER_HPP_
