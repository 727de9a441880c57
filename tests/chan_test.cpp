// Tests of goro::Chan<T> against Go's channel semantics: FIFO values and
// waiters, direct handoff, close waking everyone, drain-then-closed, nil
// channels, the errors Go panics with, move-only and zero-size elements,
// directional views, and stress runs (many consumers, a prime sieve, a
// power-series pipeline) with several Ps.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using test::with_procs;

// --- Directional views: the wrong direction does not compile (Go's perm.go).

template <class C>
concept CanSend = requires(C c) {
  c.send(1);
};
template <class C>
concept CanTrySend = requires(C c) {
  c.try_send(1);
};
template <class C>
concept CanRecv = requires(C c) {
  c.recv();
};
template <class C>
concept CanTryRecv = requires(C c) {
  c.try_recv();
};
template <class C>
concept CanClose = requires(C c) {
  c.close();
};

static_assert(CanSend<Chan<int>> && CanRecv<Chan<int>> && CanClose<Chan<int>>);
static_assert(CanSend<SendChan<int>> && CanTrySend<SendChan<int>> && CanClose<SendChan<int>>);
static_assert(!CanRecv<SendChan<int>> && !CanTryRecv<SendChan<int>>);
static_assert(CanRecv<RecvChan<int>> && CanTryRecv<RecvChan<int>>);
static_assert(!CanSend<RecvChan<int>> && !CanTrySend<RecvChan<int>> && !CanClose<RecvChan<int>>);
static_assert(std::is_convertible_v<Chan<int>, SendChan<int>>);
static_assert(std::is_convertible_v<Chan<int>, RecvChan<int>>);
static_assert(!std::is_convertible_v<SendChan<int>, RecvChan<int>>);
static_assert(!std::is_convertible_v<RecvChan<int>, SendChan<int>>);
static_assert(!std::is_convertible_v<RecvChan<int>, Chan<int>>);
static_assert(!std::is_convertible_v<Chan<int>, Chan<long>>);

TEST(Channel, DirectionalViewsReferToTheSameChannel) {
  Chan<int> ch = make_chan<int>(1);
  SendChan<int> s = ch;
  RecvChan<int> r = ch;
  EXPECT_TRUE(s == ch && r == ch);
  EXPECT_TRUE(s.try_send(7));
  EXPECT_EQ(r.len(), 1u);
  EXPECT_EQ(*r.try_recv(), 7);
  EXPECT_FALSE(Chan<int>() == ch);
}

// --- Basics.

TEST(Channel, LenAndCap) {
  Chan<int> ch = make_chan<int>(3);
  EXPECT_EQ(ch.cap(), 3u);
  EXPECT_EQ(ch.len(), 0u);
  EXPECT_TRUE(ch.try_send(1));
  EXPECT_TRUE(ch.try_send(2));
  EXPECT_EQ(ch.len(), 2u);
  EXPECT_EQ(make_chan<int>().cap(), 0u);
  EXPECT_EQ(Chan<int>().cap(), 0u);
  EXPECT_TRUE(Chan<int>().nil());
}

TEST(Channel, TrySendAndTryRecvNeverBlock) {
  Chan<int> unbuffered = make_chan<int>();
  EXPECT_FALSE(unbuffered.try_send(1));  // no receiver waits
  auto none = unbuffered.try_recv();
  EXPECT_FALSE(none);
  EXPECT_FALSE(none.closed);
  Chan<int> buffered = make_chan<int>(1);
  EXPECT_TRUE(buffered.try_send(1));
  EXPECT_FALSE(buffered.try_send(2));  // full
  EXPECT_EQ(*buffered.try_recv(), 1);
  buffered.close();
  auto closed = buffered.try_recv();
  EXPECT_FALSE(closed);
  EXPECT_TRUE(closed.closed);
}

