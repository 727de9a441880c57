// go_test: goroutines started from a callable and its arguments:
// goro::go(f, args...), goro::spawn(f, args...) and WaitGroup::go(f,
// args...) (Group::go(f, args...) is in group_test). Captures and arguments
// live as long as the goroutine however often it suspends; move-only
// callables and arguments; values and exceptions, including one thrown by
// the call itself; which overload a call picks; where the callable is
// kept (in the goroutine's record, or in a block of its own) and that
// either way the body's frame goes first; and that the form takes nothing
// from the heap.
//
// Run under ASan with ASAN_OPTIONS=detect_stack_use_after_return=1 too: a
// capture read after its closure died is what that build reports.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <goro/goro.hpp>

#include "counting_new.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using goro::JoinHandle;
using goro::Task;
using goro::WaitGroup;
using goro::test::CodedError;
using goro::test::Guard;
using goro::test::LifeCounts;
using goro::test::with_procs;
using goro::test::yield_until;
using goro::test::yield_until_at_least;
using goro::test::yield_until_set;

// --- which overload a call picks -----------------------------------------------

template <class... A>
concept CanGo = requires(A&&... a) {
  goro::go(std::forward<A>(a)...);
};
template <class... A>
concept CanSpawn = requires(A&&... a) {
  goro::spawn(std::forward<A>(a)...);
};

using TakesInt = Task<void> (*)(int);
using GivesInt = Task<int> (*)(int);
using TakesStringRef = Task<void> (*)(std::string&);
using NotATask = int (*)();

static_assert(CanGo<Task<void>>, "a Task alone: go(Task<void>)");
static_assert(!CanGo<Task<int>>, "go drops no value: spawn a Task<int>");
static_assert(CanGo<TakesInt, int>);
static_assert(!CanGo<TakesInt>, "an argument is missing");
static_assert(!CanGo<GivesInt, int>, "go needs a Task<void>");
static_assert(!CanGo<NotATask>, "the callable must return a Task");
static_assert(!CanGo<TakesStringRef, std::string>,
              "arguments are passed as rvalue copies: a non-const reference needs std::ref");
static_assert(CanGo<TakesStringRef, std::reference_wrapper<std::string>>);
static_assert(CanSpawn<Task<int>>);
static_assert(CanSpawn<GivesInt, int>);
static_assert(std::is_same_v<decltype(goro::spawn(std::declval<GivesInt>(), 1)), JoinHandle<int>>);
static_assert(std::is_same_v<decltype(goro::spawn(std::declval<TakesInt>(), 1)), JoinHandle<void>>);

// --- go(f, args...) ----------------------------------------------------------

// Padding for a callable: none (it is kept in the goroutine's record), or
// enough to push it out of the record into a block of its own.
inline constexpr std::size_t kInRecord = 0;
inline constexpr std::size_t kBoxed = 40;

// Not a coroutine, so the closure is built in this function's stack frame,
// gone when the goroutine first runs: a capture read from the closure
// itself, rather than from the goroutine's copy, is a stack-use-after-return
// under ASan (and reads destroyed channel handles otherwise).
[[gnu::noinline]] void start_echo(std::string name, std::shared_ptr<int> token, goro::Chan<int> in,
                                  goro::Chan<std::string> out) {
  goro::go([name, token, in, out]() -> Task<void> {
    co_await goro::yield();
    co_await goro::sleep(1ms);
    const std::optional<int> v = co_await in.recv();
    co_await goro::yield();
    co_await out.send(name + ":" + std::to_string(*token + v.value_or(-100)));
  });
}

