// net/http/request_parser.hpp
//
// Defines: goro::http::internal::RequestParser, the server's request
// parser: llhttp (Node.js's parser, compiled in strict mode with no lenient
// flag) driven so that a request's head is parsed in place, without
// copying, and its body is decoded straight into the handler's buffer.
//
// Glossary
//   head       the request line and the header block, up to the blank line.
//   request base  where the request's first byte lies in the connection's
//              read buffer. The connection may move the request's bytes
//              (compacting or growing its buffer) between two feeds; the
//              parser never keeps pointers, only offsets from the base.
//   span       an (offset, length) pair from the request base: the target,
//              each header name and value.
//
// Invariants
//   1. Every span lies inside the head, and the head's bytes stay in the
//      buffer, at a base the caller passes, until begin_request starts the
//      next request. So spans turn into string_views of the buffer at any
//      time (Request holds them while the handler runs).
//   2. llhttp reports a span in pieces when it was fed in pieces. The bytes
//      of a head are fed in order and never dropped, so the pieces of one
//      span are contiguous: a piece extends the open span of its kind
//      until llhttp calls that span's *_complete callback.
//   3. The parser stops (llhttp's pause) at exactly two points: after the
//      head of a request that has a body (on_headers_complete), and at the
//      end of every request (on_message_complete). It never parses a byte
//      of the next request while the current one is being served, so the
//      next request's bytes stay unread in the buffer (pipelining).
//   4. Body bytes decoded by one parse_body call never outnumber the bytes
//      fed to it (chunk framing only removes bytes), so a caller that feeds
//      at most `capacity` bytes has room for every decoded byte.
//
// Algorithm (one request)
//   1. begin_request clears the spans. parse_head feeds the bytes after
//      those already fed; llhttp calls on_url / on_header_field /
//      on_header_value with pieces, merged into spans (invariant 2).
//   2. on_headers_complete checks what llhttp leaves to its user: a Host header
//      on HTTP/1.1 and at most one Host (RFC 9112 3.2), made of a URI
//      authority's bytes (RFC 3986 3.2), the request line's shape (one space on
//      each side of the target, a version after it), the HTTP version (1.x;
//      PRI, the HTTP/2 preface, closes silently; another major version is 505),
//      Transfer-Encoding together with Content-Length (400), a
//      Transfer-Encoding other than one field "chunked" (501, as Go), an Expect
//      other than 100-continue (417, as Go), Content-Length against
//      max_body_bytes (413 before reading any of it). Then it pauses when a
//      body follows; otherwise parsing runs on to on_message_complete, which
//      pauses. An Upgrade or CONNECT request ends at its head (its body, if
//      any, first); llhttp then waits to hand the connection over, so the next
//      begin_request resets it: an Upgrade the handler did not take is a plain
//      request.
//   3. parse_body feeds body bytes; on_body copies decoded bytes to the
//      caller's output and counts them against max_body_bytes (chunked
//      bodies are checked as they arrive, before anything is buffered).
//   4. A head longer than max_header_bytes (request line included) is
//      kHeaderTooLarge (431) whether it is complete or not: the caller
//      checks head_bytes after every feed that needs more.
//   5. llhttp refuses a version other than 0.9, 1.0, 1.1 and 2.0. For
//      1.2 to 1.9 parse_head rewrites the minor digit to 1 in the buffer
//      and parses the head again from the request base (RFC 9110 2.5:
//      a newer minor version is served as the highest one implemented).
//   Any error is final: llhttp keeps failing until reset, and the server
//   closes the connection after answering (never reuses it).
//
// What llhttp rejects itself in strict mode (tests/http_parser_test.cpp
// checks each): Content-Length with Transfer-Encoding: chunked, duplicate
// or malformed Content-Length, invalid chunk sizes, obs-fold, a bare CR or
// LF where CRLF belongs, whitespace before a header's colon, invalid
// header name or value bytes, a Transfer-Encoding whose last coding is
// not chunked on a request, a method it does not know (lowercase names
// included), line endings other than CRLF in the header block. It accepts
// obs-fold (a value continued on a line starting with whitespace), which
// on_header_value_complete refuses, and a field with an empty name, which
// on_header_field_complete refuses.
//
// Rejected alternatives
//   * Copying each header into a std::string (or a map) as it arrives: an
//     allocation per header per request, where the buffer already holds
//     the bytes.
//   * Storing pointers in the spans: the connection compacts and grows
//     its buffer while a head is incomplete, which would leave them
//     dangling; offsets from the base survive the move.
//   * Reparsing the whole head after every read: a client trickling bytes
//     (slowloris) would cost the server quadratic work.
#ifndef GORO_NET_HTTP_REQUEST_PARSER_HPP_
#define GORO_NET_HTTP_REQUEST_PARSER_HPP_

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/container/inlined_vector.h"

namespace goro::http::internal {

// An (offset, length) pair from the request base.
struct Span {
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  [[nodiscard]] std::string_view view(const char* base) const noexcept {
    return {base + offset, length};
  }
};

struct HeaderSpan {
  Span name;
  Span value;
};

// Why a request was refused; the status the server answers with.
enum class ParseError : std::uint8_t {
  kNone = 0,
  kBadRequest,          // 400: malformed or ambiguous framing
  kHeaderTooLarge,      // 431
  kBodyTooLarge,        // 413
  kVersionUnsupported,  // 505
  kHttp2Preface,        // no answer: the connection closes
  kNotImplemented,      // 501: a transfer coding other than chunked
  kExpectationFailed,   // 417: an expectation other than 100-continue
};

// ASCII case-insensitive equality (header names, tokens).
[[nodiscard]] bool equals_ignore_case(std::string_view a, std::string_view b) noexcept;
// Whether `text` contains `word`, ASCII case-insensitively.
[[nodiscard]] bool contains_ignore_case(std::string_view text, std::string_view word) noexcept;

// The status code for a ParseError (0 for kNone and kHttp2Preface).
[[nodiscard]] int status_for(ParseError error) noexcept;

class RequestParser {
 public:
  struct Limits {
    std::size_t max_header_bytes = 8192;
    std::uint64_t max_body_bytes = 1 << 20;
    std::size_t max_headers = 100;
  };

