// Tests of goro::Group against golang.org/x/sync/errgroup: all OK gives OK;
// the first error cancels the group's context and is what wait() returns;
// exceptions; the limit; tasks from callables (go(f, args...)); several
// waiters; stress under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::with_procs;

Task<absl::Status> count_and_succeed(std::atomic<long>* ran) {
  ran->fetch_add(1);
  if (ran->load() % 3 == 0) co_await goro::yield();
  co_return absl::OkStatus();
}

Task<bool> all_ok_gives_ok(long n) {
  std::atomic<long> ran{0};
  auto [group, ctx] = Group::with_context(background());
  for (long i = 0; i < n; ++i) group.go(count_and_succeed(&ran));
  absl::Status s = co_await group.wait();
  // errgroup's Wait cancels the context once everything returned.
  co_return s.ok() && ran.load() == n&& ctx.cancelled();
}

TEST(Group, AllOkGivesOk) { EXPECT_TRUE(run(all_ok_gives_ok(1000), with_procs(4))); }

Task<bool> empty_group_waits_for_nothing() {
  Group group;
  absl::Status s = co_await group.wait();
  co_return s.ok();
}

TEST(Group, EmptyGroupWaitsForNothing) {
  EXPECT_TRUE(run(empty_group_waits_for_nothing(), with_procs(1)));
}

// Waits until the group's context is cancelled; returns its error.
Task<absl::Status> wait_for_cancel(Context ctx, std::atomic<long>* saw_cancel) {
  (void)co_await select(recv_from(ctx.done()));
  saw_cancel->fetch_add(1);
  co_return ctx.err();
}

Task<absl::Status> fail_after(std::chrono::nanoseconds d, std::string message) {
  co_await goro::sleep(d);
  co_return absl::InternalError(message);
}

Task<bool> first_error_cancels_and_is_returned() {
  std::atomic<long> saw_cancel{0};
  auto [group, ctx] = Group::with_context(background());
  for (int i = 0; i < 8; ++i) group.go(wait_for_cancel(ctx, &saw_cancel));
  group.go(fail_after(1ms, "first"));
  absl::Status s = co_await group.wait();
  // The waiters returned Cancelled after the failure: the first error wins.
  co_return s.code() == absl::StatusCode::kInternal&& s.message() == "first" &&
      saw_cancel.load() == 8 && ctx.err().code() == absl::StatusCode::kCancelled;
}

TEST(Group, FirstErrorCancelsTheContextAndIsReturned) {
  EXPECT_TRUE(run(first_error_cancels_and_is_returned(), with_procs(2)));
}

Task<absl::Status> fail_when_told(RecvChan<int> go_ahead, std::string message) {
  (void)co_await go_ahead.recv();
  co_return absl::UnavailableError(message);
}

Task<bool> wait_returns_the_first_of_several() {
  auto [group, ctx] = Group::with_context(background());
  Chan<int> first = make_chan<int>(1);
  Chan<int> second = make_chan<int>(1);
  group.go(fail_when_told(second, "second"));
  group.go(fail_when_told(first, "first"));
  co_await first.send(1);
  // The group's context is cancelled once the first failure is recorded:
  // only then may the second task fail (a sleep here let a preempted
  // first task lose the race).
  (void)co_await select(recv_from(ctx.done()));
  co_await second.send(1);
  absl::Status s = co_await group.wait();
  co_return s.message() == "first";
}

TEST(Group, WaitReturnsTheFirstError) {
  EXPECT_TRUE(run(wait_returns_the_first_of_several(), with_procs(2)));
}

Task<absl::Status> throw_it() {
  co_await goro::yield();
  throw std::runtime_error("boom");
}

Task<bool> exception_is_rethrown_by_wait() {
  std::atomic<long> saw_cancel{0};
  auto [group, ctx] = Group::with_context(background());
  group.go(wait_for_cancel(ctx, &saw_cancel));
  group.go(throw_it());
  try {
    (void)co_await group.wait();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "boom" && saw_cancel.load() == 1;
  }
  co_return false;
}

TEST(Group, AnExceptionCancelsAndIsRethrownByWait) {
  EXPECT_TRUE(run(exception_is_rethrown_by_wait(), with_procs(2)));
}

Task<bool> parent_cancel_reaches_the_group() {
  std::atomic<long> saw_cancel{0};
  auto [parent, cancel] = with_cancel(background());
  auto [group, ctx] = Group::with_context(parent);
  for (int i = 0; i < 4; ++i) group.go(wait_for_cancel(ctx, &saw_cancel));
  co_await goro::sleep(1ms);
  cancel();
  absl::Status s = co_await group.wait();
  // Every task returned ctx.err(): Cancelled is the first error.
  co_return s.code() == absl::StatusCode::kCancelled&& saw_cancel.load() == 4;
}

