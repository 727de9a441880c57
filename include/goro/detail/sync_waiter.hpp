// goro/detail/sync_waiter.hpp
//
// Defines: goro::detail::ResumeHook (a stand-in coroutine frame that runs a
// function when a parked goroutine is resumed), SyncWaiter (one goroutine or
// OS thread waiting on a sync primitive), SyncQueue (a FIFO of them:
// waiter_list.hpp's list, which channels use too),
// ThreadParker (how a thread outside the runtime waits), wake(), and Sema
// (Go's runtime semaphore, per object). goro/mutex.hpp, rwmutex.hpp,
// wait_group.hpp, cond.hpp and semaphore.hpp build on these.
//
// Design
//
// Glossary
//   waiter      a SyncWaiter: one goroutine blocked in one sync operation.
//               It lives in the awaiter, in the goroutine's coroutine frame,
//               so blocking allocates nothing (as chan_core.hpp's Waiter).
//   continuation where the goroutine goes on once its wait is over: the
//               coroutine that co_awaited, or a ResumeHook that runs the
//               next stage of a multi-stage wait.
//   hook        a ResumeHook: an object laid out like the header of a
//               coroutine frame, so that std::coroutine_handle<>::resume()
//               on its address calls a plain function of ours. A G whose
//               `resume` is a hook runs that function, on the G, when the
//               scheduler picks it.
//   sema        Go's runtime semaphore (sema.go): a count of banked wakeups
//               plus a FIFO of waiters, so that a release that comes before
//               the matching acquire is not lost.
//
// Why hooks. Go's Mutex lets a woken waiter lose the race for the lock to a
// goroutine that just arrived, and then sleep again (normal mode); an
// RWMutex writer first takes a Mutex and then waits for departing readers;
// a Cond waiter, once signalled, must take its Mutex again. Each is one
// `co_await` that may park more than once, and an awaiter cannot park again
// from await_resume. The hook lets the goroutine run our function first:
// it retries, and either resumes the coroutine (co_await is over) or queues
// itself again and returns to the worker loop, still parked. The hook is
// two function pointers in the awaiter: no allocation.
//
// Invariants
//   S1. A waiter is in at most one queue; its `state` is kQueued exactly
//       while it is. Queues are guarded by their primitive's SpinLock
//       (waiter_list.hpp, L1-L2).
//   S2. Exactly one party readies a parked goroutine: whoever dequeues its
//       waiter (under the lock). It sets `g->resume` and touches nothing of
//       the waiter after wake() (the goroutine may run and free its frame at
//       once on another thread). Wakeups happen after the lock is released.
//   S3. A goroutine that queues itself touches nothing of its awaiter after
//       releasing the queue's lock (it may already be running elsewhere).
//   S4. A waker that dequeues a waiter to give it something that must be
//       given back if it never runs (a lock, semaphore units: kGranted; a
//       Mutex's kWoken flag: kGrantedWoken) writes that into `state` before
//       waking it, in the same store that takes it off kQueued; the
//       goroutine sets kIdle when it resumes.
//
// Withdrawal. The shutdown sweep destroys the frames of parked goroutines,
// and with them their awaiters. A waiter is then in one of three states,
// and its awaiter's destructor leaves the primitive as if the goroutine had
// gone on its way at once: still queued (kQueued): unlink it and undo
// whatever counted it (a Mutex's waiter count, and the starvation flag with
// the last waiter; a WaitGroup's waiter count; an RWMutex's reader count or
// pending writer); granted but never resumed (kGranted, kGrantedWoken: S4;
// wakeups made during the sweep are refused, so this is common there):
// give the grant back (unlock, release, drop kWoken); or kIdle: nothing to
// do. These destructors run only with every worker stopped, so they read
// `state` without the queue's lock. Every awaiter's destructor is one call
// of withdraw_if_parked(), naming its primitive's withdraw function; one
// byte is all it loads, and an awaiter that resumed stored kIdle there
// itself, so on the paths where a lock is taken the compiler drops even
// that load.
//
// Rejected alternatives
//   * A slow-path coroutine (a Task per contended lock) for multi-stage
//     waits: standard C++, but it allocates a frame every time a lock is
//     contended, and blocking allocates nothing (Glossary, "waiter").
//   * Handing the lock to every woken waiter (cppcoro's and folly's async
//     mutexes): no re-park needed, but every contended acquisition costs a
//     goroutine switch and the lock sits idle while the next owner waits in
//     a run queue (a lock convoy); Go keeps that only for starvation mode.
//   * Go's global semaphore table keyed by address (sema.go's semtable),
//     which keeps a Mutex at 8 bytes: a shared, hashed lock on every
//     contended operation. Here each primitive carries its own spin lock and
//     queue head (a Mutex is 24 bytes).
//
// The hook relies on the coroutine ABI that clang and GCC share (and that
// libstdc++'s noop_coroutine uses the same way): a frame starts with the
// resume and the destroy function pointers, and resume() calls the first
// with the frame's address. goro never calls destroy() or done() on a G's
// `resume`; sync_test exercises every hook in every preset.
#ifndef GORO_DETAIL_SYNC_WAITER_HPP_
#define GORO_DETAIL_SYNC_WAITER_HPP_

