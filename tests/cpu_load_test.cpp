// Tests of lib/cpu_load.hpp: reading /proc/loadavg's runnable count, and
// seeing the machine oversubscribed while more threads spin than it has
// CPUs.
#include "cpu_load.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "goro/detail/timer.hpp"

namespace goro::detail {
namespace {

TEST(CpuLoad, ParsesTheRunnableCountOfALoadavgLine) {
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 3/467 12345\n"), 3);
  EXPECT_EQ(parse_runnable_threads("12.00 9.31 4.02 117/2048 99"), 117);
}

TEST(CpuLoad, RejectsLinesOfAnotherShape) {
  EXPECT_EQ(parse_runnable_threads(""), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 /467 12345"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 x3/467 12345"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 3 467"), -1);
}

TEST(CpuLoad, SeesMoreSpinningThreadsThanCpusAsOversubscribed) {
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  ASSERT_GT(cpus, 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (long i = 0; i < cpus + 2; ++i) {
    spinners.emplace_back([&stop] {
      // Relaxed: a stop flag; nothing else is published through it.
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  // The spinners are runnable at every instant from here on, so every
  // sample after the first refresh counts them; the loop ends at the first
  // such sample (the bound is a hang detector, not a speed limit).
  bool seen = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!seen && std::chrono::steady_clock::now() < give_up) {
    seen = cpus_oversubscribed(monotonic_now_ns());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto& spinner : spinners) spinner.join();
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace goro::detail
