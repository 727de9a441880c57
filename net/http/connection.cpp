// net/http/connection.cpp: Connection, the per-connection state machine
// (the design is in connection.hpp).
#include "connection.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <utility>

#include "goro/net/error.hpp"

namespace goro::http::internal {

namespace {

constexpr std::size_t kInitialCapacity = 4096;
// Room a body read needs after the head (state 2).
constexpr std::size_t kBodyRoom = 4096;
// The output buffer is flushed once it holds this much, whatever else.
constexpr std::size_t kFlushThreshold = 64 * 1024;
// What a closing connection still reads from its client (state 5), and
// for how long, so that the client sees the answer and not a reset.
constexpr std::size_t kLingerBytes = 64 * 1024;
constexpr auto kLingerTime = std::chrono::milliseconds(500);
// reply_static bodies shorter than this are copied after all; at most
// this many are carried in place per flush.
constexpr std::size_t kCopyBelow = 1024;
constexpr std::size_t kMaxStaticPieces = 15;

// "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", made once per second per
// thread (RFC 9110 6.6.1 asks for the time the response was generated;
// a second's resolution is what the format has).
std::string_view date_line() {
  struct Cache {
    std::time_t second = -1;
    char text[64];
    std::size_t length = 0;
  };
  thread_local Cache cache;
  timespec now;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cache.second) {
    std::tm parts;
    ::gmtime_r(&now.tv_sec, &parts);
    cache.length =
        std::strftime(cache.text, sizeof cache.text, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &parts);
    cache.second = now.tv_sec;
  }
  return {cache.text, cache.length};
}

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, result.ptr);
}

// The status a response goes out with: the writer sends final responses
// only, so a code outside 200-999 (1xx are interim; no code has four
// digits) is the handler's mistake, answered as 500.
int final_status(int status) { return status >= 200 && status <= 999 ? status : 500; }

}  // namespace

Connection::Connection(net::Conn conn, std::shared_ptr<ServerState> state)
    : conn_(std::move(conn)),
      state_(std::move(state)),
      options_(state_->options),
      parser_(RequestParser::Limits{.max_header_bytes = options_.max_header_bytes,
                                    .max_body_bytes = options_.max_body_bytes}),
      request_(this),
      writer_(this) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  next_ = state_->connections;
  if (next_ != nullptr) next_->previous_ = this;
  state_->connections = this;
}

Connection::~Connection() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (!hijacked_) unlink();
}

void Connection::unlink() {
  if (previous_ != nullptr) {
    previous_->next_ = next_;
  } else {
    state_->connections = next_;
  }
  if (next_ != nullptr) next_->previous_ = previous_;
  previous_ = next_ = nullptr;
}

bool Connection::response_has_body(int status) const noexcept {
  return status_has_body(status) && !(parser_.is_connect_method() && status / 100 == 2);
}

Task<absl::StatusOr<HijackedConnection>> Connection::hijack() {
  if (hijacked_) co_return absl::FailedPreconditionError("http: connection already hijacked");
  if (absl::Status status = co_await flush_output(); !status.ok()) co_return status;
  {
    // Off the list under the mutex: shutdown no longer reaches conn_.
    std::lock_guard<std::mutex> lock(state_->mutex);
    unlink();
    hijacked_ = true;
  }
  // Relaxed: a count (server_state.hpp); serve_connection skips its own
  // decrement for a hijacked connection.
  state_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  HijackedConnection taken{std::move(conn_), std::string(input_.get() + fed_, end_ - fed_)};
  fed_ = end_;
  taken.conn.set_deadline(Clock::time_point::max());
  close_after_ = true;
  writer_.started_ = writer_.replied_ = true;
  co_return taken;
}

void Connection::close_for_shutdown(bool only_idle) {
  // Sequentially consistent: step s2 of the handshake (server_state.hpp).
  if (!only_idle || idle_.load()) (void)conn_.close();
}

Clock::time_point Connection::deadline_after(std::chrono::nanoseconds timeout,
                                             Clock::time_point from) const noexcept {
  if (timeout.count() <= 0) return Clock::time_point::max();
  return from + std::chrono::duration_cast<Clock::duration>(timeout);
}

void Connection::arm_read_deadline(Clock::time_point deadline) {
  if (deadline == read_deadline_) return;
  read_deadline_ = deadline;
  conn_.set_read_deadline(deadline);
}