#include <coroutine>
#include <cstdint>

#include "goro/detail/goroutine.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/waiter_list.hpp"

namespace goro::detail {

// A stand-in coroutine frame (see the file comment). `owner` is the object
// the function works on.
struct ResumeHook {
  using Fn = void (*)(void* frame);
  Fn resume_fn;
  Fn destroy_fn;
  void* owner;

  [[nodiscard]] std::coroutine_handle<> handle() noexcept {
    return std::coroutine_handle<>::from_address(this);
  }
  // The owner of the hook whose address is `frame`.
  template <class T>
  [[nodiscard]] static T* owner_of(void* frame) noexcept {
    return static_cast<T*>(static_cast<ResumeHook*>(frame)->owner);
  }
  // destroy_fn of every hook: goro never destroys a G's `resume` (the
  // shutdown sweep destroys root frames), so reaching it is a bug.
  [[noreturn]] static void never_destroyed(void* frame) noexcept;
};

// How an OS thread outside the runtime waits (WaitGroup::wait_blocking).
// Defined in lib/sync.cpp.
class ThreadParker;
void unpark(ThreadParker* parker) noexcept;

// One goroutine (or outside thread) waiting on a sync primitive.
//
// Only `state` is initialised on construction: an awaiter holds one in
// every frame that locks, and most locks never wait, so the fields are
// filled in by whoever queues the waiter (prepare(), then the primitive's
// own fields) — construction is one store of one byte.
struct SyncWaiter {
  // Where the waiter stands with its primitive (S1, S4, Withdrawal).
  enum State : std::uint8_t {
    kIdle = 0,          // not queued, nothing to give back
    kQueued = 1,        // in its primitive's queue (S1)
    kGranted = 2,       // dequeued with a lock or units, not yet resumed
    kGrantedWoken = 3,  // Mutex: dequeued holding kWoken, not yet resumed
  };

  G* g;                                  // the parked goroutine, or nullptr:
  ThreadParker* thread;                  // the parked outside thread
  std::coroutine_handle<> continuation;  // where to go on when the wait is over
  std::coroutine_handle<> retry;         // Mutex: woken without ownership (normal mode)
  SyncWaiter* prev;
  SyncWaiter* next;
  SyncWaiter* wake_next;    // a waker's local list of waiters to wake
  std::int64_t wait_start;  // Mutex: when it first queued (0: not yet)
  std::int64_t weight;      // Semaphore: units it waits for
  State state = kIdle;
  bool starving;  // Mutex: waited over 1 ms
  bool awoke;     // Mutex: holds the "woken" flag