// The lambda's captures are read only after the goroutine has suspended
// several times (yield, sleep, a channel receive), long after the
// statement that created the lambda, and the scope holding the originals,
// ended.
Task<bool> captures_survive_suspensions() {
  auto in = goro::make_chan<int>(0);
  auto out = goro::make_chan<std::string>(1);
  std::weak_ptr<int> watch;
  {
    auto token = std::make_shared<int>(7);
    watch = token;
    // Longer than any small-string buffer: its characters are on the heap.
    start_echo(std::string(64, 'n'), std::move(token), in, out);
  }
  co_await in.send(35);
  const std::optional<std::string> got = co_await out.recv();
  // The goroutine's copy of the token goes with its frame.
  const bool freed = co_await yield_until([&] { return watch.expired(); });
  co_return got == std::string(64, 'n') + ":42" && freed;
}

TEST(GoCallable, CapturesOfALambdaSurviveEverySuspension) {
  for (unsigned procs : {1u, 4u}) {
    EXPECT_TRUE(goro::run(captures_survive_suspensions(), with_procs(procs))) << procs;
  }
}

Task<void> store_after_yield(const std::string& text, std::string* into, std::atomic<bool>* done) {
  co_await goro::yield();
  *into = text;
  done->store(true);
}

Task<bool> arguments_are_copied() {
  std::string first;
  std::string second;
  std::atomic<bool> first_done{false};
  std::atomic<bool> second_done{false};
  std::string text(40, 'a');
  // A reference parameter gets the goroutine's copy, not `text` itself...
  goro::go(store_after_yield, text, &first, &first_done);
  text.assign(40, 'b');
  // ... and a temporary is copied before the statement ends.
  goro::go(store_after_yield, std::string(40, 't'), &second, &second_done);
  const bool both = co_await yield_until_set(first_done) && co_await yield_until_set(second_done);
  co_return both&& first == std::string(40, 'a') && second == std::string(40, 't');
}

TEST(GoCallable, ArgumentsAreCopiedEvenForReferenceParameters) {
  EXPECT_TRUE(goro::run(arguments_are_copied(), with_procs(1)));
}

Task<void> add_after_yield(std::atomic<long>& total, long amount) {
  co_await goro::yield();
  total.fetch_add(amount);
}

Task<bool> std_ref_shares() {
  std::atomic<long> total{0};
  for (long i = 1; i <= 10; ++i) goro::go(add_after_yield, std::ref(total), i);
  co_return co_await yield_until_at_least(total, 55);
}

TEST(GoCallable, StdRefSharesAnObject) { EXPECT_TRUE(goro::run(std_ref_shares(), with_procs(2))); }

Task<bool> move_only_callable_and_argument() {
  std::atomic<long> sum{0};
  auto box = std::make_unique<long>(5);
  goro::go(
      [box = std::move(box)](std::unique_ptr<long> argument,
                             std::atomic<long>* into) -> Task<void> {
        co_await goro::yield();
        into->fetch_add(*box + *argument);
      },
      std::make_unique<long>(6), &sum);
  co_return co_await yield_until_at_least(sum, 11);
}

TEST(GoCallable, MoveOnlyCallableAndMoveOnlyArgument) {
  EXPECT_TRUE(goro::run(move_only_callable_and_argument(), with_procs(2)));
}

struct Counter {
  std::atomic<long> value{0};
  Task<void> add_after_yield(long amount) {
    co_await goro::yield();
    value.fetch_add(amount);
  }
};

Task<bool> member_function_with_object() {
  Counter counter;  // outlives the goroutines: this goroutine waits for them
  goro::go(&Counter::add_after_yield, &counter, 1);
  goro::go(&Counter::add_after_yield, std::ref(counter), 2);
  co_return co_await yield_until_at_least(counter.value, 3);
}

TEST(GoCallable, MemberFunctionWithAPointerOrReferenceWrapper) {
  EXPECT_TRUE(goro::run(member_function_with_object(), with_procs(2)));
}

// A callable that throws instead of returning its Task: the exception is the
// goroutine's, reported as uncaught like one thrown by a body.
struct ThrowsBeforeTheTask {
  GORO_CORO_WRAPPER Task<void> operator()(int code) const {
    throw CodedError("thrown by the call", code);
  }
};