TEST(Channel, SendOnClosedThrows) {
  Chan<int> ch = make_chan<int>(1);
  ch.close();
  EXPECT_THROW(ch.try_send(1), ChannelClosed);
  EXPECT_THROW(ch.close(), ChannelClosed);
  EXPECT_THROW(Chan<int>().close(), ChannelClosed);
}

Task<int> blocking_send_on_closed(Chan<int> ch) {
  try {
    co_await ch.send(1);
  } catch (const ChannelClosed& e) {
    co_return std::string(e.what()) == "send on closed channel" ? 1 : 2;
  }
  co_return 0;
}

TEST(Channel, BlockingSendOnClosedThrows) {
  Chan<int> ch = make_chan<int>();
  ch.close();
  EXPECT_EQ(run(blocking_send_on_closed(ch), with_procs(2)), 1);
  static_assert(std::is_base_of_v<std::logic_error, ChannelClosed>);
}

Task<std::vector<int>> drain(Chan<int> ch) {
  std::vector<int> got;
  while (auto v = co_await ch.recv()) got.push_back(*v);
  auto last = co_await ch.recv_ok();
  if (!last.ok && last.value == 0) got.push_back(-1);  // Go's zero value, ok false
  co_return got;
}

TEST(Channel, ReceiversDrainTheBufferThenSeeClosed) {
  Chan<int> ch = make_chan<int>(4);
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(ch.try_send(i));
  ch.close();
  EXPECT_EQ(run(drain(ch), with_procs(2)), (std::vector<int>{1, 2, 3, -1}));
}

// --- FIFO.

Task<void> produce(SendChan<long> out, long n, bool close_after) {
  for (long i = 0; i < n; ++i) co_await out.send(i);
  if (close_after) out.close();
}

Task<bool> consume_in_order(RecvChan<long> in, long n) {
  long expected = 0;
  while (auto v = co_await in.recv()) {
    if (*v != expected++) co_return false;
  }
  co_return expected == n;
}

Task<bool> fifo_through(long capacity, long n) {
  Chan<long> ch = make_chan<long>(static_cast<std::size_t>(capacity));
  go(produce(ch, n, true));
  co_return co_await consume_in_order(ch, n);
}

TEST(Channel, FifoThroughBufferedChannel) {
  const long n = test::scaled(200000);
  for (long capacity : {1L, 7L, 128L}) {
    EXPECT_TRUE(run(fifo_through(capacity, n), with_procs(4))) << "capacity " << capacity;
  }
}

Task<void> relay(RecvChan<long> in, SendChan<long> out) {
  while (auto v = co_await in.recv()) co_await out.send(*v);
  out.close();
}

Task<bool> fifo_through_chain(int links, long n) {
  Chan<long> first = make_chan<long>();
  Chan<long> last = first;
  for (int i = 0; i < links; ++i) {
    Chan<long> next = make_chan<long>();
    go(relay(last, next));
    last = next;
  }
  go(produce(first, n, true));
  co_return co_await consume_in_order(last, n);
}

TEST(Channel, FifoThroughChainOfUnbufferedChannels) {
  EXPECT_TRUE(run(fifo_through_chain(50, test::scaled(20000)), with_procs(4)));
}

Task<void> record_recv(Chan<int> ch, std::vector<int>* got, int me) {
  auto v = co_await ch.recv();
  (*got)[static_cast<std::size_t>(me)] = v ? *v : -1;
}

Task<void> record_send(Chan<int> ch, int me) { co_await ch.send(me); }

// With one P the goroutines park in the order they are started (each runs
// from runnext as soon as main yields), so the waiter queues' order is known.
Task<bool> waiters_are_served_in_fifo_order() {
  constexpr int kWaiters = 10;
  Chan<int> ch = make_chan<int>();
  std::vector<int> got(kWaiters, -2);
  for (int i = 0; i < kWaiters; ++i) {
    go(record_recv(ch, &got, i));
    co_await yield();
  }
  for (int i = 0; i < kWaiters; ++i) co_await ch.send(100 + i);
  for (int i = 0; i < 3; ++i) co_await yield();
  bool ok = true;
  for (int i = 0; i < kWaiters; ++i) ok = ok && got[static_cast<std::size_t>(i)] == 100 + i;
  for (int i = 0; i < kWaiters; ++i) {
    go(record_send(ch, i));
    co_await yield();
  }
  for (int i = 0; i < kWaiters; ++i) {
    auto v = co_await ch.recv();
    ok = ok && v && *v == i;
  }
  co_return ok;
}

