// lib/blocking.cpp
//
// The syscall handoff (goro::blocking), step by step:
//   1. The goroutine records where to resume, its P ("home") and runtime in
//      the job (inside its awaiter), counts the call in flight, and hands
//      the job to a syscall thread (syscall_threads.hpp). await_suspend
//      returns: the goroutine is parked, and its P's worker goes straight
//      back to the scheduler to run other goroutines.
//   2. The syscall thread runs the call and stores its value or exception
//      in the awaiter.
//   3. complete_blocking, still on the syscall thread: under the scheduler
//      lock, if the home P is idle, the goroutine goes into the home P's
//      inbox and that worker is woken (Go's exitsyscall reacquiring its old
//      P); otherwise it goes onto the global queue and an idle worker is
//      woken as for any submitted work. Preferring the home P keeps the
//      goroutine's frames in that P's caches; not insisting on it keeps a
//      busy P from delaying it.
//   4. The call is counted out of flight as the very last step: the
//      runtime waits for that count to reach zero before it destroys any
//      goroutine, so a frame holding a job in flight is never freed.
// Past Config::max_blocking_threads calls at once, step 1 queues the job
// (FIFO) and it starts when a running call finishes (syscall_threads.hpp,
// steps 1-3); it counts as in flight meanwhile (it will run and ready its
// goroutine). When the runtime stops, the calls still queued are
// withdrawn before the wait of step 4, and never run.
//
// Why the inbox handshake loses no wakeup: the completion decides under
// sched_mu_ whether the home P is idle, and a worker joins the idle list
// under the same lock and afterwards re-checks its inbox flag: either the
// completion sees it idle (and wakes it) or the worker's re-check sees the
// flag set before the completion took the lock.
#include "goro/blocking.hpp"

#include <stdexcept>
#include <thread>

#include "runtime_state.hpp"
#include "scheduler.hpp"
#include "syscall_threads.hpp"

namespace goro::detail {

void submit_blocking(BlockingJob* job, std::coroutine_handle<> awaiting) {
  P* p = tls_p;
  G* g = tls_g;
  if (p == nullptr || g == nullptr) {
    throw std::logic_error("goro::blocking must be awaited inside a goroutine");
  }
  g->resume = awaiting;
  note_wait(g, "blocking call");
  p->scheduler.submit_blocking(*p, g, job);
}

void Scheduler::submit_blocking(P& p, G* g, BlockingJob* job) {
  job->g = g;
  job->home = &p;
  job->scheduler = this;
  // Relaxed: the count is read after the workers are joined (see step 4).
  blocking_in_flight_.fetch_add(1, std::memory_order_relaxed);
  bool waits = false;
  try {
    waits = SyscallThreads::instance().submit(
        job, config_.max_blocking_threads,
        [](BlockingJob* j) { static_cast<Scheduler*>(j->scheduler)->complete_blocking(j); });
  } catch (...) {
    blocking_in_flight_.fetch_sub(1, std::memory_order_relaxed);  // as the add above
    throw;  // the goroutine continues with the exception (it never parked)
  }
  bump(p.stats.blocking_calls);
  if (waits) bump(p.stats.blocking_calls_queued);
}

P* Scheduler::claim_idle_locked(P* w) noexcept {
  idle_.erase(std::find(idle_.begin(), idle_.end(), w));
  w->idle = false;
  w->spinning = true;  // it owns the nmspinning slot added here
  npidle_.fetch_sub(1, std::memory_order_seq_cst);
  nmspinning_.fetch_add(1, std::memory_order_seq_cst);
  note_busy();
  return w;
}

void Scheduler::complete_blocking(BlockingJob* job) noexcept {
  // Read everything first: once the goroutine is runnable its frame (and
  // the job in it) may be gone.
  P* home = static_cast<P*>(job->home);
  G* g = job->g;
  P* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    if (home->idle) {
      {
        MutexLock inbox_lock(home->inbox_mu);
        home->inbox.push_back(g);
        // seq_cst: read by the home worker's idle re-check.
        home->inbox_nonempty.store(true, std::memory_order_seq_cst);
      }
      woken = claim_idle_locked(home);
    }
  }
  if (woken != nullptr) {
    woken->poller->wake();
  } else if (global_put_from_outside(entry_for(g, /*claim=*/false))) {
    notify_work_available(nullptr);
  } else {
    // Stopping: put it in the inbox all the same; the shutdown sweep will
    // destroy it with the other live goroutines.
    MutexLock inbox_lock(home->inbox_mu);
    home->inbox.push_back(g);
  }
  // Step 4. Release: the runtime's acquire load orders everything above
  // before it destroys anything.
  blocking_in_flight_.fetch_sub(1, std::memory_order_release);
}

void Scheduler::drain_inbox(P& p) noexcept {
  // Relaxed: a hint checked every schedule; the inbox lock orders the
  // goroutines themselves, and the idle re-check uses seq_cst.
  if (!p.inbox_nonempty.load(std::memory_order_relaxed)) return;
  std::vector<G*> arrived;
  std::vector<std::uint64_t> cancels;
  {
    MutexLock lock(p.inbox_mu);
    arrived.swap(p.inbox);
    cancels.swap(p.cancel_inbox);
    p.inbox_nonempty.store(false, std::memory_order_relaxed);  // under the inbox lock
  }
  for (G* g : arrived) runq_put(p, entry_for(g, /*claim=*/false), Placement::kTail);
  for (std::uint64_t user_data : cancels) uring_cancel(p, user_data);
}

void Scheduler::wait_for_blocking_calls() noexcept {
  // Calls still waiting for a thread never start: their goroutines stay
  // parked, and the sweep destroys them with the other live goroutines.
  // Relaxed, as the add in submit_blocking.
  const std::size_t withdrawn = SyscallThreads::instance().withdraw_waiting(this);
  blocking_in_flight_.fetch_sub(static_cast<std::int64_t>(withdrawn), std::memory_order_relaxed);
  // Acquire: pairs with complete_blocking's release decrement.
  while (blocking_in_flight_.load(std::memory_order_acquire) != 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace goro::detail
