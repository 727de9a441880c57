// Tests of goro::after as Go's time.After: a channel that receives the time
// once the duration has passed, usable in select, awaitable directly, and
// leaving nothing behind when nobody receives from it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::with_procs;

Task<bool> awaited_directly() {
  bool ok = true;
  for (std::chrono::nanoseconds d : {std::chrono::nanoseconds(1ms), std::chrono::nanoseconds(3ms),
                                     std::chrono::nanoseconds(200us)}) {
    const auto start = Clock::now();
    const Clock::time_point fired = co_await after(d);
    const auto now = Clock::now();
    ok = ok && fired - start >= d && now - start >= d && fired <= now;
  }
  // Non-positive durations: the time is in the channel at once.
  const Clock::time_point t0 = co_await after(0ns);
  const Clock::time_point t1 = co_await after(-1s);
  ok = ok && t0 <= t1;
  co_return ok;
}

TEST(After, AwaitedDirectlyNeverEarly) { EXPECT_TRUE(run(awaited_directly(), with_procs(2))); }

Task<bool> is_a_buffered_recv_chan() {
  // Empty until it fires (a far deadline: a near one could pass on a slow run).
  RecvChan<Clock::time_point> far = after(1h);
  bool ok = far.cap() == 1 && far.len() == 0 && !far.try_recv();
  RecvChan<Clock::time_point> ch = after(1ms);  // converts to a plain RecvChan
  ok = ok && ch.cap() == 1;
  auto v = co_await ch.recv();
  ok = ok && v.has_value();
  // The one value is gone: a second receive would block for ever.
  auto r = co_await select(recv_from(ch), default_case());
  ok = ok && r.index() == 1;
  // A fire nobody waits for stays in the buffer.
  RecvChan<Clock::time_point> later = after(1ms);
  co_await goro::sleep(5ms);
  ok = ok && later.len() == 1 && later.try_recv();
  co_return ok;
}

TEST(After, IsABufferedReceiveChannel) {
  EXPECT_TRUE(run(is_a_buffered_recv_chan(), with_procs(2)));
}

Task<bool> select_picks_the_ready_one() {
  bool ok = true;
  Chan<int> ready = make_chan<int>(1);
  for (int i = 0; i < 100; ++i) {
    co_await ready.send(i);
    auto r = co_await select(recv_from(after(1h)), recv_from(ready));
    ok = ok && r.index() == 1 && r.get<1>() == i;
  }
  Chan<int> idle = make_chan<int>();
  for (int i = 0; i < 20; ++i) {
    const auto start = Clock::now();
    auto r = co_await select(recv_from(idle), recv_from(after(500us)));
    ok = ok && r.index() == 1 && r.get<1>().has_value() && *r.get<1>() - start >= 500us;
  }
  co_return ok;
}

TEST(After, SelectPicksWhicheverIsReady) {
  EXPECT_TRUE(run(select_picks_the_ready_one(), with_procs(2)));
}

Task<void> send_later(Chan<int> ch, std::chrono::nanoseconds d, int v) {
  co_await goro::sleep(d);
  co_await ch.send(v);
}

Task<bool> value_beats_a_later_timeout() {
  Chan<int> ch = make_chan<int>();
  go(send_later(ch, 2ms, 7));
  auto r = co_await select(recv_from(ch), recv_from(after(1h)));
  co_return r.index() == 0 && r.get<0>() == 7;
}

TEST(After, AValueBeatsALaterTimeout) {
  EXPECT_TRUE(run(value_beats_a_later_timeout(), with_procs(2)));
}

std::uint64_t frames_in_use() {
  std::uint64_t n = 0;
  for (const auto& c : memory_stats().size_classes) n += c.objects_in_use;
  return n + memory_stats().large_objects;
}

Task<bool> unreceived_afters_leave_nothing(long n) {
  Chan<int> ready = make_chan<int>(1);
  // Warm up the size classes and this goroutine's frames.
  for (int i = 0; i < 100; ++i) (void)after(1h);
  const std::uint64_t before = frames_in_use();
  for (long i = 0; i < n; ++i) {
    (void)after(1h);  // dropped at once: timer disarmed and freed
    co_await ready.send(1);
    (void)co_await select(recv_from(ready), recv_from(after(1h)));
  }
  // Fired but never received: freed when dropped too.
  for (int i = 0; i < 100; ++i) {
    auto ch = after(10us);
    co_await goro::sleep(20us);
  }
  const std::uint64_t after_loop = frames_in_use();
  // Other Ps' goroutines allocate nothing here; allow for cache noise.
  co_return after_loop <= before + 64;
}

TEST(After, UnreceivedTimersAreFreedWithTheirChannel) {
  // ASan's leak check also covers this (a timer left in a heap would be
  // leaked at shutdown).
  EXPECT_TRUE(run(unreceived_afters_leave_nothing(test::scaled(100000)), with_procs(2)));
}

Task<bool> long_after_still_armed_at_shutdown() {
  auto keep = after(1h);
  (void)keep;
  co_await goro::yield();
  co_return true;
}

TEST(After, ArmedAtShutdownIsFreed) {
  EXPECT_TRUE(run(long_after_still_armed_at_shutdown(), with_procs(2)));
}

TEST(After, OutsideAGoroutine) {
  EXPECT_THROW((void)after(1ms), std::logic_error);
  RecvChan<Clock::time_point> now = after(0ns);  // no timer needed
  EXPECT_EQ(now.len(), 1u);
}

Task<void> timeout_receiver(RecvChan<int> in, std::atomic<long>* values,
                            std::atomic<long>* timeouts) {
  for (;;) {
    auto r = co_await select(recv_from(in), recv_from(after(20us)));
    if (r.index() == 1) {
      timeouts->fetch_add(1);
      continue;
    }
    if (!r.get<0>()) co_return;  // closed
    values->fetch_add(*r.get<0>());
  }
}

Task<void> slow_producer(SendChan<int> out, long n) {
  for (long i = 0; i < n; ++i) {
    co_await out.send(1);
    if (i % 64 == 0) co_await goro::sleep(50us);
  }
}

Task<bool> timeouts_race_values(long per_producer) {
  test::Watchdog watchdog("after stress");
  Chan<int> ch = make_chan<int>();
  std::atomic<long> values{0};
  std::atomic<long> timeouts{0};
  std::vector<JoinHandle<void>> receivers;
  for (int i = 0; i < 8; ++i) receivers.push_back(spawn(timeout_receiver(ch, &values, &timeouts)));
  std::vector<JoinHandle<void>> producers;
  for (int i = 0; i < 4; ++i) producers.push_back(spawn(slow_producer(ch, per_producer)));
  for (auto& p : producers) co_await p;
  ch.close();
  for (auto& r : receivers) co_await r;
  co_return values.load() == 4 * per_producer;
}

TEST(After, TimeoutsRaceValuesWithoutLosingAny) {
  EXPECT_TRUE(run(timeouts_race_values(test::scaled(20000)), with_procs(4)));
}

}  // namespace
}  // namespace goro
