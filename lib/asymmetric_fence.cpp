// lib/asymmetric_fence.cpp: membarrier-backed asymmetric fences (see
// asymmetric_fence.hpp for the argument).
#include "goro/detail/asymmetric_fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace goro::detail {

std::atomic<bool> membarrier_enabled{false};

namespace {

long membarrier(int cmd) noexcept { return syscall(SYS_membarrier, cmd, 0, 0); }

}  // namespace

void enable_asymmetric_fences() noexcept {
#if !defined(GORO_TSAN)
  if (membarrier_enabled.load(std::memory_order_relaxed)) return;
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return;
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return;
  // Relaxed: threads that read it are started afterwards (thread creation
  // synchronizes) or read it under run()'s lock.
  membarrier_enabled.store(true, std::memory_order_relaxed);
#endif
}

void heavy_fence() noexcept {
  full_fence();
  if (membarrier_enabled.load(std::memory_order_relaxed)) {
    // Cannot fail once registered; if it ever did, the seq_cst fence above
    // would not be enough for the light side, so fall back loudly.
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) __builtin_trap();
  }
}

}  // namespace goro::detail
