// tests/fuzz/http_request_fuzzer.cpp: a libFuzzer target for goro::http's
// request path: bytes in, through the server's per-connection state
// machine, responses out.
//
// What it drives, and why
//   The input is what one client sends on one connection. It goes through
//   a socketpair into internal::Connection::serve (net/http/connection.hpp),
//   the same code every accepted connection of a Server runs: llhttp in
//   strict mode behind RequestParser, head framing and its limits, the
//   buffer's growth and compaction, pipelining, Expect: 100-continue,
//   Content-Length and chunked bodies decoded into the handler's buffer,
//   the handler, the ResponseWriter (Content-Length, chunked and
//   until-close responses, static bodies written in place, flushes, HEAD),
//   the 500 of a throwing handler, draining of unread bodies, and the
//   graceful close. Only the accept loop of Server is left out: it has no
//   input to fuzz. A socketpair rather than a buffer seam keeps the
//   Connection exactly as production builds it, bound to a net::Conn and
//   parked on the netpoller when it waits.
//
// One input (the algorithm)
//   1. Make a socketpair. Write the input to the client end (all of it at
//      once when it fits the socket's buffer, which makes the server's
//      reads, and so the run, the same every time) and shut down the
//      client's write side when all is written.
//   2. Start a goroutine that serves the other end with a Connection of
//      the one ServerState (its handler below, small body limits so that
//      413 is reachable, timeouts that are armed but never fire within an
//      input's time).
//   3. Read everything the server sends until end of stream, with a
//      bound: no progress for kHangLimit is reported as a hang (abort), as
//      is a connection goroutine that does not end once the output did.
//   4. Check the output (check_output): it is a sequence of whole HTTP/1.1
//      responses, each with a status line, a Date, and body framing that
//      adds up (Content-Length, chunked, or until close as the last one),
//      no 1xx but 100 Continue, no HEAD, 204 or 304 response with a
//      body, a 2xx to CONNECT without framing and with nothing after it
//      (nobody takes the tunnel over, so the connection closes), nothing
//      follows a response that says "Connection: close",
//      and there is one response per handler call plus at most one error
//      response that ends the connection.
//
// The runtime is started once (lazily, by the first input) on a thread of
// its own and kept for the process: a runtime per input would cost a
// thread start and a poller per run, most of the time of a small input.
// Its main goroutine waits on a channel that an atexit handler closes, so
// the process ends with the runtime stopped and its threads joined.
//
// The handler picks a behaviour by the path's first segment (the
// dictionary, tests/fuzz/http.dict, names them), so that the fuzzer can
// reach every way of answering: /static, /stream, /chunked, /length,
// /throw, /throw-late, /noread, /partial, /close, /status/NNN, /big; any
// other path echoes. Each reads the body (except /noread and /partial)
// with a buffer whose size comes from the query's length, then answers
// with the method, the target, the X-Echo header and the body's length;
// the streaming ones with the status an X-Status header asks for.
//
// Rejected alternatives
//   * A test seam feeding Connection from a buffer: a second code path in
//     production code for the fuzzer alone, and the wait on the socket
//     (where reads return short and the output is flushed) would go
//     unfuzzed.
//   * Driving Server over loopback TCP: each input would pay a connect and
//     an accept, and ports in TIME_WAIT pile up over millions of runs.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <goro/net.hpp>

#include "connection.hpp"
#include "server_state.hpp"

