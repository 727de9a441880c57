// spawn_test: goro::go and goro::spawn from inside and outside the runtime,
// JoinHandle (values, exceptions, detach, is_finished, empty handles),
// uncaught exceptions in detached goroutines, and shutdown with live
// goroutines (parked, runnable, mid-join), up to a million at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <goro/goro.hpp>

#include "test_util.hpp"

namespace {

using goro::JoinHandle;
using goro::Task;
using goro::test::CodedError;
using goro::test::Guard;
using goro::test::LifeCounts;
using goro::test::ParkForever;
using goro::test::with_procs;
using goro::test::yield_until_at_least;
using goro::test::yield_until_set;
using namespace std::chrono_literals;

Task<int> value_after_yields(int value, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  co_return value;
}

Task<int> throw_after_yields(int code, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  throw CodedError("child failed", code);
}

Task<void> bump(std::atomic<long>* counter) {
  counter->fetch_add(1);
  co_return;
}

Task<void> bump_after_yields(std::atomic<long>* counter, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  counter->fetch_add(1);
}

static_assert(!std::is_copy_constructible_v<JoinHandle<int>>);
static_assert(!std::is_copy_assignable_v<JoinHandle<int>>);
static_assert(std::is_nothrow_move_constructible_v<JoinHandle<int>>);

// --- go ------------------------------------------------------------------------

Task<bool> go_many(long n) {
  std::atomic<long> counter{0};
  for (long i = 0; i < n; ++i) goro::go(bump_after_yields(&counter, static_cast<int>(i % 3)));
  co_return co_await yield_until_at_least(counter, n);
}

TEST(Go, DetachedGoroutinesRunToCompletion) {
  for (unsigned procs : {1u, 2u, 4u}) {
    EXPECT_TRUE(goro::run(go_many(1000), with_procs(procs))) << procs << " procs";
  }
}

Task<void> go_from_goroutine(std::atomic<long>* counter, int depth) {
  counter->fetch_add(1);
  if (depth > 0) {
    goro::go(go_from_goroutine(counter, depth - 1));
    goro::go(go_from_goroutine(counter, depth - 1));
  }
  co_return;
}

Task<bool> nested_go(int depth) {
  std::atomic<long> counter{0};
  goro::go(go_from_goroutine(&counter, depth));
  co_return co_await yield_until_at_least(counter, (1L << (depth + 1)) - 1);
}

TEST(Go, GoroutinesStartGoroutines) { EXPECT_TRUE(goro::run(nested_go(10), with_procs(3))); }

Task<void> guarded_body(Guard guard, bool* ran) {
  (void)guard;
  *ran = true;
  co_return;
}
Task<int> guarded_int_body(Guard guard, bool* ran) {
  (void)guard;
  *ran = true;
  co_return 1;
}

TEST(Go, WithoutARuntimeThrowsLogicErrorAndDestroysTheTask) {
  LifeCounts counts;
  bool ran = false;
  EXPECT_THROW(goro::go(guarded_body(Guard(counts), &ran)), std::logic_error);
  EXPECT_THROW((void)goro::spawn(guarded_int_body(Guard(counts), &ran)), std::logic_error);
  EXPECT_FALSE(ran);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> return_value(int v) { co_return v; }

TEST(Go, AfterRunReturnedThrowsLogicError) {
  EXPECT_EQ(goro::run(return_value(1), with_procs(2)), 1);
  std::atomic<long> counter{0};
  EXPECT_THROW(goro::go(bump(&counter)), std::logic_error);
  EXPECT_EQ(counter.load(), 0);
}

// --- spawn and join -------------------------------------------------------------

Task<long> spawn_and_join_values(int n) {
  std::vector<JoinHandle<int>> handles;
  for (int i = 0; i < n; ++i) handles.push_back(goro::spawn(value_after_yields(i, i % 4)));
  long sum = 0;
  for (auto& h : handles) sum += co_await h;
  co_return sum;
}

TEST(Spawn, JoinGivesEachChildsValue) {
  for (unsigned procs : {1u, 2u, 3u}) {
    EXPECT_EQ(goro::run(spawn_and_join_values(500), with_procs(procs)), 500L * 499 / 2);
  }
}

// Handles handed to another goroutine, which joins them: the children it
// runs inline have their entries on the spawner's P (runnext, the spawn
// stack or the local queue), which that P's worker later drops as dead.
Task<void> join_handed_over(goro::RecvChan<JoinHandle<int>> handles, goro::SendChan<long> sum) {
  long total = 0;
  for (;;) {
    std::optional<JoinHandle<int>> handle = co_await handles.recv();
    if (!handle) break;
    total += co_await *handle;
  }
  co_await sum.send(total);
}

Task<long> spawn_here_join_there(int n) {
  goro::Chan<JoinHandle<int>> handles = goro::make_chan<JoinHandle<int>>(16);
  goro::Chan<long> sum = goro::make_chan<long>(1);
  goro::go(join_handed_over(handles, sum));
  for (int i = 0; i < n; ++i) {
    co_await handles.send(goro::spawn(value_after_yields(i, i % 3 == 0 ? 1 : 0)));
  }
  handles.close();
  co_return *co_await sum.recv();
}

TEST(Spawn, HandlesJoinedByAnotherGoroutineGiveEachChildsValue) {
  for (unsigned procs : {1u, 2u, 4u}) {
    const long n = goro::test::scaled(20'000);
    EXPECT_EQ(goro::run(spawn_here_join_there(static_cast<int>(n)), with_procs(procs)),
              n * (n - 1) / 2);
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started) << procs << " procs";
  }
}

Task<std::unique_ptr<int>> make_unique_after_yield(int v) {
  co_await goro::yield();
  co_return std::make_unique<int>(v);
}

Task<int> join_move_only() {
  auto handle = goro::spawn(make_unique_after_yield(9));
  std::unique_ptr<int> p = co_await std::move(handle);
  co_return p ? *p : -1;
}

TEST(Spawn, JoinGivesAMoveOnlyValue) { EXPECT_EQ(goro::run(join_move_only(), with_procs(2)), 9); }

Task<void> void_child(std::atomic<long>* counter) {
  co_await goro::yield();
  counter->fetch_add(1);
}

Task<long> join_void_children() {
  std::atomic<long> counter{0};
  auto a = goro::spawn(void_child(&counter));
  auto b = goro::spawn(void_child(&counter));
  co_await a;
  co_await b;
  co_return counter.load();
}

TEST(Spawn, JoiningAVoidChildWaitsForIt) {
  EXPECT_EQ(goro::run(join_void_children(), with_procs(2)), 2);
}

struct JoinError {
  bool caught_coded = false;
  int code = 0;
  std::string what;
};

Task<JoinError> join_throwing_child(int yields) {
  JoinError result;
  auto handle = goro::spawn(throw_after_yields(42, yields));
  try {
    (void)co_await handle;
  } catch (const CodedError& e) {
    result.caught_coded = true;
    result.code = e.code;
    result.what = e.what();
  }
  co_return result;
}

TEST(Spawn, JoinRethrowsTheChildsExceptionWithTypeAndMessage) {
  for (int yields : {0, 3}) {  // inline join, and a child that parks the joiner
    for (unsigned procs : {1u, 2u}) {
      const JoinError e = goro::run(join_throwing_child(yields), with_procs(procs));
      EXPECT_TRUE(e.caught_coded);
      EXPECT_EQ(e.code, 42);
      EXPECT_EQ(e.what, "child failed");
    }
  }
}

// The child finishes before the join: the result waits in its frame.
Task<int> join_after_child_finished() {
  auto handle = goro::spawn(value_after_yields(5, 0));
  while (!handle.is_finished()) co_await goro::yield();
  co_return co_await handle;
}

TEST(Spawn, JoinAfterTheChildFinishedGivesItsValue) {
  EXPECT_EQ(goro::run(join_after_child_finished(), with_procs(1)), 5);
  EXPECT_EQ(goro::run(join_after_child_finished(), with_procs(2)), 5);
}

Task<bool> distinct_ids(int n) {
  std::vector<JoinHandle<int>> handles;
  std::set<std::uint64_t> ids;
  for (int i = 0; i < n; ++i) {
    handles.push_back(goro::spawn(return_value(i)));
    ids.insert(handles.back().id());
  }
  bool ok = ids.size() == static_cast<std::size_t>(n) && ids.count(0) == 0 && ids.count(1) == 0;
  for (auto& h : handles) (void)co_await h;
  co_return ok;
}

TEST(JoinHandle, IdsAreDistinctAndNotMains) {
  EXPECT_TRUE(goro::run(distinct_ids(300), with_procs(2)));
}

// A child its joiner runs inline is still its own goroutine while it runs
// (diagnostics name it), and the joiner is itself again afterwards, also
// when the child threw or parked on the way.
Task<std::uint64_t> own_id(bool park, bool fail) {
  if (park) co_await goro::sleep(1ms);  // parks inside the joiner's join
  const std::uint64_t id = goro::detail::current_goroutine()->id;
  if (fail) throw CodedError("inline child", 7);
  co_return id;
}

Task<bool> inline_children_run_as_themselves() {
  const std::uint64_t self = goro::detail::current_goroutine()->id;
  const std::uint64_t inline_joins = goro::scheduler_stats().inline_joins;
  bool ok = true;
  for (const bool park : {false, true}) {
    auto child = goro::spawn(own_id(park, /*fail=*/false));
    const std::uint64_t child_id = child.id();
    const std::uint64_t seen = co_await child;  // nobody started it: inline
    ok = ok && seen == child_id && child_id != self;
    ok = ok && goro::detail::current_goroutine()->id == self;
    auto failing = goro::spawn(own_id(park, /*fail=*/true));
    try {
      (void)co_await failing;
      ok = false;
    } catch (const CodedError& e) {
      ok = ok && e.code == 7;
    }
    ok = ok && goro::detail::current_goroutine()->id == self;
  }
  // Four inline joins, or the test did not test what it says.
  const bool all_inline = goro::scheduler_stats().inline_joins == inline_joins + 4;
  co_return all_inline ? ok : false;
}

TEST(JoinHandle, AChildJoinedInlineRunsAsItselfAndItsJoinerResumesAsItself) {
  EXPECT_TRUE(goro::run(inline_children_run_as_themselves(), with_procs(1)));
}

// --- JoinHandle states ------------------------------------------------------------

Task<int> wait_for_flag(const std::atomic<bool>* flag, int value) {
  while (!flag->load()) co_await goro::yield();
  co_return value;
}

struct FinishedStates {
  bool before = true;
  bool after = false;
  bool valid_after_join = true;
  int value = 0;
};

Task<FinishedStates> observe_is_finished() {
  FinishedStates s;
  std::atomic<bool> release{false};
  auto handle = goro::spawn(wait_for_flag(&release, 11));
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  s.before = handle.is_finished();
  release = true;
  // Bounded by time, not by a count of yields: the child may sit on a P
  // whose thread the OS does not run for a while.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!handle.is_finished() && std::chrono::steady_clock::now() < give_up) {
    co_await goro::yield();
  }
  s.after = handle.is_finished();
  s.value = co_await handle;
  s.valid_after_join = handle.valid();
  co_return s;
}

TEST(JoinHandle, IsFinishedBecomesTrueWhenTheChildReturns) {
  for (unsigned procs : {1u, 2u}) {
    const FinishedStates s = goro::run(observe_is_finished(), with_procs(procs));
    EXPECT_FALSE(s.before);
    EXPECT_TRUE(s.after);
    EXPECT_EQ(s.value, 11);
    EXPECT_FALSE(s.valid_after_join);
  }
}

TEST(JoinHandle, DefaultConstructedIsEmpty) {
  JoinHandle<int> handle;
  EXPECT_FALSE(handle.valid());
  EXPECT_FALSE(handle.is_finished());
  EXPECT_EQ(handle.id(), 0u);
  handle.detach();  // harmless
  EXPECT_FALSE(handle.valid());
}

struct AwaitEmpty {
  int first = 0;
  bool second_threw_logic_error = false;
  bool default_threw_logic_error = false;
  bool moved_from_threw_logic_error = false;
  int moved_to = 0;
};

Task<AwaitEmpty> await_empty_handles() {
  AwaitEmpty r;
  auto handle = goro::spawn(value_after_yields(4, 1));
  r.first = co_await handle;
  try {
    (void)co_await handle;
  } catch (const std::logic_error&) {
    r.second_threw_logic_error = true;
  }
  JoinHandle<int> empty;
  try {
    (void)co_await empty;
  } catch (const std::logic_error&) {
    r.default_threw_logic_error = true;
  }
  auto source = goro::spawn(value_after_yields(8, 1));
  const std::uint64_t id = source.id();
  JoinHandle<int> target = std::move(source);
  try {
    (void)co_await source;  // NOLINT(bugprone-use-after-move): the contract
  } catch (const std::logic_error&) {
    r.moved_from_threw_logic_error = true;
  }
  r.moved_to = target.id() == id ? co_await target : -1;
  co_return r;
}

TEST(JoinHandle, AwaitingAnEmptyHandleThrowsLogicError) {
  const AwaitEmpty r = goro::run(await_empty_handles(), with_procs(2));
  EXPECT_EQ(r.first, 4);
  EXPECT_TRUE(r.second_threw_logic_error) << "awaiting a joined handle again";
  EXPECT_TRUE(r.default_threw_logic_error);
  EXPECT_TRUE(r.moved_from_threw_logic_error);
  EXPECT_EQ(r.moved_to, 8);
}

Task<void> guarded_bump_after_yields(Guard guard, std::atomic<long>* counter, int yields) {
  (void)guard;
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  counter->fetch_add(1);
}

Task<bool> drop_handles(long n, LifeCounts* counts) {
  std::atomic<long> counter{0};
  for (long i = 0; i < n; ++i) {
    // Dropped at once, before the child runs...
    (void)goro::spawn(guarded_bump_after_yields(Guard(*counts), &counter, static_cast<int>(i % 3)));
  }
  for (long i = 0; i < n; ++i) {
    // ...or detached explicitly.
    auto handle = goro::spawn(guarded_bump_after_yields(Guard(*counts), &counter, 2));
    handle.detach();
    if (handle.valid()) co_return false;
  }
  co_return co_await yield_until_at_least(counter, 2 * n);
}

TEST(JoinHandle, DroppingOrDetachingLetsTheGoroutineRunToCompletion) {
  for (unsigned procs : {1u, 3u}) {
    LifeCounts counts;
    EXPECT_TRUE(goro::run(drop_handles(200, &counts), with_procs(procs)));
    EXPECT_EQ(counts.alive(), 0);  // every frame destroyed (ASan: no leak)
  }
}

Task<bool> drop_after_finish() {
  auto handle = goro::spawn(value_after_yields(1, 0));
  while (!handle.is_finished()) co_await goro::yield();
  handle.detach();  // frees the finished child's frame and record
  co_return !handle.valid();
}

TEST(JoinHandle, DetachingAFinishedChildFreesIt) {
  EXPECT_TRUE(goro::run(drop_after_finish(), with_procs(2)));
}

// A parameter of a child whose destructor starts a goroutine. The joiner
// destroys the child's frame (and so the parameter) after the child's
// record went back to the P's cache, so the goroutine started here may
// take that very record while the frame's destruction is under way.
Task<void> count_one(std::atomic<int>* ran) {
  ran->fetch_add(1);
  co_return;
}

class StartsAGoroutineWhenDestroyed {
 public:
  explicit StartsAGoroutineWhenDestroyed(std::atomic<int>* ran) noexcept : ran_(ran) {}
  StartsAGoroutineWhenDestroyed(StartsAGoroutineWhenDestroyed&& other) noexcept
      : ran_(std::exchange(other.ran_, nullptr)) {}
  StartsAGoroutineWhenDestroyed& operator=(StartsAGoroutineWhenDestroyed&&) = delete;
  ~StartsAGoroutineWhenDestroyed() {
    if (ran_ != nullptr) goro::go(count_one(ran_));
  }

