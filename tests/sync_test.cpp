// Tests of goro's sync primitives against Go's sync semantics: Mutex (mutual
// exclusion, starvation mode, misuse), RWMutex (readers in parallel, writers
// exclusive, writer preference), WaitGroup (misuse, waiting from outside the
// runtime), Once (contention, a throwing fn), Cond and the weighted
// Semaphore (FIFO). Sizes scale down under sanitizers (test_scale.hpp); no
// assertion depends on wall-clock speed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;
using test::scaled;
using test::with_procs;

// --- Mutex -------------------------------------------------------------------

Task<void> increment_locked(Mutex& mu, long& counter, long times, bool yield_inside) {
  for (long i = 0; i < times; ++i) {
    co_await mu.lock();
    const long seen = counter;
    if (yield_inside && i % 16 == 0) co_await goro::yield();  // park others on the mutex
    counter = seen + 1;
    mu.unlock();
  }
}

Task<long> mutex_stress(long goroutines, long times) {
  Mutex mu;
  long counter = 0;  // plain int: only the mutex orders the increments
  std::vector<JoinHandle<void>> handles;
  for (long g = 0; g < goroutines; ++g) {
    handles.push_back(spawn(increment_locked(mu, counter, times, g % 2 == 0)));
  }
  for (auto& h : handles) co_await h;
  co_await mu.lock();
  const long result = counter;
  mu.unlock();
  co_return result;
}

TEST(Mutex, MutualExclusionStress) {
  test::Watchdog watchdog("Mutex.MutualExclusionStress");
  const long goroutines = 16;
  const long times = scaled(20000, 500);
  EXPECT_EQ(run(mutex_stress(goroutines, times), with_procs(4)), goroutines * times);
}

TEST(Mutex, MutualExclusionOnTwoPs) {
  test::Watchdog watchdog("Mutex.MutualExclusionOnTwoPs");
  const long times = scaled(50000, 1000);
  EXPECT_EQ(run(mutex_stress(4, times), with_procs(2)), 4 * times);
}

// The main goroutine waits for a mutex that a thread outside the runtime
// holds, so that its P goes idle; the thread's unlock wakes it (through the
// global queue) and it takes the mutex; the runtime then stops at once,
// possibly before the thread's unlock has returned.
Task<int> lock_held_outside(Mutex* mu, std::atomic<bool>* waiting) {
  waiting->store(true);
  co_await mu->lock();
  const int owned = mu->is_locked() ? 1 : 0;
  mu->unlock();
  co_return owned;
}

TEST(Mutex, UnlockOutsideTheRuntimeWakesAParkedWaiter) {
  test::Watchdog watchdog("Mutex.UnlockOutsideTheRuntimeWakesAParkedWaiter");
  for (unsigned procs : {1u, 2u}) {
    Mutex mu;
    ASSERT_TRUE(mu.try_lock());
    std::atomic<bool> waiting{false};
    std::thread outside([&] {
      while (!waiting.load()) std::this_thread::yield();
      // Whether the waiter still spins or has parked (its P asleep) when
      // the unlock comes, it must end up owning the mutex.
      std::this_thread::sleep_for(5ms);
      mu.unlock();
    });
    EXPECT_EQ(run(lock_held_outside(&mu, &waiting), with_procs(procs)), 1) << procs << " procs";
    outside.join();
    EXPECT_FALSE(mu.is_locked());
  }
}

Task<int> try_lock_and_misuse() {
  Mutex mu;
  int score = 0;
  if (mu.try_lock()) score += 1;
  if (!mu.try_lock()) score += 2;  // held
  if (mu.is_locked()) score += 4;
  mu.unlock();
  try {
    mu.unlock();
  } catch (const std::logic_error& e) {
    if (std::string(e.what()) == "sync: unlock of unlocked mutex") score += 8;
  }
  // Still usable after the misuse.
  co_await mu.lock();
  mu.unlock();
  if (!mu.is_locked()) score += 16;
  co_return score;
}

TEST(Mutex, TryLockAndUnlockOfUnlockedThrows) {
  EXPECT_EQ(run(try_lock_and_misuse(), with_procs(1)), 31);
  Mutex mu;  // outside the runtime: the non-parking parts work too
  EXPECT_THROW(mu.unlock(), std::logic_error);
}

Task<void> hold_across_await(Mutex& mu, std::atomic<int>& inside, std::atomic<int>& overlaps,
                             int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto guard = co_await mu.scoped_lock();
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    co_await goro::sleep(std::chrono::microseconds(10));  // may resume on another P
    co_await goro::yield();
    inside.fetch_sub(1);
  }  // guard unlocks
}

Task<int> scoped_lock_across_await() {
  Mutex mu;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::vector<JoinHandle<void>> handles;
  for (int g = 0; g < 6; ++g) handles.push_back(spawn(hold_across_await(mu, inside, overlaps, 20)));
  for (auto& h : handles) co_await h;
  LockGuard<Mutex> adopted = co_await mu.scoped_lock();
  adopted.unlock();
  adopted.unlock();  // idempotent
  co_return overlaps.load() + (mu.is_locked() ? 100 : 0);
}

TEST(Mutex, ScopedLockIsHeldAcrossCoAwait) {
  test::Watchdog watchdog("Mutex.ScopedLockIsHeldAcrossCoAwait");
  EXPECT_EQ(run(scoped_lock_across_await(), with_procs(4)), 0);
}

// A goroutine that re-locks in a loop, holding the mutex across a yield, so
// that every time the waiter is woken (normal mode) the hog has the mutex
// again. After the waiter has waited 1 ms it switches the mutex to
// starvation mode and the next unlock hands it over: the hog cannot keep it
// forever. Bounded by iterations, not by time: 1 ms is at most a few
// thousand iterations here (each yields and makes the waiter retry).
struct Starvation {
  Mutex mu;
  std::atomic<bool> waiter_started{false};
  std::atomic<bool> waiter_got_it{false};
  long hog_iterations_before = -1;  // guarded by mu
  long hog_iterations = 0;          // guarded by mu
};

Task<void> hog(Starvation& s, long iteration_cap) {
  for (long i = 0; i < iteration_cap && !s.waiter_got_it.load(); ++i) {
    co_await s.mu.lock();
    co_await goro::yield();    // the woken waiter runs now and finds the mutex held
    s.hog_iterations = i + 1;  // under the mutex: the waiter reads it under it too
    s.mu.unlock();
  }
}

Task<void> starving_waiter(Starvation& s) {
  s.waiter_started.store(true);
  co_await s.mu.lock();
  s.hog_iterations_before = s.hog_iterations;
  s.waiter_got_it.store(true);
  s.mu.unlock();
}

