// runtime_test: the runtime's life cycle at its edges: go()/spawn() from
// outside threads racing run()'s return, a runtime that cannot start (no
// threads, no file descriptors, io_uring refused) and must leave nothing
// behind, a nested run() that must not disturb the runtime that runs, and
// goroutine-only awaitables awaited from coroutines that are not goroutines.
//
// Resource-limit tests either use the test seam of lib/runtime_threads.hpp
// (the tests run as root, which RLIMIT_NPROC does not bind) or lower a limit
// in a forked child, so that the test process keeps its own limits.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <goro/goro.hpp>

#include "poller.hpp"
#include "runtime_threads.hpp"
#include "test_util.hpp"

namespace {

using goro::Config;
using goro::PollerBackend;
using goro::Task;
using goro::test::Guard;
using goro::test::LifeCounts;
using goro::test::ParkForever;
using goro::test::with_procs;
using namespace std::chrono_literals;

// --- Helpers -------------------------------------------------------------

// Open file descriptors of this process (the directory's own fd excluded).
std::size_t open_fds() {
  std::size_t n = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) std::abort();
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;
}

// Threads of this process that a runtime started (workers other than the
// caller's, sysmon): the names they give themselves.
std::size_t runtime_threads() {
  std::size_t n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) std::abort();
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("goro-p", 0) == 0 || name == "goro-sysmon") ++n;
  }
  closedir(dir);
  return n;
}

// Waits until no runtime thread is listed any more, once run() has
// returned. A joined thread can still be listed for a moment: join()
// returns when the kernel clears the thread's id word, a little before the
// thread leaves the thread group. So a leftover name is looked at again
// until it goes; a thread the runtime really left behind stays for good,
// and the test then waits until ctest's per-test timeout ends it.
// Returns the count, 0, so that a caller can compare it.
std::size_t runtime_threads_left() {
  while (runtime_threads() != 0) std::this_thread::yield();
  return 0;
}

Task<int> answer() { co_return 42; }

Task<std::string> backend_in_use() { co_return std::string(goro::io::poller_backend()); }

Task<int> guarded_never_runs(Guard guard, bool* ran) {
  (void)guard;
  *ran = true;
  co_return 0;
}

Config with_poller(unsigned procs, PollerBackend poller) {
  Config config = with_procs(procs);
  config.poller = poller;
  return config;
}

bool io_uring_usable() {
  try {
    return goro::run(backend_in_use(), with_poller(1, PollerBackend::kIoUring)) == "io_uring";
  } catch (const std::system_error&) {
    return false;
  }
}

// The backends this machine can run: epoll always, io_uring where allowed.
std::vector<PollerBackend> usable_pollers() {
  std::vector<PollerBackend> pollers{PollerBackend::kEpoll};
  if (io_uring_usable()) pollers.push_back(PollerBackend::kIoUring);
  return pollers;
}

const char* name_of(PollerBackend poller) {
  return poller == PollerBackend::kEpoll ? "epoll" : "io_uring";
}

// Leaves exactly `spare` free file descriptors below this process's soft
// RLIMIT_NOFILE until release(): lowers the limit just above the highest fd
// in use and fills every lower free number with a dup.
class FdSqueeze {
 public:
  explicit FdSqueeze(int spare) {
    // UndefinedBehaviorSanitizer checks a polymorphic object's dynamic type
    // the first time it meets it, reading its vtable through a pipe(2); with
    // no fd left that read fails and the check reports a false error. The
    // error categories a failing run() uses are met here, while fds remain.
    (void)std::system_error(EMFILE, std::system_category()).what();
    (void)std::system_error(EMFILE, std::generic_category()).what();
    if (getrlimit(RLIMIT_NOFILE, &saved_) != 0) std::abort();
    int highest = 0;
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) std::abort();
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
    }
    closedir(dir);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1 + 64);
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0) std::abort();
    for (;;) {
      const int fd = ::dup(2);
      if (fd < 0) break;  // EMFILE: every number below the limit is taken
      fillers_.push_back(fd);
    }
    for (int i = 0; i < spare && !fillers_.empty(); ++i) {
      ::close(fillers_.back());
      fillers_.pop_back();
    }
  }
  ~FdSqueeze() { release(); }
  FdSqueeze(const FdSqueeze&) = delete;
  FdSqueeze& operator=(const FdSqueeze&) = delete;

  void release() {
    if (released_) return;
    released_ = true;
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    if (setrlimit(RLIMIT_NOFILE, &saved_) != 0) std::abort();
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
  bool released_ = false;
};

