// Tests of goro::Context against Go's context package: trees cancel at
// once and all the way down, err() values, done() in select, deadlines on
// goro's timers (never early, capped by the parent's), values up the chain,
// idempotent thread-safe cancel, children that unregister, and
// cancellation of goro::io reads and of sleep(d, ctx).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::with_procs;

// Awaits are hoisted into named locals before the `ok = ok && ...` that uses
// them: GCC 12 crashes (internal compiler error in lower_stmt) on a co_await
// in a short-circuit operand next to temporaries with destructors, such as
// the absl::Status of err().

// Non-blocking: has ctx.done() closed?
Task<bool> is_done(Context ctx) {
  auto r = co_await select(recv_from(ctx.done()), default_case());
  co_return r.index() == 0;
}

Task<bool> background_is_never_done() {
  Context bg = background();
  bool ok = bg.err().ok() && !bg.cancelled() && bg.done().nil() && !bg.deadline().has_value();
  ok = ok && !bg.stop_token().stop_possible() && bg == Context();
  auto bg_done = co_await is_done(bg);
  ok = ok && !bg_done;
  co_return ok;
}

TEST(Context, BackgroundIsNeverDone) {
  EXPECT_TRUE(run(background_is_never_done(), with_procs(2)));
}

inline constexpr ContextKey<int> kNumber{"number"};
inline constexpr ContextKey<std::string> kName{"name"};

Task<bool> cancelling_a_parent_cancels_the_tree() {
  auto [root, cancel_root] = with_cancel(background());
  auto [child, cancel_child] = with_cancel(root);
  Context valued = with_value(child, kNumber, 1);
  auto [grandchild, cancel_grandchild] = with_cancel(valued);
  auto [sibling, cancel_sibling] = with_cancel(background());
  std::stop_token token = grandchild.stop_token();
  bool ok = token.stop_possible() && !token.stop_requested();
  const Context* const tree[] = {&root, &child, &valued, &grandchild};
  for (const Context* c : tree) {
    const bool done = co_await is_done(*c);
    ok = ok && c->err().ok() && !done;
  }
  // Made before the cancel (grandchild's) and after it (the others').
  (void)grandchild.done();
  cancel_root();
  for (const Context* c : tree) {
    const bool done = co_await is_done(*c);
    ok = ok && c->cancelled() && c->err().code() == absl::StatusCode::kCancelled &&
         c->err().message() == "context canceled" && done;
  }
  ok = ok && token.stop_requested() && child.stop_token().stop_requested();
  auto sibling_done = co_await is_done(sibling);
  ok = ok && sibling.err().ok() && !sibling_done;
  // Idempotent, and a child's cancel after its parent's changes nothing.
  cancel_root();
  cancel_child();
  ok = ok && grandchild.err().code() == absl::StatusCode::kCancelled;
  // A child of a cancelled context is born cancelled.
  auto [late, cancel_late] = with_cancel(grandchild);
  auto late_done = co_await is_done(late);
  ok = ok && late.cancelled() && late_done;
  co_return ok;
}

TEST(Context, CancellingAParentCancelsTheWholeTree) {
  EXPECT_TRUE(run(cancelling_a_parent_cancels_the_tree(), with_procs(2)));
}

Task<bool> cancelling_a_child_spares_the_parent() {
  auto [parent, cancel_parent] = with_cancel(background());
  auto [child, cancel_child] = with_cancel(parent);
  auto [other, cancel_other] = with_cancel(parent);
  cancel_child();
  bool ok = child.cancelled() && !parent.cancelled() && !other.cancelled();
  auto parent_done = co_await is_done(parent);
  auto child_done = co_await is_done(child);
  ok = ok && !parent_done && child_done;
  cancel_parent();
  ok = ok && other.cancelled();
  co_return ok;
}

TEST(Context, CancellingAChildSparesItsParent) {
  EXPECT_TRUE(run(cancelling_a_child_spares_the_parent(), with_procs(2)));
}

Task<std::size_t> wait_done_or(Context ctx, RecvChan<int> other) {
  auto r = co_await select(recv_from(other), recv_from(ctx.done()));
  co_return r.index();
}