Task<long> starvation_scenario(long iteration_cap) {
  Starvation s;
  auto hog_handle = spawn(hog(s, iteration_cap));
  co_await goro::yield();  // let the hog take the mutex
  auto waiter = spawn(starving_waiter(s));
  co_await waiter;
  co_await hog_handle;
  co_return s.waiter_got_it.load() ? s.hog_iterations_before : -1;
}

TEST(Mutex, StarvationModeLetsAContenderIn) {
  test::Watchdog watchdog("Mutex.StarvationModeLetsAContenderIn");
  const long iteration_cap = 2'000'000;
  for (unsigned procs : {1u, 2u}) {
    const long before = run(starvation_scenario(iteration_cap), with_procs(procs));
    EXPECT_GE(before, 0) << "the waiter never got the mutex (" << procs << " Ps)";
    EXPECT_LT(before, iteration_cap / 2) << procs << " Ps";
  }
}

// Critical sections that sleep hold the others queued past the starvation
// threshold, so most unlocks are starvation handoffs, on several Ps: no two
// goroutines are ever inside together and every section runs.
Task<void> sleepy_sections(Mutex& mu, std::atomic<int>& inside, std::atomic<long>& violations,
                           std::atomic<long>& sections, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    co_await mu.lock();
    if (inside.fetch_add(1) != 0) violations.fetch_add(1);
    co_await goro::sleep(std::chrono::microseconds(300));
    if (inside.fetch_sub(1) != 1) violations.fetch_add(1);
    sections.fetch_add(1);
    mu.unlock();
  }
}

Task<bool> starvation_handoffs_keep_mutual_exclusion(int goroutines, int rounds) {
  Mutex mu;
  std::atomic<int> inside{0};
  std::atomic<long> violations{0};
  std::atomic<long> sections{0};
  std::vector<JoinHandle<void>> handles;
  for (int g = 0; g < goroutines; ++g) {
    handles.push_back(spawn(sleepy_sections(mu, inside, violations, sections, rounds)));
  }
  for (auto& h : handles) co_await h;
  co_return violations.load() == 0 && sections.load() == long{goroutines} * rounds &&
      !mu.is_locked();
}

TEST(Mutex, StarvationHandoffsKeepMutualExclusionOnSeveralPs) {
  test::Watchdog watchdog("Mutex.StarvationHandoffsKeepMutualExclusionOnSeveralPs");
  for (unsigned procs : {2u, 4u}) {
    EXPECT_TRUE(run(starvation_handoffs_keep_mutual_exclusion(8, 20), with_procs(procs))) << procs;
  }
}

// Starvation mode is FIFO: once in it, waiters get the mutex in queue order.
Task<void> queue_in_order(Mutex& mu, std::vector<int>& order, int id) {
  co_await mu.lock();
  order.push_back(id);
  mu.unlock();
}

Task<std::vector<int>> normal_mode_fifo_wakeups() {
  Mutex mu;
  std::vector<int> order;
  co_await mu.lock();
  std::vector<JoinHandle<void>> handles;
  for (int id = 0; id < 5; ++id) {
    handles.push_back(spawn(queue_in_order(mu, order, id)));
    co_await goro::yield();  // one P: the child runs and queues before the next
  }
  mu.unlock();  // wakes 0; each unlock wakes the next in FIFO order
  for (auto& h : handles) co_await h;
  co_return order;
}

TEST(Mutex, WaitersAreWokenInFifoOrder) {
  EXPECT_EQ(run(normal_mode_fifo_wakeups(), with_procs(1)), (std::vector<int>{0, 1, 2, 3, 4}));
}

// A waiter that turned on starvation mode is destroyed by the shutdown
// sweep while the goroutine holding the mutex is parked with a LockGuard:
// the guard's unlock, later in the same sweep, finds no waiter to hand the
// mutex to. Withdrawing the last waiter must leave starvation mode (M2), so
// that the unlock is a plain one and the mutex is usable by the next run.
struct StarvingAtShutdown {
  Mutex mu;
  std::atomic<bool> holder_has_it{false};
  std::atomic<bool> holder_relocked{false};
};

Task<void> starving_locker(StarvingAtShutdown& s) {
  // The answer is named, not tested in the if condition: see test_util.hpp.
  const bool holder_has_it = co_await test::yield_until_set(s.holder_has_it);
  if (!holder_has_it) co_return;
  co_await s.mu.lock();  // queued; woken once in normal mode, loses, queues starving
  s.mu.unlock();
}

Task<void> holder_that_relocks(StarvingAtShutdown& s) {
  co_await s.mu.lock();
  s.holder_has_it.store(true);
  co_await goro::sleep(std::chrono::milliseconds(5));  // the locker waits over 1 ms
  s.mu.unlock();                                       // wakes the locker (normal mode)
  auto guard = co_await s.mu.scoped_lock();            // one P: ours before it runs
  s.holder_relocked.store(true);
  co_await goro::sleep(std::chrono::hours(1));  // destroyed here, guard held
}

Task<int> leave_a_starving_waiter(StarvingAtShutdown& s, bool holder_first = false) {
  if (holder_first) {
    go(holder_that_relocks(s));
    go(starving_locker(s));
  } else {
    go(starving_locker(s));
    go(holder_that_relocks(s));
  }
  if (!co_await test::yield_until_set(s.holder_relocked)) co_return 1;
  // The woken locker runs before this goroutine's next turns (it was readied
  // first), finds the mutex held and queues again, now starving.
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  co_return 0;  // the sweep destroys the locker, then (or before) the holder
}

Task<int> lock_and_unlock(Mutex& mu) {
  co_await mu.lock();
  mu.unlock();
  const bool free_again = mu.try_lock();
  if (free_again) mu.unlock();
  co_return free_again ? 1 : 0;
}

TEST(Mutex, StarvingWaiterDestroyedAtShutdownLeavesUnlockSafe) {
  test::Watchdog watchdog("Mutex.StarvingWaiterDestroyedAtShutdownLeavesUnlockSafe");
  StarvingAtShutdown s;
  EXPECT_EQ(run(leave_a_starving_waiter(s), with_procs(1)), 0);
  EXPECT_FALSE(s.mu.is_locked());  // the guard unlocked it during the sweep
  EXPECT_EQ(run(lock_and_unlock(s.mu), with_procs(1)), 1);
}

// --- RWMutex -------------------------------------------------------------------

Task<void> reader_waits_for_all(RWMutex& rw, std::atomic<long>& inside, long readers,
                                std::atomic<long>& ok) {
  auto guard = co_await rw.scoped_rlock();
  inside.fetch_add(1);
  // Every reader holds the read lock here at once, or this never ends.
  if (co_await test::yield_until_at_least(inside, readers)) {
    ok.fetch_add(1);
  }
}