 private:
  std::atomic<int>* ran_;
};

Task<int> doubled_keeping(StartsAGoroutineWhenDestroyed, int x) { co_return 2 * x; }

Task<int> join_children_whose_parameters_start_goroutines(std::atomic<int>* ran) {
  int sum = 0;
  for (int i = 0; i < 100; ++i) {
    sum += co_await goro::spawn(doubled_keeping(StartsAGoroutineWhenDestroyed(ran), i));
  }
  while (ran->load() < 100) co_await goro::yield();
  co_return sum;
}

TEST(JoinHandle, AChildWhoseFrameStartsAGoroutineAsItIsDestroyedIsReleasedCleanly) {
  for (unsigned procs : {1U, 2U}) {
    std::atomic<int> ran{0};
    EXPECT_EQ(goro::run(join_children_whose_parameters_start_goroutines(&ran), with_procs(procs)),
              9900);
    EXPECT_EQ(ran.load(), 100);
  }
}

// Records what Config::on_uncaught_exception receives.
struct UncaughtRecord {
  std::mutex mu;
  std::set<std::uint64_t> ids;  // guarded by mu
  std::set<int> codes;          // guarded by mu
  std::atomic<long> count{0};

  goro::Config config(unsigned procs) {
    goro::Config config = with_procs(procs);
    config.on_uncaught_exception = [this](std::uint64_t id, std::exception_ptr error) {
      int code = -1;
      try {
        std::rethrow_exception(error);
      } catch (const CodedError& e) {
        code = e.code;
      } catch (...) {
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(id);
        codes.insert(code);
      }
      count.fetch_add(1);  // last: the sets are filled in
    };
    return config;
  }
};

// Handles dropped before their goroutines throw (each child yields first;
// spawn queues it unstarted).
Task<bool> drop_handles_then_children_throw(long n, std::set<std::uint64_t>* ids,
                                            const std::atomic<long>* reported) {
  for (int i = 0; i < n; ++i) {
    auto handle = goro::spawn(throw_after_yields(i, 1 + i % 2));
    ids->insert(handle.id());
  }  // each handle dropped here, its child not finished
  co_return co_await yield_until_at_least(*reported, n);
}

// Children that throw and finish before their handles are dropped.
Task<bool> children_throw_then_handles_dropped(long n, std::set<std::uint64_t>* ids,
                                               const std::atomic<long>* reported) {
  std::vector<JoinHandle<int>> handles;
  for (int i = 0; i < n; ++i) {
    handles.push_back(goro::spawn(throw_after_yields(i, i % 2)));
    ids->insert(handles.back().id());
  }
  for (auto& handle : handles) {
    while (!handle.is_finished()) co_await goro::yield();
  }
  if (reported->load() != 0) co_return false;  // nothing reported while a handle could read it
  handles.clear();                             // drops them: each reports its child's exception
  co_return reported->load() == n;
}

TEST(JoinHandle, ExceptionOfAGoroutineWhoseHandleWasDroppedIsReported) {
  constexpr long kChildren = 20;
  for (unsigned procs : {1u, 3u}) {
    for (bool handle_dropped_first : {true, false}) {
      UncaughtRecord record;
      std::set<std::uint64_t> ids;
      const goro::Config config = record.config(procs);
      const bool ok =
          handle_dropped_first
              ? goro::run(drop_handles_then_children_throw(kChildren, &ids, &record.count), config)
              : goro::run(children_throw_then_handles_dropped(kChildren, &ids, &record.count),
                          config);
      EXPECT_TRUE(ok) << "procs=" << procs << " handle_dropped_first=" << handle_dropped_first;
      EXPECT_EQ(record.count.load(), kChildren);
      std::lock_guard<std::mutex> lock(record.mu);
      EXPECT_EQ(record.ids, ids);
      EXPECT_EQ(record.codes.size(), static_cast<std::size_t>(kChildren));
      const goro::SchedulerStats stats = goro::scheduler_stats();
      EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
    }
  }
}

// Holds the handle of a child that threw and finished, then parks for
// ever: the shutdown sweep destroys it, dropping the handle.
Task<void> hold_a_thrown_result_and_park(goro::Chan<int> never, std::atomic<bool>* holding) {
  auto handle = goro::spawn(throw_after_yields(3, 0));
  while (!handle.is_finished()) co_await goro::yield();
  holding->store(true);
  (void)co_await never.recv();
}

Task<bool> return_while_a_goroutine_holds_a_thrown_result(std::atomic<bool>* holding) {
  goro::Chan<int> never;
  goro::go(hold_a_thrown_result_and_park(never, holding));
  while (!holding->load()) co_await goro::yield();
  co_return true;  // main returns: the sweep drops the handle
}

// Go's main returning ends the program without a word about other
// goroutines; a handle that only the shutdown sweep drops reports nothing
// (with no handler set, a report would abort the process).
TEST(JoinHandle, HandleDroppedByTheShutdownSweepReportsNothing) {
  for (unsigned procs : {1u, 2u}) {
    std::atomic<bool> holding{false};
    EXPECT_TRUE(
        goro::run(return_while_a_goroutine_holds_a_thrown_result(&holding), with_procs(procs)));
    EXPECT_TRUE(holding.load());
  }
}

Task<bool> await_throwing_children(long n) {
  long caught = 0;
  for (int i = 0; i < n; ++i) {
    try {
      (void)co_await goro::spawn(throw_after_yields(i, i % 2));
    } catch (const CodedError&) {
      ++caught;
    }
  }
  co_return caught == n;
}

TEST(JoinHandle, ExceptionReadThroughTheHandleIsNotReported) {
  UncaughtRecord record;
  EXPECT_TRUE(goro::run(await_throwing_children(20), record.config(2)));
  EXPECT_EQ(record.count.load(), 0);
}

// --- from outside the runtime -----------------------------------------------------

struct OutsideResult {
  bool all_ran = false;
  long joined_sum = -1;
  bool all_handles_valid = false;
};

Task<OutsideResult> spawn_from_outside_thread(long n) {
  std::atomic<long> counter{0};
  std::atomic<bool> thread_done{false};
  std::mutex mu;
  std::vector<JoinHandle<int>> handles;  // guarded by mu
  std::thread outside([&] {
    for (long i = 0; i < n; ++i) {
      goro::go(bump_after_yields(&counter, static_cast<int>(i % 2)));
      JoinHandle<int> h =
          goro::spawn(value_after_yields(static_cast<int>(i), static_cast<int>(i % 3)));
      std::lock_guard<std::mutex> lock(mu);
      handles.push_back(std::move(h));
    }
    thread_done = true;
  });
  OutsideResult r;
  const bool thread_finished = co_await yield_until_set(thread_done);
  outside.join();
  r.all_ran = thread_finished && co_await yield_until_at_least(counter, n);
  std::vector<JoinHandle<int>> mine;
  {
    std::lock_guard<std::mutex> lock(mu);
    mine.swap(handles);
  }
  r.all_handles_valid = mine.size() == static_cast<std::size_t>(n);
  long sum = 0;
  for (auto& h : mine) {
    r.all_handles_valid = r.all_handles_valid && h.valid();
    sum += co_await h;
  }
  r.joined_sum = sum;
  co_return r;
}

TEST(Go, FromAThreadOutsideTheRuntime) {
  constexpr long kN = 300;
  for (unsigned procs : {1u, 2u}) {
    const OutsideResult r = goro::run(spawn_from_outside_thread(kN), with_procs(procs));
    EXPECT_TRUE(r.all_ran);
    EXPECT_TRUE(r.all_handles_valid);
    EXPECT_EQ(r.joined_sum, kN * (kN - 1) / 2);
    const goro::SchedulerStats stats = goro::scheduler_stats();
    EXPECT_EQ(stats.goroutines_started, 2 * kN + 1);
    EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
  }
}

// --- uncaught exceptions -----------------------------------------------------------

std::atomic<std::uint64_t> thrower_id{0};

Task<void> detached_thrower(int yields) {
  thrower_id = goro::detail::current_goroutine()->id;
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  throw CodedError("boom-in-goroutine", 5);
}

Task<bool> start_thrower_and_wait(const std::atomic<long>* handled) {
  goro::go(detached_thrower(2));
  co_return co_await yield_until_at_least(*handled, 1);
}

TEST(UncaughtException, GoesToTheConfiguredHandlerWithTheGoroutineId) {
  std::atomic<long> handled{0};
  std::uint64_t id = 0;
  int code = 0;
  std::string what;
  goro::Config config = with_procs(2);
  config.on_uncaught_exception = [&](std::uint64_t goroutine_id, std::exception_ptr error) {
    id = goroutine_id;
    try {
      std::rethrow_exception(error);
    } catch (const CodedError& e) {
      code = e.code;
      what = e.what();
    } catch (...) {
    }
    handled.fetch_add(1);  // last: publishes the fields above
  };
  thrower_id = 0;
  EXPECT_TRUE(goro::run(start_thrower_and_wait(&handled), config));
  EXPECT_EQ(handled.load(), 1);
  EXPECT_NE(id, 0u);
  EXPECT_EQ(id, thrower_id.load());
  EXPECT_EQ(code, 5);
  EXPECT_EQ(what, "boom-in-goroutine");
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.goroutines_finished, stats.goroutines_started);
}

