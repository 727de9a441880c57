// Tests of goro::detail::ChanLock, the channel's biased lock: when it
// biases, that a revocation hands the lock over without losing mutual
// exclusion, and that channels stay correct across a revocation.
#include "goro/detail/chan_lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/cpu_relax.hpp"
#include "test_scale.hpp"

namespace {

using goro::detail::ChanLock;
using goro::detail::ChanLockTuning;

// Burns a few hundred nanoseconds without touching memory.
void stay_a_while() {
  for (int i = 0; i < 64; ++i) {
    goro::detail::cpu_relax();
    // Keeps the loop where cpu_relax() is empty.
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
}

// Locks and unlocks `lock` `n` times on this thread.
void lock_n_times(ChanLock& lock, std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i) {
    lock.lock();
    lock.unlock();
  }
}

TEST(ChanLock, ThreadsWithoutAnIdNeverOwnTheBias) {
  ChanLock lock;
  std::thread outsider([&] { lock_n_times(lock, 4 * ChanLockTuning::kBiasAfter); });
  outsider.join();
  EXPECT_FALSE(lock.biased_for_test());
}

TEST(ChanLock, BiasesToAThreadAfterAStreakOnly) {
  goro::detail::enable_asymmetric_fences();
  if (!goro::detail::chan_lock_bias_allowed()) GTEST_SKIP() << "membarrier unavailable";
  ChanLock lock;
  std::thread worker([&] {
    goro::detail::assign_chan_lock_thread_id();
    lock_n_times(lock, ChanLockTuning::kBiasAfter - 1);
    EXPECT_FALSE(lock.biased_for_test());
    lock_n_times(lock, 1);
    EXPECT_TRUE(lock.biased_for_test());
    goro::detail::release_chan_lock_thread_id();
  });
  worker.join();
}

TEST(ChanLock, AnInterruptedStreakStartsOver) {
  goro::detail::enable_asymmetric_fences();
  ChanLock lock;
  std::atomic<int> turn{0};
  // Two threads with ids alternate in runs shorter than kBiasAfter.
  auto alternate = [&](int me) {
    goro::detail::assign_chan_lock_thread_id();
    for (int round = 0; round < 20; ++round) {
      while (turn.load(std::memory_order_acquire) % 2 != me) std::this_thread::yield();
      lock_n_times(lock, ChanLockTuning::kBiasAfter / 2);
      turn.fetch_add(1, std::memory_order_release);
    }
    goro::detail::release_chan_lock_thread_id();
  };
  std::thread a(alternate, 0);
  std::thread b(alternate, 1);
  a.join();
  b.join();
  EXPECT_FALSE(lock.biased_for_test());
}

// A revoked lock can be biased again, to any thread, but only after a
// streak twice as long as the one before.
TEST(ChanLock, ARevokedLockIsBiasedAgainAfterADoubledStreak) {
  goro::detail::enable_asymmetric_fences();
  if (!goro::detail::chan_lock_bias_allowed()) GTEST_SKIP() << "membarrier unavailable";
  ChanLock lock;
  auto on_worker_thread = [&](auto fn) {
    std::thread t([&] {
      goro::detail::assign_chan_lock_thread_id();
      fn();
      goro::detail::release_chan_lock_thread_id();
    });
    t.join();
  };
  std::thread first([&] {
    goro::detail::assign_chan_lock_thread_id();
    lock_n_times(lock, ChanLockTuning::kBiasAfter);
    EXPECT_TRUE(lock.biased_for_test());
    // Keeps its id (and so the bias) while the second thread revokes.
    on_worker_thread([&] {
      const std::uint64_t before = goro::detail::chan_lock_revocations();
      lock_n_times(lock, 1);
      EXPECT_EQ(goro::detail::chan_lock_revocations() - before, 1u);
      EXPECT_FALSE(lock.biased_for_test());
      lock_n_times(lock, ChanLockTuning::kBiasAfter);  // the old streak length
      EXPECT_FALSE(lock.biased_for_test());
      lock_n_times(lock, ChanLockTuning::kBiasAfter);  // twice it
      EXPECT_TRUE(lock.biased_for_test());
    });
    goro::detail::release_chan_lock_thread_id();
  });
  first.join();
}

// The owner keeps taking the lock on its fast path while other threads
// revoke and take it: every increment of a plain counter under the lock
// survives (a lost one means two threads were inside at once). Many fresh
// locks, so that revocations race the owner at every point of its path.
TEST(ChanLock, RevocationKeepsMutualExclusion) {
  goro::detail::enable_asymmetric_fences();
  if (!goro::detail::chan_lock_bias_allowed()) GTEST_SKIP() << "membarrier unavailable";
  const int rounds = static_cast<int>(goro::test::scaled(200, 40));
  constexpr int kOthers = 2;
  constexpr std::uint64_t kOtherIncrements = 20;
  const std::uint64_t revocations_before = goro::detail::chan_lock_revocations();
  for (int round = 0; round < rounds; ++round) {
    struct Shared {
      ChanLock lock;
      std::uint64_t counter = 0;  // guarded by lock
    };
    auto shared = std::make_unique<Shared>();
    std::atomic<bool> biased{false};
    std::atomic<int> others_done{0};
    std::uint64_t owner_increments = 0;
    std::thread owner([&] {
      goro::detail::assign_chan_lock_thread_id();
      lock_n_times(shared->lock, ChanLockTuning::kBiasAfter);
      biased.store(true, std::memory_order_release);
      // Keeps going until the others are through, so that their first lock
      // (the revocation) meets the owner anywhere on its fast path.
      while (others_done.load(std::memory_order_acquire) < kOthers) {
        shared->lock.lock();
        // A read-modify-write stretched over a while: the owner is inside
        // most of the time, so a revoker that did not wait would be caught.
        // Once revoked, it stops stretching and lets the others in.
        const bool revoked = !shared->lock.biased_for_test();
        const std::uint64_t seen = shared->counter;
        if (!revoked) stay_a_while();
        shared->counter = seen + 1;
        shared->lock.unlock();
        ++owner_increments;
        if (revoked) std::this_thread::yield();
      }
      goro::detail::release_chan_lock_thread_id();
    });
    std::vector<std::thread> others;
    for (int t = 0; t < kOthers; ++t) {
      others.emplace_back([&] {
        goro::detail::assign_chan_lock_thread_id();
        while (!biased.load(std::memory_order_acquire)) {
        }
        for (std::uint64_t i = 0; i < kOtherIncrements; ++i) {
          shared->lock.lock();
          ++shared->counter;
          shared->lock.unlock();
        }
        others_done.fetch_add(1, std::memory_order_release);
        goro::detail::release_chan_lock_thread_id();
      });
    }
    owner.join();
    for (auto& t : others) t.join();
    shared->lock.lock();
    ASSERT_EQ(shared->counter, owner_increments + kOthers * kOtherIncrements) << "round " << round;
    shared->lock.unlock();
  }
  // At least one revocation per lock (the owner may earn the bias back
  // while the others are descheduled, and lose it again).
  EXPECT_GE(goro::detail::chan_lock_revocations() - revocations_before,
            static_cast<std::uint64_t>(rounds));
}

goro::Task<void> echo(goro::RecvChan<int> in, goro::SendChan<int> out) {
  while (auto v = co_await in.recv()) co_await out.send(*v);
  out.close();
}

// With one P, a ping-pong pair biases both channels to the worker thread.
// Then a thread outside the runtime sends on one of them, which revokes the
// bias; the values still arrive in order and nothing is lost.
goro::Task<long> ping_pong_then_outside_sender(long rounds) {
  goro::Chan<int> a = goro::make_chan<int>(1);
  goro::Chan<int> b = goro::make_chan<int>();
  goro::go(echo(a, b));
  long sum = 0;
  for (long i = 0; i < rounds; ++i) {
    co_await a.send(static_cast<int>(i));
    sum += *co_await b.recv();
  }
  const bool biased = a.state()->lock.biased_for_test() && b.state()->lock.biased_for_test();
  EXPECT_TRUE(biased || !goro::detail::chan_lock_bias_allowed());
  std::thread outsider([a] {
    while (!a.try_send(-1)) std::this_thread::yield();
  });
  sum += *co_await b.recv();  // the outsider's -1, echoed
  outsider.join();
  EXPECT_TRUE(!a.state()->lock.biased_for_test() || !biased);
  for (long i = 0; i < rounds; ++i) {  // the channels still work
    co_await a.send(1);
    sum += *co_await b.recv();
  }
  a.close();
  EXPECT_FALSE((co_await b.recv()).has_value());
  co_return sum;
}

TEST(ChanLock, ChannelsSurviveARevocationByAnOutsideThread) {
  constexpr long kRounds = 4 * ChanLockTuning::kBiasAfter;
  goro::Config config;
  config.procs = 1;
  // The outsider is what wakes the main goroutine: a long grace, so that a
  // preempted outsider is not taken for a deadlock.
  config.deadlock_grace = std::chrono::seconds(10);
  const long sum = goro::run(ping_pong_then_outside_sender(kRounds), config);
  EXPECT_EQ(sum, kRounds * (kRounds - 1) / 2 - 1 + kRounds);
}

}  // namespace
