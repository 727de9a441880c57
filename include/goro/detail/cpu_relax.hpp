// goro/detail/cpu_relax.hpp
//
// Defines: goro::detail::cpu_relax, the one instruction every spin-wait
// loop of goro executes between two looks at what it waits for (the
// SpinLock's backoff, a channel lock's revocation, Mutex's active spinning,
// the scheduler's spinning workers).
//
// Why an instruction and not an empty loop body: a core that re-reads a
// cache line in a tight loop fills its pipeline with speculative loads; when
// the line changes, the core discards them all (a memory-order machine
// clear), and on a core shared by two hardware threads the loop takes
// execution slots from its sibling, which may be the very thread it waits
// for. The hint makes the core wait a little before the next look.
//
// Per architecture:
//   - x86: `pause`.
//   - aarch64: `isb`. Its pipeline flush takes a few tens of cycles, which
//     is what a spin loop counted in pauses expects; `yield` is a hint that
//     many cores execute as a no-op, which would make the same loop many
//     times shorter than on x86.
//   - elsewhere: nothing; the loops stay correct, only less polite.
// It is in a public header because SpinLock is inline (spinlock.hpp).
#ifndef GORO_DETAIL_CPU_RELAX_HPP_
#define GORO_DETAIL_CPU_RELAX_HPP_

namespace goro::detail {

// cpu_relax: tells the core that the caller is spinning. No memory effect:
// it orders nothing, so what the loop reads must be atomic on its own.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("isb");
#endif
}

}  // namespace goro::detail

#endif  // GORO_DETAIL_CPU_RELAX_HPP_
