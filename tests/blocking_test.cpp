// Tests of goro::blocking (the syscall handoff) and of sysmon's stall
// detection. Progress is asserted in counts, never in durations.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "syscall_threads.hpp"
#include "test_scale.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

Task<int> doubled_on_a_syscall_thread(int x) {
  const auto caller = std::this_thread::get_id();
  const auto [value, ran_on] =
      co_await blocking([x] { return std::make_pair(2 * x, std::this_thread::get_id()); });
  co_return ran_on != caller ? value : -1;
}

TEST(Blocking, ReturnsTheValueFromAnotherThread) {
  EXPECT_EQ(run(doubled_on_a_syscall_thread(21)), 42);
}

Task<std::string> blocking_throws() {
  try {
    co_await blocking([] { throw std::runtime_error("disk on fire"); });
  } catch (const std::runtime_error& e) {
    co_return e.what();
  }
  co_return "no exception";
}

TEST(Blocking, RethrowsTheCallsException) { EXPECT_EQ(run(blocking_throws()), "disk on fire"); }

Task<void> count_progress(std::atomic<long>* progress, std::atomic<bool>* stop) {
  while (!stop->load()) {
    progress->fetch_add(1);
    co_await yield();
  }
}

// The calls of one round: how many are in their blocking function now, the
// most that ever were at once, and the flag that lets them return.
struct CallsInFlight {
  std::atomic<long> running{0};
  std::atomic<long> peak{0};
  std::atomic<bool> release{false};
};

