// asymmetric_fence_test: the store-load fences of
// goro/detail/asymmetric_fence.hpp, by the store-buffering litmus test
// (Dekker's pattern, the one the scheduler's spin/park handshake and the
// spawn stack's pop rely on): each of two threads stores its flag, fences,
// then loads the other's flag. Without a store-load fence both loads can
// read 0 (x86 lets a load pass an earlier store still in the store
// buffer); with one, at least one thread sees the other's store.
#include "goro/detail/asymmetric_fence.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "test_scale.hpp"

namespace {

using goro::detail::full_fence;
using goro::detail::heavy_fence;
using goro::detail::light_fence;

// The litmus test's shared state. Round r's flags hold r once stored, so
// nothing needs resetting between rounds.
struct Litmus {
  alignas(64) std::atomic<long> arrived{0};  // a barrier: 2r once both reach round r
  alignas(64) std::atomic<long> x{0};
  alignas(64) std::atomic<long> y{0};
  alignas(64) std::atomic<long> done{0};  // 2r once both finished round r
  long x_saw = 0;                         // what each thread read; compared by
  long y_saw = 0;                         // the first thread once both are done
};

// Spins until `word` reaches `value`, yielding after a while so that the
// test also finishes on one CPU.
void wait_for(const std::atomic<long>& word, long value) {
  for (int spins = 0; word.load(std::memory_order_acquire) < value; ++spins) {
    if (spins > 1000) std::this_thread::yield();
  }
}

// A few iterations of nothing (0 to 15, from a per-thread generator), so
// that the two threads' stores and loads line up differently each round.
void jitter(std::uint32_t& state) {
  state = state * 1664525U + 1013904223U;
  for (std::uint32_t i = (state >> 28); i > 0; --i)
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

// One thread's side of `rounds` rounds: meet the other thread, store
// `mine`, fence, load `theirs` into `saw`.
template <class Fence>
void litmus_side(Litmus& t, long rounds, std::atomic<long>& mine, const std::atomic<long>& theirs,
                 long& saw, Fence fence, std::uint32_t seed, long& both_stale,
                 const long* other_saw) {
  for (long r = 1; r <= rounds; ++r) {
    t.arrived.fetch_add(1, std::memory_order_acq_rel);
    wait_for(t.arrived, 2 * r);
    jitter(seed);
    // Relaxed store and load: the fence alone orders them (the point of
    // the test); acquire and release would not forbid the stale outcome.
    mine.store(r, std::memory_order_relaxed);
    fence();
    saw = theirs.load(std::memory_order_relaxed);
    t.done.fetch_add(1, std::memory_order_acq_rel);
    if (other_saw != nullptr) {
      wait_for(t.done, 2 * r);  // acquire: the other thread's reading
      if (saw < r && *other_saw < r) ++both_stale;
    }
  }
}

// Runs `rounds` rounds with `first_fence` between the first thread's store
// of x and its load of y, and `second_fence` likewise for y and x; returns
// the rounds in which both loads read the previous round's value.
template <class FirstFence, class SecondFence>
long both_stale_rounds(long rounds, FirstFence first_fence, SecondFence second_fence) {
  Litmus t;
  long both_stale = 0;
  long unused = 0;
  std::thread second(
      [&] { litmus_side(t, rounds, t.y, t.x, t.y_saw, second_fence, 7U, unused, nullptr); });
  litmus_side(t, rounds, t.x, t.y, t.x_saw, first_fence, 13U, both_stale, &t.y_saw);
  second.join();
  return both_stale;
}

TEST(FullFence, StoreBufferingNeverLetsBothThreadsReadStaleValues) {
  const long rounds = goro::test::scaled(200'000, 10'000);
  EXPECT_EQ(both_stale_rounds(rounds, full_fence, full_fence), 0) << "of " << rounds << " rounds";
}

TEST(AsymmetricFence, LightAgainstHeavyNeverLetsBothThreadsReadStaleValues) {
  goro::detail::enable_asymmetric_fences();  // before the threads start
  // heavy_fence is a system call (membarrier) where available: fewer rounds.
  const long rounds = goro::test::scaled(20'000, 2'000);
  EXPECT_EQ(both_stale_rounds(rounds, light_fence, heavy_fence), 0) << "of " << rounds << " rounds";
}

}  // namespace
