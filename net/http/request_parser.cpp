// net/http/request_parser.cpp: RequestParser (the design is in
// request_parser.hpp).
#include "request_parser.hpp"

#include <cstring>

namespace goro::http::internal {

namespace {

RequestParser& self(llhttp_t* parser) { return *static_cast<RequestParser*>(parser->data); }

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Whether `host` uses only the bytes of an RFC 3986 authority (userinfo,
// host, port): unreserved, '%', sub-delims, ':', '@', '[' and ']'. Go
// refuses a Host with any other byte; so does goro.
bool is_authority(std::string_view host) noexcept {
  for (const char c : host) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
    if (std::string_view("-._~%!$&'()*+,;=:@[]").find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool contains_ignore_case(std::string_view text, std::string_view word) noexcept {
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (equals_ignore_case(text.substr(i, word.size()), word)) return true;
  }
  return false;
}

int status_for(ParseError error) noexcept {
  switch (error) {
    case ParseError::kBadRequest:
      return 400;
    case ParseError::kHeaderTooLarge:
      return 431;
    case ParseError::kBodyTooLarge:
      return 413;
    case ParseError::kVersionUnsupported:
      return 505;
    case ParseError::kNotImplemented:
      return 501;
    case ParseError::kExpectationFailed:
      return 417;
    case ParseError::kNone:
    case ParseError::kHttp2Preface:
      break;
  }
  return 0;
}

const llhttp_settings_t RequestParser::kSettings = [] {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_url = &RequestParser::on_url;
  settings.on_url_complete = &RequestParser::on_url_complete;
  settings.on_header_field = &RequestParser::on_header_field;
  settings.on_header_field_complete = &RequestParser::on_header_field_complete;
  settings.on_header_value = &RequestParser::on_header_value;
  settings.on_header_value_complete = &RequestParser::on_header_value_complete;
  settings.on_headers_complete = &RequestParser::on_headers_complete;
  settings.on_body = &RequestParser::on_body;
  settings.on_message_complete = &RequestParser::on_message_complete;
  return settings;
}();

RequestParser::RequestParser(Limits limits) noexcept : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
  parser_.data = this;
}

void RequestParser::begin_request() noexcept {
  // After an Upgrade request llhttp waits to hand the connection over
  // (HPE_PAUSED_UPGRADE at the next byte); the server served it as a plain
  // request, so the next one starts afresh.
  if (upgrade_) llhttp_reset(&parser_);
  upgrade_ = false;
  target_ = {};
  headers_.clear();
  declared_length_ = 0;
  body_bytes_ = 0;
  head_bytes_ = 0;
  in_body_ = url_open_ = field_open_ = value_open_ = false;
  too_many_headers_ = expects_continue_ = message_complete_ = false;
  chunked_ = has_content_length_ = keep_alive_ = false;
}

RequestParser::HeadState RequestParser::fail(ParseError error) noexcept {
  if (error_ == ParseError::kNone) error_ = error;
  return HeadState::kError;
}

RequestParser::HeadResult RequestParser::parse_head(char* base, char* data,
                                                    std::size_t length) noexcept {
  if (error_ != ParseError::kNone) return {HeadState::kError, 0};
  base_ = base;
  const llhttp_errno_t result = llhttp_execute(&parser_, data, length);
  base_ = nullptr;
  switch (result) {
    case HPE_OK:
      head_bytes_ += length;
      if (head_bytes_ > limits_.max_header_bytes) return {fail(ParseError::kHeaderTooLarge), 0};
      return {HeadState::kNeedMore, length};
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE: {
      const auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
      llhttp_resume(&parser_);
      head_bytes_ += consumed;
      if (head_bytes_ > limits_.max_header_bytes) return {fail(ParseError::kHeaderTooLarge), 0};
      return {HeadState::kComplete, consumed};
    }
    case HPE_PAUSED_H2_UPGRADE:
      return {fail(ParseError::kHttp2Preface), 0};
    default:
      break;
  }
  reason_ = llhttp_get_error_reason(&parser_);
  // Bytes beyond the limit that llhttp refused are still too many.
  if (head_bytes_ + length > limits_.max_header_bytes) {
    return {fail(ParseError::kHeaderTooLarge), 0};
  }
  if (result == HPE_INVALID_VERSION) {
    // llhttp knows 0.9, 1.0, 1.1 and 2.0. RFC 9110 2.5: a newer minor
    // version of a major one implemented is served as the highest minor
    // implemented; so "HTTP/1.2" is read as "HTTP/1.1", as in Go. llhttp
    // reports the error just past the minor digit; it and the bytes before
    // it are this request's, fed from `base`.
    char* minor = const_cast<char*>(llhttp_get_error_pos(&parser_)) - 1;
    if (parser_.http_major == 1 && minor >= base && *minor >= '2' && *minor <= '9') {
      *minor = '1';
      const std::size_t before = static_cast<std::size_t>(data - base);
      llhttp_reset(&parser_);
      begin_request();
      reason_ = nullptr;
      const HeadResult again = parse_head(base, base, before + length);
      if (again.state == HeadState::kError) return again;
      return {again.state, again.consumed - before};
    }
    return {
        fail(parser_.http_major == 1 ? ParseError::kBadRequest : ParseError::kVersionUnsupported),
        0};
  }
  // Go's answer to a transfer coding it does not implement: llhttp
  // refuses a request's Transfer-Encoding whose codings are not one
  // final "chunked".
  if (result == HPE_INVALID_TRANSFER_ENCODING) return {fail(ParseError::kNotImplemented), 0};
  return {fail(ParseError::kBadRequest), 0};
}

RequestParser::BodyResult RequestParser::parse_body(const char* data, std::size_t length,
                                                    char* out) noexcept {
  if (error_ != ParseError::kNone) return {0, 0, false, true};
  if (message_complete_) return {0, 0, true, false};
  body_out_ = out;
  body_produced_ = 0;
  const llhttp_errno_t result = llhttp_execute(&parser_, data, length);
  body_out_ = nullptr;
  switch (result) {
    case HPE_OK:
      return {length, body_produced_, false, false};
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE: {
      const auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
      llhttp_resume(&parser_);
      return {consumed, body_produced_, message_complete_, false};
    }
    default:
      reason_ = llhttp_get_error_reason(&parser_);
      if (error_ == ParseError::kNone) error_ = ParseError::kBadRequest;
      return {0, body_produced_, false, true};
  }
}

std::string_view RequestParser::method() const noexcept {
  return llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
}

const char* RequestParser::error_reason() const noexcept {
  if (reason_ != nullptr) return reason_;
  switch (error_) {
    case ParseError::kNone:
      return "no error";
    case ParseError::kBadRequest:
      return "bad request";
    case ParseError::kHeaderTooLarge:
      return "request head too large";
    case ParseError::kBodyTooLarge:
      return "request body too large";
    case ParseError::kVersionUnsupported:
      return "HTTP version not supported";
    case ParseError::kHttp2Preface:
      return "HTTP/2 preface on an HTTP/1.1 connection";
    case ParseError::kNotImplemented:
      return "transfer coding not implemented";
    case ParseError::kExpectationFailed:
      return "expectation not supported";
  }
  return "";
}

int RequestParser::on_url(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (!p.url_open_) {
    p.target_.offset = static_cast<std::uint32_t>(at - p.base_);
    p.url_open_ = true;
  }
  p.target_.length += static_cast<std::uint32_t>(length);
  return 0;
}

int RequestParser::on_url_complete(llhttp_t* parser) {
  self(parser).url_open_ = false;
  return 0;
}

int RequestParser::on_header_field(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.in_body_) return 0;  // a chunked body's trailer: not kept
  if (!p.field_open_) {
    if (p.headers_.size() >= p.limits_.max_headers) {
      p.reason_ = "too many header fields";
      p.error_ = ParseError::kHeaderTooLarge;
      return -1;
    }
    p.headers_.push_back({{static_cast<std::uint32_t>(at - p.base_), 0}, {}});
    p.field_open_ = true;
  }
  p.headers_.back().name.length += static_cast<std::uint32_t>(length);
  return 0;
}

int RequestParser::on_header_field_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  if (p.in_body_) return 0;
  if (!p.field_open_ || p.headers_.back().name.length == 0) return p.refuse_empty_name();
  p.field_open_ = false;
  return 0;
}

int RequestParser::on_header_value(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.in_body_) return 0;
  Span& value = p.headers_.back().value;
  if (!p.value_open_) {
    value.offset = static_cast<std::uint32_t>(at - p.base_);
    p.value_open_ = true;
  }
  value.length += static_cast<std::uint32_t>(length);
  return 0;
}

