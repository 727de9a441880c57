// lib/machine_load.cpp: the machine's runnable threads (machine_load.hpp,
// steps 1 and 4).
#include "machine_load.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <charconv>

namespace goro::detail {
namespace {

// Relaxed: set by a test before it starts a runtime, read as it starts
// (the runtime's start orders the two on the test's thread).
std::atomic<const char*> path_override{nullptr};
// Relaxed: a count that tests compare with an earlier reading of their own;
// it orders nothing.
std::atomic<std::uint64_t> samples{0};

}  // namespace

const char* machine_load_path() noexcept {
  const char* path = path_override.load(std::memory_order_relaxed);
  return path != nullptr ? path : "/proc/loadavg";
}

void set_machine_load_path_for_testing(const char* path) noexcept {
  path_override.store(path, std::memory_order_relaxed);
}

std::uint64_t machine_load_samples_for_testing() noexcept {
  return samples.load(std::memory_order_relaxed);
}

MachineLoad::MachineLoad(const char* path) noexcept : fd_(::open(path, O_RDONLY | O_CLOEXEC)) {}

MachineLoad::~MachineLoad() {
  if (fd_ >= 0) ::close(fd_);
}

int MachineLoad::runnable_threads() const noexcept {
  if (fd_ < 0) return -1;
  char line[128];
  // pread at offset 0: procfs renders the file afresh for a read from the
  // start, so one descriptor serves every sample.
  const ssize_t n = ::pread(fd_, line, sizeof line, 0);
  samples.fetch_add(1, std::memory_order_relaxed);  // at most one per sysmon period
  if (n <= 0) return -1;
  return parse_runnable_threads(std::string_view(line, static_cast<std::size_t>(n)));
}

int MachineLoad::online_cpus() noexcept {
  static const int cpus = [] {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : static_cast<int>(n);
  }();
  return cpus;
}

bool MachineLoad::runs_on_every_cpu() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_COUNT(&set) >= online_cpus();
}

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

}  // namespace goro::detail
