// lib/runtime_threads.hpp
//
// Defines: goro::detail::start_runtime_thread, how a runtime starts its
// worker and sysmon threads, and the test seam that makes such starts fail.
//
// The operating system may refuse a thread (RLIMIT_NPROC, a pids cgroup, no
// memory for a stack): std::thread then throws std::system_error. run()
// turns that into a clean failure (Runtime::start says how, runtime_threads.cpp), and the seam
// lets tests reach every such failure point without changing the limits of
// the whole test process (root is exempt from RLIMIT_NPROC anyway).
#ifndef GORO_LIB_RUNTIME_THREADS_HPP_
#define GORO_LIB_RUNTIME_THREADS_HPP_

#include <cerrno>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "thread_census.hpp"

namespace goro::detail {

// Test seam: the next `successes` runtime thread starts succeed and every
// one after them fails as the operating system's refusal would (EAGAIN),
// until the seam is reset with a negative count (the default: no failures).
void fail_runtime_thread_starts_after(int successes) noexcept;
// Consumes one start from the seam; true when this start must fail.
[[nodiscard]] bool runtime_thread_start_refused() noexcept;

// Starts a thread of the runtime running `body`, marked as the runtime's
// own for the deadlock detector's thread census (thread_census.hpp) while
// `body` runs. Throws std::system_error naming `what` (e.g. "worker thread
// for P 3") when the thread cannot be created.
template <class Body>
std::thread start_runtime_thread(const std::string& what, Body&& body) {
  try {
    if (runtime_thread_start_refused()) {
      throw std::system_error(EAGAIN, std::generic_category());
    }
    return std::thread([body = std::forward<Body>(body)]() mutable {
      RuntimeThreadMark mark;
      body();
    });
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "goro: cannot start the " + what);
  }
}

}  // namespace goro::detail

#endif  // GORO_LIB_RUNTIME_THREADS_HPP_