Task<void> Connection::serve() {
  const bool timed = options_.read_header_timeout.count() > 0 ||
                     options_.idle_timeout.count() > 0 || options_.read_timeout.count() > 0;
  if (timed) accepted_at_ = Clock::now();
  input_.reset(new char[kInitialCapacity]);
  capacity_ = kInitialCapacity;
  for (;;) {
    // State 1, in this frame (connection.hpp, "Rejected alternatives").
    parser_.begin_request();
    // Pipelined bytes: the head began before this request; when, is read
    // only if it needs a read (note_head_start).
    if (end_ > begin_) note_head_start();
    HeadProgress progress = parse_buffered_head();
    while (progress == HeadProgress::kNeedsMore) {
      const bool started = note_head_wait();
      // Everything answered so far goes out before the wait.
      if ((!flush_output_now() && !(co_await flush_output()).ok()) || !prepare_head_read(started)) {
        progress = HeadProgress::kStop;
        break;
      }
      auto n = co_await conn_.read(input_.get() + end_, capacity_ - end_);
      progress = head_bytes_read(n, started) ? parse_buffered_head() : HeadProgress::kStop;
    }
    if (progress == HeadProgress::kStop) break;
    // State 2.
    make_request();
    // Sequentially consistent, as every access to the flag (server_state.hpp).
    close_after_ = !parser_.keep_alive() || state_->shutting_down.load();
    reset_writer();
    // State 3.
    co_await run_handler();
    if (hijacked_) co_return;  // the socket is the handler's
    // State 4.
    finish_response();
    if (!close_after_ && !parser_.message_complete()) co_await drain_body();
    // State 5.
    first_request_ = false;
    begin_ = fed_;
    if (begin_ == end_) begin_ = fed_ = end_ = 0;
    if (close_after_ || state_->shutting_down.load()) break;
    if (output_.size() >= kFlushThreshold && !flush_output_now() &&
        !(co_await flush_output()).ok()) {
      break;
    }
  }
  co_await close_gracefully();
}

Connection::HeadProgress Connection::parse_buffered_head() {
  if (fed_ < end_) {
    const auto result = parser_.parse_head(input_.get() + begin_, input_.get() + fed_, end_ - fed_);
    fed_ += result.consumed;
    if (result.state == RequestParser::HeadState::kComplete) {
      head_end_ = fed_;
      return HeadProgress::kComplete;
    }
    if (result.state == RequestParser::HeadState::kError) {
      close_after_ = true;
      append_error(status_for(parser_.error()), /*head=*/false);
      return HeadProgress::kStop;
    }
  }
  return HeadProgress::kNeedsMore;
}

bool Connection::note_head_wait() {
  // A head begun: its start is now, if not known yet (read before the
  // flush, which may wait).
  const bool started = end_ > begin_;
  if (started && request_started_at_ == kNotRead && options_.read_header_timeout.count() > 0) {
    request_started_at_ = Clock::now();
  }
  return started;
}

bool Connection::prepare_head_read(bool started) {
  if (end_ == capacity_) make_room_for_head();
  if (started) {
    arm_read_deadline(deadline_after(options_.read_header_timeout, request_started_at_));
  } else if (first_request_) {
    arm_read_deadline(deadline_after(options_.read_header_timeout, accepted_at_));
  } else {
    const auto idle =
        options_.idle_timeout.count() > 0 ? options_.idle_timeout : options_.read_header_timeout;
    if (idle.count() > 0) {
      arm_read_deadline(deadline_after(idle, Clock::now()));
    } else {
      arm_read_deadline(Clock::time_point::max());
    }
  }
  if (!started) {
    // Steps c1-c2 of the shutdown handshake (server_state.hpp).
    idle_.store(true);
    if (state_->shutting_down.load()) {
      close_after_ = true;
      return false;
    }
  }
  return true;
}

bool Connection::head_bytes_read(const absl::StatusOr<std::size_t>& n, bool started) {
  idle_.store(false);
  if (!n.ok() || *n == 0) {
    close_after_ = true;
    return false;
  }
  end_ += *n;
  if (!started) note_head_start();
  return true;
}

void Connection::note_head_start() noexcept {
  request_started_at_ = first_request_ ? accepted_at_ : kNotRead;
}

