// lib/scheduler.hpp
//
// Defines: goro::detail::Scheduler (the scheduler core: the worker loop,
// the global queue, stealing, the idle list and the spin/park handshake).
//
// Goroutine scheduler, after Go's proc.go. The core depends on nothing
// above it: it runs on PCores (p_core.hpp), reaches each P's timers and
// poller through PMechanisms (p_core.hpp), which P's layer defines (p.cpp), and the
// mechanisms reach it back through scheduler_interface.hpp. Starting and
// stopping the worker threads, sysmon and the shutdown sweep belong to the
// runtime that owns a Scheduler and its Ps (runtime.hpp).
//
// Glossary
//   G  a goroutine: a root Task and the chain of Tasks it awaits, described
//      by a record (goroutine.hpp; the templates see its G part).
//   M  a worker thread. Unlike Go, each M is bound to one P for the life of
//      the runtime: an io_uring ring belongs to the thread that submits to
//      it, so the P that owns a ring cannot move between threads
//      (docs/ARCHITECTURE.md, "Why one thread per P"). Blocking calls go to
//      separate syscall threads that hold no P (syscall_threads.hpp).
//   P  a processor: the right to run goroutines. Its core part (PCore) has
//      a local run queue, a runnext slot, a spawn stack, a goroutine-record
//      cache and counters; P (p.hpp) adds a timer heap, a poller, sysmon's
//      probe and an allocator cache.
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
//   5. P 0 is always active (active_procs_ >= 1), so some P always runs
//      goroutines.
//
// Sharing the machine: standby Ps.
//   Each P's thread keeps its own ring (Why one thread per P), so the
//   goroutines of a connection come back to the P whose ring holds its
//   next read. When threads outside the runtime keep the machine's CPUs
//   busy (a load generator beside a server, other services), Ps beyond the
//   CPUs left take turns with them: a P whose thread waits for a CPU holds
//   the completions of its ring, and every hand-over between two Ps is a
//   sleep and a wakeup that the CPU pays twice. One busy P does the same
//   work without them. So sysmon (sysmon.hpp, step 7) sets active_procs_:
//   all Ps, or as many as the CPUs the other threads leave (at least 1).
//   (Only with a backend whose I/O follows the goroutine, io_uring: under
//   epoll an fd's events keep coming to the P that registered it, which a
//   standby P would answer with a hand-over per event; sysmon then keeps
//   every P active. PollerDriver::io_follows_the_goroutine.)
//   A P whose index is active_procs_ or more is on standby:
//     s1. wakep (step h) wakes only active Ps (the timer role's hand-on
//         and sysmon's preempt, which wake any idle P, may still wake a
//         standby one: it hands over what it finds and sleeps again);
//     s2. a standby P that finds goroutines on itself (its ring's
//         completions, its timers, its inbox) hands them to the global
//         queue and notifies (steps f-h), having given up its spinning
//         slot first (so h never counts on it to look); it steals nothing
//         and does not spin on its ring;
//     s3. it then goes idle (step 6) without counting the work queued
//         elsewhere as its own (a and d skip the other queues; its own
//         inbox still counts);
//     s4. raising the count (set_active_procs) is a submission: the store
//         of the new count is step f, then g-h wake an idle P that is now
//         active, and step d reads the count again after its fence, so a
//         P going idle on standby just as it becomes active either is
//         woken or sees the count and re-checks every queue.
//   A goroutine already running on a P that goes on standby runs on until
//   it parks. A connection's goroutine handed over runs on an active P, and
//   its next operation goes to that P's ring: after one round trip per
//   connection, a standby P's ring holds nothing and the P sleeps.
//   Why no work is stranded: what a standby P hands over is in the global
//   queue before its notify; an active P that is idle is woken (s1), one
//   that is busy takes it at step 1 or 3, one going idle sees it at d. If
//   the active Ps are held by goroutines that do not suspend, sysmon sees
//   the stall and makes every P active again, waking one (step 7).
//   Rejected: every P running while the kernel time-slices them with the
//   other threads (Go's way: a server beside its load generator then pays
//   sleeps and wakeups that one P does not; docs/PERFORMANCE.md, "Standby
//   Ps");
//   an active P reaping a standby P's ring (SINGLE_ISSUER and
//   DEFER_TASKRUN leave the completion work to the ring's own thread);
//   stopping the surplus Ps' threads (a P cannot move between threads, and
//   its ring's ops in flight still need it).
//
// Finding work (find_runnable), as findRunnable in proc.go:
//   0. This P's due timers (PMechanisms::run_due_timers) and the
//      goroutines other threads handed to it (its inbox); every
//      kPollInterval schedules, also the netpoller.
//   0b. A P on standby (above: Sharing the machine) polls its netpoller,
//      hands everything runnable on it to the global queue (waking an
//      active P, step h) and goes to step 6; it skips steps 1-5b.
//   1. Every 61st schedule tick, one G from the global queue first, so that
//      goroutines that keep readying each other cannot starve it.
//   2. runnext (the G inherits the current time slice: the tick is not
//      advanced), then the spawn stack and the local queue (local_get says
//      in which order).
//   3. The global queue: a batch of min(len/nprocs + 1, capacity/2).
//   4. The netpoller, without blocking (PMechanisms::poll_io): submits the
//      SQEs the goroutines queued since the last poll, in one enter, and
//      readies the goroutines of completed ops.
//   5. Steal, if this worker is spinning or fewer than half of the busy Ps
//      are spinning: 4 rounds over the other Ps in a random order with a
//      stride coprime to their number, taking half of a victim's queue,
//      else the oldest of its spawn stack; in the last round also its due
//      timers (PMechanisms::steal_due_timers) and its runnext, but runnext
//      only after giving the victim ~3 microseconds to run it itself.
//   5b. If this P's poller is cheap to poll (io_uring) and has ops in
//      flight, and the machine has a CPU to spare (the other busy Ps and
//      the threads runnable outside the runtime, as sysmon last counted
//      them, leave one free: machine_load.hpp), poll it for up to
//      kPollerSpinNanos first (PMechanisms::poller_spin_pays).
//   6. Go idle (the spin/park handshake below, steps a-e), then sleep in
//      the poller until woken or until the earliest timer
//      (PMechanisms::sleep_idle: timers.cpp has that handshake).
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
//     e. Otherwise sleep (PMechanisms::sleep_idle) until woken
//        (PMechanisms::wake: the poller's eventfd).
//   Submitting work (spawn, ready, yield-to-global, overflow, a P's inbox):
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
//   * Work-first LIFO deques (Cilk's, Chase-Lev's) as a P's only queue:
//     good fork-join locality but no FIFO fairness for goroutines that
//     were readied or yielded. goro keeps Go's FIFO queue for those
//     (run_queue.hpp) and gets fork-join locality from runnext, inline
//     joins and the spawn stack: a bounded Chase-Lev deque beside the FIFO
//     queue, for unstarted go() goroutines only, whose run of newest-first
//     takes is bounded by kSpawnChain (spawn_stack.hpp).
//   * Migrating Ps between threads as Go does at syscalls: impossible with
//     a ring per P; blocking work moves to syscall threads instead.
//   * A registry of live goroutines (a locked list) for shutdown: two
//     atomic read-modify-writes per spawn; type-stable records let the
//     shutdown sweep find live goroutines by walking the slabs instead.
//   * Calling the mechanisms through virtual functions of an interface
//     object: an indirect call at every schedule (step 0). PMechanisms'
//     functions are plain functions that the layer above defines, as
//     direct a call as when the core called the timers itself.
#ifndef GORO_LIB_SCHEDULER_HPP_
#define GORO_LIB_SCHEDULER_HPP_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <vector>

