// scheduler_test: goro::run (results, errors, one runtime at a time),
// Config (procs, GORO_MAXPROCS, queue capacity), scheduler_stats(), and
// fairness with one P.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

#include "machine_load.hpp"
#include "skynet.hpp"
#include "sysmon.hpp"
#include "test_util.hpp"

namespace {

using goro::Task;
using goro::test::Guard;
using goro::test::LifeCounts;
using goro::test::with_procs;

// --- run: results and errors ---------------------------------------------------

Task<int> return_value(int v) { co_return v; }

TEST(Run, ReturnsMainsValue) { EXPECT_EQ(goro::run(return_value(17), with_procs(2)), 17); }

Task<std::unique_ptr<std::string>> return_unique() {
  co_return std::make_unique<std::string>("moved out");
}

TEST(Run, ReturnsAMoveOnlyValue) {
  std::unique_ptr<std::string> s = goro::run(return_unique(), with_procs(1));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s, "moved out");
}

Task<void> set_true(bool* flag) {
  *flag = true;
  co_return;
}

TEST(Run, RunsAVoidMain) {
  bool ran = false;
  goro::run(set_true(&ran), with_procs(1));
  EXPECT_TRUE(ran);
}

struct MainError : std::runtime_error {
  MainError(const std::string& what, int code) : std::runtime_error(what), code(code) {}
  int code;
};

Task<int> throw_main_error() {
  co_await goro::yield();
  throw MainError("main failed", 3);
}

TEST(Run, RethrowsMainsExceptionWithTypeAndMessage) {
  try {
    goro::run(throw_main_error(), with_procs(2));
    ADD_FAILURE() << "run returned normally";
  } catch (const MainError& e) {
    EXPECT_STREQ(e.what(), "main failed");
    EXPECT_EQ(e.code, 3);
  }
}

TEST(Run, CanRunAgainAfterReturning) {
  EXPECT_EQ(goro::run(return_value(1), with_procs(2)), 1);
  EXPECT_THROW(goro::run(throw_main_error(), with_procs(1)), MainError);
  EXPECT_EQ(goro::run(return_value(3), with_procs(3)), 3);
  EXPECT_EQ(goro::scheduler_stats().procs, 3u);  // the last run's
}

Task<int> guarded_never_runs(Guard guard, bool* ran) {
  (void)guard;
  *ran = true;
  co_return 0;
}

struct NestedRunOutcome {
  bool threw_logic_error = false;
  bool threw_something_else = false;
};

Task<NestedRunOutcome> run_inside_run(LifeCounts* counts, bool* inner_ran) {
  NestedRunOutcome outcome;
  try {
    goro::run(guarded_never_runs(Guard(*counts), inner_ran), with_procs(1));
  } catch (const std::logic_error&) {
    outcome.threw_logic_error = true;
  } catch (...) {
    outcome.threw_something_else = true;
  }
  co_return outcome;
}

TEST(Run, RunInsideAGoroutineThrowsLogicErrorAndDestroysItsTask) {
  LifeCounts counts;
  bool inner_ran = false;
  const NestedRunOutcome outcome = goro::run(run_inside_run(&counts, &inner_ran), with_procs(2));
  EXPECT_TRUE(outcome.threw_logic_error);
  EXPECT_FALSE(outcome.threw_something_else);
  EXPECT_FALSE(inner_ran);
  EXPECT_EQ(counts.alive(), 0);
}

Task<bool> run_from_other_thread_while_running(LifeCounts* counts, bool* inner_ran) {
  std::atomic<bool> done{false};
  std::atomic<int> result{0};  // 1: logic_error, 2: other exception, 3: returned
  std::thread other([&] {
    try {
      goro::run(guarded_never_runs(Guard(*counts), inner_ran), with_procs(1));
      result = 3;
    } catch (const std::logic_error&) {
      result = 1;
    } catch (...) {
      result = 2;
    }
    done = true;
  });
  const bool finished = co_await goro::test::yield_until_set(done);
  other.join();
  co_return finished&& result.load() == 1;
}

TEST(Run, RunFromAnotherThreadWhileOneIsRunningThrowsLogicError) {
  LifeCounts counts;
  bool inner_ran = false;
  EXPECT_TRUE(goro::run(run_from_other_thread_while_running(&counts, &inner_ran), with_procs(1)));
  EXPECT_FALSE(inner_ran);
  EXPECT_EQ(counts.alive(), 0);
}

// --- Config --------------------------------------------------------------------

Task<unsigned> procs_seen_inside() { co_return goro::scheduler_stats().procs; }

TEST(Config, ProcsAreHonoured) {
  for (unsigned procs : {1u, 2u, 3u, 5u}) {
    EXPECT_EQ(goro::run(procs_seen_inside(), with_procs(procs)), procs);
    EXPECT_EQ(goro::scheduler_stats().procs, procs);
  }
}

TEST(Config, AvailableProcsIsAtLeastOne) {
  const unsigned n = goro::available_procs();
  EXPECT_GE(n, 1u);
  if (std::thread::hardware_concurrency() != 0) {
    EXPECT_LE(n, std::thread::hardware_concurrency());
  }
}

// Sets GORO_MAXPROCS for one test and restores the previous state.
class GoroMaxprocs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("GORO_MAXPROCS")) saved_ = old;
  }
  void TearDown() override {
    if (saved_) {
      setenv("GORO_MAXPROCS", saved_->c_str(), 1);
    } else {
      unsetenv("GORO_MAXPROCS");
    }
  }
  static unsigned procs_with_default_config() {
    return goro::run(procs_seen_inside(), goro::Config{});
  }

 private:
  std::optional<std::string> saved_;
};