Task<long> readers_in_parallel(long readers) {
  RWMutex rw;
  std::atomic<long> inside{0};
  std::atomic<long> ok{0};
  std::vector<JoinHandle<void>> handles;
  for (long i = 0; i < readers; ++i)
    handles.push_back(spawn(reader_waits_for_all(rw, inside, readers, ok)));
  for (auto& h : handles) co_await h;
  co_return ok.load();
}

TEST(RWMutex, ReadersHoldItInParallel) {
  test::Watchdog watchdog("RWMutex.ReadersHoldItInParallel");
  EXPECT_EQ(run(readers_in_parallel(8), with_procs(1)), 8);
  EXPECT_EQ(run(readers_in_parallel(8), with_procs(4)), 8);
}

struct RWState {
  RWMutex rw;
  std::atomic<int> readers{0};
  std::atomic<int> writers{0};
  std::atomic<long> violations{0};
  std::atomic<long> max_readers{0};
  long written = 0;  // plain: only the write lock orders it
};

Task<void> rw_reader(RWState& s, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    co_await s.rw.rlock();
    const int now = s.readers.fetch_add(1) + 1;
    if (s.writers.load() != 0) s.violations.fetch_add(1);
    long seen = s.max_readers.load();
    while (now > seen && !s.max_readers.compare_exchange_weak(seen, now)) {
    }
    if (i % 4 == 0) co_await goro::yield();
    if (s.writers.load() != 0) s.violations.fetch_add(1);
    s.readers.fetch_sub(1);
    s.rw.runlock();
  }
}

Task<void> rw_writer(RWState& s, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    auto guard = co_await s.rw.scoped_lock();
    if (s.writers.fetch_add(1) != 0 || s.readers.load() != 0) s.violations.fetch_add(1);
    const long seen = s.written;
    if (i % 8 == 0) co_await goro::yield();
    s.written = seen + 1;
    if (s.readers.load() != 0) s.violations.fetch_add(1);
    s.writers.fetch_sub(1);
  }
}

Task<void> readers_and_writers(RWState& s, long rounds) {
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < 6; ++i) handles.push_back(spawn(rw_reader(s, rounds)));
  for (int i = 0; i < 3; ++i) handles.push_back(spawn(rw_writer(s, rounds)));
  for (auto& h : handles) co_await h;
}

TEST(RWMutex, WritersAreExclusive) {
  test::Watchdog watchdog("RWMutex.WritersAreExclusive");
  RWState s;
  const long rounds = scaled(4000, 200);
  run(readers_and_writers(s, rounds), with_procs(4));
  EXPECT_EQ(s.violations.load(), 0);
  EXPECT_EQ(s.written, 3 * rounds);
  EXPECT_GE(s.max_readers.load(), 1);
}

// Writer preference: a stream of overlapping readers cannot keep a writer
// out; once it waits, new readers wait behind it.
struct WriterPreference {
  RWMutex rw;
  std::atomic<bool> writer_done{false};
  std::atomic<long> reads_after_writer_arrived{0};
  std::atomic<bool> writer_waiting{false};
};

Task<void> stream_reader(WriterPreference& s, long max_rounds) {
  for (long i = 0; i < max_rounds && !s.writer_done.load(); ++i) {
    co_await s.rw.rlock();
    if (s.writer_waiting.load() && !s.writer_done.load()) s.reads_after_writer_arrived.fetch_add(1);
    co_await goro::yield();  // readers overlap: the read lock is never free
    s.rw.runlock();
  }
}

Task<long> writer_among_readers(long max_rounds) {
  WriterPreference s;
  std::vector<JoinHandle<void>> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(spawn(stream_reader(s, max_rounds)));
  co_await goro::yield();
  s.writer_waiting.store(true);
  co_await s.rw.lock();
  s.writer_done.store(true);
  s.rw.unlock();
  for (auto& r : readers) co_await r;
  co_return s.reads_after_writer_arrived.load();
}

TEST(RWMutex, WaitingWriterIsNotStarvedByReaders) {
  test::Watchdog watchdog("RWMutex.WaitingWriterIsNotStarvedByReaders");
  const long max_rounds = 1'000'000;
  for (unsigned procs : {1u, 2u}) {
    // Only readers already inside (or racing the writer's announcement)
    // finish their round: at most a handful of reads, never the stream.
    EXPECT_LT(run(writer_among_readers(max_rounds), with_procs(procs)), 100) << procs << " Ps";
  }
}

Task<int> rw_try_and_misuse() {
  RWMutex rw;
  int score = 0;
  if (rw.try_rlock() && rw.try_rlock()) score += 1;
  if (!rw.try_lock()) score += 2;  // readers inside
  rw.runlock();
  rw.runlock();
  try {
    rw.runlock();
  } catch (const std::logic_error& e) {
    if (std::string(e.what()) == "sync: RUnlock of unlocked RWMutex") score += 4;
  }
  if (rw.try_lock()) score += 8;
  if (!rw.try_rlock()) score += 16;  // writer inside
  rw.unlock();
  try {
    rw.unlock();
  } catch (const std::logic_error& e) {
    if (std::string(e.what()) == "sync: Unlock of unlocked RWMutex") score += 32;
  }
  { auto w = co_await rw.scoped_lock(); }
  {
    auto r = co_await rw.scoped_rlock();
    if (!rw.try_lock()) score += 64;
  }
  if (rw.try_lock()) score += 128;
  rw.unlock();
  co_return score;
}

TEST(RWMutex, TryVariantsAndMisuse) { EXPECT_EQ(run(rw_try_and_misuse(), with_procs(1)), 255); }

// --- WaitGroup -----------------------------------------------------------------

Task<void> work_then_done(WaitGroup& wg, std::atomic<long>& sum, long value) {
  co_await goro::yield();
  sum.fetch_add(value, std::memory_order_relaxed);
  wg.done();
}

Task<long> wait_for_all(long n) {
  WaitGroup wg;
  std::atomic<long> sum{0};
  co_await wg.wait();                         // counter 0: returns at once
  for (long round = 0; round < 3; ++round) {  // reusable once wait() returned
    wg.add(static_cast<std::int32_t>(n));
    for (long i = 1; i <= n; ++i) go(work_then_done(wg, sum, i));
    co_await wg.wait();
  }
  co_return sum.load(std::memory_order_relaxed);
}

TEST(WaitGroup, WaitsForEveryDone) {
  test::Watchdog watchdog("WaitGroup.WaitsForEveryDone");
  const long n = scaled(10000, 500);
  EXPECT_EQ(run(wait_for_all(n), with_procs(4)), 3 * n * (n + 1) / 2);
}