TEST(Channel, WaitersAreServedInFifoOrder) {
  EXPECT_TRUE(run(waiters_are_served_in_fifo_order(), with_procs(1)));
}

// --- Close.

Task<int> recv_expecting_closed(Chan<int> ch, std::atomic<long>* started) {
  started->fetch_add(1);
  auto v = co_await ch.recv();
  co_return v ? 0 : 1;
}

Task<int> send_expecting_throw(Chan<int> ch, std::atomic<long>* started) {
  started->fetch_add(1);
  try {
    co_await ch.send(1);
  } catch (const ChannelClosed&) {
    co_return 1;
  }
  co_return 0;
}

Task<int> close_wakes_all(bool receivers, int n) {
  Chan<int> ch = make_chan<int>();
  std::atomic<long> started{0};
  std::vector<JoinHandle<int>> waiters;
  for (int i = 0; i < n; ++i) {
    waiters.push_back(spawn(receivers ? recv_expecting_closed(ch, &started)
                                      : send_expecting_throw(ch, &started)));
  }
  co_await test::yield_until_at_least(started, n);
  for (int i = 0; i < 20; ++i) co_await yield();  // let most of them park
  ch.close();
  int woken = 0;
  for (auto& w : waiters) woken += co_await w;
  co_return woken;
}

TEST(Channel, CloseWakesAllReceivers) {
  EXPECT_EQ(run(close_wakes_all(true, 100), with_procs(4)), 100);
}

TEST(Channel, CloseWakesAllSenders) {
  EXPECT_EQ(run(close_wakes_all(false, 100), with_procs(4)), 100);
}

Task<bool> try_recv_sees_value_or_closed(Chan<int> ch) {
  auto r = ch.try_recv();
  co_return r.value.has_value() || r.closed;
}

// Go's TestNonblockRecvRace: a channel holding a value is closed and
// drained while a non-blocking receive runs; that receive must see the value
// or the close, never "not ready".
Task<long> nonblocking_recv_racing_close(long rounds) {
  long bad = 0;
  for (long i = 0; i < rounds; ++i) {
    Chan<int> ch = make_chan<int>(1);
    co_await ch.send(1);
    auto racer = spawn(try_recv_sees_value_or_closed(ch));
    ch.close();
    (void)ch.try_recv();
    if (!co_await racer) ++bad;
  }
  co_return bad;
}

TEST(Channel, NonBlockingRecvRacingClose) {
  EXPECT_EQ(run(nonblocking_recv_racing_close(10000), with_procs(4)), 0);
}

// --- Ranging: the receive loop and goro::for_each.

// `while (auto v = co_await ch.recv())` over every kind of handle, and the
// recv_ok() form, which converts to its `ok`.
Task<std::vector<std::string>> range_every_handle(Chan<std::string> unbuffered,
                                                  Chan<std::string> buffered) {
  go(
      [](SendChan<std::string> a, SendChan<std::string> b) -> Task<void> {
        for (const char* s : {"a", "b", "c"}) co_await a.send(s);
        a.close();
        for (const char* s : {"d", "e"}) co_await b.send(s);
        b.close();
      },
      unbuffered, buffered);
  std::vector<std::string> got;
  const Chan<std::string>& as_const = unbuffered;
  while (auto v = co_await as_const.recv()) got.push_back(*v);
  RecvChan<std::string> view = buffered;
  while (auto r = co_await view.recv_ok()) got.push_back(r.value);
  got.push_back(std::to_string(view.len()));
  co_return got;
}