TEST_F(GoroMaxprocs, SetsTheDefaultNumberOfProcs) {
  setenv("GORO_MAXPROCS", "3", 1);
  EXPECT_EQ(procs_with_default_config(), 3u);
  setenv("GORO_MAXPROCS", "1", 1);
  EXPECT_EQ(procs_with_default_config(), 1u);
}

TEST_F(GoroMaxprocs, ExplicitProcsOverrideIt) {
  setenv("GORO_MAXPROCS", "3", 1);
  EXPECT_EQ(goro::run(procs_seen_inside(), with_procs(2)), 2u);
}

TEST_F(GoroMaxprocs, InvalidValuesFallBackToAvailableProcs) {
  for (const char* value : {"0", "-2", "abc", "2x", ""}) {
    setenv("GORO_MAXPROCS", value, 1);
    EXPECT_EQ(procs_with_default_config(), goro::available_procs()) << "GORO_MAXPROCS=" << value;
  }
}

TEST_F(GoroMaxprocs, UnsetMeansAvailableProcs) {
  unsetenv("GORO_MAXPROCS");
  EXPECT_EQ(procs_with_default_config(), goro::available_procs());
}

TEST(Config, InvalidLocalRunQueueCapacityThrowsInvalidArgumentAndDestroysMain) {
  for (unsigned capacity : {1u, 2u, 3u, 6u, 100u}) {
    LifeCounts counts;
    bool ran = false;
    EXPECT_THROW(goro::run(guarded_never_runs(Guard(counts), &ran), with_procs(1, capacity)),
                 std::invalid_argument)
        << "capacity " << capacity;
    EXPECT_FALSE(ran);
    EXPECT_EQ(counts.alive(), 0);
  }
  // The runtime is usable afterwards.
  EXPECT_EQ(goro::run(return_value(5), with_procs(1)), 5);
}

TEST(Config, PowerOfTwoLocalRunQueueCapacitiesAreAccepted) {
  for (unsigned capacity : {4u, 8u, 256u}) {
    EXPECT_EQ(goro::run(return_value(6), with_procs(2, capacity)), 6) << "capacity " << capacity;
  }
}

// --- where goroutines run -------------------------------------------------------

Task<void> record_thread(std::thread::id* where, std::atomic<long>* done) {
  *where = std::this_thread::get_id();
  done->fetch_add(1);
  co_return;
}

Task<bool> all_on_this_thread(std::thread::id caller) {
  std::vector<std::thread::id> where(20);
  std::atomic<long> done{0};
  bool all = std::this_thread::get_id() == caller;
  for (auto& w : where) goro::go(record_thread(&w, &done));
  if (!co_await goro::test::yield_until_at_least(done, 20)) co_return false;
  for (auto& w : where) all = all && w == caller;
  co_return all;
}

TEST(Run, WithOneProcEveryGoroutineRunsOnTheCallingThread) {
  EXPECT_TRUE(goro::run(all_on_this_thread(std::this_thread::get_id()), with_procs(1)));
}

// A goroutine that never suspends holds its P; with two Ps the other one
// must pick up the goroutine it spawned (from runnext or the local queue):
// the spin ends only when both children ran, so a broken steal hangs
// until ctest's per-test timeout ends it.
Task<void> set_flag_and_record(std::atomic<bool>* flag, std::thread::id* where) {
  *where = std::this_thread::get_id();
  flag->store(true);
  co_return;
}

Task<int> spin_until_stolen() {
  int stolen = 0;
  for (int i = 0; i < 2; ++i) {  // once via runnext, once via the local queue
    std::atomic<bool> first{false};
    std::atomic<bool> second{false};
    std::thread::id first_where;
    std::thread::id second_where;
    goro::go(set_flag_and_record(&first, &first_where));
    goro::go(set_flag_and_record(&second, &second_where));
    while (!(first.load() && second.load())) {
      std::this_thread::yield();  // not goro::yield: this goroutine keeps its P
    }
    if (first_where != std::this_thread::get_id() && second_where != std::this_thread::get_id()) {
      ++stolen;
    }
    co_await goro::yield();
  }
  co_return stolen;
}

TEST(Scheduler, AnIdleProcTakesWorkFromABusyOne) {
  EXPECT_EQ(goro::run(spin_until_stolen(), with_procs(2)), 2);
  EXPECT_GT(goro::scheduler_stats().steals, 0u);
}

// --- scheduler_stats -------------------------------------------------------------

Task<int> child_value(int v) {
  co_await goro::yield();
  co_return v;
}

Task<void> bump_counter(std::atomic<long>* counter) {
  counter->fetch_add(1);
  co_return;
}

Task<long> spawn_k(int detached, int joined) {
  std::atomic<long> counter{0};
  for (int i = 0; i < detached; ++i) goro::go(bump_counter(&counter));
  std::vector<goro::JoinHandle<int>> handles;
  for (int i = 0; i < joined; ++i) handles.push_back(goro::spawn(child_value(i)));
  long sum = 0;
  for (auto& h : handles) sum += co_await h;
  co_await goro::test::yield_until_at_least(counter, detached);
  co_return sum + counter.load();
}

TEST(Stats, CountEveryStartedAndFinishedGoroutine) {
  constexpr int kDetached = 100;
  constexpr int kJoined = 50;
  const long result = goro::run(spawn_k(kDetached, kJoined), with_procs(2));
  EXPECT_EQ(result, kJoined * (kJoined - 1) / 2 + kDetached);
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.procs, 2u);
  EXPECT_EQ(stats.goroutines_started, kDetached + kJoined + 1u);  // + main
  EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  EXPECT_GE(stats.yields, static_cast<std::uint64_t>(kJoined));
  EXPECT_GE(stats.schedules, stats.yields);
}

