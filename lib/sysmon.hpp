// lib/sysmon.hpp
//
// Defines: goro::detail::Sysmon, the runtime's background monitor thread
// (Go's sysmon, proc.go), SysmonView (what it sees of the runtime and may
// ask of it) and SpreadProbe (its per-P state).
//
// It holds no P and runs no goroutines. It reads the Ps (their core part
// and their probes) and acts through SysmonView, which the runtime
// implements (runtime.hpp). Each round it:
//   1. notices a P whose goroutine has run for more than kStallNanos (10 ms)
//      without suspending: C++ coroutines cannot be preempted, so it
//      records a stall (goroutine id, duration, P) for diagnostics, sets the
//      P's preempt request (honoured by goro::yield(), which then sends the
//      goroutine through the global queue, and by the goroutine's next
//      suspension), and wakes an idle worker, which steals the stalled P's
//      queue (runnext included) and runs its due timers;
//   1b. notices a P whose run queue is stuck (it held goroutines a round
//      ago and has taken none since), or whose goroutines compute for
//      microseconds between synchronisations while others wait: it lets
//      thieves take that queue's handoff entries (PCore::release_handoffs,
//      which thieves otherwise leave with their partners) and wakes an
//      idle worker. While some P holds back handoff entries (or its
//      queue is stuck) and another is idle, rounds stay 20 us apart;
//   1c. rescues the I/O of a P that has run one goroutine for
//      kIoRescueNanos or more while ops wait in pollers (poller.hpp,
//      "Rescuing a busy P's I/O"): the P does not poll meanwhile, so
//      sysmon polls for it (epoll) or reaps its ring and signals its
//      thread to post what only that thread can (io_uring), and keeps its
//      rounds at most kIoRescuePeriodNanos apart while such a P exists
//      (kMinDelayNanos after a signal);
//   2. wakes a worker when the global queue holds work and nobody spins
//      (a safety net: the submitters' handshake already does it);
//   3. every kScavengePeriod, returns to the OS the allocator's pages that
//      have been free for kScavengeAge;
//   4. (sleeping when every P is idle, below);
//   5. detects deadlocks: when every P is idle and SysmonView::quiescent()
//      says nothing could wake any goroutine (no runnable goroutine, timer,
//      I/O op in a poller, blocking call, or inbox entry), it remembers the
//      activity count and sleeps Config::deadlock_grace; if the runtime is
//      still quiescent then with the same count (nothing ran, nothing came
//      from outside threads), it takes the thread census
//      (thread_census.hpp). While a thread outside the runtime lives, it
//      looks again later (kMaxCensusPeriodNanos); once none does, and the
//      runtime is still quiescent with the same count, it declares the
//      deadlock (deadlock.cpp);
//   6. at most every kMachineLoadPeriodNanos, reads how many threads the
//      machine has runnable (machine_load.hpp) and publishes how many of
//      them are not the runtime's busy Ps or itself: an idle P spins on its
//      ring only while those and the other busy Ps leave a CPU free
//      (cpu_to_spare; scheduler.hpp, step 5b).
//   7. after each round, sets how many Ps run goroutines (scheduler.hpp,
//      "Sharing the machine"): the CPUs that the threads runnable
//      elsewhere leave, at least one, at most every P; every P while no
//      thread elsewhere counts (a program that asked for more Ps than the
//      machine has CPUs gets them while it has the machine). The count from step
//      6 is one instant's; it is averaged over samples (a weight of
//      1/kStandbyAverageWeight for each new one), and another thread
//      counts as taking a CPU once that average reaches kStandbyAtSixteenths
//      sixteenths of a thread, and stops counting once it falls below
//      kActiveAgainAtSixteenths (the gap keeps the count from flapping;
//      the threshold is well below one whole thread because a load
//      generator beside a server waits for its replies at many of the
//      instants sampled, yet takes a CPU). Every P is made active at
//      once, whatever the count, in a round that finds a stalled P (step
//      1: its queue waits for another P) or a spreading one (step 1b:
//      goroutines that compute gain from a second CPU even when they
//      share it); and when sysmon
//      wakes from a sleep of kStandbyResetNanos or more with every P idle
//      (the load it counted is history). A runtime whose threads may not
//      run on every CPU (an affinity mask: taskset, cpusets) keeps every P
//      active: the machine-wide count says nothing about its own CPUs; so
//      does one on epoll, or with Config::standby_procs false
//      (SysmonView::standby_allowed).
// It sleeps between rounds, 20 us at first and doubling after 50 rounds
// with nothing to do, up to 10 ms (Go's numbers), and sleeps until woken
// (or until the next scavenge) while every P is idle. That sleep counts as
// a round with nothing to do and leaves the delay as it was: a server's Ps
// go idle between bursts of requests hundreds of times a second, and
// starting over at 20 us after each would keep sysmon polling (a futex
// sleep and a thread-CPU-clock read per P each round) for nothing.
//
// A stall is detected from two per-P atomics the worker writes with plain
// relaxed stores around each resume: the id of the goroutine it resumed
// (0 between goroutines) and its schedule count. A P whose count has not
// moved for 10 ms while an id is set has been running the same goroutine
// (chain of inline children included) all that time.
#ifndef GORO_LIB_SYSMON_HPP_
#define GORO_LIB_SYSMON_HPP_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "goro/detail/asymmetric_fence.hpp"  // GORO_TSAN
#include "goro/scheduler_stats.hpp"
#include "machine_load.hpp"
#include "mutex.hpp"
#include "parker.hpp"

