// lib/syscall_threads.cpp: the syscall threads (see syscall_threads.hpp).
#include "syscall_threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "thread_census.hpp"

namespace goro::detail {

SyscallThreads& SyscallThreads::instance() noexcept {
  static auto* pool = new SyscallThreads();  // never destroyed (see header)
  return *pool;
}

bool SyscallThreads::submit(BlockingJob* job, std::size_t max_busy,
                            void (*complete)(BlockingJob*)) {
  if (max_busy == 0) {
    throw std::invalid_argument(
        "goro::blocking: Config::max_blocking_threads is 0, so no blocking call can run");
  }
  std::unique_lock lock(mu_);
  if (busy_ >= max_busy || !waiting_.empty()) {  // step 1: behind the cap, or behind others
    waiting_.push_back(Waiting{Item{job, complete}, max_busy});
    return true;
  }
  queue_.push_back(Item{job, complete});
  ++busy_;
  if (queue_.size() <= idle_) {
    cv_.notify_one();
    return false;
  }
  // pthread_create rather than std::thread: the thread starts with no
  // polymorphic state object to call through, so nothing in its start-up
  // (UBSan's vptr check probes memory through a pipe(2)) needs a free
  // descriptor, and a blocking call works while the table is full.
  pthread_t thread;
  const int error = ::pthread_create(
      &thread, nullptr,
      [](void* pool) -> void* {
        static_cast<SyscallThreads*>(pool)->thread_main();
        return nullptr;
      },
      this);
  if (error != 0) {
    // No thread: take the job back (the caller's goroutine never parked).
    queue_.pop_back();
    --busy_;
    throw std::system_error(error, std::generic_category(),
                            "goro::blocking: cannot start a syscall thread");
  }
  ::pthread_detach(thread);
  ++threads_;
  return false;
}

std::optional<SyscallThreads::Item> SyscallThreads::admit_waiting_locked() noexcept {
  if (waiting_.empty() || busy_ >= waiting_.front().max_busy) return std::nullopt;
  const Item item = waiting_.front().item;
  waiting_.pop_front();
  ++busy_;
  return item;
}

std::size_t SyscallThreads::withdraw_waiting(const void* calls) noexcept {
  std::lock_guard lock(mu_);
  const std::size_t before = waiting_.size();
  std::erase_if(waiting_, [calls](const Waiting& w) { return w.item.job->calls == calls; });
  return before - waiting_.size();
}

std::size_t SyscallThreads::waiting(const void* calls) noexcept {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(
      std::count_if(waiting_.begin(), waiting_.end(),
                    [calls](const Waiting& w) { return w.item.job->calls == calls; }));
}

std::size_t SyscallThreads::threads() noexcept {
  std::lock_guard lock(mu_);
  return threads_;
}

std::size_t SyscallThreads::busy() noexcept {
  std::lock_guard lock(mu_);
  return busy_;
}

void SyscallThreads::thread_main() {
  RuntimeThreadMark mark;
  pthread_setname_np(pthread_self(), "goro-syscall");
  std::unique_lock lock(mu_);
  std::optional<Item> next;  // admitted from `waiting_` by our last call
  for (;;) {
    while (!next && queue_.empty()) {
      ++idle_;
      const bool woken =
          cv_.wait_for(lock, SyscallThreadsTuning::kIdleExit, [this] { return !queue_.empty(); });
      --idle_;
      if (!woken) {
        --threads_;
        return;
      }
    }
    Item item;
    if (next) {
      item = *std::exchange(next, std::nullopt);
    } else {
      item = queue_.front();
      queue_.pop_front();
    }
    lock.unlock();
    item.job->run(item.job);  // stores the call's outcome; never throws
    lock.lock();
    --busy_;                        // step 2, before the completion (see the header)
    next = admit_waiting_locked();  // this thread runs it, next round
    lock.unlock();
    item.complete(item.job);  // the job's frame may be gone after this
    lock.lock();
  }
}

}  // namespace goro::detail
