// Tests of goro's scope guards (Go's defer): WaitGroup::done_guard,
// Chan::close_guard and goro::defer, on return, on an exception, and when
// the runtime destroys a parked goroutine at shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

// --- WaitGroup::done_guard ----------------------------------------------------

Task<void> worker_that_throws(WaitGroup& wg, int i, std::atomic<long>& finished) {
  auto done = wg.done_guard();
  co_await goro::yield();  // the guard lives across suspensions
  finished.fetch_add(1);
  if (i % 2 == 0) throw std::runtime_error("worker failed");
}

Task<int> wait_for_throwing_workers(int workers) {
  WaitGroup wg;
  std::atomic<long> finished{0};
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < workers; ++i) {
    wg.add(1);
    handles.push_back(spawn(worker_that_throws(wg, i, finished)));
  }
  co_await wg.wait();  // returns only if every worker, thrown or not, called done()
  int thrown = 0;
  for (auto& handle : handles) {
    try {
      co_await handle;
    } catch (const std::runtime_error&) {
      ++thrown;
    }
  }
  co_return finished.load() == workers ? thrown : -1;
}

TEST(WaitGroupDoneGuard, WorkerThatThrowsStillCallsDone) {
  test::Watchdog watchdog("WaitGroupDoneGuard.WorkerThatThrowsStillCallsDone");
  EXPECT_EQ(run(wait_for_throwing_workers(8)), 4);
}

struct ParkedWorker {
  WaitGroup wg;
  std::atomic<bool> parking{false};
};

Task<void> worker_parked_forever(ParkedWorker& p) {
  auto done = p.wg.done_guard();
  p.parking.store(true);
  co_await test::ParkForever{};  // the shutdown destroys the frame here
}

Task<int> leave_worker_parked(ParkedWorker& p) {
  p.wg.add(1);
  go(worker_parked_forever(p));
  const bool parking = co_await test::yield_until_set(p.parking);
  co_return parking ? 0 : 1;  // main returns: the shutdown destroys the worker
}

TEST(WaitGroupDoneGuard, GoroutineDestroyedAtShutdownDoesNotCallDone) {
  ParkedWorker p;
  EXPECT_EQ(run(leave_worker_parked(p)), 0);
  // The counter is still 1: one done() is due and brings it to 0. Had the
  // guard called done() during the shutdown, this one would go negative.
  EXPECT_NO_THROW(p.wg.done());
  EXPECT_THROW(p.wg.done(), std::logic_error);
}

// The usual shape: the WaitGroup belongs to main, whose scope has ended by
// the time the shutdown destroys the parked worker. Here main owns it on
// the heap, so that a guard calling done() there would touch freed memory
// (AddressSanitizer reports it; a WaitGroup in main's frame is destroyed
// as early, but its memory stays until run() frees the frame).
Task<void> worker_of_gone_group(WaitGroup& wg, std::atomic<bool>& parking) {
  auto done = wg.done_guard();
  parking.store(true);
  co_await test::ParkForever{};
}

Task<int> main_owning_the_group(std::atomic<bool>& parking) {
  auto wg = std::make_unique<WaitGroup>();
  wg->add(1);
  go(worker_of_gone_group(*wg, parking));
  const bool parked = co_await test::yield_until_set(parking);
  co_return parked ? 0 : 1;
}

TEST(WaitGroupDoneGuard, GroupOwnedByMainIsNotTouchedWhenShutdownDestroysTheWorker) {
  std::atomic<bool> parking{false};
  EXPECT_EQ(run(main_owning_the_group(parking)), 0);
}

Task<int> wait_for_thread_worker() {
  WaitGroup wg;
  wg.add(1);
  std::thread worker([&wg] {
    auto done = wg.done_guard();  // made outside any goroutine: always calls done()
  });
  co_await wg.wait();
  worker.join();  // done() has returned on the worker thread: joins at once
  co_return 0;
}

TEST(WaitGroupDoneGuard, GuardOnAThreadOutsideTheRuntimeCallsDone) {
  test::Watchdog watchdog("WaitGroupDoneGuard.GuardOnAThreadOutsideTheRuntimeCallsDone");
  EXPECT_EQ(run(wait_for_thread_worker()), 0);
}

// --- Chan::close_guard --------------------------------------------------------

Task<void> producer_that_throws(SendChan<int> out, int throw_at) {
  auto closer = out.close_guard();
  for (int i = 0;; ++i) {
    if (i == throw_at) throw std::runtime_error("producer failed");
    co_await out.send(i);
  }
}

Task<int> consume_from_throwing_producer(std::size_t capacity) {
  Chan<int> ch = make_chan<int>(capacity);
  JoinHandle<void> producer = spawn(producer_that_throws(ch, 5));
  int received = 0;
  while (auto v = co_await ch.recv()) {
    if (*v != received) co_return -1;
    ++received;
  }
  // The loop ended: the guard closed the channel as the exception left.
  try {
    co_await producer;
  } catch (const std::runtime_error&) {
    co_return received;
  }
  co_return -2;
}