namespace goro::detail {

struct P;

// What sysmon reads of a P's worker thread to judge whether its goroutines
// compute or synchronise (step 1b). Owned by the P; written by its worker,
// read by sysmon only, relaxed everywhere. A line of its own: the worker
// writes the count at every channel operation, and no other thread writes
// to the line.
struct alignas(64) SpreadProbe {
  // The thread's CPU-time clock, so that sysmon can tell a goroutine that
  // computes from a thread the OS preempted. Set by the worker as it
  // starts, before it runs any goroutine; read only for a P that ran
  // goroutines (so never the initial 0, CLOCK_REALTIME).
  std::atomic<clockid_t> cpu_clock{0};
  // How often the thread has synchronised (wrapping): channel locks taken,
  // sync primitives released, steal rounds, wakeups
  // (goro/detail/synchronisation_count.hpp).
  std::atomic<std::uint32_t> synchronisations{0};
  // How many goroutines the P's worker readied as a partner's handoff
  // (wrapping): detail::ready_goroutine on a worker, the readies whose
  // handoff bit spreading drops (step 1b). Written by the thread that holds
  // the P, with a relaxed load and store.
  std::atomic<std::uint32_t> handoffs{0};

  // The worker, as it starts and as it stops serving the P: the calling
  // thread counts its synchronisations here (tls_synchronisations) and
  // publishes its CPU-time clock, or stops counting here.
  void attach_to_this_thread() noexcept;
  static void detach_this_thread() noexcept;
};

struct SysmonTuning {
  static constexpr std::int64_t kStallNanos = 10'000'000;     // Go's forcePreemptNS
  static constexpr std::int64_t kMinDelayNanos = 20'000;      // 20 us
  static constexpr std::int64_t kMaxDelayNanos = 10'000'000;  // 10 ms
  static constexpr int kIdleRoundsBeforeBackoff = 50;
  // A P that spent on average this long or longer per synchronisation (a
  // schedule, a channel lock, a sync primitive's release) over a round,
  // with goroutines queued, spreads its handoffs over the idle Ps (step
  // 1b): goroutines that
  // compute this long between handoffs gain more from a second core than
  // they lose to moving. A handoff between cores costs a few hundred ns;
  // channel- or lock-bound work (a ping-pong, producers and a consumer, a
  // select over busy channels, goroutines sharing a Mutex) synchronises
  // every 5-100 ns.
  // How often a spreading P's CPU time per synchronisation is checked
  // again (watch_queue, step 3): a clock read per spreading P per round
  // would cost sysmon a syscall per P every 20 us.
  static constexpr std::int64_t kSpreadRecheckNanos = 1'000'000;  // 1 ms
#if defined(GORO_TSAN)
  // ThreadSanitizer makes every synchronisation 5-20 times slower, and its
  // own bookkeeping comes in bursts of tens of microseconds: scaled with
  // it, a workload is classified alike in every build.
  static constexpr std::int64_t kComputeNanosPerSync = 20'000;
#else
  static constexpr std::int64_t kComputeNanosPerSync = 500;
#endif
  // Step 1c: a P that has run one goroutine this long without polling has
  // its I/O rescued, and sysmon looks again this often while one does:
  // an op that completes beside a computing goroutine waits at most about
  // a period (plus an idle P's wakeup), at the price of a zero-timeout
  // poll per busy P per period. The threshold keeps a worker thread that
  // the OS preempted for a moment from losing its I/O to the global queue
  // (which costs another P's wakeup).
  static constexpr std::int64_t kIoRescueNanos = 1'000'000;            // 1 ms
  static constexpr std::int64_t kIoRescuePeriodNanos = 200'000;        // 200 us
  static constexpr std::int64_t kScavengePeriodNanos = 1'000'000'000;  // 1 s
  static constexpr std::int64_t kScavengeAgeNanos = 5'000'000'000;     // free for 5 s
  // Step 5: while a thread outside the runtime lives, the census is taken
  // again after one grace, then after twice as long each time, up to this
  // (or the grace, if longer): a program that waits for such a thread for
  // hours costs a few /proc reads a second at first, then one.
  static constexpr std::int64_t kMaxCensusPeriodNanos = 1'000'000'000;  // 1 s
  // Step 6: how old the count of runnable threads elsewhere may get while
  // sysmon is awake (a pread of /proc/loadavg each time).
  static constexpr std::int64_t kMachineLoadPeriodNanos = 1'000'000;  // 1 ms
  // Step 7: the average of the threads runnable elsewhere, and when it
  // takes a CPU from the runtime or gives it back (in sixteenths of a
  // thread), and after how long a sleep with every P idle it starts over.
  static constexpr std::int64_t kStandbyAverageWeight = 8;
  static constexpr std::int64_t kStandbyAtSixteenths = 4;
  static constexpr std::int64_t kActiveAgainAtSixteenths = 2;
  static constexpr std::int64_t kStandbyResetNanos = 100'000'000;  // 100 ms
};

// What sysmon sees of the runtime and may ask of it, beyond reading the Ps
// (implemented by the runtime, runtime.hpp). Any of it may be called from
// sysmon's thread at any time while sysmon runs.
class SysmonView {
 public:
  // The runtime's Ps, fixed for its life.
  [[nodiscard]] virtual const std::vector<P*>& ps() const noexcept = 0;
  // Whether every P is idle (seq_cst: the Dekker pair of the sleep
  // decision in Sysmon::loop with note_busy), and how many are (a hint).
  [[nodiscard]] virtual bool all_idle() const noexcept = 0;
  [[nodiscard]] virtual std::uint32_t idle_procs() const noexcept = 0;
  // Step 1: asks p's goroutine to give the P back at its next chance and
  // gets an idle worker to take what waits behind it.
  virtual void preempt(P& p) noexcept = 0;
  // Step 1b: wakes an idle P if nobody looks for work.
  virtual void notify_work_available() noexcept = 0;
  // Step 7: Ps 0 .. active - 1 run goroutines, the others stand by;
  // whether the program allows it (Config::standby_procs).
  virtual void set_active_procs(std::uint32_t active) noexcept = 0;
  [[nodiscard]] virtual bool standby_allowed() const noexcept = 0;
  // Step 2: wakes a worker if the global queue has work and nobody looks
  // for it; returns whether it did.
  virtual bool kick_global_queue() noexcept = 0;
  // Step 5 (deadlock.cpp).
  [[nodiscard]] virtual bool detect_deadlocks() const noexcept = 0;
  [[nodiscard]] virtual std::int64_t deadlock_grace_nanos() const noexcept = 0;
  virtual bool quiescent(std::uint64_t& activity) noexcept = 0;
  virtual void declare_deadlock() noexcept = 0;