// Runs `body` in a forked child and returns its exit status (or -signal).
template <class Body>
int in_child(Body body) {
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    int code = 100;
    try {
      code = body();
    } catch (...) {
      code = 101;
    }
    _exit(code);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) std::abort();
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

// --- go()/spawn() from outside threads while run() returns ---------------

// What a goroutine started from outside does after counting itself.
enum class Then { kFinish, kParkForever, kReceive };

Task<void> wait_as_told(Then then, goro::Chan<int>* channel) {
  if (then == Then::kParkForever) co_await ParkForever{};      // destroyed by the sweep
  if (then == Then::kReceive) (void)co_await channel->recv();  // readied from outside
}

Task<void> outside_body(Guard guard, std::atomic<long>* ran, Then then, goro::Chan<int>* channel) {
  (void)guard;
  ran->fetch_add(1);
  co_await wait_as_told(then, channel);
}

Task<int> outside_value(Guard guard, std::atomic<long>* ran, Then then, goro::Chan<int>* channel) {
  (void)guard;
  ran->fetch_add(1);
  co_await wait_as_told(then, channel);
  co_return 7;
}

struct Hammer {
  LifeCounts* counts;
  std::atomic<long>* ran;
  goro::Chan<int>* channel;
  std::atomic<bool> stop{false};
};

// Starts goroutines from this thread until `stop`, alternating go() and
// spawn(), keeping a few handles and dropping them later (some during the
// shutdown sweep, some after run() returned), and readies receivers from
// outside with try_send. Refusals are expected: during shutdown the task is
// destroyed unrun, after it go()/spawn() throw.
void hammer(Hammer* h) {
  std::vector<goro::JoinHandle<int>> kept;
  for (long i = 0; !h->stop.load(); ++i) {
    const Then then = static_cast<Then>((i / 2) % 3);
    (void)h->channel->try_send(static_cast<int>(i));
    try {  // refused during shutdown: destroyed unrun (an empty handle for spawn)
      if (i % 2 == 0) {
        goro::go(outside_body(Guard(*h->counts), h->ran, then, h->channel));
      } else {
        goro::JoinHandle<int> handle =
            goro::spawn(outside_value(Guard(*h->counts), h->ran, then, h->channel));
        kept.push_back(std::move(handle));
        if (kept.size() > 8) kept.erase(kept.begin());
      }
    } catch (const std::logic_error&) {
      // No runtime (before the first run or after it returned).
      std::this_thread::yield();
    }
  }
}

Task<void> main_until_outside_ran(Hammer* h, long target, std::vector<std::thread>* threads) {
  for (int t = 0; t < 3; ++t) threads->emplace_back(hammer, h);
  // Return (and so shut down) while the outside threads keep starting.
  (void)co_await goro::test::yield_until_at_least(*h->ran, target);
}

TEST(Runtime, OutsideGoAndSpawnRacingShutdownRunOrAreDestroyedExactlyOnce) {
  LifeCounts counts;
  const long iterations = goro::test::scaled(200, 20);
  for (long iteration = 0; iteration < iterations; ++iteration) {
    std::atomic<long> ran{0};
    auto channel = goro::make_chan<int>();
    Hammer h{&counts, &ran, &channel};
    std::vector<std::thread> threads;
    goro::run(main_until_outside_ran(&h, 20, &threads));
    h.stop = true;
    for (auto& t : threads) t.join();
    ASSERT_EQ(counts.alive(), 0) << "iteration " << iteration;
  }
  // Every task was run or destroyed unrun, exactly once.
  EXPECT_EQ(counts.constructed.load(), counts.destroyed.load());
}

