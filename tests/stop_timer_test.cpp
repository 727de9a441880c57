// Tests of goro::StopTimer: it stops its source once the deadline has
// passed and never before, a disarmed or destroyed timer never touches its
// source, it can be armed again after it fired, armed() turns false only
// once the fire is over, arming outside a goroutine throws, and timers
// armed and disarmed from goroutines on several Ps while they fire keep
// those promises (run under ThreadSanitizer too). None asserts on how late
// a fire is.
#include "goro/stop_timer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "test_scale.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

using Verdict = std::string;

Task<Verdict> fires_once_its_deadline_has_passed() {
  std::stop_source source;
  StopTimer timer;
  const Clock::time_point deadline = Clock::now() + 5ms;
  timer.arm(deadline, &source);
  // Armed, unless this goroutine was held up past the deadline and the
  // timer has fired already.
  if (!timer.armed() && !source.stop_requested()) co_return "neither armed nor fired after arm()";
  if (timer.deadline() != deadline) co_return "deadline() is not the armed deadline";
  co_await test::yield_until([&] { return source.stop_requested(); });
  if (Clock::now() < deadline) co_return "stopped before the deadline";
  co_await test::yield_until([&] { return !timer.armed(); });
  if (timer.disarm()) co_return "disarm() after the fire said it was armed";
  co_return "";
}

TEST(StopTimer, StopsItsSourceOnceTheDeadlineHasPassed) {
  EXPECT_EQ(run(fires_once_its_deadline_has_passed(), Config{.procs = 2}), "");
}

Task<Verdict> disarmed_never_fires() {
  // A disarm that lost the race to the fire (this goroutine held up past
  // the deadline) says so, and the round is tried again with a deadline
  // twice as far: how fast the machine is decides how long this runs, not
  // its verdict.
  for (Clock::duration margin = 1ms;; margin *= 2) {
    std::stop_source source;
    StopTimer timer;
    timer.arm(Clock::now() + margin, &source);
    if (!timer.disarm()) {
      if (!source.stop_requested()) co_return "disarm() said it had fired, but it had not";
      continue;
    }
    if (timer.armed()) co_return "armed after disarm()";
    // Past the deadline: nothing may fire any more.
    co_await sleep(margin + 4ms);
    if (source.stop_requested()) co_return "a disarmed timer stopped its source";
    co_return "";
  }
}

TEST(StopTimer, ADisarmedTimerNeverStopsItsSource) {
  EXPECT_EQ(run(disarmed_never_fires(), Config{.procs = 2}), "");
}

Task<Verdict> rearmed_after_firing() {
  for (int round = 0; round < 3; ++round) {
    std::stop_source source;
    StopTimer timer;
    timer.arm(Clock::now(), &source);  // already due: fires at the next trip
    if (source.stop_requested()) co_return "fired inside arm()";
    co_await test::yield_until([&] { return !timer.armed(); });
    if (!source.stop_requested()) co_return "not armed any more, but the source was not stopped";
    std::stop_source next;
    timer.arm(Clock::now() + 1ms, &next);
    co_await test::yield_until([&] { return next.stop_requested(); });
    // `next` must outlive the fire, which may still be returning.
    co_await test::yield_until([&] { return !timer.armed(); });
  }
  co_return "";
}

// On one P, so that no other P's worker can run the due timer between arm()
// and the check after it.
TEST(StopTimer, ArmsAgainAfterItFired) {
  EXPECT_EQ(run(rearmed_after_firing(), test::with_procs(1)), "");
}

TEST(StopTimer, ArmingOutsideAGoroutineThrows) {
  std::stop_source source;
  StopTimer timer;
  EXPECT_THROW(timer.arm(Clock::now() + 1h, &source), std::logic_error);
  EXPECT_FALSE(timer.armed());
}

// Destroying an armed timer disarms it: a source not stopped when the
// destructor returned must never be stopped (and under AddressSanitizer,
// the freed timer is never touched). A timer that fired before its
// destructor ran (the machine held this goroutine up past the deadline)
// shows nothing: its source is left out, and when every timer of an
// attempt fired first, the attempt is made again with twice the margin.
Task<Verdict> destroyed_while_armed() {
  constexpr int kTimers = 100;
  for (auto margin = 1ms; margin <= 4s; margin *= 2) {
    std::vector<std::stop_source> sources(kTimers);
    std::vector<bool> disarmed_unfired(kTimers, false);
    int watched = 0;
    for (int i = 0; i < kTimers; ++i) {
      auto timer = std::make_unique<StopTimer>();
      timer->arm(Clock::now() + margin, &sources[i]);
      timer.reset();
      disarmed_unfired[i] = !sources[i].stop_requested();
      if (disarmed_unfired[i]) ++watched;
    }
    if (watched == 0) continue;
    co_await sleep(margin + 4ms);  // past every deadline (sleeps never end early)
    for (int i = 0; i < kTimers; ++i) {
      if (disarmed_unfired[i] && sources[i].stop_requested()) {
        co_return "a destroyed timer stopped its source";
      }
    }
    co_return "";
  }
  co_return "every timer fired before it was destroyed, even 4 s after it was armed";
}

TEST(StopTimer, DestroyedWhileArmedNeverFires) {
  EXPECT_EQ(run(destroyed_while_armed(), Config{.procs = 2}), "");
}

// Goroutines on several Ps each arm a timer at or just past now and then
// disarm it at once or let it fire, over and over, so that disarms race
// fires running on other Ps. Every round checks the contract: a disarm
// that returned true left the source alone; otherwise the fire stopped it;
// armed() is false after either.
Task<Verdict> arm_disarm_round(int rounds, int seed) {
  for (int i = 0; i < rounds; ++i) {
    std::stop_source source;
    StopTimer timer;
    timer.arm(Clock::now() + std::chrono::microseconds((i + seed) % 3), &source);
    if ((i + seed) % 4 == 0) co_await goro::yield();
    if (timer.disarm()) {
      if (source.stop_requested()) co_return "disarmed, but the source was stopped";
      if (timer.armed()) co_return "armed after a disarm() that returned true";
    } else {
      // disarm() waited for a fire in progress: it is over.
      if (!source.stop_requested()) co_return "not disarmed, but the source was not stopped";
      if (timer.armed()) co_return "armed after the fire";
    }
  }
  co_return "";
}

Task<Verdict> many_arm_disarm_races() {
  const int rounds = static_cast<int>(test::scaled(2000, 200));
  std::vector<JoinHandle<Verdict>> workers;
  for (int seed = 0; seed < 8; ++seed) workers.push_back(spawn(arm_disarm_round, rounds, seed));
  Verdict verdict;
  for (auto& worker : workers) {
    Verdict one = co_await worker;
    if (verdict.empty()) verdict = std::move(one);
  }
  co_return verdict;
}

TEST(StopTimer, ArmsAndDisarmsRacingFiresOnOtherProcsKeepTheContract) {
  EXPECT_EQ(run(many_arm_disarm_races(), Config{.procs = 4}), "");
}

}  // namespace
}  // namespace goro
