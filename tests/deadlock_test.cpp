// tests/deadlock_test.cpp: run() throws goro::Deadlock when every goroutine
// is parked with nothing to wake it, and does not while a timer, an I/O
// operation, a blocking call or a thread outside the runtime can still
// wake one.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

// A short grace keeps the tests quick; the "must not fire" cases wait far
// longer than it.
Config quick(unsigned procs = 2) {
  Config config = test::with_procs(procs);
  config.deadlock_grace = 20ms;
  return config;
}

Task<int> test_value() { co_return 7; }

Task<int> receive_forever() {
  Chan<int> nobody_sends = make_chan<int>();
  auto v = co_await nobody_sends.recv();
  co_return v.value_or(-1);
}

TEST(Deadlock, MainReceivingFromASilentChannelThrows) {
  try {
    (void)run(receive_forever(), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    const std::string report = e.what();
    EXPECT_NE(report.find("all goroutines are asleep"), std::string::npos) << report;
    EXPECT_NE(report.find("goroutine 1 [chan receive] (main)"), std::string::npos) << report;
  }
}

Task<void> wait_for(Chan<int> in, Chan<int> out, test::LifeCounts* counts) {
  test::Guard guard(*counts);
  auto v = co_await in.recv();
  co_await out.send(v.value_or(0));
}

Task<void> two_goroutines_wait_for_each_other(test::LifeCounts* counts) {
  Chan<int> a = make_chan<int>();
  Chan<int> b = make_chan<int>();
  auto first = spawn(wait_for(a, b, counts));
  auto second = spawn(wait_for(b, a, counts));
  co_await first;
  co_await second;
}

TEST(Deadlock, ACycleOfGoroutinesIsReportedAndDestroyed) {
  test::LifeCounts counts;
  try {
    run(two_goroutines_wait_for_each_other(&counts), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    const std::string report = e.what();
    EXPECT_NE(report.find("[join] (main)"), std::string::npos) << report;
    // Both goroutines wait to receive.
    const auto first = report.find("[chan receive]");
    ASSERT_NE(first, std::string::npos) << report;
    EXPECT_NE(report.find("[chan receive]", first + 1), std::string::npos) << report;
  }
  EXPECT_EQ(counts.constructed.load(), 2);
  EXPECT_EQ(counts.alive(), 0);  // their frames were destroyed
  // The process can run again.
  EXPECT_EQ(run(test_value(), quick()), 7);
}

Task<int> nil_channel() {
  Chan<int> nil;
  co_await nil.send(1);
  co_return 0;
}

TEST(Deadlock, ANilChannelSendIsADeadlock) {
  try {
    (void)run(nil_channel(), quick(1));
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    EXPECT_NE(std::string(e.what()).find("[chan send (nil chan)]"), std::string::npos) << e.what();
  }
}

Task<int> lock_twice() {
  Mutex m;
  co_await m.lock();
  co_await m.lock();  // Go's "fatal error: all goroutines are asleep"
  co_return 0;
}

TEST(Deadlock, LockingAMutexTwiceIsReportedWithItsWaitReason) {
  try {
    (void)run(lock_twice(), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    EXPECT_NE(std::string(e.what()).find("[goro::Mutex::lock] (main)"), std::string::npos)
        << e.what();
  }
}

Task<int> sleep_longer_than_the_grace() {
  co_await sleep(100ms);
  co_return 1;
}

TEST(Deadlock, APendingTimerIsNotADeadlock) {
  EXPECT_EQ(run(sleep_longer_than_the_grace(), quick()), 1);
}

Task<int> read_written_later(int fd) {
  char c = 0;
  auto n = co_await io::read(fd, &c, 1);
  co_return n.ok() && *n == 1 ? c : -1;
}

TEST(Deadlock, APendingReadIsNotADeadlock) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  std::thread writer([fd = fds[1]] {
    std::this_thread::sleep_for(150ms);
    (void)::write(fd, "r", 1);
  });
  EXPECT_EQ(run(read_written_later(fds[0]), quick()), 'r');
  writer.join();
  (void)io::close(fds[0]);
  (void)io::close(fds[1]);
}

Task<int> long_blocking_call() {
  co_return co_await blocking([] {
    std::this_thread::sleep_for(150ms);
    return 3;
  });
}

TEST(Deadlock, APendingBlockingCallIsNotADeadlock) {
  EXPECT_EQ(run(long_blocking_call(), quick()), 3);
}

Task<void> send_one(Chan<int> ch) { co_await ch.send(5); }

// The delay counts from when the runtime runs (go() from outside needs a
// running runtime), whenever this thread or run() got the CPU.
void start_sender_later(Chan<int> ch, std::chrono::milliseconds delay,
                        const std::atomic<bool>* running) {
  while (!running->load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(delay);
  go(send_one(ch));
}

Task<int> wait_for_outside(Chan<int> ch, std::atomic<bool>* running) {
  running->store(true);
  co_return (co_await ch.recv()).value_or(-1);
}

TEST(Deadlock, AnOutsideThreadWithinTheGraceIsNotADeadlock) {
  Chan<int> ch = make_chan<int>();
  Config config = quick();
  config.deadlock_grace = 10s;  // far past the 50 ms, even on a loaded machine
  std::atomic<bool> running{false};
  std::thread outside(start_sender_later, ch, 50ms, &running);
  EXPECT_EQ(run(wait_for_outside(ch, &running), config), 5);
  outside.join();
}

TEST(Deadlock, DetectionCanBeTurnedOff) {
  Chan<int> ch = make_chan<int>();
  Config config = quick();
  config.detect_deadlocks = false;
  std::atomic<bool> running{false};
  std::thread outside(start_sender_later, ch, 150ms, &running);  // far past the grace
  EXPECT_EQ(run(wait_for_outside(ch, &running), config), 5);
  outside.join();
}

// --- OutsideWaker --------------------------------------------------------------

// Feeds `ch` from outside the runtime `delay` after the runtime runs, with
// try_send (main is parked receiving, so it succeeds), holding `waker`
// until then.
void feed_later_holding(OutsideWaker waker, Chan<int> ch, std::chrono::milliseconds delay,
                        const std::atomic<bool>* running, std::atomic<bool>* sent) {
  while (!running->load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(delay);
  while (!ch.try_send(5)) std::this_thread::sleep_for(1ms);  // main may not be parked yet
  sent->store(true);
  waker.release();
}

TEST(Deadlock, AnOutsideThreadHoldingAnOutsideWakerIsWaitedForPastTheGrace) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  std::atomic<bool> sent{false};
  // 300 ms of silence, fifteen graces of 20 ms.
  std::thread outside(feed_later_holding, OutsideWaker(), ch, 300ms, &running, &sent);
  EXPECT_EQ(run(wait_for_outside(ch, &running), quick()), 5);
  EXPECT_TRUE(sent.load());
  outside.join();
}

// The same program without the waker and without the feeding is a deadlock.
TEST(Deadlock, WithoutAnOutsideWakerASilentChannelIsStillADeadlock) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
  EXPECT_TRUE(running.load());
}

// A waker that goes without feeding anything lets the detector decide.
void hold_then_drop(OutsideWaker waker, const std::atomic<bool>* running,
                    std::atomic<bool>* dropped) {
  while (!running->load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);
  dropped->store(true);
  waker.release();
}

TEST(Deadlock, ADroppedOutsideWakerNoLongerHoldsOffTheDetector) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  std::atomic<bool> dropped{false};
  std::thread outside(hold_then_drop, OutsideWaker(), &running, &dropped);
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
  EXPECT_TRUE(dropped.load());  // not declared while the waker lived
  outside.join();
}

TEST(Deadlock, OutsideWakerIsMovableAndReleasesOnce) {
  OutsideWaker first;
  OutsideWaker second(std::move(first));
  first.release();  // moved-from: promises nothing, releases nothing
  OutsideWaker third;
  third = std::move(second);
  third.release();
  third.release();  // idempotent
  // Every promise ended: the detector works again.
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
}

}  // namespace
}  // namespace goro
