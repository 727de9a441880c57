// benchmarks/http_response_counter.hpp
//
// Defines: loadgen::HttpResponseCounter, which frames HTTP/1.1 responses in
// the byte stream of a connection that pipelines requests, and counts them
// (benchmarks/loadgen.cpp).
//
// Why not goro::http's client or llhttp: a load generator wants per
// response only its status code and where it ends, with nothing copied
// and nothing allocated per response; the client parses every header into
// strings and does not pipeline.
//
// Algorithm (a state machine over the bytes of each read):
//   1. Head: the bytes up to the blank line ("\r\n\r\n"), kept across
//      reads only when a read ends inside one (at most 64 KiB). The status
//      line must be "HTTP/1.x SSS"; Content-Length (digits only, equal if
//      repeated), Transfer-Encoding (chunked last, else an error) and
//      Connection are read, the other fields skipped. Both framings at
//      once is an error, as is 101 (no HTTP after it).
//   2. An interim 1xx response ends at its head and is not counted.
//      Responses to HEAD and 204 and 304 end at their head.
//   3. Content-Length bytes of body are skipped as they pass.
//   4. Chunked: a size line (hex, extensions after ';' ignored), the data,
//      its CRLF; a 0 size ends the chunks, then trailer lines up to a
//      blank one.
//   5. Neither framing: the body runs to the end of the connection;
//      finish() counts it.
// A stream that breaks these rules is an error (kDataLoss, or
// kResourceExhausted for an oversized head) and the counter is spent.
//
// Rejected: buffering whole responses (a body can be large; only heads
// and chunk-size lines need the bytes), and a lenient parse (a server
// that frames wrongly would be counted as fast).
#ifndef GORO_BENCHMARKS_HTTP_RESPONSE_COUNTER_HPP_
#define GORO_BENCHMARKS_HTTP_RESPONSE_COUNTER_HPP_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace loadgen {

// Text helpers on std::string_view (Debian's Abseil has its own string_view).
inline std::string_view strip_whitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
inline bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}
inline bool contains_ignore_case(std::string_view text, std::string_view word) {
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (equals_ignore_case(text.substr(i, word.size()), word)) return true;
  }
  return false;
}
inline bool ends_with_ignore_case(std::string_view text, std::string_view word) {
  return text.size() >= word.size() &&
         equals_ignore_case(text.substr(text.size() - word.size()), word);
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Digits in `base` (10 or 16) only, at most 15 of them (no overflow).
inline bool parse_unsigned(std::string_view text, int base, std::uint64_t* out) {
  if (text.empty() || text.size() > 15) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    int digit;
    if (is_digit(c)) {
      digit = c - '0';
    } else if (base == 16 && lower(c) >= 'a' && lower(c) <= 'f') {
      digit = lower(c) - 'a' + 10;
    } else {
      return false;
    }
    value = value * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
  }
  *out = value;
  return true;
}
// At most 80 bytes of `text` for a message, control bytes as '.'.
inline std::string printable(std::string_view text) {
  std::string out(text.substr(0, 80));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = '.';
  }
  return out;
}

// Counts the responses in a stream of bytes: feed() each read, finish() at
// the end of the stream. Keeps only what a head or a chunk-size line
// needs across reads; bodies are skipped as they pass.
class HttpResponseCounter {
 public:
  static constexpr std::size_t kMaxHead = 64 * 1024;

  explicit HttpResponseCounter(bool head_request) : head_request_(head_request) {}

  // Calls on_response(status_code) for each response completed by `input`.
  // An error says the stream cannot be framed; the counter is then spent.
  template <typename OnResponse>
  absl::Status feed(std::string_view input, OnResponse on_response) {
    std::size_t pos = 0;
    while (pos < input.size()) {
      std::string_view block;
      switch (state_) {
        case State::kHead: {
          if (!take_until("\r\n\r\n", input, pos, block)) break;
          absl::Status status = parse_head(block);
          if (!status.ok()) return status;
          if (state_ == State::kHead && status_ >= 200) on_response(status_);
          if (state_ == State::kBody && remaining_ == 0) {
            state_ = State::kHead;
            on_response(status_);
          }
          break;
        }
        case State::kBody:
        case State::kChunkData: {
          const std::uint64_t n = std::min<std::uint64_t>(remaining_, input.size() - pos);
          pos += n;
          remaining_ -= n;
          if (remaining_ != 0) break;
          if (state_ == State::kChunkData) {
            state_ = State::kChunkEnd;
          } else {
            state_ = State::kHead;
            on_response(status_);
          }
          break;
        }
        case State::kChunkEnd:
          if (!take_until("\r\n", input, pos, block)) break;
          if (block != "\r\n") return absl::DataLossError("chunk data longer than its size");
          state_ = State::kChunkSize;
          break;
        case State::kChunkSize: {
          if (!take_until("\r\n", input, pos, block)) break;
          std::string_view digits = block.substr(0, block.size() - 2);
          digits = digits.substr(0, std::min(digits.find(';'), digits.size()));  // extensions
          digits = strip_whitespace(digits);
          std::uint64_t size = 0;
          if (!parse_unsigned(digits, 16, &size)) {
            return absl::DataLossError("bad chunk size line \"" + printable(block) + "\"");
          }
          remaining_ = size;
          state_ = size == 0 ? State::kTrailer : State::kChunkData;
          break;
        }
        case State::kTrailer:
          if (!take_until("\r\n", input, pos, block)) break;
          if (block == "\r\n") {
            state_ = State::kHead;
            on_response(status_);
          }
          break;
        case State::kUntilClose:
          pos = input.size();
          break;
      }
      if (pending_.size() > kMaxHead)
        return absl::ResourceExhaustedError("response head over 64 KiB");
    }
    return absl::OkStatus();
  }

