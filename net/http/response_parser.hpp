// net/http/response_parser.hpp
//
// Defines: goro::http::internal::ResponseParser, the client's response
// parser: llhttp in HTTP_RESPONSE mode (compiled in strict mode, as for
// requests), filling a Response as bytes arrive.
//
// Unlike the server's request parser, which keeps the head in its read
// buffer and hands out views, this one copies: the Response outlives the
// connection's buffer (the caller keeps it after the connection went back
// to the pool), so its reason, header fields and body are its own strings.
//
// Invariants
//   1. Pieces of one field arrive in order (llhttp calls on_header_field
//      / on_header_value once per piece it saw in a feed), so a piece
//      extends the last field until that field's *_complete callback. A
//      value's pieces are contiguous on the wire unless the value was
//      folded (obs-fold), which is refused: a second piece that does not
//      start a feed right after a first piece that ended one is a fold.
//   2. The parser stops (llhttp's pause) only at the end of a final
//      response (status not 1xx, or 101). Interim 1xx responses are
//      parsed and dropped: on_message_begin clears the Response, so the
//      final response's fields never mix with a 100 Continue's.
//   3. The bytes kept for the head (reason, names, values, plus a fixed
//      cost per field) never exceed max_header_bytes, and the body never
//      exceeds max_body_bytes: each callback checks before it appends, so
//      a hostile server cannot make the client allocate past the limits.
//
// Algorithm
//   1. feed() runs llhttp over the bytes read; the callbacks append to
//      the Response. on_headers_complete records the status and version,
//      refuses what llhttp leaves to its user (Content-Length with
//      Transfer-Encoding, a version other than 1.x), and tells llhttp to
//      skip the body of a response to HEAD and of 1xx, 204 and 304.
//   2. on_message_complete decides keep-alive and pauses llhttp at the
//      end of a final response: feed() says kComplete and how many bytes
//      the response used.
//   3. At end of stream the caller calls finish(): a body delimited by the
//      close ends there (kComplete); a response cut short is an error.
//   Any error is final; the caller closes the connection.
//
// Rejected alternatives
//   * Reusing RequestParser with a mode flag: its offsets into a buffer
//     that must hold the whole head, its pause before the body and its
//     server-side checks (Host, 100-continue, 413) are all wrong for a
//     response read whole into strings.
//   * Parsing the status line and headers by hand and only the body with
//     llhttp: llhttp's strictness about the head (bare CR, whitespace
//     before the colon, bad bytes) is what the client wants too.
#ifndef GORO_NET_HTTP_RESPONSE_PARSER_HPP_
#define GORO_NET_HTTP_RESPONSE_PARSER_HPP_

#include <llhttp.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "goro/http/client.hpp"

namespace goro::http::internal {

class ResponseParser {
 public:
  struct Limits {
    std::size_t max_header_bytes;
    std::uint64_t max_body_bytes;
  };

  // Fills `*response`; `head_request`: the request was HEAD, so the
  // response has no body whatever its headers say.
  ResponseParser(Limits limits, Response* response, bool head_request) noexcept;
  ResponseParser(const ResponseParser&) = delete;  // llhttp holds a pointer to it
  ResponseParser& operator=(const ResponseParser&) = delete;

  enum class State : std::uint8_t { kNeedMore, kComplete, kError };
  struct Result {
    State state;
    std::size_t consumed;  // on kComplete: the bytes the response used
  };

  // Step 1: parses `length` more bytes of the response.
  [[nodiscard]] Result feed(const char* data, std::size_t length) noexcept;
  // Step 3: the connection reached end of stream.
  [[nodiscard]] Result finish() noexcept;

  // Whether the connection may carry another request (valid on
  // kComplete): HTTP/1.1 without "Connection: close" (or 1.0 with
  // keep-alive), a body not delimited by the close, no 101.
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
  // Why the parse failed (valid on kError): kDataLoss for malformed
  // framing, kResourceExhausted past a limit, kOutOfRange for a response
  // cut short by the end of stream.
  [[nodiscard]] const absl::Status& error() const noexcept { return error_; }

 private:
  static int on_message_begin(llhttp_t* parser);
  static int on_status(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field_complete(llhttp_t* parser);
  static int on_header_value(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* parser);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* parser);
  static const llhttp_settings_t kSettings;

  int fail(absl::Status status) noexcept;  // records it; -1 for llhttp
  bool charge_head(std::size_t bytes) noexcept;
  Result result_of(llhttp_errno_t code, const char* data) noexcept;

  llhttp_t parser_;
  Limits limits_;
  Response* response_;
  bool head_request_;
  std::size_t head_bytes_ = 0;
  const char* feed_begin_ = nullptr;  // the bytes of the feed() running
  const char* feed_end_ = nullptr;
  bool field_open_ = false;
  bool value_open_ = false;
  bool value_reached_feed_end_ = false;  // the open value's last piece ended its feed
  bool in_body_ = false;                 // past the head: llhttp's header callbacks are trailers
  bool keep_alive_ = false;
  bool message_complete_ = false;
  absl::Status error_;
};

}  // namespace goro::http::internal

#endif  // GORO_NET_HTTP_RESPONSE_PARSER_HPP_
