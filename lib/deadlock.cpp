// lib/deadlock.cpp: deadlock detection, after Go's checkdead (proc.go).
//
// Go reports "all goroutines are asleep - deadlock!" when no M runs and no
// goroutine can become runnable. goro decides the same from sysmon
// (sysmon.hpp, step 5), with differences that come from being a library:
//
//   * Threads outside the runtime may start or ready goroutines at any
//     moment (go() from another thread, a channel fed with try_send, a
//     WaitGroup done or a context cancelled from outside), and goro cannot
//     know whether one will. In Go such a waker is a goroutine, or an M in
//     a cgo call, which checkdead counts as running. goro counts them the
//     same way: while any thread of the process that is not the runtime's
//     own lives, no deadlock is declared (the thread census,
//     thread_census.hpp). The census reads /proc, so it is taken only when
//     a decision is due, as the last check.
//   * Quiescence must also last a grace period (Config::deadlock_grace,
//     100 ms by default) during which the activity count (schedules on
//     every P, goroutines started and readied from outside, OutsideWakers
//     made and dropped) does not move: a waker that is no live thread when
//     the census is taken (a thread started later, on demand) is trusted
//     for that long, or for as long as a goro::OutsideWaker speaks for it.
//     Programs may also turn detection off (Config::detect_deadlocks).
//   * Instead of killing the process, run() throws goro::Deadlock after a
//     normal shutdown (every goroutine destroyed, main last), so tests and
//     embedding programs can recover.
//
// Quiescent means, with every P idle (no worker holds a goroutine):
//   1. no run queue, runnext, inbox or the global queue holds a goroutine;
//   2. no P has an armed timer (a sleep, a Timer, a deadline could fire);
//   3. no poller has an op that a goroutine waits for (I/O could
//      complete and ready it); an armed multishot request with no
//      goroutine waiting on it (a listener nobody accepts on) does not
//      count, since its results only queue (Poller::goroutines_waiting);
//   4. no blocking call is in flight (it will ready its goroutine);
//   5. no OutsideWaker is alive (it promised a waker the census cannot see).
// The scheduler core answers 1 (Scheduler::nothing_runnable), the P's
// timer queues 2, its pollers 3, BlockingCalls 4, and this file 5.
// Each is read with the loads its owner's protocol already uses; a stale
// "busy" only delays the decision, and a stale "quiet" cannot survive the
// grace period, because anything that changes it also moves the activity
// count (a goroutine must run to arm a timer or start an op).
//
// The decision, once the runtime has been quiescent with the same count
// for the grace period (sysmon.cpp):
//   6. no thread outside the runtime lives (outside_thread_alive). If one
//      does, the census is taken again later: one grace after the first,
//      then twice as long each time, up to kMaxCensusPeriodNanos
//      (sysmon.hpp), for as long as the count stays put;
//   7. quiescence is read once more, with the same count: a thread that
//      woke a goroutine and ended just before the census moved it.
// Then the deadlock is declared (declare_deadlock).
//
// The report lists each live goroutine as Go's traceback heads it:
// "goroutine 7 [chan receive, 2 minutes]", with Go's wait reasons
// (note_wait, goro/detail/goroutine.hpp: "chan send", "select (no cases)",
// "sync.Mutex.Lock", "semacquire", ...) and how long the goroutine has
// waited. Go prints the wait only from one minute on, in whole minutes;
// goro prints it always, as "N ms" below a second, "N s" below a minute
// and "N minutes" from then on (Go's form), because a goro deadlock is
// usually found a grace period after the last park, not minutes later.
// The time is read off the wait clock, which trails the real clock by at
// most about a sysmon period (wait_clock_nanos), so the figure may exceed
// the true wait by that much and never falls short of it.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "goro/detail/timer.hpp"
#include "goro/run.hpp"
#include "goroutine_pool.hpp"
#include "runtime.hpp"

namespace goro::detail {
namespace {

// Process-wide, as OutsideWakers may outlive a runtime or precede one.
// Relaxed everywhere: like the other activity sources these are hints read
// twice, a grace period apart; a waker made or dropped in between moves
// `outside_waker_events`, so a stale read cannot end in a false deadlock.
std::atomic<std::uint64_t> outside_wakers{0};        // alive now
std::atomic<std::uint64_t> outside_waker_events{0};  // made + dropped, ever

}  // namespace

std::string describe_wait(const char* reason, std::int64_t waited_nanos) {
  constexpr std::int64_t kMilli = 1'000'000;
  constexpr std::int64_t kSecond = 1'000 * kMilli;
  constexpr std::int64_t kMinute = 60 * kSecond;
  if (reason == nullptr) return "parked";  // parked by nothing that names its wait
  std::string text = reason;
  const std::int64_t waited = waited_nanos > 0 ? waited_nanos : 0;
  if (waited < kSecond) {
    text += ", " + std::to_string(waited / kMilli) + " ms";
  } else if (waited < kMinute) {
    text += ", " + std::to_string(waited / kSecond) + " s";
  } else {
    text += ", " + std::to_string(waited / kMinute) + " minutes";
  }
  return text;
}

bool Runtime::quiescent(std::uint64_t& activity) noexcept {
  if (scheduler_.stopping() || !scheduler_.all_idle()) return false;
  // 4 and 5 of the top.
  if (blocking_calls_.any_in_flight()) return false;
  if (outside_wakers.load(std::memory_order_relaxed) != 0) return false;
  // 1.
  std::uint64_t count = outside_waker_events.load(std::memory_order_relaxed);
  if (!scheduler_.nothing_runnable(count)) return false;
  // 2 and 3. Relaxed: hints re-read after the grace period (see the top).
  for (const P* p : p_list_) {
    if (p->timers.next.load(std::memory_order_relaxed) != TimerHeap::kNever) return false;
    if (p->poller->goroutines_waiting()) return false;
  }
  activity = count;
  return true;
}

void Runtime::declare_deadlock() noexcept {
  std::string report = "goro: fatal error: all goroutines are asleep - deadlock!\n";
  std::size_t listed = 0;
  std::size_t live = 0;
  const std::int64_t now = monotonic_now_ns();
  // Every P is idle and nothing arrived for the whole grace period: the
  // records are quiet. (A go() from outside racing this walk could show a
  // half-made record; it would also have made the runtime not deadlocked,
  // and the report is only diagnostics.)
  GoroutinePool::instance().for_each_record([&](GoroutineRecord& g) {
    if (!g.live) return;
    ++live;
    if (listed == kDeadlockReportLimit) return;
    ++listed;
    report += "\ngoroutine " + std::to_string(g.id) + " [" +
              describe_wait(g.wait_reason, now - g.wait_since_nanos) + "]" +
              (g.is_main ? " (main)" : "");
  });
  if (live > listed) report += "\n... and " + std::to_string(live - listed) + " more";
  report += "\n";
  std::fputs(report.c_str(), stderr);
  std::fflush(stderr);
  deadlock_report_ = std::move(report);
  scheduler_.begin_stop();
}

}  // namespace goro::detail

namespace goro {

OutsideWaker::OutsideWaker() noexcept : active_(true) {
  detail::outside_wakers.fetch_add(1, std::memory_order_relaxed);
  detail::outside_waker_events.fetch_add(1, std::memory_order_relaxed);
}

void OutsideWaker::release() noexcept {
  if (!active_) return;
  active_ = false;
  // An event too: the detector, which compares activity counts a grace
  // apart, waits a full grace after the last waker goes.
  detail::outside_waker_events.fetch_add(1, std::memory_order_relaxed);
  detail::outside_wakers.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace goro
