// Tests of goro::select against Go's select semantics: ready cases, the
// default case, nil cases, closed channels, duplicate channels, a select
// never matching itself, fairness, and stress runs with selects on both
// sides (no lost or double wakeups).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using test::with_procs;

Task<bool> picks_the_ready_case() {
  Chan<int> ints = make_chan<int>(1);
  Chan<std::string> strings = make_chan<std::string>(1);
  Chan<std::unique_ptr<int>> ptrs = make_chan<std::unique_ptr<int>>(1);
  co_await strings.send("hi");
  auto r = co_await select(recv_from(ints), recv_from(strings), send_to(ptrs, nullptr));
  bool ok = (r.index() == 1 || r.index() == 2);
  if (r.index() == 1) ok = ok && r.get<1>() == "hi" && r.ok<1>() && !r.ok<0>();
  if (r.index() == 2) ok = ok && ptrs.len() == 1;
  auto d = co_await select(recv_from(ints), default_case());
  ok = ok && d.index() == 1;
  co_return ok;
}

TEST(Select, PicksTheReadyCase) { EXPECT_TRUE(run(picks_the_ready_case(), with_procs(2))); }

Task<bool> nil_cases() {
  Chan<int> nil;
  Chan<int> ready = make_chan<int>(1);
  auto d = co_await select(recv_from(nil), send_to(nil, 1), default_case());
  bool ok = d.index() == 2;
  for (int i = 0; i < 100; ++i) {
    co_await ready.send(i);
    auto r = co_await select(recv_from(nil), recv_from(ready), send_to(nil, 2));
    ok = ok && r.index() == 1 && r.get<1>() == i;
  }
  co_return ok;
}

TEST(Select, NilCaseIsNeverChosen) { EXPECT_TRUE(run(nil_cases(), with_procs(2))); }

Task<bool> closed_channels() {
  Chan<int> in = make_chan<int>();
  in.close();
  auto r = co_await select(recv_from(in), default_case());
  bool ok = r.index() == 0 && !r.get<0>().has_value() && !r.ok<0>();
  Chan<int> out = make_chan<int>();
  out.close();
  try {
    (void)co_await select(send_to(out, 1), default_case());
    ok = false;
  } catch (const ChannelClosed&) {
  }
  co_return ok;
}

TEST(Select, ReceiveFromClosedFiresAndSendToClosedThrows) {
  EXPECT_TRUE(run(closed_channels(), with_procs(2)));
}

Task<std::size_t> select_two_blocking(Chan<int> a, Chan<std::string> b) {
  auto r = co_await select(recv_from(a), recv_from(b));
  if (r.index() == 0) co_return r.get<0>() ? 0 : 10;
  co_return r.get<1>() ? 1 : 11;
}

Task<std::size_t> select_send_blocking(Chan<int> a) {
  try {
    (void)co_await select(send_to(a, 1), recv_from(Chan<int>()));
  } catch (const ChannelClosed&) {
    co_return 1;
  }
  co_return 0;
}

Task<bool> blocked_select_wakes() {
  Chan<int> a = make_chan<int>();
  Chan<std::string> b = make_chan<std::string>();
  auto first = spawn(select_two_blocking(a, b));
  co_await b.send("x");
  bool ok = co_await first == 1;
  auto second = spawn(select_two_blocking(a, b));
  co_await a.send(3);
  ok = ok && co_await second == 0;
  auto third = spawn(select_two_blocking(a, b));
  for (int i = 0; i < 10; ++i) co_await yield();
  a.close();
  ok = ok && co_await third == 10;
  Chan<int> c = make_chan<int>();
  auto fourth = spawn(select_send_blocking(c));
  for (int i = 0; i < 10; ++i) co_await yield();
  c.close();
  ok = ok && co_await fourth == 1;
  co_return ok;
}

TEST(Select, BlockedSelectIsWokenBySendRecvAndClose) {
  EXPECT_TRUE(run(blocked_select_wakes(), with_procs(2)));
}

Task<bool> nonblocking_select_racer(Chan<int> c1, Chan<int> c2) {
  auto r = co_await select(recv_from(c1), recv_from(c2), default_case());
  co_return r.index() != 2;
}

// Go's TestNonblockSelectRace: one of two channels always holds a value
// while the select runs, so it must never take the default.
Task<long> never_sees_smeared_state(long rounds) {
  long bad = 0;
  for (long i = 0; i < rounds; ++i) {
    Chan<int> c1 = make_chan<int>(1);
    Chan<int> c2 = make_chan<int>(1);
    co_await c1.send(1);
    auto racer = spawn(nonblocking_select_racer(c1, c2));
    co_await c2.send(1);
    (void)co_await select(recv_from(c1), recv_from(c2));
    if (!co_await racer) ++bad;
  }
  co_return bad;
}

TEST(Select, NeverSeesSmearedState) {
  EXPECT_EQ(run(never_sees_smeared_state(10000), with_procs(4)), 0);
}

Task<long> self_select(Chan<int> c, int me, long rounds) {
  long self_matches = 0;
  for (long i = 0; i < rounds; ++i) {
    auto r = co_await select(send_to(c, me), recv_from(c));
    if (r.index() == 1 && r.get<1>() == me) ++self_matches;
  }
  co_return self_matches;
}

