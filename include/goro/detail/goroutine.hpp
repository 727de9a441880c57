// goro/detail/goroutine.hpp
//
// Defines: goro::detail::G (what the public templates see of a goroutine)
// and the entry points the public templates (spawn, JoinHandle, yield,
// run, channels, select, sync) call into the scheduler.
//
// A goroutine is a root Task plus the chain of Tasks it awaits. The
// scheduler queues its record, never coroutine handles. G is the part of
// that record the templates use: where to resume the goroutine, what it
// waits for and since when (every parking awaiter writes these, the last
// two through note_wait), and what its JoinHandle reads (its id, the join
// state, the root promise). The rest of the record, and why records are
// type-stable, is the runtime's own (lib/goroutine.hpp).
//
// Glossary
//   root task   the Task handed to go()/spawn()/run(); its frame holds the
//               goroutine's result until the JoinHandle reads it.
//   resume      the coroutine to resume when the goroutine is scheduled: the
//               root task before its first run, afterwards the innermost
//               coroutine that parked.
//   join state  the rendezvous between the goroutine finishing and its
//               JoinHandle: running, done, detached, or the G waiting in
//               co_await.
#ifndef GORO_DETAIL_GOROUTINE_HPP_
#define GORO_DETAIL_GOROUTINE_HPP_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace goro::detail {

class TaskPromiseBase;

// Values of G::join_state other than a waiting G's address (records are
// aligned to 64 bytes, so these never collide with a pointer).
inline constexpr std::uintptr_t kJoinRunning = 0;
inline constexpr std::uintptr_t kJoinDone = 1;
inline constexpr std::uintptr_t kJoinDetached = 2;

struct alignas(64) G {
  // Where to continue; written by the thread that parks or starts the G and
  // read by the thread that resumes it. The hand-over always goes through a
  // run queue or a join state (release/acquire), so a plain field suffices.
  std::coroutine_handle<> resume;
  // What the goroutine waits for while parked ("chan receive", "IO wait",
  // ...), and since when (the wait clock below), for the deadlock report
  // (Go's waitreason and waitsince). Set together by note_wait, by
  // whatever parks the goroutine, before anyone else can see it parked;
  // stale while the goroutine runs.
  const char* wait_reason = nullptr;
  std::int64_t wait_since_nanos = 0;
  // The root task's promise, which holds the goroutine's result, for the
  // JoinHandle and the uncaught-exception report. Null once the shutdown
  // sweep has destroyed the frames.
  TaskPromiseBase* root_promise = nullptr;
  std::uint64_t id = 0;
  // kJoinRunning / kJoinDone / kJoinDetached or the waiting G.
  std::atomic<std::uintptr_t> join_state{kJoinRunning};
};

// The wait clock: CLOCK_MONOTONIC nanoseconds as last read by the runtime
// on a path that reads the clock anyway or is off the hot path (every
// sysmon round, at most 10 ms apart while any P runs; a worker waking from
// its idle sleep; a runtime starting). It never runs ahead of the real
// clock and trails it by at most about a sysmon period while goroutines
// run, which is precision enough for "how long has it waited" in a report
// that fires after a grace period of its own. Reading the real clock at
// every park (even CLOCK_MONOTONIC_COARSE, a few ns through the vDSO)
// would add a measurable share to a channel handoff of a few tens of ns;
// this is one load of a line that is written a few hundred times a second
// at most. Relaxed is enough: the value is a timestamp for diagnostics,
// published with nothing and read for nothing but itself; a relaxed load
// still sees one whole value (atomicity) and, on one thread, never an
// older one than it saw before (coherence). Its writers (sysmon, a waking
// worker, a starting runtime) store readings they each just took, so a
// store racing another may set it back by the length of that race: a wait
// reported a little longer than it was.
// Defined, and advanced, by the timers (lib/timers.hpp).
extern std::atomic<std::int64_t> wait_clock_nanos;

// Records, just before `g` parks, why (a string literal: the deadlock
// report prints it) and since when it waits.
//  * Plain stores: they are made on the goroutine's own thread before the
//    park publishes it (under a channel or sync lock, or by a release
//    store), so whoever takes the goroutine over is ordered after them.
//    Their only other reader, the deadlock report, reads them on sysmon's
//    thread after Scheduler::all_idle() has seen every P idle: each P
//    counts itself idle (a read-modify-write of the idle count, under the
//    scheduler's lock) after it ran its last goroutine, and the report's
//    seq_cst load of that count reads the last of those increments, which
//    orders every note made before them.
//  * The relaxed load of the wait clock: any recent value will do, since
//    it is only subtracted from the report's own clock reading; nothing
//    else is read through it (see wait_clock_nanos).
inline void note_wait(G* g, const char* reason) noexcept {
  g->wait_reason = reason;
  g->wait_since_nanos = wait_clock_nanos.load(std::memory_order_relaxed);
}

// The goroutine running on this thread, or nullptr outside the runtime.
// Read it only between suspension points (never cache it across one: the
// goroutine may continue on another thread).
[[nodiscard]] G* current_goroutine() noexcept;

// Throws std::logic_error: `what` (e.g. "goro::Chan::send") must park, but
// the coroutine awaiting it is not a goroutine.
[[noreturn]] void throw_not_in_goroutine(const char* what);