// --- A runtime that cannot start --------------------------------------

TEST(Runtime, ThreadStartFailureThrowsSystemErrorAndLeavesNothingBehind) {
  for (PollerBackend poller : usable_pollers()) {
    SCOPED_TRACE(name_of(poller));
    const Config config = with_poller(3, poller);  // 2 workers + sysmon: 3 thread starts
    const std::size_t fds_before = open_fds();
    for (int successes = 0; successes < 3; ++successes) {
      SCOPED_TRACE("thread starts allowed: " + std::to_string(successes));
      LifeCounts counts;
      bool ran = false;
      goro::detail::fail_runtime_thread_starts_after(successes);
      std::optional<std::system_error> error;
      try {
        (void)goro::run(guarded_never_runs(Guard(counts), &ran), config);
      } catch (const std::system_error& e) {
        error = e;
      }
      goro::detail::fail_runtime_thread_starts_after(-1);
      ASSERT_TRUE(error.has_value());
      EXPECT_EQ(error->code(), std::errc::resource_unavailable_try_again);
      EXPECT_THAT(error->what(), testing::HasSubstr("goro"));
      EXPECT_FALSE(ran);
      EXPECT_EQ(counts.alive(), 0);
      EXPECT_EQ(runtime_threads_left(), 0u);
      EXPECT_EQ(open_fds(), fds_before);
      EXPECT_EQ(goro::run(answer(), config), 42);  // the process can run a runtime again
    }
    goro::detail::fail_runtime_thread_starts_after(3);
    EXPECT_EQ(goro::run(answer(), config), 42);
    goro::detail::fail_runtime_thread_starts_after(-1);
    EXPECT_EQ(open_fds(), fds_before);
  }
}

// The real limit: a child that drops root (exempt from RLIMIT_NPROC) and may
// start no thread at all.
TEST(Runtime, ThreadLimitMakesRunThrowSystemErrorThenRunsOnceRaised) {
  // A child that hangs keeps this test waiting until ctest's per-test
  // timeout ends it.
  const int status = in_child([] {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 77;
    rlimit limit{};
    if (getrlimit(RLIMIT_NPROC, &limit) != 0) return 78;
    const rlimit saved = limit;
    limit.rlim_cur = 1;  // this process alone already uses it up
    if (setrlimit(RLIMIT_NPROC, &limit) != 0) return 78;
    const std::size_t fds_before = open_fds();
    const Config config = with_poller(2, PollerBackend::kEpoll);
    try {
      (void)goro::run(answer(), config);
      return 2;  // started threads despite the limit
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::resource_unavailable_try_again) return 3;
    }
    if (open_fds() != fds_before || runtime_threads_left() != 0) return 4;
    if (setrlimit(RLIMIT_NPROC, &saved) != 0) return 78;
    return goro::run(answer(), config) == 42 ? 0 : 5;
  });
  if (status == 77 || status == 78) GTEST_SKIP() << "cannot drop privileges or set RLIMIT_NPROC";
  EXPECT_EQ(status, 0);
}

