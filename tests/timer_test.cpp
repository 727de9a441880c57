// Tests of goro's timers: sleep never ends early, timers fire in deadline
// order, Timer and Ticker stop/reset semantics, idle Ps run the timers of a
// P whose goroutine does not give it back, and shutdown with timers armed.
// None asserts on how late anything is.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "goro/goro.hpp"
#include "test_scale.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

Task<bool> sleeps_never_end_early(int rounds) {
  bool ok = true;
  for (int i = 0; i < rounds; ++i) {
    const auto before = Clock::now();
    const auto deadline = co_await sleep(std::chrono::microseconds(50 + i % 200));
    const auto after = Clock::now();
    ok = ok && after >= deadline && deadline >= before + std::chrono::microseconds(50 + i % 200);
  }
  co_return ok;
}

TEST(Sleep, NeverEndsEarly) {
  EXPECT_TRUE(
      run(sleeps_never_end_early(static_cast<int>(test::scaled(2000, 200))), Config{.procs = 2}));
}

Task<int> non_positive_sleeps() {
  co_await sleep(0ns);
  co_await sleep(-5ms);
  co_await sleep_until(Clock::now() - 1s);
  co_return 7;
}

TEST(Sleep, NonPositiveDurationsReturnAtOnce) { EXPECT_EQ(run(non_positive_sleeps()), 7); }

// Each sleeper logs the deadline its sleep returns, in the order the
// sleepers wake. The deadlines are what the timers were armed with, so the
// check holds however long the arming took (a preempted worker arms the
// later timers later, which can reorder the deadlines themselves).
struct FireLog {
  std::mutex mu;
  std::vector<Clock::time_point> deadlines;
};

Task<void> sleep_then_log(FireLog* log, std::chrono::microseconds d) {
  const Clock::time_point deadline = co_await sleep(d);
  std::lock_guard lock(log->mu);
  log->deadlines.push_back(deadline);
}

Task<std::vector<Clock::time_point>> timers_in_deadline_order(int n) {
  FireLog log;
  std::vector<JoinHandle<void>> all;
  // Deadlines 2 ms apart, armed in reverse order, all on this P.
  for (int i = n - 1; i >= 0; --i) {
    all.push_back(spawn(sleep_then_log(&log, std::chrono::milliseconds(2 * (i + 1)))));
  }
  for (auto& h : all) co_await h;
  co_return log.deadlines;
}

TEST(Timers, FireInDeadlineOrder) {
  const std::vector<Clock::time_point> fired =
      run(timers_in_deadline_order(20), Config{.procs = 1});
  ASSERT_EQ(fired.size(), 20u);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
}

Task<std::vector<bool>> timer_stop_and_reset() {
  std::vector<bool> r;
  Timer a(1h);
  r.push_back(a.stop());  // was running: true
  r.push_back(a.stop());  // already stopped: false
  Timer b(1ms);
  co_await b.wait();          // fires
  r.push_back(b.stop());      // already fired: false
  r.push_back(b.reset(2ms));  // was not running: false
  co_await b.wait();
  Timer c(1h);
  r.push_back(c.reset(1ms));  // was running: true
  const auto before = Clock::now();
  co_await c.wait();
  r.push_back(Clock::now() - before < 30min);  // fired after the reset, not after an hour
  Timer d(1ms);
  co_await sleep(5ms);  // d fires meanwhile; the fire is kept
  co_await d.wait();    // so this returns at once
  r.push_back(true);
  co_return r;
}

TEST(Timer, StopAndResetFollowGo) {
  const std::vector<bool> r = run(timer_stop_and_reset(), Config{.procs = 2});
  EXPECT_EQ(r, (std::vector<bool>{true, false, false, false, true, true, true}));
}

Task<int> ticker_ticks(int n) {
  Ticker t(1ms);
  int ticks = 0;
  auto last = Clock::now();
  bool monotonic = true;
  while (ticks < n) {
    co_await t.tick();
    const auto now = Clock::now();
    monotonic = monotonic && now >= last;
    last = now;
    ++ticks;
  }
  t.stop();
  co_return monotonic ? ticks : -1;
}

TEST(Ticker, TicksUntilStopped) { EXPECT_EQ(run(ticker_ticks(20), Config{.procs = 2}), 20); }

Task<int> slow_ticker_receiver() {
  // The receiver is 10 periods late: the missed ticks are dropped, one is
  // kept, so the next wait returns at once and the one after waits again.
  Ticker t(1ms);
  co_await sleep(10ms);
  co_await t.tick();  // the pending tick
  const auto before = Clock::now();
  co_await t.tick();  // a fresh one
  co_return Clock::now() - before >= 0ns ? 1 : 0;
}

TEST(Ticker, ASlowReceiverSkipsTicks) { EXPECT_EQ(run(slow_ticker_receiver()), 1); }

