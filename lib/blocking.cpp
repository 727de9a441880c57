// lib/blocking.cpp
//
// The syscall handoff (goro::blocking), step by step:
//   1. The goroutine records where to resume, its P ("home") and its
//      runtime's BlockingCalls in the job (inside its awaiter), counts the
//      call in flight, and hands the job to a syscall thread
//      (syscall_threads.hpp). await_suspend returns: the goroutine is
//      parked, and its P's worker goes straight back to the scheduler to
//      run other goroutines.
//   2. The syscall thread runs the call and stores its value or exception
//      in the awaiter.
//   3. complete, still on the syscall thread, which has already counted
//      itself free (syscall_threads.hpp, step 2), so that the goroutine
//      may call again at once (make_runnable_at_home,
//      scheduler_interface.hpp): under the scheduler lock, if the home P is
//      idle, the goroutine goes into the home P's inbox and that worker is
//      woken (Go's exitsyscall reacquiring its old P); otherwise it goes
//      onto the global queue and an idle worker is woken as for any
//      submitted work. Preferring the home P keeps the goroutine's frames
//      in that P's caches; not insisting on it keeps a busy P from
//      delaying it.
//   4. The call is counted out of flight as the very last step: the
//      runtime waits for that count to reach zero before it destroys any
//      goroutine, so a frame holding a job in flight is never freed.
// Past Config::max_blocking_threads calls at once, step 1 queues the job
// (FIFO) and it starts when a running call finishes (syscall_threads.hpp,
// steps 1-3); it counts as in flight meanwhile (it will run and ready its
// goroutine). When the runtime stops, the calls still queued are
// withdrawn before the wait of step 4, and never run.
//
// Why the inbox handshake loses no wakeup: scheduler.cpp, above
// Scheduler::make_runnable_at_home.
#include "goro/blocking.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include "blocking_calls.hpp"
#include "p.hpp"
#include "runtime_state.hpp"
#include "scheduler_interface.hpp"
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
  p->blocking_calls.submit(*p, g, job);
}

void BlockingCalls::submit(P& p, G* g, BlockingJob* job) {
  job->g = g;
  job->home = &p;
  job->calls = this;
  // Relaxed: the count is read after the workers are joined (see step 4).
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  bool waits = false;
  try {
    waits = SyscallThreads::instance().submit(job, max_threads_, &BlockingCalls::complete);
  } catch (...) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);  // as the add above
    throw;  // the goroutine continues with the exception (it never parked)
  }
  bump(p.stats.blocking_calls);
  if (waits) bump(p.stats.blocking_calls_queued);
}

void BlockingCalls::complete(BlockingJob* job) noexcept {
  // Read everything first: once the goroutine is runnable its frame (and
  // the job in it) may be gone.
  P* home = static_cast<P*>(job->home);
  auto* calls = static_cast<BlockingCalls*>(job->calls);
  make_runnable_at_home(*home, job->g);
  // Step 4. Release: the runtime's acquire load orders everything above
  // before it destroys anything.
  calls->in_flight_.fetch_sub(1, std::memory_order_release);
}

std::size_t BlockingCalls::queued() const noexcept {
  return SyscallThreads::instance().waiting(this);
}

void BlockingCalls::wait_for_none() noexcept {
  // Calls still waiting for a thread never start: their goroutines stay
  // parked, and the sweep destroys them with the other live goroutines.
  // Relaxed, as the add in submit.
  const std::size_t withdrawn = SyscallThreads::instance().withdraw_waiting(this);
  in_flight_.fetch_sub(static_cast<std::int64_t>(withdrawn), std::memory_order_relaxed);
  while (any_in_flight()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace goro::detail
