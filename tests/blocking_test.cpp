// Tests of goro::blocking (the syscall handoff) and of sysmon's stall
// detection. Progress is asserted in counts, never in durations.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "descriptor_exhaustion.hpp"
#include "goro/goro.hpp"
#include "syscall_threads.hpp"
#include "test_scale.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

// The child's body: the process's first blocking call, made while every
// descriptor is taken, must start a syscall thread and return its value.
Task<std::string> first_call_with_every_descriptor_taken() {
  if (detail::SyscallThreads::instance().threads() != 0) co_return "a syscall thread ran before";
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = static_cast<rlim_t>(test::highest_open_fd() + 1 + 16);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) co_return "setrlimit";
  std::vector<int> fillers = test::exhaust_descriptors();
  if (::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 || errno != EMFILE) {
    co_return "not exhausted";
  }
  const int value = co_await blocking([] { return 42; });
  const std::size_t threads = detail::SyscallThreads::instance().threads();
  test::release_descriptors(fillers);
  if (value != 42) co_return "the call returned " + std::to_string(value);
  if (threads != 1) co_return std::to_string(threads) + " syscall threads, not 1";
  co_return "";
}

// First in this file: the fork must come before any test has started
// threads, and the call must be the first of the process, so that it
// starts a syscall thread while the descriptor table is full.
TEST(Blocking, TheFirstCallRunsWhileEveryDescriptorIsTaken) {
  EXPECT_EQ(test::verdict_in_child([] { return run(first_call_with_every_descriptor_taken()); }),
            "");
}

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

// Calls made past a cap: the order in which they started, how many were in
// their function at once, and the turn that lets call i return (once
// `released` exceeds i).
struct QueuedCalls {
  std::mutex mu;
  std::vector<int> start_order;  // guarded by mu
  std::atomic<long> started{0};
  std::atomic<long> running{0};
  std::atomic<long> peak{0};
  std::atomic<long> released{0};
};

Task<int> call_in_turn(QueuedCalls* calls, int i) {
  co_return co_await blocking([calls, i] {
    {
      std::lock_guard lock(calls->mu);
      calls->start_order.push_back(i);
    }
    const long now = calls->running.fetch_add(1) + 1;
    long seen = calls->peak.load();
    while (now > seen && !calls->peak.compare_exchange_weak(seen, now)) {
    }
    calls->started.fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + 120s;  // a failing test still ends
    while (calls->released.load() <= i && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(100us);
    }
    calls->running.fetch_sub(1);
    return i;
  });
}

struct QueueResult {
  bool completed = false;
  std::uint64_t queue_length = 0;  // with 2 calls running and 8 waiting
  std::uint64_t calls_queued = 0;
  std::uint64_t queue_length_after = 0;
  int sum = 0;
};

Task<QueueResult> ten_calls_under_a_cap_of_two(QueuedCalls* calls) {
  QueueResult r;
  std::vector<JoinHandle<int>> handles;
  for (int i = 0; i < 10; ++i) {
    handles.push_back(spawn(call_in_turn(calls, i)));
    // Call i is made before goroutine i + 1 starts: running (the first
    // two) or waiting behind the others. A call joins the queue before its
    // P counts it as queued, so both figures are awaited.
    const bool made =
        i < 2 ? co_await test::yield_until_at_least(calls->started, i + 1)
              : co_await test::yield_until([i] {
                  const SchedulerStats s = scheduler_stats();
                  return s.blocking_queue_length == i - 1u && s.blocking_calls_queued == i - 1u;
                });
    if (!made) co_return r;
  }
  const SchedulerStats stats = scheduler_stats();
  r.queue_length = stats.blocking_queue_length;
  r.calls_queued = stats.blocking_calls_queued;
  // Let the calls return one at a time: each return frees one thread,
  // which only the oldest waiting call may take.
  for (int i = 0; i < 10; ++i) {
    calls->released.store(i + 1);
    if (i + 3 <= 10 && !co_await test::yield_until_at_least(calls->started, i + 3)) co_return r;
  }
  for (auto& h : handles) r.sum += co_await h;
  r.queue_length_after = scheduler_stats().blocking_queue_length;
  r.completed = true;
  co_return r;
}

TEST(Blocking, PastTheCapCallsWaitAndStartInTheOrderTheyWereMade) {
  test::Watchdog watchdog("Blocking.PastTheCapCallsWaitAndStartInTheOrderTheyWereMade");
  QueuedCalls calls;
  const QueueResult r =
      run(ten_calls_under_a_cap_of_two(&calls), Config{.max_blocking_threads = 2});
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.queue_length, 8u);
  EXPECT_EQ(r.calls_queued, 8u);
  EXPECT_EQ(r.queue_length_after, 0u);
  EXPECT_EQ(r.sum, 45);
  EXPECT_EQ(calls.peak.load(), 2);
  std::lock_guard lock(calls.mu);
  EXPECT_EQ(calls.start_order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(scheduler_stats().blocking_calls_queued, 8u);  // the run's last counts
}

// A call that returns only once its runtime has no call waiting any more:
// while it runs, nothing else can (the cap is 1), so the calls queued
// behind it are still waiting when the runtime stops.
Task<void> hold_until_the_queue_is_withdrawn(std::atomic<long>* started,
                                             const std::atomic<bool>* all_queued) {
  co_await blocking([started, all_queued] {
    started->fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + 120s;  // a failing test still ends
    while ((!all_queued->load() || scheduler_stats().blocking_queue_length != 0) &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(100us);
    }
  });
}

Task<void> queued_call(test::LifeCounts* counts, std::atomic<int>* ran) {
  test::Guard guard(*counts);
  co_await blocking([ran] { ran->fetch_add(1); });
}