  // At the end of the stream: counts a body delimited by the close.
  template <typename OnResponse>
  void finish(OnResponse on_response) {
    if (state_ == State::kUntilClose) on_response(status_);
    state_ = State::kHead;
    pending_.clear();
  }

  // Whether the last response asked to close the connection.
  [[nodiscard]] bool close_requested() const { return close_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailer, kUntilClose };

  // Takes the bytes up to and including `terminator` into `block` (valid
  // until the next call), from what earlier reads left plus input[pos...];
  // without a terminator keeps the bytes for the next read.
  bool take_until(std::string_view terminator, std::string_view input, std::size_t& pos,
                  std::string_view& block) {
    if (pending_.empty()) {
      const std::size_t at = input.find(terminator, pos);
      if (at == std::string_view::npos) {
        pending_.assign(input.substr(pos));
        pos = input.size();
        return false;
      }
      block = input.substr(pos, at + terminator.size() - pos);
      pos = at + terminator.size();
      return true;
    }
    const std::size_t carried = pending_.size();
    pending_.append(input.substr(pos));
    const std::size_t from = carried >= terminator.size() ? carried - terminator.size() + 1 : 0;
    const std::size_t at = pending_.find(terminator, from);
    if (at == std::string::npos) {
      pos = input.size();
      return false;
    }
    const std::size_t length = at + terminator.size();
    pos += length - carried;
    pending_.resize(length);
    held_.swap(pending_);
    pending_.clear();
    block = held_;
    return true;
  }

  // The head ends with "\r\n\r\n". Sets status_, close_ and the framing.
  absl::Status parse_head(std::string_view head) {
    const std::size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    // "HTTP/1.x SSS[ reason]"
    if (line.size() < 12 || !line.starts_with("HTTP/1.") || !is_digit(line[7]) || line[8] != ' ' ||
        !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
        (line.size() > 12 && line[12] != ' ')) {
      return absl::DataLossError("bad status line \"" + printable(line) + "\"");
    }
    status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    close_ = line[7] == '0';  // HTTP/1.0 closes unless it says keep-alive
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    std::size_t pos = line_end + 2;
    while (pos + 2 < head.size()) {
      const std::size_t end = head.find("\r\n", pos);
      const std::string_view field = head.substr(pos, end - pos);
      pos = end + 2;
      const std::size_t colon = field.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return absl::DataLossError("bad header line \"" + printable(field) + "\"");
      }
      const std::string_view name = field.substr(0, colon);
      const std::string_view value = strip_whitespace(field.substr(colon + 1));
      if (equals_ignore_case(name, "content-length")) {
        std::uint64_t length = 0;
        if (!parse_unsigned(value, 10, &length) || (content_length && *content_length != length)) {
          return absl::DataLossError("bad Content-Length \"" + printable(value) + "\"");
        }
        content_length = length;
      } else if (equals_ignore_case(name, "transfer-encoding")) {
        chunked = ends_with_ignore_case(value, "chunked");
        if (!chunked) return absl::DataLossError("a transfer coding other than chunked");
      } else if (equals_ignore_case(name, "connection")) {
        if (contains_ignore_case(value, "close")) close_ = true;
        if (contains_ignore_case(value, "keep-alive")) close_ = false;
      }
    }
    if (chunked && content_length) return absl::DataLossError("both Content-Length and chunked");
    if (status_ < 200) {
      if (status_ == 101) return absl::DataLossError("101 Switching Protocols: no HTTP after it");
      state_ = State::kHead;  // an interim response: the real one follows
      return absl::OkStatus();
    }
    if (head_request_ || status_ == 204 || status_ == 304) {
      state_ = State::kHead;
    } else if (chunked) {
      state_ = State::kChunkSize;
    } else if (content_length) {
      state_ = State::kBody;
      remaining_ = *content_length;
    } else {
      state_ = State::kUntilClose;
      close_ = true;
    }
    return absl::OkStatus();
  }

  bool head_request_;
  State state_ = State::kHead;
  int status_ = 0;
  bool close_ = false;
  std::uint64_t remaining_ = 0;
  std::string pending_;
  std::string held_;
};

}  // namespace loadgen

#endif  // GORO_BENCHMARKS_HTTP_RESPONSE_COUNTER_HPP_
