// stress_test: many goroutines on several Ps. No lost wakeups (bursts that
// let workers go idle between rounds), millions of spawns and yields,
// concurrent spawns from inside and outside, deep fork-join trees, and a
// tiny local queue that forces overflow to the global queue. Every test runs
// under a watchdog that aborts with a message instead of hanging.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

#include "skynet.hpp"
#include "test_util.hpp"

namespace {

using goro::JoinHandle;
using goro::Task;
using goro::test::scaled;
using goro::test::scaled_depth;
using goro::test::Watchdog;
using goro::test::with_procs;
using goro::test::yield_until_at_least;
using goro::test::yield_until_set;

Task<long> yield_then_return(long value, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  co_return value;
}

// --- no lost wakeups -------------------------------------------------------------

// Each round: a burst of goroutines that yield a little, all joined. Between
// rounds the other workers run out of work and go to sleep, so every round
// exercises the sleep/wake handshake; a lost wakeup hangs a join.
Task<long> burst_rounds(long rounds, int burst) {
  long total = 0;
  std::vector<JoinHandle<long>> handles;
  for (long r = 0; r < rounds; ++r) {
    handles.clear();
    for (int i = 0; i < burst; ++i) handles.push_back(goro::spawn(yield_then_return(1, i % 4)));
    for (auto& h : handles) total += co_await h;
  }
  co_return total;
}

TEST(Stress, BurstsOfShortGoroutinesNeverLoseAWakeup) {
  Watchdog watchdog("BurstsOfShortGoroutinesNeverLoseAWakeup");
  const long rounds = scaled(2000, 100);
  for (unsigned procs : {2u, 3u, 4u}) {
    EXPECT_EQ(goro::run(burst_rounds(rounds, 16), with_procs(procs)), rounds * 16)
        << procs << " procs";
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
}

// Detached bursts: nobody joins, so a goroutine left in a queue while every
// worker sleeps is never run and main waits for its count forever.
Task<void> yield_then_count(std::atomic<long>* counter, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  counter->fetch_add(1);
}

Task<bool> detached_rounds(long rounds, int burst) {
  std::atomic<long> counter{0};
  for (long r = 0; r < rounds; ++r) {
    for (int i = 0; i < burst; ++i) goro::go(yield_then_count(&counter, i % 3));
    if (!co_await yield_until_at_least(counter, (r + 1) * burst)) co_return false;
  }
  co_return true;
}

TEST(Stress, DetachedBurstsNeverLoseAWakeup) {
  Watchdog watchdog("DetachedBurstsNeverLoseAWakeup");
  const long rounds = scaled(2000, 100);
  for (unsigned procs : {2u, 4u}) {
    EXPECT_TRUE(goro::run(detached_rounds(rounds, 8), with_procs(procs))) << procs << " procs";
  }
}

// The sharpest lost-wakeup test: a goroutine that holds its P without
// suspending (spinning on a flag) until a goroutine it started has run. Only
// another P can run that one, and between rounds the other Ps run out of work
// and go to sleep; so every round needs the submit/idle handshake to wake a
// sleeper. A lost wakeup leaves the spinner spinning forever (here: until its
// deadline, which fails the test).
Task<void> count_one(std::atomic<int>* counter) {
  counter->fetch_add(1);
  co_return;
}

// Spins (holding the P) until `counter` reaches `target`; false after 10 s.
bool spin_until(const std::atomic<int>& counter, int target) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (counter.load() < target) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();  // keeps the P: this is not goro::yield
  }
  return true;
}

struct Handoff {
  int spawns = 3;        // goroutines started per round (runnext + local queue)
  long sleep_every = 0;  // every n-th round, let the other workers fall asleep first
  bool from_outside = false;
};