Task<long> spawn_then_join_each(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) {
    auto handle = goro::spawn(return_value(i));
    sum += co_await handle;
  }
  co_return sum;
}

TEST(Stats, SpawnThenImmediateJoinRunsTheChildInline) {
  constexpr int kPairs = 1000;
  EXPECT_EQ(goro::run(spawn_then_join_each(kPairs), with_procs(1)), kPairs * (kPairs - 1L) / 2);
  const goro::SchedulerStats stats = goro::scheduler_stats();
  // With one P nobody else can start the child first: every join is inline.
  EXPECT_EQ(stats.inline_joins, static_cast<std::uint64_t>(kPairs));
  EXPECT_EQ(stats.goroutines_started, kPairs + 1u);
  EXPECT_EQ(stats.goroutines_finished, kPairs + 1u);
}

Task<void> yield_n(int n) {
  for (int i = 0; i < n; ++i) co_await goro::yield();
}

TEST(Stats, CountYields) {
  goro::run(yield_n(37), with_procs(1));
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.yields, 37u);
  EXPECT_EQ(stats.schedules, 38u);  // main's first run and one per yield
}

Task<bool> stats_from_outside_thread(unsigned procs) {
  std::atomic<bool> done{false};
  goro::SchedulerStats seen;
  std::thread other([&] {
    seen = goro::scheduler_stats();
    done = true;
  });
  const bool finished = co_await goro::test::yield_until_set(done);
  other.join();
  co_return finished&& seen.procs == procs&& seen.goroutines_started >= 1;
}

TEST(Stats, ReadableFromAThreadOutsideTheRuntime) {
  EXPECT_TRUE(goro::run(stats_from_outside_thread(3), with_procs(3)));
}

// --- fairness (one P) -------------------------------------------------------------

Task<void> yield_then_set(int yields, std::atomic<bool>* flag) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  flag->store(true);
}

// Yields until `flag` is set; returns how many times it yielded. Starvation
// makes it yield forever, until ctest's per-test timeout ends the test.
Task<long> yield_until_flag(const std::atomic<bool>* flag) {
  long yields = 0;
  while (!flag->load()) {
    co_await goro::yield();
    ++yields;
  }
  co_return yields;
}

Task<long> yielder_spawns_then_yields(int child_yields) {
  std::atomic<bool> flag{false};
  goro::go(yield_then_set(child_yields, &flag));
  co_return co_await yield_until_flag(&flag);
}

TEST(Fairness, AYieldingGoroutineDoesNotStarveTheGoroutineItSpawned) {
  const long yields = goro::run(yielder_spawns_then_yields(100), with_procs(1));
  EXPECT_GE(yields, 100);  // the child yielded 100 times in between
}

Task<long> yielder_with_outside_thread() {
  std::atomic<bool> flag{false};
  std::thread outside([&flag] { goro::go(yield_then_set(3, &flag)); });
  const long yields = co_await yield_until_flag(&flag);
  outside.join();
  co_return yields;
}

TEST(Fairness, AYieldingGoroutineDoesNotStarveAGoroutineStartedFromOutside) {
  // Local work (the yielder) is always available; the outsider waits in the
  // global queue, which must be served periodically anyway.
  // The outsider yielded 3 times, each time after the yielder's turn.
  EXPECT_GE(goro::run(yielder_with_outside_thread(), with_procs(1)), 3);
  EXPECT_GT(goro::scheduler_stats().global_queue_takes, 0u);
}

Task<long> count_yields_until(const std::atomic<bool>* stop) {
  co_return co_await yield_until_flag(stop);
}

struct TwoYieldersOutcome {
  long first = 0;
  long second = 0;
  long main = 0;
};

Task<TwoYieldersOutcome> two_yielders_and_a_latecomer() {
  std::atomic<bool> latecomer_ran{false};
  auto a = goro::spawn(count_yields_until(&latecomer_ran));
  auto b = goro::spawn(count_yields_until(&latecomer_ran));
  co_await goro::yield();  // both yielders are now in the rotation
  co_await goro::yield();
  goro::go(yield_then_set(5, &latecomer_ran));
  TwoYieldersOutcome outcome;
  outcome.main = co_await yield_until_flag(&latecomer_ran);
  outcome.first = co_await a;
  outcome.second = co_await b;
  co_return outcome;
}

TEST(Fairness, TwoYieldersDoNotStarveASpawnedGoroutine) {
  const TwoYieldersOutcome outcome = goro::run(two_yielders_and_a_latecomer(), with_procs(1));
  EXPECT_GE(outcome.main, 5);   // the latecomer yielded 5 times, each after main's turn
  EXPECT_GT(outcome.first, 0);  // and the yielders themselves kept running
  EXPECT_GT(outcome.second, 0);
}

// Yield goes to the tail: with one P, each of these goroutines logs once,
// yields, and logs again; every first log precedes every second one.
Task<void> log_twice(int id, std::vector<int>* log, std::atomic<long>* done) {
  log->push_back(id);
  co_await goro::yield();
  log->push_back(100 + id);
  done->fetch_add(1);
}

Task<std::vector<int>> yield_order(int n) {
  std::vector<int> log;
  std::atomic<long> done{0};
  for (int i = 0; i < n; ++i) goro::go(log_twice(i, &log, &done));
  co_await goro::test::yield_until_at_least(done, n);
  co_return log;
}