void Connection::make_room_for_head() {
  if (begin_ > 0) {
    std::memmove(input_.get(), input_.get() + begin_, end_ - begin_);
    fed_ -= begin_;
    end_ -= begin_;
    begin_ = 0;
    return;
  }
  // The head is under max_header_bytes (the parser fails it otherwise), so
  // doubling up to that plus the body room always makes room.
  const std::size_t grown = std::min(capacity_ * 2, options_.max_header_bytes + kBodyRoom * 2);
  auto bigger = std::unique_ptr<char[]>(new char[grown]);
  std::memcpy(bigger.get(), input_.get(), end_);
  input_ = std::move(bigger);
  capacity_ = grown;
}

void Connection::make_request() {
  if (!parser_.message_complete() && capacity_ - head_end_ < kBodyRoom) {
    // State 2: move (and grow) before any view is made (invariant 1).
    const std::size_t length = end_ - begin_;
    const std::size_t needed = (head_end_ - begin_) + kBodyRoom;
    if (needed > capacity_) {
      auto bigger = std::unique_ptr<char[]>(new char[needed]);
      std::memcpy(bigger.get(), input_.get() + begin_, length);
      input_ = std::move(bigger);
      capacity_ = needed;
    } else {
      std::memmove(input_.get(), input_.get() + begin_, length);
    }
    head_end_ -= begin_;
    fed_ -= begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  const char* base = input_.get() + begin_;
  Request& r = request_;
  r.method_ = parser_.method();
  r.target_ = parser_.target().view(base);
  std::string_view origin = r.target_;
  if (!origin.empty() && origin.front() != '/' && origin != "*" && !parser_.is_connect_method()) {
    // Absolute form, "http://host/path?query" (RFC 9112 3.2.2): the path
    // and query are what follows the authority ("/" when none does).
    const std::size_t scheme = origin.find("://");
    const std::size_t slash =
        scheme == std::string_view::npos ? std::string_view::npos : origin.find('/', scheme + 3);
    origin = slash == std::string_view::npos ? std::string_view("/") : origin.substr(slash);
  }
  const std::size_t question = origin.find('?');
  if (question == std::string_view::npos) {
    r.path_ = origin;
    r.query_ = {};
  } else {
    r.path_ = origin.substr(0, question);
    r.query_ = origin.substr(question + 1);
  }
  r.version_minor_ = parser_.version_minor();
  r.chunked_ = parser_.chunked();
  r.content_length_.reset();
  if (parser_.has_content_length()) r.content_length_ = parser_.declared_length();
  r.headers_.clear();
  for (const HeaderSpan& header : parser_.headers()) {
    r.headers_.push_back({header.name.view(base), header.value.view(base)});
  }
  r.params_.clear();
  body_error_ = ParseError::kNone;
  continue_sent_ = false;
  if (options_.read_timeout.count() > 0) request_started_at_ = Clock::now();
}

void Connection::reset_writer() {
  ResponseWriter& w = writer_;
  w.status_ = 200;
  w.started_ = w.chunked_ = w.until_close_ = w.replied_ = w.close_requested_ = false;
  w.declared_length_.reset();
  w.body_bytes_ = 0;
  w.header_lines_.clear();
  w.pending_body_.clear();
  response_start_ = output_.size();
  response_flushed_ = false;
}

Task<void> Connection::run_handler() {
  bool failed = false;
  try {
    co_await state_->handler(request_, writer_);
  } catch (...) {
    failed = true;
  }
  if (failed) {
    if (hijacked_) co_return;
    if (response_flushed_) {
      close_after_ = true;  // part of the response left: it cannot be taken back
      co_return;
    }
    output_.resize(response_start_);
    while (!static_pieces_.empty() && static_pieces_.back().position > response_start_) {
      static_pieces_.pop_back();
    }
    reset_writer();
    writer_.reply(500, "text/plain; charset=utf-8", "500 Internal Server Error");
  }
}

void Connection::finish_response() {
  ResponseWriter& w = writer_;
  if (body_error_ != ParseError::kNone) close_after_ = true;
  if (!w.started_) {
    if (body_error_ != ParseError::kNone) {
      // The handler gave up on a body the parser refused: say why (with
      // no body for HEAD, as any answer to it).
      append_error(status_for(body_error_), head_request());
      return;
    }
    const bool head = head_request();
    w.status_ = final_status(w.status_);
    std::optional<std::uint64_t> length = w.declared_length_;
    if (!length) length = head ? w.body_bytes_ : w.pending_body_.size();
    if (!head && response_has_body(w.status_) && *length != w.pending_body_.size()) {
      close_after_ = true;  // a body short of its declared length: end it by closing
    }
    append_head(w, length, {});
    if (!head && response_has_body(w.status_)) output_.append(w.pending_body_);
    w.pending_body_.clear();
    return;
  }
  if (w.chunked_) output_.append("0\r\n\r\n");
  if (w.declared_length_ && *w.declared_length_ != w.body_bytes_ && !head_request() &&
      !w.replied_) {
    close_after_ = true;  // the body does not match its length: end the message by closing
  }
}

void Connection::append_head(ResponseWriter& w, std::optional<std::uint64_t> length,
                             std::string_view content_type) {
  // The writer's status becomes the one sent, so that it decides about
  // the body as the head does.
  w.status_ = final_status(w.status_);
  const int status = w.status_;
  output_.append("HTTP/1.1 ");
  append_number(output_, static_cast<std::uint64_t>(status));
  output_.push_back(' ');
  output_.append(status_text(status));
  output_.append("\r\n");
  output_.append(date_line());
  if (!content_type.empty()) {
    output_.append("Content-Type: ");
    output_.append(content_type);
    output_.append("\r\n");
  }
  output_.append(w.header_lines_);
  if (w.close_requested_ || state_->shutting_down.load()) close_after_ = true;
  if (!response_has_body(status)) {
    // No body and no framing (RFC 9110 8.6: not for 1xx, 204; 304 keeps
    // none here; RFC 9110 9.3.6: not for a 2xx to CONNECT).
  } else if (length) {
    output_.append("Content-Length: ");
    append_number(output_, *length);
    output_.append("\r\n");
  } else if (request_.version_minor_ >= 1) {
    output_.append("Transfer-Encoding: chunked\r\n");
    w.chunked_ = !head_request();
  } else {
    w.until_close_ = true;
    close_after_ = true;
  }
  if (close_after_ && !(parser_.is_connect_method() && status / 100 == 2)) {
    // (A tunnel's 2xx does not announce the close that ends it.)
    output_.append("Connection: close\r\n");
  } else if (request_.version_minor_ == 0) {
    output_.append("Connection: keep-alive\r\n");
  }
  output_.append("\r\n");
  w.started_ = true;
}

void Connection::append_static(std::string_view data) {
  // A small body is cheaper copied than carried as an iovec of its own,
  // and the pieces stay few enough for one writev's inline array (and far
  // below IOV_MAX) however deep the pipeline.
  if (data.size() < kCopyBelow || static_pieces_.size() >= kMaxStaticPieces) {
    output_.append(data);
    return;
  }
  static_pieces_.push_back({output_.size(), data});
}

void Connection::append_error(int status, bool head) {
  if (status == 0) return;  // an HTTP/2 preface: close without a word
  const std::string_view text = status_text(status);
  output_.append("HTTP/1.1 ");
  append_number(output_, static_cast<std::uint64_t>(status));
  output_.push_back(' ');
  output_.append(text);
  output_.append("\r\n");
  output_.append(date_line());
  output_.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(output_, text.size() + 4);
  output_.append("\r\nConnection: close\r\n\r\n");
  if (head) return;
  append_number(output_, static_cast<std::uint64_t>(status));
  output_.push_back(' ');
  output_.append(text);
}

bool Connection::flush_output_now() {
  if (hijacked_ || !write_error_.ok()) return false;
  if (output_.empty() && static_pieces_.empty()) return true;
  if (!static_pieces_.empty() || output_sent_ > 0) return false;
  if (options_.write_timeout.count() > 0) {
    conn_.set_write_deadline(deadline_after(options_.write_timeout, Clock::now()));
  }
  absl::StatusOr<std::size_t> sent = conn_.try_write(output_.data(), output_.size());
  if (sent.ok() && *sent < output_.size()) {
    output_sent_ = *sent;
    return false;
  }
  output_flushed(sent.status());
  return sent.ok();
}

void Connection::output_flushed(const absl::Status& status) {
  if (response_start_ < output_.size() || writer_.started_) response_flushed_ = true;
  output_.clear();
  static_pieces_.clear();
  response_start_ = 0;
  output_sent_ = 0;
  if (!status.ok()) {
    write_error_ = status;
    close_after_ = true;
  }
}

Task<absl::Status> Connection::flush_output() {
  if (hijacked_) co_return absl::FailedPreconditionError("http: connection hijacked");
  if (!write_error_.ok()) co_return write_error_;
  if (output_.empty() && static_pieces_.empty()) co_return absl::OkStatus();
  if (options_.write_timeout.count() > 0) {
    conn_.set_write_deadline(deadline_after(options_.write_timeout, Clock::now()));
  }
  absl::Status status;
  if (static_pieces_.empty()) {
    // output_sent_ > 0 only when static_pieces_ is empty (flush_output_now).
    status = co_await conn_.write(output_.data() + output_sent_, output_.size() - output_sent_);
  } else {
    absl::InlinedVector<iovec, 2 * kMaxStaticPieces + 1> parts;
    std::size_t position = 0;
    auto add = [&parts](const char* data, std::size_t length) {
      if (length > 0) parts.push_back({const_cast<char*>(data), length});
    };
    for (const StaticPiece& piece : static_pieces_) {
      add(output_.data() + position, piece.position - position);
      add(piece.data.data(), piece.data.size());
      position = piece.position;
    }
    add(output_.data() + position, output_.size() - position);
    status = co_await conn_.writev(parts);
  }
  output_flushed(status);
  co_return status;
}

Task<absl::StatusOr<std::size_t>> Connection::read_body(char* out, std::size_t capacity) {
  if (hijacked_) co_return absl::FailedPreconditionError("http: connection hijacked");
  if (body_error_ != ParseError::kNone) {
    co_return body_error_ == ParseError::kBodyTooLarge
        ? absl::ResourceExhaustedError("http: request body too large")
        : absl::InvalidArgumentError("http: malformed request body");
  }
  if (parser_.message_complete() || capacity == 0) co_return std::size_t{0};
  if (parser_.expects_continue() && !continue_sent_ && !writer_.started_) {
    continue_sent_ = true;
    output_.append("HTTP/1.1 100 Continue\r\n\r\n");
    response_start_ = output_.size();
    if (absl::Status status = co_await flush_output(); !status.ok()) co_return status;
    response_flushed_ = false;
  }
  for (;;) {
    if (fed_ < end_) {
      const std::size_t length = std::min(end_ - fed_, capacity);
      const auto result = parser_.parse_body(input_.get() + fed_, length, out);
      fed_ += result.consumed;
      if (result.error) {
        body_error_ = parser_.error();
        close_after_ = true;
        co_return body_error_ == ParseError::kBodyTooLarge
            ? absl::ResourceExhaustedError("http: request body too large")
            : absl::InvalidArgumentError(std::string("http: malformed request body: ") +
                                         parser_.error_reason());
      }
      if (result.produced > 0 || result.complete) co_return result.produced;
      continue;  // only chunk framing so far
    }
    make_room_for_body();
    if (!(co_await flush_output()).ok()) co_return write_error_;
    arm_read_deadline(deadline_after(options_.read_timeout, request_started_at_));
    auto n = co_await conn_.read(input_.get() + end_, capacity_ - end_);
    if (!n.ok()) {
      close_after_ = true;
      co_return n.status();
    }
    if (*n == 0) {
      close_after_ = true;
      co_return absl::OutOfRangeError("http: unexpected EOF in request body");
    }
    end_ += *n;
  }
}

void Connection::make_room_for_body() {
  // Everything past the head is parsed: the next read goes right after it.
  fed_ = end_ = head_end_;
}

Task<void> Connection::drain_body() {
  if (parser_.expects_continue() && !continue_sent_) {
    close_after_ = true;  // the client waits for 100 Continue: it has sent no body
    co_return;
  }
  char scratch[2048];
  for (;;) {
    auto n = co_await read_body(scratch, sizeof scratch);
    if (!n.ok()) {
      close_after_ = true;
      co_return;
    }
    if (*n == 0) co_return;
  }
}

Task<void> Connection::close_gracefully() {
  if (!flush_output_now() && !(co_await flush_output()).ok()) co_return;
  if (!conn_.close_write().ok()) co_return;
  // Closing with unread bytes would send a reset that can destroy the
  // answer before the client reads it. They are likely after a refused
  // request or with requests still unparsed: then read what the client
  // still sends, briefly. A clean close (Connection: close, shutdown)
  // does not wait.
  const bool refused = parser_.error() != ParseError::kNone || body_error_ != ParseError::kNone;
  if (!refused && fed_ == end_) co_return;
  conn_.set_read_deadline(Clock::now() + kLingerTime);
  std::size_t drained = 0;
  while (drained < kLingerBytes) {
    auto n = co_await conn_.read(input_.get(), capacity_);
    if (!n.ok() || *n == 0) break;
    drained += *n;
  }
}  // conn_'s destructor closes the socket

}  // namespace goro::http::internal
