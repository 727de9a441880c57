// goro/clock.hpp
//
// Defines: goro::Clock, the clock of every deadline and timer in goro
// (std::chrono::steady_clock, counted in nanoseconds), and the conversions
// between its time points and the nanosecond counts that timer nodes and
// contexts store in atomics.
//
// Its own header so that the headers which only speak of deadlines
// (context.hpp) do not pull in the timer machinery of time.hpp.
#ifndef GORO_CLOCK_HPP_
#define GORO_CLOCK_HPP_

#include <chrono>
#include <cstdint>

namespace goro {

using Clock = std::chrono::steady_clock;

namespace detail {

// Nanoseconds since the clock's epoch: what atomics hold for a time point.
inline std::int64_t to_ns(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
// The time point `ns` nanoseconds after the clock's epoch.
inline Clock::time_point from_ns(std::int64_t ns) noexcept {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace detail
}  // namespace goro

#endif  // GORO_CLOCK_HPP_
