// net/http/response_writer.cpp: ResponseWriter, on the connection's output
// buffer (connection.hpp).
#include "goro/http/response_writer.hpp"

#include <charconv>
#include <utility>

#include "connection.hpp"

namespace goro::http {

namespace {

// The body bytes write() keeps before the head goes out: a handler that
// writes less gets Content-Length, one that writes more goes chunked.
constexpr std::size_t kBufferedBody = 16 * 1024;
constexpr std::size_t kOutputFlush = 64 * 1024;

// RFC 9110 5.6.2's tchar.
bool is_token(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

std::string_view status_text(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void ResponseWriter::add_header(std::string_view name, std::string_view value) {
  if (started_ || !is_token(name)) return;
  if (internal::equals_ignore_case(name, "content-length")) {
    std::uint64_t length = 0;
    const auto result = std::from_chars(value.data(), value.data() + value.size(), length);
    if (result.ec == std::errc() && result.ptr == value.data() + value.size()) {
      declared_length_ = length;
    }
    return;
  }
  if (internal::equals_ignore_case(name, "connection")) {
    if (internal::contains_ignore_case(value, "close")) close_requested_ = true;
    return;
  }
  if (internal::equals_ignore_case(name, "transfer-encoding") ||
      internal::equals_ignore_case(name, "date")) {
    return;
  }
  header_lines_.append(name);
  header_lines_.append(": ");
  const std::size_t start = header_lines_.size();
  header_lines_.append(value);
  for (std::size_t i = start; i < header_lines_.size(); ++i) {
    if (header_lines_[i] == '\r' || header_lines_[i] == '\n') header_lines_[i] = ' ';
  }
  header_lines_.append("\r\n");
}

void ResponseWriter::reply(int status, std::string_view content_type, std::string_view body) {
  reply_with(status, content_type, body, /*copy=*/true);
}

void ResponseWriter::reply_static(int status, std::string_view content_type,
                                  std::string_view body) {
  reply_with(status, content_type, body, /*copy=*/false);
}

void ResponseWriter::reply_with(int status, std::string_view content_type, std::string_view body,
                                bool copy) {
  if (started_) return;
  status_ = status;
  connection_->append_head(*this, body.size(), content_type);
  if (!connection_->head_request() && connection_->response_has_body(status_)) {
    if (copy) {
      connection_->append_body(body);
    } else {
      connection_->append_static(body);
    }
  }
  replied_ = true;
  body_bytes_ = body.size();
}

void ResponseWriter::append_body_part(std::string_view data) {
  if (chunked_) {
    char digits[20];
    const auto result = std::to_chars(digits, digits + sizeof digits, data.size(), 16);
    connection_->append_body(std::string_view(digits, result.ptr - digits));
    connection_->append_body("\r\n");
    connection_->append_body(data);
    connection_->append_body("\r\n");
  } else {
    connection_->append_body(data);
  }
}

Task<absl::Status> ResponseWriter::write(std::string_view data) {
  if (replied_) co_return absl::FailedPreconditionError("http: write after reply");
  // body_bytes_ never passes the declared length, so the difference is exact.
  if (declared_length_ && data.size() > *declared_length_ - body_bytes_) {
    co_return absl::OutOfRangeError("http: write past the declared Content-Length");
  }
  body_bytes_ += data.size();
  if (connection_->head_request() || data.empty()) co_return absl::OkStatus();
  if (started_ && !connection_->response_has_body(status_)) co_return absl::OkStatus();
  if (!started_) {
    pending_body_.append(data);
    if (pending_body_.size() < kBufferedBody) co_return absl::OkStatus();
    co_return co_await flush();
  }
  append_body_part(data);
  if (connection_->output_size() < kOutputFlush || connection_->flush_output_now()) {
    co_return absl::OkStatus();
  }
  co_return co_await connection_->flush_output();
}

Task<absl::StatusOr<HijackedConnection>> ResponseWriter::hijack() {
  co_return co_await connection_->hijack();
}

Task<absl::Status> ResponseWriter::flush() {
  if (!started_) {
    connection_->append_head(*this, declared_length_, {});
    if (!pending_body_.empty() && !connection_->head_request() &&
        connection_->response_has_body(status_)) {
      append_body_part(pending_body_);
    }
    pending_body_.clear();
  }
  if (connection_->flush_output_now()) co_return absl::OkStatus();
  co_return co_await connection_->flush_output();
}

}  // namespace goro::http
