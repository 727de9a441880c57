// net/http/connection.hpp
//
// Defines: goro::http::internal::Connection, one HTTP/1.1 connection of a
// Server: its buffers, its parser, and the state machine that serves its
// requests in order, run by one goroutine.
//
// Glossary
//   read buffer   `input_`, `capacity_` bytes: [begin_, fed_) the current
//                 request's bytes given to the parser, [fed_, end_) bytes
//                 read but not parsed yet (the rest of a body, pipelined
//                 requests), [end_, capacity_) room for the next read.
//   head end      begin_ + the head's length: the head's bytes, which the
//                 Request's views point into, lie in [begin_, head end).
//   output buffer `output_` plus `static_pieces_`: the responses not yet
//                 written, in order. A static piece is a body the handler
//                 guaranteed to outlive the write (reply_static): it is not
//                 copied, only recorded with its position in `output_`,
//                 and the flush writes it in place with writev.
//   flush         one write (or writev) of the whole output buffer: first a
//                 try_write without a coroutine frame (flush_output_now),
//                 and a write that waits only for what the socket did not
//                 take at once.
//
// States (one request; serve() loops over them until the connection
// closes)
//   1. Head. Feed [fed_, end_) to the parser. Complete: go to 2. Needs
//      more: flush the output buffer (every response whose request came
//      before is ready), make room (move the request to the front, or
//      double the buffer up to max_header_bytes + 8 KiB), arm the read
//      deadline (idle, or read_header_timeout from the request's first
//      byte), read, repeat. A framing error: append the error response
//      and go to 5 with close.
//   2. Request. Make the Request's views from the parser's spans (moving
//      the request first if a body follows and less than 4 KiB of room
//      would remain after the head: the views must never move while the
//      handler runs). Reset the ResponseWriter.
//   3. Handler. Run it. Body reads (Request::read) feed [fed_, end_) to
//      the parser in pieces no longer than the caller's buffer, which
//      therefore always has room for the decoded bytes; when the buffer
//      is drained they move the unparsed tail next to the head end and
//      read more (flushing the output first). An exception: drop this
//      request's unflushed output and answer 500, or close if part of the
//      response had already been written. A hijack (ResponseWriter::
//      hijack) flushes the output, leaves the state's list (under its
//      mutex, so shutdown never touches the socket again) and its count,
//      and gives the Conn and [fed_, end_) to the handler; serve() then
//      ends when the handler returns, without 4 and 5.
//   4. Finish. Complete the response (head with Content-Length if still
//      unsent, or the last chunk). Drain the body the handler left unread
//      (bounded by max_body_bytes; with "Expect: 100-continue" never
//      acknowledged, close instead: the client has not sent it).
//   5. Next. begin_ = fed_: the next request's bytes are already in place.
//      After CONNECT the connection closes (the bytes after it are a
//      tunnel's, never a request); after an Upgrade nobody took, it goes
//      on as after any request.
//      A server shutting down closes here (and its responses say
//      "Connection: close"); one waiting idle in 1 is closed by shutdown
//      itself (the handshake in server_state.hpp). On close: flush,
//      half-close (the client reads the answer and end of stream), and
//      after a refused request or with bytes still unparsed drain what
//      the client still sends for a short while (so that no reset
//      overtakes the answer), then close. Otherwise back to 1; the output
//      is flushed in 1 only when the next head is not complete in the
//      buffer, so the answers to pipelined requests leave together.
//
// Invariants
//   1. Bytes in [begin_, head end) never move while a handler runs.
//   2. The output buffer holds only whole responses, plus the current
//      one's beginning; `response_start_` is where the current one begins
//      while none of it has been written out (so a failing handler's
//      partial answer can be replaced by 500).
//   3. After a framing error, a body error, a write error, a CONNECT, a
//      hijack or a response that asked for it, `close_after_` is set and no
//      further request is parsed.
//   4. Once hijacked, the connection never reads, writes or closes conn_
//      (moved out) and is in neither the state's list nor its count.
//
// Rejected alternatives
//   * A write per response: a pipelining client (and a benchmark at depth
//     16) would cost a system call per request; flushing before every
//     read that may block costs one per batch and never delays an answer
//     the client is waiting for.
//   * A separate goroutine writing responses: a second stack, a channel
//     per response, and ordering to rebuild, for no gain on HTTP/1.1,
//     whose responses are in request order anyway.
//   * A fixed 16 KiB buffer per connection: idle keep-alive connections
//     would hold it; the buffer starts at 4 KiB and grows only for a
//     large head or body.
//   * State 1 as a coroutine of its own: a connection spends most of its
//     life parked in that state's read, so its frame would be one more
//     allocation per request and more lines, cold after the other
//     connections' requests, to touch when the read completes; serve()
//     runs it in its own frame, with the steps as plain member functions.
//   * Every flush through Conn::write: the write's coroutine frames (the
//     flush's, the write loop's, the socket operation's), a shared_ptr
//     copy and a stop token per response, for a send that nearly always
//     completes at once; flush_output_now tries it without them first.
#ifndef GORO_NET_HTTP_CONNECTION_HPP_
#define GORO_NET_HTTP_CONNECTION_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "goro/clock.hpp"
#include "goro/http/request.hpp"
#include "goro/http/response_writer.hpp"
#include "goro/net/conn.hpp"
#include "goro/task.hpp"
#include "request_parser.hpp"
#include "server_state.hpp"

