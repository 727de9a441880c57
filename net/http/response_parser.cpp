// net/http/response_parser.cpp: the client's response parser, llhttp in
// HTTP_RESPONSE mode. The design (invariants, steps, rejected
// alternatives) is in response_parser.hpp.
#include "response_parser.hpp"

#include <cstring>
#include <string>
#include <utility>

namespace goro::http::internal {

namespace {

ResponseParser& self(llhttp_t* parser) { return *static_cast<ResponseParser*>(parser->data); }

// What a header field costs against max_header_bytes besides its bytes:
// the HeaderField it occupies, so that a flood of one-byte fields is
// bounded by the memory it takes, not by its length on the wire.
constexpr std::size_t kFieldCost = sizeof(HeaderField);

// Informational responses other than 101 precede the final response
// (RFC 9110 15.2) and are skipped.
bool is_interim(int status_code) noexcept {
  return status_code >= 100 && status_code < 200 && status_code != 101;
}

}  // namespace

const llhttp_settings_t ResponseParser::kSettings = [] {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = &ResponseParser::on_message_begin;
  settings.on_status = &ResponseParser::on_status;
  settings.on_header_field = &ResponseParser::on_header_field;
  settings.on_header_field_complete = &ResponseParser::on_header_field_complete;
  settings.on_header_value = &ResponseParser::on_header_value;
  settings.on_header_value_complete = &ResponseParser::on_header_value_complete;
  settings.on_headers_complete = &ResponseParser::on_headers_complete;
  settings.on_body = &ResponseParser::on_body;
  settings.on_message_complete = &ResponseParser::on_message_complete;
  return settings;
}();

ResponseParser::ResponseParser(Limits limits, Response* response, bool head_request) noexcept
    : limits_(limits), response_(response), head_request_(head_request) {
  llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
  parser_.data = this;
}

ResponseParser::Result ResponseParser::feed(const char* data, std::size_t length) noexcept {
  if (!error_.ok()) return {State::kError, 0};
  feed_begin_ = data;
  feed_end_ = data + length;
  const llhttp_errno_t code = llhttp_execute(&parser_, data, length);
  return result_of(code, data);
}

ResponseParser::Result ResponseParser::finish() noexcept {
  if (!error_.ok()) return {State::kError, 0};
  const llhttp_errno_t code = llhttp_finish(&parser_);
  if ((code == HPE_OK || code == HPE_PAUSED) && message_complete_) return {State::kComplete, 0};
  if (error_.ok()) {
    std::string message = "unexpected EOF";
    if (code != HPE_OK) message += std::string(": ") + llhttp_get_error_reason(&parser_);
    error_ = absl::OutOfRangeError(std::move(message));
  }
  return {State::kError, 0};
}

// `data`: where the feed's bytes begin.
ResponseParser::Result ResponseParser::result_of(llhttp_errno_t code, const char* data) noexcept {
  switch (code) {
    case HPE_OK:
      return {State::kNeedMore, 0};
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE:
      if (message_complete_) {
        // The response used the bytes up to where llhttp paused.
        return {State::kComplete, static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data)};
      }
      break;
    default:
      break;
  }
  if (error_.ok()) {
    error_ = absl::DataLossError(std::string("malformed HTTP response: ") +
                                 llhttp_get_error_reason(&parser_));
  }
  return {State::kError, 0};
}

int ResponseParser::fail(absl::Status status) noexcept {
  error_ = std::move(status);
  return -1;
}

bool ResponseParser::charge_head(std::size_t bytes) noexcept {
  head_bytes_ += bytes;
  return head_bytes_ <= limits_.max_header_bytes;
}

int ResponseParser::on_message_begin(llhttp_t* parser) {
  // Invariant 2: a final response after a 100 Continue starts afresh.
  ResponseParser& p = self(parser);
  *p.response_ = Response{};
  p.head_bytes_ = 0;
  p.field_open_ = false;
  p.value_open_ = false;
  p.in_body_ = false;
  return 0;
}

int ResponseParser::on_status(llhttp_t* parser, const char* at, std::size_t length) {
  ResponseParser& p = self(parser);
  if (!p.charge_head(length)) {
    return p.fail(absl::ResourceExhaustedError("HTTP response head over max_header_bytes"));
  }
  p.response_->reason.append(at, length);
  return 0;
}