TEST(Channel, ReceiveLoopConditionRangesUntilClosed) {
  EXPECT_EQ(run(range_every_handle(make_chan<std::string>(), make_chan<std::string>(2))),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "0"}));
  static_assert(std::is_constructible_v<bool, RecvResult<int>>);
  static_assert(!std::is_convertible_v<RecvResult<int>, bool>);
}

Task<void> send_range(SendChan<int> out, int n) {
  for (int i = 0; i < n; ++i) co_await out.send(i);
  out.close();
}

Task<std::vector<int>> for_each_forms(std::size_t capacity) {
  std::vector<int> got;
  // A plain callable.
  Chan<int> plain = make_chan<int>(capacity);
  go(send_range(plain, 3));
  co_await for_each(plain, [&got](int v) { got.push_back(v); });
  // A body returning Task<void>, awaited before the next receive: it
  // blocks on a channel of its own.
  Chan<int> tasks = make_chan<int>(capacity);
  Chan<int> echo = make_chan<int>();
  go(send_range(tasks, 3));
  JoinHandle<void> echoer = spawn(
      [](Chan<int> echo) -> Task<void> {
        while (auto v = co_await echo.recv()) co_await echo.send(*v * 10);
      },
      echo);
  // Named, not a temporary in the co_await: g++ 12 would destroy a
  // temporary closure twice, releasing its `echo` twice (for_each.hpp).
  auto body = [&got, echo](int v) -> Task<void> {
    co_await echo.send(v);
    auto back = co_await echo.recv();
    got.push_back(*back);
  };
  co_await for_each(RecvChan<int>(tasks), body);
  echo.close();
  co_await echoer;  // ends before main does: nothing is left for the shutdown
  // bool and Task<bool>: false stops, leaving the rest in the channel.
  Chan<int> stops = make_chan<int>(10);
  for (int i = 0; i < 10; ++i) stops.try_send(i);
  stops.close();
  co_await for_each(stops, [&got](int v) {
    got.push_back(100 + v);
    return v < 1;
  });
  co_await for_each(stops, [&got](int v) -> Task<bool> {
    got.push_back(200 + v);
    co_return v < 3;
  });
  got.push_back(static_cast<int>(stops.len()));
  co_return got;
}

TEST(ForEach, CallsTheBodyForEveryValueUntilClosedOrFalse) {
  const std::vector<int> expected{0, 1, 2, 0, 10, 20, 100, 101, 202, 203, 6};
  EXPECT_EQ(run(for_each_forms(0)), expected);
  EXPECT_EQ(run(for_each_forms(4)), expected);
}

Task<int> for_each_body_throws() {
  Chan<int> ch = make_chan<int>(4);
  for (int i = 0; i < 4; ++i) ch.try_send(i);
  int seen = 0;
  try {
    co_await for_each(ch, [&seen](int v) {
      ++seen;
      if (v == 1) throw std::runtime_error("body failed");
    });
  } catch (const std::runtime_error&) {
    co_return seen * 10 + static_cast<int>(ch.len());
  }
  co_return -1;
}

TEST(ForEach, ExceptionFromTheBodyPropagatesAndLeavesTheChannel) {
  EXPECT_EQ(run(for_each_body_throws()), 22);
}

Task<int> for_each_until_cancelled() {
  auto [ctx, cancel] = with_cancel(background());
  Chan<int> ch = make_chan<int>();
  int seen = 0;
  // The body cancels after the second value; the producer never closes.
  go(
      [](Chan<int> ch) -> Task<void> {
        for (int i = 0;; ++i) co_await ch.send(i);
      },
      ch);
  absl::Status status = co_await for_each(ctx, ch, [&seen, &cancel](int) {
    if (++seen == 2) cancel();
  });
  // Closed and drained: OK. A context already done: its error at once.
  Chan<int> closed = make_chan<int>(1);
  closed.try_send(7);
  closed.close();
  int closed_seen = 0;
  absl::Status drained =
      co_await for_each(background(), closed, [&closed_seen](int v) { closed_seen += v; });
  absl::Status already = co_await for_each(ctx, RecvChan<int>(closed), [](int) {});
  const bool ok = status.code() == absl::StatusCode::kCancelled && seen == 2 && drained.ok() &&
                  closed_seen == 7 && already.code() == absl::StatusCode::kCancelled;
  co_return ok ? 0 : 1;
}