Task<bool> done_wakes_a_waiting_select() {
  Chan<int> never = make_chan<int>();
  auto [root, cancel] = with_cancel(background());
  auto [leaf, cancel_leaf] = with_cancel(with_value(root, kNumber, 3));
  std::vector<JoinHandle<std::size_t>> waiters;
  for (int i = 0; i < 16; ++i) waiters.push_back(spawn(wait_done_or(i % 2 ? root : leaf, never)));
  co_await goro::sleep(2ms);  // let them park
  cancel();
  bool ok = true;
  for (auto& w : waiters) {
    const int got = co_await w;
    ok = ok && got == 1;
  }
  co_return ok;
}

TEST(Context, DoneWakesASelectWaitingOnIt) {
  EXPECT_TRUE(run(done_wakes_a_waiting_select(), with_procs(2)));
}

Task<bool> cancel_from_an_outside_thread() {
  auto [ctx, cancel] = with_cancel(background());
  auto [child, cancel_child] = with_cancel(ctx);
  Chan<int> never = make_chan<int>();
  auto waiter = spawn(wait_done_or(child, never));
  std::thread outside([cancel = cancel] {
    std::this_thread::sleep_for(1ms);
    cancel();
  });
  const std::size_t index = co_await waiter;
  outside.join();
  co_return index == 1 && child.err().code() == absl::StatusCode::kCancelled;
}

TEST(Context, CancelFromAThreadOutsideTheRuntime) {
  // Only the outside thread can wake the waiter: a long grace, so that a
  // preempted outside thread is not taken for a deadlock.
  Config config = with_procs(2);
  config.deadlock_grace = 10s;
  EXPECT_TRUE(run(cancel_from_an_outside_thread(), config));
}

Task<void> cancel_it(CancelFunc cancel, std::atomic<long>* started) {
  started->fetch_add(1);
  co_await goro::yield();
  cancel();
}

// Children made while the parent is being cancelled end up cancelled too.
Task<void> make_children(Context parent, long n, std::atomic<long>* cancelled) {
  for (long i = 0; i < n; ++i) {
    auto [child, cancel] = with_cancel(parent);
    Context grandchild = with_value(child, kNumber, static_cast<int>(i));
    if (i % 3 == 0) cancel();
    if (i % 16 == 0) co_await goro::yield();
    if (parent.cancelled()) {
      // Once the parent's cancel is visible, every new child is born
      // cancelled.
      auto [late, cancel_late] = with_cancel(parent);
      if (late.cancelled() && grandchild.cancelled()) cancelled->fetch_add(1);
      co_return;
    }
  }
  cancelled->fetch_add(1);
}

Task<bool> cancel_is_idempotent_and_thread_safe(long rounds) {
  test::Watchdog watchdog("concurrent cancel");
  bool ok = true;
  for (long round = 0; round < rounds; ++round) {
    auto [root, cancel] = with_cancel(background());
    auto [mid, cancel_mid] = with_cancel(root);
    Chan<int> never = make_chan<int>();
    std::atomic<long> started{0};
    std::atomic<long> finished{0};
    std::vector<JoinHandle<std::size_t>> waiters;
    for (int i = 0; i < 4; ++i) waiters.push_back(spawn(wait_done_or(mid, never)));
    std::vector<JoinHandle<void>> makers;
    for (int i = 0; i < 3; ++i) makers.push_back(spawn(make_children(mid, 200, &finished)));
    std::vector<JoinHandle<void>> cancellers;
    for (int i = 0; i < 4; ++i) {
      cancellers.push_back(spawn(cancel_it(i % 2 ? cancel : cancel_mid, &started)));
    }
    std::thread outside([cancel = cancel] { cancel(); });
    for (auto& c : cancellers) co_await c;
    outside.join();
    for (auto& w : waiters) {
      const int got = co_await w;
      ok = ok && got == 1;
    }
    for (auto& m : makers) co_await m;
    ok = ok && finished.load() == 3 && root.cancelled() && mid.cancelled();
    ok = ok && (mid.err().code() == absl::StatusCode::kCancelled);
  }
  co_return ok;
}

TEST(Context, CancelIsIdempotentAndThreadSafe) {
  EXPECT_TRUE(run(cancel_is_idempotent_and_thread_safe(test::scaled(200, 20)), with_procs(4)));
}

