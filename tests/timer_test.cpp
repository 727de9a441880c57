// Tests of goro's timers: sleep never ends early and a positive sleep
// always parks, timers fire in deadline order, durations too long to add
// saturate to "never", Timer and Ticker channels (any number of receivers,
// select) and their stop/reset semantics (Go 1.23's, with assertions
// ported from Go's time/sleep_test.go and tick_test.go), idle Ps run the
// timers of a P whose goroutine does not give it back, and shutdown with
// timers armed. None asserts on how late anything is.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "goro/detail/fast_random.hpp"
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
Task<void> churn_timers(std::atomic<long>* done, std::atomic<long>* failures, unsigned seed,
                        int rounds) {
  std::uint64_t state = seed;
  auto next = [&state] { return goro::detail::next_random(state); };
  for (int i = 0; i < rounds; ++i) {
    Timer t(std::chrono::microseconds(next() % 50));
    switch (next() % 4) {
      case 0:
        co_await t.wait();  // always fires
        break;
      case 1:
        // Nobody receives: running or fired, the timer is pending, and
        // stop discards the fire (Go 1.23).
        if (!t.stop()) failures->fetch_add(1);
        break;
      case 2:
        if (!t.reset(std::chrono::microseconds(next() % 50))) failures->fetch_add(1);
        co_await t.wait();                     // the reset timer fires
        if (t.stop()) failures->fetch_add(1);  // received: nothing pending
        break;
      default:
        co_await sleep(std::chrono::microseconds(next() % 50));
        if (!t.stop()) failures->fetch_add(1);
        if (t.c().try_recv()) failures->fetch_add(1);  // stop leaves nothing behind
        break;
    }
  }
  done->fetch_add(1);
}

Task<long> timer_churn(int goroutines, int rounds) {
  std::atomic<long> done{0};
  std::atomic<long> failures{0};
  std::vector<JoinHandle<void>> all;
  for (int g = 0; g < goroutines; ++g) {
    all.push_back(spawn(churn_timers(&done, &failures, static_cast<unsigned>(g + 1), rounds)));
  }
  for (auto& h : all) co_await h;
  co_return failures.load() == 0 ? done.load() : -failures.load();
}

TEST(Timers, StopAndResetRaceTheFireWithoutLosingAnything) {
  const int goroutines = 16;
  EXPECT_EQ(
      run(timer_churn(goroutines, static_cast<int>(test::scaled(2000, 200))), Config{.procs = 3}),
      goroutines);
}

}  // namespace
}  // namespace goro