#include "global_queue.hpp"
#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/scheduler_stats.hpp"
#include "mutex.hpp"
#include "p_core.hpp"
#include "scheduler_interface.hpp"

namespace goro::detail {

class TaskPromiseBase;

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

class Scheduler {
 public:
  // A scheduler for `ps`, made and owned by the runtime, each with this
  // scheduler as its own.
  explicit Scheduler(std::vector<PCore*> ps);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The worker loop of p: runs goroutines until the runtime stops.
  void schedule(PCore& p);

  // A record for a new goroutine, from p's cache (or the shared pool when
  // p is null); what it must keep (a call) goes in before start_on.
  GoroutineRecord* allocate_goroutine(PCore* p) {
    return p != nullptr ? p->g_cache.allocate(*p->g_pool) : GoroutinePool::instance().allocate();
  }
  // On p's worker: makes `g` (from allocate_goroutine) the live goroutine
  // of `root` (promise `promise`) and queues it: into the runnext slot when
  // free, else onto the spawn stack, else the local queue's tail; then
  // wakes an idle P if none is looking for work.
  void start_on(PCore& p, GoroutineRecord* g, std::coroutine_handle<> root,
                TaskPromiseBase* promise, bool joinable);
  // start_on for a record from p's cache, which it returns: start_goroutine's
  // path for a goroutine with nothing boxed, started on p's worker while
  // p's scheduler is not stopping. Static, with p last, so that
  // start_goroutine passes its own arguments on unmoved (a tail call).
  static GoroutineRecord* start_new_on(std::coroutine_handle<> root, TaskPromiseBase* promise,
                                       bool joinable, PCore& p);
  // Makes `entry` runnable from p's worker, spilling half of the local queue
  // to the global queue when it is full. Returns whether a goroutine landed
  // where other Ps can steal it (see make_runnable).
  bool runq_put(PCore& p, Entry entry, Placement placement);
  // runq_put's slow path: the local queue is full.
  bool runq_put_full(PCore& p, Entry entry);
  // Where put_spawned put an entry.
  enum class SpawnPlace : std::uint8_t { kRunNext, kSpawnStack, kNowhere };
  // runq_put's first places for Placement::kSpawn: the runnext slot when
  // free, else the spawn stack; kNowhere when both are taken (the local
  // queue's tail comes next: runq_put_local).
  SpawnPlace put_spawned(PCore& p, Entry entry) noexcept;
  // runq_put's last place: the local queue's tail (runq_put_full when it
  // is full).
  bool runq_put_local(PCore& p, Entry entry);
  // Makes `entry` runnable from a thread outside the runtime. Returns false
  // once the runtime stops accepting work.
  bool global_put_from_outside(Entry entry);
  // go()/spawn() from a thread outside the runtime: creates the goroutine
  // and queues it on the global queue, or returns nullptr, touching no
  // record, once the runtime stops accepting work (begin_stop). The check
  // and the record's birth share sched_mu_ with begin_stop, so the shutdown
  // sweep sees every record born before it and none after.
  G* start_from_outside(std::coroutine_handle<> root, TaskPromiseBase* promise, bool joinable,
                        const BoxedCall* boxed_call);
  // Puts a goroutine yielding on p that was asked to give its P back onto
  // the global queue and wakes a worker.
  void yield_to_global(PCore& p, G* g) noexcept {
    global_.push(entry_for(g, /*claim=*/false));
    notify_work_available(&p);
  }
  // A hint (relaxed): whether goroutines wait in the global queue.
  [[nodiscard]] bool global_queue_has_work() const noexcept { return global_.size_hint() != 0; }
  // Steps g-h of the handshake; p is the submitter's P, nullptr outside
  // the runtime. Inline up to h's first test, which ends nearly every call
  // of a P that spawns while the others are busy.
  void notify_work_available(PCore* p) noexcept {
    if (idle_p_needs_waking()) wake_idle_for(p);
  }
  // Step g and h's first tests: whether an idle P must be woken for work
  // just queued (no P spins, and one is idle).
  bool idle_p_needs_waking() noexcept {
    // Step g: the enqueue (already done) must be ordered before the loads
    // of npidle/nmspinning below. The light half of the asymmetric fence
    // pairs with the idle worker's heavy half (6c).
    light_fence();
    // Relaxed loads after the fence: the fence pair is all the handshake
    // needs.
    return npidle_.load(std::memory_order_relaxed) != 0 &&
           nmspinning_.load(std::memory_order_relaxed) == 0;
  }
  // Step h past its first tests: makes an idle P spinning and wakes it.
  void wake_idle_for(PCore* p) noexcept;
  // make_runnable_at_home (scheduler_interface.hpp).
  void make_runnable_at_home(PCore& home, G* g) noexcept;
  // wake_idle_p (scheduler_interface.hpp).
  void wake_idle_p() noexcept;
  // leave_idle (scheduler_interface.hpp).
  void leave_idle(PCore& p) noexcept;