Task<bool> call_that_throws_is_the_goroutines(const std::atomic<long>* handled) {
  goro::go(ThrowsBeforeTheTask{}, 17);  // go() itself returns normally
  co_return co_await yield_until_at_least(*handled, 1);
}

TEST(GoCallable, AnExceptionFromTheCallGoesToTheUncaughtHandler) {
  std::atomic<long> handled{0};
  int code = 0;
  goro::Config config = with_procs(2);
  config.on_uncaught_exception = [&](std::uint64_t, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const CodedError& e) {
      code = e.code;
    } catch (...) {
    }
    handled.fetch_add(1);  // last: publishes `code`
  };
  EXPECT_TRUE(goro::run(call_that_throws_is_the_goroutines(&handled), config));
  EXPECT_EQ(code, 17);
}

TEST(GoCallable, WithoutARuntimeThrowsLogicErrorAndDestroysTheCallable) {
  LifeCounts counts;
  EXPECT_THROW(goro::go([guard = Guard(counts)]() -> Task<void> { co_return; }), std::logic_error);
  EXPECT_EQ(counts.alive(), 0);
}

// Starting a goroutine from a callable takes nothing from the global heap,
// as for go(task): small parts live in the record, and a larger callable
// takes a block from goro's frame allocator. (Unused where new is not
// counted.)
template <std::size_t kPad>
void go_adder(std::atomic<long>& ran) {
  goro::go(
      [&ran, pad = std::array<char, kPad>{}](long one) -> Task<void> {
        (void)pad;
        co_await add_after_yield(ran, one);
      },
      1L);
}

[[maybe_unused]] Task<bool> go_callable_allocates_no_heap(long n) {
  std::atomic<long> ran{0};
  // Warm up: G records and frame caches for 2n goroutines exist afterwards.
  for (long i = 0; i < n; ++i) {
    go_adder<kInRecord>(ran);
    go_adder<kBoxed>(ran);
  }
  if (!co_await yield_until_at_least(ran, 2 * n)) co_return false;
  const long before = goro::test::news_on_this_thread();  // no suspension until `after`
  for (long i = 0; i < n; ++i) {
    go_adder<kInRecord>(ran);
    go_adder<kBoxed>(ran);
  }
  const long after = goro::test::news_on_this_thread();
  const bool all_ran = co_await yield_until_at_least(ran, 4 * n);
  co_return all_ran&& after == before;
}

TEST(GoCallable, TakesNothingFromTheHeap) {
#if !GORO_TEST_COUNTS_NEW
  GTEST_SKIP() << "operator new is not counted in this build";
#else
  EXPECT_TRUE(goro::run(go_callable_allocates_no_heap(100), with_procs(1)));
#endif
}

// A goroutine started from a callable and parked three Tasks deep when the
// runtime stops: the shutdown sweep destroys the chain (innermost first),
// the body, and then the callable and arguments its root holds, each once.
Task<void> park_at_depth(int depth, Guard guard) {
  (void)guard;
  if (depth == 0) {
    co_await goro::test::ParkForever{};
  } else {
    co_await park_at_depth(depth - 1, std::move(guard));
  }
}

Task<bool> callables_parked_deep_at_shutdown(LifeCounts* counts) {
  std::atomic<long> started{0};
  goro::go(
      [guard = Guard(*counts), &started](Guard argument) -> Task<void> {
        started.fetch_add(1);
        co_await park_at_depth(3, std::move(argument));
      },
      Guard(*counts));
  auto handle = goro::spawn([guard = Guard(*counts), &started]() -> Task<int> {
    started.fetch_add(1);
    co_await park_at_depth(2, guard);
    co_return 0;
  });
  handle.detach();
  co_return co_await yield_until_at_least(started, 2);
}

TEST(GoCallable, ParkedInNestedAwaitsAtShutdownEverythingIsDestroyedOnce) {
  LifeCounts counts;
  EXPECT_TRUE(goro::run(callables_parked_deep_at_shutdown(&counts), with_procs(2)));
  EXPECT_GT(counts.constructed.load(), 3);
  EXPECT_EQ(counts.alive(), 0);
}

