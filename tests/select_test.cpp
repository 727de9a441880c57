// Tests of goro::select against Go's select semantics: ready cases, the
// default case, nil cases, closed channels, duplicate channels, a select
// never matching itself, fairness, and stress runs with selects on both
// sides (no lost or double wakeups); the same for the form with a handler
// per case (each handler runs exactly once, only for the chosen case) and
// for select_recv / select_send over a run-time list of channels.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
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

// --- Select with handlers ------------------------------------------------------

// Counts the runs of each handler of a four-case select.
struct HandlerRuns {
  std::array<long, 4> runs{};
  [[nodiscard]] long total() const { return runs[0] + runs[1] + runs[2] + runs[3]; }
};

// Each round makes a random subset of the cases ready; exactly one handler
// runs, once, and it is a ready case's (or the default's when none is).
Task<bool> handlers_run_once(long rounds) {
  Chan<int> in = make_chan<int>(1);
  Chan<std::string> words = make_chan<std::string>(1);
  Chan<int> out = make_chan<int>(1);
  bool ok = true;
  std::uint64_t seed = 12345;
  HandlerRuns all;
  for (long i = 0; i < rounds; ++i) {
    const auto bits = static_cast<unsigned>(detail::next_random(seed) & 7);
    if ((bits & 1) != 0) (void)in.try_send(static_cast<int>(i));
    if ((bits & 2) != 0) (void)words.try_send("w");
    const bool out_ready = (bits & 4) != 0;
    if (!out_ready) (void)out.try_send(0);  // full: the send case blocks
    HandlerRuns now;
    const int which = co_await select(on(recv_from(in),
                                         [&](std::optional<int> v) {
                                           ++now.runs[0];
                                           ok = ok && v == static_cast<int>(i);
                                           return 0;
                                         }),
                                      on(recv_from(words),
                                         [&](std::optional<std::string> w) {
                                           ++now.runs[1];
                                           ok = ok && w == "w";
                                           return 1;
                                         }),
                                      on(send_to(out, 7),
                                         [&] {
                                           ++now.runs[2];
                                           return 2;
                                         }),
                                      otherwise([&] {
                                        ++now.runs[3];
                                        return 3;
                                      }));
    ok = ok && now.total() == 1 && now.runs[static_cast<std::size_t>(which)] == 1;
    ok = ok && (which == 3) == (bits == 0);
    if (which == 0) ok = ok && (bits & 1) != 0;
    if (which == 1) ok = ok && (bits & 2) != 0;
    if (which == 2) ok = ok && out_ready && out.len() == 1;
    // Empty everything for the next round.
    (void)in.try_recv();
    (void)words.try_recv();
    (void)out.try_recv();
    for (std::size_t k = 0; k < 4; ++k) all.runs[k] += now.runs[k];
  }
  // Every case was taken at some point.
  for (long r : all.runs) ok = ok && r > 0;
  co_return ok;
}

TEST(SelectWithHandlers, OnlyTheChosenCasesHandlerRunsExactlyOnce) {
  for (unsigned procs : {1U, 4U}) EXPECT_TRUE(run(handlers_run_once(4000), with_procs(procs)));
}

Task<bool> result_types() {
  Chan<int> a = make_chan<int>(1);
  co_await a.send(5);
  // int and long: long (the receive is ready: 5).
  auto sum = co_await select(on(recv_from(a), [](std::optional<int> v) { return *v; }),
                             otherwise([] { return 10L; }));
  static_assert(std::is_same_v<decltype(sum), long>);
  // A reference result decays to a value.
  std::string name = "name";
  auto copy = co_await select(on(recv_from(a), [&]() -> std::string& { return name; }),
                              otherwise([&]() -> std::string& { return name; }));
  static_assert(std::is_same_v<decltype(copy), std::string>);
  // const char* and std::string: std::string.
  auto text = co_await select(on(recv_from(a), [] { return "received"; }),
                              otherwise([] { return std::string("default"); }));
  static_assert(std::is_same_v<decltype(text), std::string>);
  // All void: void.
  int ran = 0;
  co_await select(on(recv_from(a), [&] { ran = 1; }), otherwise([&] { ran = 2; }));
  static_assert(std::is_void_v<decltype(select(otherwise([] {})).await_resume())>);
  // A move-only value reaches its handler and comes back out.
  Chan<std::unique_ptr<int>> ptrs = make_chan<std::unique_ptr<int>>(1);
  co_await ptrs.send(std::make_unique<int>(42));
  std::unique_ptr<int> p = co_await select(
      on(recv_from(ptrs), [](std::optional<std::unique_ptr<int>> v) { return std::move(*v); }));
  co_return sum == 5 && copy == "name" && text == "default" && ran == 2 && p&&* p == 42;
}

