// lib/parker.hpp
//
// Defines: goro::detail::Parker, how sysmon's thread sleeps.
//
// A one-token binary semaphore on a futex word, in the style of Rust's
// thread::park: unpark() deposits the token (waking the sleeper, if any),
// park() consumes it, sleeping until it is there. A token deposited before
// park() makes park() return at once, so the order of the two calls never
// loses a wakeup.
//
// Worker threads do not use it: an idle worker sleeps in its P's netpoller
// (poller.hpp), so that I/O completions wake it too, and is woken through
// the poller's eventfd. sysmon owns no ring and has no I/O to wait for.
#ifndef GORO_LIB_PARKER_HPP_
#define GORO_LIB_PARKER_HPP_

#include <atomic>
#include <cstdint>

namespace goro::detail {

class Parker {
 public:
  // Sleeps until a token is available, then consumes it. Spurious returns
  // do not happen.
  void park() noexcept;

  // Sleeps until a token is available (consuming it; returns true) or the
  // steady clock reaches `deadline_ns` (returns false). The timeout is
  // absolute, on CLOCK_MONOTONIC, with nanosecond resolution.
  bool park_until(std::int64_t deadline_ns) noexcept;

  // Makes a token available (at most one accumulates) and wakes the sleeper.
  void unpark() noexcept;

 private:
  // 0: no token; 1: token available.
  std::atomic<std::uint32_t> token_{0};
};

}  // namespace goro::detail

#endif  // GORO_LIB_PARKER_HPP_
