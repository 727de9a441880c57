// lib/cpu_load.cpp: whether the machine's CPUs are all taken (see
// cpu_load.hpp, steps 1 and 2).
#include "cpu_load.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>

namespace goro::detail {
namespace {

long online_cpus() noexcept {
  static const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return cpus;
}

// Step 1's cache. Relaxed everywhere: the answer is a hint, and a thread
// that reads an answer older or newer than the stamp only spins (or not)
// once more than it would have.
std::atomic<std::int64_t> sampled_at{-kCpuLoadRefreshNanos};
std::atomic<bool> oversubscribed{false};

bool sample() noexcept {
  // Opened for each sample rather than kept: a descriptor held for the
  // life of the process would outlive the runtime that opened it.
  const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char line[128];
  const ssize_t n = ::read(fd, line, sizeof line);
  ::close(fd);
  if (n <= 0) return false;
  const int runnable = parse_runnable_threads(std::string_view(line, static_cast<std::size_t>(n)));
  const long cpus = online_cpus();
  return runnable > 0 && cpus > 0 && runnable > cpus;
}

}  // namespace

int parse_runnable_threads(std::string_view loadavg) noexcept {
  // Skip the three load averages: the fourth field is "runnable/total".
  std::size_t at = 0;
  for (int field = 0; field < 3; ++field) {
    at = loadavg.find(' ', at);
    if (at == std::string_view::npos) return -1;
    ++at;
  }
  const std::size_t slash = loadavg.find('/', at);
  if (slash == std::string_view::npos || slash == at) return -1;
  int runnable = 0;
  const auto [end, error] = std::from_chars(loadavg.data() + at, loadavg.data() + slash, runnable);
  if (error != std::errc{} || end != loadavg.data() + slash) return -1;
  return runnable;
}

bool cpus_oversubscribed(std::int64_t now_ns) noexcept {
  std::int64_t at = sampled_at.load(std::memory_order_relaxed);
  if (now_ns - at >= kCpuLoadRefreshNanos &&
      sampled_at.compare_exchange_strong(at, now_ns, std::memory_order_relaxed)) {
    oversubscribed.store(sample(), std::memory_order_relaxed);  // we won the refresh
  }
  return oversubscribed.load(std::memory_order_relaxed);
}

}  // namespace goro::detail