TEST(Fairness, AYieldingGoroutineRunsAfterTheOnesQueuedBeforeIt) {
  constexpr int kGoroutines = 8;
  const std::vector<int> log = goro::run(yield_order(kGoroutines), with_procs(1));
  ASSERT_EQ(log.size(), 2u * kGoroutines);
  for (int i = 0; i < kGoroutines; ++i) {
    EXPECT_LT(log[static_cast<std::size_t>(i)], 100) << "a goroutine resumed after its yield "
                                                        "before every other had its first turn";
  }
}

// Two goroutines handing each other the P through runnext (a channel
// ping-pong) do not keep the local queue waiting: with one P (no thieves,
// and sysmon sees goroutines switching, so no stall), a goroutine queued
// behind them still gets its turn after a bounded number of round trips.
Task<void> echo_until_closed(goro::RecvChan<int> in, goro::SendChan<int> out) {
  while (auto v = co_await in.recv()) co_await out.send(*v);
  out.close();
}

Task<void> set_flag(std::atomic<bool>* flag) {
  flag->store(true);
  co_return;
}

Task<long> ping_pong_until_flag(long max_rounds) {
  goro::Chan<int> a = goro::make_chan<int>();
  goro::Chan<int> b = goro::make_chan<int>();
  goro::go(echo_until_closed(a, b));
  co_await a.send(0);  // the echo goroutine is running: the pair is set up
  (void)co_await b.recv();
  std::atomic<bool> ran{false};
  goro::go(set_flag(&ran));  // into runnext, displaced to the queue below
  long rounds = 0;
  while (!ran.load() && rounds < max_rounds) {
    co_await a.send(1);
    (void)co_await b.recv();
    ++rounds;
  }
  a.close();
  co_return rounds;
}

TEST(Fairness, AChannelPingPongDoesNotStarveTheLocalQueue) {
  constexpr long kMaxRounds = 1'000'000;
  const long rounds = goro::run(ping_pong_until_flag(kMaxRounds), with_procs(1));
  EXPECT_LT(rounds, kMaxRounds) << "the queued goroutine never ran";
}

// Goroutines readied by a channel handoff stay on the readier's P while it
// keeps working through its queue; once the queue is stuck behind a
// goroutine that computes (no suspension), sysmon releases them to an idle
// P. The readier spins until one of them ran: with the release broken it
// spins for good, until ctest's per-test timeout ends it.
Task<void> receive_then_flag(goro::RecvChan<int> in, std::atomic<int>* started,
                             std::atomic<int>* ran) {
  started->fetch_add(1);
  (void)co_await in.recv();
  ran->fetch_add(1);
}

Task<int> hog_after_handoffs() {
  constexpr int kReceivers = 3;
  goro::Chan<int> c = goro::make_chan<int>();
  std::atomic<int> started{0};
  std::atomic<int> ran{0};
  for (int i = 0; i < kReceivers; ++i) goro::go(receive_then_flag(c, &started, &ran));
  // Every receiver has started (on either P) and goes straight on to park
  // in recv, so the sends below are handoffs that ready them onto this P
  // (a send that comes first parks until its receiver arrives: the same
  // outcome).
  while (started.load() < kReceivers) co_await goro::yield();
  for (int i = 0; i < kReceivers; ++i) co_await c.send(i);  // readies them here, as handoffs
  while (ran.load() == 0) {
    // Compute without suspending: this P's queue is stuck behind us.
  }
  while (ran.load() < kReceivers) co_await goro::yield();
  co_return ran.load();
}

TEST(Scheduler, HandoffGoroutinesStuckBehindAHogMoveToAnIdleProc) {
  EXPECT_EQ(goro::run(hog_after_handoffs(), with_procs(2)), 3);
}

// A pipeline of unbuffered channels whose stages compute for many times
// sysmon's threshold per item keeps its queue moving (no stage is stuck), yet a
// second core would run two stages at once. sysmon sees the P compute long
// between synchronisations and spreads its handoffs over the idle P
// (SchedulerStats::spread_rounds), whose thieves then take stages. The
// feeder keeps the pipeline going until the sink has seen both counters
// move: with spreading broken it never stops, and ctest's per-test
// timeout ends it.
// (That partners which only synchronise stay together is a matter of
// speed, measured by chan_bench's A/B in docs/PERFORMANCE.md: on a loaded
// machine a ping-pong split by a stuck-queue release pays membarriers and
// wakeups between its handoffs and may spread for a few rounds.)
//
// A stage's work per item is measured on the thread's own CPU clock, the
// clock sysmon reads: a multiple of the CPU time per synchronisation above
// which sysmon calls a P computing (SysmonTuning::kComputeNanosPerSync),
// so the outcome is the same on a fast or a slow machine, and a thread
// descheduled on a loaded one still does all of its share.
constexpr std::int64_t kStageCpuNanos = 40 * goro::detail::SysmonTuning::kComputeNanosPerSync;

std::int64_t thread_cpu_nanos() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void compute_on_this_thread(std::int64_t cpu_nanos) {
  const std::int64_t until = thread_cpu_nanos() + cpu_nanos;
  std::uint64_t state = 1;
  while (thread_cpu_nanos() < until) {
    for (int i = 0; i < 256; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      asm volatile("" : "+r"(state));  // each step is done, not folded away
    }
  }
}

Task<void> computing_stage(goro::RecvChan<long> in, goro::SendChan<long> out) {
  while (std::optional<long> item = co_await in.recv()) {
    compute_on_this_thread(kStageCpuNanos);
    co_await out.send(*item + 1);
  }
  out.close();
}

Task<void> feed_until(goro::SendChan<long> out, const std::atomic<bool>* stop,
                      std::atomic<long>* fed) {
  for (long i = 0; !stop->load(); ++i) {
    co_await out.send(i);
    fed->fetch_add(1);
  }
  out.close();
}