Task<int> return_with_calls_queued(test::LifeCounts* counts, std::atomic<int>* ran) {
  std::atomic<long> started{0};
  std::atomic<bool> all_queued{false};
  go(hold_until_the_queue_is_withdrawn(&started, &all_queued));
  if (!co_await test::yield_until_at_least(started, 1)) co_return -1;
  for (unsigned i = 0; i < 3; ++i) {
    go(queued_call(counts, ran));
    if (!co_await test::yield_until(
            [i] { return scheduler_stats().blocking_queue_length == i + 1; })) {
      co_return -1;
    }
  }
  all_queued.store(true);
  co_return 0;  // the runtime stops with one call running and three waiting
}

TEST(Blocking, CallsStillWaitingWhenTheRuntimeStopsNeverRunAndTheirGoroutinesAreDestroyed) {
  test::Watchdog watchdog("Blocking.CallsStillWaitingWhenTheRuntimeStops...");
  test::LifeCounts counts;
  std::atomic<int> ran{0};
  EXPECT_EQ(run(return_with_calls_queued(&counts, &ran), Config{.max_blocking_threads = 1}), 0);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(counts.constructed.load(), 3);
  EXPECT_EQ(counts.alive(), 0);
  const SchedulerStats stats = scheduler_stats();
  EXPECT_EQ(stats.blocking_calls_queued, 3u);
  EXPECT_EQ(stats.blocking_queue_length, 0u);
  // The process can run blocking calls again.
  EXPECT_EQ(run(doubled_on_a_syscall_thread(4), Config{.max_blocking_threads = 1}), 8);
}

// Many goroutines, each making calls in a loop, under a cap of three.
Task<long> call_repeatedly(CallsInFlight* calls, int times) {
  long sum = 0;
  for (int i = 0; i < times; ++i) {
    sum += co_await blocking([calls, i] {
      const long now = calls->running.fetch_add(1) + 1;
      long seen = calls->peak.load();
      while (now > seen && !calls->peak.compare_exchange_weak(seen, now)) {
      }
      calls->running.fetch_sub(1);
      return static_cast<long>(i);
    });
  }
  co_return sum;
}

Task<long> many_callers(CallsInFlight* calls, int goroutines, int times) {
  std::vector<JoinHandle<long>> all;
  for (int g = 0; g < goroutines; ++g) all.push_back(spawn(call_repeatedly(calls, times)));
  long sum = 0;
  for (auto& h : all) sum += co_await h;
  co_return sum;
}

TEST(Blocking, ManyCallersUnderASmallCapAllComplete) {
  test::Watchdog watchdog("Blocking.ManyCallersUnderASmallCapAllComplete");
  const int goroutines = 32;
  const int times = static_cast<int>(test::scaled(200, 20));
  CallsInFlight calls;
  const long sum = run(many_callers(&calls, goroutines, times), Config{.max_blocking_threads = 3});
  EXPECT_EQ(sum, static_cast<long>(goroutines) * times * (times - 1) / 2);
  EXPECT_LE(calls.peak.load(), 3);
  EXPECT_EQ(scheduler_stats().blocking_calls, static_cast<std::uint64_t>(goroutines) * times);
  EXPECT_EQ(scheduler_stats().blocking_queue_length, 0u);
}

// Two jobs handed straight to a pool of syscall threads of their own (no
// runtime): the first one's completion, which is what readies a goroutine
// and tells its runtime the call is over, looks at the pool and submits
// the second under a cap of one, as a goroutine calling again at once
// would.
struct CompletionProbe {
  detail::SyscallThreads* pool;
  detail::BlockingJob first;
  detail::BlockingJob second;
  std::atomic<long> busy_at_first_completion{-1};
  std::atomic<int> second_waited{-1};  // submit's answer: 1 if it waited
  std::atomic<bool> second_completed{false};
};

void complete_second(detail::BlockingJob* job) {
  static_cast<CompletionProbe*>(job->calls)->second_completed.store(true);
}

void complete_first(detail::BlockingJob* job) {
  auto* probe = static_cast<CompletionProbe*>(job->calls);
  probe->busy_at_first_completion.store(static_cast<long>(probe->pool->busy()));
  probe->second_waited.store(probe->pool->submit(&probe->second, 1, &complete_second) ? 1 : 0);
}

TEST(Blocking, AReturnedCallIsCountedOutBeforeItsCompletionRuns) {
  // Its own pool, never destroyed (its idle threads outlive the test).
  static auto* const pool = new detail::SyscallThreads();
  CompletionProbe probe;
  probe.pool = pool;
  for (detail::BlockingJob* job : {&probe.first, &probe.second}) {
    job->run = [](detail::BlockingJob*) {};
    job->calls = &probe;
  }
  ASSERT_FALSE(pool->submit(&probe.first, 1, &complete_first));
  const auto give_up = std::chrono::steady_clock::now() + 60s;  // a failing test still ends
  while (!probe.second_completed.load() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(100us);
  }
  ASSERT_TRUE(probe.second_completed.load());
  EXPECT_EQ(probe.busy_at_first_completion.load(), 0);
  EXPECT_EQ(probe.second_waited.load(), 0);  // a thread was free: it did not wait
  EXPECT_EQ(pool->busy(), 0u);
}

Task<bool> call_with_no_thread_allowed() {
  try {
    co_await blocking([] {});
  } catch (const std::invalid_argument&) {
    co_return true;
  }
  co_return false;
}

TEST(Blocking, ACapOfZeroIsRefusedClearly) {
  EXPECT_TRUE(run(call_with_no_thread_allowed(), Config{.max_blocking_threads = 0}));
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