Task<bool> deadline_fires_never_early() {
  const auto start = Clock::now();
  auto [ctx, cancel] = with_timeout(background(), 5ms);
  const bool live = ctx.err().ok();  // unless a slow run already passed the deadline
  bool ok = ctx.deadline().has_value() && *ctx.deadline() >= start + 5ms &&
            (live || Clock::now() >= *ctx.deadline());
  auto [child, cancel_child] = with_cancel(ctx);
  ok = ok && child.deadline() == ctx.deadline();
  // Wait on the child: the parent's timer cancels it.
  auto r = co_await select(recv_from(child.done()));
  (void)r;
  const auto woke = Clock::now();
  ok = ok && woke >= *ctx.deadline() && woke - start >= 5ms;
  ok = ok && ctx.err().code() == absl::StatusCode::kDeadlineExceeded &&
       ctx.err().message() == "context deadline exceeded";
  ok = ok && child.err().code() == absl::StatusCode::kDeadlineExceeded;
  // A cancel after the deadline keeps DeadlineExceeded.
  cancel();
  ok = ok && ctx.err().code() == absl::StatusCode::kDeadlineExceeded;
  co_return ok;
}

TEST(Context, DeadlineFiresOnTimersNeverEarly) {
  EXPECT_TRUE(run(deadline_fires_never_early(), with_procs(2)));
}

Task<bool> child_deadline_is_capped_by_parent() {
  auto [parent, cancel_parent] = with_timeout(background(), 50ms);
  auto [late, cancel_late] = with_timeout(parent, 1h);
  bool ok = late.deadline() == parent.deadline();
  auto [early, cancel_early] = with_timeout(parent, 1ms);
  // Earlier than the parent's, unless this goroutine was held up for
  // 49 ms between the two (a loaded machine): then capped to it.
  ok = ok && (early.deadline() < parent.deadline() ||
              (early.deadline() == parent.deadline() && Clock::now() >= *parent.deadline() - 1ms));
  (void)co_await select(recv_from(early.done()));
  // The parent and `late` are still live unless their own deadline has
  // passed too (a slow sanitizer run may wake us late): errors first, then
  // the clock, so an expiry seen is one the clock has passed.
  const bool parent_live = parent.err().ok();
  const bool late_live = late.err().ok();
  const bool parent_due = Clock::now() >= *parent.deadline();
  ok = ok && early.err().code() == absl::StatusCode::kDeadlineExceeded &&
       (parent_live || parent_due) && (late_live || parent_due) &&
       Clock::now() >= *early.deadline();
  (void)co_await select(recv_from(late.done()));
  ok = ok && Clock::now() >= *parent.deadline() &&
       late.err().code() == absl::StatusCode::kDeadlineExceeded &&
       parent.err().code() == absl::StatusCode::kDeadlineExceeded;
  // A deadline already past: cancelled before it is returned, no timer.
  auto [past, cancel_past] = with_deadline(background(), Clock::now() - 1s);
  auto past_done = co_await is_done(past);
  ok = ok && past.err().code() == absl::StatusCode::kDeadlineExceeded && past_done;
  // Cancelling before the deadline gives Cancelled, and it stays so. (A far
  // deadline: a near one could pass before cancel() on a slow run.)
  auto [soon, cancel_soon] = with_timeout(background(), 1h);
  cancel_soon();
  co_await goro::sleep(2ms);
  ok = ok && soon.err().code() == absl::StatusCode::kCancelled;
  co_return ok;
}

TEST(Context, ChildDeadlineIsCappedByItsParent) {
  EXPECT_TRUE(run(child_deadline_is_capped_by_parent(), with_procs(2)));
}

TEST(Context, DeadlineOutsideAGoroutineThrows) {
  EXPECT_THROW((void)with_timeout(background(), 1s), std::logic_error);
  // Already past needs no timer; with_cancel works from any thread.
  auto [past, cancel_past] = with_timeout(background(), -1s);
  EXPECT_EQ(past.err().code(), absl::StatusCode::kDeadlineExceeded);
  auto [ctx, cancel] = with_cancel(background());
  cancel();
  EXPECT_TRUE(ctx.cancelled());
}

Task<bool> values_chain() {
  ContextKey<int> local_key;
  Context a = with_value(background(), kNumber, 1);
  Context b = with_value(a, kName, std::string("goro"));
  auto [c, cancel] = with_cancel(b);
  Context d = with_value(c, kNumber, 2);  // shadows kNumber below d
  bool ok = *a.value(kNumber) == 1 && a.value(kName) == nullptr;
  ok = ok && *b.value(kNumber) == 1 && *b.value(kName) == "goro";
  ok = ok && *c.value(kName) == "goro" && *c.value(kNumber) == 1;
  ok = ok && *d.value(kNumber) == 2 && *d.value(kName) == "goro";
  ok = ok && d.value(local_key) == nullptr && background().value(kNumber) == nullptr;
  // Values share their parent's cancellation.
  cancel();
  auto d_done = co_await is_done(d);
  ok = ok && d.cancelled() && !b.cancelled() && d_done;
  co_return ok;
}