// For an awaitable about to park the awaiting goroutine: that goroutine.
// Throws std::logic_error (via throw_not_in_goroutine) when the awaiting
// coroutine is not a goroutine (a Task resumed by hand outside goro::run,
// a plain coroutine on some thread): nothing could ever resume it. Called
// from await_suspend, where a throw resumes the awaiting coroutine with the
// exception (so a caller holding locks for the park releases them first).
// One predictable branch on the parking path only.
[[nodiscard]] inline G* require_goroutine(const char* what) {
  G* g = current_goroutine();
  if (g == nullptr) [[unlikely]]
    throw_not_in_goroutine(what);
  return g;
}

// Room in a goroutine's record for the callable and arguments it is
// started from (go(f, args...), spawn(f, args...); detail/invoke_task.hpp):
// a callable and arguments that fit live there instead of in a frame.
inline constexpr std::size_t kInlineCallBytes = 16;
inline constexpr std::size_t kInlineCallAlign = 8;

// Destroys the object that a goroutine's inline call storage holds.
using InlineCallDestroyer = void (*)(void* storage) noexcept;

// A goroutine's callable kept in a block of its own (detail/invoke_task.hpp):
// the block's address, which the record's inline call storage then holds,
// and the destroyer that takes that storage.
struct BoxedCall {
  InlineCallDestroyer destroy;
  void* box;
};

// A goroutine record taken for a goroutine not started yet, and its inline
// call storage (kInlineCallBytes, aligned to kInlineCallAlign).
struct ReservedGoroutine {
  G* g = nullptr;
  void* inline_call = nullptr;
};

// On a worker thread of a runtime that is not stopping: a fresh record from
// this P, for start_reserved_goroutine or unreserve_goroutine on this same
// thread before it can run another goroutine (the caller does not
// suspend in between). Anywhere else, an empty ReservedGoroutine: the
// caller takes start_goroutine's path, which handles those cases. Throws
// std::bad_alloc when no record can be had.
[[nodiscard("a record taken must be started or given back")]] ReservedGoroutine reserve_goroutine();

// Gives back a record from reserve_goroutine that will not start; its
// inline call storage must hold nothing that needs destroying.
void unreserve_goroutine(G* g) noexcept;

// Starts the goroutine of a record from reserve_goroutine, as
// start_goroutine would from this P, with `root` (promise `promise`) as its
// root. `destroy_call` (or nullptr) destroys what the record's inline call
// storage holds, once the root frame is destroyed. Returns the record.
G* start_reserved_goroutine(G* g, std::coroutine_handle<> root, TaskPromiseBase* promise,
                            bool joinable, InlineCallDestroyer destroy_call);

// Creates a goroutine for `root` (whose promise is `promise`) and makes it
// runnable: from inside the runtime into the current P's runnext slot, from
// outside onto the global queue, waking an idle worker. Returns the record.
// If no runtime is running, destroys `root` and throws std::logic_error.
// If the runtime is shutting down, destroys `root` and returns nullptr.
// `boxed_call`, when not null, is the callable the root was made from,
// kept outside the record: its destroyer runs right after the root frame
// is destroyed, here or when the goroutine is done.
G* start_goroutine(std::coroutine_handle<> root, TaskPromiseBase* promise, bool joinable,
                   const BoxedCall* boxed_call = nullptr);

// co_await on a JoinHandle: returns the coroutine to transfer to: `awaiting`
// if the child already finished, the child's root if the joiner may run it
// inline (not started by anyone yet: it then runs as a Task awaited by
// `awaiting`, and release_finished must follow), or noop_coroutine() to
// park. Throws std::logic_error when the awaiting coroutine is not a
// goroutine.
std::coroutine_handle<> join_suspend(G* child, std::coroutine_handle<> awaiting);

// The JoinHandle for `child` is gone: frees the record now if the child has
// finished, otherwise lets the child free itself when it finishes.
void drop_join_handle(G* child) noexcept;

// After the result was read: destroys the finished child's root frame and
// recycles its record (the JoinHandle is done with it). For a child its
// joiner ran inline (join_suspend), this thread runs as the joiner again.
// Throws nothing (a finished frame's destroy runs destructors only); not
// declared noexcept so that the destroy can be its tail call.
void release_finished(G* child);

// co_await goro::yield(): puts the current goroutine at the tail of its P's
// run queue, to be continued at `awaiting`. Throws std::logic_error when
// the awaiting coroutine is not a goroutine.
void yield_suspend(std::coroutine_handle<> awaiting);

// Makes parked goroutine `g` runnable; `g->resume` must already say where it
// continues, and the caller's hand-over of `g` (a lock, an atomic exchange)
// must make sure that exactly one party readies it. On a worker thread the
// goroutine goes to this P's runnext slot and inherits the time slice (Go's
// goready: a channel handoff or an unlock runs the woken goroutine next),
// waking an idle P for the goroutine it displaces. From a thread outside
// the runtime it goes to the global queue; if the runtime is shutting down
// it stays parked and the shutdown sweep destroys it.
void ready_goroutine(G* g) noexcept;

// As ready_goroutine, but on a worker `g` is not this goroutine's partner:
// it goes to runnext without the handoff bit (thieves may take it once the
// runnext grace is over), and an idle P is woken if none looks for work
// (Go's goready + wakep). For a goroutine woken to compete with the one
// running here, which goes on running (a Mutex waiter).
void ready_goroutine_to_compete(G* g) noexcept;

}  // namespace goro::detail

#endif  // GORO_DETAIL_GOROUTINE_HPP_
