// lib/procs.cpp
//
// How many CPUs this process may use (goro::available_procs), the default
// number of Ps. Like Go's getproccount plus its cgroup-aware limit: the
// affinity mask bounds the CPUs the kernel will run us on, and a cgroup v2
// `cpu.max` quota (quota/period, rounded up) bounds how much CPU time we
// get, which is what matters in containers. Every cgroup from ours up to
// the root is consulted and the tightest quota wins.
#include <sched.h>

#include <cmath>
#include <fstream>
#include <string>

#include "goro/config.hpp"

namespace goro {
namespace {

unsigned affinity_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

// The cgroup v2 path of this process ("0::/some/path"), or "" if none.
std::string own_cgroup_path() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return {};
}

// CPUs allowed by one cpu.max file, or 0 when unlimited or unreadable.
unsigned quota_cpus(const std::string& cpu_max_file) {
  std::ifstream in(cpu_max_file);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  double q = 0;
  try {
    q = std::stod(quota);
  } catch (...) {
    return 0;
  }
  if (q <= 0) return 0;
  const double cpus = std::ceil(q / period);
  return cpus < 1 ? 1u : static_cast<unsigned>(cpus);
}

}  // namespace

unsigned available_procs() noexcept {
  unsigned procs = affinity_cpus();
  try {
    std::string path = own_cgroup_path();
    if (path.empty()) return procs;
    for (;;) {
      const std::string dir = "/sys/fs/cgroup" + (path == "/" ? std::string() : path);
      const unsigned limit = quota_cpus(dir + "/cpu.max");
      if (limit != 0 && limit < procs) procs = limit;
      if (path == "/" || path.empty()) break;
      const auto slash = path.rfind('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  } catch (...) {
    // Reading cgroup files is best effort; the affinity count stands.
  }
  return procs;
}

}  // namespace goro
