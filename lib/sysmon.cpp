// lib/sysmon.cpp: the background monitor (see sysmon.hpp).
#include "sysmon.hpp"

#include <pthread.h>

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
  //   (b) goroutines wait while the P spent kComputeNanosPerSync or more
  //       per synchronisation (a schedule, a channel lock, a sync
  //       primitive's release: count_synchronisation) over the round: a
  //       pipeline whose stages compute microseconds per item keeps its
  //       queue moving, but a second core would double its speed. Its readies then
  //       spread too (P::spread_readies): no handoff bit, and an idle P
  //       is woken, as Go does.
  // Once spreading, a P stays so until a round shows frequent
  // synchronisation: a spread pipeline often leaves nothing queued on
  // either P at the instant sysmon looks, and gathering it back on one P
  // would lose the second core again. Partners that hand off every few
  // nanoseconds (a ping-pong, producers and a consumer, a select draining
  // busy channels) synchronise thousands of times a round and stay
  // together while their queue moves: spread over two cores they
  // would contend for the same channels and run slower, not faster.
  const bool stuck = (queued_fifo && w.queued_fifo && consumed == w.consumed) ||
                     (runnext != 0 && runnext == w.runnext && schedules == w.schedules);
  const auto syncs =
      static_cast<std::int64_t>(schedules - w.schedules) +
      static_cast<std::int64_t>(static_cast<std::uint32_t>(synchronisations - w.synchronisations));
  const bool computes = now - w.at >= syncs * SysmonTuning::kComputeNanosPerSync;
  // A P that ran nothing this round showed nothing either way: it keeps
  // its state (a P of a spread pipeline idles between items, the more so
  // on a loaded machine).
  const bool idle =
      schedules == w.schedules && p.running_goroutine.load(std::memory_order_relaxed) == 0;
  // Relaxed: hints for thieves and ready_goroutine (scheduler.hpp, P).
  const bool was_spreading = p.spread_readies.load(std::memory_order_relaxed);
  const bool spread = idle ? was_spreading : computes && (queued || was_spreading);
  const bool release = stuck || spread;
  w = QueueWatch{consumed, queued_fifo, runnext, now, schedules, synchronisations};
  if (was_spreading != spread) p.spread_readies.store(spread, std::memory_order_relaxed);
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