TEST(SelectWithHandlers, GivesTheHandlersCommonResultType) {
  EXPECT_TRUE(run(result_types(), with_procs(1)));
}

Task<bool> closed_gives_nullopt() {
  Chan<int> in = make_chan<int>(2);
  co_await in.send(1);
  in.close();
  std::vector<std::optional<int>> got;
  for (int i = 0; i < 3; ++i) {
    co_await select(on(recv_from(in), [&](std::optional<int> v) { got.push_back(v); }));
  }
  co_return got.size() == 3 && got[0] == 1 && !got[1].has_value() && !got[2].has_value();
}

TEST(SelectWithHandlers, ClosedChannelGivesNulloptToTheHandler) {
  EXPECT_TRUE(run(closed_gives_nullopt(), with_procs(1)));
}

Task<bool> nothing_ready_runs_otherwise() {
  Chan<int> empty = make_chan<int>();
  Chan<int> nil;
  Chan<int> full = make_chan<int>(1);
  co_await full.send(0);
  int runs = 0;
  const char* which = co_await select(on(recv_from(empty),
                                         [&] {
                                           ++runs;
                                           return "recv";
                                         }),
                                      on(send_to(full, 1),
                                         [&] {
                                           ++runs;
                                           return "send";
                                         }),
                                      on(recv_from(nil),
                                         [&] {
                                           ++runs;
                                           return "nil";
                                         }),
                                      otherwise([&] {
                                        ++runs;
                                        return "default";
                                      }));
  // One case and a default: the lock-free path.
  const int single =
      co_await select(on(recv_from(empty), [] { return 1; }), otherwise([] { return 2; }));
  co_return std::string(which) == "default" && runs == 1 && single == 2;
}

TEST(SelectWithHandlers, OtherwiseRunsWhenNoCaseIsReady) {
  EXPECT_TRUE(run(nothing_ready_runs_otherwise(), with_procs(1)));
}

Task<int> handler_select_blocking(Chan<int> a, Chan<std::string> b, std::atomic<int>* runs) {
  co_return co_await select(on(recv_from(a),
                               [&](std::optional<int> v) {
                                 runs->fetch_add(1);
                                 return v ? *v : -1;
                               }),
                            on(recv_from(b), [&](std::optional<std::string> w) {
                              runs->fetch_add(1);
                              return w ? static_cast<int>(w->size()) + 100 : -100;
                            }));
}

// A parked select runs the handler of the case that woke it, once.
Task<bool> blocked_handler_select_wakes() {
  Chan<int> a = make_chan<int>();
  Chan<std::string> b = make_chan<std::string>();
  std::atomic<int> runs{0};
  auto first = spawn(handler_select_blocking(a, b, &runs));
  co_await b.send("abc");
  bool ok = co_await first == 103;
  auto second = spawn(handler_select_blocking(a, b, &runs));
  co_await a.send(9);
  ok = ok && co_await second == 9;
  auto third = spawn(handler_select_blocking(a, b, &runs));
  for (int i = 0; i < 10; ++i) co_await yield();
  b.close();
  ok = ok && co_await third == -100;
  co_return ok&& runs.load() == 3;
}

TEST(SelectWithHandlers, ParkedSelectRunsTheHandlerOfTheCaseThatWokeIt) {
  for (unsigned procs : {1U, 4U})
    EXPECT_TRUE(run(blocked_handler_select_wakes(), with_procs(procs)));
}

Task<bool> send_to_closed_throws(std::atomic<int>* runs) {
  Chan<int> out = make_chan<int>();
  out.close();
  try {
    co_await select(on(send_to(out, 1), [&] { runs->fetch_add(1); }),
                    otherwise([&] { runs->fetch_add(1); }));
    co_return false;
  } catch (const ChannelClosed&) {
  }
  // Closed while parked.
  Chan<int> later = make_chan<int>();
  auto waiter = spawn(
      [](Chan<int> c, std::atomic<int>* r) -> Task<bool> {
        try {
          co_await select(on(send_to(c, 1), [&] { r->fetch_add(1); }));
        } catch (const ChannelClosed&) {
          co_return true;
        }
        co_return false;
      },
      later, runs);
  for (int i = 0; i < 10; ++i) co_await yield();
  later.close();
  co_return co_await waiter;
}