// --- where the callable is kept: in the record, or in a box -----------------
//
// Parts (the callable and its arguments) of up to 16 bytes live in the
// goroutine's record, larger or over-aligned ones in a block of their own
// (detail/invoke_task.hpp); each test below runs both ways (kInRecord,
// kBoxed).

Task<void> empty_body() { co_return; }

// Not a coroutine: counts its calls, then returns a Task.
template <std::size_t kPad>
struct CountsItsCall {
  std::atomic<long>* calls;
  std::array<char, kPad> pad{};
  GORO_CORO_WRAPPER Task<void> operator()() && {
    calls->fetch_add(1);
    return empty_body();
  }
};
static_assert(sizeof(CountsItsCall<kInRecord>) <= 16 && sizeof(CountsItsCall<kBoxed>) > 16);

template <std::size_t kPad>
Task<bool> call_made_by_go(std::atomic<long>* from_thread_calls) {
  std::atomic<long> calls{0};
  goro::go(CountsItsCall<kPad>{&calls});
  const bool called_in_go = calls.load() == 1;  // nothing suspended since
  // From a thread outside the runtime the call is made by go() as well.
  std::thread outside([from_thread_calls] {
    goro::go(CountsItsCall<kPad>{from_thread_calls});
    from_thread_calls->fetch_add(100);  // after go() returned
  });
  outside.join();
  co_return called_in_go && from_thread_calls->load() == 101;
}

TEST(GoCallable, TheCallIsMadeByGoBeforeItReturns) {
  for (unsigned procs : {1u, 2u}) {
    std::atomic<long> outside_calls{0};
    EXPECT_TRUE(goro::run(call_made_by_go<kInRecord>(&outside_calls), with_procs(procs)));
    outside_calls.store(0);
    EXPECT_TRUE(goro::run(call_made_by_go<kBoxed>(&outside_calls), with_procs(procs)));
  }
}

// Destruction order: when each object of a goroutine went, by a shared
// counter. The body's frame must go before the callable and arguments it
// was made from (a lambda body reads its captures through the callable).
struct DeathOrder {
  std::atomic<long> clock{0};
  std::atomic<long> body_frame{0};  // when the body's frame died (0: not yet)
  std::atomic<long> capture{0};     // when the kept capture died
  std::atomic<long> bodies{0};      // bodies started
  [[nodiscard]] long tick() { return clock.fetch_add(1) + 1; }
};

// Stamps `kWhen` with its death, unless it was moved from (each copy but
// the last one made is).
template <std::atomic<long> DeathOrder::*kWhen>
class StampsDeath {
 public:
  explicit StampsDeath(DeathOrder* order) noexcept : order_(order) {}
  StampsDeath(StampsDeath&& other) noexcept : order_(std::exchange(other.order_, nullptr)) {}
  StampsDeath& operator=(StampsDeath&&) = delete;
  ~StampsDeath() {
    if (order_ != nullptr) (order_->*kWhen).store(order_->tick());
  }
  [[nodiscard]] DeathOrder* order() const noexcept { return order_; }

 private:
  DeathOrder* order_;
};

template <std::size_t kPad>
struct Padding {
  std::array<char, kPad> bytes{};
};
template <>
struct Padding<0> {};

// A by-value parameter of the body, so its last move lives in the body's
// frame until that frame is destroyed; carries the padding that decides
// where the parts are kept.
template <std::size_t kPad>
struct FrameStamp : Padding<kPad> {
  explicit FrameStamp(DeathOrder* order) : stamp(order) {}
  StampsDeath<&DeathOrder::body_frame> stamp;
};