Task<bool> zero_period_ticker() {
  try {
    Ticker t(0ms);
  } catch (const std::invalid_argument&) {
    co_return true;
  }
  co_return false;
}

TEST(Ticker, RejectsNonPositivePeriods) { EXPECT_TRUE(run(zero_period_ticker())); }

// A goroutine that never gives its P back arms a timer on that P first: an
// idle P must run it.
Task<void> sleep_then_set(std::atomic<bool>* flag) {
  co_await sleep(2ms);
  flag->store(true);
}

Task<void> hog_after_arming(std::atomic<bool>* fired, std::atomic<bool>* stop) {
  go(sleep_then_set(fired));
  co_await yield();  // let the sleeper arm its timer on this P
  while (!stop->load()) {
  }
}

Task<bool> idle_p_runs_a_busy_ps_timers() {
  std::atomic<bool> fired{false};
  std::atomic<bool> stop{false};
  go(hog_after_arming(&fired, &stop));
  while (!fired.load()) co_await sleep(1ms);
  stop.store(true);
  co_return true;
}

TEST(Timers, IdlePsRunTheTimersOfABusyP) {
  EXPECT_TRUE(run(idle_p_runs_a_busy_ps_timers(), Config{.procs = 2}));
}

Task<void> sleep_forever(std::atomic<int>* destroyed, std::atomic<long>* started) {
  struct Guard {
    std::atomic<int>* n;
    ~Guard() { n->fetch_add(1); }
  } guard{destroyed};
  started->fetch_add(1);
  co_await sleep(24h);
}

Task<int> leave_sleepers_behind(std::atomic<int>* destroyed) {
  std::atomic<long> started{0};
  for (int i = 0; i < 100; ++i) go(sleep_forever(destroyed, &started));
  Timer t(1h);
  Ticker k(1h);
  // Every sleeper is asleep (a goroutine that never started would be
  // destroyed without its guard).
  if (!co_await test::yield_until_at_least(started, 100)) co_return -1;
  co_await sleep(1ms);
  co_return 0;
}

TEST(Timers, ShutdownDestroysSleepingGoroutines) {
  std::atomic<int> destroyed{0};
  EXPECT_EQ(run(leave_sleepers_behind(&destroyed), Config{.procs = 2}), 0);
  EXPECT_EQ(destroyed.load(), 100);
}

TEST(Timers, OutsideAGoroutineThrows) { EXPECT_THROW(Timer t(1ms), std::logic_error); }

Task<void> sleep_then_count(std::atomic<long>* woke, long i) {
  co_await sleep(std::chrono::microseconds(i % 1000));
  woke->fetch_add(1);
}

Task<long> many_sleepers(long n) {
  std::atomic<long> woke{0};
  std::vector<JoinHandle<void>> all;
  for (long i = 0; i < n; ++i) all.push_back(spawn(sleep_then_count(&woke, i)));
  for (auto& h : all) co_await h;
  co_return woke.load();
}

TEST(Timers, ManyConcurrentSleepersAllWake) {
  const long n = test::scaled(20000);
  EXPECT_EQ(run(many_sleepers(n), Config{.procs = 2}), n);
}

}  // namespace
}  // namespace goro

namespace goro {
namespace {

// Stop and reset racing the fire, from many goroutines on several Ps: every
// goroutine finishes (no lost or double fire hangs a wait, nothing
// crashes), under TSan too.
Task<void> churn_timers(std::atomic<long>* done, unsigned seed, int rounds) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < rounds; ++i) {
    Timer t(std::chrono::microseconds(next() % 50));
    switch (next() % 4) {
      case 0:
        co_await t.wait();  // always fires
        break;
      case 1:
        if (!t.stop()) {
          // Fired already; stop discarded the fire (Go 1.23): nothing to wait for.
        }
        break;
      case 2:
        t.reset(std::chrono::microseconds(next() % 50));
        co_await t.wait();  // the reset timer fires
        break;
      default:
        co_await sleep(std::chrono::microseconds(next() % 50));
        // Whether it fired or not, stop leaves nothing pending.
        t.stop();
        break;
    }
  }
  done->fetch_add(1);
}

Task<long> timer_churn(int goroutines, int rounds) {
  std::atomic<long> done{0};
  std::vector<JoinHandle<void>> all;
  for (int g = 0; g < goroutines; ++g) {
    all.push_back(spawn(churn_timers(&done, static_cast<unsigned>(g + 1), rounds)));
  }
  for (auto& h : all) co_await h;
  co_return done.load();
}

TEST(Timers, StopAndResetRaceTheFireWithoutLosingAnything) {
  const int goroutines = 16;
  EXPECT_EQ(
      run(timer_churn(goroutines, static_cast<int>(test::scaled(2000, 200))), Config{.procs = 3}),
      goroutines);
}

}  // namespace
}  // namespace goro