struct PipelineOutcome {
  long fed = 0;
  long received = 0;
};

Task<PipelineOutcome> computing_pipeline() {
  constexpr int kStages = 4;
  std::atomic<bool> stop{false};
  std::atomic<long> fed{0};
  goro::Chan<long> first = goro::make_chan<long>();
  goro::go(feed_until(first, &stop, &fed));
  goro::Chan<long> previous = first;
  for (int i = 0; i < kStages; ++i) {
    goro::Chan<long> next = goro::make_chan<long>();
    goro::go(computing_stage(previous, next));
    previous = next;
  }
  PipelineOutcome outcome;
  while (co_await previous.recv()) {
    ++outcome.received;
    if (!stop.load()) {
      const goro::SchedulerStats stats = goro::scheduler_stats();
      if (stats.spread_rounds > 0 && stats.steals > 0) stop.store(true);
    }
  }
  outcome.fed = fed.load();  // the feeder closed `first` after its last count
  co_return outcome;
}

TEST(Scheduler, AComputingPipelineSpreadsOverIdleProcs) {
  const PipelineOutcome outcome = goro::run(computing_pipeline(), with_procs(2));
  EXPECT_GT(outcome.received, 0);
  EXPECT_EQ(outcome.received, outcome.fed);
  const goro::SchedulerStats stats = goro::scheduler_stats();  // of that run
  EXPECT_GT(stats.spread_rounds, 0u);
  EXPECT_GT(stats.steals, 0u);
}

// --- Sharing the machine: standby Ps (scheduler.hpp) --------------------

using namespace std::chrono_literals;

// Standby Ps apply where a goroutine's I/O follows it (io_uring; see
// PollerDriver::io_follows_the_goroutine): these tests name that backend,
// whatever GORO_POLLER says.
goro::Config standby_procs_config(unsigned procs) {
  goro::Config config = with_procs(procs);
  config.poller = goro::PollerBackend::kIoUring;
  return config;
}