  explicit RequestParser(Limits limits) noexcept;
  RequestParser(const RequestParser&) = delete;  // llhttp holds a pointer to it
  RequestParser& operator=(const RequestParser&) = delete;

  enum class HeadState : std::uint8_t { kNeedMore, kComplete, kError };
  struct HeadResult {
    HeadState state;
    std::size_t consumed;  // bytes of the input that belong to the head
  };
  struct BodyResult {
    std::size_t consumed;  // input bytes used (framing included)
    std::size_t produced;  // decoded body bytes written to the output
    bool complete;         // the request's body ended
    bool error;            // error() says which
  };

  // Step 1: forget the previous request's spans.
  void begin_request() noexcept;

  // Feeds `length` bytes at `data`, the head bytes after those fed so far;
  // `base` is where this request's first byte lies now. On kComplete the
  // head ends `consumed` bytes into the input; when the request has no
  // body, the request is complete too (message_complete()). The one byte
  // it may write: an HTTP/1.x minor version llhttp refuses (1.2 to 1.9)
  // becomes '1' in place, and the head is parsed again from `base`.
  [[nodiscard]] HeadResult parse_head(char* base, char* data, std::size_t length) noexcept;

  // Feeds body bytes; decoded bytes go to `out`, which has room for at
  // least `length` bytes (invariant 4).
  [[nodiscard]] BodyResult parse_body(const char* data, std::size_t length, char* out) noexcept;

  // The request, valid after parse_head's kComplete until begin_request.
  [[nodiscard]] std::string_view method() const noexcept;
  [[nodiscard]] bool is_head_method() const noexcept { return parser_.method == HTTP_HEAD; }
  [[nodiscard]] Span target() const noexcept { return target_; }
  [[nodiscard]] int version_minor() const noexcept { return parser_.http_minor; }
  [[nodiscard]] const absl::InlinedVector<HeaderSpan, 16>& headers() const noexcept {
    return headers_;
  }
  [[nodiscard]] bool chunked() const noexcept { return chunked_; }
  [[nodiscard]] bool has_content_length() const noexcept { return has_content_length_; }
  // The declared Content-Length (valid when has_content_length()).
  [[nodiscard]] std::uint64_t declared_length() const noexcept { return declared_length_; }
  // Whether the connection may serve another request after this one
  // (HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive
  // and no Transfer-Encoding; never after CONNECT, whose following bytes
  // are a tunnel's). An Upgrade request is served as any other: the
  // parser goes on with the next request after it.
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
  // "Expect: 100-continue" on HTTP/1.1 (an HTTP/1.0 client gets no 1xx).
  [[nodiscard]] bool expects_continue() const noexcept { return expects_continue_; }
  // Whether the request was CONNECT.
  [[nodiscard]] bool is_connect_method() const noexcept { return parser_.method == HTTP_CONNECT; }
  [[nodiscard]] bool message_complete() const noexcept { return message_complete_; }
  [[nodiscard]] std::size_t head_bytes() const noexcept { return head_bytes_; }
  [[nodiscard]] std::uint64_t body_bytes() const noexcept { return body_bytes_; }

  [[nodiscard]] ParseError error() const noexcept { return error_; }
  // llhttp's or the parser's reason for the error, for logs.
  [[nodiscard]] const char* error_reason() const noexcept;

 private:
  static int on_url(llhttp_t* parser, const char* at, std::size_t length);
  static int on_url_complete(llhttp_t* parser);
  static int on_header_field(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field_complete(llhttp_t* parser);
  static int on_header_value(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* parser);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* parser);
  static const llhttp_settings_t kSettings;

  int check_head() noexcept;  // step 2; 0 or -1 with error_ set
  [[nodiscard]] bool request_line_is_strict() const noexcept;
  int refuse_empty_name() noexcept;
  HeadState fail(ParseError error) noexcept;

  llhttp_t parser_;
  Limits limits_;
  char* base_ = nullptr;      // the request base during a parse_head call
  char* body_out_ = nullptr;  // the output during a parse_body call
  std::size_t body_produced_ = 0;
  Span target_;
  absl::InlinedVector<HeaderSpan, 16> headers_;
  std::uint64_t declared_length_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::size_t head_bytes_ = 0;
  bool in_body_ = false;
  bool url_open_ = false;
  bool field_open_ = false;
  bool value_open_ = false;
  bool too_many_headers_ = false;
  bool expects_continue_ = false;
  // Read from llhttp's flags at the end of the head: llhttp clears its
  // flags once the request ends, before the server has answered it.
  bool chunked_ = false;
  bool has_content_length_ = false;
  bool keep_alive_ = false;
  bool message_complete_ = false;
  bool upgrade_ = false;  // llhttp waits to hand the connection over: reset it
  ParseError error_ = ParseError::kNone;
  const char* reason_ = nullptr;
};

}  // namespace goro::http::internal

#endif  // GORO_NET_HTTP_REQUEST_PARSER_HPP_
