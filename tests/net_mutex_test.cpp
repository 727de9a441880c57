// Tests for goro::net::internal::Mutex (net/mutex.hpp): mutual exclusion
// under contention, on the fast path (L1), the spin (L2) and the sleep
// (L3, U1's wake). Run under ThreadSanitizer in CI, which checks that the
// lock orders the sections (a plain counter guarded only by it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mutex.hpp"

namespace {

using goro::net::internal::Mutex;
using goro::net::internal::MutexLock;

TEST(NetMutex, ContendedIncrementsAreNeverLost) {
  Mutex mutex;
  long counter = 0;  // guarded by `mutex` alone
  constexpr int kThreads = 4;
  constexpr int kRounds = 200'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        MutexLock lock(&mutex);
        ++counter;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  MutexLock lock(&mutex);
  EXPECT_EQ(counter, long{kThreads} * kRounds);
}

// A holder that keeps the lock long enough for the others to give up
// spinning and sleep: each sleeper is woken and gets the lock in turn.
TEST(NetMutex, SleepersWakeWhenALongHolderUnlocks) {
  Mutex mutex;
  int entered = 0;  // guarded by `mutex`
  std::atomic<int> waiting{0};
  constexpr int kWaiters = 3;
  std::vector<std::thread> threads;
  {
    MutexLock hold(&mutex);
    for (int t = 0; t < kWaiters; ++t) {
      threads.emplace_back([&] {
        waiting.fetch_add(1);
        MutexLock lock(&mutex);
        ++entered;
      });
    }
    // Every waiter has started towards the lock; the sleep gives them time
    // to pass their spin and sleep (the verdict does not depend on it: a
    // waiter still spinning when the lock is released takes it at L2).
    while (waiting.load() < kWaiters) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(entered, 0) << "a waiter entered while the lock was held";
  }
  for (std::thread& thread : threads) thread.join();
  MutexLock lock(&mutex);
  EXPECT_EQ(entered, kWaiters);
}

// Short holds from many threads, each section checking that it is alone:
// the word's three states turn over many times (newcomers racing woken
// sleepers at L1).
TEST(NetMutex, SectionsNeverOverlap) {
  Mutex mutex;
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        MutexLock lock(&mutex);
        if (inside.fetch_add(1) != 0) overlap.store(true);
        if (i % 512 == 0) std::this_thread::yield();  // a holder descheduled now and then
        inside.fetch_sub(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(overlap.load());
}

}  // namespace