int RequestParser::on_header_value_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  if (p.in_body_) return 0;
  p.value_open_ = false;
  // llhttp drops the whitespace before a value but keeps the whitespace
  // after it (RFC 9110 5.5: neither belongs to the value).
  Span& value = p.headers_.back().value;
  if (p.base_ != nullptr) {
    // llhttp 8.1 accepts obs-fold even in strict mode, leaving the CRLF in
    // the value; RFC 9112 5.2 lets a server refuse it, and goro does.
    if (std::memchr(p.base_ + value.offset, '\n', value.length) != nullptr) {
      p.reason_ = "obs-fold in a header value";
      p.error_ = ParseError::kBadRequest;
      return -1;
    }
    while (value.length > 0 && (p.base_[value.offset + value.length - 1] == ' ' ||
                                p.base_[value.offset + value.length - 1] == '\t')) {
      --value.length;
    }
  }
  return 0;
}

int RequestParser::refuse_empty_name() noexcept {
  // llhttp takes ": value" for a field with an empty name; a field name
  // is a token, a byte at least.
  reason_ = "empty header field name";
  error_ = ParseError::kBadRequest;
  return -1;
}

int RequestParser::on_headers_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  if (p.check_head() != 0) return -1;
  p.in_body_ = true;
  // Step 2: pause before a body, so the handler streams it; a request
  // without one runs on to on_message_complete, which pauses.
  return p.chunked_ || (p.has_content_length_ && p.declared_length_ > 0) ? HPE_PAUSED : 0;
}