TEST(Group, ParentCancellationReachesTheGroup) {
  EXPECT_TRUE(run(parent_cancel_reaches_the_group(), with_procs(2)));
}

// Holds until `gate` is closed, so that the group stays busy while the
// test checks what a busy group refuses, however slowly the test runs.
Task<absl::Status> limited(std::atomic<long>* running, std::atomic<long>* peak,
                           std::atomic<long>* ran, RecvChan<int> gate) {
  const long now = running->fetch_add(1) + 1;
  long p = peak->load();
  while (now > p && !peak->compare_exchange_weak(p, now)) {
  }
  co_await goro::sleep(50us);
  (void)co_await gate.recv();
  running->fetch_sub(1);
  ran->fetch_add(1);
  co_return absl::OkStatus();
}

Task<bool> limit_bounds_running_tasks() {
  std::atomic<long> running{0};
  std::atomic<long> peak{0};
  std::atomic<long> ran{0};
  Chan<int> gate = make_chan<int>();
  Group group;
  group.set_limit(3);
  for (int i = 0; i < 50; ++i) group.go(limited(&running, &peak, &ran, gate));
  bool ok = !group.try_go(limited(&running, &peak, &ran, gate));  // full: not started
  bool threw = false;
  try {
    group.set_limit(5);
  } catch (const std::logic_error&) {
    threw = true;
  }
  gate.close();
  absl::Status s = co_await group.wait();
  ok = ok && threw && s.ok() && ran.load() == 50 && peak.load() <= 3 && peak.load() >= 1;
  // Idle again: try_go starts at once, and the limit may change.
  ok = ok && group.try_go(limited(&running, &peak, &ran, gate));
  s = co_await group.wait();
  group.set_limit(-1);
  co_return ok&& s.ok() && ran.load() == 51;
}

TEST(Group, LimitBoundsTheRunningTasks) {
  EXPECT_TRUE(run(limit_bounds_running_tasks(), with_procs(4)));
}

// --- tasks from callables: go(f, args...), try_go(f, args...) ---

Task<bool> callable_error_cancels_the_context() {
  std::atomic<long> saw_cancel{0};
  auto [group, ctx] = Group::with_context(background());
  for (int i = 0; i < 4; ++i) group.go(wait_for_cancel, ctx, &saw_cancel);
  const std::string message(40, 'm');  // on the heap: a dead capture would show
  group.go([message]() -> Task<absl::Status> {
    co_await goro::yield();
    co_await goro::sleep(1ms);
    co_return absl::InternalError(message);
  });
  absl::Status s = co_await group.wait();
  co_return s.code() == absl::StatusCode::kInternal&& s.message() == message&& saw_cancel.load() ==
          4 &&
      ctx.err().code() == absl::StatusCode::kCancelled;
}

TEST(Group, GoWithACallableThatFailsCancelsTheContextAndIsReturned) {
  EXPECT_TRUE(run(callable_error_cancels_the_context(), with_procs(2)));
}

Task<bool> exception_from_the_call_is_rethrown() {
  std::atomic<long> saw_cancel{0};
  auto [group, ctx] = Group::with_context(background());
  group.go(wait_for_cancel, ctx, &saw_cancel);
  group.go([]() GORO_CORO_WRAPPER -> Task<absl::Status> { throw std::runtime_error("call"); });
  try {
    (void)co_await group.wait();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "call" && saw_cancel.load() == 1;
  }
  co_return false;
}

TEST(Group, GoWithACallableThatThrowsInsteadOfReturningATaskCancelsAndRethrows) {
  EXPECT_TRUE(run(exception_from_the_call_is_rethrown(), with_procs(2)));
}

Task<bool> refused_callable_is_never_called(test::LifeCounts* counts) {
  std::atomic<long> running{0};
  std::atomic<long> peak{0};
  std::atomic<long> ran{0};
  std::atomic<bool> called{false};
  Chan<int> gate = make_chan<int>();
  Group group;
  group.set_limit(1);
  group.go(limited, &running, &peak, &ran, RecvChan<int>(gate));  // holds the one slot
  const bool refused =
      !group.try_go([&called, guard = test::Guard(*counts)]() -> Task<absl::Status> {
        called = true;
        co_return absl::OkStatus();
      });
  const bool destroyed = counts->alive() == 0;
  gate.close();
  absl::Status s = co_await group.wait();
  co_return refused&& destroyed && !called.load() && s.ok() && ran.load() == 1;
}