TEST(SelectWithHandlers, SendToAClosedChannelThrowsAndRunsNoHandler) {
  std::atomic<int> runs{0};
  EXPECT_TRUE(run(send_to_closed_throws(&runs), with_procs(2)));
  EXPECT_EQ(runs.load(), 0);
}

Task<bool> handler_exception_leaves_the_await() {
  Chan<int> a = make_chan<int>(1);
  co_await a.send(1);
  try {
    co_await select(
        on(recv_from(a), [](std::optional<int>) -> int { throw std::runtime_error("h"); }),
        otherwise([] { return 0; }));
  } catch (const std::runtime_error&) {
    co_return a.len() == 0;  // the case did run: its value was taken
  }
  co_return false;
}

TEST(SelectWithHandlers, AnExceptionFromTheHandlerLeavesTheAwait) {
  EXPECT_TRUE(run(handler_exception_leaves_the_await(), with_procs(1)));
}

// after(d), a Timer and a Ticker as cases: each fires its handler with the
// time, the other cases staying idle.
Task<bool> time_cases() {
  using std::chrono::milliseconds;
  Chan<int> never = make_chan<int>();
  const auto start = Clock::now();
  Clock::time_point fired{};
  const int a = co_await select(on(recv_from(never), [] { return 0; }),
                                on(after(milliseconds(2)), [&](Clock::time_point t) {
                                  fired = t;
                                  return 1;
                                }));
  bool ok = a == 1 && fired >= start + milliseconds(2);
  Timer timer(milliseconds(1));
  const int b =
      co_await select(on(recv_from(never), [] { return 0; }), on(timer, [] { return 2; }));
  ok = ok && b == 2 && !timer.stop();  // its fire was received
  Ticker ticker(milliseconds(1));
  int ticks = 0;
  for (int i = 0; i < 3; ++i) {
    ticks += co_await select(on(recv_from(never), [] { return 0; }),
                             on(ticker, [](Clock::time_point) { return 1; }));
  }
  ticker.stop();
  // An after(1h) that loses to a ready channel: the handler of the ready
  // case runs, and the timer goes with the select.
  Chan<int> ready = make_chan<int>(1);
  co_await ready.send(3);
  const int c = co_await select(on(recv_from(ready), [](std::optional<int> v) { return *v; }),
                                on(after(std::chrono::hours(1)), [] { return -1; }));
  co_return ok&& ticks == 3 && c == 3;
}

TEST(SelectWithHandlers, AfterTimerAndTickerAreCases) {
  for (unsigned procs : {1U, 4U}) EXPECT_TRUE(run(time_cases(), with_procs(procs)));
}

Task<long> handler_receiver(Chan<int> a, Chan<int> b, Chan<int> stop) {
  long got = 0;
  for (bool more = true; more;) {
    more = co_await select(on(recv_from(a),
                              [&](std::optional<int> v) {
                                got += *v;
                                return true;
                              }),
                           on(recv_from(b),
                              [&](std::optional<int> v) {
                                got += *v;
                                return true;
                              }),
                           on(recv_from(stop), [] { return false; }));
  }
  while (auto left = a.try_recv()) got += *left.value;
  co_return got;
}

Task<long> handler_sender(Chan<int> a, Chan<int> b, long n) {
  long sent = 0;
  for (long i = 0; i < n; ++i) {
    co_await select(on(send_to(a, 1), [&] { ++sent; }), on(send_to(b, 1), [&] { ++sent; }));
  }
  co_return sent;
}