Task<long> many_waiters(long waiters) {
  WaitGroup wg;
  std::atomic<long> woke{0};
  wg.add(1);
  std::vector<JoinHandle<void>> handles;
  for (long i = 0; i < waiters; ++i) {
    handles.push_back(spawn([](WaitGroup& g, std::atomic<long>& w) -> Task<void> {
      co_await g.wait();
      w.fetch_add(1);
    }(wg, woke)));
  }
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  const long before = woke.load();
  wg.done();
  for (auto& h : handles) co_await h;
  co_return before * 1000 + woke.load();
}

TEST(WaitGroup, DoneWakesEveryWaiter) { EXPECT_EQ(run(many_waiters(20), with_procs(2)), 20); }

TEST(WaitGroup, NegativeCounterThrows) {
  WaitGroup wg;
  EXPECT_THROW(wg.done(), std::logic_error);
  try {
    wg.add(-2);
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "sync: negative WaitGroup counter");
  }
  wg.add(2);  // left usable
  wg.done();
  EXPECT_THROW(wg.add(-2), std::logic_error);
  wg.done();
  wg.wait_blocking();  // counter 0
}

Task<void> finish_later(WaitGroup& wg, int n) {
  for (int i = 0; i < n; ++i) {
    co_await goro::sleep(std::chrono::microseconds(50));
    wg.done();
  }
}

Task<void> done_after(WaitGroup& wg, std::chrono::microseconds delay) {
  co_await goro::sleep(delay);
  wg.done();
}

// wait_blocking refuses a goroutine, and works inside goro::blocking.
Task<int> wait_blocking_on_and_off_goroutines(WaitGroup& wg) {
  co_await finish_later(wg, 20);
  int threw = 0;
  try {
    wg.wait_blocking();  // on a goroutine: refused
  } catch (const std::logic_error&) {
    threw = 1;
  }
  // Inside goro::blocking the thread is a syscall thread: blocking is fine.
  WaitGroup inner;
  inner.add(1);
  go(done_after(inner, std::chrono::microseconds(100)));
  co_await goro::blocking([&inner] { inner.wait_blocking(); });
  co_return threw;
}

TEST(WaitGroup, WaitBlockingFromOutsideTheRuntime) {
  test::Watchdog watchdog("WaitGroup.WaitBlockingFromOutsideTheRuntime");
  WaitGroup wg;
  wg.add(20);
  std::atomic<bool> outside_done{false};
  std::thread outside([&] {
    wg.wait_blocking();
    outside_done.store(true);
  });
  EXPECT_EQ(run(wait_blocking_on_and_off_goroutines(wg), with_procs(2)), 1);
  outside.join();
  EXPECT_TRUE(outside_done.load());
}

// --- Once ----------------------------------------------------------------------

struct OnceState {
  Once once;
  std::atomic<int> runs{0};
  int value = 0;  // plain: written by fn, read by every caller after call()
  std::atomic<int> saw_value{0};
};

Task<void> call_once_task(OnceState& s) {
  co_await s.once.call([&s]() -> Task<void> {
    s.runs.fetch_add(1);
    co_await goro::sleep(std::chrono::microseconds(200));  // others pile up
    co_await goro::yield();
    s.value = 42;
  });
  if (s.value == 42) s.saw_value.fetch_add(1);
}

Task<void> call_once_plain(OnceState& s) {
  co_await s.once.call([&s] {
    s.runs.fetch_add(1);
    s.value = 42;
  });
  if (s.value == 42) s.saw_value.fetch_add(1);
}

Task<void> call_once_from_many(OnceState& s, int callers, bool task_fn) {
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < callers; ++i) {
    handles.push_back(spawn(task_fn ? call_once_task(s) : call_once_plain(s)));
  }
  for (auto& h : handles) co_await h;
}

TEST(Once, RunsExactlyOnceUnderContention) {
  test::Watchdog watchdog("Once.RunsExactlyOnceUnderContention");
  for (bool task_fn : {true, false}) {
    OnceState s;
    const int callers = 64;
    run(call_once_from_many(s, callers, task_fn), with_procs(4));
    EXPECT_EQ(s.runs.load(), 1);
    EXPECT_EQ(s.saw_value.load(), callers);
    EXPECT_TRUE(s.once.done());
  }
}

Task<int> once_throwing() {
  Once once;
  int runs = 0;
  int score = 0;
  // A waiter that arrives while the throwing fn runs returns normally. It
  // calls only once the fn has started (were it first, its own fn would
  // run), and the fn lingers until the waiter is calling: no timing
  // assumption decides who comes first.
  std::atomic<bool> waiter_ok{false};
  std::atomic<bool> fn_started{false};
  std::atomic<bool> waiter_calling{false};
  auto waiter = spawn([](Once& o, std::atomic<bool>& ok, std::atomic<bool>& started,
                         std::atomic<bool>& calling) -> Task<void> {
    while (!started.load()) co_await goro::sleep(std::chrono::microseconds(50));
    calling.store(true);
    co_await o.call([] { throw std::runtime_error("must not run"); });
    ok.store(true);
  }(once, waiter_ok, fn_started, waiter_calling));
  try {
    co_await once.call([&runs, &fn_started, &waiter_calling]() -> Task<void> {
      ++runs;
      fn_started.store(true);
      while (!waiter_calling.load()) co_await goro::sleep(std::chrono::microseconds(50));
      co_await goro::sleep(std::chrono::milliseconds(2));  // the waiter parks meanwhile
      throw std::runtime_error("init failed");
    });
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()) == "init failed") score += 1;
  }
  if (once.done()) score += 2;  // Go's choice: a panicking fn counts as done
  co_await once.call([&runs] { ++runs; });
  if (runs == 1) score += 4;
  co_await waiter;
  if (waiter_ok.load()) score += 8;
  co_return score;
}

TEST(Once, ThrowingFnCountsAsDoneAndPropagates) {
  EXPECT_EQ(run(once_throwing(), with_procs(2)), 15);
}

// --- Cond ----------------------------------------------------------------------

struct CondQueue {
  Mutex mu;
  Cond cond;
  std::vector<long> items;  // guarded by mu
  bool closed = false;      // guarded by mu
};

Task<long> cond_consumer(CondQueue& q) {
  long sum = 0;
  for (;;) {
    auto guard = co_await q.mu.scoped_lock();
    while (q.items.empty() && !q.closed) co_await q.cond.wait(q.mu);
    if (q.items.empty()) co_return sum;
    sum += q.items.back();
    q.items.pop_back();
  }
}

