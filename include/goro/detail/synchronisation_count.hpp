// goro/detail/synchronisation_count.hpp
//
// Defines: goro::detail::count_synchronisation(), by which inline code (a
// channel's lock, RWMutex) tells the runtime that the calling worker
// thread synchronised.
//
// The count belongs to the P whose worker the thread is (lib/sysmon.hpp,
// SpreadProbe): sysmon compares it with the thread's CPU time to tell
// goroutines that compute between handoffs, which a second core speeds
// up, from goroutines that synchronise all the time, which it slows down
// (lib/sysmon.hpp, step 1b). This header only lets inline code reach it.
#ifndef GORO_DETAIL_SYNCHRONISATION_COUNT_HPP_
#define GORO_DETAIL_SYNCHRONISATION_COUNT_HPP_

#include <atomic>
#include <cstdint>

namespace goro::detail {

// The synchronisation count of this thread's P while the thread is its
// worker; on every other thread a count nobody reads (so that counting
// needs no branch).
extern constinit thread_local std::atomic<std::uint32_t>* tls_synchronisations;

// Counts one synchronisation (a channel lock taken, a sync primitive
// released, a steal round...). A relaxed load and store, not an atomic
// add: only the P's worker writes its P's count, and sysmon needs no
// ordering to read it (it wraps, and sysmon compares differences). Threads
// outside the runtime share the unread count: increments they lose to each
// other matter to nobody.
[[gnu::always_inline]] inline void count_synchronisation() noexcept {
  std::atomic<std::uint32_t>& count = *tls_synchronisations;
  count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace goro::detail

#endif  // GORO_DETAIL_SYNCHRONISATION_COUNT_HPP_