// Returns how many rounds completed (all of them, unless a wakeup was lost).
Task<long> spin_handoff_rounds(long rounds, Handoff how) {
  long handed_off = 0;
  for (long r = 0; r < rounds; ++r) {
    if (how.sleep_every != 0 && r % how.sleep_every == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::atomic<int> ran{0};
    if (how.from_outside) {
      std::thread outside([&] {
        for (int i = 0; i < how.spawns; ++i) goro::go(count_one(&ran));
      });
      outside.join();  // blocks this P too: only another P can run them
    } else {
      for (int i = 0; i < how.spawns; ++i) goro::go(count_one(&ran));
    }
    if (!spin_until(ran, how.spawns)) break;
    ++handed_off;
  }
  co_return handed_off;
}

TEST(Stress, WorkOfABusyProcIsAlwaysPickedUpByTheOthers) {
  Watchdog watchdog("WorkOfABusyProcIsAlwaysPickedUpByTheOthers");
  const long rounds = scaled(20'000, 2'000);
  for (unsigned procs : {2u, 3u, 4u}) {
    EXPECT_EQ(goro::run(spin_handoff_rounds(rounds, Handoff{}), with_procs(procs)), rounds)
        << procs << " procs: the spinning goroutine's children were never run (lost wakeup)";
  }
}

// The runnext take race: each round starts a goroutine (into runnext),
// holds the P for 0-7 us, then yields, so the owner's take of runnext and a
// thief's (after its 3 us grace) overlap in every way. Every goroutine must
// run exactly once: a double run would count twice (and resume a finished
// coroutine, which the sanitizers catch), a lost one never.
Task<void> count_run(std::atomic<long>* runs) {
  runs->fetch_add(1);
  co_return;
}

Task<long> runnext_take_race(long rounds) {
  std::atomic<long> runs{0};
  for (long r = 0; r < rounds; ++r) {
    go(count_run(&runs));
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(r % 8);
    while (std::chrono::steady_clock::now() < until) {
    }
    co_await goro::yield();
  }
  (void)co_await yield_until_at_least(runs, rounds);
  co_await goro::sleep(std::chrono::milliseconds(5));  // a double run would land by now
  co_return runs.load();
}

TEST(Stress, RunnextIsTakenByItsOwnerOrOneThiefNeverBoth) {
  Watchdog watchdog("RunnextIsTakenByItsOwnerOrOneThiefNeverBoth");
  const long rounds = scaled(20'000, 2'000);
  for (unsigned procs : {2u, 4u}) {
    EXPECT_EQ(goro::run(runnext_take_race(rounds), with_procs(procs)), rounds) << procs << " procs";
  }
}

TEST(Stress, SleepingProcsAreWokenForABusyProcsWork) {
  Watchdog watchdog("SleepingProcsAreWokenForABusyProcsWork");
  const long rounds = scaled(2'000, 200);
  for (unsigned procs : {2u, 3u, 4u}) {
    EXPECT_EQ(goro::run(spin_handoff_rounds(rounds, Handoff{.spawns = 2, .sleep_every = 2}),
                        with_procs(procs)),
              rounds)
        << procs << " procs";
    EXPECT_GT(goro::scheduler_stats().parks, 0u);  // the workers did go to sleep
  }
}

TEST(Stress, GoroutinesStartedFromOutsideWakeASleepingProc) {
  Watchdog watchdog("GoroutinesStartedFromOutsideWakeASleepingProc");
  const long rounds = scaled(1'000, 100);
  for (unsigned procs : {2u, 3u}) {
    EXPECT_EQ(goro::run(spin_handoff_rounds(
                            rounds, Handoff{.spawns = 2, .sleep_every = 2, .from_outside = true}),
                        with_procs(procs)),
              rounds)
        << procs << " procs";
    EXPECT_GT(goro::scheduler_stats().parks, 0u);
  }
}

// --- volume ------------------------------------------------------------------------

Task<long> spawner(long children, int yields) {
  long sum = 0;
  std::vector<JoinHandle<long>> batch;
  for (long i = 0; i < children; ++i) {
    batch.push_back(goro::spawn(yield_then_return(1, yields)));
    if (batch.size() == 256) {
      for (auto& h : batch) sum += co_await h;
      batch.clear();
    }
  }
  for (auto& h : batch) sum += co_await h;
  co_return sum;
}

Task<long> many_spawners(int spawners, long children_each, int yields) {
  std::vector<JoinHandle<long>> handles;
  for (int s = 0; s < spawners; ++s) handles.push_back(goro::spawn(spawner(children_each, yields)));
  long sum = 0;
  for (auto& h : handles) sum += co_await h;
  co_return sum;
}

TEST(Stress, MillionsOfSpawnsAndYields) {
  Watchdog watchdog("MillionsOfSpawnsAndYields");
  const long each = scaled(250'000);
  constexpr int kSpawners = 4;
  constexpr int kYields = 2;
  EXPECT_EQ(goro::run(many_spawners(kSpawners, each, kYields), with_procs(4)), kSpawners * each);
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.goroutines_started, static_cast<std::uint64_t>(kSpawners * each + kSpawners + 1));
  EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  EXPECT_EQ(stats.yields, static_cast<std::uint64_t>(kSpawners * each * kYields));
}

// --- inside and outside at once -------------------------------------------------------

struct MixedResult {
  long detached = 0;
  long joined_sum = 0;
  long handles = 0;
};

Task<MixedResult> spawn_inside_and_outside(long per_source) {
  std::atomic<long> detached{0};
  std::atomic<int> threads_done{0};
  std::mutex mu;
  std::vector<JoinHandle<long>> outside_handles;  // guarded by mu
  auto outside = [&] {
    for (long i = 0; i < per_source; ++i) {
      goro::go(yield_then_count(&detached, static_cast<int>(i % 3)));
      JoinHandle<long> h = goro::spawn(yield_then_return(i, static_cast<int>(i % 2)));
      std::lock_guard<std::mutex> lock(mu);
      outside_handles.push_back(std::move(h));
    }
    threads_done.fetch_add(1);
  };
  std::thread a(outside);
  std::thread b(outside);
  // Meanwhile, the same from inside.
  std::vector<JoinHandle<long>> inside_handles;
  for (long i = 0; i < per_source; ++i) {
    goro::go(yield_then_count(&detached, static_cast<int>(i % 3)));
    inside_handles.push_back(goro::spawn(yield_then_return(i, static_cast<int>(i % 2))));
    if (i % 64 == 0) co_await goro::yield();
  }
  MixedResult r;
  for (auto& h : inside_handles) r.joined_sum += co_await h;
  while (threads_done.load() < 2) co_await goro::yield();
  a.join();
  b.join();
  std::vector<JoinHandle<long>> rest;
  {
    std::lock_guard<std::mutex> lock(mu);
    rest.swap(outside_handles);
  }
  r.handles = static_cast<long>(inside_handles.size() + rest.size());
  for (auto& h : rest) r.joined_sum += co_await h;
  co_await yield_until_at_least(detached, 3 * per_source);
  r.detached = detached.load();
  co_return r;
}

TEST(Stress, SpawnsFromTwoOutsideThreadsAndInsideAreAllCountedOnce) {
  Watchdog watchdog("SpawnsFromTwoOutsideThreadsAndInsideAreAllCountedOnce");
  const long n = scaled(50'000, 2'000);
  for (unsigned procs : {2u, 3u}) {
    const MixedResult r = goro::run(spawn_inside_and_outside(n), with_procs(procs));
    EXPECT_EQ(r.detached, 3 * n);
    EXPECT_EQ(r.handles, 3 * n);
    EXPECT_EQ(r.joined_sum, 3 * (n * (n - 1) / 2));
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_started, static_cast<std::uint64_t>(6 * n + 1));
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
}

// --- fork-join trees ------------------------------------------------------------------

Task<long> binary_tree(int depth) {
  if (depth == 0) co_return 1;
  auto left = goro::spawn(binary_tree(depth - 1));
  auto right = goro::spawn(binary_tree(depth - 1));
  if (depth % 3 == 0) co_await goro::yield();
  const long a = co_await left;
  const long b = co_await right;
  co_return a + b;
}

TEST(Stress, DeepBinarySpawnJoinTreeSumsCorrectly) {
  Watchdog watchdog("DeepBinarySpawnJoinTreeSumsCorrectly");
  const int depth = scaled_depth(18, 4);
  for (unsigned procs : {2u, 3u, 4u}) {
    EXPECT_EQ(goro::run(binary_tree(depth), with_procs(procs)), 1L << depth) << procs << " procs";
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_started, (2ULL << depth) - 2 + 1);  // all but the root, + main
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
}

TEST(Stress, SkynetTenAryTreeJoinedInOrder) {
  Watchdog watchdog("SkynetTenAryTreeJoinedInOrder");
  const long leaves = goro::test::kScaleDivisor == 1 ? 100'000 : 10'000;
  for (unsigned procs : {1u, 2u, 4u}) {
    EXPECT_EQ(goro::run(skynet::spawn_join_tree(0, leaves, 10), with_procs(procs)),
              skynet::leaf_sum(leaves))
        << procs << " procs";
  }
}

TEST(Stress, SkynetWithChildrenInAFixedArrayRunsEveryNodeOnce) {
  Watchdog watchdog("SkynetWithChildrenInAFixedArrayRunsEveryNodeOnce");
  const long leaves = goro::test::kScaleDivisor == 1 ? 100'000 : 10'000;
  const long nodes = leaves + (leaves - 1) / 9;  // 10-ary: leaves + inner nodes
  for (unsigned procs : {1u, 2u, 4u}) {
    EXPECT_EQ(goro::run(skynet::spawn_join_array_tree(0, leaves), with_procs(procs)),
              skynet::leaf_sum(leaves))
        << procs << " procs";
    const goro::SchedulerStats stats = goro::scheduler_stats();
    // The root is main; every other node is a goroutine of its own.
    EXPECT_EQ(stats.goroutines_started, static_cast<std::uint64_t>(nodes)) << procs << " procs";
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started) << procs << " procs";
  }
}

// --- a tiny local queue -----------------------------------------------------------------

Task<long> fan_out_and_join(long n) {
  std::vector<JoinHandle<long>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    handles.push_back(goro::spawn(yield_then_return(i, static_cast<int>(i % 3))));
  long sum = 0;
  for (auto& h : handles) sum += co_await h;
  co_return sum;
}

TEST(Stress, TinyLocalQueueOverflowsToTheGlobalQueueWithOneProc) {
  Watchdog watchdog("TinyLocalQueueOverflowsToTheGlobalQueueWithOneProc");
  const long n = scaled(20'000, 2'000);
  EXPECT_EQ(goro::run(fan_out_and_join(n), with_procs(1, 4)), n * (n - 1) / 2);
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_GT(stats.local_queue_overflows, 0u);
  EXPECT_GT(stats.global_queue_takes, 0u);
  EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
}

TEST(Stress, TinyLocalQueuesOverflowAndStealWithSeveralProcs) {
  Watchdog watchdog("TinyLocalQueuesOverflowAndStealWithSeveralProcs");
  const long n = scaled(100'000, 5'000);
  for (unsigned procs : {2u, 3u, 4u}) {
    EXPECT_EQ(goro::run(fan_out_and_join(n), with_procs(procs, 4)), n * (n - 1) / 2)
        << procs << " procs";
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_GT(stats.local_queue_overflows, 0u);
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
  // Trees with a tiny queue: inline joins, stale claim entries in the global
  // queue, and steals of 2-entry halves.
  for (unsigned procs : {2u, 4u}) {
    EXPECT_EQ(goro::run(binary_tree(scaled_depth(16, 4)), with_procs(procs, 4)),
              1L << scaled_depth(16, 4));
  }
}

}  // namespace

namespace {

// --- memory release while goroutines come and go ----------------------------------------

// Releasing free goroutine records and frame pages while stale claim entries
// (left by inline joins, spilled to the global queue by a tiny local queue)
// still point at released records, with release_memory() called from
// goroutines and from an outside thread at the same time.
Task<long> tree_releasing_memory(int depth) {
  if (depth == 0) co_return 1;
  auto left = goro::spawn(tree_releasing_memory(depth - 1));
  auto right = goro::spawn(tree_releasing_memory(depth - 1));
  if (depth % 4 == 0) (void)goro::release_memory();
  const long a = co_await left;
  const long b = co_await right;
  co_return a + b;
}

Task<long> trees_with_outside_releases(int trees, int depth) {
  std::atomic<bool> stop{false};
  std::thread releaser([&stop] {
    while (!stop.load()) {
      (void)goro::release_memory();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  long total = 0;
  for (int t = 0; t < trees; ++t) {
    total += co_await goro::spawn(tree_releasing_memory(depth));
    (void)goro::release_memory();
  }
  stop = true;
  releaser.join();
  co_return total;
}

TEST(Stress, ReleasingMemoryWhileGoroutinesComeAndGo) {
  Watchdog watchdog("ReleasingMemoryWhileGoroutinesComeAndGo");
  const int depth = scaled_depth(14, 3);
  const int trees = 10;
  for (unsigned capacity : {4u, 0u}) {
    EXPECT_EQ(goro::run(trees_with_outside_releases(trees, depth), with_procs(3, capacity)),
              trees * (1L << depth));
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
}

}  // namespace