  // Fills in the fields every waiter needs, for goroutine `goroutine`.
  void prepare(G* goroutine, std::coroutine_handle<> then) noexcept {
    g = goroutine;
    thread = nullptr;
    continuation = then;
    retry = nullptr;
    wait_start = 0;
    weight = 0;
    starving = false;
    awoke = false;
  }
  // S4: the goroutine goes on; nothing of a grant is left to give back.
  void resumed() noexcept { state = kIdle; }
  // Whether the goroutine is still parked on it, or was granted something
  // and never resumed (Withdrawal): only then does a destroyed awaiter
  // have anything to undo.
  [[nodiscard]] bool needs_withdrawal() const noexcept { return state != kIdle; }
  // For WaiterList (waiter_list.hpp, L1).
  [[nodiscard]] bool queued() const noexcept { return state == kQueued; }
  void set_queued(bool queued) noexcept { state = queued ? kQueued : kIdle; }
};

// How a woken goroutine is readied: as the waker's partner
// (ready_goroutine), or to compete with the waker, which goes on running
// (ready_goroutine_to_compete).
enum class WakeAs { kPartner, kCompetitor };

// Makes the goroutine of `w` continue at `where` (or unparks its thread).
// The caller must have dequeued `w` (S2) and released the queue's lock.
inline void wake(SyncWaiter* w, std::coroutine_handle<> where,
                 WakeAs as = WakeAs::kPartner) noexcept {
  if (w->thread != nullptr) {
    unpark(w->thread);
    return;
  }
  G* g = w->g;  // last read of `w`
  g->resume = where;
  if (as == WakeAs::kCompetitor) {
    ready_goroutine_to_compete(g);
  } else {
    ready_goroutine(g);
  }
}

// Wakes `w` at its continuation: what WakeList<SyncWaiter>::wake_all does
// with each waiter a sync primitive dequeued under its lock.
inline void wake_at_continuation(SyncWaiter* w) noexcept { wake(w, w->continuation); }

// What every sync awaiter's destructor does (Withdrawal): if the awaiter
// is destroyed with its goroutine parked on `w` (the shutdown sweep), call
// primitive->*withdraw(&w) to leave the primitive as if the goroutine had
// gone on. Reads `w` unlocked: a parked frame is destroyed only with every
// worker stopped, and a running one owns its waiter.
template <class Primitive>
inline void withdraw_if_parked(SyncWaiter& w, Primitive* primitive,
                               void (Primitive::*withdraw)(SyncWaiter*) noexcept) noexcept {
  if (w.needs_withdrawal()) [[unlikely]]
    (primitive->*withdraw)(&w);
}

// A FIFO of waiters, guarded by its owner's SpinLock (S1).
using SyncQueue = WaiterList<SyncWaiter>;

// The goroutine running now; throws std::logic_error if there is none (a
// sync primitive that must park needs a goroutine to park). `what` names
// the operation for that error; `reason` (a string literal, Go's name for
// the wait: "sync.Mutex.Lock") becomes its wait reason (note_wait).
G* goroutine_to_park(const char* what, const char* reason);

// Go's runtime semaphore (sema.go), one per use: a count of banked releases
// and a FIFO of waiters.
//
// Contract: release(n) wakes up to n waiters in FIFO order and banks the
// rest; acquire_or_queue takes a banked unit or queues the waiter. Any
// thread may release; waiters are goroutines or outside threads.
class Sema {
 public:
  Sema() noexcept = default;
  Sema(const Sema&) = delete;
  Sema& operator=(const Sema&) = delete;

  // Takes a banked unit (returns false: no need to park) or queues `w`,
  // whose g/thread and continuation are filled in (returns true: the caller
  // parks and, per S3, touches nothing of `w` any more).
  [[nodiscard]] bool acquire_or_queue(SyncWaiter* w) noexcept;
  void release(std::uint32_t n = 1) noexcept;
  // Takes `w` out of the queue if it is still there (a parked frame torn
  // down at shutdown); returns whether it was (false: a release already
  // dequeued it, and its unit is spent on it).
  bool withdraw(SyncWaiter* w) noexcept;

 private:
  SpinLock lock_;
  std::uint32_t banked_ = 0;  // guarded by lock_
  SyncQueue waiters_;         // guarded by lock_
};

// An awaiter step shared by RWMutex and WaitGroup: park the current
// goroutine on `sema` until a release, then continue at `then`; `reason`
// is its wait reason (goroutine_to_park). Returns true if parked
// (await_suspend's answer).
[[nodiscard]] inline bool park_on(Sema& sema, SyncWaiter& w, std::coroutine_handle<> then,
                                  const char* reason) {
  w.prepare(goroutine_to_park(reason, reason), then);
  return sema.acquire_or_queue(&w);
}

}  // namespace goro::detail

#endif  // GORO_DETAIL_SYNC_WAITER_HPP_