// Handler selects on both sides: every value sent is counted by exactly
// one sender handler and one receiver handler.
Task<bool> handler_select_vs_select(long n) {
  Chan<int> a = make_chan<int>(2);
  Chan<int> b = make_chan<int>();
  Chan<int> stop = make_chan<int>();
  std::vector<JoinHandle<long>> sent;
  std::vector<JoinHandle<long>> got;
  for (int i = 0; i < 3; ++i) got.push_back(spawn(handler_receiver(a, b, stop)));
  for (int i = 0; i < 3; ++i) sent.push_back(spawn(handler_sender(a, b, n)));
  long total_sent = 0;
  for (auto& s : sent) total_sent += co_await s;
  stop.close();
  long total_got = 0;
  for (auto& g : got) total_got += co_await g;
  co_return total_sent == 3 * n&& total_got == total_sent;
}

TEST(SelectWithHandlers, SelectsOnBothSidesCountEachValueOnce) {
  test::Watchdog watchdog("handler_select_vs_select");
  const long n = test::scaled(20000);
  for (unsigned procs : {1U, 4U}) EXPECT_TRUE(run(handler_select_vs_select(n), with_procs(procs)));
}

// --- Select over a span of channels ----------------------------------------------

Task<bool> span_receives_from_the_ready_channel() {
  std::vector<Chan<int>> cs;
  for (int i = 0; i < 5; ++i) cs.push_back(make_chan<int>(1));
  bool ok = true;
  for (int i = 0; i < 5; ++i) {
    co_await cs[static_cast<std::size_t>(i)].send(i * 10);
    auto r = co_await select_recv(cs);
    ok = ok && r.index() == static_cast<std::size_t>(i) && r.ok() && r.value() == i * 10 &&
         !r.took_default();
  }
  // Nothing ready: the default.
  auto d = co_await select_recv(cs, default_case());
  ok = ok && d.took_default() && d.index() == cs.size() && !d.ok();
  // A closed channel: its index, no value.
  cs[3].close();
  auto c = co_await select_recv(cs);
  ok = ok && c.index() == 3 && !c.ok() && !c.took_default();
  // Receive-only views, in a std::array and a std::span.
  std::array<RecvChan<int>, 2> views{cs[0], cs[1]};
  co_await cs[1].send(7);
  auto v = co_await select_recv(std::span<const RecvChan<int>>(views));
  ok = ok && v.index() == 1 && v.value() == 7;
  // One channel and a default (the lock-free path), empty then ready.
  std::array<Chan<int>, 1> one{cs[0]};
  ok = ok && (co_await select_recv(one, default_case())).took_default();
  co_await cs[0].send(1);
  ok = ok && (co_await select_recv(one, default_case())).value() == 1;
  co_return ok;
}

TEST(SelectOverSpan, ReceivesFromTheReadyChannelOrTakesTheDefault) {
  EXPECT_TRUE(run(span_receives_from_the_ready_channel(), with_procs(1)));
}

Task<bool> span_nil_and_empty() {
  std::vector<Chan<int>> nils(3);
  auto d = co_await select_recv(nils, default_case());
  std::vector<Chan<int>> none;
  auto e = co_await select_recv(none, default_case());
  auto s = co_await select_send(nils, 1, default_case());
  // A nil channel among ready ones is never chosen.
  std::vector<Chan<int>> mixed{Chan<int>(), make_chan<int>(1), Chan<int>()};
  bool ok = d.took_default() && d.index() == 3 && e.took_default() && e.index() == 0 &&
            s.took_default() && s.index() == 3;
  for (int i = 0; i < 100; ++i) {
    co_await mixed[1].send(i);
    auto r = co_await select_recv(mixed);
    ok = ok && r.index() == 1 && r.value() == i;
  }
  co_return ok;
}

TEST(SelectOverSpan, NilChannelsAreNeverChosen) {
  EXPECT_TRUE(run(span_nil_and_empty(), with_procs(1)));
}

// Every channel ready: each wins about 1/8 of the rounds (Go's select
// fairness). 16000 rounds: mean 2000, standard deviation 42; the bound is
// 12 of them.
Task<std::vector<long>> span_fairness(long rounds, std::vector<std::size_t> ready) {
  std::vector<Chan<int>> cs;
  for (int i = 0; i < 8; ++i) cs.push_back(make_chan<int>(1));
  std::vector<long> wins(cs.size() + 1, 0);
  for (long i = 0; i < rounds; ++i) {
    for (std::size_t k : ready) (void)cs[k].try_send(1);
    ++wins[(co_await select_recv(cs)).index()];
  }
  co_return wins;
}

