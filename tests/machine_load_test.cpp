// Tests of lib/machine_load.hpp: reading /proc/loadavg's runnable count
// through one descriptor held open, and the unknown answer where the file
// cannot be read.
#include "machine_load.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace goro::detail {
namespace {

TEST(MachineLoad, ParsesTheRunnableCountOfALoadavgLine) {
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 3/467 12345\n"), 3);
  EXPECT_EQ(parse_runnable_threads("12.00 9.31 4.02 117/2048 99"), 117);
}

TEST(MachineLoad, RejectsLinesOfAnotherShape) {
  EXPECT_EQ(parse_runnable_threads(""), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 /467 12345"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 x3/467 12345"), -1);
  EXPECT_EQ(parse_runnable_threads("0.52 0.58 0.59 3 467"), -1);
}

TEST(MachineLoad, AFileThatCannotBeOpenedGivesAnUnknownCount) {
  const MachineLoad load("/nonexistent/loadavg");
  EXPECT_EQ(load.runnable_threads(), -1);
  EXPECT_GE(MachineLoad::online_cpus(), 1);
}

TEST(MachineLoad, HoldsOneDescriptorFromConstructionToDestruction) {
  const int before = test::open_fd_count();
  ASSERT_GT(before, 0);
  {
    const MachineLoad load;
    EXPECT_EQ(test::open_fd_count(), before + 1);
    for (int i = 0; i < 100; ++i) {
      ASSERT_GE(load.runnable_threads(), 1);  // the reader itself is runnable
    }
    EXPECT_EQ(test::open_fd_count(), before + 1);  // samples open nothing
  }
  EXPECT_EQ(test::open_fd_count(), before);
}

TEST(MachineLoad, CountsThreadsThatSpin) {
  const int cpus = MachineLoad::online_cpus();
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < cpus + 2; ++i) {
    spinners.emplace_back([&stop] {
      // Relaxed: a stop flag; nothing else is published through it.
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  // The spinners are runnable at every instant from here on: the count
  // includes them once every one has started (the loop waits for that,
  // however long the machine takes to start them).
  const MachineLoad load;
  int seen = 0;
  while (seen <= cpus) {
    seen = load.runnable_threads();
    ASSERT_NE(seen, -1);
    std::this_thread::yield();
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto& spinner : spinners) spinner.join();
  EXPECT_GT(seen, cpus);
}

}  // namespace
}  // namespace goro::detail
