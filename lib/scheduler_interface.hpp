// lib/scheduler_interface.hpp
//
// Defines: the one interface through which the mechanisms above the
// scheduler core (timers, the poller, blocking calls, sysmon, I/O) reach
// it: make a goroutine runnable on a P, wake a P, leave the idle list,
// and whether the runtime stops. The current P and goroutine are
// runtime_state.hpp's tls_p and tls_g.
//
// Everything here takes the P it concerns (the P a mechanism holds, the
// goroutine's home, or any P of the runtime): that names the runtime too,
// so no mechanism needs the Scheduler itself (scheduler.hpp), which only
// the core and the runtime layer include. Defined in scheduler.cpp.
#ifndef GORO_LIB_SCHEDULER_INTERFACE_HPP_
#define GORO_LIB_SCHEDULER_INTERFACE_HPP_

namespace goro::detail {

struct G;
struct PCore;

// Where a goroutine made runnable on its P's worker goes.
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
  // otherwise the tail: for I/O completions. The first of a batch runs
  // next; the rest keep their completion order.
  kRunNextIfFree,
  // runnext if it is free, otherwise the spawn stack (spawn_stack.hpp),
  // otherwise the local queue's tail: for go() and spawn() (for a claim
  // entry, runq_put notes where it went, for the inline join). Go
  // displaces runnext's occupant for a spawn; goro does not, saving the
  // exchange on the hottest path: a burst of spawns runs its first child
  // first and the rest newest first.
  kSpawn,
  // The local queue's tail (yield, timers, redistributing a global batch).
  kTail,
};

// p's worker: makes parked goroutine `g` runnable on p (its resume point
// already set). Returns whether it landed where other Ps can steal it (the
// local or global queue) rather than only in runnext, which thieves leave
// alone until their last round: only then is waking an idle P worth its
// cost (notify_work_available).
bool make_runnable(PCore& p, G* g, Placement placement) noexcept;

// p's worker, after making goroutines runnable: wakes an idle P if nobody
// looks for work (scheduler.hpp, step g-h of the spin/park handshake).
void notify_work_available(PCore& p) noexcept;

// Any thread, for a P that is not its own (sysmon rescuing a busy P's
// I/O): makes `g` runnable through the global queue, counted as readied
// from outside. Returns false once the runtime stops accepting work; `g`
// then stays parked for the shutdown sweep.
bool make_runnable_through_global_queue(PCore& any, G* g) noexcept;
// Any thread, after make_runnable_through_global_queue: wakes an idle P
// if nobody looks for work.
void notify_work_available_from_outside(PCore& any) noexcept;

// Any thread (a blocking call's syscall thread): makes `g` runnable on its
// home P if that P is idle (through its inbox, waking it), otherwise
// through the global queue; while the runtime stops, leaves it for the
// sweep.
void make_runnable_at_home(PCore& home, G* g) noexcept;

// Any thread: takes an idle P off the idle list, if there is one, makes it
// spinning and wakes it to look for work (a timer that needs a sleeper,
// a P whose goroutine stalls).
void wake_idle_p(PCore& any) noexcept;

// p's worker, back from sleeping idle: takes p off the idle list if it is
// still on it (it woke by itself: an I/O completion, a timer, a spurious
// return).
void leave_idle(PCore& p) noexcept;

// Whether the runtime of p stops (acquire: a worker that sees it stops).
[[nodiscard]] bool stopping(const PCore& p) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_SCHEDULER_INTERFACE_HPP_