TEST(Runtime, FewFileDescriptorsMakeRunThrowSystemErrorAndLeaveNothingBehind) {
  for (PollerBackend poller : usable_pollers()) {
    SCOPED_TRACE(name_of(poller));
    const Config config = with_poller(4, poller);  // 8 fds: an eventfd and a ring or epoll per P
    const std::size_t fds_before = open_fds();
    int refused = 0;
    for (int spare = 0; spare <= 10; ++spare) {
      SCOPED_TRACE("spare fds: " + std::to_string(spare));
      LifeCounts counts;
      bool ran = false;
      std::optional<std::system_error> error;
      {
        FdSqueeze squeeze(spare);
        try {
          (void)goro::run(guarded_never_runs(Guard(counts), &ran), config);
        } catch (const std::system_error& e) {
          error = e;
        }
      }
      if (error.has_value()) {
        ++refused;
        EXPECT_TRUE(error->code() == std::errc::too_many_files_open ||
                    error->code() == std::errc::too_many_files_open_in_system)
            << error->what();
        EXPECT_FALSE(ran);
      } else {
        EXPECT_TRUE(ran);
      }
      EXPECT_EQ(counts.alive(), 0);
      EXPECT_EQ(runtime_threads_left(), 0u);
      EXPECT_EQ(open_fds(), fds_before);
      EXPECT_EQ(goro::run(answer(), config), 42);
    }
    EXPECT_GT(refused, 0);
    EXPECT_LT(refused, 11);  // with enough fds it runs
  }
}

// --- Choosing io_uring ---------------------------------------------------

// Asks the kernel directly, leaving goro's probe untouched.
bool kernel_allows_io_uring() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

TEST(Runtime, TransientIoUringProbeFailureIsNotKeptForLaterRuns) {
  if (!kernel_allows_io_uring()) GTEST_SKIP() << "io_uring unavailable here";
  goro::detail::forget_uring_probe();  // as in a process that never probed
  {
    FdSqueeze squeeze(0);  // the probe itself fails: EMFILE
    EXPECT_THROW((void)goro::run(answer(), with_poller(1, PollerBackend::kIoUring)),
                 std::system_error);
  }
  EXPECT_EQ(goro::run(backend_in_use(), with_poller(1, PollerBackend::kIoUring)), "io_uring");
}

// In a child whose seccomp filter refuses io_uring_setup (as Docker's
// default profile does).
TEST(Runtime, IoUringRequestedButRefusedMakesRunThrowInsteadOfUsingEpoll) {
  const int status = in_child([] {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      return 77;
    }
    goro::detail::forget_uring_probe();
    try {
      (void)goro::run(answer(), with_poller(1, PollerBackend::kIoUring));
      return 2;  // ran on something else without a word
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::function_not_supported) return 3;
    }
    // Not asked for by name: epoll.
    Config automatic = with_procs(1);
    automatic.poller = PollerBackend::kAuto;
    if (goro::run(backend_in_use(), automatic) != "epoll") return 4;
    return 0;
  });
  if (status == 77) GTEST_SKIP() << "cannot install a seccomp filter";
  EXPECT_EQ(status, 0);
}

// --- A nested run() leaves the running runtime alone ----------------------

Task<absl::StatusOr<std::size_t>> read_one(int fd, char* byte) {
  co_return co_await goro::io::read(fd, byte, 1);
}

Task<bool> epoll_waiters_survive_nested_run() {
  int data[2];
  int closing[2];
  if (::pipe2(data, O_CLOEXEC) != 0 || ::pipe2(closing, O_CLOEXEC) != 0) std::abort();
  char byte = 0;
  char unused = 0;
  auto reader = goro::spawn(read_one(data[0], &byte));
  auto closed_reader = goro::spawn(read_one(closing[0], &unused));
  co_await goro::yield();  // one P: both readers run now and park in epoll
  if (goro::scheduler_stats().io_waits != 2) co_return false;
  // Another thread tries to start a runtime (the default poller) and must
  // be refused without touching this one.
  std::atomic<bool> done{false};
  std::atomic<int> outcome{0};  // 1: logic_error
  std::thread other([&] {
    try {
      (void)goro::run(answer());
    } catch (const std::logic_error&) {
      outcome = 1;
    } catch (...) {
      outcome = 2;
    }
    done = true;
  });
  // The refusal touches nothing of this runtime, so blocking this P on the
  // join cannot hold the other thread up.
  other.join();
  if (!done.load() || outcome.load() != 1) co_return false;
  // The parked read wakes when data arrives...
  if (::write(data[1], "x", 1) != 1) std::abort();
  auto got = co_await reader;
  if (!got.ok() || *got != 1 || byte != 'x') co_return false;
  // ...and io::close from another thread wakes a read parked on the fd.
  std::thread closer([&] { (void)goro::io::close(closing[0]); });
  auto woken = co_await closed_reader;
  closer.join();
  ::close(data[0]);
  ::close(data[1]);
  ::close(closing[1]);
  co_return !woken.ok();
}

