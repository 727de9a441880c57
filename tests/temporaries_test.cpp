// Tests that every callable and argument handed to goro's API is destroyed
// exactly once, in the call shapes the headers call safe, on every
// compiler goro builds with (task.hpp, "Temporaries in a co_await
// expression": g++ 12 destroys a braced temporary or a lambda's closure
// written in a full-expression that contains a co_await twice, whatever
// the callee does with it). Each test counts the lives of a Guard captured
// or passed by value: constructed == destroyed exactly when every copy was
// destroyed once, so a double destruction, by goro or by the compiler,
// leaves the balance at -1 and fails the test (gcc-release and asan run
// them like every test).
#include <gtest/gtest.h>

#include <optional>
#include <utility>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using test::Guard;
using test::LifeCounts;

// A body that returns its argument, so that the compiler cannot drop the
// copies it is handed.
Task<int> take_guard(Guard guard, int value) {
  (void)guard;
  co_return value;
}

Task<int> blocking_with_named_callable(LifeCounts& counts) {
  Guard guard(counts);
  auto call = [guard] { return 7; };  // named: not a temporary of the co_await
  const int value = co_await blocking(std::move(call));
  co_return value;
}

TEST(CoAwaitTemporaries, BlockingDestroysANamedCallableOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(blocking_with_named_callable(counts)), 7);
  EXPECT_GT(counts.constructed.load(), 1);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> blocking_with_reference_capture(LifeCounts& counts) {
  Guard guard(counts);
  // A closure of references is trivially destructible: nothing to destroy
  // twice, and the caller's locals outlive the await.
  const int value = co_await blocking([&guard] {
    (void)guard;
    return 8;
  });
  co_return value;
}

TEST(CoAwaitTemporaries, BlockingWithAReferenceCaptureCopiesNothing) {
  LifeCounts counts;
  EXPECT_EQ(run(blocking_with_reference_capture(counts)), 8);
  EXPECT_EQ(counts.constructed.load(), 1);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> for_each_with_named_body(LifeCounts& counts) {
  auto ch = make_chan<int>(3);
  co_await ch.send(1);
  co_await ch.send(2);
  ch.close();
  int sum = 0;
  Guard guard(counts);
  auto body = [guard, &sum](int v) { sum += v; };
  co_await for_each(ch, std::move(body));
  co_return sum;
}

TEST(CoAwaitTemporaries, ForEachDestroysANamedBodyOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(for_each_with_named_body(counts)), 3);
  EXPECT_GT(counts.constructed.load(), 1);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> once_with_named_callable(LifeCounts& counts) {
  Once once;
  int calls = 0;
  Guard guard(counts);
  auto first = [guard, &calls] { ++calls; };
  co_await once.call(std::move(first));
  auto second = [guard, &calls] { ++calls; };  // not called: the Once is done
  co_await once.call(std::move(second));
  co_return calls;
}

TEST(CoAwaitTemporaries, OnceCallDestroysNamedCallablesOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(once_with_named_callable(counts)), 1);
  EXPECT_GT(counts.constructed.load(), 2);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> select_with_named_handlers(LifeCounts& counts) {
  auto ch = make_chan<int>(1);
  co_await ch.send(5);
  Guard guard(counts);
  auto on_value = [guard](std::optional<int> v) { return v.value_or(-1); };
  auto on_default = [guard] { return -2; };
  const int value =
      co_await select(on(recv_from(ch), std::move(on_value)), otherwise(std::move(on_default)));
  co_return value;
}

TEST(CoAwaitTemporaries, SelectDestroysNamedHandlersOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(select_with_named_handlers(counts)), 5);
  EXPECT_GT(counts.constructed.load(), 2);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> task_argument_made_by_a_constructor(LifeCounts& counts) {
  // Guard has constructors (it is no aggregate): a temporary made by one
  // inside the co_await expression is destroyed once by every compiler.
  const int value = co_await take_guard(Guard(counts), 9);
  co_return value;
}

TEST(CoAwaitTemporaries, TaskArgumentMadeByAConstructorIsDestroyedOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(task_argument_made_by_a_constructor(counts)), 9);
  EXPECT_EQ(counts.alive(), 0);
}

Task<int> goroutines_from_capturing_lambdas(LifeCounts& counts) {
  Guard guard(counts);
  // Plain statements: no co_await in the full-expression that makes the
  // closure, so no compiler destroys it twice.
  WaitGroup wg;
  wg.go([guard]() -> Task<void> { co_return; });
  go([guard]() -> Task<void> { co_return; });
  auto handle = spawn([guard](int x) -> Task<int> { co_return x; }, 4);
  Group group;
  group.go([guard]() -> Task<absl::Status> { co_return absl::OkStatus(); });
  co_await wg.wait();
  const absl::Status status = co_await group.wait();
  const int value = co_await std::move(handle);
  co_return status.ok() ? value : -1;
}

TEST(CoAwaitTemporaries, GoroutineStartersDestroyCapturesOnce) {
  LifeCounts counts;
  EXPECT_EQ(run(goroutines_from_capturing_lambdas(counts)), 4);
  // The detached goroutine may still be finishing when run() returns its
  // main goroutine's value; run() returns only after every goroutine is
  // gone, so the balance is final here.
  EXPECT_GT(counts.constructed.load(), 4);
  EXPECT_EQ(counts.alive(), 0);
}

// The shape the headers call unsafe under g++ 12: a capturing closure
// written inside the co_await expression. The balance it leaves pins the
// documented compiler behaviour: 0 everywhere but g++ 12, where one
// destruction too many is expected. If a g++ 12 build ever gives 0 here,
// the compiler no longer has the fault and the notes in task.hpp and the
// headers that refer to it should go.
Task<int> blocking_with_a_closure_in_the_co_await(LifeCounts& counts) {
  Guard guard(counts);
  const int value = co_await blocking([guard] { return 6; });
  co_return value;
}

TEST(CoAwaitTemporaries, ClosureInsideCoAwaitBalanceMatchesTheDocumentedCompilerBehaviour) {
  LifeCounts counts;
  EXPECT_EQ(run(blocking_with_a_closure_in_the_co_await(counts)), 6);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
  EXPECT_EQ(counts.alive(), -1);
#else
  EXPECT_EQ(counts.alive(), 0);
#endif
}

}  // namespace
}  // namespace goro