Task<long> cond_producer_consumer(long n, int consumers) {
  CondQueue q;
  std::vector<JoinHandle<long>> handles;
  for (int i = 0; i < consumers; ++i) handles.push_back(spawn(cond_consumer(q)));
  for (long i = 1; i <= n; ++i) {
    co_await q.mu.lock();
    q.items.push_back(i);
    q.mu.unlock();
    q.cond.signal();
    if (i % 64 == 0) co_await goro::yield();
  }
  co_await q.mu.lock();
  q.closed = true;
  q.mu.unlock();
  q.cond.broadcast();
  long total = 0;
  for (auto& h : handles) total += co_await h;
  co_return total;
}

TEST(Cond, SignalHandsItemsToConsumers) {
  test::Watchdog watchdog("Cond.SignalHandsItemsToConsumers");
  const long n = scaled(20000, 1000);
  EXPECT_EQ(run(cond_producer_consumer(n, 4), with_procs(4)), n * (n + 1) / 2);
}

Task<long> cond_signal_and_broadcast() {
  Mutex mu;
  Cond cond;
  long generation = 0;  // guarded by mu
  std::atomic<long> woke{0};
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < 5; ++i) {
    handles.push_back(spawn([](Mutex& m, Cond& c, long& gen, std::atomic<long>& w) -> Task<void> {
      auto guard = co_await m.scoped_lock();
      const long start = gen;
      while (gen == start) co_await c.wait(m);
      if (!m.is_locked()) co_return;  // wait() returns with the mutex held
      w.fetch_add(1);
    }(mu, cond, generation, woke)));
  }
  for (int i = 0; i < 10; ++i) co_await goro::yield();  // one P: all five wait now
  co_await mu.lock();
  ++generation;
  mu.unlock();
  cond.signal();  // exactly one wakes
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  const long after_signal = woke.load();
  cond.broadcast();  // the other four (their generation changed too)
  for (auto& h : handles) co_await h;
  co_return after_signal * 10 + woke.load();
}

TEST(Cond, SignalWakesOneBroadcastWakesAll) {
  EXPECT_EQ(run(cond_signal_and_broadcast(), with_procs(1)), 15);
}

Task<int> cond_wait_unlocked() {
  Mutex mu;
  Cond cond;
  try {
    co_await cond.wait(mu);
  } catch (const std::logic_error&) {
    co_return 1;
  }
  co_return 0;
}

TEST(Cond, WaitWithUnlockedMutexThrows) { EXPECT_EQ(run(cond_wait_unlocked(), with_procs(1)), 1); }

// --- Semaphore -----------------------------------------------------------------

Task<void> acquire_and_record(Semaphore& sem, std::int64_t n, std::vector<std::int64_t>& order) {
  co_await sem.acquire(n);
  order.push_back(n);
}

Task<std::vector<std::int64_t>> semaphore_fifo() {
  Semaphore sem(10);
  std::vector<std::int64_t> order;
  co_await sem.acquire(10);  // all of it
  std::vector<JoinHandle<void>> handles;
  for (std::int64_t n : {5, 8, 1}) {
    handles.push_back(spawn(acquire_and_record(sem, n, order)));
    co_await goro::yield();  // one P: it queues before the next
  }
  sem.release(10);  // 5 fits; 8 does not, and 1 must wait behind it (FIFO)
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  order.push_back(-1);  // marker: what got in on the first release
  sem.release(5);       // now 8 and then 1 fit
  for (auto& h : handles) co_await h;
  sem.release(9);
  // Both were granted by the same release; they run in either order.
  if (order.size() == 4 && order[2] == 1) std::swap(order[2], order[3]);
  co_return order;
}

TEST(Semaphore, WeightedAndFifo) {
  EXPECT_EQ(run(semaphore_fifo(), with_procs(1)), (std::vector<std::int64_t>{5, -1, 8, 1}));
}

TEST(Semaphore, TryAcquireAndMisuse) {
  Semaphore sem(4);
  EXPECT_TRUE(sem.try_acquire(3));
  EXPECT_FALSE(sem.try_acquire(2));
  EXPECT_TRUE(sem.try_acquire(1));
  EXPECT_FALSE(sem.try_acquire(5));  // more than the size: never
  EXPECT_THROW(sem.release(5), std::logic_error);
  sem.release(4);
  EXPECT_THROW(sem.release(1), std::logic_error);
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
  auto oversized = [](Semaphore& s) -> Task<int> {
    try {
      co_await s.acquire(5);
    } catch (const std::invalid_argument&) {
      co_return 1;
    }
    co_return 0;
  };
  EXPECT_EQ(run(oversized(sem), with_procs(1)), 1);
}

Task<void> bounded_worker(Semaphore& sem, std::atomic<std::int64_t>& used,
                          std::atomic<long>& violations, std::int64_t weight, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    co_await sem.acquire(weight);
    if (used.fetch_add(weight) + weight > sem.size()) violations.fetch_add(1);
    if (i % 4 == 0) co_await goro::yield();
    used.fetch_sub(weight);
    sem.release(weight);
  }
}

Task<void> bounded_workers(Semaphore& sem, std::atomic<std::int64_t>& used,
                           std::atomic<long>& violations, long rounds) {
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < 12; ++i) {
    handles.push_back(spawn(bounded_worker(sem, used, violations, 1 + i % 5, rounds)));
  }
  for (auto& h : handles) co_await h;
}

TEST(Semaphore, NeverOverCommittedUnderStress) {
  test::Watchdog watchdog("Semaphore.NeverOverCommittedUnderStress");
  Semaphore sem(5);
  std::atomic<std::int64_t> used{0};
  std::atomic<long> violations{0};
  const long rounds = scaled(5000, 200);
  run(bounded_workers(sem, used, violations, rounds), with_procs(4));
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(used.load(), 0);
  EXPECT_TRUE(sem.try_acquire(5));  // everything was given back
}

// --- Semaphore::acquire(n, ctx) -------------------------------------------------

Task<bool> acquire_with_context_basics() {
  Semaphore sem(3);
  bool ok = true;
  {
    // Done already: fails at once though every unit is free, takes nothing.
    auto [ctx, cancel] = with_cancel(background());
    cancel();
    absl::Status s = co_await sem.acquire(1, ctx);
    ok = ok && s.code() == absl::StatusCode::kCancelled && sem.try_acquire(3);
    sem.release(3);
  }
  {
    // Live: as acquire(n); background works too.
    auto [ctx, cancel] = with_cancel(background());
    absl::Status a = co_await sem.acquire(2, ctx);
    absl::Status b = co_await sem.acquire(1, background());
    ok = ok && a.ok() && b.ok() && !sem.try_acquire(1);
    sem.release(3);
  }
  {
    // A deadline while waiting: DeadlineExceeded, nothing taken.
    co_await sem.acquire(3);
    auto [ctx, cancel] = with_timeout(background(), 2ms);
    absl::Status s = co_await sem.acquire(1, ctx);
    ok = ok && s.code() == absl::StatusCode::kDeadlineExceeded;
    sem.release(3);
    ok = ok && sem.try_acquire(3);
    sem.release(3);
  }
  co_return ok;
}