Task<void> wait_forever_for_abort() {
  goro::go(detached_thrower(1));
  for (;;) co_await goro::yield();
}

TEST(UncaughtExceptionDeathTest, WithoutAHandlerPrintsTheGoroutineAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(goro::run(wait_forever_for_abort(), with_procs(2)),
               "goroutine [0-9]+: uncaught exception: boom-in-goroutine");
}

// Yields until the report aborts the process; returns (and so fails the
// death test) if none came within a minute.
Task<void> yield_for_a_minute() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline) co_await goro::yield();
}

Task<void> drop_handle_of_thrower_and_wait() {
  (void)goro::spawn(throw_after_yields(7, 1));
  co_await yield_for_a_minute();
}

Task<void> drop_handle_of_finished_thrower() {
  auto handle = goro::spawn(throw_after_yields(7, 0));
  while (!handle.is_finished()) co_await goro::yield();
  handle.detach();
  co_await yield_for_a_minute();
}

TEST(UncaughtExceptionDeathTest, DroppedHandleWithoutAHandlerPrintsTheGoroutineAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(goro::run(drop_handle_of_thrower_and_wait(), with_procs(2)),
               "goroutine [0-9]+: uncaught exception: child failed");
  EXPECT_DEATH(goro::run(drop_handle_of_finished_thrower(), with_procs(2)),
               "goroutine [0-9]+: uncaught exception: child failed");
}