namespace {

using namespace std::chrono_literals;
using goro::http::Request;
using goro::http::ResponseWriter;

// How long one input may go without progress before it counts as a hang
// (below libFuzzer's -timeout, so that the report says what hung).
constexpr auto kHangLimit = 5s;

// What one input's handler calls saw, in order: whether each request was
// HEAD (its response has no body) and whether it was CONNECT (a 2xx to it
// opens a tunnel: no framing, and the connection ends after it). Written
// by the handler's goroutine, read by the fuzzer's thread after `done`
// (release/acquire).
struct Exchange {
  std::vector<bool> head_requests;
  std::vector<bool> connect_requests;
  std::binary_semaphore done{0};
};

// The input being served; set before its connection goroutine starts
// (go() publishes it) and cleared after `done`.
Exchange* current = nullptr;

// A body large enough for reply_static to send it in place.
const std::string kStaticBody(2048, 's');

[[noreturn]] void fail(std::string_view what, std::string_view output) {
  std::fprintf(stderr, "http_request_fuzzer: %.*s\n", static_cast<int>(what.size()), what.data());
  std::string shown;
  for (const char c : output.substr(0, 4096)) {
    if (c == '\r') {
      shown += "\\r";
    } else if (c == '\n') {
      shown += "\\n\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
      shown += escaped;
    } else {
      shown += c;
    }
  }
  std::fprintf(stderr, "server output (%zu bytes):\n%s\n", output.size(), shown.c_str());
  std::abort();
}

// Reads the whole body with `step`-byte reads; its length, or -1 after an
// error.
goro::Task<long long> read_body(Request& request, std::size_t step, std::size_t limit) {
  std::vector<char> buffer(step);
  long long total = 0;
  while (static_cast<std::size_t>(total) < limit) {
    auto n = co_await request.read(buffer.data(), buffer.size());
    if (!n.ok()) co_return -1;
    if (*n == 0) break;
    if (*n > step) fail("Request::read produced more bytes than asked for", {});
    total += static_cast<long long>(*n);
  }
  co_return total;
}

// The leading digits of `text` as a status code, whatever its range.
int parse_status(std::string_view text) {
  int status = 0;
  for (const char c : text) {
    if (c < '0' || c > '9' || status > 10000) break;
    status = status * 10 + (c - '0');
  }
  return status;
}

std::string echo(const Request& request, long long body_length) {
  std::string text(request.method());
  text += ' ';
  text += request.target();
  text += " x-echo=";
  text += request.header("x-echo").value_or("-");
  text += " body=";
  text += std::to_string(body_length);
  text += '\n';
  return text;
}

goro::Task<void> handle(Request& request, ResponseWriter& response) {
  current->head_requests.push_back(request.method() == "HEAD");
  current->connect_requests.push_back(request.method() == "CONNECT");
  const std::string_view path = request.path();
  const std::size_t step = request.query().empty() ? 4096 : 1 + request.query().size() % 64;
  auto segment = [&path](std::string_view name) {
    return path == name || (path.starts_with(name) && path[name.size()] == '/');
  };
  if (auto value = request.header("x-echo")) response.add_header("X-Echo", *value);
  // The status of the streaming answers (write, flush) below.
  if (auto value = request.header("x-status")) response.set_status(parse_status(*value));

  if (segment("/noread")) {
    response.reply(200, "text/plain", echo(request, 0));
  } else if (segment("/partial")) {
    char first[3];
    auto n = co_await request.read(first, sizeof first);
    response.reply(200, "text/plain", echo(request, n.ok() ? static_cast<long long>(*n) : -1));
  } else if (segment("/static")) {
    (void)co_await read_body(request, step, SIZE_MAX);
    response.reply_static(200, "text/plain", kStaticBody);
  } else if (segment("/status")) {
    (void)co_await read_body(request, step, SIZE_MAX);
    response.reply(parse_status(path.substr(std::min(path.size(), sizeof "/status"))), "text/plain",
                   "status");
  } else if (segment("/close")) {
    const long long length = co_await read_body(request, step, SIZE_MAX);
    response.add_header("Connection", "close");
    response.reply(200, "text/plain", echo(request, length));
  } else if (segment("/throw")) {
    (void)co_await read_body(request, step, SIZE_MAX);
    throw std::runtime_error("handler failed");
  } else if (segment("/throw-late")) {
    (void)co_await response.write("partial answer");
    (void)co_await response.flush();
    throw std::runtime_error("handler failed after its head went out");
  } else if (segment("/length")) {
    // A declared length that the body may not match (the connection then
    // closes after it).
    response.add_header("Content-Length", request.header("x-length").value_or("7"));
    const long long length = co_await read_body(request, step, SIZE_MAX);
    (void)co_await response.write(echo(request, length));
  } else if (segment("/stream") || segment("/chunked") || segment("/big")) {
    // Pieces written as the body arrives; /chunked flushes the head first
    // (chunked, or until close on HTTP/1.0); /big passes the writer's
    // buffering and the output's flush threshold.
    if (segment("/chunked") && !(co_await response.flush()).ok()) co_return;
    std::vector<char> buffer(step);
    long long total = 0;
    for (;;) {
      auto n = co_await request.read(buffer.data(), buffer.size());
      if (!n.ok() || *n == 0) break;
      total += static_cast<long long>(*n);
      if (!(co_await response.write(std::string_view(buffer.data(), *n))).ok()) co_return;
    }
    if (segment("/big")) {
      const std::string block(10000, 'b');
      for (int i = 0; i < 8; ++i) {
        if (!(co_await response.write(block)).ok()) co_return;
      }
    }
    (void)co_await response.write(echo(request, total));
  } else {
    const long long length = co_await read_body(request, step, SIZE_MAX);
    response.reply(200, "text/plain", echo(request, length));
  }
}

// The runtime, started once for the process.
struct Runtime {
  goro::Chan<int> stop = goro::make_chan<int>(0);
  std::binary_semaphore started{0};
  std::shared_ptr<goro::http::internal::ServerState> state;
  std::thread thread;
};
Runtime* runtime = nullptr;

goro::Task<void> runtime_main(goro::Chan<int> stop, std::binary_semaphore* started) {
  started->release();
  (void)co_await stop.recv();  // closed at exit
}

void stop_runtime() {
  runtime->stop.close();
  runtime->thread.join();
  delete runtime;
  runtime = nullptr;
}

void start_runtime() {
  runtime = new Runtime;
  runtime->state = std::make_shared<goro::http::internal::ServerState>(
      goro::http::Handler(handle), goro::http::ServerOptions{
                                       .max_header_bytes = 8192,
                                       .max_body_bytes = 4096,
                                       .read_header_timeout = 60s,
                                       .read_timeout = 60s,
                                       .write_timeout = 60s,
                                       .idle_timeout = 60s,
                                   });
  runtime->thread = std::thread([] {
    goro::Config config;
    config.procs = 1;  // one worker: the same schedule every run
    config.detect_deadlocks = false;
    goro::run(runtime_main(runtime->stop, &runtime->started), config);
  });
  runtime->started.acquire();
  std::atexit(stop_runtime);
}

goro::Task<void> serve_connection(std::shared_ptr<goro::http::internal::ServerState> state, int fd,
                                  std::binary_semaphore* done) {
  {
    goro::http::internal::Connection connection(goro::net::Conn::from_fd(fd), state);
    co_await connection.serve();
  }
  done->release();
}

// The server's output for `input`, sent by one client on one connection.
std::string exchange(const std::uint8_t* data, std::size_t size, Exchange& exchange_state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    std::perror("socketpair");
    std::abort();
  }
  const int client = fds[0];
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
  std::size_t written = 0;
  auto write_some = [&] {
    while (written < size) {
      const ssize_t n = ::send(client, data + written, size - written, MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        written = size;  // the server stopped reading: what is left is not needed
      }
    }
    ::shutdown(client, SHUT_WR);
  };
  write_some();

