// alloc_burst: resident memory before, at the peak of, and after a burst of
// 1M live goroutines followed by goro::release_memory() (the allocator's
// target: after the release, RSS within 2x of before). docs/PERFORMANCE.md,
// "Frame allocator"; run by scripts/bench-alloc.sh.
//
// usage: alloc_burst [GOROUTINES] [PROCS]   (defaults 1000000 and 0 = default)
//
// The burst: the main goroutine spawns GOROUTINES goroutines that each
// `co_await goro::yield()` once, keeping every JoinHandle in a std::deque,
// then joins them all. A spawned goroutine's frame lives until its handle is
// joined (join_handle.hpp), so all of them are alive at once after the spawn
// loop, whether or not another P ran some of them meanwhile.
//
// RSS is VmRSS from /proc/self/status, read after malloc_trim(0) so that
// glibc's own free memory (the deque's blocks, goro's start-up garbage) does
// not blur what goro holds. "peak" is VmRSS with every goroutine alive;
// VmHWM (the kernel's high-water mark) is printed beside it. Everything is
// measured inside the same goro::run, on its main goroutine: "before" already
// includes the runtime's own start-up memory (Ps, run queues, threads).
//
// Output: memory_stats() at each point, then one line of key=value pairs.
// With ALLOC_BURST_SMAPS=1 in the environment it also lists the largest
// resident mappings (/proc/self/smaps) after the release, to see what the
// remaining RSS is.
// Works with GORO_SYSTEM_FRAME_ALLOCATOR=ON too (then frames are malloc's
// and release_memory() releases only goroutine records).
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <goro/goro.hpp>

namespace {

// A field of /proc/self/status, in KiB (-1 if absent).
long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  }
  return -1;
}

long rss_kib() {
  malloc_trim(0);
  return status_kib("VmRSS");
}

void print_stats(const char* when) {
  const goro::MemoryStats s = goro::memory_stats();
  std::printf("  memory_stats %-6s mapped=%.1fMiB in_use=%.1fMiB free=%.1fMiB released=%.1fMiB\n",
              when, static_cast<double>(s.bytes_mapped) / (1 << 20),
              static_cast<double>(s.bytes_in_use) / (1 << 20),
              static_cast<double>(s.bytes_free) / (1 << 20),
              static_cast<double>(s.bytes_released) / (1 << 20));
}

// The largest resident mappings: "Rss KiB  address range  name".
void print_smaps(int top) {
  std::ifstream in("/proc/self/smaps");
  std::vector<std::pair<long, std::string>> maps;
  std::string header;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line.find('-') < line.find(' ') && line.find(':') > line.find(' ')) {
      header = line;  // "start-end perms offset dev inode [name]"
    } else if (line.rfind("Rss:", 0) == 0) {
      maps.emplace_back(std::stol(line.substr(4)), header);
    }
  }
  std::sort(maps.begin(), maps.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int i = 0; i < top && i < static_cast<int>(maps.size()); ++i) {
    std::printf("  smaps rss_kib=%-7ld %s\n", maps[i].first, maps[i].second.c_str());
  }
}

goro::Task<long> once(long i) {
  co_await goro::yield();
  co_return i;
}

goro::Task<int> burst(long goroutines) {
  const long before = rss_kib();
  print_stats("before");

  long sum = 0;
  long peak = 0;
  {
    std::deque<goro::JoinHandle<long>> handles;
    for (long i = 0; i < goroutines; ++i) handles.push_back(goro::spawn(once(i)));
    peak = rss_kib();
    print_stats("peak");
    for (auto& h : handles) sum += co_await h;
  }
  if (sum != goroutines * (goroutines - 1) / 2) {
    std::fprintf(stderr, "alloc_burst: bad sum %ld\n", sum);
    std::abort();
  }
  const long hwm = status_kib("VmHWM");
  const long joined = rss_kib();
  const std::size_t released = goro::release_memory();
  const long after = rss_kib();
  print_stats("after");
  if (const char* env = std::getenv("ALLOC_BURST_SMAPS"); env != nullptr && env[0] == '1')
    print_smaps(8);

  std::printf(
      "alloc_burst goroutines=%ld procs=%u frame_allocator=%s rss_before_kib=%ld rss_peak_kib=%ld "
      "hwm_kib=%ld rss_joined_kib=%ld released_bytes=%zu rss_after_kib=%ld "
      "after_over_before=%.2f\n",
      goroutines, goro::scheduler_stats().procs,
#if defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR
      "system",
#else
      "goro",
#endif
      before, peak, hwm, joined, released, after,
      static_cast<double>(after) / static_cast<double>(before));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const long goroutines = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  goro::Config config;
  config.procs = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 0;
  return goro::run(burst(goroutines > 0 ? goroutines : 1), config);
}
