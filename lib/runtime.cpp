// lib/runtime.cpp
//
// The entry points that public templates call (goro/detail/goroutine.hpp,
// goro/run.hpp, goro/go.hpp): starting goroutines, joining them, yielding,
// finishing, and run() itself, with the process-wide "which runtime is
// running" state.
//
// Joining (the rendezvous in G::join_state), step by step:
//   1. spawn: the child's join state is kJoinRunning, its claim kUnclaimed
//      (a release store: a stale entry that wins the claim sees the
//      record), and its claim entry goes to the spawner's runnext if that
//      is free, otherwise onto its spawn stack, otherwise to the local
//      queue's tail (recording which, for step 2); then the submitter's
//      half of the spin/park handshake (scheduler.hpp, steps f-h).
//   2. co_await handle, child not started: the joiner wins the claim CAS
//      and takes the child's entry off its P if it can (runnext cleared;
//      on the spawn stack, the dead entries at its newest end dropped once
//      the child's is the newest; in the local queue, tombstoned). Then it
//      runs the child inline, as a Task it awaits: the child's promise
//      names no goroutine and continues at the joiner, the join state
//      names the joiner, and this thread runs as the child's goroutine
//      (switch_to) until the child's final suspend transfers back and
//      release_finished switches to the joiner again. So a fork-join tree
//      runs depth first on one thread with no queue traffic and no
//      finishing exchange, while idle Ps steal the siblings (the lazy-task
//      trick of TBB and rayon; Go's FIFO queues are untouched for
//      everything else). Memory grows with the tree's depth, not its size.
//      A child joined inline that parks parks as itself: it is resumed
//      from a queue like any goroutine, and its final suspend still
//      transfers to the joiner, on whatever thread it finishes.
//      Rejected: joiners that always park (breadth-first fork-join): a
//      10-ary tree of a million goroutines would have most of them alive,
//      and their frames allocated, at once. Finishing an inline child
//      through finish_goroutine (its join state exchanged, the joiner
//      resumed from the record): the same transfer with an atomic
//      exchange, or a test of where it runs, on every join.
//   3. co_await handle, child started elsewhere: CAS join state
//      kJoinRunning -> joiner (release: publishes joiner->resume) and park;
//      if the CAS fails the child is done and the joiner continues.
//   4. A child started by the scheduler finishes (finish_goroutine):
//      exchange join state -> kJoinDone (acq_rel). The old value says what
//      to do: a waiter is resumed at once by symmetric transfer on this
//      thread (it inherits the time slice, like a runnext handoff);
//      kJoinDetached means nobody will read the result: free everything;
//      kJoinRunning: the handle will read the result later.
//   5. The handle reads the result and frees the frame and record, or, if
//      dropped unread, exchanges kJoinDetached and frees them if the child
//      had already finished.
// Exactly one of steps 4 and 5 frees: whichever exchange comes second (a
// child joined inline is freed by step 5 alone).
#include "runtime.hpp"

#include <csignal>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "alloc/page_heap.hpp"
#include "goro/go.hpp"
#include "goro/memory.hpp"
#include "goro/run.hpp"
#include "goro/scheduler_stats.hpp"
#include "runtime_state.hpp"
#include "thread_census.hpp"