TEST(Context, ValuesAreLookedUpTheChain) { EXPECT_TRUE(run(values_chain(), with_procs(2))); }

inline constexpr ContextKey<test::Guard> kGuard;

Task<bool> children_are_freed_with_their_handles(test::LifeCounts* counts, long n) {
  auto [parent, cancel_parent] = with_cancel(background());
  for (long i = 0; i < n; ++i) {
    auto [child, cancel] = with_cancel(parent);
    Context leaf = with_value(child, kGuard, test::Guard(*counts));
    auto [grandchild, cancel_grandchild] = with_timeout(leaf, 1h);  // a timer too
    if (i % 2 == 0) cancel();  // cancelled or not, the handles going frees them
  }
  // The parent is alive and has not been cancelled: nothing of the
  // children is left.
  const bool ok = counts->alive() == 0 && counts->constructed.load() > 0;
  cancel_parent();
  co_return ok;
}

TEST(Context, ChildrenUnregisterAndAreFreedWithTheirHandles) {
  test::LifeCounts counts;
  EXPECT_TRUE(
      run(children_are_freed_with_their_handles(&counts, test::scaled(10000)), with_procs(2)));
  EXPECT_EQ(counts.alive(), 0);
}

Task<absl::StatusCode> read_once(int fd, io::IoOptions options) {
  char buf[16];
  auto n = co_await io::read(fd, buf, sizeof buf, options);
  co_return n.ok() ? absl::StatusCode::kOk : n.status().code();
}

Task<bool> cancel_ends_an_inflight_read() {
  struct {
    int fd[2] = {-1, -1};
  } sp;
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp.fd) != 0) std::abort();
  absl::Cleanup close_both = [&sp] {
    (void)io::close(sp.fd[0]);
    (void)io::close(sp.fd[1]);
  };
  bool ok = true;
  {
    auto [ctx, cancel] = with_cancel(background());
    auto reader = spawn(read_once(sp.fd[0], io::options_from(ctx)));
    co_await goro::sleep(2ms);  // parked in the poller by now (or soon)
    cancel();
    auto read_code = co_await reader;
    ok = ok && read_code == absl::StatusCode::kCancelled;
  }
  {
    // The stop token alone, as IoOptions::cancel; cancelled through a parent.
    auto [parent, cancel] = with_cancel(background());
    Context child = with_value(parent, kNumber, 1);
    auto reader = spawn(read_once(sp.fd[0], io::IoOptions(child.stop_token())));
    co_await goro::sleep(2ms);
    cancel();
    auto read_code = co_await reader;
    ok = ok && read_code == absl::StatusCode::kCancelled;
  }
  {
    // A context deadline ends the read with DeadlineExceeded, no earlier
    // than the deadline: `start` is read before the deadline is set.
    const auto start = Clock::now();
    auto [ctx, cancel] = with_timeout(background(), 3ms);
    auto read_code = co_await read_once(sp.fd[0], io::options_from(ctx));
    ok = ok && read_code == absl::StatusCode::kDeadlineExceeded;
    ok = ok && Clock::now() - start >= 3ms;
  }
  {
    // Already cancelled: fails at once; and the fd is still usable.
    auto [ctx, cancel] = with_cancel(background());
    cancel();
    auto cancelled_read = co_await read_once(sp.fd[0], io::options_from(ctx));
    ok = ok && cancelled_read == absl::StatusCode::kCancelled;
    // Written whatever the checks above said: the read below waits for it.
    const bool wrote = ::write(sp.fd[1], "x", 1) == 1;
    ok = ok && wrote;
    if (wrote) {
      auto plain_read = co_await read_once(sp.fd[0], io::options_from(background()));
      ok = ok && plain_read == absl::StatusCode::kOk;
    }
  }
  co_return ok;
}

TEST(Context, CancelEndsAnInFlightRead) {
  EXPECT_TRUE(run(cancel_ends_an_inflight_read(), with_procs(2)));
}

Task<absl::Status> sleep_in(std::chrono::nanoseconds d, Context ctx) {
  co_return co_await goro::sleep(d, std::move(ctx));
}