TEST(Runtime, FailedNestedRunLeavesRunningEpollWaitersWakeable) {
  EXPECT_TRUE(goro::run(epoll_waiters_survive_nested_run(), with_poller(1, PollerBackend::kEpoll)));
}

// --- Goroutine-only awaitables outside goroutines ------------------------

// A minimal eager coroutine that is not a goroutine: it runs until its
// first suspension as soon as it is called, on the calling thread.
struct Driver {
  struct promise_type {
    Driver get_return_object() noexcept {
      return Driver{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }
  };
  std::coroutine_handle<promise_type> handle;
  explicit Driver(std::coroutine_handle<promise_type> h) : handle(h) {}
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  ~Driver() { handle.destroy(); }
  [[nodiscard]] bool finished() const { return handle.done(); }
};

// Awaits `make()` from a coroutine that is not a goroutine; the outcome is
// the logic_error's message, or a note of what else happened.
template <class MakeAwaitable>
std::string outcome_outside_goroutine(MakeAwaitable make) {
  std::string outcome = "suspended";
  auto body = [](MakeAwaitable m, std::string* out) -> Driver {
    try {
      co_await m();
      *out = "completed";
    } catch (const std::logic_error& e) {
      *out = e.what();
    }
  };
  Driver driver = body(std::move(make), &outcome);
  if (!driver.finished()) outcome = "suspended";
  return outcome;
}

// Any positive sleep parks, so the misuse is found where it would park;
// no timer is armed and no time passes.
TEST(NotAGoroutine, SleepThrowsLogicError) {
  EXPECT_THAT(outcome_outside_goroutine([] { return goro::sleep(1ns); }),
              testing::HasSubstr("goro::sleep"));
}

TEST(NotAGoroutine, ChannelReceiveAndSendThrowLogicErrorAndReleaseTheChannel) {
  auto ch = goro::make_chan<int>();
  EXPECT_THAT(outcome_outside_goroutine([&] { return ch.recv(); }),
              testing::HasSubstr("goro::Chan::recv"));
  EXPECT_THAT(outcome_outside_goroutine([&] { return ch.send(1); }),
              testing::HasSubstr("goro::Chan::send"));
  // The channel lock was released: it is usable (and nothing is queued).
  EXPECT_FALSE(ch.try_send(2));
  ch.close();
}

TEST(NotAGoroutine, SelectThrowsLogicErrorAndReleasesTheChannels) {
  auto a = goro::make_chan<int>();
  auto b = goro::make_chan<int>(1);
  EXPECT_THAT(outcome_outside_goroutine(
                  [&] { return goro::select(goro::recv_from(a), goro::recv_from(b)); }),
              testing::HasSubstr("goro::select"));
  EXPECT_TRUE(b.try_send(1));
  EXPECT_FALSE(a.try_send(1));
}

TEST(NotAGoroutine, YieldThrowsLogicError) {
  EXPECT_THAT(outcome_outside_goroutine([] { return goro::yield(); }),
              testing::HasSubstr("goro::yield"));
}

TEST(NotAGoroutine, MutexLockAndWaitGroupWaitThrowLogicError) {
  goro::Mutex mutex;
  ASSERT_TRUE(mutex.try_lock());
  EXPECT_THAT(outcome_outside_goroutine([&] { return mutex.lock(); }),
              testing::HasSubstr("goro::Mutex::lock"));
  mutex.unlock();
  goro::WaitGroup wg;
  wg.add(1);
  EXPECT_THAT(outcome_outside_goroutine([&] { return wg.wait(); }),
              testing::HasSubstr("not called from a goroutine"));
  wg.add(-1);
}

}  // namespace
