// lib/syscall_threads.hpp
//
// Defines: goro::detail::SyscallThreads, the threads that run blocking
// calls for goro::blocking (Go's Ms in syscalls).
//
// Why separate threads: a worker owns its P's io_uring ring and must never
// block in a syscall (docs/ARCHITECTURE.md, "Why one thread per P"), so a
// blocking call cannot run on it, and a P cannot move to another thread as
// Go's does at a syscall. Instead the call moves: the goroutine parks, a
// syscall thread runs the call, and the goroutine is made runnable again.
//
// Threads are made on demand with no fixed pool size (Go: "no limit to the
// number of threads that can be blocked in system calls"), up to a cap
// (Config::max_blocking_threads, default 10000, like Go's thread limit);
// a thread idle for kIdleExit exits. The pool is process-wide and never
// destroyed (idle threads may still be waiting when the process exits).
//
// Past the cap, a job waits (Tokio's spawn_blocking queue), its goroutine
// parked as for any call:
//   1. submit() hands a job to the threads (`queue_`, counted in `busy_`)
//      while fewer than the cap are busy and no job waits; otherwise the
//      job goes to the back of `waiting_`, with the cap it came with.
//   2. A thread whose call has returned counts it out of `busy_` and, if
//      the oldest waiting job fits under its cap, takes it out of
//      `waiting_` (counted in `busy_` again) to run it next itself: each
//      finished call starts at most one waiting call, in submission order
//      (FIFO), so at most the cap run at once. Only then does it run the
//      job's completion, which readies the goroutine and tells its runtime
//      that the call is over: whoever learns of the return from it (the
//      goroutine, calling again at once; a runtime that stops and starts
//      again) finds the thread already counted out, never a call that
//      waits behind one that has returned.
//   3. A runtime that stops withdraws its waiting jobs (withdraw_waiting):
//      they never start, and their goroutines, still parked, are destroyed
//      with the others by the shutdown sweep.
// Everything is under `mu_`, which guards no other work: the lock is held
// for a few deque operations per call. Rejected: throwing past the cap
// (the caller would need a retry loop, with no way to wait for a free
// thread), and parking the job's goroutine on a goro semaphore before
// submitting (a second park and wakeup per call, and the slots would be
// per runtime although the threads are per process).
#ifndef GORO_LIB_SYSCALL_THREADS_HPP_
#define GORO_LIB_SYSCALL_THREADS_HPP_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include "goro/blocking.hpp"

namespace goro::detail {

struct SyscallThreadsTuning {
  // An idle syscall thread exits after this long without work.
  static constexpr std::chrono::seconds kIdleExit{10};
};

class SyscallThreads {
 public:
  static SyscallThreads& instance() noexcept;

  // Hands `job` to a syscall thread, starting one if none is idle, or, when
  // `max_busy` jobs are already handed out (or jobs already wait), queues
  // it until one finishes (steps 1-2 above). Returns true if the job
  // waits. `complete` runs on the syscall thread after the job. Throws
  // std::invalid_argument if `max_busy` is 0 (no job could ever run), and
  // std::system_error if the OS refuses a new thread; either way the job
  // is not taken.
  [[nodiscard("true: the job waits for a thread (counted in the stats)")]] bool submit(
      BlockingJob* job, std::size_t max_busy, void (*complete)(BlockingJob*));

  // Takes the jobs of one runtime (those whose BlockingJob::calls is
  // `calls`) out of the waiting queue (step 3); returns how many there were.
  std::size_t withdraw_waiting(const void* calls) noexcept;

  // Jobs of one runtime (BlockingJob::calls == `calls`) waiting for a
  // thread now.
  [[nodiscard]] std::size_t waiting(const void* calls) noexcept;

  // Threads alive now (idle or busy), for tests and diagnostics.
  [[nodiscard]] std::size_t threads() noexcept;
  // Jobs handed out and not yet returned (queued for a thread or running),
  // for tests and diagnostics.
  [[nodiscard]] std::size_t busy() noexcept;

 private:
  struct Item {
    BlockingJob* job;
    void (*complete)(BlockingJob*);
  };
  struct Waiting {
    Item item;
    std::size_t max_busy;  // the cap it was submitted under
  };
  void thread_main();
  // Step 2, under mu_: takes the oldest waiting job out of `waiting_` and
  // counts it busy, if it fits under its cap. Allocates nothing (it runs
  // on a syscall thread, which has nobody to throw to).
  std::optional<Item> admit_waiting_locked() noexcept;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;       // handed out, not yet taken by a thread
  std::deque<Waiting> waiting_;  // past the cap, oldest first
  std::size_t threads_ = 0;
  std::size_t idle_ = 0;
  std::size_t busy_ = 0;  // handed out: in queue_, running, or admitted to run next
};

}  // namespace goro::detail

#endif  // GORO_LIB_SYSCALL_THREADS_HPP_