Task<bool> sleep_returns_early_when_cancelled() {
  bool ok = true;
  {
    const auto start = Clock::now();
    auto slept_plain = co_await goro::sleep(2ms, background());
    ok = ok && slept_plain.ok() && Clock::now() - start >= 2ms;
    auto [ctx, cancel] = with_cancel(background());
    auto slept_ctx = co_await goro::sleep(2ms, ctx);
    ok = ok && slept_ctx.ok() && Clock::now() - start >= 4ms;
  }
  {
    auto [ctx, cancel] = with_cancel(background());
    auto sleeper = spawn(sleep_in(1h, ctx));
    co_await goro::sleep(1ms);
    cancel();
    absl::Status s = co_await sleeper;
    ok = ok && s.code() == absl::StatusCode::kCancelled;
    // Already cancelled: at once.
    auto slept_cancelled = co_await goro::sleep(1h, ctx);
    ok = ok && slept_cancelled.code() == absl::StatusCode::kCancelled;
  }
  {
    const auto start = Clock::now();
    auto [ctx, cancel] = with_timeout(background(), 2ms);
    absl::Status s = co_await goro::sleep_until(Clock::now() + 1h, ctx);
    ok = ok && s.code() == absl::StatusCode::kDeadlineExceeded && Clock::now() - start >= 2ms;
  }
  co_return ok;
}

TEST(Context, SleepReturnsEarlyWhenCancelled) {
  EXPECT_TRUE(run(sleep_returns_early_when_cancelled(), with_procs(2)));
}

// Stress: deadlines firing while goroutines make and drop children, select
// on done and cancel (TSan).
Task<void> churn(Context root, long n, std::atomic<long>* done) {
  for (long i = 0; i < n; ++i) {
    auto [ctx, cancel] = with_timeout(root, std::chrono::microseconds(i % 50));
    auto [child, cancel_child] = with_cancel(ctx);
    if (i % 2) {
      (void)co_await select(recv_from(child.done()));
      if (child.err().ok()) co_return;  // wrong: done closed with err OK
    } else {
      cancel();
      if (child.err().code() != absl::StatusCode::kCancelled &&
          child.err().code() != absl::StatusCode::kDeadlineExceeded) {
        co_return;
      }
    }
  }
  done->fetch_add(1);
}

Task<bool> deadlines_under_churn(long n) {
  test::Watchdog watchdog("deadline churn");
  auto [root, cancel] = with_cancel(background());
  std::atomic<long> done{0};
  std::vector<JoinHandle<void>> workers;
  for (int i = 0; i < 8; ++i) workers.push_back(spawn(churn(root, n, &done)));
  for (auto& w : workers) co_await w;
  co_return done.load() == 8;
}

TEST(Context, DeadlinesUnderChurn) {
  EXPECT_TRUE(run(deadlines_under_churn(test::scaled(4000)), with_procs(4)));
}

// --- Causes (with_cancel_cause, with_deadline_cause, cause) ----------------

bool is_cancelled_error(const absl::Status& s) {
  return s.code() == absl::StatusCode::kCancelled && s.message() == "context canceled";
}

