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
// (Config::max_blocking_threads, default 10000, like Go's thread limit)
// past which submit() throws; a thread idle for kIdleExit exits. The pool
// is process-wide and never destroyed (idle threads may still be waiting
// when the process exits).
#ifndef GORO_LIB_SYSCALL_THREADS_HPP_
#define GORO_LIB_SYSCALL_THREADS_HPP_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

#include "goro/blocking.hpp"

namespace goro::detail {

struct SyscallThreadsTuning {
  // An idle syscall thread exits after this long without work.
  static constexpr std::chrono::seconds kIdleExit{10};
};

class SyscallThreads {
 public:
  static SyscallThreads& instance() noexcept;

  // Queues `job` for a syscall thread, starting one if none is idle. Throws
  // std::system_error when `max_busy` jobs are already running or queued.
  // `complete` runs on the syscall thread after the job.
  void submit(BlockingJob* job, std::size_t max_busy, void (*complete)(BlockingJob*));

  // Threads alive now (idle or busy), for tests and diagnostics.
  [[nodiscard]] std::size_t threads() noexcept;

 private:
  struct Item {
    BlockingJob* job;
    void (*complete)(BlockingJob*);
  };
  void thread_main();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::size_t threads_ = 0;
  std::size_t idle_ = 0;
  std::size_t busy_ = 0;  // queued + running
};

}  // namespace goro::detail

#endif  // GORO_LIB_SYSCALL_THREADS_HPP_
