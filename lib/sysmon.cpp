// lib/sysmon.cpp: the background monitor (see sysmon.hpp).
#include "sysmon.hpp"

#include <pthread.h>
#include <time.h>

#include <algorithm>

#include "alloc/page_heap.hpp"
#include "goro/detail/chan_lock.hpp"
#include "goro/detail/timer.hpp"
#include "scheduler.hpp"

namespace goro::detail {

void Sysmon::start() {
  watches_.assign(scheduler_.ps_.size(), Watch{});
  queue_watches_.assign(scheduler_.ps_.size(), QueueWatch{});
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "goro-sysmon");
    loop();
  });
}

void Sysmon::stop() noexcept {
  if (!thread_.joinable()) return;
  // Release/acquire: nothing rides on it but the flag itself; the join
  // below orders the thread's exit.
  stopping_.store(true, std::memory_order_release);
  parker_.unpark();
  thread_.join();
}

bool Sysmon::watch_p(std::size_t index, std::int64_t now) {
  P& p = *scheduler_.ps_[index];
  Watch& w = watches_[index];
  // Relaxed: both are written by the worker with relaxed stores; a stale
  // value only delays detection by a round.
  const std::uint64_t running = p.running_goroutine.load(std::memory_order_relaxed);
  const std::uint64_t schedules = p.stats.schedules.load(std::memory_order_relaxed);
  if (running == 0 || schedules != w.schedules) {
    if (w.reported) scheduler_.end_stall(index, now - w.since);
    w = Watch{schedules, now, false};
    return false;
  }
  if (w.reported || now - w.since < SysmonTuning::kStallNanos) return false;
  w.reported = true;
  scheduler_.begin_stall(index, running, now - w.since);
  return true;
}

