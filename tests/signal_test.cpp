// tests/signal_test.cpp: goro::signal_context (goro/signal.hpp): a listed
// signal cancels the context with a cause naming it, from whichever thread
// receives it; an unlisted one keeps its own disposition; stop restores the
// previous disposition and cancels; registrations of one signal are all
// told; it works in runtimes run one after the other and after run()
// returns.
#include "goro/signal.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

std::atomic<int> counted_signals{0};
extern "C" void count_signal(int) { counted_signals.fetch_add(1, std::memory_order_relaxed); }

// Installs count_signal for `signal` while it lives, then puts back what
// was there.
class CountingHandler {
 public:
  explicit CountingHandler(int signal) : signal_(signal) {
    counted_signals.store(0, std::memory_order_relaxed);
    struct sigaction action {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal_, &action, &saved_);
  }
  ~CountingHandler() { ::sigaction(signal_, &saved_, nullptr); }
  CountingHandler(const CountingHandler&) = delete;
  CountingHandler& operator=(const CountingHandler&) = delete;

 private:
  int signal_;
  struct sigaction saved_ {};
};

// The handler installed for `signal` now.
void (*installed_handler(int signal))(int) {
  struct sigaction now {};
  ::sigaction(signal, nullptr, &now);
  return now.sa_handler;
}

Task<void> wait_done(Context ctx) { (void)co_await ctx.done().recv(); }

TEST(SignalContext, RaisedSignalCancelsWithACauseNamingIt) {
  run([]() -> Task<void> {
    auto [ctx, stop] = signal_context(background(), {SIGUSR1, SIGUSR2});
    EXPECT_FALSE(ctx.cancelled());
    ::raise(SIGUSR1);
    co_await wait_done(ctx);
    EXPECT_EQ(ctx.err().code(), absl::StatusCode::kCancelled);
    const absl::Status why = cause(ctx);
    EXPECT_EQ(why.code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(why.message(), "received signal SIGUSR1");
    EXPECT_EQ(signal_number(why), SIGUSR1);
    EXPECT_EQ(signal_number(ctx.err()), std::nullopt);
  }());
}

TEST(SignalContext, SignalToTheProcessFromAnotherThreadCancels) {
  run(
      []() -> Task<void> {
        auto [ctx, stop] = signal_context(background(), {SIGUSR2});
        std::thread killer([] { ::kill(::getpid(), SIGUSR2); });
        co_await wait_done(ctx);
        killer.join();
        EXPECT_EQ(signal_number(cause(ctx)), SIGUSR2);
      }(),
      test::with_procs(4));
}

TEST(SignalContext, UnlistedSignalKeepsItsOwnHandler) {
  CountingHandler counting(SIGUSR2);
  run([]() -> Task<void> {
    auto [ctx, stop] = signal_context(background(), {SIGUSR1});
    ::raise(SIGUSR2);
    EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 1);
    // Had SIGUSR2 reached the notification, its number would be first in
    // the pipe, and the cause would name it.
    ::raise(SIGUSR1);
    co_await wait_done(ctx);
    EXPECT_EQ(signal_number(cause(ctx)), SIGUSR1);
    EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 1);
  }());
}

TEST(SignalContext, StopRestoresThePreviousHandlerAndCancels) {
  CountingHandler counting(SIGUSR1);
  run([]() -> Task<void> {
    auto [ctx, stop] = signal_context(background(), {SIGUSR1});
    EXPECT_NE(installed_handler(SIGUSR1), &count_signal);
    stop();
    EXPECT_EQ(installed_handler(SIGUSR1), &count_signal);
    EXPECT_EQ(ctx.err().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(signal_number(cause(ctx)), std::nullopt);
    ::raise(SIGUSR1);
    EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 1);
    stop();  // idempotent
    co_return;
  }());
  EXPECT_EQ(installed_handler(SIGUSR1), &count_signal);
}

TEST(SignalContext, EveryRegistrationOfASignalIsToldAndTheLastStopRestores) {
  CountingHandler counting(SIGUSR1);
  run([]() -> Task<void> {
    auto [first, stop_first] = signal_context(background(), {SIGUSR1});
    auto [second, stop_second] = signal_context(background(), {SIGUSR1, SIGUSR2});
    ::raise(SIGUSR1);
    co_await wait_done(first);
    co_await wait_done(second);
    EXPECT_EQ(signal_number(cause(first)), SIGUSR1);
    EXPECT_EQ(signal_number(cause(second)), SIGUSR1);
    stop_first();
    // The second still lists SIGUSR1: it stays caught.
    ::raise(SIGUSR1);
    EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 0);
    stop_second();
    ::raise(SIGUSR1);
    EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 1);
  }());
}

TEST(SignalContext, ParentCancellationCancelsIt) {
  run([]() -> Task<void> {
    auto [parent, cancel] = with_cancel(background());
    auto [ctx, stop] = signal_context(parent, {SIGUSR1});
    cancel();
    co_await wait_done(ctx);
    EXPECT_EQ(ctx.err().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(signal_number(cause(ctx)), std::nullopt);
  }());
}

TEST(SignalContext, WorksInRuntimesRunOneAfterTheOther) {
  CountingHandler counting(SIGUSR1);
  for (int round = 0; round < 3; ++round) {
    run([]() -> Task<void> {
      auto [ctx, stop] = signal_context(background(), {SIGUSR1});
      ::raise(SIGUSR1);
      co_await wait_done(ctx);
      EXPECT_EQ(signal_number(cause(ctx)), SIGUSR1);
    }());
    EXPECT_EQ(installed_handler(SIGUSR1), &count_signal);
  }
  EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 0);
}

TEST(SignalContext, RegistrationKeptPastRunStaysCaughtUntilStopped) {
  CountingHandler counting(SIGUSR1);
  std::optional<SignalContext> kept;
  run([&kept]() -> Task<void> {
    kept.emplace(signal_context(background(), {SIGUSR1}));
    co_return;
  }());
  // The runtime and the goroutine that read the signals are gone; the
  // signal is still caught (and dropped), not passed to the old handler.
  ::raise(SIGUSR1);
  EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 0);
  kept.reset();
  EXPECT_EQ(installed_handler(SIGUSR1), &count_signal);
  ::raise(SIGUSR1);
  EXPECT_EQ(counted_signals.load(std::memory_order_relaxed), 1);
}

TEST(SignalContext, UncatchableSignalIsRejected) {
  run([]() -> Task<void> {
    EXPECT_THROW((void)signal_context(background(), {SIGUSR1, SIGKILL}), std::invalid_argument);
    EXPECT_THROW((void)signal_context(background(), {0}), std::invalid_argument);
    co_return;
  }());
}

TEST(SignalContext, OutsideARuntimeThrowsAndRegistersNothing) {
  CountingHandler counting(SIGUSR1);
  EXPECT_THROW((void)signal_context(background(), {SIGUSR1}), std::logic_error);
  EXPECT_EQ(installed_handler(SIGUSR1), &count_signal);
}

}  // namespace
}  // namespace goro
