// benchmarks/loadgen.cpp: a load generator for HTTP/1.1 and echo servers,
// itself a goro program on goro::net.
//
//   loadgen [OPTIONS] http://HOST:PORT/PATH      (--mode http, the default)
//   loadgen --mode echo [OPTIONS] HOST:PORT
//
// Each of --connections connections is one goroutine that keeps up to
// --pipeline requests in flight: it writes pre-built request bytes (all the
// free slots in one write), reads, and counts the responses it can frame.
// Closed loop (the default): a slot is refilled as soon as its response
// arrives, and a request's latency runs from its write. Open loop
// (--rate R, requests per second over all connections): request i of a
// connection is due at a fixed time of a schedule (the connections' start
// times spread over one interval), is written once it is due and a slot is
// free, and its latency runs from when it was due, not from when it went
// out: a server that stalls is charged for the requests that queued behind
// the stall (coordinated omission corrected, as wrk2 does).
//
// Why one goroutine per connection, not a writer and a reader: a write of
// every free slot after each read batches pipelined requests into one
// system call, and there is no hand-off between goroutines per request.
// In open loop the read's deadline is the next due time, so a goroutine
// parked in read wakes to write; the read deadline leaves the data unread
// and the connection usable (goro/net/conn.hpp).
//
// Framing. HTTP responses are framed by their head
// (http_response_counter.hpp): status line, then Content-Length or chunked
// transfer coding, or no body (HEAD, 1xx, 204, 304); interim 1xx responses
// are skipped; a body delimited by the end of the connection counts when
// the connection ends. A response that does not parse (bad status line,
// bad length or chunk size, both framings, oversized head) is an error and
// the connection is redialled. Echo
// responses are the bytes sent, compared as they come back; each --size
// bytes returned completes a request.
//
// Errors (connect, read, write, timeout, parse) are counted and never stop
// the run; the first of each kind is printed at the end. A connection with
// requests in flight that receives nothing for --timeout has a timeout
// error and is redialled; requests in flight on a connection that fails
// are dropped, uncounted, as wrk does.
//
// Output (standard output): a summary with requests/s, MB/s read, errors,
// latency percentiles p50/p90/p99/p99.9/max from a log-linear histogram
// (latency_histogram.hpp), and loadgen's own CPU time per request; with
// --histogram=COLUMNS a text histogram of latencies as wide as COLUMNS;
// with --json a last line in JSON for scripts. Progress (standard error):
// on a terminal one line rewritten every 250 ms (elapsed, requests, current
// rate); otherwise a plain line a second, or none with --progress=none.
//
// Exit status: 0 when at least one request completed, 1 when none did
// (say, nothing listens), 2 for bad options.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <goro/goro.hpp>
#include <goro/io.hpp>
#include <goro/net.hpp>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "http_response_counter.hpp"
#include "latency_histogram.hpp"

namespace {

using namespace std::chrono_literals;
using goro::Clock;

enum class Mode { kHttp, kEcho };
enum class Progress { kAuto, kNone };

struct Options {
  Mode mode = Mode::kHttp;
  std::string target;
  int connections = 50;
  std::chrono::nanoseconds duration = 10s;
  std::chrono::nanoseconds timeout = 10s;
  std::size_t size = 64;  // echo: the message; http: a request body, when not 0 with --size
  bool size_given = false;
  std::string method = "GET";
  std::string path;  // overrides the URL's path
  int pipeline = 1;
  double rate = 0;  // requests per second over all connections; 0: closed loop
  unsigned procs = 0;
  Progress progress = Progress::kAuto;
  int histogram_columns = 0;
  bool json = false;
  bool help = false;
};

// What every connection shares, read-only during the run.
struct Plan {
  Mode mode = Mode::kHttp;
  std::string address;   // host:port to dial
  std::string request;   // one request (http) or message (echo)
  std::string requests;  // `pipeline` copies of it back to back
  bool head_request = false;
  int pipeline = 1;
  std::chrono::nanoseconds timeout{};
  // Open loop: the interval between a connection's due times; 0 for closed loop.
  std::chrono::nanoseconds interval{0};
};

enum ErrorKind { kConnect, kRead, kWrite, kTimeout, kParse, kErrorKinds };
constexpr const char* kErrorNames[kErrorKinds] = {"connect", "read", "write", "timeout", "parse"};

// One connection's counters. Only its goroutine writes them; the progress
// goroutine reads `completed` and `errors` while the run goes on.
struct ConnectionStats {
  LatencyHistogram latency;
  // Single writer (a load and a store, no read-modify-write needed);
  // relaxed is enough: the progress line wants a recent value, not an
  // order with other memory. The final totals are read after the
  // connection goroutines were joined, which orders them.
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> errors{0};
  std::uint64_t bytes_read = 0;
  std::uint64_t non_success = 0;  // HTTP responses other than 2xx and 3xx
  std::uint64_t errors_by_kind[kErrorKinds] = {};
  std::string first_error[kErrorKinds];