// The callable: its capture stamps the callable's death, its parameter the
// body frame's. kPark: the body parks for good (the shutdown sweep destroys
// it) instead of finishing after a yield.
template <class R, bool kPark>
auto stamping_body(DeathOrder* order) {
  return [stamp = StampsDeath<&DeathOrder::capture>(order)](auto frame) -> Task<R> {
    (void)frame;
    stamp.order()->bodies.fetch_add(1);
    co_await goro::yield();
    if constexpr (kPark) co_await goro::test::ParkForever{};
    if constexpr (!std::is_void_v<R>) co_return 1;
  };
}

template <std::size_t kPad>
Task<bool> body_goes_before_captures(DeathOrder* go_order, DeathOrder* spawn_order,
                                     DeathOrder* parked_order) {
  goro::go(stamping_body<void, false>(go_order), FrameStamp<kPad>(go_order));
  auto handle = goro::spawn(stamping_body<int, false>(spawn_order), FrameStamp<kPad>(spawn_order));
  const int value = co_await handle;
  auto parked = goro::spawn(stamping_body<int, true>(parked_order), FrameStamp<kPad>(parked_order));
  parked.detach();
  const bool parked_started = co_await yield_until_at_least(parked_order->bodies, 1);
  const bool go_done = co_await yield_until([go_order] { return go_order->capture.load() != 0; });
  co_return value == 1 && parked_started&& go_done;
}

void expect_body_first(const DeathOrder& order, const char* which) {
  EXPECT_NE(order.body_frame.load(), 0) << which;
  EXPECT_NE(order.capture.load(), 0) << which;
  EXPECT_LT(order.body_frame.load(), order.capture.load()) << which;
}

template <std::size_t kPad>
void check_body_goes_before_captures() {
  static_assert((sizeof(decltype(stamping_body<int, false>(nullptr))) + sizeof(FrameStamp<kPad>) <=
                 16) == (kPad == kInRecord));
  for (unsigned procs : {1u, 2u}) {
    DeathOrder go_order, spawn_order, parked_order;
    EXPECT_TRUE(goro::run(body_goes_before_captures<kPad>(&go_order, &spawn_order, &parked_order),
                          with_procs(procs)));
    expect_body_first(go_order, "go, finished");
    expect_body_first(spawn_order, "spawn, joined");
    expect_body_first(parked_order, "spawn, parked at shutdown");
  }
}

TEST(GoCallable, TheBodysFrameIsDestroyedBeforeTheCallableInTheRecord) {
  check_body_goes_before_captures<kInRecord>();
}

TEST(GoCallable, TheBodysFrameIsDestroyedBeforeTheBoxedCallable) {
  check_body_goes_before_captures<kBoxed>();
}

// An argument whose copy throws: go() throws it, and starts nothing.
struct ThrowsOnCopy {
  explicit ThrowsOnCopy(LifeCounts& counts) : guard(counts) {}
  ThrowsOnCopy(const ThrowsOnCopy& other) : guard(other.guard) { throw CodedError("copy", 9); }
  Guard guard;
};

template <std::size_t kPad>
Task<bool> copy_that_throws(LifeCounts* counts) {
  std::atomic<long> ran{0};
  const ThrowsOnCopy argument(*counts);
  bool threw = false;
  try {
    goro::go(
        [&ran, pad = std::array<char, kPad>{}](ThrowsOnCopy) -> Task<void> {
          (void)pad;
          ran.fetch_add(1);
          co_return;
        },
        argument);
  } catch (const CodedError& e) {
    threw = e.code == 9;
  }
  // The runtime goes on: a goroutine started next runs, and the first one
  // never does.
  goro::go([&ran]() -> Task<void> {
    ran.fetch_add(10);
    co_return;
  });
  const bool next_ran = co_await yield_until_at_least(ran, 10);
  co_await goro::yield();
  co_return threw&& next_ran&& ran.load() == 10 && counts->alive() == 1;  // `argument` only
}

