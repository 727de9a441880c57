// goro/scheduler_stats.hpp
//
// Defines: goro::SchedulerStats and goro::scheduler_stats(), counters that
// say what the scheduler did (for diagnostics, demos and benchmarks).
#ifndef GORO_SCHEDULER_STATS_HPP_
#define GORO_SCHEDULER_STATS_HPP_

#include <chrono>
#include <cstdint>
#include <vector>

namespace goro {

// Totals over all Ps. Counters are kept per P without atomic
// read-modify-writes, so a snapshot taken while the runtime runs is
// approximate (each counter is exact once run() has returned).
struct SchedulerStats {
  std::uint32_t procs = 0;                  // number of Ps
  std::uint64_t goroutines_started = 0;     // go(), spawn() and run()'s main
  std::uint64_t goroutines_finished = 0;    // goroutines that ran to completion
  std::uint64_t schedules = 0;              // goroutines resumed by a worker loop
  std::uint64_t inline_joins = 0;           // joins that ran an unstarted child in place
  std::uint64_t yields = 0;                 // co_await goro::yield()
  std::uint64_t steals = 0;                 // successful steals from another P
  std::uint64_t stolen_goroutines = 0;      // goroutines moved by those steals
  std::uint64_t global_queue_takes = 0;     // times a P took work from the global queue
  std::uint64_t local_queue_overflows = 0;  // times a full local queue spilled half to global
  std::uint64_t parks = 0;                  // times a worker went to sleep for lack of work
  std::uint64_t wakeups = 0;                // times a worker woke another to look for work
  std::uint64_t timers_fired = 0;           // timers run (sleeps ended, Timer/Ticker fires)
  std::uint64_t blocking_calls = 0;         // goro::blocking calls handed to syscall threads
  // Of those, calls that waited in the queue for a free thread because
  // Config::max_blocking_threads calls were running.
  std::uint64_t blocking_calls_queued = 0;
  std::uint64_t io_waits = 0;        // goro::io operations that parked in the poller
  std::uint64_t io_completions = 0;  // goroutines the poller made runnable
  // Goroutines whose I/O completed while their P ran one goroutine that
  // did not suspend, made runnable on other Ps by the runtime's monitor
  // thread (see goro::Config::io_rescue_signal); not in io_completions.
  std::uint64_t io_rescued = 0;
  std::uint64_t stalls = 0;  // goroutines seen holding a P > 10 ms without suspending
  // sysmon rounds that found a P whose goroutines compute (on its CPU) 500
  // ns or more per synchronisation with others queued, and so spread its
  // handoffs over the idle Ps (docs/ARCHITECTURE.md, "Keeping partners
  // together"); counted once per P and round while it spreads.
  std::uint64_t spread_rounds = 0;
  // Goroutines that a P on standby handed to the running Ps (through the
  // global queue) instead of running them: while threads outside the
  // runtime keep the machine's CPUs busy, only as many Ps run goroutines
  // as there are CPUs left (docs/ARCHITECTURE.md, "Sharing the machine").
  std::uint64_t handed_over_goroutines = 0;
  // Ps that run goroutines now (not a counter): procs, or fewer while the
  // others are on standby.
  std::uint32_t active_procs = 0;
  // Slots of the global run queue's ring now (not a counter): it grows with
  // the goroutines waiting there and shrinks once they have gone, so bounded
  // work keeps it bounded.
  std::uint64_t global_queue_capacity = 0;
  // goro::blocking calls waiting for a free thread now (not a counter).
  std::uint64_t blocking_queue_length = 0;
};

// The counters of the running runtime, or of the last run() once it has
// returned (all zero before the first run). Safe from any thread.
[[nodiscard]] SchedulerStats scheduler_stats() noexcept;

// A goroutine that held its P for more than 10 ms without suspending, as
// sysmon saw it. C++ coroutines cannot be preempted: such a goroutine delays
// everything queued on its P until other Ps steal it. Long CPU work belongs
// in goro::blocking, or should co_await goro::yield() now and then.
struct Stall {
  std::uint64_t goroutine_id = 0;
  std::chrono::nanoseconds duration{0};  // so far, if it is still running
  std::uint32_t p = 0;                   // the P it held
};

// The most recent stalls (up to 64, oldest first) of the running runtime, or
// of the last run() once it has returned. Safe from any thread.
[[nodiscard]] std::vector<Stall> recent_stalls();

}  // namespace goro

#endif  // GORO_SCHEDULER_STATS_HPP_