TEST(Context, CauseIsTheFirstCancellationsCause) {
  const absl::Status first = absl::UnavailableError("first");
  const absl::Status second = absl::InternalError("second");
  // Not cancelled, and never: OK.
  EXPECT_TRUE(cause(background()).ok());
  {
    auto [ctx, cancel] = with_cancel_cause(background());
    EXPECT_TRUE(cause(ctx).ok());
    cancel(first);
    EXPECT_TRUE(is_cancelled_error(ctx.err()));  // err() is not the cause
    EXPECT_EQ(cause(ctx), first);
    cancel(second);  // a second cancel changes nothing
    EXPECT_EQ(cause(ctx), first);
  }
  {
    // Without a cause (OK, or a plain CancelFunc), cause() is err().
    auto [ctx, cancel] = with_cancel_cause(background());
    cancel(absl::OkStatus());
    EXPECT_TRUE(is_cancelled_error(cause(ctx)));
    auto [plain, cancel_plain] = with_cancel(background());
    cancel_plain();
    EXPECT_TRUE(is_cancelled_error(cause(plain)));
  }
  {
    // A parent's cause reaches everything below it, value nodes included,
    // and children born later.
    auto [parent, cancel_parent] = with_cancel_cause(background());
    auto [child, cancel_child] = with_cancel_cause(with_value(parent, kNumber, 1));
    Context valued = with_value(child, kNumber, 2);
    cancel_parent(first);
    EXPECT_EQ(cause(child), first);
    EXPECT_EQ(cause(valued), first);
    cancel_child(second);  // too late: already cancelled through the parent
    EXPECT_EQ(cause(child), first);
    auto [late, cancel_late] = with_cancel(valued);
    EXPECT_EQ(cause(late), first);
  }
  {
    // A child cancelled first keeps its own cause; the parent has its own.
    auto [parent, cancel_parent] = with_cancel_cause(background());
    auto [child, cancel_child] = with_cancel_cause(parent);
    cancel_child(second);
    cancel_parent(first);
    EXPECT_EQ(cause(child), second);
    EXPECT_EQ(cause(parent), first);
  }
  {
    // A cause-taking child under a plain parent: the parent's plain cancel.
    auto [parent, cancel_parent] = with_cancel(background());
    auto [child, cancel_child] = with_cancel_cause(parent);
    cancel_parent();
    cancel_child(first);
    EXPECT_TRUE(is_cancelled_error(cause(child)));
  }
}

Task<bool> deadline_causes() {
  const absl::Status slow = absl::ResourceExhaustedError("too slow");
  bool ok = true;
  {
    auto [ctx, cancel] = with_timeout_cause(background(), 1ms, slow);
    (void)co_await select(recv_from(ctx.done()));
    ok = ok && ctx.err().code() == absl::StatusCode::kDeadlineExceeded && cause(ctx) == slow;
    auto [child, cancel_child] = with_cancel(ctx);
    ok = ok && cause(child) == slow;
  }
  {
    // Past already: cancelled before it is returned, with the cause.
    auto [ctx, cancel] = with_deadline_cause(background(), Clock::now() - 1s, slow);
    ok = ok && ctx.err().code() == absl::StatusCode::kDeadlineExceeded && cause(ctx) == slow;
  }
  {
    // Its CancelFunc cancels without the cause.
    auto [ctx, cancel] = with_timeout_cause(background(), 1h, slow);
    cancel();
    ok = ok && is_cancelled_error(cause(ctx));
  }
  {
    // No cause given: the deadline error.
    auto [ctx, cancel] = with_timeout(background(), 1ms);
    (void)co_await select(recv_from(ctx.done()));
    ok = ok && cause(ctx).code() == absl::StatusCode::kDeadlineExceeded &&
         cause(ctx).message() == "context deadline exceeded";
  }
  {
    // An inherited earlier deadline is the parent's, with the parent's cause.
    const absl::Status mine = absl::AbortedError("mine");
    auto [parent, cancel_parent] = with_timeout_cause(background(), 1ms, slow);
    auto [child, cancel_child] = with_timeout_cause(parent, 1h, mine);
    (void)co_await select(recv_from(child.done()));
    ok = ok && cause(child) == slow;
  }
  co_return ok;
}

TEST(Context, DeadlineCauseIsReportedWhenTheDeadlineCancels) {
  EXPECT_TRUE(run(deadline_causes(), with_procs(2)));
}

// A child and its parent cancelled at once with different causes, while a
// reader watches the child: the cause it reads, once not OK, never changes,
// and matches err() (TSan: the cause is published by the code's release).
Task<void> cancel_with_cause(CancelCauseFunc cancel, absl::Status cause) {
  co_await goro::yield();
  cancel(std::move(cause));
}

Task<bool> watch_cause(Context ctx) {
  absl::Status seen;
  while (seen.ok()) {
    seen = cause(ctx);
    if (seen.ok()) co_await goro::yield();
  }
  for (int i = 0; i < 50; ++i) {
    if (cause(ctx) != seen || ctx.err().ok()) co_return false;
    co_await goro::yield();
  }
  co_return true;
}

