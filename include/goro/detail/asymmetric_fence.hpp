// goro/detail/asymmetric_fence.hpp
//
// Defines: goro::detail::light_fence, heavy_fence and
// enable_asymmetric_fences: a store-load fence split into a cheap half for
// the hot path and an expensive half for the cold path; and full_fence, a
// whole store-load fence for paths that pay one on every call.
//
// Why: the spin/park handshake (scheduler.hpp) is a Dekker pattern: a
// submitter stores work and then loads the idle/spinning counts; a worker
// going idle stores those counts and then loads the queues. Each side needs
// a store-load fence. The submitter's side runs on every spawn and every
// wakeup of a goroutine (millions per second); a seq_cst fence there
// (`mfence`, or a locked instruction) would be the most expensive step of
// a spawn. The worker's side runs once per trip to sleep, which costs a
// futex syscall anyway. Channel locks use the same split (chan_lock.hpp):
// the thread a lock is biased to takes it with the light half, a thread
// revoking the bias pays the heavy half; that inline fast path is why this
// header is public.
//
// How: Linux's membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) makes every
// thread of this process that is running on a CPU execute a full memory
// barrier before the call returns (threads not running pass one when they
// are scheduled). So the hot side needs only a compiler barrier and the
// cold side calls membarrier: for any interleaving, either the hot side's
// load comes after the barrier the kernel forced on it (and sees the cold
// side's store), or its store was already visible before the cold side's
// loads. This is the "asymmetric fence" of liburcu and folly.
//
// Fallback: where membarrier is unavailable (old kernels, seccomp) both
// halves are full fences (full_fence). Under ThreadSanitizer both halves
// are always seq_cst fences, because TSan does not model membarrier.
//
// full_fence: what std::atomic_thread_fence(seq_cst) promises, built on
// x86-64 from a locked read-modify-write of the word at the top of the
// stack (`lock or $0`, which leaves it unchanged) instead of the `mfence`
// compilers emit for it. For ordinary (write-back) memory a locked
// instruction orders every earlier load and store before every later one
// just as `mfence` does (the Intel and AMD manuals; Linux's smp_mb() on
// x86-64 is a locked add to the stack for that reason); `mfence` also
// orders non-temporal stores, which goro never makes, and is several times
// slower on some CPUs (docs/PERFORMANCE.md, "A full fence without
// mfence").
// Elsewhere, and under ThreadSanitizer (which understands the standard
// fence, not the instruction), it is the standard fence.
#ifndef GORO_DETAIL_ASYMMETRIC_FENCE_HPP_
#define GORO_DETAIL_ASYMMETRIC_FENCE_HPP_

#include <atomic>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TSAN 1
#endif

namespace goro::detail {

// A full (seq_cst) fence: see the file comment.
inline void full_fence() noexcept {
#if defined(__x86_64__) && !defined(GORO_TSAN)
  // The "memory" clobber makes it a compiler barrier too; "cc": `or` sets
  // the flags.
  asm volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Set once membarrier has been registered for this process.
extern std::atomic<bool> membarrier_enabled;

// Registers this process for expedited membarrier (idempotent). Call before
// the threads that use the fences start.
void enable_asymmetric_fences() noexcept;

// The hot half: orders this thread's earlier stores before its later loads
// with respect to a heavy_fence() on another thread.
inline void light_fence() noexcept {
#if defined(GORO_TSAN)
  std::atomic_thread_fence(std::memory_order_seq_cst);
#else
  // Relaxed: the flag only selects the mechanism; it is set before any
  // thread that calls this starts (or is seen through run()'s lock).
  if (membarrier_enabled.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler barrier only
  } else {
    full_fence();
  }
#endif
}

// The cold half: a full fence on this thread and, in effect, on every other
// running thread of the process.
void heavy_fence() noexcept;

}  // namespace goro::detail

#endif  // GORO_DETAIL_ASYMMETRIC_FENCE_HPP_