TEST(SelectOverSpan, IsFairAmongAllChannels) {
  const auto wins = run(span_fairness(16000, {0, 1, 2, 3, 4, 5, 6, 7}), with_procs(1));
  for (std::size_t k = 0; k < 8; ++k) EXPECT_GT(wins[k], 1500) << "channel " << k;
}

// Two ready channels behind a run of empty ones: each must win about half
// of the rounds. A random start followed by a linear scan would give the
// first of the two 7/8 of them. 10000 rounds: sd 50, bound 20 of them.
TEST(SelectOverSpan, IsUniformAmongTheReadyChannels) {
  const auto wins = run(span_fairness(10000, {5, 6}), with_procs(1));
  EXPECT_GT(wins[5], 4000);
  EXPECT_GT(wins[6], 4000);
  EXPECT_EQ(wins[5] + wins[6], 10000);
}

Task<SelectRecvResult<int>> span_recv_blocking(std::vector<Chan<int>> cs,
                                               std::atomic<bool>* parked) {
  parked->store(true);
  co_return co_await select_recv(cs);
}

// All channels empty (or nil): the select parks, and a send to any one of
// them, or a close, wakes it with that channel's index. 3 channels fit in
// the frame; 20 take the allocated arrays.
Task<bool> span_parks_and_wakes(std::size_t channels) {
  std::vector<Chan<int>> cs;
  for (std::size_t i = 0; i < channels; ++i) {
    cs.push_back(i % 3 == 2 ? Chan<int>() : make_chan<int>(i % 2));
  }
  bool ok = true;
  for (std::size_t target = 0; target < channels; ++target) {
    if (cs[target].nil()) continue;
    std::atomic<bool> parked{false};
    auto waiter = spawn(span_recv_blocking(cs, &parked));
    const bool set = co_await test::yield_until_set(parked);
    ok = ok && set;
    for (int i = 0; i < 5; ++i) co_await yield();  // usually parked by now; if not, it polls
    co_await cs[target].send(static_cast<int>(target));
    auto r = co_await waiter;
    ok = ok && r.index() == target && r.value() == static_cast<int>(target);
  }
  // Woken by a close.
  std::atomic<bool> parked{false};
  auto waiter = spawn(span_recv_blocking(cs, &parked));
  const bool set = co_await test::yield_until_set(parked);
  for (int i = 0; i < 5; ++i) co_await yield();
  cs[1].close();
  auto r = co_await waiter;
  co_return ok&& set&& r.index() == 1 && !r.ok();
}

TEST(SelectOverSpan, AllEmptyParksAndIsWokenBySendOrClose) {
  test::Watchdog watchdog("span_parks_and_wakes");
  for (unsigned procs : {1U, 4U}) {
    EXPECT_TRUE(run(span_parks_and_wakes(3), with_procs(procs)));
    EXPECT_TRUE(run(span_parks_and_wakes(20), with_procs(procs)));
  }
}

// `guard` lives in the frame: it is destroyed when the frame is.
Task<void> park_in_span_select(std::vector<Chan<int>> cs,
                               [[maybe_unused]] std::shared_ptr<test::Guard> guard,
                               std::atomic<bool>* parked, std::atomic<bool>* finished) {
  parked->store(true);
  // One P: from the flag to the park without giving the P up.
  (void)co_await select_recv(cs);
  finished->store(true);
}

Task<void> park_in_span_send(std::vector<Chan<int>> cs, std::atomic<bool>* parked) {
  parked->store(true);
  (void)co_await select_send(cs, 1);
}

// Goroutines parked in span selects (over channels, over only nil ones,
// and over more channels than the frame holds) are destroyed at shutdown:
// their waiters are withdrawn (the channels, which outlive the runtime,
// have no receiver or sender queued afterwards) and nothing leaks.
Task<bool> parked_at_shutdown(std::vector<Chan<int>> cs, std::vector<Chan<int>> many,
                              std::vector<Chan<int>> many_senders, test::LifeCounts* counts,
                              std::atomic<bool>* finished) {
  std::atomic<bool> parked{false};
  go(park_in_span_select(cs, std::make_shared<test::Guard>(*counts), &parked, finished));
  bool ok = co_await test::yield_until_set(parked);
  parked.store(false);
  go(park_in_span_select(std::vector<Chan<int>>(4), std::make_shared<test::Guard>(*counts), &parked,
                         finished));
  ok = ok && co_await test::yield_until_set(parked);
  parked.store(false);
  go(park_in_span_select(many, std::make_shared<test::Guard>(*counts), &parked, finished));
  ok = ok && co_await test::yield_until_set(parked);
  parked.store(false);
  go(park_in_span_send(many_senders, &parked));
  ok = ok && co_await test::yield_until_set(parked);
  for (int i = 0; i < 10; ++i) co_await yield();
  co_return ok && !finished->load();
}