TEST(GoCallable, ACopyThatThrowsThrowsFromGoAndStartsNothing) {
  for (unsigned procs : {1u, 2u}) {
    LifeCounts counts;
    EXPECT_TRUE(goro::run(copy_that_throws<kInRecord>(&counts), with_procs(procs)));
    EXPECT_TRUE(goro::run(copy_that_throws<kBoxed>(&counts), with_procs(procs)));
    EXPECT_EQ(counts.alive(), 0);
  }
}

// Captures aligned beyond what the frame allocator gives by default keep
// their alignment in their box.
struct alignas(128) OverAligned {
  long value = 0;
};

Task<bool> over_aligned_capture_keeps_its_alignment() {
  OverAligned wide;
  wide.value = 77;
  auto handle = goro::spawn([wide]() -> Task<bool> {
    co_await goro::yield();
    co_return reinterpret_cast<std::uintptr_t>(&wide) % alignof(OverAligned) == 0 &&
        wide.value == 77;
  });
  co_return co_await handle;
}

TEST(GoCallable, AnOverAlignedCaptureKeepsItsAlignment) {
  EXPECT_TRUE(goro::run(over_aligned_capture_keeps_its_alignment(), with_procs(2)));
}

// --- spawn(f, args...) -------------------------------------------------------

Task<bool> spawn_gives_the_value() {
  const std::string prefix(32, 'p');
  auto handle = goro::spawn(
      [prefix](int x) -> Task<std::string> {
        co_await goro::yield();
        co_await goro::sleep(1ms);
        co_return prefix + std::to_string(x);
      },
      42);
  co_return co_await handle == std::string(32, 'p') + "42";
}

TEST(SpawnCallable, JoinGivesTheBodysValue) {
  for (unsigned procs : {1u, 4u}) {
    EXPECT_TRUE(goro::run(spawn_gives_the_value(), with_procs(procs))) << procs;
  }
}

enum class ThrownBy { kBody, kCallInARecord, kBoxedCall };

Task<int> spawn_rethrows(ThrownBy thrower) {
  std::string what(24, 'w');
  JoinHandle<int> handle;
  if (thrower == ThrownBy::kBoxedCall) {
    handle = goro::spawn(
        [](std::string w) GORO_CORO_WRAPPER -> Task<int> { throw CodedError(w, 3); }, what);
  } else if (thrower == ThrownBy::kCallInARecord) {
    handle = goro::spawn(
        [&what](int code) GORO_CORO_WRAPPER -> Task<int> { throw CodedError(what, code); }, 5);
  } else {
    handle = goro::spawn(
        [what](int code) -> Task<int> {
          co_await goro::yield();
          throw CodedError(what, code);
        },
        4);
  }
  try {
    (void)co_await handle;
  } catch (const CodedError& e) {
    co_return e.what() == what ? e.code : -1;
  }
  co_return -2;
}

TEST(SpawnCallable, JoinRethrowsTheBodysException) {
  EXPECT_EQ(goro::run(spawn_rethrows(ThrownBy::kBody), with_procs(2)), 4);
}

TEST(SpawnCallable, JoinRethrowsAnExceptionThrownByTheCall) {
  EXPECT_EQ(goro::run(spawn_rethrows(ThrownBy::kBoxedCall), with_procs(2)), 3);
  EXPECT_EQ(goro::run(spawn_rethrows(ThrownBy::kCallInARecord), with_procs(2)), 5);
}

Task<bool> callable_destroyed_before_the_joiner_resumes(LifeCounts* counts) {
  auto handle = goro::spawn(
      [guard = Guard(*counts)](Guard) -> Task<int> {
        co_await goro::yield();
        co_return 1;
      },
      Guard(*counts));
  const int value = co_await handle;
  co_return value == 1 && counts->alive() == 0;
}

TEST(SpawnCallable, CallableAndArgumentsAreDestroyedBeforeTheJoinerResumes) {
  LifeCounts counts;
  EXPECT_TRUE(goro::run(callable_destroyed_before_the_joiner_resumes(&counts), with_procs(2)));
  EXPECT_GT(counts.constructed.load(), 0);
}