int ResponseParser::on_header_field(llhttp_t* parser, const char* at, std::size_t length) {
  ResponseParser& p = self(parser);
  if (p.in_body_) return 0;  // a chunked body's trailer: not kept
  if (!p.charge_head(length + (p.field_open_ ? 0 : kFieldCost))) {
    return p.fail(absl::ResourceExhaustedError("HTTP response head over max_header_bytes"));
  }
  if (!p.field_open_) {
    p.response_->headers.emplace_back();
    p.field_open_ = true;
  }
  p.response_->headers.back().name.append(at, length);
  return 0;
}

int ResponseParser::on_header_field_complete(llhttp_t* parser) {
  self(parser).field_open_ = false;
  return 0;
}

int ResponseParser::on_header_value(llhttp_t* parser, const char* at, std::size_t length) {
  ResponseParser& p = self(parser);
  if (p.in_body_) return 0;
  if (!p.charge_head(length)) {
    return p.fail(absl::ResourceExhaustedError("HTTP response head over max_header_bytes"));
  }
  // llhttp 8.1 accepts obs-fold (a value continued on a line that starts
  // with whitespace) even in strict mode, and reports the continuation as
  // one more piece of the value. A value split by a feed boundary also
  // arrives in two pieces, but then the first ends at its feed's end and
  // the second starts at the next feed's start; any other second piece is
  // a fold. RFC 9112 5.2 lets a client refuse obs-fold, and goro does, as
  // its server does.
  if (p.value_open_ && !(p.value_reached_feed_end_ && at == p.feed_begin_)) {
    return p.fail(absl::DataLossError("malformed HTTP response: obs-fold in a header value"));
  }
  p.value_open_ = true;
  p.value_reached_feed_end_ = at + length == p.feed_end_;
  p.response_->headers.back().value.append(at, length);
  return 0;
}

int ResponseParser::on_header_value_complete(llhttp_t* parser) {
  ResponseParser& p = self(parser);
  if (p.in_body_) return 0;
  p.value_open_ = false;
  std::string& value = p.response_->headers.back().value;
  // llhttp drops the whitespace before a value, not the whitespace after.
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  return 0;
}

int ResponseParser::on_headers_complete(llhttp_t* parser) {
  // Step 1's checks, on what llhttp leaves to its user.
  ResponseParser& p = self(parser);
  p.in_body_ = true;
  p.response_->status_code = parser->status_code;
  p.response_->version_minor = parser->http_minor;
  if (parser->http_major != 1) {
    return p.fail(absl::DataLossError("malformed HTTP response: HTTP version not 1.x"));
  }
  const std::uint16_t flags = parser->flags;
  if ((flags & F_TRANSFER_ENCODING) != 0 && (flags & F_CONTENT_LENGTH) != 0) {
    return p.fail(
        absl::DataLossError("malformed HTTP response: Content-Length with Transfer-Encoding"));
  }
  // 1: llhttp takes the response as bodiless whatever its framing headers
  // say. A HEAD's Content-Length describes the GET's body, and a 304's
  // the full response's (RFC 9110 8.6); 1xx and 204 have none either
  // (llhttp honours their Content-Length otherwise).
  const int status_code = parser->status_code;
  const bool bodiless = p.head_request_ || (status_code >= 100 && status_code < 200) ||
                        status_code == 204 || status_code == 304;
  return bodiless ? 1 : 0;
}

int ResponseParser::on_body(llhttp_t* parser, const char* at, std::size_t length) {
  ResponseParser& p = self(parser);
  std::string& body = p.response_->body;
  if (body.size() + length > p.limits_.max_body_bytes) {
    return p.fail(absl::ResourceExhaustedError("HTTP response body over max_response_bytes"));
  }
  body.append(at, length);
  return 0;
}

int ResponseParser::on_message_complete(llhttp_t* parser) {
  ResponseParser& p = self(parser);
  if (is_interim(p.response_->status_code)) return 0;  // invariant 2: parse on
  p.message_complete_ = true;
  // llhttp's flags hold until this callback returns (it clears them
  // after), and by now they say whether the body was skipped (HEAD),
  // which decides whether the close delimited it.
  p.keep_alive_ = llhttp_should_keep_alive(parser) != 0 && parser->status_code != 101;
  return HPE_PAUSED;
}

}  // namespace goro::http::internal
