// net/mutex.cpp: Mutex's contended path, steps L2 and L3 (net/mutex.hpp
// has the algorithm and why).
#include "mutex.hpp"

namespace goro::net::internal {

namespace {

// Rounds of L2 before sleeping: a section is a few hundred instructions,
// so a holder that is running leaves it within them.
constexpr int kSpinRounds = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

void Mutex::lock_contended() {
  // L2. Relaxed reads: only the compare-exchange that takes the lock
  // orders anything (acquire, as in lock()).
  for (int round = 0; round < kSpinRounds; ++round) {
    std::uint32_t seen = word_.load(std::memory_order_relaxed);
    if (seen == kUnlocked && word_.compare_exchange_weak(seen, kLocked, std::memory_order_acquire,
                                                         std::memory_order_relaxed)) {
      return;
    }
    cpu_relax();
  }
  // L3. Acquire: taking the lock here (the word was 0) orders the section
  // after the previous holder's release, as at L1.
  while (word_.exchange(kSleepers, std::memory_order_acquire) != kUnlocked) {
    // Sleeps only while the word is still 2; U1 wakes one sleeper.
    word_.wait(kSleepers, std::memory_order_relaxed);
  }
}

}  // namespace goro::net::internal