  current = &exchange_state;
  goro::go(serve_connection, runtime->state, fds[1], &exchange_state.done);

  std::string output;
  auto last_progress = std::chrono::steady_clock::now();
  for (;;) {
    pollfd poll_fd{.fd = client, .events = POLLIN, .revents = 0};
    if (written < size) poll_fd.events |= POLLOUT;
    const int ready = ::poll(&poll_fd, 1, 100);
    if (ready < 0 && errno != EINTR) {
      std::perror("poll");
      std::abort();
    }
    if (ready <= 0) {
      if (std::chrono::steady_clock::now() - last_progress > kHangLimit) {
        fail("hang: the server neither wrote nor closed", output);
      }
      continue;
    }
    last_progress = std::chrono::steady_clock::now();
    if (poll_fd.revents & POLLOUT) write_some();
    if (poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[16384];
      const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
      if (n > 0) {
        output.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        break;  // end of stream (a reset, after the data, ends it too)
      }
    }
  }
  if (!exchange_state.done.try_acquire_for(kHangLimit)) {
    fail("hang: the connection's goroutine did not end after its output did", output);
  }
  current = nullptr;
  ::close(client);
  return output;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Checks that `output` is whole HTTP/1.1 responses, as the algorithm's
// step 4 says.
void check_output(std::string_view output, const std::vector<bool>& head_requests,
                  const std::vector<bool>& connect_requests) {
  std::size_t position = 0;
  std::size_t responses = 0;
  while (position < output.size()) {
    const std::string_view rest = output.substr(position);
    if (!rest.starts_with("HTTP/1.1 "))
      fail("a response does not start with \"HTTP/1.1 \"", output);
    const std::size_t head_length = rest.find("\r\n\r\n");
    if (head_length == std::string_view::npos) fail("a response head is incomplete", output);
    const std::string_view head = rest.substr(0, head_length + 2);
    if (head.size() < 14 || head[12] != ' ') fail("a status line is malformed", output);
    int status = 0;
    for (std::size_t i = 9; i < 12; ++i) {
      if (head[i] < '0' || head[i] > '9') fail("a status code is not three digits", output);
      status = status * 10 + (head[i] - '0');
    }
    if (status < 100) fail("a status code is below 100", output);
    position += head_length + 4;
    if (status == 100) {
      if (head != "HTTP/1.1 100 Continue\r\n") fail("a 100 Continue has header fields", output);
      continue;
    }
    if (status < 200) fail("a final response has a 1xx status", output);

    bool has_date = false, chunked = false, close = false;
    std::optional<std::uint64_t> content_length;
    std::size_t line_start = head.find("\r\n") + 2;
    while (line_start < head.size()) {
      const std::size_t line_end = head.find("\r\n", line_start);
      const std::string_view line = head.substr(line_start, line_end - line_start);
      line_start = line_end + 2;
      const std::size_t colon = line.find(": ");
      if (colon == std::string_view::npos || colon == 0) fail("a header line is malformed", output);
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = line.substr(colon + 2);
      if (name.find_first_of(" \t\r\n") != std::string_view::npos ||
          value.find_first_of("\r\n") != std::string_view::npos) {
        fail("a header line holds whitespace in its name or a line break", output);
      }
      if (equals_ignore_case(name, "date")) has_date = true;
      if (equals_ignore_case(name, "transfer-encoding")) chunked = value == "chunked";
      if (equals_ignore_case(name, "connection")) close = value == "close";
      if (equals_ignore_case(name, "content-length")) {
        if (content_length) fail("a response has two Content-Length fields", output);
        std::uint64_t length = 0;
        for (const char c : value) {
          if (c < '0' || c > '9') fail("a Content-Length is not a number", output);
          length = length * 10 + static_cast<std::uint64_t>(c - '0');
        }
        content_length = length;
      }
    }
    if (!has_date) fail("a response has no Date", output);
    if (chunked && content_length) fail("a response is chunked and has a Content-Length", output);

    const bool head_request = responses < head_requests.size() && head_requests[responses];
    const bool tunnel =
        responses < connect_requests.size() && connect_requests[responses] && status / 100 == 2;
    ++responses;
    bool truncated = false;
    if (tunnel) {
      if (chunked || content_length) fail("a 2xx to CONNECT has body framing", output);
      if (position != output.size()) fail("bytes follow a 2xx to CONNECT", output);
    } else if (head_request || status == 204 || status == 304) {
      // No body.
    } else if (chunked) {
      for (;;) {
        const std::size_t size_end = output.find("\r\n", position);
        if (size_end == std::string_view::npos) {
          truncated = true;
          break;
        }
        std::uint64_t chunk = 0;
        const std::string_view digits = output.substr(position, size_end - position);
        if (digits.empty() || digits.size() > 15) fail("a chunk size is malformed", output);
        for (const char c : digits) {
          const int digit = c >= '0' && c <= '9'   ? c - '0'
                            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                   : -1;
          if (digit < 0) fail("a chunk size is not hexadecimal", output);
          chunk = chunk * 16 + static_cast<std::uint64_t>(digit);
        }
        position = size_end + 2;
        if (output.size() - position < chunk + 2) {
          truncated = true;
          break;
        }
        if (output.substr(position + chunk, 2) != "\r\n") fail("a chunk has no CRLF", output);
        position += chunk + 2;
        if (chunk == 0) break;
      }
    } else if (content_length) {
      if (output.size() - position < *content_length) {
        truncated = true;
      } else {
        position += *content_length;
      }
    } else {
      if (!close) fail("a response has no framing and does not close", output);
      position = output.size();
    }
    // A response cut short (a handler that threw after its head went out,
    // a body short of its declared length) ends the output: the server
    // closed the connection after it.
    if (truncated) position = output.size();
    if (responses > head_requests.size() && (!close || status < 400)) {
      fail("a response that no handler made is not an error that closes", output);
    }
    if (close && position != output.size()) {
      fail("bytes follow a response that says Connection: close", output);
    }
  }
  if (responses < head_requests.size()) fail("a handler call got no response", output);
  if (responses > head_requests.size() + 1)
    fail("more than one response without a handler call", output);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (runtime == nullptr) start_runtime();
  Exchange exchange_state;
  const std::string output = exchange(data, size, exchange_state);
  check_output(output, exchange_state.head_requests, exchange_state.connect_requests);
  return 0;
}