// A blocking call that stays in its function until the round releases it.
// Holding on a flag rather than for a fixed time makes the test independent
// of how fast the machine starts threads: with a timed call, a slow start
// (a sanitizer build on a loaded machine) let the first calls return before
// the last began, and "all at once" was never seen.
Task<int> hold_until_released(CallsInFlight* calls) {
  co_return co_await blocking([calls] {
    const long now = calls->running.fetch_add(1) + 1;
    long seen = calls->peak.load();
    while (now > seen && !calls->peak.compare_exchange_weak(seen, now)) {
    }
    // Bounded, so that a test failing elsewhere still ends.
    const auto give_up = std::chrono::steady_clock::now() + 120s;
    while (!calls->release.load() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    calls->running.fetch_sub(1);
    return 1;
  });
}

struct ProgressResult {
  bool all_started = false;
  long progress_during = 0;
  int completed = 0;
  long peak_concurrency = 0;
};

Task<ProgressResult> others_progress_during_blocking_calls(int calls) {
  std::atomic<long> progress{0};
  std::atomic<bool> stop{false};
  CallsInFlight in_flight;
  go(count_progress(&progress, &stop));
  std::vector<JoinHandle<int>> all;
  for (int i = 0; i < calls; ++i) all.push_back(spawn(hold_until_released(&in_flight)));
  ProgressResult r;
  // Every call in its function at once means each has its own thread.
  r.all_started = co_await test::yield_until_at_least(in_flight.running, calls);
  // While all of them block, the other goroutine must keep counting.
  const long base = progress.load();
  if (r.all_started && co_await test::yield_until_at_least(progress, base + 1000)) {
    r.progress_during = progress.load() - base;
  }
  in_flight.release.store(true);
  for (auto& h : all) r.completed += co_await h;
  r.peak_concurrency = in_flight.peak.load();
  stop.store(true);
  co_return r;
}

TEST(Blocking, OtherGoroutinesRunWhileCallsBlock) {
  const ProgressResult r = run(others_progress_during_blocking_calls(8), Config{.procs = 2});
  EXPECT_TRUE(r.all_started);
  EXPECT_EQ(r.completed, 8);
  EXPECT_EQ(r.peak_concurrency, 8);
  EXPECT_GE(r.progress_during, 1000);  // counted while all 8 calls blocked
}

TEST(Blocking, SixtyFourCallsEachGetAThread) {
  const ProgressResult r = run(others_progress_during_blocking_calls(64), Config{.procs = 2});
  EXPECT_TRUE(r.all_started);
  EXPECT_EQ(r.completed, 64);
  EXPECT_EQ(r.peak_concurrency, 64);  // all at once: one thread each
  EXPECT_GE(detail::SyscallThreads::instance().threads(), 64u);
}

Task<void> hold_call(std::atomic<int>* started, std::atomic<bool>* release) {
  co_await blocking([started, release] {
    started->fetch_add(1);
    while (!release->load()) std::this_thread::sleep_for(1ms);
  });
}

Task<bool> call_past_the_cap() {
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  std::vector<JoinHandle<void>> held;
  for (int i = 0; i < 3; ++i) held.push_back(spawn(hold_call(&started, &release)));
  while (started.load() < 3) co_await yield();
  bool refused = false;
  try {
    co_await blocking([] {});
  } catch (const std::system_error& e) {
    refused = e.code() == std::errc::resource_unavailable_try_again;
  }
  release.store(true);
  for (auto& h : held) co_await h;
  co_await blocking([] {});  // room again
  co_return refused;
}

TEST(Blocking, PastTheCapACallFailsClearly) {
  EXPECT_TRUE(run(call_past_the_cap(), Config{.procs = 2, .max_blocking_threads = 3}));
}

Task<void> block_then_count(std::atomic<int>* destroyed, std::atomic<long>* started) {
  struct Guard {
    std::atomic<int>* n;
    ~Guard() { n->fetch_add(1); }
  } guard{destroyed};
  started->fetch_add(1);
  co_await blocking([] { std::this_thread::sleep_for(50ms); });
  co_await test::ParkForever{};
}

Task<int> return_while_calls_are_in_flight(std::atomic<int>* destroyed) {
  std::atomic<long> started{0};
  for (int i = 0; i < 4; ++i) go(block_then_count(destroyed, &started));
  // All four are about to call (a goroutine that never started would be
  // destroyed without its guard); the calls are then running or starting.
  if (!co_await test::yield_until_at_least(started, 4)) co_return -1;
  co_await sleep(5ms);
  co_return 0;
}

TEST(Blocking, ShutdownWaitsForCallsInFlight) {
  std::atomic<int> destroyed{0};
  EXPECT_EQ(run(return_while_calls_are_in_flight(&destroyed), Config{.procs = 2}), 0);
  EXPECT_EQ(destroyed.load(), 4);
}

// sysmon: a goroutine that holds its P without suspending is recorded as a
// stall, and what is queued behind it on its P still runs.
Task<void> mark(std::atomic<int>* ran) {
  ran->fetch_add(1);
  co_return;
}

Task<std::uint64_t> hog(std::atomic<int>* ran, int queued) {
  for (int i = 0; i < queued; ++i) go(mark(ran));  // queued on this P
  const auto until = Clock::now() + 60ms;
  while (Clock::now() < until) {
  }
  // The queued goroutines ran elsewhere while we held the P.
  co_return static_cast<std::uint64_t>(ran->load());
}

struct StallResult {
  std::uint64_t ran_while_hogging = 0;
  std::uint64_t hog_id = 0;
  bool stall_recorded = false;
};

Task<StallResult> hog_and_watch() {
  std::atomic<int> ran{0};
  auto handle = spawn(hog(&ran, 10));
  const std::uint64_t id = handle.id();
  StallResult r;
  r.ran_while_hogging = co_await handle;
  r.hog_id = id;
  for (const Stall& s : recent_stalls()) {
    if (s.goroutine_id == id && s.duration >= 10ms) r.stall_recorded = true;
  }
  co_return r;
}

TEST(Sysmon, RecordsAStallAndOtherPsRunWhatWaitsBehindIt) {
  const StallResult r = run(hog_and_watch(), Config{.procs = 2});
  EXPECT_EQ(r.ran_while_hogging, 10u);
  EXPECT_TRUE(r.stall_recorded);
  EXPECT_GE(scheduler_stats().stalls, 1u);
}

}  // namespace
}  // namespace goro