TEST(ForEach, ContextFormStopsWithTheContextsError) {
  test::Watchdog watchdog("ForEach.ContextFormStopsWithTheContextsError");
  EXPECT_EQ(run(for_each_until_cancelled()), 0);
}

// --- Threads outside the runtime: try_send, try_recv, close, len, cap.

// One outside thread sends with try_send and another receives with
// try_recv, while goroutines send and receive on the same channel; the
// last sender to finish (goroutine or thread) closes it. Every value
// arrives exactly once.
struct OutsideMix {
  Chan<long> ch;
  long per_sender;
  std::atomic<int> senders_left{3};
  std::atomic<long> received{0};
  std::atomic<long> sum{0};
  std::atomic<long> len_out_of_range{0};

  void finish_sender() {
    if (senders_left.fetch_sub(1) == 1) ch.close();
  }
  void take(long v) {
    received.fetch_add(1);
    sum.fetch_add(v);
  }
};

void outside_sender(OutsideMix* m) {
  for (long i = 0; i < m->per_sender;) {
    if (m->ch.try_send(i)) {
      ++i;
    } else {
      std::this_thread::yield();  // full, or no receiver waits
    }
    if (m->ch.len() > m->ch.cap()) m->len_out_of_range.fetch_add(1);
  }
  m->finish_sender();
}

void outside_receiver(OutsideMix* m) {
  for (;;) {
    auto r = m->ch.try_recv();
    if (r) {
      m->take(*r);
    } else if (r.closed) {
      return;
    } else {
      std::this_thread::yield();
    }
  }
}

Task<void> goroutine_sender(OutsideMix& m, long base) {
  for (long i = 0; i < m.per_sender; ++i) co_await m.ch.send(base + i);
  m.finish_sender();
}

Task<void> goroutine_receiver(OutsideMix& m) {
  while (auto v = co_await m.ch.recv()) m.take(*v);
}

Task<void> mix_with_outside_threads(OutsideMix& m) {
  WaitGroup wg;
  std::thread sender(outside_sender, &m);
  std::thread receiver(outside_receiver, &m);
  wg.go(goroutine_sender, std::ref(m), 1'000'000L);
  wg.go(goroutine_sender, std::ref(m), 2'000'000L);
  wg.go(goroutine_receiver, std::ref(m));
  wg.go(goroutine_receiver, std::ref(m));
  co_await wg.wait();  // the receivers end once the channel is closed
  co_await goro::blocking([&] {
    sender.join();
    receiver.join();
  });
}

TEST(Channel, TrySendAndTryRecvFromOutsideThreadsWhileGoroutinesUseTheChannel) {
  test::Watchdog watchdog(
      "Channel.TrySendAndTryRecvFromOutsideThreadsWhileGoroutinesUseTheChannel");
  const long n = test::scaled(20000, 2000);
  for (std::size_t capacity : {0, 4}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    OutsideMix m{make_chan<long>(capacity), n};
    run(mix_with_outside_threads(m));
    EXPECT_EQ(m.received.load(), 3 * n);
    // Values 0..n-1 from the thread, base + 0..n-1 from each goroutine.
    EXPECT_EQ(m.sum.load(), 3 * (n * (n - 1) / 2) + 3'000'000L * n);
    EXPECT_EQ(m.len_out_of_range.load(), 0);
  }
}

// --- Nil channels.

Task<void> recv_from_nil(Chan<int> ch, std::atomic<bool>* finished) {
  (void)co_await ch.recv();
  finished->store(true);
}

Task<void> send_to_nil(Chan<int> ch, std::atomic<bool>* finished) {
  co_await ch.send(1);
  finished->store(true);
}