TEST(Group, TryGoWithACallableRefusedByTheLimitNeverCallsIt) {
  test::LifeCounts counts;
  EXPECT_TRUE(run(refused_callable_is_never_called(&counts), with_procs(2)));
  EXPECT_GT(counts.constructed.load(), 0);
}

// Travels with the callable (or argument) holding it; the last move,
// destroyed with the callable, counts whether the group looked idle then
// (its task already counted as returned).
class IdleProbe {
 public:
  IdleProbe(Group group, std::atomic<long>* idle_when_destroyed)
      : group_(std::move(group)), idle_when_destroyed_(idle_when_destroyed) {}
  IdleProbe(IdleProbe&& other) noexcept
      : group_(other.group_),
        idle_when_destroyed_(std::exchange(other.idle_when_destroyed_, nullptr)) {}
  IdleProbe& operator=(IdleProbe&&) = delete;
  ~IdleProbe() {
    if (idle_when_destroyed_ != nullptr && group_.wait().await_ready()) {
      idle_when_destroyed_->fetch_add(1);
    }
  }

 private:
  Group group_;
  std::atomic<long>* idle_when_destroyed_;
};

Task<bool> callable_destroyed_before_its_task_returns() {
  std::atomic<long> idle_when_destroyed{0};
  Group group;
  group.go(
      [probe = IdleProbe(group, &idle_when_destroyed)](IdleProbe) -> Task<absl::Status> {
        co_await goro::yield();
        co_return absl::OkStatus();
      },
      IdleProbe(group, &idle_when_destroyed));
  absl::Status s = co_await group.wait();
  co_return s.ok() && idle_when_destroyed.load() == 0;
}

TEST(Group, CallableAndArgumentsAreDestroyedBeforeTheirTaskCountsAsReturned) {
  for (unsigned procs : {1u, 4u}) {
    EXPECT_TRUE(run(callable_destroyed_before_its_task_returns(), with_procs(procs))) << procs;
  }
}

Task<absl::Status> wait_in_group(Group group) { co_return co_await group.wait(); }

Task<absl::Status> spawn_more(Group group, std::atomic<long>* ran, int depth) {
  ran->fetch_add(1);
  if (depth > 0) {
    group.go(spawn_more(group, ran, depth - 1));
    group.go(spawn_more(group, ran, depth - 1));
  }
  co_return absl::OkStatus();
}

Task<bool> tasks_add_tasks_and_many_wait(int depth) {
  std::atomic<long> ran{0};
  Group group;
  group.go(spawn_more(group, &ran, depth));
  std::vector<JoinHandle<absl::Status>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(spawn(wait_in_group(group)));
  absl::Status s = co_await group.wait();
  bool ok = s.ok() && ran.load() == (1L << (depth + 1)) - 1;
  for (auto& w : waiters) ok = ok && (co_await w).ok();
  co_return ok;
}

TEST(Group, TasksAddTasksAndSeveralGoroutinesWait) {
  EXPECT_TRUE(run(tasks_add_tasks_and_many_wait(test::scaled_depth(12)), with_procs(4)));
}

Task<absl::Status> maybe_fail(Context ctx, long i) {
  if (i % 7 == 3) co_return absl::AbortedError("abort");
  co_return co_await goro::sleep(std::chrono::microseconds(i % 20), ctx);
}

Task<void> one_group(long tasks, std::atomic<long>* good) {
  auto [group, ctx] = Group::with_context(background());
  for (long i = 0; i < tasks; ++i) group.go(maybe_fail(ctx, i));
  absl::Status s = co_await group.wait();
  const bool expect_error = tasks > 3;
  if (s.ok() != !expect_error) co_return;
  if (expect_error && s.code() != absl::StatusCode::kAborted) co_return;
  good->fetch_add(1);
}

Task<bool> many_groups_at_once(long groups) {
  test::Watchdog watchdog("group stress");
  std::atomic<long> good{0};
  std::vector<JoinHandle<void>> all;
  for (long g = 0; g < groups; ++g) all.push_back(spawn(one_group(g % 12, &good)));
  for (auto& h : all) co_await h;
  co_return good.load() == groups;
}

TEST(Group, ManyGroupsAtOnce) {
  EXPECT_TRUE(run(many_groups_at_once(test::scaled(2000)), with_procs(4)));
}

}  // namespace
}  // namespace goro
