// lib/scheduler.hpp
//
// Defines: goro::detail::P (a processor), goro::detail::Scheduler (the
// runtime: Ps, their worker threads, the global queue, the idle list).
//
// Goroutine scheduler, after Go's proc.go.
//
// Glossary
//   G  a goroutine: a root Task and the chain of Tasks it awaits, described
//      by a G record (goro/detail/goroutine.hpp).
//   M  a worker thread. Unlike Go, each M is bound to one P for the life of
//      the runtime: an io_uring ring belongs to the thread that submits to
//      it, so the P that owns a ring cannot move between threads
//      (docs/ARCHITECTURE.md, "Why one thread per P"). Blocking calls go to
//      separate syscall threads that hold no P (syscall_threads.hpp).
//   P  a processor: the right to run goroutines, with a local run queue, a
//      runnext slot, a spawn stack, a goroutine-record cache, counters, a
//      timer heap, a poller and an allocator cache.
//
// Run queue entries
//   Queues hold uintptr_t entries: a G address, with bit 0 set for the
//   first-run entry of a joinable goroutine ("claim entry"), and 0 for a
//   tombstone. A claim entry may be consumed only by winning the G's claim
//   compare-exchange (kUnclaimed -> kClaimed), because the goroutine's
//   joiner may have run it inline. A claim entry that loses is stale and is
//   dropped. G records are type-stable (goroutine_pool.hpp), so dropping a
//   stale entry never touches freed memory; if the record was recycled for
//   a new joinable goroutine not yet started, the stale entry may win its
//   claim and run it, which is correct: exactly one entry ever wins.
//
// Invariants
//   1. A G is runnable in at most one place, except stale claim entries,
//      which never run anything twice (one claim winner).
//   2. Only P's own worker pushes to P's local queue and writes a non-zero
//      runnext; thieves only take (copy + CAS head / CAS runnext to 0).
//   3. nmspinning counts workers in the spinning state (looking for work
//      while holding nothing). npidle counts workers in the idle list.
//   4. A worker in the idle list is woken only by the thread that removes
//      it from the list, under sched_mu_.
//
// Finding work (find_runnable), as findRunnable in proc.go:
//   1. Every 61st schedule tick, one G from the global queue first, so that
//      goroutines that keep readying each other cannot starve it.
//   2. runnext (the G inherits the current time slice: the tick is not
//      advanced), then the local queue.
//   3. The global queue: a batch of min(len/nprocs + 1, capacity/2).
//   4. The netpoller, without blocking: submits the SQEs the goroutines
//      queued since the last poll, in one enter, and readies the goroutines
//      of completed ops. (Also every kPollInterval schedules at the top.)
//   5. Steal, if this worker is spinning or fewer than half of the busy Ps
//      are spinning: 4 rounds over the other Ps in a random order with a
//      stride coprime to their number, taking half of a victim's queue;
//      in the last round also its runnext, but only after giving the
//      victim ~3 microseconds to run it itself.
//   5b. If this P's poller is cheap to poll (io_uring) and has ops in
//      flight, poll it for up to kPollerSpinNanos first.
//   6. Go idle (the spin/park handshake below), then sleep.
//
// Spin/park handshake: no wakeup is lost.
//   Going idle (worker W):
//     a. lock sched_mu_; if the global queue is non-empty, take from it;
//        otherwise put W in the idle list (npidle++); unlock.
//     b. If W was spinning: W.spinning = false; nmspinning.fetch_sub (a
//        seq_cst read-modify-write).
//     c. Full fence (seq_cst).
//     d. Re-check every P's queue and runnext and the global queue. If any
//        has work: leave the idle list (or, if a waker already removed W,
//        accept the spinning state it gave) and start again at 1.
//     e. Otherwise sleep in the Parker until woken.
//   Submitting work (spawn, ready, yield-to-global, overflow):
//     f. Enqueue (release store of tail / runnext / under the queue lock).
//     g. Full fence (seq_cst).
//     h. wakep: if npidle == 0 or nmspinning != 0, stop: a spinner exists
//        (it re-checks in d after its decrement) or nobody is idle.
//        Otherwise CAS nmspinning 0 -> 1, take a worker from the idle list
//        under sched_mu_, mark it spinning and unpark it.
//   Why it is enough: c and g are seq_cst fences, so either the submitter's
//   load in h observes W's npidle increment / nmspinning decrement, and
//   wakes someone, or W's re-check in d observes the submitted work.
//   When a spinning worker finds work it stops spinning (fetch_sub) and
//   calls wakep, so that while there is work there is a spinner to find
//   more (Go's resetspinning).
//   The two fences are the halves of an asymmetric fence
//   (goro/detail/asymmetric_fence.hpp): g runs on every submission, so it
//   is the light half (a compiler barrier); c runs once per trip to sleep,
//   which costs a system call anyway, so it is the heavy half (membarrier,
//   which makes every running thread of the process execute a full
//   barrier). Where membarrier is unavailable, and under ThreadSanitizer,
//   both are seq_cst fences. The owner's take of its own runnext is a
//   second, smaller handshake of the same kind (take_runnext in
//   scheduler.cpp).
//
// Rejected alternatives
//   * One shared queue under a lock (the simplest design): every spawn
//     contends on one cache line; Go and Tokio both moved away from it.
//   * Work-first LIFO deques (Cilk, Chase-Lev): good fork-join locality but
//     no FIFO fairness; goro keeps Go's FIFO queue and gets fork-join
//     locality from runnext plus inline joins instead.
//   * Migrating Ps between threads as Go does at syscalls: impossible with
//     a ring per P; blocking work moves to syscall threads instead.
//   * A registry of live goroutines (a locked list) for shutdown: two
//     atomic read-modify-writes per spawn; type-stable records let the
//     shutdown sweep find live goroutines by walking the slabs instead.
#ifndef GORO_LIB_SCHEDULER_HPP_
#define GORO_LIB_SCHEDULER_HPP_