namespace goro {
namespace {

constexpr std::chrono::nanoseconds kForever = std::chrono::nanoseconds::max();

// Receives one value from `ch` unless `limit` passes first: a bound that
// turns a lost fire into a failed check instead of a hang.
Task<std::optional<Clock::time_point>> receive_within(RecvChan<Clock::time_point> ch,
                                                      std::chrono::seconds limit = 20s) {
  auto r = co_await select(recv_from(ch), recv_from(after(limit)));
  if (r.index() == 0) co_return r.get<0>();
  co_return std::nullopt;
}

// Sleeps in small steps until `ch` holds a value (a fire nobody received),
// at most `limit`.
Task<bool> until_fire_pending(RecvChan<Clock::time_point> ch, std::chrono::seconds limit = 20s) {
  const auto deadline = Clock::now() + limit;
  while (ch.len() == 0) {
    if (Clock::now() > deadline) co_return false;
    co_await sleep(100us);
  }
  co_return true;
}

// --- Deadlines saturate instead of overflowing ---------------------------

TEST(TimerDeadline, SaturatesInsteadOfOverflowing) {
  using detail::deadline_after;
  using detail::kLatestDeadline;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  static_assert(deadline_after(1000, 5) == 1005);
  static_assert(deadline_after(1000, 0) == 1000);
  static_assert(deadline_after(1000, -5) == 1000);    // due at once, as Go's when()
  static_assert(deadline_after(1000, kMin) == 1000);  // no underflow
  static_assert(deadline_after(1000, kMax) == kLatestDeadline);
  static_assert(deadline_after(kLatestDeadline, 1) == kLatestDeadline);
  static_assert(detail::saturating_add(kMax - 1, 2) == kMax);
  static_assert(detail::saturating_add(kMin + 1, -2) == kMin);
  constexpr Clock::time_point kEpochPlus(std::chrono::seconds(5));
  static_assert(detail::saturating_time_add(kEpochPlus, kForever) == Clock::time_point::max());
  static_assert(detail::saturating_time_add(kEpochPlus, 1s) == kEpochPlus + 1s);
  SUCCEED();
}

void set_flag(std::atomic<bool>* flag) { flag->store(true); }

Task<void> sleep_forever_then_set(std::atomic<bool>* woke) {
  co_await sleep(kForever);
  set_flag(woke);
}

Task<void> sleep_until_max_then_set(std::atomic<bool>* woke) {
  co_await sleep_until(Clock::time_point::max());
  set_flag(woke);
}

Task<bool> never_firing_sleeps() {
  std::atomic<bool> woke{false};
  go(sleep_forever_then_set(&woke));
  go(sleep_until_max_then_set(&woke));
  co_await sleep(5ms);     // a wrapped deadline would have fired by now
  co_return !woke.load();  // the sleepers are destroyed at shutdown
}

TEST(Sleep, DurationsTooLongToAddNeverEnd) {
  EXPECT_TRUE(run(never_firing_sleeps(), Config{.procs = 2}));
}

Task<bool> never_firing_timers() {
  bool ok = true;
  Timer timer(kForever);
  Ticker ticker(kForever);
  Timer reset_timer(1h);
  reset_timer.reset(kForever);
  RecvChan<Clock::time_point> after_channel = after(kForever);
  co_await sleep(5ms);  // a wrapped deadline would have fired by now
  ok = ok && !timer.c().try_recv() && !ticker.c().try_recv() && !reset_timer.c().try_recv() &&
       !after_channel.try_recv();
  ok = ok && timer.stop();  // still armed
  ok = ok && reset_timer.stop();
  co_return ok;
}

TEST(Timer, DurationsTooLongToAddNeverFire) {
  EXPECT_TRUE(run(never_firing_timers(), Config{.procs = 2}));
}

Task<bool> never_expiring_timeout_context() {
  auto [ctx, cancel] = with_timeout(background(), kForever);
  co_await sleep(5ms);  // a wrapped deadline would have cancelled it by now
  const bool ok = ctx.err().ok();
  cancel();
  co_return ok&& ctx.err().code() == absl::StatusCode::kCancelled;
}

TEST(Context, TimeoutTooLongToAddNeverExpires) {
  EXPECT_TRUE(run(never_expiring_timeout_context(), Config{.procs = 2}));
}

Task<absl::Status> sleep_with_context(Context ctx) { co_return co_await sleep(kForever, ctx); }

Task<bool> context_sleep_lasts_until_cancelled() {
  auto [ctx, cancel] = with_cancel(background());
  JoinHandle<absl::Status> sleeper = spawn(sleep_with_context(ctx));
  co_await sleep(2ms);  // a wrapped deadline would have ended the sleep by now
  cancel();
  const absl::Status status = co_await sleeper;
  co_return status.code() == absl::StatusCode::kCancelled;
}

TEST(Context, SleepTooLongToAddLastsUntilCancelled) {
  EXPECT_TRUE(run(context_sleep_lasts_until_cancelled(), Config{.procs = 2}));
}

Task<bool> read_with_endless_timeout(int read_end) {
  std::byte buffer[1];
  absl::StatusOr<std::size_t> n =
      co_await io::read(read_end, std::span(buffer), io::IoOptions::timeout(kForever));
  co_return n.ok() && *n == 1;
}

TEST(IoOptions, TimeoutTooLongToAddMeansNoDeadline) {
  EXPECT_EQ(io::IoOptions::timeout(kForever).deadline, Clock::time_point::max());
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  EXPECT_TRUE(run(read_with_endless_timeout(fds[0]), Config{.procs = 1}));
  ::close(fds[0]);
  ::close(fds[1]);
}

// --- A positive sleep always parks ----------------------------------------

Task<bool> spin_on_short_sleeps() {
  std::atomic<bool> flag{false};
  // With one P the setter runs only if the sleeps below give the P up.
  go([](std::atomic<bool>* f) -> Task<void> {
    f->store(true);
    co_return;
  }(&flag));
  const auto deadline = Clock::now() + 20s;
  while (!flag.load() && Clock::now() < deadline) co_await sleep(1ns);
  co_return flag.load();
}

TEST(Sleep, PositiveSleepParksEvenWhenAlreadyDue) {
  EXPECT_TRUE(run(spin_on_short_sleeps(), Config{.procs = 1}));
}

// The same with a context that can be cancelled, and one that cannot.
Task<bool> spin_on_short_context_sleeps(bool cancellable) {
  std::atomic<bool> flag{false};
  auto [cancellable_ctx, cancel] = with_cancel(background());
  const Context ctx = cancellable ? cancellable_ctx : background();
  go([](std::atomic<bool>* f) -> Task<void> {
    f->store(true);
    co_return;
  }(&flag));
  const auto deadline = Clock::now() + 20s;
  bool all_ok = true;
  while (!flag.load() && Clock::now() < deadline) {
    all_ok = all_ok && (co_await sleep(1ns, ctx)).ok();
  }
  cancel();
  co_return flag.load() && all_ok;
}

TEST(Sleep, PositiveContextSleepParksEvenWhenAlreadyDue) {
  EXPECT_TRUE(run(spin_on_short_context_sleeps(/*cancellable=*/true), Config{.procs = 1}));
  EXPECT_TRUE(run(spin_on_short_context_sleeps(/*cancellable=*/false), Config{.procs = 1}));
}

// --- stop and reset report a discarded fire (Go 1.23) ----------------------

Task<std::vector<bool>> stop_and_reset_after_an_unreceived_fire() {
  std::vector<bool> r;
  Timer a(1ms);
  r.push_back(co_await until_fire_pending(a.c()));
  r.push_back(a.stop());           // the fire nobody received is discarded: true
  r.push_back(!a.c().try_recv());  // and is gone
  r.push_back(!a.stop());          // nothing left to stop
  Timer b(1ms);
  r.push_back(co_await until_fire_pending(b.c()));
  const auto before_reset = Clock::now();
  r.push_back(b.reset(1ms));  // discarded and re-armed: true
  const std::optional<Clock::time_point> fired = co_await receive_within(b.c());
  // The new fire, not the stale one.
  r.push_back(fired.has_value() && *fired >= before_reset + 1ms);
  r.push_back(!b.stop());  // received: nothing pending
  co_return r;
}

TEST(Timer, StopAndResetReturnTrueWhenTheyDiscardAnUnreceivedFire) {
  const std::vector<bool> r = run(stop_and_reset_after_an_unreceived_fire(), Config{.procs = 2});
  EXPECT_EQ(r, std::vector<bool>(8, true));
}

// Go's TestTimerModifiedEarlier: the `if (!t.stop()) <-t.C` idiom never
// blocks, and a timer reset to an earlier time fires.
Task<int> timer_modified_earlier(int timers) {
  int failures = 0;
  for (int i = 0; i < timers; ++i) {
    Timer t(1h);
    for (int j = 0; j < 10; ++j) {
      if (!t.stop()) {
        // Only reachable if a fire was received: nobody receives here.
        ++failures;
        if (!co_await receive_within(t.c(), 1s)) ++failures;
      }
      t.reset(-1ns);  // due at once
      // Let it fire unreceived, so that the next stop has a fire to discard.
      if (!co_await until_fire_pending(t.c())) ++failures;
    }
    if (!co_await receive_within(t.c())) ++failures;
  }
  co_return failures;
}

TEST(Timer, ModifiedEarlierFiresAndStopDrainIdiomNeverBlocks) {
  EXPECT_EQ(run(timer_modified_earlier(static_cast<int>(test::scaled(50, 20))), Config{.procs = 2}),
            0);
}

// Go's TestAfterStop: stopped timers never deliver, whether or not their
// deadline passed before the stop.
Task<bool> after_stop() {
  Timer t0(1ms);
  Timer t1(1ms);
  RecvChan<Clock::time_point> c = after(2ms);
  bool ok = t0.stop() && t1.stop();  // nobody receives: pending either way
  co_await sleep(3ms);
  ok = ok && (co_await c.recv()).has_value();
  auto r = co_await select(recv_from(t0.c()), recv_from(t1.c()), recv_from(c), default_case());
  co_return ok&& r.index() == 3;
}

TEST(Timer, AfterStopNothingIsDelivered) { EXPECT_TRUE(run(after_stop(), Config{.procs = 2})); }

// Go's TestTimerStopStress, without wall-clock outcomes: many goroutines
// stop timers around their deadlines; every stop of a timer nobody
// receives from reports the timer pending, and nothing arrives afterwards.
Task<void> stop_one_timer(std::atomic<long>* failures, int i) {
  Timer t(std::chrono::microseconds(i % 100));
  if (i % 2 == 0) co_await sleep(std::chrono::microseconds(i % 150));
  if (!t.stop()) failures->fetch_add(1);
  co_await sleep(200us);
  if (t.c().try_recv()) failures->fetch_add(1);
}

Task<long> timer_stop_stress(int n) {
  std::atomic<long> failures{0};
  std::vector<JoinHandle<void>> all;
  for (int i = 0; i < n; ++i) all.push_back(spawn(stop_one_timer(&failures, i)));
  for (auto& h : all) co_await h;
  co_return failures.load();
}

TEST(Timer, StopStressNoFireAfterStop) {
  EXPECT_EQ(run(timer_stop_stress(static_cast<int>(test::scaled(2000, 200))), Config{.procs = 4}),
            0);
}

// --- Timer and Ticker channels: any number of receivers --------------------

Task<void> wait_and_count(Timer* t, std::atomic<long>* started, std::atomic<long>* received) {
  started->fetch_add(1);
  (void)co_await t->wait();
  received->fetch_add(1);
}

Task<bool> two_receivers_on_one_timer() {
  Timer t(1h);
  std::atomic<long> started{0};
  std::atomic<long> received{0};
  go(wait_and_count(&t, &started, &received));
  go(wait_and_count(&t, &started, &received));
  bool ok = co_await test::yield_until_at_least(started, 2);
  co_await sleep(1ms);  // let both park (either way, one fire feeds one)
  ok = ok && t.reset(1ms);
  ok = ok && co_await test::yield_until_at_least(received, 1);
  co_await sleep(2ms);
  ok = ok && received.load() == 1;  // one fire, one receiver; the other still waits
  ok = ok && !t.reset(1ms);         // the fire was received
  ok = ok && co_await test::yield_until_at_least(received, 2);
  co_return ok;
}

TEST(Timer, TwoReceiversEachGetAFireAndNeitherIsLost) {
  EXPECT_TRUE(run(two_receivers_on_one_timer(), Config{.procs = 2}));
}

Task<void> collect_ticks(Ticker* ticker, std::mutex* mu, std::vector<Clock::time_point>* ticks,
                         std::atomic<long>* total, long until) {
  while (total->load() < until) {
    auto r = co_await select(recv_from(ticker->c()), recv_from(after(50ms)));
    if (r.index() != 0) continue;  // re-check the total
    std::lock_guard lock(*mu);
    ticks->push_back(*r.get<0>());
    total->fetch_add(1);
  }
}

Task<bool> ticker_shared_by_receivers(long n) {
  Ticker ticker(200us);
  std::mutex mu;
  std::vector<Clock::time_point> ticks;
  std::atomic<long> total{0};
  std::vector<JoinHandle<void>> all;
  for (int i = 0; i < 3; ++i) {
    all.push_back(spawn(collect_ticks(&ticker, &mu, &ticks, &total, n)));
  }
  for (auto& h : all) co_await h;
  ticker.stop();
  // Every tick went to exactly one receiver: no time was delivered twice.
  std::sort(ticks.begin(), ticks.end());
  co_return static_cast<long>(ticks.size()) >= n&& std::adjacent_find(ticks.begin(), ticks.end()) ==
      ticks.end();
}

TEST(Ticker, ReceiversShareTheTicksEachTickOnce) {
  EXPECT_TRUE(run(ticker_shared_by_receivers(200), Config{.procs = 3}));
}

Task<void> send_after(Chan<int> ch, std::chrono::nanoseconds d, int v) {
  co_await sleep(d);
  co_await ch.send(v);
}

Task<bool> select_over_timer_channel() {
  bool ok = true;
  Chan<int> values = make_chan<int>();
  Timer t(1h);
  go(send_after(values, 1ms, 7));
  auto r = co_await select(recv_from(t.c()), recv_from(values));
  ok = ok && r.index() == 1 && r.get<1>() == 7;
  const auto before = Clock::now();
  ok = ok && t.reset(1ms);
  auto s = co_await select(recv_from(t.c()), recv_from(values));
  ok = ok && s.index() == 0 && s.get<0>().has_value() && *s.get<0>() >= before + 1ms;
  Ticker k(1ms);
  auto u = co_await select(recv_from(values), recv_from(k.c()));
  ok = ok && u.index() == 1;
  co_return ok;
}

TEST(Timer, ChannelsWorkInSelect) {
  EXPECT_TRUE(run(select_over_timer_channel(), Config{.procs = 2}));
}

Task<void> receive_once(RecvChan<Clock::time_point> ch, std::atomic<bool>* started,
                        std::atomic<bool>* received) {
  started->store(true);
  (void)co_await ch.recv();
  received->store(true);
}

Task<bool> stop_leaves_a_parked_receiver_waiting() {
  Timer t(1h);
  std::atomic<bool> started{false};
  std::atomic<bool> received{false};
  go(receive_once(t.c(), &started, &received));
  bool ok = co_await test::yield_until_set(started);
  co_await sleep(1ms);
  ok = ok && t.stop();
  co_await sleep(2ms);
  ok = ok && !received.load();  // a stopped timer delivers nothing
  ok = ok && !t.reset(1ms);     // already stopped
  ok = ok && co_await test::yield_until_set(received);
  co_return ok;
}

TEST(Timer, StopLeavesAParkedReceiverWaitingForTheReset) {
  EXPECT_TRUE(run(stop_leaves_a_parked_receiver_waiting(), Config{.procs = 2}));
}

// On one P the waiter runs from `started` to its park in wait() without
// giving the P up, so main, which waits for `started`, destroys the Timer
// only once the waiter is parked.
Task<void> wait_on_timer(Timer* t, std::atomic<bool>* started, std::atomic<bool>* woke) {
  started->store(true);
  (void)co_await t->wait();
  woke->store(true);
}

Task<bool> timer_destroyed_while_waited_on() {
  std::atomic<bool> started{false};
  std::atomic<bool> woke{false};
  bool ok = true;
  {
    auto t = std::make_unique<Timer>(1h);
    go(wait_on_timer(t.get(), &started, &woke));
    ok = co_await test::yield_until_set(started);
  }
  // The waiter keeps the channel alive: it stays parked (nothing more
  // arrives) and is torn down at shutdown without touching freed memory
  // (ASan checks that).
  co_await sleep(2ms);
  co_return ok && !woke.load();
}

TEST(Timer, DestroyedWhileAnotherGoroutineWaitsLeavesItParked) {
  EXPECT_TRUE(run(timer_destroyed_while_waited_on(), Config{.procs = 1}));
}

// --- Ticker stop/reset (Go's tick_test.go) ---------------------------------

Task<std::vector<bool>> ticker_stop_and_reset() {
  std::vector<bool> r;
  Ticker k(1ms);
  r.push_back(co_await until_fire_pending(k.c()));
  co_await sleep(3ms);
  r.push_back(k.c().len() == 1);  // a slow receiver: one tick kept, the rest dropped
  k.stop();
  r.push_back(!k.c().try_recv());  // no stale tick after stop
  co_await sleep(3ms);
  r.push_back(!k.c().try_recv());  // and no new one
  k.reset(1h);
  co_await sleep(3ms);
  r.push_back(!k.c().try_recv());  // the new period holds
  const auto before = Clock::now();
  k.reset(1ms);
  const std::optional<Clock::time_point> tick = co_await receive_within(k.c());
  r.push_back(tick.has_value() && *tick >= before + 1ms);
  r.push_back((co_await receive_within(k.c())).has_value());  // and keeps ticking
  co_return r;
}

TEST(Ticker, StopAndResetLeaveNoStaleTick) {
  EXPECT_EQ(run(ticker_stop_and_reset(), Config{.procs = 2}), std::vector<bool>(7, true));
}

// Go's TestTickerResetLtZeroDuration: reset to a non-positive period throws
// and leaves the ticker as it was.
Task<bool> ticker_bad_reset_changes_nothing() {
  Ticker k(1ms);
  bool ok = true;
  for (std::chrono::nanoseconds bad : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(-1)}) {
    try {
      k.reset(bad);
      ok = false;
    } catch (const std::invalid_argument&) {
    }
  }
  // Still ticking with the old period.
  ok = ok && (co_await receive_within(k.c())).has_value();
  ok = ok && (co_await receive_within(k.c())).has_value();
  co_return ok;
}

TEST(Ticker, ResetToANonPositivePeriodThrowsAndKeepsTicking) {
  EXPECT_TRUE(run(ticker_bad_reset_changes_nothing(), Config{.procs = 2}));
}

}  // namespace
}  // namespace goro
