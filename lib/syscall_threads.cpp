// lib/syscall_threads.cpp: the syscall threads (see syscall_threads.hpp).
#include "syscall_threads.hpp"

#include <pthread.h>

#include <string>
#include <system_error>
#include <thread>

#include "thread_census.hpp"

namespace goro::detail {

SyscallThreads& SyscallThreads::instance() noexcept {
  static auto* pool = new SyscallThreads();  // never destroyed (see header)
  return *pool;
}

void SyscallThreads::submit(BlockingJob* job, std::size_t max_busy,
                            void (*complete)(BlockingJob*)) {
  std::unique_lock lock(mu_);
  if (busy_ >= max_busy) {
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                            "goro::blocking: " + std::to_string(busy_) +
                                " blocking calls already running (Config::max_blocking_threads)");
  }
  queue_.push_back(Item{job, complete});
  ++busy_;
  if (queue_.size() <= idle_) {
    cv_.notify_one();
    return;
  }
  try {
    std::thread(&SyscallThreads::thread_main, this).detach();
  } catch (...) {
    // No thread: take the job back (the caller's goroutine never parked).
    queue_.pop_back();
    --busy_;
    throw;
  }
  ++threads_;
}

std::size_t SyscallThreads::threads() noexcept {
  std::lock_guard lock(mu_);
  return threads_;
}

void SyscallThreads::thread_main() {
  RuntimeThreadMark mark;
  pthread_setname_np(pthread_self(), "goro-syscall");
  std::unique_lock lock(mu_);
  for (;;) {
    while (queue_.empty()) {
      ++idle_;
      const bool woken =
          cv_.wait_for(lock, SyscallThreadsTuning::kIdleExit, [this] { return !queue_.empty(); });
      --idle_;
      if (!woken) {
        --threads_;
        return;
      }
    }
    const Item item = queue_.front();
    queue_.pop_front();
    lock.unlock();
    item.job->run(item.job);
    item.complete(item.job);  // the job's frame may be gone after this
    lock.lock();
    --busy_;
  }
}

}  // namespace goro::detail