 protected:
  ~SysmonView() = default;
};

class Sysmon {
 public:
  explicit Sysmon(SysmonView& view) : view_(view) {}
  Sysmon(const Sysmon&) = delete;
  Sysmon& operator=(const Sysmon&) = delete;
  ~Sysmon() { stop(); }

  // Starts the sysmon thread and returns once that thread runs its loop's
  // code, so that run() starts main with every thread of the runtime
  // already running: the thread's own start-up (libc's, a sanitizer's)
  // never meets a process that main has already pushed to a limit, such as
  // a full descriptor table. Throws std::system_error when the thread
  // cannot be created (runtime_threads.hpp).
  void start();
  void stop() noexcept;

  // Called after a P stops being idle: wakes sysmon if it sleeps because
  // all Ps were idle.
  void note_busy() noexcept {
    // seq_cst: the Dekker pair with the sleep decision in loop().
    if (sleeping_.load(std::memory_order_seq_cst)) parker_.unpark();
  }

  // The stalls seen (the most recent kStallHistory, oldest first), and the
  // counts for SchedulerStats: stalls ever, rounds in which a P spread its
  // handoffs, and goroutines made runnable by rescuing a busy P's I/O. Any
  // thread.
  [[nodiscard]] std::vector<Stall> recent_stalls() const;
  [[nodiscard]] std::uint64_t stall_count() const;
  [[nodiscard]] std::uint64_t spread_rounds() const noexcept {
    return spread_rounds_.load(std::memory_order_relaxed);  // a statistic
  }
  [[nodiscard]] std::uint64_t io_rescued() const noexcept {
    return io_rescued_.load(std::memory_order_relaxed);  // a statistic
  }

  // Step 6, any thread: whether a CPU of the machine is free for a P to
  // spin on, with `other_busy_procs` of the runtime's Ps busy besides the
  // caller's, as of sysmon's last sample. True when the count is unknown.
  [[nodiscard]] bool cpu_to_spare(std::uint32_t other_busy_procs) const noexcept {
    // Relaxed: a hint refreshed every kMachineLoadPeriodNanos; a stale one
    // costs one spin too many or too few.
    const int elsewhere = runnable_elsewhere_.load(std::memory_order_relaxed);
    return static_cast<std::int64_t>(elsewhere) + other_busy_procs < MachineLoad::online_cpus();
  }

