// lib/sysmon.cpp: the background monitor (see sysmon.hpp).
#include "sysmon.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>

#include "alloc/page_heap.hpp"
#include "goro/detail/synchronisation_count.hpp"
#include "goro/detail/timer.hpp"
#include "p.hpp"
#include "runtime_threads.hpp"
#include "thread_census.hpp"
#include "timers.hpp"

namespace goro::detail {

namespace {

// The count of the threads that serve no P (synchronisation_count.hpp).
std::atomic<std::uint32_t> unread_synchronisations{0};

}  // namespace

constinit thread_local std::atomic<std::uint32_t>* tls_synchronisations = &unread_synchronisations;

void SpreadProbe::attach_to_this_thread() noexcept {
  tls_synchronisations = &synchronisations;
  // Relaxed: sysmon reads it as a hint, and only for a P that ran
  // goroutines, which happens after this.
  if (clockid_t clock; pthread_getcpuclockid(pthread_self(), &clock) == 0) {
    cpu_clock.store(clock, std::memory_order_relaxed);
  }
}

void SpreadProbe::detach_this_thread() noexcept { tls_synchronisations = &unread_synchronisations; }

void Sysmon::start() {
  advance_wait_clock(monotonic_now_ns());  // before any goroutine parks
  const std::size_t procs = view_.ps().size();
  watches_.assign(procs, Watch{});
  queue_watches_.assign(procs, QueueWatch{});
  {
    MutexLock lock(stall_mu_);
    open_stall_.assign(procs, 0);
  }
  machine_load_.emplace(machine_load_path());  // step 6 (machine_load.hpp, step 1)
  machine_load_at_ = 0;
  elsewhere_sixteenths_ = 0;  // step 7: every P active
  every_p_needed_ = false;
  // Read on run()'s thread, whose affinity the workers inherit.
  standby_possible_ = view_.standby_allowed() && MachineLoad::runs_on_every_cpu();
  active_procs_ = static_cast<std::uint32_t>(procs);
  runnable_elsewhere_.store(0, std::memory_order_relaxed);  // no thread runs yet
  thread_running_.store(false, std::memory_order_relaxed);  // no sysmon thread yet
  thread_ = start_runtime_thread("sysmon thread", [this] {
    // Release/acquire: nothing is published through the flag; the order
    // only makes "the thread runs" mean its start-up is complete.
    thread_running_.store(true, std::memory_order_release);
    thread_running_.notify_one();
    pthread_setname_np(pthread_self(), "goro-sysmon");
    // Step 1c makes system calls on goroutines' fds: as on the workers, a
    // write that fails with EPIPE leaves its SIGPIPE pending here, where
    // the poller takes it (poller.cpp, "SIGPIPE").
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    loop();
  });
  thread_running_.wait(false, std::memory_order_acquire);
}

void Sysmon::sample_machine_load(std::int64_t now) noexcept {
  if (machine_load_at_ != 0 && now - machine_load_at_ < SysmonTuning::kMachineLoadPeriodNanos) {
    return;
  }
  machine_load_at_ = now;
  const int runnable = machine_load_->runnable_threads();
  int elsewhere = 0;  // unknown: nobody else counted (machine_load.hpp, step 4)
  if (runnable > 0) {
    // Neither sysmon (the reader) nor the Ps that were busy as it read.
    const auto busy = static_cast<int>(view_.ps().size() - view_.idle_procs());
    elsewhere = std::max(0, runnable - 1 - busy);
  }
  // Relaxed: a hint (cpu_to_spare).
  runnable_elsewhere_.store(elsewhere, std::memory_order_relaxed);
  // Step 7's average. Each step is at least a sixteenth, so that it
  // reaches a steady count exactly (integer division alone stops short).
  const std::int64_t gap = std::int64_t{elsewhere} * 16 - elsewhere_sixteenths_;
  std::int64_t step = gap / SysmonTuning::kStandbyAverageWeight;
  if (step == 0 && gap != 0) step = gap > 0 ? 1 : -1;
  elsewhere_sixteenths_ += step;
}

void Sysmon::update_active_procs(bool forget_load) noexcept {
  const auto procs = static_cast<std::uint32_t>(view_.ps().size());
  std::uint32_t active = procs;
  if (forget_load) {
    elsewhere_sixteenths_ = 0;
  } else if (standby_possible_ && !every_p_needed_) {
    // The Ps that fit beside `others` threads on the machine's CPUs; every
    // P when nothing else runs (more Ps than CPUs is the program's choice).
    const auto fit = [procs](std::int64_t others) {
      if (others == 0) return procs;
      return static_cast<std::uint32_t>(
          std::clamp<std::int64_t>(MachineLoad::online_cpus() - others, 1, procs));
    };
    // A thread elsewhere takes a CPU from the runtime once its average
    // reaches the standby threshold, and gives it back once it falls below
    // the lower, active-again threshold; between the two the count stays.
    const std::uint32_t at_most =
        fit((elsewhere_sixteenths_ + 16 - SysmonTuning::kStandbyAtSixteenths) / 16);
    const std::uint32_t at_least =
        fit((elsewhere_sixteenths_ + 16 - SysmonTuning::kActiveAgainAtSixteenths) / 16);
    active = std::clamp(active_procs_, at_least, at_most);
  }
  every_p_needed_ = false;
  if (active == active_procs_) return;
  active_procs_ = active;
  view_.set_active_procs(active);
}

void Sysmon::stop() noexcept {
  if (!thread_.joinable()) return;
  // Release/acquire: nothing rides on it but the flag itself; the join
  // below orders the thread's exit.
  stopping_.store(true, std::memory_order_release);
  parker_.unpark();
  thread_.join();
  machine_load_.reset();
}

bool Sysmon::watch_p(std::size_t index, std::int64_t now) {
  P& p = *view_.ps()[index];
  Watch& w = watches_[index];
  // Relaxed: both are written by the worker with relaxed stores; a stale
  // value only delays detection by a round.
  const std::uint64_t running = p.running_goroutine.load(std::memory_order_relaxed);
  const std::uint64_t schedules = p.stats.schedules.load(std::memory_order_relaxed);
  if (running == 0 || schedules != w.schedules) {
    if (w.reported) end_stall(index, now - w.since);
    w = Watch{schedules, now, false};
    return false;
  }
  if (now - w.since < SysmonTuning::kStallNanos) return false;
  every_p_needed_ = true;  // step 7, for as long as the stall lasts
  if (w.reported) return false;
  w.reported = true;
  begin_stall(index, running, now - w.since);
  view_.preempt(p);
  return true;
}

void Sysmon::begin_stall(std::size_t index, std::uint64_t goroutine, std::int64_t nanos) {
  MutexLock lock(stall_mu_);
  if (stalls_.size() == kStallHistory) stalls_.erase(stalls_.begin());
  stalls_.push_back(
      Stall{goroutine, std::chrono::nanoseconds(nanos), static_cast<std::uint32_t>(index)});
  open_stall_[index] = ++stall_count_;
}

void Sysmon::end_stall(std::size_t index, std::int64_t nanos) {
  MutexLock lock(stall_mu_);
  // Update the record if it is still in the history.
  const std::uint64_t number = open_stall_[index];
  const std::uint64_t oldest = stall_count_ - stalls_.size() + 1;
  if (number >= oldest && number <= stall_count_) {
    stalls_[number - oldest].duration = std::chrono::nanoseconds(nanos);
  }
  open_stall_[index] = 0;
}

std::vector<Stall> Sysmon::recent_stalls() const {
  MutexLock lock(stall_mu_);
  return stalls_;
}

std::uint64_t Sysmon::stall_count() const {
  MutexLock lock(stall_mu_);
  return stall_count_;
}

bool Sysmon::rescue_io(std::size_t index, std::int64_t now) {
  P& p = *view_.ps()[index];
  const Watch& w = watches_[index];  // watch_p refreshed it this round
  // Relaxed: a snapshot, as in watch_p. The same goroutine has run since
  // w.since: no schedule, so no poll.
  if (p.running_goroutine.load(std::memory_order_relaxed) == 0 ||
      now - w.since < SysmonTuning::kIoRescueNanos || !p.poller->ops_waiting()) {
    return false;
  }
  const Poller::Rescue rescue = p.poller->rescue(now, SysmonTuning::kIoRescuePeriodNanos);
  if (rescue.readied != 0) {
    // Relaxed load and store: sysmon is the only writer; a statistic.
    io_rescued_.store(io_rescued_.load(std::memory_order_relaxed) + rescue.readied,
                      std::memory_order_relaxed);
  }
  // io_uring: a signalled thread posts its completions within
  // microseconds; the next round, kMinDelayNanos away, collects them.
  if (rescue.signalled) signalled_ = true;
  return true;
}

namespace {

// The CPU time of P's worker thread in ns, or -1 if it cannot be read.
std::int64_t thread_cpu_nanos(const P& p) noexcept {
  timespec t{};
  // Relaxed: set by the worker before it runs any goroutine.
  if (clock_gettime(p.spread_probe.cpu_clock.load(std::memory_order_relaxed), &t) != 0) return -1;
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

bool Sysmon::watch_queue(std::size_t index, std::int64_t now) {
  P& p = *view_.ps()[index];
  QueueWatch& w = queue_watches_[index];
  const std::uint32_t consumed = p.runq.consumed();
  const bool queued_fifo = !p.runq.empty();
  // Relaxed: snapshots compared with the previous round's.
  const std::uintptr_t runnext = p.runnext.load(std::memory_order_relaxed);
  const std::uint64_t schedules = p.stats.schedules.load(std::memory_order_relaxed);
  const std::uint32_t synchronisations =
      p.spread_probe.synchronisations.load(std::memory_order_relaxed);
  const std::uint32_t handoffs = p.spread_probe.handoffs.load(std::memory_order_relaxed);
  const bool queued = queued_fifo || runnext != 0;
  // Handoff entries: what spreading would let thieves take (step 2).
  const bool queued_handoffs =
      (runnext & kHandoffBit) != 0 || (queued_fifo && p.runq.any_entry_with(kHandoffBit));
  // Whether thieves may take this P's handoff entries. Yes when
  //   (a) the queue is stuck: it held goroutines a round ago and has taken
  //       none since, or the same runnext waited while the P ran one
  //       goroutine throughout (a goroutine that computes, or one that
  //       runs a long loop of channel operations that never park); or
  //   (b) the P spreads (PCore::spread_readies): goroutines wait while the P's
  //       goroutines compute kComputeNanosPerSync or more per
  //       synchronisation (a schedule, a channel lock, a sync primitive's
  //       release: count_synchronisation). A pipeline whose stages compute
  //       microseconds per item keeps its queue moving, but a second core
  //       would double its speed. Its readies then carry no handoff bit.
  // Partners that hand off every few nanoseconds (a ping-pong, producers
  // and a consumer, a select draining busy channels) synchronise thousands
  // of times a round and stay together while their queue moves: spread
  // over two cores they would contend for the same channels and run
  // slower, not faster.
  //
  // Spreading, step by step:
  //   1. A round in which the P synchronised less than once per
  //      kComputeNanosPerSync of wall-clock time opens a CPU window:
  //      sysmon reads the worker thread's CPU clock.
  //   2. Each following such round closes the window and opens the next.
  //      A window counts when the thread computed kComputeNanosPerSync of
  //      CPU time or more per synchronisation in it; two in a row make the
  //      P spread if handoff goroutines were queued at one of those rounds
  //      (the instant sysmon looks often finds a pipeline's queue empty).
  //      Wall-clock time alone would take a thread the OS preempted (a
  //      loaded machine) for one that computes, and a single window a
  //      one-off burst (one long computation in a goroutine that otherwise
  //      synchronises, a ThreadSanitizer flush) for a pipeline. Only
  //      handoff entries count: the others are stealable already, and the
  //      CPU clock also counts system calls, so goroutines that only do
  //      I/O (a socket ping-pong, whose poller readies carry no handoff
  //      bit) look like computing; spreading them would wake idle Ps to
  //      take goroutines whose next readiness comes back to this P's
  //      epoll, a thread wakeup on every message.
  //   3. A spreading P stops when a round shows frequent synchronisation
  //      on the wall clock, or when a window of kSpreadRecheckNanos shows
  //      that its thread no longer computes per synchronisation: partners
  //      that only synchronise run slower once spread (a handoff may wake
  //      a P) and can look rare on the wall clock, never on the CPU clock.
  //      It stops too when its worker readied no partner in the window
  //      (SpreadProbe::handoffs): spreading changes only those readies, and
  //      goroutines that only do I/O look like computing on the CPU clock
  //      for as long as they run, so a single handoff queued beside them
  //      (a goroutine woken through a WaitGroup) would otherwise keep the
  //      P spreading, and with it every P active (step 7), without end.
  //      Until then it stays spreading, even while nothing is queued: a
  //      spread pipeline often leaves nothing queued on either P at the
  //      instant sysmon looks, and gathering it back on one P would lose
  //      the second core again.
  //   A round in which the P ran nothing changes nothing.
  const bool stuck = (queued_fifo && w.queued_fifo && consumed == w.consumed) ||
                     (runnext != 0 && runnext == w.runnext && schedules == w.schedules);
  const auto syncs =
      static_cast<std::int64_t>(schedules - w.schedules) +
      static_cast<std::int64_t>(static_cast<std::uint32_t>(synchronisations - w.synchronisations));
  const bool rarely_syncs = now - w.at >= syncs * SysmonTuning::kComputeNanosPerSync;
  // Relaxed: a snapshot, as in watch_p; a stale value misjudges one round.
  const bool idle =
      schedules == w.schedules && p.running_goroutine.load(std::memory_order_relaxed) == 0;
  const auto mark = [&](std::int64_t cpu) {
    return CpuWindow{cpu, now, schedules, synchronisations, handoffs};
  };
  // Whether the thread computed enough per synchronisation since `from`.
  const auto computed = [&](const CpuWindow& from, std::int64_t cpu) {
    const auto n = static_cast<std::int64_t>(schedules - from.schedules) +
                   static_cast<std::int64_t>(
                       static_cast<std::uint32_t>(synchronisations - from.synchronisations));
    return from.cpu >= 0 && cpu >= 0 &&
           cpu - from.cpu >= std::max<std::int64_t>(n, 1) * SysmonTuning::kComputeNanosPerSync;
  };
  // Relaxed: hints for thieves and ready_goroutine (p_core.hpp, PCore).
  const bool was_spreading = p.spread_readies.load(std::memory_order_relaxed);
  bool spread = was_spreading;
  if (!idle && was_spreading) {  // step 3
    if (!rarely_syncs) {
      spread = false;
    } else if (now - w.window.at >= SysmonTuning::kSpreadRecheckNanos) {
      const std::int64_t cpu = thread_cpu_nanos(p);
      spread = computed(w.window, cpu) && handoffs != w.window.handoffs;
      w.window = mark(cpu);
    }
    if (!spread) {
      w.window = CpuWindow{};
      w.computing_windows = 0;
    }
  } else if (!idle && rarely_syncs) {  // steps 1 and 2
    const std::int64_t cpu = thread_cpu_nanos(p);
    if (computed(w.window, cpu)) {
      ++w.computing_windows;
      w.saw_queued = w.saw_queued || queued_handoffs;
    } else {
      w.computing_windows = 0;
      w.saw_queued = queued_handoffs;
    }
    w.window = mark(cpu);
    spread = w.computing_windows >= 2 && w.saw_queued;
    if (spread) w.computing_windows = 0;
  } else if (!idle) {
    w.window = CpuWindow{};
    w.computing_windows = 0;
  }
  const bool release = stuck || spread;
  if (spread) every_p_needed_ = true;  // step 7
  w.consumed = consumed;
  w.queued_fifo = queued_fifo;
  w.runnext = runnext;
  w.at = now;
  w.schedules = schedules;
  w.synchronisations = synchronisations;
  if (was_spreading != spread) p.spread_readies.store(spread, std::memory_order_relaxed);
  if (spread) {
    // Relaxed load and store: sysmon is the only writer.
    spread_rounds_.store(spread_rounds_.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  }
  if (p.release_handoffs.load(std::memory_order_relaxed) != release) {
    p.release_handoffs.store(release, std::memory_order_relaxed);
  }
  if (release && queued) view_.notify_work_available();
  // While a P holds back handoff entries, or its queue is stuck, and
  // another P is idle, keep looking every kMinDelayNanos: those entries
  // wait for this check. A queue that moves needs no such rounds: whoever
  // queued its other goroutines woke a P for them (ready_goroutine,
  // Poller::finish_batch).
  return (queued_handoffs || stuck) && view_.idle_procs() != 0;
}

void Sysmon::loop() {
  std::int64_t delay = SysmonTuning::kMinDelayNanos;
  int idle_rounds = 0;
  std::int64_t next_scavenge = monotonic_now_ns() + SysmonTuning::kScavengePeriodNanos;
  while (!stopping_.load(std::memory_order_acquire)) {  // pairs with stop()
    if (idle_rounds > SysmonTuning::kIdleRoundsBeforeBackoff) {
      delay = std::min(delay * 2, SysmonTuning::kMaxDelayNanos);
    } else {
      delay = SysmonTuning::kMinDelayNanos;
    }
    if (rescuing_) delay = std::min(delay, SysmonTuning::kIoRescuePeriodNanos);
    if (signalled_) delay = SysmonTuning::kMinDelayNanos;
    std::int64_t now = monotonic_now_ns();
    advance_wait_clock(now);
    if (view_.all_idle()) {
      // Nothing runs. A deadlock? (step 5 of the top of sysmon.hpp.)
      std::uint64_t activity = 0;
      std::int64_t wake_at = next_scavenge;
      bool quiet = view_.detect_deadlocks() && view_.quiescent(activity);
      if (quiet && quiet_since_ != 0 && activity == quiet_activity_ && now >= decide_at_) {
        if (!outside_thread_alive()) {
          // Quiescence is read again after the census: a thread that woke
          // a goroutine and then ended just before it moved the count (the
          // kernel orders its exit before the listing that lacks it).
          std::uint64_t again = 0;
          quiet = view_.quiescent(again);
          if (quiet && again == activity) {
            view_.declare_deadlock();
            break;
          }
          activity = again;  // something moved: start over, below
        } else {
          // A thread outside the runtime may still wake a goroutine.
          const std::int64_t grace = view_.deadlock_grace_nanos();
          census_period_ = census_period_ == 0
                               ? grace
                               : std::min(census_period_ * 2,
                                          std::max(grace, SysmonTuning::kMaxCensusPeriodNanos));
          decide_at_ = now + census_period_;
        }
      }
      if (!quiet) {
        quiet_since_ = 0;
      } else {
        if (quiet_since_ == 0 || activity != quiet_activity_) {
          quiet_since_ = now;
          quiet_activity_ = activity;
          decide_at_ = now + view_.deadlock_grace_nanos();
          census_period_ = 0;
        }
        wake_at = std::min(wake_at, decide_at_);
      }
      // Sleep until a P gets busy, the deadlock decision is due, or it is
      // time to scavenge.
      sleeping_.store(true, std::memory_order_seq_cst);
      if (view_.all_idle()) parker_.park_until(wake_at);
      sleeping_.store(false, std::memory_order_relaxed);
      // Step 7: after a long idle sleep, the load counted before is history.
      if (monotonic_now_ns() - now >= SysmonTuning::kStandbyResetNanos)
        update_active_procs(/*forget_load=*/true);
      // The sleep counts as a round with nothing to do: a server whose Ps
      // go idle between bursts of requests keeps sysmon backed off.
    } else {
      quiet_since_ = 0;
      parker_.park_until(now + delay);
    }
    if (stopping_.load(std::memory_order_acquire)) break;  // pairs with stop()
    now = monotonic_now_ns();
    advance_wait_clock(now);
    sample_machine_load(now);
    bool acted = false;
    for (std::size_t i = 0; i < watches_.size(); ++i) acted = watch_p(i, now) || acted;
    rescuing_ = false;
    signalled_ = false;
    for (std::size_t i = 0; i < watches_.size(); ++i) rescuing_ = rescue_io(i, now) || rescuing_;
    for (std::size_t i = 0; i < queue_watches_.size(); ++i) acted = watch_queue(i, now) || acted;
    update_active_procs(/*forget_load=*/false);  // step 7
    acted = view_.kick_global_queue() || acted;
    if (now >= next_scavenge) {
      alloc::PageHeap::instance().scavenge(SysmonTuning::kScavengeAgeNanos);
      next_scavenge = now + SysmonTuning::kScavengePeriodNanos;
    }
    idle_rounds = acted ? 0 : idle_rounds + 1;
  }
}

}  // namespace goro::detail
