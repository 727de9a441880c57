// tests/deadlock_test.cpp: run() throws goro::Deadlock when every goroutine
// is parked with nothing to wake it, and does not while a timer, an I/O
// operation, a blocking call or a thread outside the runtime can still
// wake one.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>

#include <goro/io_multishot.hpp>

#include "poller.hpp"
#include "runtime.hpp"
#include "test_util.hpp"
#include "thread_census.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

// A short grace keeps the tests quick; the "must not fire" cases wait far
// longer than it.
Config quick(unsigned procs = 2) {
  Config config = test::with_procs(procs);
  config.deadlock_grace = 20ms;
  return config;
}

Task<int> test_value() { co_return 7; }

// Whether `report` lists a goroutine waiting for `reason` as Go heads a
// traceback, with how long it has waited: "goroutine 1 [chan receive, 21
// ms] (main)". `id` and `suffix` are regular expressions; `reason` is
// taken literally.
bool lists_wait(const std::string& report, const std::string& reason,
                const std::string& id = "\\d+", const std::string& suffix = "") {
  const std::string literal = std::regex_replace(reason, std::regex(R"([.()\[\]])"), R"(\$&)");
  return std::regex_search(report, std::regex("goroutine " + id + " \\[" + literal +
                                              ", \\d+ (ms|s|minutes)\\]" + suffix));
}

// The deadlock report of running `main` (empty if run() returned).
std::string deadlock_report_of(Task<int> main, unsigned procs = 2) {
  try {
    (void)run(std::move(main), quick(procs));
  } catch (const Deadlock& e) {
    return e.what();
  }
  return "";
}

Task<int> receive_forever() {
  Chan<int> nobody_sends = make_chan<int>();
  auto v = co_await nobody_sends.recv();
  co_return v.value_or(-1);
}