TEST(ChanCloseGuard, ProducerThatThrowsStillCloses) {
  test::Watchdog watchdog("ChanCloseGuard.ProducerThatThrowsStillCloses");
  EXPECT_EQ(run(consume_from_throwing_producer(0)), 5);
  EXPECT_EQ(run(consume_from_throwing_producer(3)), 5);
}

Task<int> close_early_then_guard(Chan<int> ch) {
  {
    auto closer = ch.close_guard();
    co_await ch.send(1);
    ch.close();  // the success path closes; the guard then does nothing
  }
  auto first = ch.try_recv();
  auto after = ch.try_recv();
  const bool ok = first.value == 1 && after.closed;
  co_return ok ? 0 : 1;
}

TEST(ChanCloseGuard, ChannelClosedAlreadyIsLeftAsItIs) {
  EXPECT_EQ(run(close_early_then_guard(make_chan<int>(1))), 0);
}

TEST(ChanCloseGuard, NilChannelThrowsWhenTheGuardIsMade) {
  EXPECT_THROW((void)Chan<int>().close_guard(), ChannelClosed);
  EXPECT_THROW((void)SendChan<int>().close_guard(), ChannelClosed);
}

TEST(ChanCloseGuard, GuardKeepsTheChannelAndAMovedFromGuardDoesNothing) {
  std::optional<Chan<int>> ch(make_chan<int>(1));
  SendChan<int> sender = *ch;
  RecvChan<int> receiver = *ch;
  {
    auto closer = sender.close_guard();
    ch.reset();
    sender = SendChan<int>();  // the guard holds a reference of its own
    auto moved = std::move(closer);
    EXPECT_FALSE(receiver.try_recv().closed);
  }
  EXPECT_TRUE(receiver.try_recv().closed);
}

struct ParkedProducer {
  Chan<int> ch = make_chan<int>(1);
  std::atomic<bool> parking{false};
};

Task<void> producer_parked_forever(SendChan<int> out, std::atomic<bool>& parking) {
  auto closer = out.close_guard();
  co_await out.send(1);  // fills the buffer
  parking.store(true);
  co_await out.send(2);  // parks: nobody receives; the shutdown destroys it here
}

Task<int> leave_producer_parked(ParkedProducer& p) {
  go(producer_parked_forever(p.ch, p.parking));
  const bool parking = co_await test::yield_until_set(p.parking);
  co_return parking ? 0 : 1;
}

TEST(ChanCloseGuard, GoroutineDestroyedAtShutdownClosesItsChannel) {
  ParkedProducer p;
  EXPECT_EQ(run(leave_producer_parked(p)), 0);
  // The parked send was withdrawn (its value never arrives); the buffered
  // value is still there, then the close.
  auto first = p.ch.try_recv();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 1);
  EXPECT_TRUE(p.ch.try_recv().closed);
}

// --- goro::defer -------------------------------------------------------------

Task<void> deferring_body(std::vector<std::string>& log, bool fail) {
  auto first = goro::defer([&log] { log.push_back("first"); });
  auto second = goro::defer([&log] { log.push_back("second"); });
  co_await goro::yield();
  if (fail) throw std::runtime_error("body failed");
  log.push_back("body");
}

Task<int> run_deferring_bodies(std::vector<std::string>& ok_log,
                               std::vector<std::string>& failed_log) {
  co_await deferring_body(ok_log, false);
  try {
    co_await deferring_body(failed_log, true);
  } catch (const std::runtime_error&) {
    co_return 0;
  }
  co_return 1;
}

TEST(Defer, RunsAtScopeEndAndOnThrowInReverseOrder) {
  std::vector<std::string> ok_log;
  std::vector<std::string> failed_log;
  EXPECT_EQ(run(run_deferring_bodies(ok_log, failed_log)), 0);
  EXPECT_EQ(ok_log, (std::vector<std::string>{"body", "second", "first"}));
  EXPECT_EQ(failed_log, (std::vector<std::string>{"second", "first"}));
}

Task<void> deferring_parked_forever(std::atomic<int>& deferred_ran, std::atomic<bool>& parking) {
  auto release = goro::defer([&deferred_ran] { deferred_ran.fetch_add(1); });
  parking.store(true);
  co_await test::ParkForever{};
}

Task<int> leave_deferring_goroutine_parked(std::atomic<int>& deferred_ran,
                                           std::atomic<bool>& parking) {
  go(deferring_parked_forever(deferred_ran, parking));
  const bool parked = co_await test::yield_until_set(parking);
  co_return parked ? 0 : 1;
}

TEST(Defer, RunsWhenTheShutdownDestroysAParkedGoroutine) {
  std::atomic<int> deferred_ran{0};
  std::atomic<bool> parking{false};
  EXPECT_EQ(run(leave_deferring_goroutine_parked(deferred_ran, parking)), 0);
  EXPECT_EQ(deferred_ran.load(), 1);
}

TEST(Defer, CancelledGuardDoesNotRun) {
  int ran = 0;
  {
    auto guard = goro::defer([&ran] { ++ran; });
    std::move(guard).Cancel();
  }
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace goro