namespace goro::http::internal {

// Whether a response with `status` has a body (RFC 9110 6.4.1: not 1xx,
// 204 or 304).
[[nodiscard]] inline bool status_has_body(int status) noexcept {
  return status >= 200 && status != 204 && status != 304;
}

class Connection {
 public:
  // Registers with the state (server_state.hpp); the destructor unregisters.
  Connection(net::Conn conn, std::shared_ptr<ServerState> state);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // For Server::shutdown, under the state's mutex: closes the socket if
  // the connection waits for a next request (`only_idle`) or always. The
  // goroutine serving it wakes with closed_error and ends.
  void close_for_shutdown(bool only_idle);
  // The next registered connection (under the state's mutex).
  [[nodiscard]] Connection* next() const noexcept { return next_; }

  // Serves requests until the connection closes (states 1-5).
  Task<void> serve();

  // Request::read: decodes body bytes into `out` (state 3).
  Task<absl::StatusOr<std::size_t>> read_body(char* out, std::size_t capacity);

  // For ResponseWriter: the head (status line, Date, Content-Type, the
  // writer's lines, framing, Connection), body bytes copied or in place,
  // and a flush of the output buffer.
  void append_head(ResponseWriter& writer, std::optional<std::uint64_t> length,
                   std::string_view content_type);
  void append_body(std::string_view data) { output_.append(data); }
  void append_static(std::string_view data);
  Task<absl::Status> flush_output();
  // The flush without waiting, for where the socket takes the whole output
  // buffer at once (nearly always: a response is far smaller than a socket
  // buffer): one Conn::try_write, no coroutine frame. True when the buffer
  // went out or was empty; false when flush_output() must finish: static
  // pieces to write in place, bytes the socket did not take (it skips the
  // `output_sent_` that did), or an error (kept in write_error_, which
  // flush_output reports).
  [[nodiscard]] bool flush_output_now();
  [[nodiscard]] bool head_request() const noexcept { return parser_.is_head_method(); }
  // Whether a response with `status` carries a body: not 1xx, 204, 304,
  // nor a 2xx to CONNECT (its tunnel follows).
  [[nodiscard]] bool response_has_body(int status) const noexcept;

  // ResponseWriter::hijack: flushes, then gives the socket and the
  // unparsed bytes away; the connection leaves the state's list and count.
  Task<absl::StatusOr<HijackedConnection>> hijack();
  [[nodiscard]] bool hijacked() const noexcept { return hijacked_; }
  [[nodiscard]] std::size_t output_size() const noexcept { return output_.size(); }

 private:
  struct StaticPiece {
    std::size_t position;  // in output_
    std::string_view data;
  };

  // State 1, which serve() runs in its own frame with these steps:
  // parse what is buffered; before a read, note when the head began,
  // flush, make room, arm the deadline and (idle) take part in the
  // shutdown handshake; after it, account for the bytes. kStop: the
  // connection closes (a framing error answered, a failed flush or read,
  // end of stream, or shutdown while idle).
  enum class HeadProgress : std::uint8_t { kNeedsMore, kComplete, kStop };
  HeadProgress parse_buffered_head();
  // Whether a head has begun; reads its start time when needed.
  bool note_head_wait();
  // False when shutdown came while the connection was idle.
  bool prepare_head_read(bool started);
  // False when the read failed or met the end of stream.
  bool head_bytes_read(const absl::StatusOr<std::size_t>& n, bool started);
  void make_request();
  void reset_writer();
  void finish_response();
  Task<void> run_handler();
  Task<void> drain_body();
  Task<void> close_gracefully();
  // The answer to a refused request (`head`: a HEAD request, whose answer
  // has no body), which closes the connection.
  void append_error(int status, bool head);
  void unlink();  // under the state's mutex
  void make_room_for_head();
  // A head began with the bytes just read, or already buffered: its start
  // is the accept (first request) or not read yet (request_started_at_).
  void note_head_start() noexcept;
  // After a flush: the output buffer is empty; a failure is kept.
  void output_flushed(const absl::Status& status);
  void make_room_for_body();
  void arm_read_deadline(Clock::time_point deadline);
  [[nodiscard]] Clock::time_point deadline_after(std::chrono::nanoseconds timeout,
                                                 Clock::time_point from) const noexcept;

  net::Conn conn_;
  std::shared_ptr<ServerState> state_;
  const ServerOptions& options_;
  RequestParser parser_;
  Request request_;
  ResponseWriter writer_;

  std::unique_ptr<char[]> input_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t fed_ = 0;
  std::size_t end_ = 0;
  std::size_t head_end_ = 0;

  std::string output_;
  absl::InlinedVector<StaticPiece, 4> static_pieces_;
  std::size_t response_start_ = 0;
  bool response_flushed_ = false;  // part of the current response left
  std::size_t output_sent_ = 0;    // the front of output_ that flush_output_now sent

  absl::Status write_error_;
  ParseError body_error_ = ParseError::kNone;
  bool close_after_ = false;
  bool continue_sent_ = false;
  bool first_request_ = true;
  bool hijacked_ = false;  // the handler took the socket (set under the state's mutex)
  Clock::time_point accepted_at_;
  // When the current request's head began, for read_header_timeout: the
  // accept for the first request; for a later one, kNotRead until the head
  // turns out to need another read, when the clock is read (right after
  // its first bytes were parsed, before anything waits), so that a head
  // that arrives whole costs no clock read. Reset to the request's start
  // when read_timeout is set (make_request).
  static constexpr Clock::time_point kNotRead = Clock::time_point::min();
  Clock::time_point request_started_at_ = kNotRead;
  Clock::time_point read_deadline_ = Clock::time_point::max();

  // Waiting for the first byte of a next request (the shutdown handshake,
  // server_state.hpp): sequentially consistent, as the handshake needs.
  std::atomic<bool> idle_{false};
  // The state's list of connections, under its mutex.
  Connection* previous_ = nullptr;
  Connection* next_ = nullptr;
};

}  // namespace goro::http::internal

#endif  // GORO_NET_HTTP_CONNECTION_HPP_