// --- shutdown with live goroutines ----------------------------------------------------

Task<void> park_with_guard(Guard guard, std::atomic<long>* started) {
  (void)guard;
  Guard local(guard);
  started->fetch_add(1);
  co_await ParkForever{};
  ADD_FAILURE() << "a parked goroutine was resumed";
}

Task<void> yield_forever_with_guard(Guard guard, std::atomic<long>* started) {
  Guard local(guard);
  started->fetch_add(1);
  for (;;) co_await goro::yield();
}

Task<int> joinable_park_with_guard(Guard guard, std::atomic<long>* started) {
  Guard local(guard);
  started->fetch_add(1);
  co_await ParkForever{};
  co_return 0;
}

// Parks in a join on a child that parks for good.
Task<void> join_a_parked_child(Guard guard, std::atomic<long>* started) {
  Guard local(guard);
  auto child = goro::spawn(joinable_park_with_guard(guard, started));
  co_await goro::yield();  // let the child start elsewhere (or inline it below)
  started->fetch_add(1);
  (void)co_await child;
  ADD_FAILURE() << "joined a child that never finishes";
}

// Joins a child at once, so that it runs the child inline (nobody has
// started it), and the child parks for good: the joiner parks inside it.
Task<void> join_inline_a_child_that_parks(Guard guard, std::atomic<long>* started) {
  Guard local(guard);
  started->fetch_add(1);
  (void)co_await goro::spawn(joinable_park_with_guard(guard, started));
  ADD_FAILURE() << "joined a child that never finishes";
}

