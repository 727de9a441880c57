// lib/blocking_calls.hpp
//
// Defines: goro::detail::BlockingCalls, a runtime's blocking calls in
// flight (goro::blocking; the handoff, step by step, is at the top of
// blocking.cpp).
#ifndef GORO_LIB_BLOCKING_CALLS_HPP_
#define GORO_LIB_BLOCKING_CALLS_HPP_

#include <atomic>
#include <cstdint>

#include "goro/blocking.hpp"

namespace goro::detail {

struct P;

class BlockingCalls {
 public:
  // At most `max_threads` calls run at once (Config::max_blocking_threads).
  explicit BlockingCalls(unsigned max_threads) noexcept : max_threads_(max_threads) {}
  BlockingCalls(const BlockingCalls&) = delete;
  BlockingCalls& operator=(const BlockingCalls&) = delete;

  // Steps 1-2: parks goroutine `g` of P `p` (its resume point set) and
  // hands `job` to a syscall thread, or, while max_threads calls run,
  // queues it for one (FIFO; counted in PStats::blocking_calls_queued).
  // Throws std::invalid_argument if max_threads is 0 and std::system_error
  // if the OS refuses a thread (`g` never parked, either way).
  void submit(P& p, G* g, BlockingJob* job);
  // Whether a call is in flight (acquire: pairs with the completion's
  // release, so everything the call did happens before).
  [[nodiscard]] bool any_in_flight() const noexcept {
    return in_flight_.load(std::memory_order_acquire) != 0;
  }
  // Calls waiting for a thread now (SchedulerStats::blocking_queue_length).
  [[nodiscard]] std::size_t queued() const noexcept;
  // Withdraws the calls still waiting for a thread (they never run; their
  // goroutines stay parked for the sweep), then waits until no call is in
  // flight (the runtime, before its sweep).
  void wait_for_none() noexcept;

 private:
  // Steps 3-4, on the syscall thread.
  static void complete(BlockingJob* job) noexcept;

  const unsigned max_threads_;
  // Calls submitted and not yet completed or withdrawn (a call waiting
  // for a thread counts: it will run and ready its goroutine).
  std::atomic<std::int64_t> in_flight_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_BLOCKING_CALLS_HPP_