TEST(SelectOverSpan, ParkedSelectsAreWithdrawnAndDestroyedAtShutdown) {
  std::vector<Chan<int>> cs{make_chan<int>(), make_chan<int>(), Chan<int>()};
  std::vector<Chan<int>> many;
  std::vector<Chan<int>> many_senders;
  for (int i = 0; i < 20; ++i) many.push_back(make_chan<int>());
  for (int i = 0; i < 20; ++i) many_senders.push_back(make_chan<int>());
  test::LifeCounts counts;
  std::atomic<bool> finished{false};
  EXPECT_TRUE(run(parked_at_shutdown(cs, many, many_senders, &counts, &finished), with_procs(1)));
  EXPECT_FALSE(finished.load());
  EXPECT_EQ(counts.alive(), 0);
  // A waiter left queued would be found here (ASan: use after free).
  for (auto& c : cs) EXPECT_FALSE(c.try_send(1));
  for (auto& c : many) EXPECT_FALSE(c.try_send(1));
  for (auto& c : many_senders) EXPECT_FALSE(c.try_recv().value.has_value());
}

Task<bool> span_send() {
  std::vector<Chan<int>> cs{make_chan<int>(1), make_chan<int>(1), make_chan<int>(1)};
  std::vector<SendChan<int>> outs(cs.begin(), cs.end());
  std::vector<int> seen(3, 0);
  for (int i = 0; i < 3; ++i) {
    auto r = co_await select_send(outs, i);
    seen[r.index()] += 1;
  }
  bool ok = seen == std::vector<int>{1, 1, 1};  // each full afterwards
  ok = ok && (co_await select_send(outs, 9, default_case())).took_default();
  (void)cs[2].try_recv();
  auto r = co_await select_send(outs, 5);
  ok = ok && r.index() == 2 && cs[2].try_recv().value == 5;
  // A move-only value.
  std::vector<Chan<std::unique_ptr<int>>> ptrs{make_chan<std::unique_ptr<int>>(1)};
  (void)co_await select_send(ptrs, std::make_unique<int>(4));
  ok = ok && *ptrs[0].try_recv().value.value() == 4;
  // A closed channel throws.
  Chan<int> closed = make_chan<int>();
  closed.close();
  std::vector<Chan<int>> with_closed{make_chan<int>(), closed};
  try {
    (void)co_await select_send(with_closed, 1);
    ok = false;
  } catch (const ChannelClosed&) {
  }
  // Closed while parked: throws too.
  std::vector<Chan<int>> blocked{make_chan<int>(), make_chan<int>()};
  auto waiter = spawn(
      [](std::vector<Chan<int>> b) -> Task<bool> {
        try {
          (void)co_await select_send(b, 1);
        } catch (const ChannelClosed&) {
          co_return true;
        }
        co_return false;
      },
      blocked);
  for (int i = 0; i < 10; ++i) co_await yield();
  blocked[1].close();
  co_return ok&& co_await waiter;
}

TEST(SelectOverSpan, SendGoesToAReadyChannelAndThrowsOnAClosedOne) {
  for (unsigned procs : {1U, 4U}) EXPECT_TRUE(run(span_send(), with_procs(procs)));
}

Task<void> produce(Chan<int> out, long n) {
  for (long i = 0; i < n; ++i) co_await out.send(1);
  out.close();
}

// Go's fan-in: N producers, one consumer selecting over all of them; a
// closed channel is set to nil, as in Go, so the select never picks it
// again. Every value arrives exactly once.
Task<long> fan_in(std::size_t producers, long n) {
  std::vector<Chan<int>> inputs;
  for (std::size_t i = 0; i < producers; ++i) {
    inputs.push_back(make_chan<int>(i % 2 == 0 ? 0 : 4));
    go(produce(inputs.back(), n));
  }
  long got = 0;
  for (std::size_t open = producers; open > 0;) {
    auto r = co_await select_recv(inputs);
    if (r.ok()) {
      got += *r.value();
    } else {
      inputs[r.index()] = Chan<int>();
      --open;
    }
  }
  co_return got;
}