// Holds the handle of a finished child while parked.
Task<void> hold_finished_child(Guard guard, std::atomic<long>* started) {
  Guard local(guard);
  auto child = goro::spawn(return_value(3));
  while (!child.is_finished()) co_await goro::yield();
  started->fetch_add(1);
  co_await ParkForever{};
}

Task<long> start_doomed_goroutines(LifeCounts* counts, long each) {
  std::atomic<long> started{0};
  std::vector<JoinHandle<int>> kept;  // dropped when main returns
  for (long i = 0; i < each; ++i) {
    goro::go(park_with_guard(Guard(*counts), &started));
    goro::go(yield_forever_with_guard(Guard(*counts), &started));
    (void)goro::spawn(joinable_park_with_guard(Guard(*counts), &started));
    kept.push_back(goro::spawn(joinable_park_with_guard(Guard(*counts), &started)));
    goro::go(join_a_parked_child(Guard(*counts), &started));
    goro::go(hold_finished_child(Guard(*counts), &started));
    goro::go(join_inline_a_child_that_parks(Guard(*counts), &started));
  }
  // join_a_parked_child and join_inline_a_child_that_parks count twice
  // (themselves and their children).
  const bool all = co_await yield_until_at_least(started, 9 * each);
  co_return all ? started.load() : -1;
}

