// goro/blocking.hpp
//
// Defines: goro::blocking, the syscall handoff: run a blocking call (or
// long CPU work) on a thread that holds no P, while the goroutine's P goes
// on running other goroutines.
#ifndef GORO_BLOCKING_HPP_
#define GORO_BLOCKING_HPP_

#include <coroutine>
#include <exception>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/goroutine.hpp"

namespace goro {
namespace detail {

// A blocking call handed to a syscall thread. Lives in the awaiter, inside
// the waiting goroutine's frame; the frame outlives the call because the
// goroutine stays parked until the call has returned (and the runtime
// waits for calls in flight before it destroys any frame).
struct BlockingJob {
  void (*run)(BlockingJob* job) = nullptr;  // runs the call, stores its outcome
  G* g = nullptr;                           // the parked goroutine
  void* home = nullptr;                     // its P when it parked (opaque)
  void* calls = nullptr;                    // its runtime's blocking calls (opaque)
  BlockingJob* next = nullptr;              // queue link
};

// Parks the current goroutine and hands `job` to a syscall thread, or,
// while Config::max_blocking_threads calls are running, queues it (FIFO)
// until one of them returns; the goroutine is made runnable again
// (preferably on its previous P) when the call returns. Throws
// std::logic_error outside a goroutine, std::invalid_argument if
// max_blocking_threads is 0, and std::system_error if the OS refuses a
// thread (the goroutine then never parked).
void submit_blocking(BlockingJob* job, std::coroutine_handle<> awaiting);

template <class F>
class BlockingAwaiter : private BlockingJob {
 public:
  using Result = std::invoke_result_t<F&>;

  explicit BlockingAwaiter(F fn) : fn_(std::move(fn)) { this->run = &BlockingAwaiter::run_call; }
  BlockingAwaiter(const BlockingAwaiter&) = delete;
  BlockingAwaiter& operator=(const BlockingAwaiter&) = delete;
  ~BlockingAwaiter() {
    if constexpr (!std::is_void_v<Result>) {
      if (has_value_) value_.~Stored();
    }
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) { submit_blocking(this, awaiting); }
  Result await_resume() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<Result>) return static_cast<Result>(std::move(value_));
  }

 private:
  using Stored = std::conditional_t<std::is_void_v<Result>, char, std::remove_reference_t<Result>>;
  static_assert(!std::is_reference_v<Result>, "goro::blocking: return a value, not a reference");

  // Runs on the syscall thread.
  static void run_call(BlockingJob* job) {
    auto* self = static_cast<BlockingAwaiter*>(job);
    try {
      if constexpr (std::is_void_v<Result>) {
        self->fn_();
      } else {
        ::new (static_cast<void*>(std::addressof(self->value_))) Stored(self->fn_());
        self->has_value_ = true;
      }
    } catch (...) {
      self->error_ = std::current_exception();
    }
  }

  F fn_;
  union {
    Stored value_;
  };
  bool has_value_ = false;
  std::exception_ptr error_;
};

}  // namespace detail

// `co_await goro::blocking(fn)` calls `fn()` on a syscall thread (a thread
// that holds no P and owns no io_uring ring) and gives its value or rethrows
// its exception. Meanwhile the goroutine is parked and its P runs other
// goroutines; afterwards the goroutine is runnable again, preferring the P
// it ran on. For getaddrinfo, fsync, a blocking library call, or CPU work
// long enough to starve the goroutines queued behind it.
//
//  * Syscall threads are made on demand and exit after being idle for a
//    while; at most Config::max_blocking_threads run calls at once. Past
//    that a call waits, its goroutine parked as during the call, and calls
//    start in the order they were made as running ones return (Tokio's
//    spawn_blocking queue). SchedulerStats counts them
//    (blocking_calls_queued, blocking_queue_length).
//  * `fn` is moved into the awaiter (in the goroutine's frame); it must not
//    co_await and should not touch goroutine-only APIs (it runs outside the
//    runtime).
//  * Built by g++ 12, a closure written in the co_await expression is
//    destroyed twice if it captures anything with a destructor (a
//    std::string, a Chan): capture by reference (`[&]`: the await ends
//    before the statement does) or name the callable first and move it
//    in (task.hpp, "Temporaries in a co_await expression").
//  * The runtime waits for running calls before it stops; calls still
//    queued when it stops never run (their goroutines are destroyed, as
//    every goroutine still parked is).
template <class F>
[[nodiscard("co_await it: the function does not run until the call is awaited")]] detail::
    BlockingAwaiter<std::decay_t<F>>
    blocking(F&& fn) {
  return detail::BlockingAwaiter<std::decay_t<F>>(std::forward<F>(fn));
}

}  // namespace goro

#endif  // GORO_BLOCKING_HPP_