#include <time.h>

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alloc/frame_cache.hpp"
#include "global_queue.hpp"
#include "goro/blocking.hpp"
#include "goro/config.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/scheduler_stats.hpp"
#include "goroutine_pool.hpp"
#include "mutex.hpp"
#include "poller.hpp"
#include "run_queue.hpp"
#include "spawn_stack.hpp"
#include "sysmon.hpp"
#include "timer_heap.hpp"

namespace goro::detail {

// Go's scheduler constants (proc.go), named.
struct SchedulerTuning {
  // Local run queue slots per P (Go: len(p.runq)).
  static constexpr std::uint32_t kLocalQueueCapacity = 256;
  // Every this many schedule ticks the global queue is served first.
  static constexpr std::uint32_t kGlobalQueueFairnessTick = 61;
  // A P with work polls its netpoller every this many schedules (it always
  // polls when it runs out of work). Go polls from sysmon every 10 ms; a
  // per-P count keeps the latency of a busy P's I/O bounded by its queue.
  static constexpr std::uint64_t kPollInterval = 61;
  // How long a P that ran out of goroutines polls its io_uring ring before
  // going idle, when it has ops in flight. A reply on a local socket takes
  // a few microseconds; idling and being woken cost about as much again
  // (a membarrier, a kernel sleep, a wakeup), twice per round trip.
  static constexpr std::int64_t kPollerSpinNanos = 20'000;
  // Steal rounds over all Ps before going idle (Go: stealTries).
  static constexpr int kStealRounds = 4;
  // How long a thief leaves a running victim to take its own runnext.
  static constexpr std::uint32_t kRunnextGraceNanos = 3000;
  // Goroutines taken from runnext in a row, while the local queue holds
  // others, before the queue's oldest goes first. Two goroutines handing
  // each other the P through runnext would otherwise keep the queue waiting
  // until sysmon's check (Go bounds the chain by the 10 ms time slice it
  // inherits; a count is cheaper than a clock read per schedule).
  static constexpr std::uint32_t kRunnextChain = 16;
  // Goroutines taken from the spawn stack in a row, while the local queue
  // holds others, before the queue's oldest goes first: new spawns run
  // newest first for locality (spawn_stack.hpp), but cannot keep readied
  // or yielding goroutines waiting without bound. Go's global-queue check
  // uses the same 61.
  static constexpr std::uint32_t kSpawnChain = 61;
  // Goroutine ids are handed to Ps in batches (Go: _GoidCacheBatch, 16).
  // Larger than Go's: the batch refill is a locked add on a line every P
  // shares, a visible part of a spawn with batches of 16
  // (docs/PERFORMANCE.md, "Figures behind design choices"); ids only need
  // to be unique.
  static constexpr std::uint64_t kIdBatch = 1024;
};

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
  const G* g = reinterpret_cast<const G*>(entry & ~kEntryFlags);
  // Relaxed: records are type-stable, so the claim word is always readable;
  // any value but kUnclaimed means this entry would lose its claim, or win
  // that of a recycled record, which has its own entry queued.
  return g->claim.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(Claim::kUnclaimed);
}