int RequestParser::check_head() noexcept {
  const std::uint16_t flags = parser_.flags;
  chunked_ = (flags & F_CHUNKED) != 0;
  has_content_length_ = (flags & F_CONTENT_LENGTH) != 0;
  declared_length_ = has_content_length_ ? parser_.content_length : 0;
  upgrade_ = parser_.upgrade != 0;
  // RFC 9112 6.1: Transfer-Encoding on HTTP/1.0 is faulty framing; the
  // connection closes after the request.
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0 && parser_.method != HTTP_CONNECT &&
                !((flags & F_TRANSFER_ENCODING) != 0 && parser_.http_minor == 0);
  if (parser_.method == HTTP_PRI) {
    error_ = ParseError::kHttp2Preface;
    return -1;
  }
  if (!request_line_is_strict()) {
    reason_ = "malformed request line";
    error_ = ParseError::kBadRequest;
    return -1;
  }
  if (parser_.http_major != 1) {
    error_ = ParseError::kVersionUnsupported;
    return -1;
  }
  if ((flags & F_TRANSFER_ENCODING) != 0 && has_content_length_) {
    reason_ = "Content-Length with Transfer-Encoding";
    error_ = ParseError::kBadRequest;
    return -1;
  }
  const char* base = base_;
  int hosts = 0;
  int transfer_encodings = 0;
  bool unknown_expectation = false;
  for (const HeaderSpan& header : headers_) {
    const std::string_view name = header.name.view(base);
    if (equals_ignore_case(name, "host")) {
      ++hosts;
      if (!is_authority(header.value.view(base))) {
        reason_ = "malformed Host header";
        error_ = ParseError::kBadRequest;
        return -1;
      }
    } else if (equals_ignore_case(name, "transfer-encoding")) {
      // Go's rule: one field, exactly "chunked" (llhttp refuses most other
      // values itself, and takes "gzip, chunked" as chunked).
      if (++transfer_encodings > 1 || !equals_ignore_case(header.value.view(base), "chunked")) {
        reason_ = "transfer coding not implemented";
        error_ = ParseError::kNotImplemented;
        return -1;
      }
    } else if (equals_ignore_case(name, "expect")) {
      const bool continue_100 = equals_ignore_case(header.value.view(base), "100-continue");
      expects_continue_ = continue_100 && parser_.http_minor >= 1;
      unknown_expectation = !continue_100;
    }
  }
  if (hosts > 1 || (hosts == 0 && parser_.http_minor == 1)) {
    reason_ = hosts > 1 ? "more than one Host header" : "HTTP/1.1 request without Host";
    error_ = ParseError::kBadRequest;
    return -1;
  }
  if (unknown_expectation) {
    error_ = ParseError::kExpectationFailed;
    return -1;
  }
  if (declared_length_ > limits_.max_body_bytes) {
    error_ = ParseError::kBodyTooLarge;
    return -1;
  }
  return 0;
}

bool RequestParser::request_line_is_strict() const noexcept {
  // RFC 9112 3: method SP request-target SP HTTP-version. llhttp accepts
  // several spaces around the target and a line with no version at all
  // (HTTP/0.9); Go refuses both, and so does goro: exactly one space on
  // each side, and a version after it.
  const char* target = base_ + target_.offset;
  if (target_.offset < 2 || target[-1] != ' ' || target[-2] == ' ') return false;
  const char* after = target + target_.length;
  return after[0] == ' ' && after[1] == 'H';
}

int RequestParser::on_body(llhttp_t* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  p.body_bytes_ += length;
  if (p.body_bytes_ > p.limits_.max_body_bytes) {
    p.error_ = ParseError::kBodyTooLarge;
    return -1;
  }
  std::memcpy(p.body_out_ + p.body_produced_, at, length);
  p.body_produced_ += length;
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* parser) {
  RequestParser& p = self(parser);
  p.message_complete_ = true;
  p.in_body_ = false;
  return HPE_PAUSED;
}

}  // namespace goro::http::internal
