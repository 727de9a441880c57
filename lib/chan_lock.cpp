// lib/chan_lock.cpp: ChanLock's revocation and thread identities (the
// algorithm and its argument are in goro/detail/chan_lock.hpp).
#include "goro/detail/chan_lock.hpp"

#include <atomic>
#include <cstdint>
#include <thread>

namespace goro::detail {

constinit thread_local std::uint32_t chan_lock_thread_id = 0;

namespace {

// Relaxed: each id only has to be unique, which the atomicity of the
// increment alone gives.
std::atomic<std::uint32_t> next_thread_id{1};
std::atomic<std::uint64_t> revocations{0};

}  // namespace

void assign_chan_lock_thread_id() noexcept {
  if (chan_lock_thread_id != 0) return;
  std::uint32_t id = next_thread_id.fetch_add(1, std::memory_order_relaxed);
  // Ids must stay clear of the kRevoked bit; after 2^31 worker threads,
  // later ones simply never own a bias (id 0).
  chan_lock_thread_id = id < 0x8000'0000u ? id : 0;
}

std::uint64_t chan_lock_revocations() noexcept {
  return revocations.load(std::memory_order_relaxed);  // a statistic
}

void ChanLock::revoke(std::uint32_t biased_to) noexcept {
  // Relaxed store, then the heavy fence: the revoker's half of the Dekker
  // pair (chan_lock.hpp). After it, the owner either sees kRevoked at its
  // next reload or had already set busy, which we wait out below.
  bias_.store(biased_to | kRevoked, std::memory_order_relaxed);
  heavy_fence();
  revocations.fetch_add(1, std::memory_order_relaxed);  // a statistic
  // Acquire: pairs with the owner's release of busy, so its critical
  // sections happen before ours.
  for (unsigned spins = 0; busy_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();  // the owner may have been preempted inside
    }
  }
}

}  // namespace goro::detail