// Points sysmon's machine-load reading at a file of the test's own, in
// /proc/loadavg's format, for the runtimes started while it lives; the
// runnable count it holds can be changed meanwhile (sysmon re-reads the
// file from its start at every sample).
class FakeMachineLoad {
 public:
  explicit FakeMachineLoad(int runnable) {
    char pattern[] = "/tmp/goro-loadavg-XXXXXX";
    fd_ = ::mkstemp(pattern);
    if (fd_ < 0) throw std::runtime_error("mkstemp failed");
    path_ = pattern;
    set_runnable(runnable);
    goro::detail::set_machine_load_path_for_testing(path_.c_str());
  }
  FakeMachineLoad(const FakeMachineLoad&) = delete;
  FakeMachineLoad& operator=(const FakeMachineLoad&) = delete;
  ~FakeMachineLoad() {
    goro::detail::set_machine_load_path_for_testing(nullptr);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Rewrites the file in place: sysmon holds it open.
  void set_runnable(int runnable) {
    const std::string line = "0.00 0.00 0.00 " + std::to_string(runnable) + "/1000 4242\n";
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("cannot write the fake loadavg");
    }
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// More runnable threads than any machine has CPUs: every P but P 0 stands by.
int busy_machine_runnable() { return goro::detail::MachineLoad::online_cpus() + 64; }

// Sysmon announces no change of the active count, so this looks after each
// millisecond's sleep (a sleep, not a yield, leaves the P idle, as sysmon
// needs to see it): the period decides how long a test waits, never what
// it finds.
Task<void> wait_for_active_procs(std::uint32_t active) {
  while (goro::scheduler_stats().active_procs != active) co_await goro::sleep(1ms);
}

// One side of a ping-pong over a socket pair: each round reads a byte and
// writes it back (the server side) or writes then reads (the client side),
// counting the rounds that resumed after their read on a thread other than
// `home` (P 0's: goro::run's caller), once `counting` is set.
struct PingPongCounts {
  std::atomic<bool> spread{false};    // a round ran on another thread than P 0's
  std::atomic<bool> counting{false};  // set once P 1 is on standby
  std::atomic<bool> stop{false};
  std::atomic<long> counted{0};
  std::atomic<long> away{0};
  // Done once `spread` is set, and once per side that counted kRoundsEach.
  goro::WaitGroup spread_seen;
  goro::WaitGroup sides_done;
};

constexpr long kWarmUpRounds = 8;
constexpr long kRoundsEach = 200;

// Once counting, a side goes kWarmUpRounds rounds (a side on the standby P
// moves to P 0 at its first: the standby P hands it over when its read
// completes, and its next read goes to P 0's ring), then counts kRoundsEach
// rounds and where each resumed: `home` is P 0's thread, goro::run's caller.
struct PingPongSide {
  PingPongCounts* counts;
  std::thread::id home;
  long rounds = 0;

  void note_round() {
    if (!counts->counting.load()) {
      if (std::this_thread::get_id() != home && !counts->spread.exchange(true)) {
        counts->spread_seen.done();
      }
      return;
    }
    if (++rounds <= kWarmUpRounds) return;
    counts->counted.fetch_add(1);
    if (std::this_thread::get_id() != home) counts->away.fetch_add(1);
    if (rounds == kWarmUpRounds + kRoundsEach) counts->sides_done.done();
  }
};

// The client writes a byte and reads it back until told to stop, then
// shuts its side down; the server echoes until that end of stream.
Task<void> ping_pong_side(int fd, bool serve, std::thread::id home, PingPongCounts* counts,
                          goro::WaitGroup* done) {
  PingPongSide side{counts, home};
  char byte = 'x';
  while (serve || !counts->stop.load()) {
    if (!serve) EXPECT_TRUE((co_await goro::io::write(fd, &byte, 1)).ok());
    auto got = co_await goro::io::read(fd, &byte, 1);
    EXPECT_TRUE(got.ok());
    if (!got.ok() || *got == 0) break;
    side.note_round();
    if (serve) EXPECT_TRUE((co_await goro::io::write(fd, &byte, 1)).ok());
  }
  if (!serve) ::shutdown(fd, SHUT_WR);
  done->done();
}

struct StandbyOutcome {
  long counted = 0;
  long away = 0;
  std::uint32_t active_procs_after = 0;  // read before the two counts below
  std::uint64_t stalls_while_counting = 0;
  std::uint64_t spread_rounds_while_counting = 0;
};

// Four ping-pong pairs run on a free machine until the second P has taken
// some of them; then the (fake) machine gets busy. Once sysmon has put the
// second P on standby, each side moves to P 0 within its warm-up rounds and
// stays there: none of the rounds counted after resumes elsewhere.
Task<StandbyOutcome> ping_pongs_as_the_machine_gets_busy(FakeMachineLoad* load,
                                                         std::thread::id home) {
  constexpr int kPairs = 4;
  PingPongCounts counts;
  counts.spread_seen.add(1);
  counts.sides_done.add(2 * kPairs);
  goro::WaitGroup done;
  std::vector<int> fds;
  for (int i = 0; i < kPairs; ++i) {
    int pair[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    fds.insert(fds.end(), {pair[0], pair[1]});
    done.add(2);
    goro::go(ping_pong_side(pair[0], /*serve=*/true, home, &counts, &done));
    goro::go(ping_pong_side(pair[1], /*serve=*/false, home, &counts, &done));
  }
  // The sides wake this goroutine through WaitGroups: a handoff from a P
  // whose goroutines only do I/O, which must not keep that P spreading
  // (and so every P active) once it readies nothing more.
  co_await counts.spread_seen.wait();
  load->set_runnable(busy_machine_runnable());
  co_await wait_for_active_procs(1);
  const goro::SchedulerStats before = goro::scheduler_stats();
  counts.counting.store(true);
  co_await counts.sides_done.wait();
  counts.stop.store(true);
  co_await done.wait();
  // The active count first: a stall seen after it cannot have changed it.
  const std::uint32_t active = goro::scheduler_stats().active_procs;
  const goro::SchedulerStats after = goro::scheduler_stats();
  StandbyOutcome outcome{counts.counted.load(), counts.away.load(), active,
                         after.stalls - before.stalls, after.spread_rounds - before.spread_rounds};
  for (int fd : fds) ::close(fd);
  co_return outcome;
}

TEST(Scheduler, ProcsBeyondTheFreeCpusHandTheirGoroutinesOver) {
  FakeMachineLoad load(1);  // the reader alone: every P active at first
  const StandbyOutcome outcome =
      goro::run(ping_pongs_as_the_machine_gets_busy(&load, std::this_thread::get_id()),
                standby_procs_config(2));
  // Reaching the counting at all took P 1 going on standby
  // (wait_for_active_procs(1)).
  EXPECT_GT(outcome.counted, 0);
  // A stall (a worker thread descheduled for 10 ms on a loaded machine while
  // a goroutine ran), or a round that spread a computing P's handoffs (a
  // slow, loaded machine can make the ping-pong look like computing), makes
  // every P active for a round, and goroutines may spread again until the
  // next round puts P 1 back on standby.
  if (outcome.stalls_while_counting == 0 && outcome.spread_rounds_while_counting == 0) {
    EXPECT_EQ(outcome.active_procs_after, 1u) << "P 1 woke with no stall";
    EXPECT_EQ(outcome.away, 0) << "rounds run on the standby P";
  }
}

// A goroutine that never suspends holds P 0, the one active P; what waits
// behind it needs the standby P. Sysmon sees the stall and makes every P
// active, so the waiting goroutine runs elsewhere and releases the hog.
// Without that, this test never ends (ctest's timeout).
Task<void> note_thread_and_set(std::atomic<bool>* flag, std::atomic<bool>* ran_at_home,
                               std::thread::id home) {
  ran_at_home->store(std::this_thread::get_id() == home);
  flag->store(true);
  co_return;
}

Task<bool> hog_until_released(std::thread::id home) {
  co_await wait_for_active_procs(1);
  // A timer may have resumed us on the standby P (a running goroutine is
  // not moved): a yield there hands us over to P 0.
  while (std::this_thread::get_id() != home) co_await goro::yield();
  std::atomic<bool> flag{false};
  std::atomic<bool> ran_at_home{true};
  goro::go(note_thread_and_set(&flag, &ran_at_home, home));
  while (!flag.load()) {
    // Compute without suspending: P 0's queue is stuck behind us.
  }
  co_return ran_at_home.load();
}

TEST(Scheduler, AStallOnTheOnlyActiveProcWakesAStandbyOne) {
  FakeMachineLoad load(busy_machine_runnable());
  const bool ran_at_home =
      goro::run(hog_until_released(std::this_thread::get_id()), standby_procs_config(2));
  EXPECT_FALSE(ran_at_home);
  EXPECT_GT(goro::scheduler_stats().stalls, 0u);
}

// When the threads elsewhere go, the standby Ps come back.
Task<void> standby_then_back(FakeMachineLoad* load) {
  co_await wait_for_active_procs(1);
  load->set_runnable(1);  // the reader alone
  co_await wait_for_active_procs(2);
}

// A process that may not run on every CPU (taskset, a cpuset) learns
// nothing about its own CPUs from the machine-wide count: every P stays
// active however busy the machine looks.
// The active count once sysmon has sampled the machine's load 16 more
// times (enough for the fake busy count to put every P but one on standby).
Task<std::uint32_t> active_procs_after_samples() {
  const std::uint64_t seen = goro::detail::machine_load_samples_for_testing();
  while (goro::detail::machine_load_samples_for_testing() < seen + 16) {
    co_await goro::sleep(1ms);  // a busy moment wakes sysmon for its next sample
  }
  co_return goro::scheduler_stats().active_procs;
}

TEST(Scheduler, EveryProcStaysActiveWhenTheProcessMayNotUseEveryCpu) {
  FakeMachineLoad load(busy_machine_runnable());
  cpu_set_t all;
  ASSERT_EQ(::sched_getaffinity(0, sizeof all, &all), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);  // run()'s thread, and so its workers
  const std::uint32_t active = goro::run(active_procs_after_samples(), standby_procs_config(2));
  ASSERT_EQ(::sched_setaffinity(0, sizeof all, &all), 0);
  // On a machine of one CPU, one CPU is every CPU: the busy count applies.
  EXPECT_EQ(active, goro::detail::MachineLoad::online_cpus() > 1 ? 2u : 1u);
}

// More Ps than CPUs is the program's choice: while nothing else runs on
// the machine, every P stays active.
TEST(Scheduler, MoreProcsThanCpusAllRunOnAnOtherwiseIdleMachine) {
  FakeMachineLoad load(1);  // the reader alone
  const auto procs = static_cast<unsigned>(goro::detail::MachineLoad::online_cpus()) + 2;
  EXPECT_EQ(goro::run(active_procs_after_samples(), standby_procs_config(procs)), procs);
}

TEST(Scheduler, StandbyProcsComeBackWhenTheMachineIsFree) {
  FakeMachineLoad load(busy_machine_runnable());
  goro::run(standby_then_back(&load), standby_procs_config(2));
  EXPECT_EQ(goro::scheduler_stats().active_procs, 2u);
}

// Config::standby_procs = false: every P runs however busy the machine is.
TEST(Scheduler, StandbyProcsCanBeTurnedOff) {
  FakeMachineLoad load(busy_machine_runnable());
  goro::Config config = standby_procs_config(2);
  config.standby_procs = false;
  EXPECT_EQ(goro::run(active_procs_after_samples(), config), 2u);
}

// Under epoll an fd stays in the epoll of the P that first used it, so a
// standby P would keep getting its connections' events: every P stays
// active.
TEST(Scheduler, StandbyProcsAreOffUnderEpoll) {
  FakeMachineLoad load(busy_machine_runnable());
  goro::Config config = with_procs(2);
  config.poller = goro::PollerBackend::kEpoll;
  EXPECT_EQ(goro::run(active_procs_after_samples(), config), 2u);
}

// Spawned goroutines that have not started run newest first (the spawn
// stack), after the one that took the free runnext slot; a yielding
// goroutine goes behind them (the FIFO queue).
Task<void> log_id(int id, std::vector<int>* log) {
  log->push_back(id);
  co_return;
}

Task<std::vector<int>> spawn_five_then_yield() {
  std::vector<int> log;
  for (int i = 0; i < 5; ++i) goro::go(log_id(i, &log));
  co_await goro::yield();
  co_return log;
}

TEST(Scheduler, SpawnedGoroutinesRunNewestFirstAfterRunnext) {
  const std::vector<int> log = goro::run(spawn_five_then_yield(), with_procs(1));
  EXPECT_EQ(log, (std::vector<int>{0, 4, 3, 2, 1}));
}

// New spawns run newest first, but a goroutine in the FIFO queue (here one
// that yielded) still gets its turn after a bounded number of them: each
// link of a long chain first spawns a no-op (which takes runnext, so
// runnext chains stay one long) and then the next link (the spawn stack,
// which thus never fills and never spills). With one P, the yielder
// resumes long before the chain is done.
Task<void> noop() { co_return; }

Task<void> spawn_chain(std::atomic<long>* nodes, long limit) {
  if (nodes->fetch_add(1) >= limit) co_return;
  goro::go(noop());
  goro::go(spawn_chain(nodes, limit));
}

Task<void> yield_once_then_report(std::atomic<long>* nodes, goro::SendChan<long> seen) {
  co_await goro::yield();
  co_await seen.send(nodes->load());
}

Task<long> yielder_behind_a_spawn_chain(long limit) {
  std::atomic<long> nodes{0};
  goro::Chan<long> seen = goro::make_chan<long>(1);
  goro::go(yield_once_then_report(&nodes, seen));
  goro::go(spawn_chain(&nodes, limit));
  const long nodes_when_it_resumed = *co_await seen.recv();
  while (nodes.load() < limit) co_await goro::yield();  // let the chain finish
  co_return nodes_when_it_resumed;
}

TEST(Fairness, NewSpawnsDoNotStarveTheLocalQueue) {
  constexpr long kLimit = 200'000;
  const long seen = goro::run(yielder_behind_a_spawn_chain(kLimit), with_procs(1));
  EXPECT_LT(seen, kLimit / 10) << "the yielding goroutine waited for most of the chain";
}

// --- Memory: bounded work uses bounded memory ---------------------------------

Task<void> noop_child() { co_return; }

// Each round spawns more children than runnext, the spawn stack and the
// local queue hold (1 + 4 + 4), so some spill to the global queue, and
// then joins them all inline: the spilled entries go stale there, and with
// one P whose goroutine never returns to the scheduler nothing pops them.
Task<std::uint64_t> spill_then_join_inline(int rounds, int children) {
  std::vector<goro::JoinHandle<void>> handles;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < children; ++i) handles.push_back(goro::spawn(noop_child()));
    for (auto& h : handles) co_await h;
    handles.clear();
  }
  co_return goro::scheduler_stats().global_queue_capacity;
}

TEST(Scheduler, SpilledEntriesOfGoroutinesJoinedInlineDoNotAccumulateInTheGlobalQueue) {
  const int rounds = static_cast<int>(goro::test::scaled(20'000));
  const std::uint64_t capacity =
      goro::run(spill_then_join_inline(rounds, 16), with_procs(1, /*local_run_queue_capacity=*/4));
  const goro::SchedulerStats stats = goro::scheduler_stats();
  ASSERT_GE(stats.local_queue_overflows, static_cast<std::uint64_t>(rounds));
  EXPECT_EQ(stats.inline_joins, static_cast<std::uint64_t>(rounds) * 16);
  // The initial ring (64 slots): the stale entries were compacted away.
  EXPECT_LE(capacity, 64u);
}

struct AfterTree {
  std::uint64_t global_queue_capacity = 0;
  std::uint64_t frame_bytes_resident = 0;  // the frame allocator's, in use or free
  std::uint64_t frame_bytes_in_use = 0;
};

Task<std::vector<AfterTree>> skynet_trees(int trees, long size) {
  std::vector<AfterTree> after;
  for (int t = 0; t < trees; ++t) {
    const long sum = co_await goro::spawn(skynet::spawn_join_tree(0, size, 10));
    EXPECT_EQ(sum, skynet::leaf_sum(size));
    const goro::MemoryStats memory = goro::memory_stats();
    after.push_back({goro::scheduler_stats().global_queue_capacity,
                     memory.bytes_in_use + memory.bytes_free, memory.bytes_in_use});
  }
  co_return after;
}

// Runs 60 skynet trees and checks that what the runtime holds after the
// first few trees does not grow with the goroutines run since. The Ps'
// queues hold 16 entries, fewer than a few levels of a tree leave on the
// spawn stack, so the trees spill to the global queue.
void expect_memory_bounded_over_skynet_trees(unsigned procs) {
  constexpr int kTrees = 60;
  constexpr int kWarmup = 5;
  // 1M goroutines per tree in release, fewer under sanitizers.
  long size = 1;
  const int depth = goro::test::kTsan ? 4 : goro::test::scaled_depth(6, 2);
  for (int i = 0; i < depth; ++i) size *= 10;
  const std::vector<AfterTree> after =
      goro::run(skynet_trees(kTrees, size), with_procs(procs, /*local_run_queue_capacity=*/16));
  ASSERT_EQ(after.size(), static_cast<std::size_t>(kTrees));
  AfterTree warm;
  for (int t = 0; t < kWarmup; ++t) {
    warm.global_queue_capacity =
        std::max(warm.global_queue_capacity, after[t].global_queue_capacity);
    warm.frame_bytes_resident = std::max(warm.frame_bytes_resident, after[t].frame_bytes_resident);
  }
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_GT(stats.local_queue_overflows, 0u) << "the trees never spilled: the test tests nothing";
  // Slack: with 2 Ps a later tree may by chance spill a few more goroutines
  // than the first ones did; what grows with the goroutines run grows
  // without bound.
  constexpr std::uint64_t kFrameSlack = 256 << 10;
  const std::uint64_t queue_bound = std::max<std::uint64_t>(warm.global_queue_capacity, 1024);
  for (int t = kWarmup; t < kTrees; ++t) {
    EXPECT_LE(after[t].global_queue_capacity, queue_bound) << "after tree " << t;
    // Every tree's frames are freed once it is joined.
    EXPECT_LE(after[t].frame_bytes_in_use, after[0].frame_bytes_in_use + kFrameSlack)
        << "after tree " << t;
    // One P runs each tree depth first, so the frames alive at once, and
    // with them the allocator's resident bytes, are the same for every
    // tree. With 2 Ps how many are alive at once depends on the steals, and
    // the resident bytes keep the peak of any tree (a peak, not growth).
    if (procs == 1) {
      EXPECT_LE(after[t].frame_bytes_resident, warm.frame_bytes_resident + kFrameSlack)
          << "after tree " << t;
    }
  }
}

TEST(Memory, SkynetTreesOnOneProcDoNotGrowTheRuntimesMemory) {
  expect_memory_bounded_over_skynet_trees(1);
}

TEST(Memory, SkynetTreesOnTwoProcsDoNotGrowTheRuntimesMemory) {
  expect_memory_bounded_over_skynet_trees(2);
}

// A tree joined in spawn order leaves the entries of the children it joined
// dead on the spawn stack; each inline join of the newest one drops the dead
// ones, so the stack holds about one level's children per level of the
// tree (60 entries for this one) and never overflows into the local queue.
// Without the drop, the dead entries fill the stack's 256 slots within a
// few parents and every later spawn spills.
Task<long> joined_trees(int trees, long size) {
  long total = 0;
  for (int t = 0; t < trees; ++t) {
    total = co_await goro::spawn(skynet::spawn_join_array_tree(0, size));
  }
  co_return total;
}

TEST(Spawn, AJoinedTreeKeepsItsSpawnStackAsDeepAsTheTree) {
  const long size = goro::test::kTsan ? 10'000 : 1'000'000;
  EXPECT_EQ(goro::run(joined_trees(3, size), with_procs(1)), skynet::leaf_sum(size));
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.local_queue_overflows, 0u);
  EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  // Every child was joined inline: one P, and nothing ever parked.
  EXPECT_GE(stats.inline_joins, static_cast<std::uint64_t>(3 * (size - 1) / 9 * 10));
}

}  // namespace