// Per-P counters, written only by the owner with relaxed load+store (no
// read-modify-write on the hot path), read by anyone with relaxed loads.
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
};

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
  // Owner-only counter: a relaxed load and store avoid a locked instruction.
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

class Scheduler;

struct alignas(64) P {
  P(Scheduler& scheduler, std::uint32_t index, std::uint32_t queue_capacity)
      : scheduler(scheduler), index(index), runq(queue_capacity), spawned(queue_capacity) {}

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
  // Incremented each time the worker loop regains control from a goroutine
  // (see G::inline_epoch).
  std::uint64_t loop_epoch = 0;
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
  alloc::FrameCache frame_cache;
  // The netpoller: an idle worker sleeps in it, and wake() is how other
  // threads rouse it (poller.hpp). Created with the P, attached to the ring
  // on the worker thread.
  std::unique_ptr<Poller> poller;
  PStats stats;

  // Timers armed on this P. Any thread may take the lock: the owner runs
  // due timers at each schedule, idle Ps run a busy P's due timers, and a
  // timer is stopped from wherever its owner goroutine runs now.
  Mutex timer_mu;
  TimerHeap timers ABSL_GUARDED_BY(timer_mu);
  // timers.earliest(), readable without the lock: the owner checks it at
  // every schedule (no clock read when it is kNever), idle workers use it
  // to decide when to wake.
  std::atomic<std::int64_t> next_timer{TimerHeap::kNever};

  // Requests from other threads, drained by the owner: goroutines made
  // runnable for this P while it was idle (a blocking call returning to its
  // previous P), and io_uring cancels for ops in this P's ring (the user_data
  // of each; only the owner may submit to the ring).
  Mutex inbox_mu;
  std::vector<G*> inbox ABSL_GUARDED_BY(inbox_mu);
  std::vector<std::uint64_t> cancel_inbox ABSL_GUARDED_BY(inbox_mu);
  std::atomic<bool> inbox_nonempty{false};

  // The CPU-time clock of this P's worker thread, so that sysmon can tell
  // a goroutine that computes from a thread the OS preempted. Set by the
  // worker as it starts, before it runs any goroutine; relaxed, read by
  // sysmon only, and only for a P that ran goroutines (so never the
  // initial 0, CLOCK_REALTIME).
  std::atomic<clockid_t> cpu_clock{0};
  // The ChanLock owner id of this P's worker thread (0: none), so that
  // sysmon can read how often it synchronises (count_synchronisation).
  // Set by the worker as it starts; relaxed, read by sysmon only.
  std::atomic<std::uint32_t> chan_lock_id{0};
};

// What Config::on_uncaught_exception holds.
using UncaughtExceptionHook = decltype(Config::on_uncaught_exception);

class Scheduler {
 public:
  Scheduler(const Config& config, unsigned procs);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs the runtime until `main` finishes (called by run_main). If the
  // runtime cannot start (a thread or a poller refused), throws
  // std::system_error having stopped and joined whatever it had started and
  // destroyed the goroutines started from outside meanwhile; `main` never
  // ran and stays with the caller.
  void run(G* main);

  // The Scheduler whose worker is the current thread, or nullptr.
  static P* current_p() noexcept;