 private:
  struct Watch {
    std::uint64_t schedules = 0;
    std::int64_t since = 0;
    bool reported = false;
  };
  // Where a CPU window of a P's worker thread opened (watch_queue).
  struct CpuWindow {
    std::int64_t cpu = -1;  // the thread's CPU time in ns (-1: no window)
    std::int64_t at = 0;    // wall clock (monotonic ns)
    std::uint64_t schedules = 0;
    std::uint32_t synchronisations = 0;
    std::uint32_t handoffs = 0;  // SpreadProbe::handoffs
  };
  // What the previous round saw of a P's run queue (watch_queue).
  struct QueueWatch {
    std::uint32_t consumed = 0;  // RunQueue::consumed()
    bool queued_fifo = false;    // the run queue held entries
    std::uintptr_t runnext = 0;
    std::int64_t at = 0;  // when the round looked (monotonic ns)
    std::uint64_t schedules = 0;
    std::uint32_t synchronisations = 0;  // SpreadProbe::synchronisations
    // Spreading (watch_queue, steps 1-3): the CPU window now open, and
    // how many windows in a row showed computing.
    CpuWindow window;
    int computing_windows = 0;
    bool saw_queued = false;  // handoff goroutines were queued in one of them
  };

  void loop();
  // Step 1 for one P; returns whether it acted.
  bool watch_p(std::size_t index, std::int64_t now);
  // Step 1b for one P; returns whether sysmon should keep its short period.
  bool watch_queue(std::size_t index, std::int64_t now);
  // Step 1c for one P (after watch_p); returns whether it is a candidate.
  bool rescue_io(std::size_t index, std::int64_t now);
  // Step 6.
  void sample_machine_load(std::int64_t now) noexcept;
  // Step 1's record of a stall of P `index`: opened when seen, its duration
  // updated when it ends (if it is still in the history).
  void begin_stall(std::size_t index, std::uint64_t goroutine, std::int64_t nanos);
  void end_stall(std::size_t index, std::int64_t nanos);

  static constexpr std::size_t kStallHistory = 64;

  SysmonView& view_;
  std::thread thread_;
  // Set by the sysmon thread as its body begins; start() waits for it.
  std::atomic<bool> thread_running_{false};
  Parker parker_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> sleeping_{false};
  std::vector<Watch> watches_;
  std::vector<QueueWatch> queue_watches_;
  // Whether the last round found a P whose I/O needs rescuing (step 1c),
  // and whether it signalled one's thread (io_uring).
  bool rescuing_ = false;
  bool signalled_ = false;
  // Step 6: the file, open from start() to stop(); when it was last read;
  // the runnable threads that were not busy Ps or sysmon then.
  std::optional<MachineLoad> machine_load_;
  std::int64_t machine_load_at_ = 0;
  std::atomic<int> runnable_elsewhere_{0};
  // Step 7: the average of runnable_elsewhere_'s samples, in sixteenths of
  // a thread; whether this round saw a P stalled or spreading; the active
  // count last set (sysmon is the scheduler's count's only writer: its own
  // copy spares a call through the view each round).
  std::int64_t elsewhere_sixteenths_ = 0;
  bool every_p_needed_ = false;
  bool standby_possible_ = false;  // allowed, and the workers may run on every CPU
  std::uint32_t active_procs_ = 0;
  // Step 7 at the end of a round; with `forget_load`, every P active and
  // the average forgotten.
  void update_active_procs(bool forget_load) noexcept;
  // Deadlock detection: when the runtime was first seen quiescent (0: not
  // now) and its activity count then; when the next decision is due, and
  // how long the last census that found an outside thread put it off.
  std::int64_t quiet_since_ = 0;
  std::uint64_t quiet_activity_ = 0;
  std::int64_t decide_at_ = 0;
  std::int64_t census_period_ = 0;
  // Stall records, per P the number of its stall in progress (0: none).
  mutable Mutex stall_mu_;
  std::vector<Stall> stalls_ ABSL_GUARDED_BY(stall_mu_);
  std::uint64_t stall_count_ ABSL_GUARDED_BY(stall_mu_) = 0;
  std::vector<std::uint64_t> open_stall_ ABSL_GUARDED_BY(stall_mu_);
  // Rounds in which a P spread its handoffs; written by sysmon only.
  std::atomic<std::uint64_t> spread_rounds_{0};
  // Goroutines readied by rescuing a busy P's I/O (step 1c); written by
  // sysmon only.
  std::atomic<std::uint64_t> io_rescued_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_SYSMON_HPP_
