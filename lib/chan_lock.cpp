// lib/chan_lock.cpp: ChanLock's revocation and the owner ids and slots
// (the algorithm and its argument are in goro/detail/chan_lock.hpp).
#include "goro/detail/chan_lock.hpp"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "goro/detail/cpu_relax.hpp"
#include "mutex.hpp"

namespace goro::detail {

ChanLockOwnerSlot chan_lock_owner_slots[ChanLockTuning::kMaxOwners];
constinit thread_local std::uint32_t chan_lock_thread_id = 0;

namespace {

// Relaxed: a statistic.
std::atomic<std::uint64_t> revocations{0};

// Ids not in use by a live thread. Id 0 means "none" and is never handed
// out. Guarded by its mutex, which also orders a release before the next
// assign of the same id (the hand-over argued in chan_lock.hpp).
struct IdPool {
  Mutex mu;
  std::vector<std::uint32_t> free ABSL_GUARDED_BY(mu);
  std::uint32_t next ABSL_GUARDED_BY(mu) = 1;
};

IdPool& id_pool() {
  static IdPool* pool = new IdPool;  // never destroyed: threads may outlive statics
  return *pool;
}

}  // namespace

void assign_chan_lock_thread_id() noexcept {
  if (chan_lock_thread_id != 0) return;
  IdPool& pool = id_pool();
  MutexLock lock(pool.mu);
  if (!pool.free.empty()) {
    chan_lock_thread_id = pool.free.back();
    pool.free.pop_back();
  } else if (pool.next < ChanLockTuning::kMaxOwners) {
    chan_lock_thread_id = pool.next++;
  }
}

void release_chan_lock_thread_id() noexcept {
  if (chan_lock_thread_id == 0) return;
  IdPool& pool = id_pool();
  MutexLock lock(pool.mu);
  pool.free.push_back(chan_lock_thread_id);
  chan_lock_thread_id = 0;
}

std::uint64_t chan_lock_revocations() noexcept {
  return revocations.load(std::memory_order_relaxed);  // a statistic
}

void ChanLock::revoke(std::uint32_t biased_to) noexcept {
  // Relaxed store, then the heavy fence: the revoker's half of the Dekker
  // pair (chan_lock.hpp). After it, the owner either sees the change at its
  // reload or had already announced itself in its slot, which we wait out.
  bias_.store(kUnbiased, std::memory_order_relaxed);
  heavy_fence();
  revocations.fetch_add(1, std::memory_order_relaxed);  // a statistic
  const ChanLockOwnerSlot& slot = chan_lock_owner_slots[biased_to];
  for (int i = 0; i < ChanLockTuning::kHeldPerThread; ++i) {
    // Acquire: pairs with the owner's release when it clears the entry, so
    // its critical section happens before ours.
    for (unsigned spins = 0; slot.held[i].load(std::memory_order_acquire) == this; ++spins) {
      if (spins < 64) {
        cpu_relax();
      } else {
        std::this_thread::yield();  // the owner may have been preempted inside
      }
    }
  }
  // The next bias has to be earned by a longer streak.
  if (doublings_ < ChanLockTuning::kMaxDoublings) ++doublings_;
  streak_owner_ = 0;
  streak_ = 0;
}

}  // namespace goro::detail