  G* new_goroutine(P* p, std::coroutine_handle<> root, TaskPromiseBase* promise, bool joinable);
  void free_goroutine(P* p, G* g) noexcept;
  // Where runq_put places an entry.
  enum class Placement {
    // runnext, moving its previous occupant to the local queue's tail (Go's
    // runqput(next=true)): for a goroutine readied by the running one, whose
    // prompt handoff matters. An empty slot takes a plain store (only this
    // thread stores non-zero values); an occupied one an atomic exchange
    // (thieves may be taking the occupant). The plain store saves a locked
    // instruction per channel handoff (docs/PERFORMANCE.md, "Channels and
    // select").
    kRunNext,
    // runnext if it is free (a plain store: thieves only ever clear it),
    // otherwise the tail: for spawns. Go displaces the occupant for spawns
    // too; goro does not, saving the exchange on the hottest path. A burst of
    // spawns then runs oldest first, which is also what FIFO order would do,
    // and fork-join code joins its children inline anyway.
    kRunNextIfFree,
    // runnext if it is free, otherwise the spawn stack (spawn_stack.hpp),
    // otherwise the local queue's tail: for go() (spawn() keeps
    // kRunNextIfFree, see start_goroutine).
    kSpawn,
    // The local queue's tail (yield, redistributing a global batch).
    kTail,
  };
  // Makes `entry` runnable from p's worker, spilling half of the local queue
  // to the global queue when it is full. Returns whether a goroutine landed
  // where other Ps can steal it (the local or global queue) rather than
  // only in runnext, which thieves leave alone until their last round:
  // only then is waking an idle P worth its cost.
  bool runq_put(P& p, Entry entry, Placement placement);
  // Makes `entry` runnable from a thread outside the runtime. Returns false
  // once the runtime stops accepting work.
  bool global_put_from_outside(Entry entry);
  // go()/spawn() from a thread outside the runtime: creates the goroutine
  // and queues it on the global queue, or returns nullptr, touching no
  // record, once the runtime stops accepting work (begin_stop). The check
  // and the record's birth share sched_mu_ with begin_stop, so the shutdown
  // sweep sees every record born before it and none after.
  G* start_from_outside(std::coroutine_handle<> root, TaskPromiseBase* promise, bool joinable);
  // Puts a yielding goroutine that was asked to give its P back onto the
  // global queue and wakes a worker.
  void yield_to_global(G* g) noexcept {
    global_.push(entry_for(g, /*claim=*/false));
    notify_work_available(current_p());
  }
  // A hint (relaxed): whether goroutines wait in the global queue.
  [[nodiscard]] bool global_queue_has_work() const noexcept { return global_.size_hint() != 0; }
  // Counts a goroutine from outside the runtime that the global queue took.
  void count_outside_start() noexcept { outside_started_.fetch_add(1, std::memory_order_relaxed); }
  // Step g-h of the handshake.
  void notify_work_available(P* p) noexcept;

  // Called when main finishes: stops accepting work and wakes every worker.
  void begin_stop() noexcept;
  [[nodiscard]] bool stopping() const noexcept {
    // Acquire: pairs with begin_stop's release; a worker that sees it stops.
    return stopping_.load(std::memory_order_acquire);
  }

  // For an inline join: wins the first run of `child` (the claim CAS) and
  // tombstones its claim entry if that is still in p's runnext or local
  // queue. Returns false when someone else started the child first.
  bool claim_for_inline_join(P& p, G* child) noexcept;

  // An exception nobody can read any more (a detached goroutine's, or one
  // a dropped JoinHandle never read) goes to `hook`, or, when it is empty,
  // is printed with the goroutine's id before std::abort().
  static void report_uncaught(const UncaughtExceptionHook& hook, std::uint64_t id,
                              std::exception_ptr error) noexcept;
  void report_uncaught(std::uint64_t id, std::exception_ptr error) noexcept {
    report_uncaught(config_.on_uncaught_exception, id, std::move(error));
  }
  [[nodiscard]] const UncaughtExceptionHook& uncaught_exception_hook() const noexcept {
    return config_.on_uncaught_exception;
  }

  // Timers (timers.cpp describes the protocol).
  void arm_timer(P& p, TimerNode* node);
  // Disarms `node` if it is still in `owner`'s heap (owner was loaded from
  // node->owner before the call).
  bool disarm_timer(P& owner, TimerNode* node) noexcept;
  // Makes `g` (woken by a timer) runnable on the current worker's P, at
  // the tail of its queue, and wakes a worker.
  void ready(P& p, G* g) noexcept;

  // The netpoller (io.cpp): makes a goroutine whose op completed runnable
  // on p (owner thread; the return value as runq_put's), and asks `owner` to
  // cancel the op with `user_data` in its ring (any thread).
  bool ready_io(P& p, G* g) noexcept;
  void post_cancel(P& owner, std::uint64_t user_data) noexcept;

  // goro::blocking (blocking.cpp).
  void submit_blocking(P& p, G* g, BlockingJob* job);
  // On the syscall thread, after the call: makes the goroutine runnable,
  // on its previous P if that P is idle, else through the global queue.
  void complete_blocking(BlockingJob* job) noexcept;