Task<bool> nil_channel_blocks_forever(std::atomic<bool>* finished) {
  Chan<int> nil;
  go(recv_from_nil(nil, finished));
  go(send_to_nil(nil, finished));
  for (int i = 0; i < 1000; ++i) co_await yield();
  co_return !nil.try_send(1) && !nil.try_recv() && !nil.try_recv().closed && nil.len() == 0;
}

TEST(Channel, NilChannelBlocksForever) {
  std::atomic<bool> finished{false};
  EXPECT_TRUE(run(nil_channel_blocks_forever(&finished), with_procs(2)));
  EXPECT_FALSE(finished.load());  // both were destroyed, still parked, at shutdown
}

// --- Element types.

Task<void> relay_ptr(Chan<std::unique_ptr<int>> ch, std::unique_ptr<int> p) {
  co_await ch.send(std::move(p));
}

Task<bool> move_only_elements() {
  Chan<std::unique_ptr<int>> unbuffered = make_chan<std::unique_ptr<int>>();
  Chan<std::unique_ptr<int>> buffered = make_chan<std::unique_ptr<int>>(2);
  auto p = std::make_unique<int>(5);
  bool ok = !unbuffered.try_send(std::move(p)) && p != nullptr;  // not moved on failure
  ok = ok && buffered.try_send(std::move(p)) && p == nullptr;
  co_await buffered.send(std::make_unique<int>(6));
  auto a = co_await buffered.recv();
  auto b = co_await buffered.recv();
  ok = ok && a && **a == 5 && b && **b == 6;
  go(relay_ptr(unbuffered, std::make_unique<int>(7)));
  auto c = co_await unbuffered.recv();
  co_return ok&& c&&** c == 7;
}

TEST(Channel, MoveOnlyElements) { EXPECT_TRUE(run(move_only_elements(), with_procs(2))); }

struct Empty {};

Task<void> send_empties(Chan<Empty> ch, int n) {
  for (int i = 0; i < n; ++i) co_await ch.send(Empty{});
  ch.close();
}

Task<int> zero_size_elements() {
  Chan<Empty> buffered = make_chan<Empty>(1000);
  for (int i = 0; i < 1000; ++i) co_await buffered.send(Empty{});
  int n = buffered.len() == 1000 ? 0 : -100000;
  while (buffered.try_recv()) ++n;
  Chan<Empty> unbuffered = make_chan<Empty>();
  go(send_empties(unbuffered, 500));
  while (co_await unbuffered.recv()) ++n;
  co_return n;
}

TEST(Channel, ZeroSizeElements) { EXPECT_EQ(run(zero_size_elements(), with_procs(2)), 1500); }

Task<void> guard_sender(Chan<test::Guard> ch, test::LifeCounts* counts, int n) {
  for (int i = 0; i < n; ++i) co_await ch.send(test::Guard(*counts));
}

Task<void> leave_values_buffered(test::LifeCounts* counts) {
  Chan<test::Guard> ch = make_chan<test::Guard>(8);
  co_await guard_sender(ch, counts, 5);
  (void)co_await ch.recv();
}

TEST(Channel, BufferedValuesAreDestroyedWithTheChannel) {
  test::LifeCounts counts;
  run(leave_values_buffered(&counts), with_procs(2));
  EXPECT_EQ(counts.alive(), 0);
}

// --- Stress.

Task<void> sum_consumer(RecvChan<long> in, SendChan<long> sums) {
  long sum = 0;
  while (auto v = co_await in.recv()) sum += *v;
  co_await sums.send(sum);
}

// Go's TestMultiConsumer shape: 23 consumers share one channel.
Task<long> many_consumers(std::size_t capacity, long items, int consumers) {
  Chan<long> work = make_chan<long>(capacity);
  Chan<long> sums = make_chan<long>();
  for (int i = 0; i < consumers; ++i) go(sum_consumer(work, sums));
  for (long i = 1; i <= items; ++i) co_await work.send(i);
  work.close();
  long total = 0;
  for (int i = 0; i < consumers; ++i) total += *co_await sums.recv();
  co_return total;
}

