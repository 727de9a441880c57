// task_test: goro::Task<T> on its own (driven by a minimal eager coroutine
// defined here) and inside goro::run: laziness, results and exceptions,
// ownership, frame destruction, and constant stack depth across millions of
// synchronously completing awaits (this binary also runs at -O0 with clang
// and g++ in CI).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <coroutine>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <goro/goro.hpp>

#include "test_util.hpp"

namespace {

using goro::Task;
using goro::test::CodedError;
using goro::test::Guard;
using goro::test::LifeCounts;
using goro::test::ParkForever;

// A minimal eager coroutine that lets a test start a Task without the
// runtime: it runs until its first suspension as soon as it is called. Its
// frame (and whatever it awaits) is destroyed with the Driver.
class Driver {
 public:
  struct promise_type {
    bool finished = false;
    std::exception_ptr error;
    Driver get_return_object() noexcept {
      return Driver(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept { finished = true; }
    void unhandled_exception() noexcept {
      error = std::current_exception();
      finished = true;
    }
  };

  Driver(Driver&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Driver& operator=(Driver&&) = delete;
  ~Driver() { reset(); }

  void reset() {
    if (handle_) std::exchange(handle_, nullptr).destroy();
  }
  [[nodiscard]] bool finished() const { return handle_.promise().finished; }
  [[nodiscard]] std::exception_ptr error() const { return handle_.promise().error; }

 private:
  explicit Driver(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

template <class T>
Driver drive(Task<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}

Driver drive_void(Task<void> task, bool* done) {
  co_await std::move(task);
  *done = true;
}

// Awaits `task` by lvalue: the caller keeps ownership of the Task.
Driver drive_ref(Task<int>& task, std::optional<int>* out) { *out = co_await task; }

// --- coroutines under test ---------------------------------------------------

Task<int> set_flag_and_return(bool* ran, int value) {
  *ran = true;
  co_return value;
}

Task<void> set_flag(bool* ran) {
  *ran = true;
  co_return;
}

Task<int> answer() { co_return 42; }
Task<int> twice() { co_return 2 * co_await answer(); }
Task<int> add_nested(int depth) {
  if (depth == 0) co_return 1;
  const int below = co_await add_nested(depth - 1);
  co_return below + 1;
}

Task<int> throws_coded(int code) {
  throw CodedError("coded failure", code);
  co_return 0;
}

Task<void> void_throws() {
  throw std::out_of_range("void failure");
  co_return;
}

// Awaits a throwing task, catches, and carries on.
Task<int> catches_and_continues() {
  int code = 0;
  try {
    co_await throws_coded(7);
  } catch (const CodedError& e) {
    code = e.code;
  }
  co_return code + co_await answer();
}

// Lets the exception through an intermediate frame.
Task<int> passes_through() { co_return 1 + co_await throws_coded(9); }

Task<std::unique_ptr<int>> make_unique_int(int value) { co_return std::make_unique<int>(value); }
Task<std::unique_ptr<int>> forward_unique(int value) {
  std::unique_ptr<int> p = co_await make_unique_int(value);
  *p += 1;
  co_return p;
}

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  NoDefault(NoDefault&&) = default;
  int value;
};
Task<NoDefault> make_no_default(int v) { co_return NoDefault(v); }

Task<Guard> make_guard(LifeCounts* counts) { co_return Guard(*counts); }

Task<int> with_guard_param(Guard guard, bool* ran) {
  (void)guard;
  *ran = true;
  co_return 1;
}

// A chain of three frames, each holding a Guard local; the innermost parks
// for good. `reached_end` would be set only if a frame ever resumed past
// its await.
Task<void> chain_leaf(LifeCounts* counts, bool* reached_end) {
  Guard guard(*counts);
  co_await ParkForever{};
  *reached_end = true;
}
Task<int> chain_middle(LifeCounts* counts, bool* reached_end) {
  Guard guard(*counts);
  co_await chain_leaf(counts, reached_end);
  *reached_end = true;
  co_return 1;
}
Task<int> chain_outer(LifeCounts* counts, bool* reached_end) {
  Guard guard(*counts);
  const int v = co_await chain_middle(counts, reached_end);
  *reached_end = true;
  co_return v;
}

Task<bool> give(bool value) { co_return value; }

// Awaits in an if condition and declares no named local variable: the
// shape whose frame g++ 12 lays out with the promise out of place (see
// goro/detail/frame_allocator.hpp, Frame layout check).
Task<int> await_in_if_condition_without_locals(int value) {
  if (!co_await give(true)) co_return -1;
  co_return value;
}

// --- laziness ----------------------------------------------------------------

TEST(Task, BodyDoesNotRunUntilAwaited) {
  bool ran = false;
  Task<int> task = set_flag_and_return(&ran, 5);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(task.valid());
  std::optional<int> out;
  Driver driver = drive(std::move(task), &out);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(driver.finished());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, 5);
}

TEST(Task, VoidBodyDoesNotRunUntilAwaited) {
  bool ran = false;
  bool done = false;
  Task<void> task = set_flag(&ran);
  EXPECT_FALSE(ran);
  Driver driver = drive_void(std::move(task), &done);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(done);
  EXPECT_TRUE(driver.finished());
}

TEST(Task, UnstartedTaskNeverRunsAndDestroysItsParametersOnce) {
  LifeCounts counts;
  bool ran = false;
  {
    Task<int> task = with_guard_param(Guard(counts), &ran);
    EXPECT_EQ(counts.alive(), 1);  // the copy in the frame
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_GE(counts.constructed.load(), 1);
}

// --- results -----------------------------------------------------------------

TEST(Task, ValuePropagatesThroughNestedAwaits) {
  std::optional<int> out;
  Driver driver = drive(twice(), &out);
  EXPECT_TRUE(driver.finished());
  EXPECT_EQ(out, 84);

  std::optional<int> deep;
  Driver deep_driver = drive(add_nested(1000), &deep);
  EXPECT_EQ(deep, 1001);
}

TEST(Task, AwaitingAnLvalueTaskGivesItsValue) {
  Task<int> task = answer();
  std::optional<int> out;
  Driver driver = drive_ref(task, &out);
  EXPECT_EQ(out, 42);
  EXPECT_TRUE(task.valid());  // still owned by the caller, destroyed at scope end
}

TEST(Task, ExceptionPropagatesToTheAwaiterWithTypeAndMessage) {
  std::optional<int> out;
  Driver driver = drive(passes_through(), &out);
  EXPECT_TRUE(driver.finished());
  EXPECT_FALSE(out.has_value());
  ASSERT_TRUE(driver.error());
  try {
    std::rethrow_exception(driver.error());
  } catch (const CodedError& e) {
    EXPECT_STREQ(e.what(), "coded failure");
    EXPECT_EQ(e.code, 9);
  } catch (...) {
    ADD_FAILURE() << "wrong exception type";
  }
}

TEST(Task, VoidTaskExceptionPropagates) {
  bool done = false;
  Driver driver = drive_void(void_throws(), &done);
  EXPECT_FALSE(done);
  ASSERT_TRUE(driver.error());
  EXPECT_THROW(std::rethrow_exception(driver.error()), std::out_of_range);
}

TEST(Task, AwaiterCanCatchAndContinue) {
  std::optional<int> out;
  Driver driver = drive(catches_and_continues(), &out);
  EXPECT_FALSE(driver.error());
  EXPECT_EQ(out, 7 + 42);
}

TEST(Task, MoveOnlyResultType) {
  std::optional<std::unique_ptr<int>> out;
  Driver driver = drive(forward_unique(41), &out);
  ASSERT_TRUE(out.has_value());
  ASSERT_NE(*out, nullptr);
  EXPECT_EQ(**out, 42);
}

TEST(Task, ResultTypeWithoutDefaultConstructor) {
  std::optional<NoDefault> out;
  Driver driver = drive(make_no_default(3), &out);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->value, 3);
}

TEST(Task, ResultObjectIsDestroyedExactlyOnce) {
  LifeCounts counts;
  {
    std::optional<Guard> out;
    Driver driver = drive(make_guard(&counts), &out);
    EXPECT_TRUE(out.has_value());
  }
  EXPECT_GE(counts.constructed.load(), 1);
  EXPECT_EQ(counts.alive(), 0);
}

// --- ownership ---------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<Task<int>>);
static_assert(!std::is_copy_assignable_v<Task<int>>);
static_assert(!std::is_copy_constructible_v<Task<void>>);
static_assert(!std::is_copy_assignable_v<Task<void>>);
static_assert(std::is_nothrow_move_constructible_v<Task<int>>);
static_assert(std::is_nothrow_move_assignable_v<Task<int>>);
static_assert(std::is_nothrow_move_constructible_v<Task<void>>);
static_assert(std::is_same_v<Task<int>::value_type, int>);

TEST(Task, DefaultConstructedTaskIsEmpty) {
  Task<int> task;
  EXPECT_FALSE(task.valid());
  Task<void> void_task;
  EXPECT_FALSE(void_task.valid());
}

TEST(Task, MoveLeavesTheSourceEmpty) {
  Task<int> a = answer();
  Task<int> b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_TRUE(b.valid());
  std::optional<int> out;
  Driver driver = drive(std::move(b), &out);
  EXPECT_EQ(out, 42);
}

TEST(Task, MoveAssignmentDestroysTheOverwrittenFrame) {
  LifeCounts first;
  LifeCounts second;
  bool ran_first = false;
  bool ran_second = false;
  Task<int> a = with_guard_param(Guard(first), &ran_first);
  Task<int> b = with_guard_param(Guard(second), &ran_second);
  EXPECT_EQ(first.alive(), 1);
  a = std::move(b);
  EXPECT_EQ(first.alive(), 0);   // a's old frame is gone
  EXPECT_EQ(second.alive(), 1);  // b's frame now belongs to a
  EXPECT_FALSE(b.valid());       // NOLINT(bugprone-use-after-move)
  std::optional<int> out;
  Driver driver = drive(std::move(a), &out);
  EXPECT_FALSE(ran_first);
  EXPECT_TRUE(ran_second);
  EXPECT_EQ(out, 1);
}

// A compiler that lays such a frame out right (clang) runs the coroutine;
// one that does not (g++ 12) must be stopped where the Task is made, with
// a message naming the cause, rather than leave a frame that misbehaves
// when resumed (without the check, g++'s build returns a wrong value or
// crashes here).
TEST(Task, FrameWithPromiseOutOfPlaceRunsRightOrStopsWhereItIsMade) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::optional<int> out;
        Driver driver = drive(await_in_if_condition_without_locals(7), &out);
        std::exit(out == 7 ? 0 : 1);
      },
      [](int status) {
        return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
               (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
      },
      "^$|promise out of place.*name the awaited value first");
}

TEST(Task, ReleaseHandsOverTheFrame) {
  LifeCounts counts;
  bool ran = false;
  Task<int> task = with_guard_param(Guard(counts), &ran);
  auto handle = task.release();
  EXPECT_FALSE(task.valid());
  ASSERT_TRUE(handle);
  EXPECT_EQ(counts.alive(), 1);  // not destroyed with the (now empty) Task
  handle.destroy();
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_FALSE(ran);
}

// --- destroying suspended chains ---------------------------------------------

TEST(Task, DestroyingTheOutermostTaskOfASuspendedChainDestroysEveryFrameOnce) {
  LifeCounts counts;
  bool reached_end = false;
  Task<int> outer = chain_outer(&counts, &reached_end);
  std::optional<int> out;
  Driver driver = drive_ref(outer, &out);
  // All three frames are alive, the leaf parked.
  EXPECT_FALSE(driver.finished());
  EXPECT_EQ(counts.constructed.load(), 3);
  EXPECT_EQ(counts.destroyed.load(), 0);
  outer = Task<int>();  // destroys the chain
  EXPECT_EQ(counts.constructed.load(), 3);
  EXPECT_EQ(counts.destroyed.load(), 3);
  EXPECT_FALSE(reached_end);
  EXPECT_FALSE(out.has_value());
  driver.reset();  // the driver's own frame (it owns no Task here)
  EXPECT_EQ(counts.destroyed.load(), 3);
}

TEST(Task, DestroyingTheAwaiterOfASuspendedChainDestroysEveryFrameOnce) {
  LifeCounts counts;
  bool reached_end = false;
  std::optional<int> out;
  Driver driver = drive(chain_outer(&counts, &reached_end), &out);
  EXPECT_FALSE(driver.finished());
  EXPECT_EQ(counts.alive(), 3);
  driver.reset();  // the driver's frame owns the outer Task
  EXPECT_EQ(counts.constructed.load(), 3);
  EXPECT_EQ(counts.destroyed.load(), 3);
  EXPECT_FALSE(reached_end);
}

// Inside the runtime: a goroutine parked three frames deep is destroyed by
// run()'s shutdown, every frame once.
std::atomic<long> parked_chains{0};

Task<void> parked_chain_goroutine(LifeCounts* counts, bool* reached_end) {
  Guard guard(*counts);
  parked_chains.fetch_add(1);
  co_await chain_outer(counts, reached_end);
  *reached_end = true;
}

Task<bool> start_parked_chains(LifeCounts* counts, bool* reached_end, long n) {
  for (long i = 0; i < n; ++i) goro::go(parked_chain_goroutine(counts, reached_end));
  co_return co_await goro::test::yield_until_at_least(parked_chains, n);
}

TEST(Task, ChainParkedInAGoroutineIsDestroyedAtShutdown) {
  LifeCounts counts;
  bool reached_end = false;
  parked_chains = 0;
  const bool all_parked =
      goro::run(start_parked_chains(&counts, &reached_end, 8), goro::test::with_procs(2));
  EXPECT_TRUE(all_parked);
  EXPECT_EQ(counts.constructed.load(), 8 * 4);
  EXPECT_EQ(counts.destroyed.load(), 8 * 4);
  EXPECT_FALSE(reached_end);
}

// --- stack depth -------------------------------------------------------------

// The current stack depth (the address of this call's frame).
[[gnu::noinline]] std::uintptr_t stack_address() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

struct StackRange {
  std::uintptr_t lowest = UINTPTR_MAX;
  std::uintptr_t highest = 0;
};

Task<long> record_stack(long i, StackRange* range) {
  const std::uintptr_t here = stack_address();
  if (here < range->lowest) range->lowest = here;
  if (here > range->highest) range->highest = here;
  co_return i;
}

Task<long> await_synchronously_many_times(long n, StackRange* range) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await record_stack(i, range);
  co_return sum;
}

TEST(Task, TenMillionSynchronousAwaitsRunInConstantStack) {
  constexpr long kAwaits = 10'000'000;
  StackRange range;
  const long sum =
      goro::run(await_synchronously_many_times(kAwaits, &range), goro::test::with_procs(1));
  EXPECT_EQ(sum, kAwaits * (kAwaits - 1) / 2);
  ASSERT_LE(range.lowest, range.highest);
  EXPECT_LE(range.highest - range.lowest, std::uintptr_t{64 * 1024})
      << "the stack grew across synchronously completing awaits (no symmetric transfer?)";
}

// --- destroying deep suspended chains ----------------------------------------
//
// A chain of a million Tasks awaiting one another, suspended at the bottom,
// is destroyed without one nested destroy() per frame (which overflows an
// 8 MiB stack at -O0 long before a million), innermost frame first.

constexpr long kDeepChain = 1'000'000;

// Records destruction order: level `depth` (0 at the top) must go right
// after level depth + 1 (innermost first).
struct DestroyOrder {
  long next_expected = kDeepChain;
  long out_of_order = 0;
  long destroyed = 0;
};

struct LevelGuard {
  DestroyOrder* order;
  long depth;
  ~LevelGuard() {
    if (depth != order->next_expected) ++order->out_of_order;
    order->next_expected = depth - 1;
    ++order->destroyed;
  }
};

std::atomic<bool> deep_chain_parked{false};

// Descends to kDeepChain, then parks on `bottom` (by value: the chain shares
// the channel) forever.
Task<void> descend_and_park(long depth, DestroyOrder* order, goro::Chan<int> bottom,
                            bool on_channel) {
  LevelGuard guard{order, depth};
  if (depth == kDeepChain) {
    deep_chain_parked.store(true);
    if (on_channel) {
      (void)co_await bottom.recv();
    } else {
      co_await ParkForever{};
    }
    co_return;
  }
  co_await descend_and_park(depth + 1, order, std::move(bottom), on_channel);
}

TEST(Task, MillionDeepSuspendedChainIsDestroyedInnermostFirstInConstantStack) {
  DestroyOrder order;
  bool done = false;
  deep_chain_parked = false;
  Driver driver = drive_void(descend_and_park(0, &order, goro::Chan<int>(), false), &done);
  ASSERT_TRUE(deep_chain_parked.load());
  EXPECT_FALSE(done);
  driver.reset();  // destroys the Task it holds, and the chain with it
  EXPECT_EQ(order.destroyed, kDeepChain + 1);
  EXPECT_EQ(order.out_of_order, 0);
}

Task<int> start_deep_goroutine(DestroyOrder* order, goro::Chan<int> bottom) {
  goro::go(descend_and_park(0, order, bottom, true));
  co_return co_await goro::test::yield_until_set(deep_chain_parked) ? 0 : 1;
}

TEST(Task, GoroutineParkedAMillionAwaitsDeepIsDestroyedAtShutdown) {
  DestroyOrder order;
  deep_chain_parked = false;
  auto bottom = goro::make_chan<int>();
  EXPECT_EQ(goro::run(start_deep_goroutine(&order, bottom), goro::test::with_procs(1)), 0);
  EXPECT_EQ(order.destroyed, kDeepChain + 1);
  EXPECT_EQ(order.out_of_order, 0);
}

Task<int> main_parked_deep(DestroyOrder* order, goro::Chan<int> bottom) {
  co_await descend_and_park(0, order, std::move(bottom), true);
  co_return 0;
}

TEST(Task, DeadlockedMainAMillionAwaitsDeepIsDestroyed) {
  DestroyOrder order;
  deep_chain_parked = false;
  auto bottom = goro::make_chan<int>();
  EXPECT_THROW(goro::run(main_parked_deep(&order, bottom), goro::test::with_procs(1)),
               goro::Deadlock);
  EXPECT_EQ(order.destroyed, kDeepChain + 1);
  EXPECT_EQ(order.out_of_order, 0);
}

}  // namespace