// Go's TestSelfSelect: selects that send and receive on one unbuffered
// channel pair up with each other, never with themselves.
Task<long> never_matches_itself(long rounds) {
  Chan<int> c = make_chan<int>();
  auto a = spawn(self_select(c, 1, rounds));
  auto b = spawn(self_select(c, 2, rounds));
  co_return co_await a + co_await b;
}

TEST(Select, SendAndRecvOnOneUnbufferedChannelNeverMatchesItself) {
  EXPECT_EQ(run(never_matches_itself(test::scaled(20000)), with_procs(4)), 0);
}

Task<void> send_n(SendChan<int> c, long n) {
  for (long i = 0; i < n; ++i) co_await c.send(1);
}

Task<long> duplicate_channels(long n) {
  Chan<int> c = make_chan<int>();
  Chan<int> d = make_chan<int>(3);
  go(send_n(c, n));
  go(send_n(d, n));
  long got = 0;
  for (long i = 0; i < 2 * n; ++i) {
    auto r = co_await select(recv_from(c), recv_from(d), recv_from(c), recv_from(d));
    switch (r.index()) {
      case 0:
        got += *r.get<0>();
        break;
      case 1:
        got += *r.get<1>();
        break;
      case 2:
        got += *r.get<2>();
        break;
      case 3:
        got += *r.get<3>();
        break;
    }
  }
  co_return got;
}

TEST(Select, DuplicateChannelsInOneSelect) {
  const long n = test::scaled(20000);
  EXPECT_EQ(run(duplicate_channels(n), with_procs(4)), 2 * n);
}

// Go's TestSelectFairness: both cases are always ready; each must win
// about half of the time. 10000 rounds: the standard deviation is 50, the
// bound 20 of them, which a fair coin misses with probability < 1e-80.
Task<std::vector<long>> fairness(long rounds, int channels) {
  std::vector<Chan<int>> cs;
  for (int i = 0; i < channels; ++i) cs.push_back(make_chan<int>(1));
  std::vector<long> wins(static_cast<std::size_t>(channels), 0);
  for (long i = 0; i < rounds; ++i) {
    for (auto& c : cs) (void)c.try_send(1);
    std::size_t index = 0;
    if (channels == 2) {
      index = (co_await select(recv_from(cs[0]), recv_from(cs[1]))).index();
    } else {
      index =
          (co_await select(recv_from(cs[0]), recv_from(cs[1]), recv_from(cs[2]), recv_from(cs[3])))
              .index();
    }
    ++wins[index];
  }
  co_return wins;
}

TEST(Select, IsFair) {
  const auto two = run(fairness(10000, 2), with_procs(2));
  EXPECT_GT(two[0], 4000);
  EXPECT_GT(two[1], 4000);
  const auto four = run(fairness(10000, 4), with_procs(2));
  for (long w : four) EXPECT_GT(w, 1500);  // mean 2500, sd 43
}

Task<long> select_sender(Chan<int> a, Chan<int> b, long n) {
  for (long i = 0; i < n; ++i) (void)co_await select(send_to(a, 1), send_to(b, 1));
  co_return n;
}

Task<long> select_receiver(Chan<int> a, Chan<int> b, Chan<int> stop) {
  long got = 0;
  for (;;) {
    auto r = co_await select(recv_from(a), recv_from(b), recv_from(stop));
    if (r.index() == 2) {
      // Every sender has finished, but select picks among ready cases at
      // random: values may still sit in a's buffer. Take them.
      while (auto left = a.try_recv()) got += *left.value;
      co_return got;
    }
    got += r.index() == 0 ? *r.get<0>() : *r.get<1>();
  }
}

// Selects on both sides of two channels: every value sent is received
// exactly once (no lost or doubled wakeups), and nobody hangs.
Task<bool> select_vs_select(std::size_t capacity, long n, int senders, int receivers) {
  Chan<int> a = make_chan<int>(capacity);
  Chan<int> b = make_chan<int>();
  Chan<int> stop = make_chan<int>();
  std::vector<JoinHandle<long>> sent;
  std::vector<JoinHandle<long>> got;
  for (int i = 0; i < receivers; ++i) got.push_back(spawn(select_receiver(a, b, stop)));
  for (int i = 0; i < senders; ++i) sent.push_back(spawn(select_sender(a, b, n)));
  long total_sent = 0;
  for (auto& s : sent) total_sent += co_await s;
  stop.close();
  long total_got = 0;
  for (auto& g : got) total_got += co_await g;
  co_return total_sent == total_got&& total_sent == senders* n;
}

TEST(Select, SelectsOnBothSidesLoseAndDoubleNothing) {
  test::Watchdog watchdog("select_vs_select");
  const long n = test::scaled(20000);
  EXPECT_TRUE(run(select_vs_select(0, n, 4, 3), with_procs(4)));
  EXPECT_TRUE(run(select_vs_select(2, n, 3, 4), with_procs(4)));
}

Task<void> block_on_nil_select(std::atomic<bool>* finished) {
  (void)co_await select(recv_from(Chan<int>()));
  finished->store(true);
}

Task<bool> only_nil_cases_block(std::atomic<bool>* finished) {
  go(block_on_nil_select(finished));
  for (int i = 0; i < 1000; ++i) co_await yield();
  co_return !finished->load();
}

TEST(Select, OnlyNilCasesBlocksForever) {
  std::atomic<bool> finished{false};
  EXPECT_TRUE(run(only_nil_cases_block(&finished), with_procs(2)));
  EXPECT_FALSE(finished.load());
}

}  // namespace
}  // namespace goro