TEST(Channel, ManyConsumersSumExactly) {
  const long items = test::scaled(271828);
  for (std::size_t capacity : {std::size_t{0}, std::size_t{46}}) {
    EXPECT_EQ(run(many_consumers(capacity, items, 23), with_procs(4)), items * (items + 1) / 2)
        << "capacity " << capacity;
  }
}

Task<void> generate(SendChan<int> out) {
  for (int i = 2;; ++i) co_await out.send(i);
}

Task<void> filter(RecvChan<int> in, SendChan<int> out, int prime) {
  for (;;) {
    int v = *co_await in.recv();
    if (v % prime != 0) co_await out.send(v);
  }
}

// Go's concurrent prime sieve. The goroutines stay blocked at the end and
// are destroyed at shutdown.
Task<std::vector<int>> prime_sieve(int count) {
  std::vector<int> primes;
  Chan<int> ch = make_chan<int>();
  go(generate(ch));
  for (int i = 0; i < count; ++i) {
    int prime = *co_await ch.recv();
    primes.push_back(prime);
    Chan<int> next = make_chan<int>();
    go(filter(ch, next, prime));
    ch = next;
  }
  co_return primes;
}

TEST(Channel, PrimeSieve) {
  const std::vector<int> primes = run(prime_sieve(200), with_procs(4));
  std::vector<int> expected;
  for (int n = 2; expected.size() < 200; ++n) {
    bool prime = true;
    for (int d = 2; d * d <= n; ++d) prime = prime && n % d != 0;
    if (prime) expected.push_back(n);
  }
  EXPECT_EQ(primes, expected);
}

// A power-series pipeline in the style of Go's test/chan/powser: series are
// streams of coefficients. ones = 1/(1-x); split copies a stream into two;
// mul is the Cauchy product; 1/(1-x)^2 = sum (n+1) x^n, and its product
// with ones again is sum (n+1)(n+2)/2 x^n.
Task<void> ones(SendChan<long> out, int n) {
  for (int i = 0; i < n; ++i) co_await out.send(1);
  out.close();
}

Task<void> split(RecvChan<long> in, SendChan<long> a, SendChan<long> b) {
  while (auto v = co_await in.recv()) {
    co_await a.send(*v);
    co_await b.send(*v);
  }
  a.close();
  b.close();
}

Task<void> mul(RecvChan<long> f, RecvChan<long> g, SendChan<long> out) {
  std::vector<long> fs;
  std::vector<long> gs;
  for (;;) {
    auto a = co_await f.recv();
    auto b = co_await g.recv();
    if (!a || !b) break;
    fs.push_back(*a);
    gs.push_back(*b);
    long c = 0;
    for (std::size_t i = 0; i < fs.size(); ++i) c += fs[i] * gs[fs.size() - 1 - i];
    co_await out.send(c);
  }
  out.close();
}

Task<bool> power_series(int terms) {
  Chan<long> src = make_chan<long>();
  Chan<long> a = make_chan<long>(1);
  Chan<long> b = make_chan<long>(1);
  Chan<long> squared = make_chan<long>();
  Chan<long> more_ones = make_chan<long>();
  Chan<long> cubed = make_chan<long>();
  go(ones(src, terms));
  go(split(src, a, b));
  go(mul(a, b, squared));
  go(ones(more_ones, terms));
  go(mul(squared, more_ones, cubed));
  bool ok = true;
  long n = 0;
  while (auto c = co_await cubed.recv()) {
    ok = ok && *c == (n + 1) * (n + 2) / 2;
    ++n;
  }
  co_return ok&& n == terms;
}

TEST(Channel, PowerSeriesPipeline) {
  EXPECT_TRUE(run(power_series(static_cast<int>(test::scaled(2000, 200))), with_procs(4)));
}

}  // namespace
}  // namespace goro