  [[nodiscard]] SchedulerStats stats() const noexcept;
  [[nodiscard]] std::vector<Stall> recent_stalls() noexcept;
  [[nodiscard]] unsigned procs() const noexcept { return static_cast<unsigned>(ps_.size()); }
  [[nodiscard]] PollerKind poller_kind() const noexcept { return poller_.kind; }
  // After run(): the deadlock report, empty if the run ended normally.
  [[nodiscard]] const std::string& deadlock_report() const noexcept { return deadlock_report_; }
  // Sysmon made `n` goroutines runnable whose I/O it rescued.
  void count_io_rescued(std::uint32_t n) noexcept {
    // Relaxed load and store: sysmon is the only writer; a statistic.
    io_rescued_.store(io_rescued_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // A goroutine was readied from a thread outside the runtime.
  void count_outside_ready() noexcept {
    // Relaxed: a count; the deadlock check only compares two readings.
    outside_readies_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  friend class Sysmon;

  // sysmon's view (sysmon.cpp, scheduler.cpp).
  // How many Ps are idle now (relaxed: a hint, for sysmon).
  [[nodiscard]] std::uint32_t idle_procs() const noexcept {
    return npidle_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool all_idle() const noexcept {
    return npidle_.load(std::memory_order_seq_cst) == ps_.size();
  }
  void begin_stall(std::size_t p, std::uint64_t goroutine, std::int64_t nanos);
  void end_stall(std::size_t p, std::int64_t nanos);
  // Wakes a worker if the global queue has work and nobody looks for it.
  bool kick_global_queue() noexcept;
  // Deadlock detection (deadlock.cpp). If nothing could wake any goroutine
  // now, stores in `activity` a count that changes whenever anything runs
  // or arrives, and returns true.
  bool quiescent(std::uint64_t& activity) noexcept;
  // Prints the report, stops the runtime, and makes run_main throw.
  void declare_deadlock() noexcept;
  [[nodiscard]] bool detect_deadlocks() const noexcept { return config_.detect_deadlocks; }
  [[nodiscard]] std::int64_t deadlock_grace_nanos() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(config_.deadlock_grace).count();
  }
  // An idle P became busy (npidle was decremented).
  void note_busy() noexcept { sysmon_.note_busy(); }

  struct Found {
    G* g = nullptr;
    bool inherit_time = false;
  };

  // Starting (Scheduler::start in scheduler.cpp): attaches P 0 on this
  // thread, starts the other workers, each of which attaches its P and
  // reports, then sysmon; returns P 0's saved timer slack. On any failure
  // it undoes everything and throws.
  int start(P& p0);
  // A worker thread's whole life: enter, report, run if the start
  // succeeded, leave.
  void worker_main(P& p);
  // Reports this worker's start (`error` null: attached) and waits for
  // the verdict: true to run, false to leave at once.
  bool report_started(std::exception_ptr error);
  // Binds this thread to p and attaches p's poller; returns the thread's
  // previous timer slack. On failure undoes the binding and throws.
  int enter_worker(P& p);
  // Runs goroutines until the runtime stops.
  void schedule(P& p);
  // Detaches p's poller and unbinds this thread (the inverse of enter).
  void leave_worker(P& p, int old_timer_slack) noexcept;
  Found find_runnable(P& p);
  G* decode(Entry entry) noexcept;
  Found local_get(P& p) noexcept;
  G* global_get(P& p, std::uint32_t max);
  G* steal_work(P& p);
  bool steal_runnext(P& victim, Entry& out) noexcept;
  // The owner takes `next` out of its runnext; false if a thief won it.
  bool take_runnext(P& p, Entry next) noexcept;
  // Owner only: the first goroutine still to run from p's local queue /
  // spawn stack (skipping tombstones and stale claims), or nullptr.
  G* pop_local_queue(P& p) noexcept;
  G* pop_spawn_stack(P& p) noexcept;
  // The entry bits that thieves must leave in p's queues now: kHandoffBit,
  // or none while sysmon has released them (P::release_handoffs; relaxed,
  // a hint).
  static Entry held_entry_bits(const P& p) noexcept {
    return p.release_handoffs.load(std::memory_order_relaxed) ? 0 : kHandoffBit;
  }
  Found spin_on_poller(P& p) noexcept;
  bool any_work_visible() const noexcept;
  void reset_spinning(P& p) noexcept;
  void wakep() noexcept;
  std::uint64_t next_goroutine_id(P& p) noexcept;
  // Runs the due timers of `victim` on this worker's P `p`; returns whether
  // any fired.
  bool run_timers(P& victim, P& p, std::int64_t now) noexcept;
  // Runs p's own due timers; no clock read when it has none.
  void check_timers(P& p) noexcept;
  // Runs every P's due timers; returns whether any fired.
  bool run_all_due_timers(P& p, std::int64_t now) noexcept;
  [[nodiscard]] std::int64_t earliest_timer() const noexcept;
  // A timer earlier than every sleeping worker's deadline was armed.
  void wake_for_timer(std::int64_t when) noexcept;
  // Sleeps an idle worker until woken or until the earliest timer.
  void idle_sleep(P& p) noexcept;
  // Takes p off the idle list if it is still on it (it woke by itself).
  void leave_idle(P& p) noexcept;
  // Takes idle worker `w` off the idle list, makes it spinning (it owns a
  // new nmspinning slot) and returns it for unpark().
  P* claim_idle_locked(P* w) noexcept ABSL_EXCLUSIVE_LOCKS_REQUIRED(sched_mu_);
  void drain_inbox(P& p) noexcept;
  // Waits until no blocking call of this runtime is in flight.
  void wait_for_blocking_calls() noexcept;
  void sweep_goroutines() noexcept;

  Config config_;
  const PollerChoice poller_;
  std::vector<std::unique_ptr<P>> ps_;
  std::vector<std::thread> threads_;
  // The start handshake (start / report_started): how many workers have
  // reported, the first error, and the verdict they wait for.
  enum class StartVerdict { kPending, kRun, kAbandon };
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  std::size_t start_reports_ = 0;
  std::exception_ptr start_error_;
  StartVerdict start_verdict_ = StartVerdict::kPending;
  std::vector<std::uint32_t> coprimes_;  // strides for the random steal order
  GlobalQueue global_{&entry_is_stale};

  // Protects the idle list and the stop decision (Go's sched.lock).
  Mutex sched_mu_;
  std::vector<P*> idle_ ABSL_GUARDED_BY(sched_mu_);
  bool accepting_outside_ ABSL_GUARDED_BY(sched_mu_) = true;

  alignas(64) std::atomic<std::uint32_t> nmspinning_{0};
  std::atomic<std::uint32_t> npidle_{0};
  std::atomic<bool> stopping_{false};
  alignas(64) std::atomic<std::uint64_t> id_source_{2};  // 1 is main
  // The deadline of the one idle worker that sleeps until the earliest
  // timer (0: none does; the others sleep without a deadline), and that
  // worker. Go's sched.pollUntil.
  alignas(64) std::atomic<std::int64_t> timer_sleeper_deadline_{0};
  std::atomic<P*> timer_sleeper_{nullptr};
  // Blocking calls submitted and not yet completed.
  std::atomic<std::int64_t> blocking_in_flight_{0};

  Sysmon sysmon_{*this};
  // Stalls sysmon saw (the most recent kStallHistory), and per P the index
  // of its stall in progress in stall_ids_ terms.
  static constexpr std::size_t kStallHistory = 64;
  // Goroutines listed by name in a deadlock report (the rest are counted).
  static constexpr std::size_t kDeadlockReportLimit = 100;
  mutable Mutex stall_mu_;
  std::vector<Stall> stalls_ ABSL_GUARDED_BY(stall_mu_);
  std::uint64_t stall_count_ ABSL_GUARDED_BY(stall_mu_) = 0;
  std::vector<std::uint64_t> open_stall_ ABSL_GUARDED_BY(stall_mu_);  // stall number per P
  // Counters for work submitted from outside the runtime.
  std::atomic<std::uint64_t> outside_started_{0};
  std::atomic<std::uint64_t> outside_wakeups_{0};
  std::atomic<std::uint64_t> outside_readies_{0};
  // sysmon rounds in which a P spread its handoffs (SchedulerStats);
  // written by sysmon only.
  std::atomic<std::uint64_t> spread_rounds_{0};
  // Goroutines sysmon readied by rescuing a busy P's I/O (SchedulerStats);
  // written by sysmon only.
  std::atomic<std::uint64_t> io_rescued_{0};
  // Written by sysmon before it stops the runtime; read after the workers
  // and sysmon are joined.
  std::string deadlock_report_;
};

// One goroutine's wait as the deadlock report prints it inside the
// brackets: "chan receive, 120 ms" (deadlock.cpp). A null reason prints as
// "parked", with no time.
[[nodiscard]] std::string describe_wait(const char* reason, std::int64_t waited_nanos);

}  // namespace goro::detail

#endif  // GORO_LIB_SCHEDULER_HPP_