Task<bool> racing_causes(long rounds) {
  test::Watchdog watchdog("racing causes");
  bool ok = true;
  for (long round = 0; round < rounds; ++round) {
    auto [parent, cancel_parent] = with_cancel_cause(background());
    auto [child, cancel_child] = with_cancel_cause(with_value(parent, kNumber, 1));
    auto [grandchild, cancel_grandchild] = with_cancel(child);
    auto reader = spawn(watch_cause(grandchild));
    auto a = spawn(cancel_with_cause(cancel_parent, absl::AbortedError("parent")));
    auto b = spawn(cancel_with_cause(cancel_child, absl::UnavailableError("child")));
    std::thread outside([cancel = cancel_parent] { cancel(absl::DataLossError("outside")); });
    co_await a;
    co_await b;
    outside.join();
    const bool stable = co_await reader;
    const absl::Status got = cause(grandchild);
    ok = ok && stable && (got == cause(child)) &&
         (got.message() == "parent" || got.message() == "child" || got.message() == "outside");
  }
  co_return ok;
}

TEST(Context, CauseNeverChangesWhenCancellationsRace) {
  EXPECT_TRUE(run(racing_causes(test::scaled(300, 20)), with_procs(4)));
}

// --- without_cancel ------------------------------------------------------------

Task<bool> without_cancel_keeps_values() {
  auto [parent, cancel_parent] = with_timeout(background(), 1h);
  Context valued = with_value(parent, kNumber, 7);
  Context detached = without_cancel(valued);
  auto [child, cancel_child] = with_cancel(detached);
  Context child_valued = with_value(child, kName, std::string("n"));
  cancel_parent();
  bool ok = valued.cancelled();
  ok = ok && detached.err().ok() && !detached.cancelled() && detached.done().nil() &&
       !detached.deadline().has_value() && cause(detached).ok() &&
       !detached.stop_token().stop_possible();
  ok = ok && detached.value(kNumber) != nullptr && *detached.value(kNumber) == 7;
  const bool child_done = co_await is_done(child);
  ok = ok && !child_done && child.err().ok() && *child_valued.value(kNumber) == 7 &&
       *child_valued.value(kName) == "n";
  // Its children are cancelled by their own means only.
  cancel_child();
  const bool child_done_now = co_await is_done(child_valued);
  ok = ok && child_done_now && detached.err().ok();
  ok = ok && without_cancel(background()) == background();
  co_return ok;
}

TEST(Context, WithoutCancelKeepsValuesButIsNeverCancelled) {
  EXPECT_TRUE(run(without_cancel_keeps_values(), with_procs(2)));
}

// --- after_func ------------------------------------------------------------------

Task<bool> after_func_runs_after_cancel() {
  bool ok = true;
  Chan<absl::Status> ran = make_chan<absl::Status>(4);
  {
    // The Task form with arguments; f sees the context done.
    auto [ctx, cancel] = with_cancel(background());
    AfterFuncStop stop = after_func(
        ctx, [](Context c, Chan<absl::Status> out) -> Task<void> { co_await out.send(c.err()); },
        ctx, ran);
    for (int i = 0; i < 10; ++i) co_await goro::yield();
    ok = ok && ran.len() == 0;  // not before the cancel
    cancel();
    auto got = co_await ran.recv();
    ok = ok && got.has_value() && is_cancelled_error(*got);
    ok = ok && !stop();  // started already
  }
  {
    // The plain form, on a deadline; f runs in a goroutine of its own.
    auto [ctx, cancel] = with_timeout(background(), 1ms);
    (void)after_func(ctx, [ran, ctx = ctx] { (void)ran.try_send(ctx.err()); });
    auto got = co_await ran.recv();
    ok = ok && got.has_value() && got->code() == absl::StatusCode::kDeadlineExceeded;
  }
  {
    // Done already: started at once.
    auto [ctx, cancel] = with_cancel(background());
    cancel();
    AfterFuncStop stop = after_func(ctx, [ran] { (void)ran.try_send(absl::OkStatus()); });
    auto got = co_await ran.recv();
    ok = ok && got.has_value() && !stop();
  }
  co_return ok;
}

TEST(Context, AfterFuncRunsOnceTheContextIsDone) {
  EXPECT_TRUE(run(after_func_runs_after_cancel(), with_procs(2)));
}

// f runs in its own goroutine, not inside cancel(): f waits for a value
// that the canceller sends only after cancel() has returned (one P).
Task<bool> after_func_is_asynchronous() {
  Chan<int> go_on = make_chan<int>();
  Chan<int> finished = make_chan<int>(1);
  auto [ctx, cancel] = with_cancel(background());
  (void)after_func(ctx, [go_on, finished]() -> Task<void> {
    auto v = co_await go_on.recv();
    co_await finished.send(*v + 1);
  });
  cancel();
  co_await go_on.send(41);
  auto got = co_await finished.recv();
  co_return got == 42;
}