// --- WaitGroup::go -----------------------------------------------------------

Task<long> wait_group_go_waits_for_every_body(long n) {
  std::atomic<long> sum{0};
  WaitGroup wg;
  for (long i = 1; i <= n; ++i) {
    wg.go(
        [&sum](long value) -> Task<void> {
          if (value % 2 == 0) co_await goro::yield();
          sum.fetch_add(value);
        },
        i);
  }
  co_await wg.wait();
  co_return sum.load();
}

TEST(WaitGroupGo, WaitReturnsOnceEveryBodyFinished) {
  for (unsigned procs : {1u, 4u}) {
    EXPECT_EQ(goro::run(wait_group_go_waits_for_every_body(1000), with_procs(procs)), 500500)
        << procs;
  }
}

Task<bool> throwing_bodies_still_call_done(const std::atomic<long>* handled) {
  WaitGroup wg;
  wg.go(
      [](int code) -> Task<void> {
        co_await goro::yield();
        throw CodedError("body", code);
      },
      1);
  wg.go(ThrowsBeforeTheTask{}, 2);
  co_await wg.wait();  // returns: both called done()
  co_return co_await yield_until_at_least(*handled, 2);
}

TEST(WaitGroupGo, AThrowingBodyCallsDoneAndItsExceptionIsReportedAsUncaught) {
  std::atomic<long> handled{0};
  std::atomic<int> codes{0};
  goro::Config config = with_procs(2);
  config.on_uncaught_exception = [&](std::uint64_t, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const CodedError& e) {
      codes.fetch_add(e.code);
    } catch (...) {
    }
    handled.fetch_add(1);
  };
  EXPECT_TRUE(goro::run(throwing_bodies_still_call_done(&handled), config));
  EXPECT_EQ(handled.load(), 2);
  EXPECT_EQ(codes.load(), 3);
}

// Travels with the callable (or argument) holding it; the last move,
// destroyed with the callable, counts whether the WaitGroup's counter was
// already 0 then (done() already called).
class ZeroProbe {
 public:
  ZeroProbe(WaitGroup* wg, std::atomic<long>* zero_when_destroyed)
      : wg_(wg), zero_when_destroyed_(zero_when_destroyed) {}
  ZeroProbe(ZeroProbe&& other) noexcept
      : wg_(other.wg_), zero_when_destroyed_(std::exchange(other.zero_when_destroyed_, nullptr)) {}
  ZeroProbe& operator=(ZeroProbe&&) = delete;
  ~ZeroProbe() {
    if (zero_when_destroyed_ != nullptr && wg_->wait().await_ready()) {
      zero_when_destroyed_->fetch_add(1);
    }
  }

 private:
  WaitGroup* wg_;
  std::atomic<long>* zero_when_destroyed_;
};

Task<bool> callable_destroyed_before_done() {
  std::atomic<long> zero_when_destroyed{0};
  WaitGroup wg;
  wg.go([probe = ZeroProbe(&wg, &zero_when_destroyed)](
            ZeroProbe) -> Task<void> { co_await goro::yield(); },
        ZeroProbe(&wg, &zero_when_destroyed));
  co_await wg.wait();
  co_return zero_when_destroyed.load() == 0;
}

TEST(WaitGroupGo, CallableAndArgumentsAreDestroyedBeforeDone) {
  for (unsigned procs : {1u, 4u}) {
    EXPECT_TRUE(goro::run(callable_destroyed_before_done(), with_procs(procs))) << procs;
  }
}

TEST(WaitGroupGo, WithoutARuntimeThrowsAndPutsTheCounterBack) {
  WaitGroup wg;
  EXPECT_THROW(wg.go([]() -> Task<void> { co_return; }), std::logic_error);
  // The counter is 0 again: one more done() would make it negative.
  EXPECT_THROW(wg.done(), std::logic_error);
}

}  // namespace