  void add_error(ErrorKind kind, const absl::Status& status) {
    if (errors_by_kind[kind]++ == 0) first_error[kind] = status.ToString();
    errors.store(errors.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void add_completed() {
    completed.store(completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

bool consume_suffix(std::string_view* text, std::string_view suffix) {
  if (!text->ends_with(suffix)) return false;
  text->remove_suffix(suffix.size());
  return true;
}

// --- Echo framing ----------------------------------------------------------

// Compares what comes back with the message sent over and over; each
// message's worth of bytes completes a request.
class EchoCounter {
 public:
  explicit EchoCounter(const std::string& message) : message_(message) {}

  template <typename OnResponse>
  absl::Status feed(std::string_view input, OnResponse on_response) {
    while (!input.empty()) {
      const std::size_t n = std::min(input.size(), message_.size() - offset_);
      if (std::memcmp(input.data(), message_.data() + offset_, n) != 0) {
        return absl::DataLossError("the echo differs from what was sent");
      }
      input.remove_prefix(n);
      offset_ += n;
      if (offset_ == message_.size()) {
        offset_ = 0;
        on_response(200);
      }
    }
    return absl::OkStatus();
  }
  template <typename OnResponse>
  void finish(OnResponse) {
    offset_ = 0;
  }
  [[nodiscard]] bool close_requested() const { return false; }

 private:
  const std::string& message_;
  std::size_t offset_ = 0;
};

// --- One connection --------------------------------------------------------

// Runs one connection until ctx ends (the run's end): dials, keeps up to
// plan.pipeline requests in flight, counts responses, redials after an
// error. `first_due` is its first due time in open loop.
template <typename Counter>
goro::Task<void> run_connection(const Plan* plan, ConnectionStats* stats, goro::Context ctx,
                                Clock::time_point end, Clock::time_point first_due,
                                Counter counter) {
  const bool open_loop = plan->interval.count() > 0;
  const auto depth = static_cast<std::size_t>(plan->pipeline);
  const std::size_t request_size = plan->request.size();
  std::vector<char> buffer(64 * 1024);
  std::deque<Clock::time_point> sent;  // the start of each request in flight, oldest first
  Clock::time_point next_due = first_due;
  const auto on_response = [&](Clock::time_point arrived, int status) {
    stats->latency.record(static_cast<std::uint64_t>((arrived - sent.front()).count()));
    sent.pop_front();
    if (status >= 400) ++stats->non_success;
    stats->add_completed();
  };

  // ctx ends at `end`, but its timer may fire a little after the clock
  // passes it: both are checked, so that a dial cut off by the end is not
  // an error.
  while (ctx.err().ok() && Clock::now() < end) {
    auto dialed = co_await goro::net::dial("tcp", plan->address, ctx);
    if (!dialed.ok()) {
      if (!ctx.err().ok() || Clock::now() >= end) break;
      stats->add_error(kConnect, dialed.status());
      (void)co_await goro::sleep(100ms, ctx);  // not a hot loop against a refusing port
      continue;
    }
    goro::net::Conn conn = std::move(*dialed);
    // Reads and writes end with the run through the Conn's deadlines, not a
    // Context per operation: the write deadline is the end, the read
    // deadline the earliest of the end, the timeout and the next due time.
    conn.set_write_deadline(end);
    sent.clear();
    Clock::time_point last_progress = Clock::now();
    Clock::time_point read_deadline = Clock::time_point::min();

    for (;;) {
      // 1. Fill the free slots: all of them in closed loop, those due in open loop.
      Clock::time_point now = Clock::now();
      if (now >= end) break;
      std::size_t to_send = 0;
      if (open_loop) {
        while (sent.size() < depth && next_due <= now) {
          sent.push_back(next_due);
          next_due += plan->interval;
          ++to_send;
        }
      } else {
        to_send = depth - sent.size();
        sent.insert(sent.end(), to_send, now);
      }
      if (to_send > 0) {
        if (sent.size() == to_send) last_progress = now;  // the timeout runs from here
        const absl::Status written =
            co_await conn.write(plan->requests.data(), to_send * request_size);
        if (!written.ok()) {
          if (Clock::now() < end) stats->add_error(kWrite, written);
          break;
        }
      }
      if (sent.empty()) {  // open loop, nothing due yet
        (void)co_await goro::sleep_until(next_due, ctx);
        continue;
      }

      // 2. Read until the next due time (open loop with a free slot), the
      // timeout or the end. The deadline moves only when it must come
      // sooner or has passed: a deadline a little early costs one wake-up
      // and a retry, a change per read costs more.
      Clock::time_point wake = std::min(end, last_progress + plan->timeout);
      if (open_loop && sent.size() < depth) wake = std::min(wake, next_due);
      if (wake < read_deadline || read_deadline <= now) {
        conn.set_read_deadline(wake);
        read_deadline = wake;
      }
      auto n = co_await conn.read(buffer.data(), buffer.size());
      const Clock::time_point arrived = Clock::now();
      if (!n.ok()) {
        if (arrived >= end) break;
        if (goro::net::is_timeout(n.status()) && arrived < last_progress + plan->timeout) continue;
        stats->add_error(goro::net::is_timeout(n.status()) ? kTimeout : kRead, n.status());
        break;
      }
      if (*n == 0) {
        counter.finish([&](int status) {
          if (!sent.empty()) on_response(arrived, status);
        });
        if (!sent.empty() && !counter.close_requested()) {
          stats->add_error(kRead, absl::UnavailableError(
                                      "the server closed the connection with requests in flight"));
        }
        break;
      }
      stats->bytes_read += *n;
      last_progress = arrived;
      bool unexpected = false;
      const absl::Status parsed =
          counter.feed(std::string_view(buffer.data(), *n), [&](int status) {
            if (sent.empty()) {
              unexpected = true;
            } else {
              on_response(arrived, status);
            }
          });
      if (!parsed.ok() || unexpected) {
        stats->add_error(kParse,
                         parsed.ok() ? absl::DataLossError("a response to no request") : parsed);
        break;
      }
      // The server closes after this response: what is still in flight is lost.
      if (counter.close_requested()) break;
    }
    counter.finish([](int) {});
  }
}

// --- Progress --------------------------------------------------------------

std::uint64_t total_completed(const std::vector<std::unique_ptr<ConnectionStats>>& stats) {
  std::uint64_t total = 0;
  for (const auto& s : stats) total += s->completed.load(std::memory_order_relaxed);
  return total;
}
std::uint64_t total_errors(const std::vector<std::unique_ptr<ConnectionStats>>& stats) {
  std::uint64_t total = 0;
  for (const auto& s : stats) total += s->errors.load(std::memory_order_relaxed);
  return total;
}

// Prints progress to standard error until ctx ends: on a terminal one line
// rewritten every 250 ms, otherwise a line a second.
goro::Task<void> show_progress(const std::vector<std::unique_ptr<ConnectionStats>>* stats,
                               goro::Context ctx, Clock::time_point start, double seconds) {
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  const auto period = terminal ? std::chrono::nanoseconds(250ms) : std::chrono::nanoseconds(1s);
  Clock::time_point last_time = start;
  std::uint64_t last_count = 0;
  for (Clock::time_point next = start + period;; next += period) {
    if (!(co_await goro::sleep_until(next, ctx)).ok()) break;
    const Clock::time_point now = Clock::now();
    const std::uint64_t count = total_completed(*stats);
    const double interval = std::chrono::duration<double>(now - last_time).count();
    const double rate = interval > 0 ? static_cast<double>(count - last_count) / interval : 0;
    const std::string line =
        absl::StrFormat("%5.1fs/%.0fs  %" PRIu64 " requests  %.0f req/s  %" PRIu64 " errors",
                        std::chrono::duration<double>(now - start).count(), seconds, count, rate,
                        total_errors(*stats));
    if (terminal) {
      std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
    } else {
      std::fprintf(stderr, "loadgen: %s\n", line.c_str());
    }
    std::fflush(stderr);
    last_time = now;
    last_count = count;
  }
  if (terminal) std::fprintf(stderr, "\r\x1b[K");
}

// --- Report ----------------------------------------------------------------

std::string format_duration(std::uint64_t ns) {
  if (ns < 1'000) return absl::StrFormat("%" PRIu64 "ns", ns);
  if (ns < 1'000'000) return absl::StrFormat("%.1fus", static_cast<double>(ns) / 1e3);
  if (ns < 1'000'000'000) return absl::StrFormat("%.2fms", static_cast<double>(ns) / 1e6);
  return absl::StrFormat("%.2fs", static_cast<double>(ns) / 1e9);
}

// A text histogram `columns` wide: rows of equal width on a log scale from
// the smallest to the largest latency, each with its range, a bar and its
// share of the requests.
void print_histogram(const LatencyHistogram& histogram, int columns) {
  constexpr int kRows = 12;
  if (histogram.total() == 0) return;
  const double low = std::log(static_cast<double>(std::max<std::uint64_t>(histogram.min(), 1)));
  const double high = std::log(static_cast<double>(std::max<std::uint64_t>(histogram.max(), 2)));
  const double step = std::max(high - low, 1e-9) / kRows;
  std::uint64_t counts[kRows] = {};
  histogram.for_each_bucket([&](std::uint64_t lowest, std::uint64_t highest, std::uint64_t count) {
    const double middle =
        std::log(static_cast<double>(std::max<std::uint64_t>((lowest + highest) / 2, 1)));
    const int row = std::clamp(static_cast<int>((middle - low) / step), 0, kRows - 1);
    counts[row] += count;
  });
  const std::uint64_t most = *std::max_element(counts, counts + kRows);
  // "  12.3us - 45.6us |" + bar + " 12.3%"
  const int bar_width = std::max(columns - 28, 10);
  std::printf("latency histogram (log scale):\n");
  for (int row = 0; row < kRows; ++row) {
    const auto from = static_cast<std::uint64_t>(std::exp(low + step * row));
    const auto to = static_cast<std::uint64_t>(std::exp(low + step * (row + 1)));
    const int bar = static_cast<int>(static_cast<double>(bar_width) *
                                     static_cast<double>(counts[row]) / static_cast<double>(most));
    std::printf("%8s - %-8s |%s%*s %5.1f%%\n", format_duration(from).c_str(),
                format_duration(to).c_str(),
                std::string(static_cast<std::size_t>(bar), '#').c_str(), bar_width - bar, "",
                100.0 * static_cast<double>(counts[row]) / static_cast<double>(histogram.total()));
  }
}

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

goro::Task<int> run_load(Options options, Plan plan) {
  const double cpu_before = cpu_seconds();
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + options.duration;
  auto [ctx, cancel] = goro::with_deadline(goro::background(), end);
  std::vector<std::unique_ptr<ConnectionStats>> stats;
  std::vector<goro::JoinHandle<void>> connections;
  for (int i = 0; i < options.connections; ++i) {
    stats.push_back(std::make_unique<ConnectionStats>());
    // Open loop: connection i's schedule starts i/rate into the run, so the
    // connections' due times interleave evenly.
    const Clock::time_point first_due =
        start + std::chrono::nanoseconds(
                    options.rate > 0 ? static_cast<std::int64_t>(i * 1e9 / options.rate) : 0);
    if (plan.mode == Mode::kHttp) {
      connections.push_back(
          goro::spawn(run_connection(&plan, stats.back().get(), ctx, end, first_due,
                                     loadgen::HttpResponseCounter(plan.head_request))));
    } else {
      connections.push_back(goro::spawn(run_connection(&plan, stats.back().get(), ctx, end,
                                                       first_due, EchoCounter(plan.request))));
    }
  }
  std::optional<goro::JoinHandle<void>> progress;
  if (options.progress != Progress::kNone) {
    progress.emplace(goro::spawn(show_progress(
        &stats, ctx, start, std::chrono::duration<double>(options.duration).count())));
  }
  for (auto& connection : connections) co_await connection;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  cancel();
  if (progress) co_await *progress;
  const double cpu = cpu_seconds() - cpu_before;

  LatencyHistogram latency;
  std::uint64_t requests = 0, bytes = 0, non_success = 0, errors = 0;
  std::uint64_t errors_by_kind[kErrorKinds] = {};
  std::string first_error[kErrorKinds];
  for (const auto& s : stats) {
    latency.merge(s->latency);
    requests += s->completed.load(std::memory_order_relaxed);
    bytes += s->bytes_read;
    non_success += s->non_success;
    for (int kind = 0; kind < kErrorKinds; ++kind) {
      errors += s->errors_by_kind[kind];
      errors_by_kind[kind] += s->errors_by_kind[kind];
      if (first_error[kind].empty()) first_error[kind] = s->first_error[kind];
    }
  }
  const double rate = static_cast<double>(requests) / elapsed;
  const double megabytes = static_cast<double>(bytes) / 1e6 / elapsed;
  const double cpu_per_request_us = requests > 0 ? cpu * 1e6 / static_cast<double>(requests) : 0;
  const char* loop = options.rate > 0 ? "open loop" : "closed loop";

  std::printf("loadgen: %s %s, %d connections, pipeline %d, %.1fs, %s",
              options.mode == Mode::kHttp ? "http" : "echo", options.target.c_str(),
              options.connections, options.pipeline, elapsed, loop);
  if (options.rate > 0) std::printf(" at %.0f req/s", options.rate);
  std::printf(", poller %s, %u procs\n", goro::io::poller_backend(), goro::scheduler_stats().procs);
  std::printf("  requests   %" PRIu64 " (%.1f/s), %.2f MB/s read\n", requests, rate, megabytes);
  std::printf("  errors     %" PRIu64, errors);
  std::printf(" (");
  for (int kind = 0; kind < kErrorKinds; ++kind) {
    std::printf("%s%s %" PRIu64, kind == 0 ? "" : ", ", kErrorNames[kind], errors_by_kind[kind]);
  }
  std::printf(")");
  if (options.mode == Mode::kHttp) std::printf(", non-2xx/3xx responses %" PRIu64, non_success);
  std::printf("\n");
  for (int kind = 0; kind < kErrorKinds; ++kind) {
    if (!first_error[kind].empty())
      std::printf("    first %s error: %s\n", kErrorNames[kind], first_error[kind].c_str());
  }
  std::printf("  latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
              format_duration(latency.value_at_quantile(0.50)).c_str(),
              format_duration(latency.value_at_quantile(0.90)).c_str(),
              format_duration(latency.value_at_quantile(0.99)).c_str(),
              format_duration(latency.value_at_quantile(0.999)).c_str(),
              format_duration(latency.max()).c_str());
  std::printf("  loadgen    %.2fs CPU, %.2f us CPU per request\n", cpu, cpu_per_request_us);
  if (options.histogram_columns > 0) print_histogram(latency, options.histogram_columns);
  if (options.json) {
    std::printf(
        "{\"mode\":\"%s\",\"connections\":%d,\"pipeline\":%d,\"rate\":%.0f,\"duration_s\":%.3f,"
        "\"requests\":%" PRIu64 ",\"requests_per_s\":%.1f,\"bytes_read\":%" PRIu64
        ",\"mb_per_s\":%.3f,"
        "\"errors\":%" PRIu64 ",\"non_2xx_3xx\":%" PRIu64 ",\"latency_ns\":{\"p50\":%" PRIu64
        ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p99.9\":%" PRIu64 ",\"max\":%" PRIu64
        "},\"cpu_s\":%.3f,\"cpu_us_per_request\":%.3f,\"poller\":\"%s\"}\n",
        options.mode == Mode::kHttp ? "http" : "echo", options.connections, options.pipeline,
        options.rate, elapsed, requests, rate, bytes, megabytes, errors, non_success,
        latency.value_at_quantile(0.50), latency.value_at_quantile(0.90),
        latency.value_at_quantile(0.99), latency.value_at_quantile(0.999), latency.max(), cpu,
        cpu_per_request_us, goro::io::poller_backend());
  }
  std::fflush(stdout);
  co_return requests > 0 ? 0 : 1;
}

// --- Options ---------------------------------------------------------------

constexpr char kUsage[] =
    "usage: loadgen [OPTIONS] http://HOST:PORT[/PATH]\n"
    "       loadgen --mode echo [OPTIONS] HOST:PORT\n"
    "  --mode http|echo       what to send (default http)\n"
    "  --connections N        connections, each one goroutine (default 50)\n"
    "  --duration D           how long: 10s, 500ms, 1m (default 10s)\n"
    "  --pipeline N           requests in flight per connection (default 1)\n"
    "  --rate R               open loop: R requests/s over all connections, latency\n"
    "                         from each request's due time (default: closed loop)\n"
    "  --size BYTES           echo: message size (default 64); http: a request body\n"
    "  --method M             http: request method (default GET)\n"
    "  --path P               http: request path (default: the URL's)\n"
    "  --timeout D            a response later than this is an error (default 10s)\n"
    "  --procs N              goro Ps, worker threads (default: the CPUs available;\n"
    "                         --threads is the same)\n"
    "  --progress auto|none   progress on standard error (default auto)\n"
    "  --histogram COLUMNS    also print a text histogram of latencies this wide\n"
    "  --json                 also print the results as one JSON line\n";

bool parse_duration(std::string_view text, std::chrono::nanoseconds* out) {
  double scale = 1e9;
  if (consume_suffix(&text, "ms")) {
    scale = 1e6;
  } else if (consume_suffix(&text, "us")) {
    scale = 1e3;
  } else if (consume_suffix(&text, "s")) {
  } else if (consume_suffix(&text, "m")) {
    scale = 60e9;
  }
  double value = 0;
  if (!absl::SimpleAtod(std::string(text), &value) || !(value > 0) || value * scale > 1e15)
    return false;
  *out = std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
  return true;
}

// Parses the command line into options and plan; an error message otherwise.
std::string parse(int argc, char** argv, Options* options, Plan* plan) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("--")) {
      if (!options->target.empty()) return "a second target \"" + std::string(arg) + "\"";
      options->target = std::string(arg);
      continue;
    }
    std::string_view name = arg.substr(2);
    std::string value;
    const std::size_t equals = name.find('=');
    const bool flag = name == "json" || name == "help";
    constexpr std::string_view kValued[] = {
        "mode",   "connections", "pipeline", "duration", "timeout",  "rate",     "size",
        "method", "path",        "procs",    "threads",  "progress", "histogram"};
    const std::string_view bare = name.substr(0, name.find('='));
    if (!flag && std::find(std::begin(kValued), std::end(kValued), bare) == std::end(kValued)) {
      return "unknown option --" + std::string(bare);
    }
    if (equals != std::string_view::npos) {
      value = std::string(name.substr(equals + 1));
      name = name.substr(0, equals);
    } else if (!flag) {
      if (i + 1 >= argc) return "--" + std::string(name) + " needs a value";
      value = argv[++i];
    }
    int number = 0;
    if (name == "help") {
      options->help = true;
      return {};
    }
    if (name == "json") {
      options->json = true;
    } else if (name == "mode") {
      if (value == "http") {
        options->mode = Mode::kHttp;
      } else if (value == "echo") {
        options->mode = Mode::kEcho;
      } else {
        return "--mode is http or echo";
      }
    } else if (name == "connections") {
      if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 1'000'000)
        return "--connections: 1 or more";
      options->connections = number;
    } else if (name == "pipeline") {
      if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 10'000)
        return "--pipeline: 1 to 10000";
      options->pipeline = number;
    } else if (name == "duration") {
      if (!parse_duration(value, &options->duration))
        return "--duration: a positive time such as 5s or 500ms";
    } else if (name == "timeout") {
      if (!parse_duration(value, &options->timeout))
        return "--timeout: a positive time such as 5s or 500ms";
    } else if (name == "rate") {
      if (!absl::SimpleAtod(value, &options->rate) || !(options->rate > 0) || options->rate > 1e9) {
        return "--rate: requests per second, more than 0";
      }
    } else if (name == "size") {
      std::uint64_t size = 0;
      if (!absl::SimpleAtoi(value, &size) || size > (std::uint64_t{1} << 30))
        return "--size: 0 to 1 GiB";
      options->size = size;
      options->size_given = true;
    } else if (name == "method") {
      if (value.empty() ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        return "--method: upper-case letters, such as GET";
      }
      options->method = value;
    } else if (name == "path") {
      if (value.empty() || value[0] != '/' ||
          std::any_of(value.begin(), value.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
        return "--path: starts with / and holds no space or control character";
      }
      options->path = value;
    } else if (name == "procs" || name == "threads") {
      if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 1024)
        return "--procs: 1 to 1024";
      options->procs = static_cast<unsigned>(number);
    } else if (name == "progress") {
      if (value == "auto") {
        options->progress = Progress::kAuto;
      } else if (value == "none") {
        options->progress = Progress::kNone;
      } else {
        return "--progress is auto or none";
      }
    } else if (name == "histogram") {
      if (!absl::SimpleAtoi(value, &number) || number < 0 || number > 1000)
        return "--histogram: columns, 0 to 1000";
      options->histogram_columns = number;
    } else {
      return "unknown option --" + std::string(name);
    }
  }
  if (options->target.empty()) return "no target";

  plan->mode = options->mode;
  plan->pipeline = options->pipeline;
  plan->timeout = options->timeout;
  if (options->rate > 0) {
    plan->interval = std::chrono::nanoseconds(
        static_cast<std::int64_t>(1e9 * options->connections / options->rate));
    if (plan->interval.count() == 0) return "--rate: at most 1e9 per second per connection";
  }
  if (options->mode == Mode::kEcho) {
    if (options->size == 0) return "--size: an echo message needs at least 1 byte";
    if (options->target.find('/') != std::string::npos) return "an echo target is HOST:PORT";
    plan->address = options->target;
    plan->request.resize(options->size);
    for (std::size_t i = 0; i < options->size; ++i)
      plan->request[i] = static_cast<char>('a' + i % 26);
  } else {
    std::string_view url = options->target;
    if (!url.starts_with("http://"))
      return "the target is http://HOST:PORT[/PATH] (https is not spoken)";
    url.remove_prefix(7);
    const std::size_t slash = url.find('/');
    const std::string_view host = url.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "/" : url.substr(slash);
    if (host.empty() ||
        std::any_of(path.begin(), path.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
      return "bad URL: http://HOST:PORT[/PATH], no spaces";
    }
    if (!options->path.empty()) path = options->path;
    const bool has_port = host.back() != ']' && host.find(':') != std::string_view::npos &&
                          (host.front() != '[' || host.rfind("]:") != std::string_view::npos);
    plan->address = has_port ? std::string(host) : std::string(host) + ":80";
    plan->head_request = options->method == "HEAD";
    plan->request = options->method + " " + std::string(path) +
                    " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n";
    if (options->size_given || options->method == "POST" || options->method == "PUT") {
      plan->request += "Content-Length: " + std::to_string(options->size) + "\r\n\r\n";
      plan->request.append(options->size_given ? options->size : 0, 'x');
    } else {
      plan->request += "\r\n";
    }
  }
  if (plan->request.size() * static_cast<std::size_t>(options->pipeline) > (std::size_t{1} << 30)) {
    return "--size times --pipeline over 1 GiB";
  }
  for (int i = 0; i < options->pipeline; ++i) plan->requests += plan->request;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  Plan plan;
  const std::string problem = parse(argc, argv, &options, &plan);
  if (options.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!problem.empty()) {
    std::fprintf(stderr, "loadgen: %s\n%s", problem.c_str(), kUsage);
    return 2;
  }
  return goro::run(run_load(options, std::move(plan)), goro::Config{.procs = options.procs});
}