TEST(Shutdown, DestroysParkedRunnableAndJoiningGoroutines) {
  for (unsigned procs : {1u, 2u, 4u}) {
    LifeCounts counts;
    const long each = 20;
    EXPECT_EQ(goro::run(start_doomed_goroutines(&counts, each), with_procs(procs)), 9 * each);
    EXPECT_GT(counts.constructed.load(), 9 * each);
    EXPECT_EQ(counts.alive(), 0) << procs << " procs: goroutine frames not destroyed";
  }
}

// A destructor that runs during the shutdown sweep starts goroutines: the
// runtime is stopping, so their tasks are destroyed unrun (go) or the
// handle comes back empty (spawn), and nothing throws.
struct StartsGoroutinesWhenDestroyed {
  LifeCounts* counts;
  bool* ran;
  bool* spawn_handle_valid;
  ~StartsGoroutinesWhenDestroyed() {
    goro::go(guarded_body(Guard(*counts), ran));
    JoinHandle<int> h = goro::spawn(guarded_int_body(Guard(*counts), ran));
    *spawn_handle_valid = h.valid();
  }
};

Task<void> park_and_start_on_destruction(LifeCounts* counts, bool* ran, bool* valid,
                                         std::atomic<long>* parked) {
  StartsGoroutinesWhenDestroyed starter{counts, ran, valid};
  parked->fetch_add(1);
  co_await ParkForever{};
}