  // Called when main finishes: stops accepting work and wakes every worker.
  void begin_stop() noexcept;
  [[nodiscard]] bool stopping() const noexcept {
    // Acquire: pairs with begin_stop's release; a worker that sees it stops.
    return stopping_.load(std::memory_order_acquire);
  }

  // What claim_for_inline_join found (see there).
  enum class InlineJoin : std::uint8_t {
    kStartedElsewhere,  // someone else started the child first
    kClaimed,           // claimed, and nothing more to do before running it
    kClaimedUnlinkNext  // claimed: unlink_claimed_entry, then run it
  };

  // For an inline join: wins the first run of `child` (the claim CAS) and
  // looks where its claim entry, now dead, waits on p. Out of runnext it
  // goes at once; on p's spawn stack under a newer entry it stays until
  // that entry's join finds it (drop_dead_spawns), a pop or a thief drops
  // it: kClaimed. The newest entry on the spawn stack (with the dead ones
  // below it), an entry in p's local queue (tombstoned) or one elsewhere
  // go with unlink_claimed_entry, which the caller calls last, as a tail
  // call (so the common path of a join needs no stack frame):
  // kClaimedUnlinkNext. Inline: every join runs it.
  InlineJoin claim_for_inline_join(PCore& p, G* joined) noexcept {
    GoroutineRecord* child = record_of(joined);
    std::uint32_t unclaimed = static_cast<std::uint32_t>(Claim::kUnclaimed);
    // Acquire on success: pairs with init_goroutine's release store. The
    // handle pins the record, so the claim word is about this very child
    // (a queue entry may be stale, the claim word never is). The relaxed
    // load first spares a child already started the locked instruction.
    if (child->claim.load(std::memory_order_relaxed) != unclaimed ||
        !child->claim.compare_exchange_strong(
            unclaimed, static_cast<std::uint32_t>(Claim::kClaimed), std::memory_order_acquire,
            std::memory_order_relaxed)) {
      return InlineJoin::kStartedElsewhere;
    }
    // The entry we just made stale: where does it wait?
    const Entry entry = entry_for(child, /*claim=*/true);
    if (p.runnext.load(std::memory_order_relaxed) == entry) {
      // A plain store is safe: only this thread stores non-zero values, so
      // the slot holds `entry` or, if a thief took it meanwhile, 0.
      p.runnext.store(0, std::memory_order_relaxed);
      return InlineJoin::kClaimed;
    }
    // Relaxed: the hint is written by the spawning P's owner; a hint naming
    // this P was written by this very thread (see GoroutineRecord::queued_on).
    Entry newest;
    if (child->queued_on.load(std::memory_order_relaxed) == &p.spawned &&
        !(p.spawned.peek(0, newest) && newest == entry)) {
      return InlineJoin::kClaimed;  // under a newer entry, or taken by a thief
    }
    return InlineJoin::kClaimedUnlinkNext;
  }