namespace goro::detail {

constinit thread_local P* tls_p = nullptr;
constinit thread_local G* tls_g = nullptr;

namespace {

// Guards which runtime is running, for threads outside it (go/spawn from
// outside, scheduler_stats) and for run() itself. Never taken on a hot path.
Mutex runtime_mu;
Runtime* running ABSL_GUARDED_BY(runtime_mu) = nullptr;
// Whether a run() holds the process's one runtime slot: set before its
// Runtime is built, cleared after it is destroyed. `running` is set only
// in between, while its scheduler accepts goroutines.
bool runtime_reserved ABSL_GUARDED_BY(runtime_mu) = false;
SchedulerStats last_run_stats ABSL_GUARDED_BY(runtime_mu);
std::vector<Stall> last_run_stalls ABSL_GUARDED_BY(runtime_mu);

unsigned resolve_procs(const Config& config) {
  if (config.procs != 0) return config.procs;
  if (const char* env = std::getenv("GORO_MAXPROCS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0 && n <= 1 << 16) return static_cast<unsigned>(n);
  }
  return available_procs();
}

void validate(const Config& config) {
  const unsigned c = config.local_run_queue_capacity;
  if (c != 0 && (c < 4 || c > SchedulerTuning::kLocalQueueCapacity || (c & (c - 1)) != 0)) {
    throw std::invalid_argument(
        "goro::Config::local_run_queue_capacity must be 0 or a power of two in [4, 256]");
  }
  // Signals 32 up to SIGRTMIN belong to the C library (its threads' own).
  const int s = config.io_rescue_signal;
  if (s != 0 &&
      (s < 1 || s > SIGRTMAX || s == SIGKILL || s == SIGSTOP || (s > SIGSYS && s < SIGRTMIN))) {
    throw std::invalid_argument(
        "goro::Config::io_rescue_signal must be 0 or a signal a handler can be installed for");
  }
}

}  // namespace

// This thread is about to transfer into `g` (an inline child, or a joiner
// its child resumes). Relaxed: sysmon's view of who runs, a hint.
inline void switch_to(PCore* p, G* g) noexcept {
  tls_g = g;
  p->running_goroutine.store(g->id, std::memory_order_relaxed);
}

namespace {

// recycle_goroutine's first step: the record holds no goroutine any more.
inline void mark_free(GoroutineRecord* g) noexcept {
  g->live.store(false, std::memory_order_relaxed);  // see GoroutineRecord::live
  g->root = nullptr;
  g->root_promise = nullptr;
  // Relaxed: the record was claimed (kClaimed) since it started, so a stale
  // claim entry already fails; kFree just documents the state.
  g->claim.store(static_cast<std::uint32_t>(Claim::kFree), std::memory_order_relaxed);
}

}  // namespace

void recycle_goroutine(PCore* p, G* goroutine) noexcept {
  GoroutineRecord* g = record_of(goroutine);
  mark_free(g);
  if (p != nullptr) {
    p->g_cache.free(*p->g_pool, g);
  } else {
    GoroutinePool::instance().free(g);
  }
}

G* current_goroutine() noexcept { return tls_g; }

void throw_not_in_goroutine(const char* what) {
  throw std::logic_error(std::string(what) +
                         ": must wait, but not called from a goroutine (no goroutine to park)");
}

namespace {

// start_goroutine refused a goroutine: its root, then its call, go now.
void destroy_refused(std::coroutine_handle<> root, const BoxedCall* boxed_call) noexcept {
  root.destroy();
  if (boxed_call != nullptr) {
    void* storage = boxed_call->box;  // what a record's inline call would hold
    boxed_call->destroy(&storage);
  }
}

// start_goroutine past its common case: a boxed call, a stopping
// scheduler, or a thread outside the runtime.
[[gnu::noinline]] G* start_goroutine_otherwise(std::coroutine_handle<> root,
                                               TaskPromiseBase* promise, bool joinable,
                                               const BoxedCall* boxed_call) {
  if (P* p = tls_p) {
    Scheduler& s = p->scheduler;
    if (s.stopping()) {
      destroy_refused(root, boxed_call);
      return nullptr;
    }
    GoroutineRecord* g = s.allocate_goroutine(p);
    if (boxed_call != nullptr) attach_boxed_call(*g, *boxed_call);
    s.start_on(*p, g, root, promise, joinable);
    return g;
  }
  G* g = nullptr;
  bool no_runtime = false;
  try {
    // Under the lock the scheduler cannot go away; start_from_outside
    // refuses once it stops accepting work (see there).
    MutexLock lock(runtime_mu);
    if (running == nullptr) {
      no_runtime = true;
    } else {
      g = running->scheduler().start_from_outside(root, promise, joinable, boxed_call);
    }
  } catch (...) {
    destroy_refused(root, boxed_call);  // no record for it (out of memory)
    throw;
  }
  if (g == nullptr) {
    destroy_refused(root, boxed_call);  // outside the lock: its destructors may call go()
    if (no_runtime) {
      throw std::logic_error("goro::go/spawn: no runtime is running (start one with goro::run)");
    }
  }
  return g;
}

}  // namespace

G* start_goroutine(std::coroutine_handle<> root, TaskPromiseBase* promise, bool joinable,
                   const BoxedCall* boxed_call) {
  // The common case, from a goroutine with nothing boxed, is one tail call
  // (every go() and spawn() of a Task comes here).
  P* p = tls_p;
  if (p != nullptr && boxed_call == nullptr && !p->scheduler.stopping()) [[likely]]
    return Scheduler::start_new_on(root, promise, joinable, *p);
  return start_goroutine_otherwise(root, promise, joinable, boxed_call);
}

ReservedGoroutine reserve_goroutine() {
  P* p = tls_p;
  if (p == nullptr || p->scheduler.stopping()) return {};
  GoroutineRecord* g = p->scheduler.allocate_goroutine(p);  // inline: from p's cache
  return {g, g->inline_call};
}

void unreserve_goroutine(G* g) noexcept { recycle_goroutine(tls_p, g); }

G* start_reserved_goroutine(G* goroutine, std::coroutine_handle<> root, TaskPromiseBase* promise,
                            bool joinable, InlineCallDestroyer destroy_call) {
  P* p = tls_p;
  GoroutineRecord* g = record_of(goroutine);
  g->destroy_inline_call = destroy_call;
  p->scheduler.start_on(*p, g, root, promise, joinable);
  return g;
}

std::coroutine_handle<> finish_goroutine(G* goroutine) noexcept {
  GoroutineRecord* g = record_of(goroutine);
  P* p = tls_p;
  Scheduler& s = p->scheduler;
  Runtime& runtime = p->runtime;
  bump(p->stats.goroutines_finished);
  if (g->is_main) {
    // run() reads the result after joining the workers; begin_stop's
    // release store and the thread joins publish it.
    g->join_state.store(kJoinDone, std::memory_order_relaxed);
    s.begin_stop();
    return std::noop_coroutine();
  }
  if (!g->joinable) {
    if (const std::exception_ptr& error = g->root_promise->exception()) {
      runtime.report_uncaught(g->id, error);
    }
    destroy_root(*g);  // we are in its final suspend: allowed
    recycle_goroutine(p, g);
    return std::noop_coroutine();
  }
  // Release: publishes the result to the joiner. Acquire: if a waiter
  // registered, we read its resume point (written before its release CAS).
  const std::uintptr_t previous = g->join_state.exchange(kJoinDone, std::memory_order_acq_rel);
  if (previous == kJoinRunning) return std::noop_coroutine();
  if (previous == kJoinDetached) {
    // Its handle was dropped: nobody can read an exception any more.
    if (const std::exception_ptr& error = g->root_promise->exception()) {
      runtime.report_uncaught(g->id, error);
    }
    destroy_root(*g);
    recycle_goroutine(p, g);
    return std::noop_coroutine();
  }
  G* waiter = reinterpret_cast<G*>(previous);
  switch_to(p, waiter);
  return waiter->resume;
}

namespace {

// join_suspend's last step when the child's entry must still be unlinked
// (Scheduler::claim_for_inline_join): a tail call, out of line, so that
// join_suspend's common path calls nothing and needs no stack frame.
[[gnu::noinline]] std::coroutine_handle<> unlink_then_run(P* p, GoroutineRecord* child) noexcept {
  p->scheduler.unlink_claimed_entry(*p, child);
  return child->root;
}

}  // namespace

std::coroutine_handle<> join_suspend(G* joined, std::coroutine_handle<> awaiting) {
  GoroutineRecord* child = record_of(joined);
  G* self = tls_g;
  if (self == nullptr) [[unlikely]]
    throw_not_in_goroutine("goro::JoinHandle (co_await)");
  P* p = tls_p;
  note_wait(self, "join");
  const Scheduler::InlineJoin inline_join = p->scheduler.claim_for_inline_join(*p, child);
  if (inline_join != Scheduler::InlineJoin::kStartedElsewhere) {
    // Inline join (step 2): the child runs as a Task awaited by this
    // goroutine, whose final suspend transfers straight back to
    // `awaiting`; release_finished switches back to us. Relaxed: the join
    // state is read by whoever runs `awaiting`, on this thread or, if the
    // child parks, after the queues that carry it.
    TaskPromiseBase* promise = child->root_promise;
    promise->set_goroutine(nullptr);
    promise->set_continuation(awaiting);
    child->join_state.store(reinterpret_cast<std::uintptr_t>(self), std::memory_order_relaxed);
    bump(p->stats.inline_joins);
    switch_to(p, child);
    if (inline_join == Scheduler::InlineJoin::kClaimedUnlinkNext) return unlink_then_run(p, child);
    return child->root;
  }
  self->resume = awaiting;
  std::uintptr_t running_state = kJoinRunning;
  // Release on success: publishes self->resume to the finishing child.
  // Acquire on failure: the child is done; its result must be visible.
  if (child->join_state.compare_exchange_strong(
          running_state, reinterpret_cast<std::uintptr_t>(self), std::memory_order_acq_rel,
          std::memory_order_acquire)) {
    return std::noop_coroutine();  // park; the child resumes us
  }
  return awaiting;
}

void drop_join_handle(G* joined) noexcept {
  GoroutineRecord* child = record_of(joined);
  // Acquire: if the child finished, its frame is ours to destroy.
  std::uintptr_t state = child->join_state.load(std::memory_order_acquire);
  while (state != kJoinDone) {
    // Release on success: the child, finishing, sees we are gone and frees
    // itself. Acquire on failure: it may have just finished (as above).
    if (child->join_state.compare_exchange_weak(state, kJoinDetached, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
      return;
    }
  }
  // Finished: the record is ours. kJoinDone stays, so that a shutdown sweep
  // walking the records on another thread now (this may be a thread outside
  // the runtime) leaves it to us.
  // Its result was never read: an exception goes to the hook of the runtime
  // this thread works for, or of the one running now (an outside thread).
  // Once that runtime stops (the shutdown sweep destroys the goroutine that
  // held the handle, or run() returned) nothing is reported: the program is
  // ending. A goroutine destroyed by the sweep has no promise (and no
  // exception).
  if (child->root_promise != nullptr && child->root_promise->exception()) {
    std::exception_ptr error = child->root_promise->exception();
    if (P* p = tls_p) {
      p->runtime.report_uncaught(child->id, std::move(error));
    } else {
      UncaughtExceptionHook hook;
      bool report = false;
      {
        MutexLock lock(runtime_mu);
        if (running != nullptr && !running->scheduler().stopping()) {
          hook = running->uncaught_exception_hook();
          report = true;
        }
      }
      if (report) Runtime::report_uncaught(hook, child->id, std::move(error));  // unlocked
    }
  }
  if (child->root) destroy_root(*child);
  recycle_goroutine(tls_p, child);
}

namespace {

// release_finished's paths that keep the general order (the root frame,
// then the inline call it may read, then the record), or that hand a
// batch of records back after the destroy; out of line, as tail calls.
[[gnu::noinline]] void release_in_order(P* p, GoroutineRecord* child) noexcept {
  if (child->root) destroy_root(*child);
  recycle_goroutine(p, child);
}

[[gnu::noinline]] void destroy_then_return_batch(P* p, std::coroutine_handle<> root) noexcept {
  if (root) root.destroy();
  p->g_cache.keep_full_batch(*p->g_pool);
}

}  // namespace

void release_finished(G* finished) {
  GoroutineRecord* child = record_of(finished);
  P* p = tls_p;
  // A child joined inline (its promise names no goroutine) finished as a
  // Task awaited by its joiner, without finish_goroutine: this thread runs
  // the joiner again, and the child is counted here. The join state names
  // the joiner (join_suspend). The root promise is null only when the
  // shutdown sweep destroyed the child's frames, and then nobody awaits.
  if (child->root_promise != nullptr && child->root_promise->goroutine() == nullptr) {
    // Relaxed: join_suspend stored it on this goroutine's own path (this
    // thread, or before a park whose queue hand-over orders it).
    switch_to(p, reinterpret_cast<G*>(child->join_state.load(std::memory_order_relaxed)));
    bump(p->stats.goroutines_finished);
  }
  if (child->destroy_inline_call != nullptr || p == nullptr) [[unlikely]]
    return release_in_order(p, child);
  // Nothing in the record outlives the goroutine (no inline call): the
  // record goes back first and the frame's destroy is the last call, a
  // tail call that returns straight to the joiner. A destructor that the
  // destroy runs and that starts a goroutine may take this record: the
  // frame no longer refers to it.
  const std::coroutine_handle<> root = child->root;
  mark_free(child);
  if (p->g_cache.push(child)) [[unlikely]]
    return destroy_then_return_batch(p, root);
  if (root) root.destroy();
}

void yield_suspend(std::coroutine_handle<> awaiting) {
  G* g = tls_g;
  if (g == nullptr) [[unlikely]]
    throw_not_in_goroutine("goro::yield");
  P* p = tls_p;
  g->resume = awaiting;
  bump(p->stats.yields);
  // After the put another P may steal and resume the goroutine at once:
  // nothing of it is touched afterwards.
  if (p->preempt.load(std::memory_order_relaxed) || p->scheduler.global_queue_has_work()) {
    // sysmon saw it hog the P, or goroutines wait in the global queue (from
    // outside threads, or spilled): send it through the global queue, as
    // Go's Gosched always does, so that this P takes a batch of what waits
    // there before it comes back. Otherwise the local tail is enough and
    // needs no lock.
    p->preempt.store(false, std::memory_order_relaxed);
    p->scheduler.yield_to_global(*p, g);
    return;
  }
  p->scheduler.runq_put(*p, entry_for(g, /*claim=*/false), Placement::kTail);
}

namespace {

// ready_goroutine from a thread outside the runtime: out of line, so that
// the worker's path keeps its registers.
[[gnu::noinline]] void ready_from_outside(G* g) noexcept {
  // Under the lock, as start_goroutine: the scheduler cannot go away.
  MutexLock lock(runtime_mu);
  if (running == nullptr) return;
  Scheduler& s = running->scheduler();
  if (s.global_put_from_outside(entry_for(g, /*claim=*/false))) {
    s.count_outside_ready();
    s.notify_work_available(nullptr);
  }
}

}  // namespace

void ready_goroutine(G* g) noexcept {
  if (P* p = tls_p) {
    // Wake an idle P only if the put left a stealable goroutine (runnext's
    // old occupant, pushed to the queue), as Tokio does for its LIFO slot.
    // A goroutine alone in runnext runs as soon as the current one parks
    // (a channel handoff's receiver usually parks at once); waking a P that
    // may not steal it costs a wakeup and, to park again, a fence, for
    // nothing. If the current goroutine instead runs on for long, sysmon's
    // stall check wakes an idle P, which takes runnext in its last steal
    // round.
    // The handoff bit keeps g near its partner, this goroutine: see
    // kHandoffBit. While sysmon sees this P's goroutines compute for
    // microseconds between handoffs (PCore::spread_readies), g gets no bit:
    // like any goroutine it wakes an idle P when displaced from runnext,
    // and thieves may take it, so that a second core shares the work.
    // Relaxed: a hint written by sysmon; a stale value costs one round.
    const bool spread = p->spread_readies.load(std::memory_order_relaxed);
    // Counted for sysmon, which stops spreading a P that readies no
    // partners (SpreadProbe::handoffs). Relaxed load and store: only the
    // thread that holds p writes it.
    std::atomic<std::uint32_t>& handoffs = p->spread_probe.handoffs;
    handoffs.store(handoffs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const Entry entry = entry_for(g, /*claim=*/false) | (spread ? 0 : kHandoffBit);
    if (p->scheduler.runq_put(*p, entry, Placement::kRunNext)) {
      p->scheduler.notify_work_available(p);
    }
    return;
  }
  ready_from_outside(g);
}

void ready_goroutine_to_compete(G* g) noexcept {
  P* p = tls_p;
  if (p == nullptr) {
    ready_from_outside(g);
    return;
  }
  p->scheduler.runq_put(*p, entry_for(g, /*claim=*/false), Placement::kRunNext);
  p->scheduler.notify_work_available(p);
}

void run_main(std::coroutine_handle<> main, TaskPromiseBase* promise, const Config& config) {
  // 1. Reserve the process's runtime slot before touching anything: the
  // Runtime's constructor resets process-wide state (the active poller
  // kind, the epoll registration epoch) that a running runtime relies on.
  bool refused = false;
  {
    MutexLock lock(runtime_mu);
    refused = runtime_reserved || tls_p != nullptr;
    if (!refused) runtime_reserved = true;
  }
  if (refused) {
    main.destroy();  // outside the lock: its destructors may call go()
    throw std::logic_error("goro::run: a runtime is already running in this process");
  }
  // Released last, once the runtime is destroyed (declared first, so
  // destroyed after it): a later run() finds nothing of this one.
  absl::Cleanup release_reservation = [] {
    MutexLock lock(runtime_mu);
    runtime_reserved = false;
  };
  // This thread serves the runtime (it becomes P 0's worker) until run()
  // returns: the deadlock detector does not count it as a possible waker.
  RuntimeThreadMark mark;
  // 2. Build the runtime (the Ps and their pollers).
  std::unique_ptr<Runtime> runtime;
  try {
    validate(config);
    runtime = std::make_unique<Runtime>(config, resolve_procs(config));
  } catch (...) {
    main.destroy();
    throw;
  }
  {
    MutexLock lock(runtime_mu);
    running = runtime.get();
  }
  GoroutinePool& pool = GoroutinePool::instance();
  GoroutineRecord* g = pool.allocate();
  g->root = main;
  g->resume = main;
  g->root_promise = promise;
  g->id = 1;
  g->joinable = false;
  g->is_main = true;
  g->live.store(true, std::memory_order_relaxed);
  g->join_state.store(kJoinRunning, std::memory_order_relaxed);
  g->claim.store(static_cast<std::uint32_t>(Claim::kClaimed), std::memory_order_relaxed);
  promise->set_goroutine(g);
  // 3. Run. A runtime that cannot start throws here with nothing running;
  // main never ran.
  try {
    runtime->run(g);
  } catch (...) {
    {
      MutexLock lock(runtime_mu);
      running = nullptr;
    }
    g->root = nullptr;
    recycle_goroutine(nullptr, g);
    main.destroy();
    throw;
  }
  {
    MutexLock lock(runtime_mu);
    last_run_stats = runtime->stats();
    last_run_stalls = runtime->recent_stalls();
    running = nullptr;
  }
  std::string deadlock_report = runtime->deadlock_report();
  runtime.reset();
  if (!deadlock_report.empty()) {
    // Main never finished: its frame (and every frame it awaits) goes now,
    // after the other goroutines', as a normal shutdown would order it.
    g->root = nullptr;
    recycle_goroutine(nullptr, g);
    destroy_frame_chain(main, *promise);  // in constant stack (task.hpp)
    throw goro::Deadlock(deadlock_report);
  }
  // The frame stays: run() reads the result and destroys it.
  g->root = nullptr;
  recycle_goroutine(nullptr, g);
}

void Runtime::report_uncaught(const UncaughtExceptionHook& hook, std::uint64_t id,
                              std::exception_ptr error) noexcept {
  if (hook) {
    hook(id, error);
    return;
  }
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "goroutine %llu: uncaught exception: %s\n",
               static_cast<unsigned long long>(id), what.c_str());
  std::fflush(stderr);
  std::abort();
}

SchedulerStats Runtime::stats() const noexcept {
  SchedulerStats s = scheduler_.stats();
  s.stalls = sysmon_.stall_count();
  s.spread_rounds = sysmon_.spread_rounds();
  s.io_rescued = sysmon_.io_rescued();
  s.blocking_queue_length = blocking_calls_.queued();
  return s;
}

}  // namespace goro::detail

namespace goro {

void go(Task<void> task) {
  auto root = task.release();
  detail::start_goroutine(root, &root.promise(), /*joinable=*/false);
}

std::size_t release_memory() {
  // This P's caches first (other Ps keep theirs: they are bounded), then
  // whole free slabs of goroutine records, then every free page.
  if (detail::P* p = detail::tls_p) {
    p->frame_cache.flush();
    p->g_cache.flush(detail::GoroutinePool::instance());
  }
  std::size_t released = detail::GoroutinePool::instance().release_free_slabs();
  released += detail::alloc::PageHeap::instance().scavenge(0);
  return released;
}

std::vector<Stall> recent_stalls() {
  if (detail::P* p = detail::tls_p) return p->runtime.recent_stalls();
  detail::MutexLock lock(detail::runtime_mu);
  if (detail::running != nullptr) return detail::running->recent_stalls();
  return detail::last_run_stalls;
}

SchedulerStats scheduler_stats() noexcept {
  if (detail::P* p = detail::tls_p) return p->runtime.stats();
  detail::MutexLock lock(detail::runtime_mu);
  if (detail::running != nullptr) return detail::running->stats();
  return detail::last_run_stats;
}

}  // namespace goro
