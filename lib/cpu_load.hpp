// lib/cpu_load.hpp
//
// Defines: goro::detail::cpus_oversubscribed and parse_runnable_threads,
// whether every CPU of the machine has a runnable thread beyond the caller.
//
// Why: an idle P whose ring has ops in flight polls it for a while before
// going to sleep (scheduler.hpp, find_runnable step 5b), because a reply on
// a local socket often comes within microseconds and a sleep and a wakeup
// cost about as much. That holds while a CPU is to spare. When the
// machine's CPUs are all taken (a load generator beside the server, other
// processes, more Ps than CPUs), the spinning thread takes a CPU from a
// thread that has work, often the very peer whose reply it waits for; the
// spin then costs CPU and buys nothing.
//
// How: Linux's /proc/loadavg gives, as its fourth field's numerator, the
// number of scheduling entities runnable at this instant on the whole
// machine (running or waiting for a CPU; the reader included). More of
// them than online CPUs means that none is to spare.
//   1. The answer is cached process-wide and read again at most every
//      kCpuLoadRefreshNanos (an open, a read and a close: microseconds) by
//      whichever caller first finds the cache stale (a CAS on its time
//      stamp, so that one reads and the others use the old answer). No
//      descriptor is kept between samples: one held for the life of the
//      process would outlive the runtime that opened it.
//   2. Where the file cannot be opened or parsed (no procfs, a sandbox), the
//      answer is "not oversubscribed": spinning stays as it was.
// Rejected alternatives:
//   * Counting only goro's own threads (Ps busy against GOMAXPROCS): blind
//     to the other processes, which is where the contention comes from.
//   * A per-P back-off after spins that found nothing: measured, it traded
//     the spin's user time for as much system time (sleeps, wakeups), since
//     under contention the spins do find work, only too late to be worth
//     the CPU.
//   * The load averages (first three fields): minutes of history, where the
//     decision is about now.
#ifndef GORO_LIB_CPU_LOAD_HPP_
#define GORO_LIB_CPU_LOAD_HPP_

#include <cstdint>
#include <string_view>

namespace goro::detail {

// How old a cached answer of cpus_oversubscribed may be.
inline constexpr std::int64_t kCpuLoadRefreshNanos = 1'000'000;  // 1 ms

// Whether more threads are runnable on the machine than it has online
// CPUs, as of at most kCpuLoadRefreshNanos before `now_ns` (the monotonic
// clock). Any thread; never blocks beyond reading /proc/loadavg once.
[[nodiscard]] bool cpus_oversubscribed(std::int64_t now_ns) noexcept;

// The number of runnable scheduling entities in a /proc/loadavg line
// ("0.52 0.58 0.59 3/467 12345": 3), or -1 if the line does not have that
// shape.
[[nodiscard]] int parse_runnable_threads(std::string_view loadavg) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_CPU_LOAD_HPP_