TEST(Semaphore, AcquireWithContextFailsWhenTheContextEndsFirst) {
  EXPECT_TRUE(run(acquire_with_context_basics()));
}

Task<int> acquire_misuse(Semaphore& sem, int which) {
  try {
    if (which == 0) {
      (void)co_await sem.acquire(-1, background());
    } else {
      (void)co_await sem.acquire(sem.size() + 1, background());  // could never end
    }
  } catch (const std::invalid_argument&) {
    co_return 1;
  }
  co_return 0;
}

TEST(Semaphore, AcquireWithContextMisuseThrows) {
  Semaphore sem(2);
  EXPECT_EQ(run(acquire_misuse(sem, 0)), 1);
  EXPECT_EQ(run(acquire_misuse(sem, 1)), 1);
  EXPECT_TRUE(sem.try_acquire(2));
}

Task<absl::Status> acquire_flagged(Semaphore& sem, std::int64_t n, Context ctx,
                                   std::atomic<bool>* got) {
  absl::Status s = co_await sem.acquire(n, ctx);
  got->store(true);
  co_return s;
}

// x/sync's "a cancelled waiter doesn't starve the others": the large waiter
// at the front blocks the small one behind it (FIFO); cancelling it passes
// the free units on to the small one. One P: each spawned goroutine runs
// until it parks.
Task<bool> cancelled_front_waiter_passes_units_on() {
  Semaphore sem(10);
  co_await sem.acquire(1);
  auto [ctx, cancel] = with_cancel(background());
  std::atomic<bool> big_got{false};
  std::atomic<bool> small_got{false};
  auto big = spawn(acquire_flagged(sem, 10, ctx, &big_got));
  co_await goro::yield();
  auto small = spawn(acquire_flagged(sem, 1, background(), &small_got));
  co_await goro::yield();
  for (int i = 0; i < 10; ++i) co_await goro::yield();
  bool ok = !big_got.load() && !small_got.load();  // 9 free, but FIFO
  cancel();
  absl::Status small_status = co_await small;
  absl::Status big_status = co_await big;
  ok = ok && small_status.ok() && big_status.code() == absl::StatusCode::kCancelled;
  sem.release(2);
  ok = ok && sem.try_acquire(10);
  co_return ok;
}

TEST(Semaphore, CancelledFrontWaiterPassesItsUnitsOn) {
  test::Watchdog watchdog("Semaphore.CancelledFrontWaiterPassesItsUnitsOn");
  EXPECT_TRUE(run(cancelled_front_waiter_passes_units_on(), with_procs(1)));
}

// A grant and a cancellation that cross: release grants the parked waiter
// (it has not run yet: one P, and the releaser does not yield), then its
// context is cancelled. The grant was first and stands: the waiter holds
// the units and reports OK, and no unit is lost or counted twice.
Task<bool> grant_crossing_a_cancel_stands() {
  Semaphore sem(2);
  co_await sem.acquire(2);
  auto [ctx, cancel] = with_cancel(background());
  std::atomic<bool> got{false};
  auto waiter = spawn(acquire_flagged(sem, 2, ctx, &got));
  co_await goro::yield();
  bool ok = !got.load();
  sem.release(2);  // granted, not yet resumed
  cancel();        // finds it granted: nothing to take back
  absl::Status s = co_await waiter;
  ok = ok && s.ok() && !sem.try_acquire(1);
  sem.release(2);
  ok = ok && sem.try_acquire(2);
  co_return ok;
}

TEST(Semaphore, GrantThatCrossesACancellationStands) {
  test::Watchdog watchdog("Semaphore.GrantThatCrossesACancellationStands");
  EXPECT_TRUE(run(grant_crossing_a_cancel_stands(), with_procs(1)));
}

// More than the size: waits for the context without queuing, so it blocks
// nobody (one P, as above).
Task<bool> oversized_waits_for_the_context() {
  Semaphore sem(2);
  auto [ctx, cancel] = with_cancel(background());
  std::atomic<bool> got{false};
  auto oversized = spawn(acquire_flagged(sem, 3, ctx, &got));
  co_await goro::yield();
  absl::Status all = co_await sem.acquire(2, background());  // not behind it
  bool ok = all.ok() && !got.load();
  sem.release(2);
  cancel();
  absl::Status s = co_await oversized;
  ok = ok && s.code() == absl::StatusCode::kCancelled && sem.try_acquire(2);
  co_return ok;
}

TEST(Semaphore, AcquireOverTheSizeWaitsForTheContextAndBlocksNobody) {
  test::Watchdog watchdog("Semaphore.AcquireOverTheSizeWaitsForTheContextAndBlocksNobody");
  EXPECT_TRUE(run(oversized_waits_for_the_context(), with_procs(1)));
}

// x/sync's TestLargeAcquireDoesntStarve: small acquirers cycling forever
// cannot keep a large one out, since it queues at the front and they queue
// behind it.
Task<void> cycle_one(Semaphore& sem, std::atomic<bool>& running) {
  while (running.load()) {
    absl::Status s = co_await sem.acquire(1, background());
    if (!s.ok()) co_return;
    co_await goro::yield();
    sem.release(1);
  }
}

Task<bool> large_acquire_does_not_starve() {
  constexpr std::int64_t kSize = 4;
  Semaphore sem(kSize);
  std::atomic<bool> running{true};
  std::vector<JoinHandle<void>> cyclers;
  for (int i = 0; i < 8; ++i) cyclers.push_back(spawn(cycle_one(sem, running)));
  for (int i = 0; i < 8; ++i) co_await goro::yield();
  auto [ctx, cancel] = with_cancel(background());
  absl::Status s = co_await sem.acquire(kSize, ctx);
  running.store(false);
  if (s.ok()) sem.release(kSize);
  for (auto& c : cyclers) co_await c;
  co_return s.ok() && sem.try_acquire(kSize);
}

TEST(Semaphore, LargeAcquireDoesNotStarve) {
  test::Watchdog watchdog("Semaphore.LargeAcquireDoesNotStarve");
  EXPECT_TRUE(run(large_acquire_does_not_starve()));
}

// Stress (TSan): acquirers whose contexts are cancelled by other
// goroutines, by deadlines and by an outside thread while they wait, so
// that grants and cancellations cross. Never over-committed, each acquire
// either holds its units or failed with its context's error, and at the
// end every unit is back.
struct CancelStress {
  Semaphore sem{5};
  std::atomic<std::int64_t> used{0};
  std::atomic<long> violations{0};
  std::atomic<long> granted{0};
  std::atomic<long> failed{0};
  std::atomic<bool> outside_running{true};
  // The contexts the outside thread cancels, one slot per worker.
  std::mutex mu;
  std::vector<CancelFunc> exposed;
};