Task<bool> leave_a_starter_parked(LifeCounts* counts, bool* ran, bool* valid) {
  std::atomic<long> parked{0};
  goro::go(park_and_start_on_destruction(counts, ran, valid, &parked));
  co_return co_await yield_until_at_least(parked, 1);
}

TEST(Shutdown, GoroutinesStartedByDestructorsDuringShutdownAreDestroyedUnrun) {
  LifeCounts counts;
  bool ran = false;
  bool spawn_handle_valid = true;
  EXPECT_TRUE(goro::run(leave_a_starter_parked(&counts, &ran, &spawn_handle_valid), with_procs(2)));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(spawn_handle_valid);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_GE(counts.constructed.load(), 2);
}

TEST(Shutdown, GoroutinesRefusedDuringShutdownAreNotCountedAsStarted) {
  LifeCounts counts;
  bool ran = false;
  bool spawn_handle_valid = true;
  EXPECT_TRUE(goro::run(leave_a_starter_parked(&counts, &ran, &spawn_handle_valid), with_procs(1)));
  // main and the parked goroutine started; the two refused at shutdown did not.
  EXPECT_EQ(goro::scheduler_stats().goroutines_started, 2u);
}

// A million goroutines alive at once: each parks for good; main waits until
// all have started, and shutdown destroys them all.
Task<void> count_and_park(Guard guard, std::atomic<long>* parked) {
  (void)guard;
  parked->fetch_add(1, std::memory_order_relaxed);
  co_await ParkForever{};
}

Task<long> million_parked(LifeCounts* counts, long n) {
  std::atomic<long> parked{0};
  for (long i = 0; i < n; ++i) goro::go(count_and_park(Guard(*counts), &parked));
  co_await yield_until_at_least(parked, n);
  co_return parked.load();
}

TEST(Shutdown, AMillionGoroutinesAliveAtOnceAreAllDestroyed) {
  const long n = goro::test::scaled(1'000'000);
  LifeCounts counts;
  EXPECT_EQ(goro::run(million_parked(&counts, n), with_procs(2)), n);
  EXPECT_EQ(counts.alive(), 0);
  const goro::SchedulerStats stats = goro::scheduler_stats();
  EXPECT_EQ(stats.goroutines_started, static_cast<std::uint64_t>(n) + 1);
  EXPECT_EQ(stats.goroutines_finished, 1u);  // only main
}

}  // namespace