TEST(Deadlock, MainReceivingFromASilentChannelThrows) {
  try {
    (void)run(receive_forever(), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    const std::string report = e.what();
    EXPECT_NE(report.find("all goroutines are asleep"), std::string::npos) << report;
    EXPECT_TRUE(lists_wait(report, "chan receive", "1", " \\(main\\)")) << report;
  }
}

Task<void> wait_for(Chan<int> in, Chan<int> out, test::LifeCounts* counts) {
  test::Guard guard(*counts);
  auto v = co_await in.recv();
  co_await out.send(v.value_or(0));
}

Task<void> two_goroutines_wait_for_each_other(test::LifeCounts* counts) {
  Chan<int> a = make_chan<int>();
  Chan<int> b = make_chan<int>();
  auto first = spawn(wait_for(a, b, counts));
  auto second = spawn(wait_for(b, a, counts));
  co_await first;
  co_await second;
}

TEST(Deadlock, ACycleOfGoroutinesIsReportedAndDestroyed) {
  test::LifeCounts counts;
  try {
    run(two_goroutines_wait_for_each_other(&counts), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    const std::string report = e.what();
    EXPECT_TRUE(lists_wait(report, "join", "1", " \\(main\\)")) << report;
    // Both goroutines wait to receive.
    EXPECT_TRUE(lists_wait(report, "chan receive", "2")) << report;
    EXPECT_TRUE(lists_wait(report, "chan receive", "3")) << report;
  }
  EXPECT_EQ(counts.constructed.load(), 2);
  EXPECT_EQ(counts.alive(), 0);  // their frames were destroyed
  // The process can run again.
  EXPECT_EQ(run(test_value(), quick()), 7);
}

Task<int> nil_channel() {
  Chan<int> nil;
  co_await nil.send(1);
  co_return 0;
}

TEST(Deadlock, ANilChannelSendIsADeadlock) {
  try {
    (void)run(nil_channel(), quick(1));
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    EXPECT_TRUE(lists_wait(e.what(), "chan send (nil chan)", "1")) << e.what();
  }
}

Task<int> lock_twice() {
  Mutex m;
  co_await m.lock();
  co_await m.lock();  // Go's "fatal error: all goroutines are asleep"
  co_return 0;
}

TEST(Deadlock, LockingAMutexTwiceIsReportedWithItsWaitReason) {
  try {
    (void)run(lock_twice(), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    EXPECT_TRUE(lists_wait(e.what(), "sync.Mutex.Lock", "1", " \\(main\\)")) << e.what();
  }
}

// --- Wait reasons: Go's names, and how long each goroutine has waited -------

Task<int> send_to_nobody() {
  Chan<int> nobody_receives = make_chan<int>();
  co_await nobody_receives.send(1);
  co_return 0;
}

TEST(DeadlockReport, NamesAChannelSendAsGoDoes) {
  EXPECT_TRUE(lists_wait(deadlock_report_of(send_to_nobody()), "chan send", "1", " \\(main\\)"));
}

Task<int> receive_from_nil() {
  Chan<int> nil;
  co_return (co_await nil.recv()).value_or(-1);
}

TEST(DeadlockReport, NamesANilChannelReceiveAsGoDoes) {
  const std::string report = deadlock_report_of(receive_from_nil());
  EXPECT_TRUE(lists_wait(report, "chan receive (nil chan)", "1")) << report;
}

Task<int> select_over_silent_channels() {
  Chan<int> a = make_chan<int>();
  Chan<int> b = make_chan<int>();
  auto r = co_await select(recv_from(a), recv_from(b));
  co_return static_cast<int>(r.index());
}

TEST(DeadlockReport, NamesASelectAsGoDoes) {
  const std::string report = deadlock_report_of(select_over_silent_channels());
  EXPECT_TRUE(lists_wait(report, "select", "1")) << report;
}

Task<int> select_over_nil_channels_only() {
  Chan<int> nil;
  auto r = co_await select(recv_from(nil));
  co_return static_cast<int>(r.index());
}

TEST(DeadlockReport, NamesASelectWithOnlyNilCasesAsGosEmptySelect) {
  const std::string report = deadlock_report_of(select_over_nil_channels_only());
  EXPECT_TRUE(lists_wait(report, "select (no cases)", "1")) << report;
}

Task<int> read_lock_under_the_write_lock() {
  RWMutex rw;
  co_await rw.lock();
  co_await rw.rlock();
  co_return 0;
}

TEST(DeadlockReport, NamesAnRWMutexReadLockAsGoDoes) {
  const std::string report = deadlock_report_of(read_lock_under_the_write_lock());
  EXPECT_TRUE(lists_wait(report, "sync.RWMutex.RLock", "1")) << report;
}

Task<int> write_lock_under_a_read_lock() {
  RWMutex rw;
  co_await rw.rlock();
  co_await rw.lock();  // waits for the reader, itself
  co_return 0;
}

TEST(DeadlockReport, NamesAnRWMutexWriteLockAsGoDoes) {
  const std::string report = deadlock_report_of(write_lock_under_a_read_lock());
  EXPECT_TRUE(lists_wait(report, "sync.RWMutex.Lock", "1")) << report;
}

Task<int> wait_for_a_group_nobody_counts_down() {
  WaitGroup group;
  group.add(1);
  co_await group.wait();
  co_return 0;
}

TEST(DeadlockReport, NamesAWaitGroupWaitAsGoDoes) {
  const std::string report = deadlock_report_of(wait_for_a_group_nobody_counts_down());
  EXPECT_TRUE(lists_wait(report, "sync.WaitGroup.Wait", "1")) << report;
}

Task<int> wait_for_a_signal_nobody_sends() {
  Mutex m;
  Cond cond;
  co_await m.lock();
  co_await cond.wait(m);
  m.unlock();
  co_return 0;
}

TEST(DeadlockReport, NamesACondWaitAsGoDoes) {
  const std::string report = deadlock_report_of(wait_for_a_signal_nobody_sends());
  EXPECT_TRUE(lists_wait(report, "sync.Cond.Wait", "1")) << report;
}

Task<int> acquire_more_than_is_left() {
  Semaphore sem(1);
  co_await sem.acquire(1);
  co_await sem.acquire(1);
  co_return 0;
}

TEST(DeadlockReport, NamesASemaphoreAcquireAsGosSemacquire) {
  const std::string report = deadlock_report_of(acquire_more_than_is_left());
  EXPECT_TRUE(lists_wait(report, "semacquire", "1")) << report;
}

Task<absl::Status> receive_status(Chan<int> ch) {
  (void)co_await ch.recv();
  co_return absl::OkStatus();
}

Task<int> wait_for_a_stuck_group() {
  Chan<int> nobody_sends = make_chan<int>();
  Group group;
  group.go(receive_status(nobody_sends));
  (void)co_await group.wait();
  co_return 0;
}

TEST(DeadlockReport, NamesAGroupWaitAsErrgroupsWait) {
  const std::string report = deadlock_report_of(wait_for_a_stuck_group());
  EXPECT_TRUE(lists_wait(report, "errgroup.Group.Wait", "1", " \\(main\\)")) << report;
  EXPECT_TRUE(lists_wait(report, "chan receive", "2")) << report;
}

// The goroutine parked before the grace began, and the wait clock never
// runs ahead of the real one: the report says at least the grace (20 ms).
TEST(DeadlockReport, SaysHowLongEachGoroutineHasWaitedAtLeastTheGrace) {
  const std::string report = deadlock_report_of(receive_forever());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(report, m, std::regex(R"(\[chan receive, (\d+) (ms|s|minutes)\])")))
      << report;
  if (m[2] == "ms") {
    EXPECT_GE(std::stoll(m[1]), 20) << report;
  }
}

TEST(DeadlockReport, PrintsMillisecondsThenSecondsThenGosMinutes) {
  using detail::describe_wait;
  EXPECT_EQ(describe_wait("chan receive", 0), "chan receive, 0 ms");
  EXPECT_EQ(describe_wait("chan receive", 999'999'999), "chan receive, 999 ms");
  EXPECT_EQ(describe_wait("select", 1'000'000'000), "select, 1 s");
  EXPECT_EQ(describe_wait("select", 59'999'999'999), "select, 59 s");
  EXPECT_EQ(describe_wait("sync.Mutex.Lock", 60'000'000'000), "sync.Mutex.Lock, 1 minutes");
  EXPECT_EQ(describe_wait("sleep", 3'600'000'000'000), "sleep, 60 minutes");
  EXPECT_EQ(describe_wait("sleep", -5), "sleep, 0 ms");  // a clock read racing the park
  EXPECT_EQ(describe_wait(nullptr, 123), "parked");
}

Task<int> sleep_longer_than_the_grace() {
  co_await sleep(100ms);
  co_return 1;
}

TEST(Deadlock, APendingTimerIsNotADeadlock) {
  EXPECT_EQ(run(sleep_longer_than_the_grace(), quick()), 1);
}

Task<int> read_written_later(int fd) {
  char c = 0;
  auto n = co_await io::read(fd, &c, 1);
  co_return n.ok() && *n == 1 ? c : -1;
}

TEST(Deadlock, APendingReadIsNotADeadlock) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  std::thread writer([fd = fds[1]] {
    std::this_thread::sleep_for(150ms);
    (void)::write(fd, "r", 1);
  });
  EXPECT_EQ(run(read_written_later(fds[0]), quick()), 'r');
  writer.join();
  (void)io::close(fds[0]);
  (void)io::close(fds[1]);
}

Task<int> long_blocking_call() {
  co_return co_await blocking([] {
    std::this_thread::sleep_for(150ms);
    return 3;
  });
}

TEST(Deadlock, APendingBlockingCallIsNotADeadlock) {
  EXPECT_EQ(run(long_blocking_call(), quick()), 3);
}

Task<void> send_one(Chan<int> ch) { co_await ch.send(5); }

// The delay counts from when the runtime runs (go() from outside needs a
// running runtime), whenever this thread or run() got the CPU. The mark
// hides the thread from the thread census, so that only the activity it
// makes (a goroutine started from outside) can hold the detector off.
void start_sender_later(Chan<int> ch, std::chrono::milliseconds delay,
                        const std::atomic<bool>* running) {
  detail::RuntimeThreadMark hidden;
  while (!running->load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(delay);
  go(send_one(ch));
}

Task<int> wait_for_outside(Chan<int> ch, std::atomic<bool>* running) {
  running->store(true);
  co_return (co_await ch.recv()).value_or(-1);
}

TEST(Deadlock, AGoroutineStartedFromOutsideWithinTheGraceIsNotADeadlock) {
  Chan<int> ch = make_chan<int>();
  Config config = quick();
  config.deadlock_grace = 10s;  // far past the 50 ms, even on a loaded machine
  std::atomic<bool> running{false};
  std::thread outside(start_sender_later, ch, 50ms, &running);
  EXPECT_EQ(run(wait_for_outside(ch, &running), config), 5);
  outside.join();
}

TEST(Deadlock, DetectionCanBeTurnedOff) {
  Chan<int> ch = make_chan<int>();
  Config config = quick();
  config.detect_deadlocks = false;
  std::atomic<bool> running{false};
  std::thread outside(start_sender_later, ch, 150ms, &running);  // far past the grace
  EXPECT_EQ(run(wait_for_outside(ch, &running), config), 5);
  outside.join();
}

// --- Threads outside the runtime ------------------------------------------------

// Far past the grace of quick(): a test whose outside thread feeds this late
// would see a deadlock declared if the detector trusted threads only for the
// grace. Passing does not depend on it: the thread may feed at any time.
constexpr auto kLongPastTheGrace = 300ms;

// A thread outside the runtime, joined however the test ends. Its body gets
// a flag that is set once run() has returned (so that a body still trying
// to feed a runtime that declared a deadlock gives up).
class OutsideThread {
 public:
  template <class Body>
  explicit OutsideThread(Body body)
      : thread_([this, body = std::move(body)]() mutable { body(run_over_); }) {}
  OutsideThread(const OutsideThread&) = delete;
  OutsideThread& operator=(const OutsideThread&) = delete;
  ~OutsideThread() {
    run_over_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> run_over_{false};
  std::thread thread_;  // last: starts after the flag it uses
};

// Waits until the runtime runs, then far past the grace.
void wait_long_past_the_grace(const std::atomic<bool>& running) {
  while (!running.load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(kLongPastTheGrace);
}

// Sends 5 on `ch` from outside the runtime with try_send, which succeeds
// once main is parked receiving.
void feed(const Chan<int>& ch, const std::atomic<bool>& run_over) {
  while (!run_over.load() && !ch.try_send(5)) std::this_thread::sleep_for(1ms);
}

TEST(Deadlock, AnOutsideThreadThatFeedsLaterIsNotADeadlock) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  OutsideThread outside([&](const std::atomic<bool>& run_over) {
    wait_long_past_the_grace(running);
    feed(ch, run_over);
  });
  EXPECT_EQ(run(wait_for_outside(ch, &running), quick()), 5);
}

Task<int> wait_for_group(WaitGroup* group, std::atomic<bool>* running) {
  running->store(true);
  co_await group->wait();
  co_return 1;
}

TEST(Deadlock, AWaitGroupCountedDownByAnOutsideThreadLaterIsNotADeadlock) {
  WaitGroup group;
  group.add(1);
  std::atomic<bool> running{false};
  OutsideThread outside([&](const std::atomic<bool>&) {
    wait_long_past_the_grace(running);
    group.done();
  });
  EXPECT_EQ(run(wait_for_group(&group, &running), quick()), 1);
}

Task<int> wait_for_cancel(Context ctx, std::atomic<bool>* running) {
  running->store(true);
  (void)co_await ctx.done().recv();
  co_return ctx.err().code() == absl::StatusCode::kCancelled ? 1 : 0;
}

TEST(Deadlock, AContextCancelledByAnOutsideThreadLaterIsNotADeadlock) {
  auto [ctx, cancel] = with_cancel(background());
  std::atomic<bool> running{false};
  OutsideThread outside([&, cancel = cancel](const std::atomic<bool>&) {
    wait_long_past_the_grace(running);
    cancel();
  });
  EXPECT_EQ(run(wait_for_cancel(ctx, &running), quick()), 1);
}

// Main receives the one value the outside thread sends, then waits for a
// second that nobody will send: once the thread has exited, nothing can.
Task<int> receive_twice(Chan<int> ch) {
  (void)co_await ch.recv();
  co_return (co_await ch.recv()).value_or(-1);
}

TEST(Deadlock, OnceTheOutsideThreadHasExitedADeadlockIsReported) {
  test::Watchdog watchdog("Deadlock.OnceTheOutsideThreadHasExitedADeadlockIsReported", 60s);
  Chan<int> ch = make_chan<int>();
  OutsideThread outside([&](const std::atomic<bool>& run_over) { feed(ch, run_over); });
  try {
    (void)run(receive_twice(ch), quick());
    FAIL() << "run returned";
  } catch (const Deadlock& e) {
    EXPECT_TRUE(lists_wait(e.what(), "chan receive", "1", " \\(main\\)")) << e.what();
  }
}

// --- Wakers the thread census cannot see: OutsideWaker -------------------------
//
// A RuntimeThreadMark hides a test's thread from the thread census: the
// thread then stands for a waker that is no live thread of the process (a
// thread that another library starts later, a signal handler), which only
// an OutsideWaker makes known to the detector.

// Waits, hidden, far past the grace and then feeds `ch`, holding `waker`
// until then.
void feed_later_holding(OutsideWaker& waker, const Chan<int>& ch, const std::atomic<bool>& running,
                        const std::atomic<bool>& run_over) {
  detail::RuntimeThreadMark hidden;
  wait_long_past_the_grace(running);
  feed(ch, run_over);
  waker.release();
}

TEST(Deadlock, AnOutsideWakerHoldsOffTheDetectorForAWakerTheCensusCannotSee) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  OutsideThread outside([&, waker = OutsideWaker()](const std::atomic<bool>& run_over) mutable {
    feed_later_holding(waker, ch, running, run_over);
  });
  EXPECT_EQ(run(wait_for_outside(ch, &running), quick()), 5);
}

TEST(Deadlock, AWakerTheCensusCannotSeeIsTrustedOnlyForTheGraceWithoutAnOutsideWaker) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  // It would feed, but only after run() has returned.
  OutsideThread outside([](const std::atomic<bool>& run_over) {
    detail::RuntimeThreadMark hidden;
    while (!run_over.load()) std::this_thread::sleep_for(1ms);
  });
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
  EXPECT_TRUE(running.load());
}

TEST(Deadlock, ADroppedOutsideWakerNoLongerHoldsOffTheDetector) {
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  std::atomic<bool> dropped{false};
  // Holds the waker far past the grace, drops it without feeding, and
  // stays (hidden) until run() returns.
  OutsideThread outside([&, waker = OutsideWaker()](const std::atomic<bool>& run_over) mutable {
    detail::RuntimeThreadMark hidden;
    wait_long_past_the_grace(running);
    dropped.store(true);
    waker.release();
    while (!run_over.load()) std::this_thread::sleep_for(1ms);
  });
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
  EXPECT_TRUE(dropped.load());  // not declared while the waker lived
}

TEST(Deadlock, OutsideWakerIsMovableAndReleasesOnce) {
  OutsideWaker first;
  OutsideWaker second(std::move(first));
  first.release();  // moved-from: promises nothing, releases nothing
  OutsideWaker third;
  third = std::move(second);
  third.release();
  third.release();  // idempotent
  // Every promise ended: the detector works again.
  Chan<int> ch = make_chan<int>();
  std::atomic<bool> running{false};
  EXPECT_THROW(run(wait_for_outside(ch, &running), quick()), Deadlock);
}

// --- The thread census -----------------------------------------------------------

// Whether the census reaches `expected` within a generous bound: a thread
// that was just joined (here or in an earlier test) may stay listed by the
// kernel for a moment.
bool census_settles_at(bool expected) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (detail::outside_thread_alive() != expected) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Also shows, under a sanitizer, that its helper threads are not taken for
// outside threads (ThreadSanitizer always runs one).
TEST(ThreadCensus, SeesAThreadOutsideTheRuntimeUntilItEnds) {
  detail::RuntimeThreadMark self;  // the test's own thread is not the one looked for
  ASSERT_TRUE(census_settles_at(false));
  std::atomic<bool> stop{false};
  std::thread outside([&] {
    while (!stop.load()) std::this_thread::sleep_for(1ms);
  });
  EXPECT_TRUE(detail::outside_thread_alive());
  stop.store(true);
  outside.join();
  EXPECT_TRUE(census_settles_at(false));
}

TEST(ThreadCensus, DoesNotSeeAThreadWhileItIsMarked) {
  detail::RuntimeThreadMark self;
  ASSERT_TRUE(census_settles_at(false));
  std::atomic<int> stage{0};
  std::thread marked([&] {
    {
      detail::RuntimeThreadMark outer;
      detail::RuntimeThreadMark inner;  // marks nest
      stage.store(1);
      while (stage.load() != 2) std::this_thread::sleep_for(1ms);
    }
    {
      detail::RuntimeThreadMark again;
      stage.store(3);
      while (stage.load() != 4) std::this_thread::sleep_for(1ms);
    }
    stage.store(5);
    while (stage.load() != 6) std::this_thread::sleep_for(1ms);
  });
  while (stage.load() != 1) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(detail::outside_thread_alive());
  stage.store(2);
  while (stage.load() != 3) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(detail::outside_thread_alive());
  stage.store(4);
  while (stage.load() != 5) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(detail::outside_thread_alive());  // unmarked, alive
  stage.store(6);
  marked.join();
}

// Whether the kernel lists one of its io_uring workers among this
// process's threads.
bool io_uring_worker_listed() {
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    found = found || name.starts_with("iou-wrk-");
  }
  return found;
}

TEST(Deadlock, KernelIoUringWorkersDoNotHoldOffTheDetector) {
  io_uring ring;
  if (io_uring_queue_init(4, &ring, 0) != 0) GTEST_SKIP() << "io_uring is not available";
  // An operation forced to the kernel's worker pool leaves a worker, which
  // stays while this thread lives.
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
  ASSERT_EQ(io_uring_submit(&ring), 1);
  io_uring_cqe* cqe = nullptr;
  ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
  io_uring_cqe_seen(&ring, cqe);
  if (!io_uring_worker_listed()) {
    io_uring_queue_exit(&ring);
    GTEST_SKIP() << "this kernel lists no io_uring worker among the process's threads";
  }
  test::Watchdog watchdog("Deadlock.KernelIoUringWorkersDoNotHoldOffTheDetector", 60s);
  EXPECT_THROW((void)run(receive_forever(), quick()), Deadlock);
  io_uring_queue_exit(&ring);
}

// gtest's "fast" death tests run their statement in a child made by
// fork(), where only the forking thread lives (and a sanitizer restarts
// its helper): the detector works there too.
TEST(ThreadCensusDeathTest, AForkedChildStillDetectsADeadlock) {
  // ThreadSanitizer refuses to start threads in the child of a process
  // with more threads than this one and its own helper.
  if (test::kTsan && std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                   std::filesystem::directory_iterator()) > 2) {
    GTEST_SKIP() << "ThreadSanitizer: the process has threads left by earlier tests";
  }
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(
      {
        test::Watchdog watchdog("the forked child's run", 60s);
        try {
          (void)run(receive_forever(), quick());
        } catch (const Deadlock&) {
          std::_Exit(3);
        }
        std::_Exit(4);
      },
      testing::ExitedWithCode(3), "all goroutines are asleep");
}

// A TCP socket listening on 127.0.0.1 (port chosen by the kernel), and
// its address; the fd is -1 if the socket could not be made.
struct LoopbackListener {
  int fd = -1;
  sockaddr_in address{};

  LoopbackListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  ~LoopbackListener() {
    if (fd >= 0) (void)io::close(fd);
  }

  // A blocking connect from this thread (the kernel completes it from the
  // backlog); the client's fd, or -1.
  [[nodiscard]] int connect_client() const {
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0) return -1;
    if (::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      ::close(client);
      return -1;
    }
    return client;
  }
};

// Accepts one connection, so that under io_uring the listener's multishot
// accept stays armed in the ring with nobody waiting on it, then waits on
// a channel nobody sends on. Returns (instead of deadlocking) only when the
// set-up failed.
Task<int> accept_once_then_receive_forever(const LoopbackListener* listener, int* client) {
  io::AcceptStream stream(listener->fd);
  *client = listener->connect_client();
  if (*client < 0) co_return -1;
  auto accepted = co_await stream.accept();
  if (!accepted.ok()) co_return -2;
  (void)io::close(*accepted);
  if (std::string(io::poller_backend()) == "io_uring" &&
      detail::uring_ops_on_fd_for_testing(listener->fd) == 0) {
    co_return -3;  // the request is not armed: the test would prove nothing
  }
  Chan<int> nobody_sends = make_chan<int>();
  auto v = co_await nobody_sends.recv();
  co_return v.value_or(-4);
}

TEST(Deadlock, AListenerNobodyAcceptsOnDoesNotHideADeadlock) {
  test::Watchdog watchdog("Deadlock.AListenerNobodyAcceptsOnDoesNotHideADeadlock", 60s);
  const LoopbackListener listener;
  ASSERT_GE(listener.fd, 0);
  int client = -1;
  try {
    const int result = run(accept_once_then_receive_forever(&listener, &client), quick());
    FAIL() << "run returned " << result;
  } catch (const Deadlock& e) {
    EXPECT_TRUE(lists_wait(e.what(), "chan receive", "1", " \\(main\\)")) << e.what();
  }
  if (client >= 0) ::close(client);
}

// Accepts one connection (which a process outside this one makes later)
// and reports it to main, which waits for it on a channel.
Task<void> accept_and_report(io::AcceptStream* stream, Chan<int> accepted) {
  auto fd = co_await stream->accept();
  if (fd.ok()) (void)io::close(*fd);
  co_await accepted.send(fd.ok() ? 1 : -1);
}

Task<int> wait_for_an_accept(const LoopbackListener* listener) {
  io::AcceptStream stream(listener->fd);
  Chan<int> accepted = make_chan<int>();
  go(accept_and_report(&stream, accepted));
  auto v = co_await accepted.recv();
  co_return v.value_or(-1);
}

TEST(Deadlock, AGoroutineParkedInAcceptIsNotADeadlock) {
  test::Watchdog watchdog("Deadlock.AGoroutineParkedInAcceptIsNotADeadlock", 60s);
  const LoopbackListener listener;
  ASSERT_GE(listener.fd, 0);
  // The connection comes from another process, which the thread census
  // does not see: only the parked accept tells the detector that a
  // goroutine can still wake. It connects well after the grace period.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const timespec pause{0, 300'000'000};
    ::nanosleep(&pause, nullptr);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&listener.address),
                             sizeof listener.address);
    ::_exit(rc == 0 ? 0 : 1);
  }
  int result = 0;
  EXPECT_NO_THROW(result = run(wait_for_an_accept(&listener), quick()));
  EXPECT_EQ(result, 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

Task<void> accept_until_the_end(io::AcceptStream* stream) { (void)co_await stream->accept(); }

// Leaves a goroutine parked in accept on `stream` when main returns: the
// runtime ends with it parked (io_uring drops it as a waiter of the
// multishot source).
Task<int> return_with_an_accept_parked(io::AcceptStream* stream, int listening_fd) {
  go(accept_until_the_end(stream));
  const bool parked = co_await test::yield_until([&] {
    return std::string(io::poller_backend()) != "io_uring" ||
           detail::uring_ops_on_fd_for_testing(listening_fd) != 0;
  });
  co_return parked ? 5 : -1;
}

TEST(Deadlock, ARuntimeThatEndedWithAnAcceptParkedLeavesTheDetectorWorking) {
  test::Watchdog watchdog("Deadlock.ARuntimeThatEndedWithAnAcceptParkedLeavesTheDetectorWorking",
                          60s);
  const LoopbackListener listener;
  ASSERT_GE(listener.fd, 0);
  {
    io::AcceptStream stream(listener.fd);  // outlives the accept's frame
    EXPECT_EQ(run(return_with_an_accept_parked(&stream, listener.fd), quick()), 5);
  }
  // The accept that was parked counts for nothing now.
  EXPECT_THROW((void)run(receive_forever(), quick()), Deadlock);
}

}  // namespace
}  // namespace goro