namespace {

// The CPU time of P's worker thread in ns, or -1 if it cannot be read.
std::int64_t thread_cpu_nanos(const P& p) noexcept {
  timespec t{};
  // Relaxed: set by the worker before it runs any goroutine.
  if (clock_gettime(p.cpu_clock.load(std::memory_order_relaxed), &t) != 0) return -1;
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

bool Sysmon::watch_queue(std::size_t index, std::int64_t now) {
  P& p = *scheduler_.ps_[index];
  QueueWatch& w = queue_watches_[index];
  const std::uint32_t consumed = p.runq.consumed();
  const bool queued_fifo = !p.runq.empty();
  // Relaxed: snapshots compared with the previous round's.
  const std::uintptr_t runnext = p.runnext.load(std::memory_order_relaxed);
  const std::uint64_t schedules = p.stats.schedules.load(std::memory_order_relaxed);
  const std::uint32_t chan_lock_id = p.chan_lock_id.load(std::memory_order_relaxed);
  const std::uint32_t synchronisations =
      chan_lock_id == 0
          ? 0
          : chan_lock_owner_slots[chan_lock_id].synchronisations.load(std::memory_order_relaxed);
  const bool queued = queued_fifo || runnext != 0;
  // Whether thieves may take this P's handoff entries. Yes when
  //   (a) the queue is stuck: it held goroutines a round ago and has taken
  //       none since, or the same runnext waited while the P ran one
  //       goroutine throughout (a goroutine that computes, or one that
  //       runs a long loop of channel operations that never park); or
  //   (b) the P spreads (P::spread_readies): goroutines wait while the P's
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
  //      kComputeNanosPerSync of wall-clock time, with goroutines queued,
  //      makes it a candidate: sysmon reads its worker thread's CPU clock.
  //   2. The next round confirms it from CPU time: the thread computed
  //      kComputeNanosPerSync or more per synchronisation since step 1,
  //      and the wall clock still says so. Wall-clock time alone would
  //      take a thread the OS preempted (a loaded machine) for one that
  //      computes. The P spreads.
  //   3. It stays so until a round shows frequent synchronisation (wall
  //      clock): a spread pipeline often leaves nothing queued on either
  //      P at the instant sysmon looks, and gathering it back on one P
  //      would lose the second core again. A round in which the P ran
  //      nothing changes nothing.
  const bool stuck = (queued_fifo && w.queued_fifo && consumed == w.consumed) ||
                     (runnext != 0 && runnext == w.runnext && schedules == w.schedules);
  const auto syncs =
      static_cast<std::int64_t>(schedules - w.schedules) +
      static_cast<std::int64_t>(static_cast<std::uint32_t>(synchronisations - w.synchronisations));
  const bool rarely_syncs = now - w.at >= syncs * SysmonTuning::kComputeNanosPerSync;
  const bool idle =
      schedules == w.schedules && p.running_goroutine.load(std::memory_order_relaxed) == 0;
  // Relaxed: hints for thieves and ready_goroutine (scheduler.hpp, P).
  const bool was_spreading = p.spread_readies.load(std::memory_order_relaxed);
  bool spread = was_spreading;
  std::int64_t cpu = -1;  // the worker's CPU time, if read this round
  if (!idle && was_spreading) {
    spread = rarely_syncs;  // step 3
  } else if (!idle && w.candidate_cpu >= 0 && queued && rarely_syncs) {
    cpu = thread_cpu_nanos(p);  // step 2
    const auto syncs_since = static_cast<std::int64_t>(schedules - w.candidate_schedules) +
                             static_cast<std::int64_t>(static_cast<std::uint32_t>(
                                 synchronisations - w.candidate_synchronisations));
    spread = cpu - w.candidate_cpu >=
             std::max<std::int64_t>(syncs_since, 1) * SysmonTuning::kComputeNanosPerSync;
  }
  w.candidate_cpu = -1;
  if (!spread && !idle && queued && rarely_syncs) {  // step 1
    w.candidate_cpu = cpu >= 0 ? cpu : thread_cpu_nanos(p);
    w.candidate_schedules = schedules;
    w.candidate_synchronisations = synchronisations;
  }
  const bool release = stuck || spread;
  w.consumed = consumed;
  w.queued_fifo = queued_fifo;
  w.runnext = runnext;
  w.at = now;
  w.schedules = schedules;
  w.synchronisations = synchronisations;
  if (was_spreading != spread) p.spread_readies.store(spread, std::memory_order_relaxed);
  if (spread) {
    // Relaxed load and store: sysmon is the only writer.
    scheduler_.spread_rounds_.store(scheduler_.spread_rounds_.load(std::memory_order_relaxed) + 1,
                                    std::memory_order_relaxed);
  }
  if (p.release_handoffs.load(std::memory_order_relaxed) != release) {
    p.release_handoffs.store(release, std::memory_order_relaxed);
  }
  if (release && queued) scheduler_.notify_work_available(nullptr);
  // While a P has queued goroutines and another is idle, keep looking
  // every kMinDelayNanos: held-back handoffs wait for this check.
  return queued && scheduler_.idle_procs() != 0;
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
    std::int64_t now = monotonic_now_ns();
    if (scheduler_.all_idle()) {
      // Nothing runs. A deadlock? (step 5 of the top of sysmon.hpp.)
      std::uint64_t activity = 0;
      std::int64_t wake_at = next_scavenge;
      if (scheduler_.detect_deadlocks() && scheduler_.quiescent(activity)) {
        if (quiet_since_ != 0 && activity == quiet_activity_ &&
            now - quiet_since_ >= scheduler_.deadlock_grace_nanos()) {
          scheduler_.declare_deadlock();
          break;
        }
        if (quiet_since_ == 0 || activity != quiet_activity_) {
          quiet_since_ = now;
          quiet_activity_ = activity;
        }
        wake_at = std::min(wake_at, quiet_since_ + scheduler_.deadlock_grace_nanos());
      } else {
        quiet_since_ = 0;
      }
      // Sleep until a P gets busy, the grace period ends, or it is time to
      // scavenge.
      sleeping_.store(true, std::memory_order_seq_cst);
      if (scheduler_.all_idle()) parker_.park_until(wake_at);
      sleeping_.store(false, std::memory_order_relaxed);
      idle_rounds = 0;
    } else {
      quiet_since_ = 0;
      parker_.park_until(now + delay);
    }
    if (stopping_.load(std::memory_order_acquire)) break;  // pairs with stop()
    now = monotonic_now_ns();
    bool acted = false;
    for (std::size_t i = 0; i < watches_.size(); ++i) acted = watch_p(i, now) || acted;
    for (std::size_t i = 0; i < queue_watches_.size(); ++i) acted = watch_queue(i, now) || acted;
    acted = scheduler_.kick_global_queue() || acted;
    if (now >= next_scavenge) {
      alloc::PageHeap::instance().scavenge(SysmonTuning::kScavengeAgeNanos);
      next_scavenge = now + SysmonTuning::kScavengePeriodNanos;
    }
    idle_rounds = acted ? 0 : idle_rounds + 1;
  }
}

}  // namespace goro::detail