Task<void> cancel_soon(CancelFunc cancel) {
  co_await goro::yield();
  cancel();
}

Task<void> cancelled_acquirer(CancelStress& st, int id, std::int64_t weight, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    Context ctx;
    CancelFunc cancel;
    switch (i % 4) {
      case 0: {
        auto made = with_cancel(background());
        ctx = made.ctx;
        cancel = made.cancel;
        go(cancel_soon(cancel));
        break;
      }
      case 1: {
        auto made = with_timeout(background(), std::chrono::microseconds(i % 30));
        ctx = made.ctx;
        cancel = made.cancel;
        break;
      }
      case 2: {
        auto made = with_cancel(background());
        ctx = made.ctx;
        cancel = made.cancel;
        std::lock_guard<std::mutex> lock(st.mu);
        st.exposed[id] = cancel;
        break;
      }
      default:
        break;  // background: an ordinary weighted acquire
    }
    absl::Status s = co_await st.sem.acquire(weight, ctx);
    if (s.ok()) {
      st.granted.fetch_add(1);
      if (st.used.fetch_add(weight) + weight > st.sem.size()) st.violations.fetch_add(1);
      if (i % 3 == 0) co_await goro::yield();
      st.used.fetch_sub(weight);
      st.sem.release(weight);
    } else {
      st.failed.fetch_add(1);
      if (s != ctx.err()) st.violations.fetch_add(1);  // only its context's error
    }
    cancel();
  }
}

Task<bool> acquire_under_cancellation(long rounds) {
  CancelStress st;
  constexpr int kWorkers = 12;
  st.exposed.resize(kWorkers);
  std::thread outside([&st] {
    while (st.outside_running.load()) {
      for (int i = 0; i < kWorkers; ++i) {
        CancelFunc c;
        {
          std::lock_guard<std::mutex> lock(st.mu);
          c = std::exchange(st.exposed[i], CancelFunc());
        }
        c();
      }
      std::this_thread::yield();
    }
  });
  std::vector<JoinHandle<void>> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(spawn(cancelled_acquirer(st, i, 1 + i % 5, rounds)));
  }
  for (auto& w : workers) co_await w;
  st.outside_running.store(false);
  outside.join();
  const bool all_back = st.sem.try_acquire(st.sem.size());
  co_return st.violations.load() == 0 && st.used.load() == 0 &&
      all_back&& st.granted.load() + st.failed.load() == kWorkers* rounds;
}

TEST(Semaphore, AcquireWithContextUnderCancellationGivesEveryUnitBack) {
  test::Watchdog watchdog("Semaphore.AcquireWithContextUnderCancellationGivesEveryUnitBack");
  EXPECT_TRUE(run(acquire_under_cancellation(scaled(3000, 200))));
}

// --- Waiters destroyed at shutdown -------------------------------------------
//
// The shutdown sweep destroys parked goroutines one after another; wakeups
// made during the sweep (an unlock in a guard's destructor) are refused, so
// a waiter may be destroyed still queued, or granted (dequeued with the
// lock or units) but never resumed. Each test parks a holder and a waiter,
// returns from main, and checks, after run() and in a second run (the
// primitive outlives the first), that the primitive is as good as new. Each
// runs with both spawn orders, so that the sweep meets the holder first in
// one and the waiter first in the other.

struct Parked {
  std::atomic<bool> held{false};
  std::atomic<long> parked{0};  // goroutines about to park (one P: parked)
};

// Starts the holder and the waiter in the given order, waits until both
// are parked, and returns: the sweep destroys them.
Task<int> park_holder_and_waiter(Task<void> holder, Task<void> waiter, bool waiter_first,
                                 Parked& p) {
  if (waiter_first) {
    go(std::move(waiter));
    go(std::move(holder));
  } else {
    go(std::move(holder));
    go(std::move(waiter));
  }
  co_return co_await test::yield_until_at_least(p.parked, 2) ? 0 : 1;
}

Task<void> park_forever_marked(Parked& p) {
  p.parked.fetch_add(1);
  co_await goro::sleep(std::chrono::hours(1));
}

Task<void> hold_mutex(Mutex& mu, Parked& p) {
  auto guard = co_await mu.scoped_lock();
  p.held.store(true);
  co_await park_forever_marked(p);
}

Task<void> wait_for_mutex(Mutex& mu, Parked& p) {
  // The answer is named, not tested in the if condition: see test_util.hpp.
  const bool held = co_await test::yield_until_set(p.held);
  if (!held) co_return;
  p.parked.fetch_add(1);
  co_await mu.lock();
  mu.unlock();
}

Task<void> lock_and_unlock_mutex(Mutex& mu) {
  co_await mu.lock();
  mu.unlock();
}

// A second locker queues behind main and must be woken when main unlocks:
// it would hang if a stale kWoken told unlock that a waiter is awake.
Task<int> mutex_as_good_as_new(Mutex& mu) {
  co_await mu.lock();
  auto other = spawn(lock_and_unlock_mutex(mu));
  co_await goro::yield();  // one P: it queues
  mu.unlock();
  co_await other;
  const bool free_again = mu.try_lock();
  if (free_again) mu.unlock();
  co_return free_again ? 1 : 0;
}

TEST(Mutex, WaiterDestroyedAtShutdownLeavesMutexUsable) {
  test::Watchdog watchdog("Mutex.WaiterDestroyedAtShutdownLeavesMutexUsable");
  for (bool waiter_first : {false, true}) {
    Mutex mu;
    Parked p;
    EXPECT_EQ(run(park_holder_and_waiter(hold_mutex(mu, p), wait_for_mutex(mu, p), waiter_first, p),
                  with_procs(1)),
              0);
    EXPECT_FALSE(mu.is_locked()) << "waiter_first=" << waiter_first;
    EXPECT_EQ(run(mutex_as_good_as_new(mu), with_procs(1)), 1) << "waiter_first=" << waiter_first;
  }
}

// As StarvingWaiterDestroyedAtShutdownLeavesUnlockSafe, with the holder
// started first: the sweep may destroy it first, and its guard hands the
// mutex to the starving waiter, which is destroyed without running.
TEST(Mutex, MutexHandedToWaiterDestroyedAtShutdownIsUnlocked) {
  test::Watchdog watchdog("Mutex.MutexHandedToWaiterDestroyedAtShutdownIsUnlocked");
  StarvingAtShutdown s;
  EXPECT_EQ(run(leave_a_starving_waiter(s, /*holder_first=*/true), with_procs(1)), 0);
  EXPECT_FALSE(s.mu.is_locked());
  EXPECT_EQ(run(mutex_as_good_as_new(s.mu), with_procs(1)), 1);
}

