// lib/p_core.hpp
//
// Defines: goro::detail::PCore (the scheduler core's part of a P), the run
// queue entry encoding (Entry, kClaimBit, kHandoffBit), and PStats (a P's
// counters).
//
// A P is the right to run goroutines (scheduler.hpp, "Glossary"). The
// scheduler core owns the part defined here: the run queues, runnext and
// its take handshake, the spawn stack, spinning and idle state, the hints
// sysmon writes, goroutine ids and the goroutine-record cache. Each
// mechanism above the core (timers, the poller, sysmon, the frame
// allocator) keeps its per-P state in a type of its own, and P (p.hpp)
// extends PCore with all of them, so that nothing here, and nothing in the
// core, depends on a mechanism. The core calls a P's mechanisms through
// PMechanisms (below), which P's layer defines (p.cpp), and the
// mechanisms reach the core back through scheduler_interface.hpp.
#ifndef GORO_LIB_P_CORE_HPP_
#define GORO_LIB_P_CORE_HPP_

#include <atomic>
#include <cstdint>
#include <vector>

#include "goroutine.hpp"
#include "goroutine_pool.hpp"
#include "mutex.hpp"
#include "run_queue.hpp"
#include "spawn_stack.hpp"

namespace goro::detail {

class Scheduler;

// Run queue entries (scheduler.hpp, "Run queue entries"): a G address,
// with kClaimBit on the first-run entry of a joinable goroutine, and 0 for
// a tombstone.
using Entry = std::uintptr_t;
inline constexpr Entry kClaimBit = 1;
// On the entry of a goroutine that a goroutine running on this P readied
// (a channel or sync handoff, detail::ready_goroutine): its partner runs
// here, so it is held back from thieves while the P keeps working through
// its queue (ARCHITECTURE, "Keeping partners together"). G records are
// 64-byte aligned, so the low bits are free.
inline constexpr Entry kHandoffBit = 2;
inline constexpr Entry kEntryFlags = kClaimBit | kHandoffBit;

inline Entry entry_for(G* g, bool claim) noexcept {
  return reinterpret_cast<Entry>(g) | (claim ? kClaimBit : 0);
}

// Whether a queue entry is dead (it can run nothing): a tombstone, or a
// claim entry whose goroutine is claimed already (its joiner ran it inline, or
// another entry started it). Such an entry may be dropped wherever it waits.
inline bool entry_is_stale(Entry entry) noexcept {
  if (entry == 0) return true;
  if ((entry & kClaimBit) == 0) return false;
  const auto* g = reinterpret_cast<const GoroutineRecord*>(entry & ~kEntryFlags);
  // Relaxed: records are type-stable, so the claim word is always readable;
  // any value but kUnclaimed means this entry would lose its claim, or win
  // that of a recycled record, which has its own entry queued.
  return g->claim.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(Claim::kUnclaimed);
}

// Per-P counters, written only by the owner with relaxed load+store (no
// read-modify-write on the hot path), read by anyone with relaxed loads.
// The mechanisms count here too (timers fired, blocking calls, I/O), so
// that SchedulerStats adds up one struct per P.
struct PStats {
  std::atomic<std::uint64_t> goroutines_started{0};
  std::atomic<std::uint64_t> goroutines_finished{0};
  std::atomic<std::uint64_t> schedules{0};
  std::atomic<std::uint64_t> inline_joins{0};
  std::atomic<std::uint64_t> yields{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> stolen_goroutines{0};
  std::atomic<std::uint64_t> global_queue_takes{0};
  std::atomic<std::uint64_t> local_queue_overflows{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> wakeups{0};
  std::atomic<std::uint64_t> timers_fired{0};
  std::atomic<std::uint64_t> blocking_calls{0};
  std::atomic<std::uint64_t> blocking_calls_queued{0};
  std::atomic<std::uint64_t> io_waits{0};
  std::atomic<std::uint64_t> io_completions{0};
  std::atomic<std::uint64_t> handed_over{0};
};

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
  // Owner-only counter: a relaxed load and store avoid a locked instruction.
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct alignas(64) PCore {
  PCore(Scheduler& scheduler, std::uint32_t index, std::uint32_t queue_capacity)
      : scheduler(scheduler), index(index), runq(queue_capacity), spawned(queue_capacity) {}
  PCore(const PCore&) = delete;
  PCore& operator=(const PCore&) = delete;

  Scheduler& scheduler;
  const std::uint32_t index;
  RunQueue runq;
  // Goroutines spawned here that have not started (spawn_stack.hpp): the
  // owner takes the newest first, thieves the oldest.
  SpawnStack spawned;
  // A G readied by the running G that should run next (Go's p.runnext).
  // Owner stores non-zero; thieves CAS to 0 in their last steal round.
  alignas(64) std::atomic<Entry> runnext{0};
  // The runnext take handshake (take_runnext / steal_runnext): the entry
  // the owner is taking with plain stores, and how many thieves are trying
  // to CAS runnext away. Same line as runnext: thieves touch it rarely.
  std::atomic<Entry> runnext_taking{0};
  std::atomic<std::uint32_t> runnext_thieves{0};
  // Schedule ticks; written by the owner only, read by thieves (relaxed) to
  // see whether the P is making progress.
  std::atomic<std::uint32_t> schedtick{0};
  // Set while this P's handoffs are released (sysmon.hpp, step 1b):
  // thieves may take handoff entries too. Set while the queue is stuck or
  // while spread_readies is.
  std::atomic<bool> release_handoffs{false};
  // Set while this P's goroutines compute for long between handoffs
  // (sysmon.hpp, step 1b): its readies then carry no handoff bit, so that
  // they wake idle Ps and are stolen like any other goroutine and a second
  // core shares the work.
  // Both flags are written by sysmon only; relaxed everywhere: they are
  // hints.
  std::atomic<bool> spread_readies{false};

  // Owner-only state.
  std::uint32_t runnext_chain = 0;  // runnext takes in a row (kRunnextChain)
  std::uint32_t spawn_chain = 0;    // spawn-stack takes in a row (kSpawnChain)
  bool spinning = false;            // also written by a waker while the P is idle (under sched_mu_)
  bool idle = false;                // guarded by Scheduler::sched_mu_
  // The id of the goroutine the worker resumed, 0 between goroutines.
  // Written by the owner (relaxed stores), read by sysmon.
  std::atomic<std::uint64_t> running_goroutine{0};
  // Set by sysmon when the running goroutine has held the P too long;
  // cleared by the owner when it honours it (yield, next suspension).
  std::atomic<bool> preempt{false};
  std::uint64_t rng = 0;
  std::uint64_t next_id = 0;
  std::uint64_t end_id = 0;
  GoroutineCache g_cache;
  GoroutinePool* const g_pool = &GoroutinePool::instance();  // saves a guard check per use
  PStats stats;

  // Goroutines made runnable for this P by other threads while it was idle
  // (a blocking call returning to its previous P, make_runnable_at_home),
  // drained by the owner.
  Mutex inbox_mu;
  std::vector<G*> inbox ABSL_GUARDED_BY(inbox_mu);
  std::atomic<bool> inbox_nonempty{false};
};

// What the core asks of the mechanisms of a P: plain functions that the
// layer above the core defines (p.cpp), so that the core calls them as
// directly as its own and includes none of them. Each runs on p's worker
// unless it says otherwise.
struct PMechanisms {
  // Step 0: runs p's due timers; no clock read when it has none.
  static void run_due_timers(PCore& p) noexcept;
  // Steps 0, 4 and 5b: polls p's netpoller without blocking.
  static void poll_io(PCore& p) noexcept;
  // Step 5, last round: runs a busy `victim`'s due timers on p; `now` is
  // read once, when first needed (0 until then). Returns whether any fired.
  static bool steal_due_timers(PCore& victim, PCore& p, std::int64_t& now) noexcept;
  // Step 5b: whether ops of p are in flight in a poller cheap to poll, so
  // that a completion may be microseconds away, and the machine has a CPU
  // to spare for a spin with `other_busy_procs` Ps of the runtime busy
  // besides p (machine_load.hpp).
  static bool poller_spin_pays(PCore& p, std::uint32_t other_busy_procs) noexcept;
  // Step 6e: sleeps p's worker (idle, on the idle list) until wake(p), an
  // I/O completion, or the earliest timer of any P, and takes it off the
  // idle list (leave_idle) once awake.
  static void sleep_idle(PCore& p) noexcept;
  // Any thread: makes p's current or next sleep_idle return.
  static void wake(PCore& p) noexcept;
  // Any thread: idle P p became busy (sysmon sleeps while every P is idle).
  static void note_busy(PCore& p) noexcept;
};

}  // namespace goro::detail

#endif  // GORO_LIB_P_CORE_HPP_