TEST(Context, AfterFuncRunsInItsOwnGoroutine) {
  EXPECT_TRUE(run(after_func_is_asynchronous(), with_procs(1)));
}

Task<bool> after_func_stop() {
  bool ok = true;
  auto witness = std::make_shared<int>(0);
  std::atomic<int> runs{0};
  {
    // Stopped before the cancel: f is destroyed at once and never runs.
    auto [ctx, cancel] = with_cancel(background());
    AfterFuncStop stop = after_func(ctx, [witness, &runs] { runs.fetch_add(1); });
    AfterFuncStop other = after_func(ctx, [&runs] { runs.fetch_add(10); });
    ok = ok && witness.use_count() == 2;
    ok = ok && stop();
    ok = ok && witness.use_count() == 1;  // f and its captures are gone
    ok = ok && !stop() && !AfterFuncStop(stop)();
    cancel();
    // The other registration is independent: it runs.
    while (runs.load() == 0) co_await goro::yield();
    ok = ok && runs.load() == 10 && !other();
  }
  {
    // On a context that is never done: never runs, dropped at once.
    AfterFuncStop stop = after_func(background(), [witness, &runs] { runs.fetch_add(100); });
    ok = ok && witness.use_count() == 1 && stop() && !stop();
    auto [parent, cancel_parent] = with_cancel(background());
    AfterFuncStop detached = after_func(without_cancel(parent), [witness] {});
    cancel_parent();
    ok = ok && witness.use_count() == 1 && detached() && !AfterFuncStop()();
  }
  {
    // Nobody can cancel the context any more: f goes with it, unrun.
    auto [ctx, cancel] = with_cancel(background());
    (void)after_func(with_value(ctx, kNumber, 1), [witness, &runs] { runs.fetch_add(1000); });
    ok = ok && witness.use_count() == 2;
    ctx = Context();
    cancel = CancelFunc();
    ok = ok && witness.use_count() == 1;
  }
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  co_return ok&& runs.load() == 10;
}

TEST(Context, AfterFuncStopKeepsItFromRunning) {
  EXPECT_TRUE(run(after_func_stop(), with_procs(2)));
}

// Stress: stop and cancel race on many registrations, from goroutines and
// an outside thread; each f either runs once or is stopped, never both.
Task<void> stop_all(std::vector<AfterFuncStop>* stops, std::atomic<long>* stopped) {
  for (std::size_t i = 0; i < stops->size(); i += 2) {
    if ((*stops)[i]()) stopped->fetch_add(1);
    if (i % 8 == 0) co_await goro::yield();
  }
}

Task<bool> after_func_races(long rounds) {
  test::Watchdog watchdog("after_func races");
  bool ok = true;
  for (long round = 0; round < rounds; ++round) {
    auto [root, cancel_root] = with_cancel(background());
    auto [ctx, cancel] = with_cancel(with_value(root, kNumber, 1));
    std::atomic<long> ran{0};
    std::atomic<long> stopped{0};
    std::atomic<long> stopped_outside{0};
    std::vector<AfterFuncStop> stops;
    std::vector<AfterFuncStop> outside_stops;
    for (int i = 0; i < 64; ++i) {
      auto f = [&ran] { ran.fetch_add(1); };
      (i % 3 == 0 ? outside_stops : stops).push_back(after_func(ctx, f));
    }
    auto stopper = spawn(stop_all(&stops, &stopped));
    std::thread outside([&] {
      for (auto& s : outside_stops) {
        if (s()) stopped_outside.fetch_add(1);
      }
    });
    co_await goro::yield();
    if (round % 2) {
      cancel();
    } else {
      cancel_root();
    }
    co_await stopper;
    outside.join();
    const long total = static_cast<long>(stops.size() + outside_stops.size());
    while (ran.load() + stopped.load() + stopped_outside.load() < total) co_await goro::yield();
    for (int i = 0; i < 10; ++i) co_await goro::yield();
    ok = ok && ran.load() + stopped.load() + stopped_outside.load() == total;
    // Stopping after the cancel: never true.
    for (auto& s : stops) ok = ok && !s();
  }
  co_return ok;
}

TEST(Context, AfterFuncRunsOrIsStoppedNeverBoth) {
  EXPECT_TRUE(run(after_func_races(test::scaled(200, 20)), with_procs(4)));
}

}  // namespace
}  // namespace goro