Task<void> hold_write_lock(RWMutex& rw, Parked& p) {
  auto guard = co_await rw.scoped_lock();
  p.held.store(true);
  co_await park_forever_marked(p);
}

Task<void> wait_for_read_lock(RWMutex& rw, Parked& p) {
  if (!co_await test::yield_until_set(p.held)) co_return;
  p.parked.fetch_add(1);
  auto guard = co_await rw.scoped_rlock();
}

Task<void> hold_read_lock(RWMutex& rw, Parked& p) {
  auto guard = co_await rw.scoped_rlock();
  p.held.store(true);
  co_await park_forever_marked(p);
}

Task<void> wait_for_write_lock(RWMutex& rw, Parked& p) {
  if (!co_await test::yield_until_set(p.held)) co_return;
  p.parked.fetch_add(1);
  auto guard = co_await rw.scoped_lock();
}

Task<int> rwmutex_as_good_as_new(RWMutex& rw) {
  int ok = 0;
  {
    auto writer = co_await rw.scoped_lock();  // hangs on a phantom reader
    ok += 1;
  }
  {
    auto reader = co_await rw.scoped_rlock();  // hangs on a phantom writer
    ok += 2;
  }
  if (rw.try_lock()) {
    rw.unlock();
    ok += 4;
  }
  co_return ok;
}

TEST(RWMutex, ReaderDestroyedAtShutdownLeavesNoPhantomReader) {
  test::Watchdog watchdog("RWMutex.ReaderDestroyedAtShutdownLeavesNoPhantomReader");
  for (bool waiter_first : {false, true}) {
    RWMutex rw;
    Parked p;
    EXPECT_EQ(run(park_holder_and_waiter(hold_write_lock(rw, p), wait_for_read_lock(rw, p),
                                         waiter_first, p),
                  with_procs(1)),
              0);
    EXPECT_TRUE(rw.try_lock()) << "waiter_first=" << waiter_first;
    rw.unlock();
    EXPECT_EQ(run(rwmutex_as_good_as_new(rw), with_procs(1)), 7) << "waiter_first=" << waiter_first;
  }
}

TEST(RWMutex, WriterDestroyedAtShutdownLeavesNoPhantomWriter) {
  test::Watchdog watchdog("RWMutex.WriterDestroyedAtShutdownLeavesNoPhantomWriter");
  for (bool waiter_first : {false, true}) {
    RWMutex rw;
    Parked p;
    EXPECT_EQ(run(park_holder_and_waiter(hold_read_lock(rw, p), wait_for_write_lock(rw, p),
                                         waiter_first, p),
                  with_procs(1)),
              0);
    EXPECT_TRUE(rw.try_lock()) << "waiter_first=" << waiter_first;
    rw.unlock();
    EXPECT_EQ(run(rwmutex_as_good_as_new(rw), with_procs(1)), 7) << "waiter_first=" << waiter_first;
  }
}

// A reader parks behind a pending writer that waits for a reader holding
// the lock; the sweep destroys all three in some order.
Task<int> park_reader_writer_reader(RWMutex& rw, Parked& p) {
  go(hold_read_lock(rw, p));
  // The answers are named, not tested in the if conditions: see test_util.hpp.
  bool parked = co_await test::yield_until_at_least(p.parked, 1);
  if (!parked) co_return 1;
  go(wait_for_write_lock(rw, p));
  parked = co_await test::yield_until_at_least(p.parked, 2);
  if (!parked) co_return 1;
  go(wait_for_read_lock(rw, p));
  co_return co_await test::yield_until_at_least(p.parked, 3) ? 0 : 1;
}

TEST(RWMutex, PendingWriterAndLateReaderDestroyedAtShutdown) {
  test::Watchdog watchdog("RWMutex.PendingWriterAndLateReaderDestroyedAtShutdown");
  RWMutex rw;
  Parked p;
  EXPECT_EQ(run(park_reader_writer_reader(rw, p), with_procs(1)), 0);
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
  EXPECT_EQ(run(rwmutex_as_good_as_new(rw), with_procs(1)), 7);
}

Task<void> wait_for_group(WaitGroup& wg, Parked& p) {
  p.parked.fetch_add(1);
  co_await wg.wait();
}

Task<int> park_group_waiter(WaitGroup& wg, Parked& p) {
  wg.add(1);
  go(wait_for_group(wg, p));
  co_return co_await test::yield_until_at_least(p.parked, 1) ? 0 : 1;
}

Task<void> call_done(WaitGroup& wg) {
  wg.done();
  co_return;
}

Task<int> wait_group_as_good_as_new(WaitGroup& wg) {
  wg.done();  // the first run's add: the counter is 0 again
  wg.add(1);
  go(call_done(wg));
  co_await wg.wait();  // throws "reused before previous Wait has returned"
                       // if the first run's waiter is still counted
  co_return 1;
}

TEST(WaitGroup, WaiterDestroyedAtShutdownIsNotCounted) {
  test::Watchdog watchdog("WaitGroup.WaiterDestroyedAtShutdownIsNotCounted");
  WaitGroup wg;
  Parked p;
  EXPECT_EQ(run(park_group_waiter(wg, p), with_procs(1)), 0);
  EXPECT_EQ(run(wait_group_as_good_as_new(wg), with_procs(1)), 1);
}

// Releases its units when destroyed, as user code that holds units across
// a co_await would.
struct SemaphoreUnits {
  Semaphore* sem;
  std::int64_t n;
  ~SemaphoreUnits() { sem->release(n); }
};

Task<void> hold_semaphore(Semaphore& sem, Parked& p) {
  co_await sem.acquire(sem.size());
  SemaphoreUnits units{&sem, sem.size()};
  p.held.store(true);
  co_await park_forever_marked(p);
}

Task<void> wait_for_semaphore(Semaphore& sem, std::int64_t n, Parked& p) {
  if (!co_await test::yield_until_set(p.held)) co_return;
  p.parked.fetch_add(1);
  co_await sem.acquire(n);
  SemaphoreUnits units{&sem, n};
}

TEST(Semaphore, WaiterDestroyedAtShutdownGivesItsUnitsBack) {
  test::Watchdog watchdog("Semaphore.WaiterDestroyedAtShutdownGivesItsUnitsBack");
  for (bool waiter_first : {false, true}) {
    Semaphore sem(3);
    Parked p;
    EXPECT_EQ(run(park_holder_and_waiter(hold_semaphore(sem, p), wait_for_semaphore(sem, 2, p),
                                         waiter_first, p),
                  with_procs(1)),
              0);
    EXPECT_TRUE(sem.try_acquire(3)) << "waiter_first=" << waiter_first;
  }
}

}  // namespace
}  // namespace goro