TEST(SelectOverSpan, FanInReceivesEveryValueOnce) {
  test::Watchdog watchdog("fan_in");
  const long n = test::scaled(5000);
  for (unsigned procs : {1U, 4U}) {
    EXPECT_EQ(run(fan_in(3, n), with_procs(procs)), 3 * n);
    EXPECT_EQ(run(fan_in(12, n / 4), with_procs(procs)), 12 * (n / 4));
  }
}

Task<long> span_sender(std::vector<Chan<int>> outs, long n) {
  for (long i = 0; i < n; ++i) (void)co_await select_send(outs, 1);
  co_return n;
}

Task<long> span_receiver(std::vector<Chan<int>> ins, Chan<int> stop) {
  ins.push_back(stop);
  long got = 0;
  for (;;) {
    auto r = co_await select_recv(ins);
    if (r.index() == ins.size() - 1) break;
    got += *r.value();
  }
  ins.pop_back();
  for (auto& c : ins) {
    while (auto left = c.try_recv()) got += *left.value;
  }
  co_return got;
}

// Span selects on both sides of the same channels: nothing lost, nothing
// doubled, nobody left parked.
Task<bool> span_vs_span(long n) {
  std::vector<Chan<int>> cs{make_chan<int>(), make_chan<int>(2), make_chan<int>(),
                            make_chan<int>(1)};
  Chan<int> stop = make_chan<int>();
  std::vector<JoinHandle<long>> sent;
  std::vector<JoinHandle<long>> got;
  for (int i = 0; i < 3; ++i) got.push_back(spawn(span_receiver(cs, stop)));
  for (int i = 0; i < 4; ++i) sent.push_back(spawn(span_sender(cs, n)));
  long total_sent = 0;
  for (auto& s : sent) total_sent += co_await s;
  stop.close();
  long total_got = 0;
  for (auto& g : got) total_got += co_await g;
  co_return total_sent == 4 * n&& total_got == total_sent;
}

TEST(SelectOverSpan, SelectsOnBothSidesLoseAndDoubleNothing) {
  test::Watchdog watchdog("span_vs_span");
  const long n = test::scaled(20000);
  for (unsigned procs : {1U, 4U}) EXPECT_TRUE(run(span_vs_span(n), with_procs(procs)));
}

Task<long> span_duplicates(long n) {
  Chan<int> c = make_chan<int>();
  Chan<int> d = make_chan<int>(3);
  go(send_n(c, n));
  go(send_n(d, n));
  std::vector<Chan<int>> cs{c, d, c, d, c};
  long got = 0;
  for (long i = 0; i < 2 * n; ++i) got += *(co_await select_recv(cs)).value();
  co_return got;
}

TEST(SelectOverSpan, DuplicateChannelsInOneSelect) {
  const long n = test::scaled(20000);
  for (unsigned procs : {1U, 4U}) EXPECT_EQ(run(span_duplicates(n), with_procs(procs)), 2 * n);
}

// More cases than the awaiter holds inline (their orders then live on the
// heap), with repeats and a nil channel among them; unbuffered senders make
// most selects park first.
Task<long> span_longer_than_inline(long n) {
  constexpr int kChannels = 10;
  std::vector<Chan<int>> distinct;
  for (int i = 0; i < kChannels; ++i) {
    distinct.push_back(make_chan<int>());
    go(send_n(distinct.back(), n));
  }
  std::vector<Chan<int>> cs(distinct.begin(), distinct.end());
  cs.insert(cs.end(), distinct.begin(), distinct.begin() + kChannels / 2);
  cs.emplace_back();  // nil
  long got = 0;
  for (long i = 0; i < kChannels * n; ++i) got += *(co_await select_recv(cs)).value();
  co_return got;
}

TEST(SelectOverSpan, MoreChannelsThanFitInlineReceiveEveryValueOnce) {
  const long n = test::scaled(2000);
  for (unsigned procs : {1U, 4U}) {
    EXPECT_EQ(run(span_longer_than_inline(n), with_procs(procs)), 10 * n);
  }
}

}  // namespace
}  // namespace goro