  // After claim_for_inline_join's kClaimedUnlinkNext, on the same P:
  // drops the child's dead entry where it can (see there).
  void unlink_claimed_entry(PCore& p, G* joined) noexcept;

  // Counters for work that arrives from outside the runtime. Relaxed: the
  // deadlock check only compares two readings, the stats only add up.
  void count_outside_start() noexcept { outside_started_.fetch_add(1, std::memory_order_relaxed); }
  void count_outside_ready() noexcept { outside_readies_.fetch_add(1, std::memory_order_relaxed); }

  // What sysmon asks (through the runtime's SysmonView).
  // How many Ps are idle now (relaxed: a hint).
  [[nodiscard]] std::uint32_t idle_procs() const noexcept {
    return npidle_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool all_idle() const noexcept {
    return npidle_.load(std::memory_order_seq_cst) == ps_.size();
  }
  // p's goroutine has held it too long: asks it to give the P back at its
  // next chance, and gets an idle worker to take what waits behind it (its
  // queue, runnext, timers).
  void preempt(PCore& p) noexcept;
  // Wakes a worker if the global queue has work and nobody looks for it.
  bool kick_global_queue() noexcept;
  // Sysmon, step 7: Ps 0 .. active - 1 run goroutines, the others stand by
  // (file comment, "Sharing the machine"); 1 <= active <= procs. Raising it
  // wakes an idle P for the work the standby Ps left.
  void set_active_procs(std::uint32_t active) noexcept;
  [[nodiscard]] std::uint32_t active_procs() const noexcept {
    // Relaxed: a hint (see active_procs_).
    return active_procs_.load(std::memory_order_relaxed);
  }

  // The deadlock check (deadlock.cpp), with every P idle: whether no
  // goroutine waits in any run queue, runnext, spawn stack, inbox or the
  // global queue; if so adds to `activity` a count that moves whenever a
  // goroutine runs or arrives from outside.
  [[nodiscard]] bool nothing_runnable(std::uint64_t& activity) const noexcept;
  // After the workers exited: drops every queue entry (the records say
  // what is alive; the sweep destroys it).
  void drop_queued() noexcept;

  // The core's counters summed over the Ps.
  [[nodiscard]] SchedulerStats stats() const noexcept;
  [[nodiscard]] unsigned procs() const noexcept { return static_cast<unsigned>(ps_.size()); }

 private:
  // start_new_on's paths out of line, each its last call (a tail call),
  // so that its common path needs no stack frame: the P's record cache
  // was empty; runnext and the spawn stack were taken; an idle P must be
  // woken. Each returns `g` (the record started).
  GoroutineRecord* start_new_on_refilled(PCore& p, std::coroutine_handle<> root,
                                         TaskPromiseBase* promise, bool joinable);
  GoroutineRecord* queue_locally_and_notify(PCore& p, GoroutineRecord* g, Entry entry);
  GoroutineRecord* wake_idle_and_return(PCore& p, GoroutineRecord* g) noexcept;
  // start_on's body, inline in start_on and start_new_on_refilled.
  [[gnu::always_inline]] inline void start_here(PCore& p, GoroutineRecord* g,
                                                std::coroutine_handle<> root,
                                                TaskPromiseBase* promise, bool joinable);
  // Fills in `g`'s fields for the goroutine of `root` and marks it live;
  // the release store of its claim word publishes them (see there).
  void init_goroutine(PCore* p, GoroutineRecord* g, std::coroutine_handle<> root,
                      TaskPromiseBase* promise, bool joinable) noexcept;

  struct Found {
    G* g = nullptr;
    bool inherit_time = false;
  };

  Found find_runnable(PCore& p);
  G* decode(Entry entry) noexcept;
  Found local_get(PCore& p) noexcept;
  G* global_get(PCore& p, std::uint32_t max);
  G* steal_work(PCore& p);
  bool steal_runnext(PCore& victim, Entry& out) noexcept;
  // The owner takes `next` out of its runnext; false if a thief won it.
  bool take_runnext(PCore& p, Entry next) noexcept;
  // Owner only: the first goroutine still to run from p's local queue /
  // spawn stack (skipping tombstones and stale claims), or nullptr.
  G* pop_local_queue(PCore& p) noexcept;
  G* pop_spawn_stack(PCore& p) noexcept;
  // unlink_claimed_entry, when the entry claim_for_inline_join made dead is
  // the newest on p's spawn stack: drops it and the dead ones right below.
  void drop_dead_spawns(PCore& p) noexcept;
  // The entry bits that thieves must leave in p's queues now: kHandoffBit,
  // or none while sysmon has released them (PCore::release_handoffs;
  // relaxed, a hint).
  static Entry held_entry_bits(const PCore& p) noexcept {
    return p.release_handoffs.load(std::memory_order_relaxed) ? 0 : kHandoffBit;
  }
  Found spin_on_poller(PCore& p) noexcept;
  [[nodiscard]] bool on_standby(const PCore& p) const noexcept { return p.index >= active_procs(); }
  // Step 0b on standby P p: polls, hands what is runnable on p to the
  // global queue and notifies; returns whether it handed anything over.
  bool hand_over(PCore& p);
  bool any_work_visible() const noexcept;
  void reset_spinning(PCore& p) noexcept;
  std::uint64_t next_goroutine_id(PCore& p) noexcept;
  // Takes idle worker `w` off the idle list, makes it spinning (it owns a
  // new nmspinning slot) and returns it for PMechanisms::wake.
  PCore* claim_idle_locked(PCore* w) noexcept ABSL_EXCLUSIVE_LOCKS_REQUIRED(sched_mu_);
  // Makes the goroutines in p's inbox runnable on p.
  void drain_inbox(PCore& p) noexcept;

  const std::vector<PCore*> ps_;
  std::vector<std::uint32_t> coprimes_;  // strides for the random steal order
  GlobalQueue global_{&entry_is_stale};

  // Protects the idle list and the stop decision (Go's sched.lock).
  Mutex sched_mu_;
  std::vector<PCore*> idle_ ABSL_GUARDED_BY(sched_mu_);
  bool accepting_outside_ ABSL_GUARDED_BY(sched_mu_) = true;

  alignas(64) std::atomic<std::uint32_t> nmspinning_{0};
  std::atomic<std::uint32_t> npidle_{0};
  std::atomic<bool> stopping_{false};
  // Written by sysmon only (step 7), read by every worker at each trip
  // through find_runnable and by wakep. Relaxed everywhere: a P that reads
  // a stale count runs a few more goroutines, or hands a few over, before
  // it sees the new one; no data is published through it (s2's hand-over
  // goes through the global queue's lock), and where a wakeup depends on
  // it (s4) the handshake's fences order it, as they order a queue's tail.
  std::atomic<std::uint32_t> active_procs_;
  alignas(64) std::atomic<std::uint64_t> id_source_{2};  // 1 is main
  // Counters for work submitted from outside the runtime.
  std::atomic<std::uint64_t> outside_started_{0};
  std::atomic<std::uint64_t> outside_wakeups_{0};
  std::atomic<std::uint64_t> outside_readies_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_SCHEDULER_HPP_
