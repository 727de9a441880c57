// run_queue_test: the lock-free local run queue (lib/run_queue.hpp) and the
// global run queue (lib/global_queue.hpp), alone and under concurrent
// owner/thief traffic.
#include "run_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "global_queue.hpp"
#include "test_scale.hpp"

namespace {

using goro::detail::GlobalQueue;
using goro::detail::RunQueue;
using Entry = RunQueue::Entry;

std::vector<Entry> drain(RunQueue& q) {
  std::vector<Entry> out;
  Entry e;
  while (q.pop(e)) out.push_back(e);
  return out;
}

std::vector<Entry> drain(GlobalQueue& q) {
  std::vector<Entry> out;
  Entry buf[7];
  while (std::size_t n = q.pop_batch(buf, 7)) out.insert(out.end(), buf, buf + n);
  return out;
}

std::vector<Entry> iota_entries(Entry first, std::size_t n) {
  std::vector<Entry> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = first + i;
  return v;
}

// --- RunQueue, one thread ----------------------------------------------------

TEST(RunQueue, ReportsItsCapacityAndStartsEmpty) {
  RunQueue q(16);
  EXPECT_EQ(q.capacity(), 16u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  Entry e = 123;
  EXPECT_FALSE(q.pop(e));
  EXPECT_EQ(e, 123u);  // untouched
}

TEST(RunQueue, PushPopIsFifo) {
  RunQueue q(8);
  for (Entry v = 1; v <= 5; ++v) ASSERT_TRUE(q.push(v));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(drain(q), iota_entries(1, 5));
  EXPECT_TRUE(q.empty());
}

TEST(RunQueue, PushOnFullQueueFailsAndChangesNothing) {
  RunQueue q(8);
  for (Entry v = 1; v <= 8; ++v) ASSERT_TRUE(q.push(v));
  EXPECT_FALSE(q.push(99));
  EXPECT_EQ(q.size(), 8u);
  Entry e;
  ASSERT_TRUE(q.pop(e));
  EXPECT_EQ(e, 1u);
  EXPECT_TRUE(q.push(9));  // room again
  EXPECT_FALSE(q.push(10));
  EXPECT_EQ(drain(q), iota_entries(2, 8));
}

TEST(RunQueue, SpillHalfTakesTheOldestHalf) {
  RunQueue q(8);
  for (Entry v = 1; v <= 8; ++v) ASSERT_TRUE(q.push(v));
  Entry out[4] = {};
  ASSERT_EQ(q.spill_half(out), 4u);
  EXPECT_EQ(std::vector<Entry>(out, out + 4), iota_entries(1, 4));
  EXPECT_EQ(q.size(), 4u);
  EXPECT_TRUE(q.push(9));
  EXPECT_EQ(drain(q), iota_entries(5, 5));
}

TEST(RunQueue, SpillHalfOnAQueueThatIsNotFullDoesNothing) {
  RunQueue q(8);
  for (Entry v = 1; v <= 7; ++v) ASSERT_TRUE(q.push(v));
  Entry out[4] = {};
  EXPECT_EQ(q.spill_half(out), 0u);
  EXPECT_EQ(drain(q), iota_entries(1, 7));
}

TEST(RunQueue, StealHalfTakesTheOlderHalfRoundedUpAndHandsOneOut) {
  RunQueue victim(8);
  RunQueue thief(8);
  for (Entry v = 1; v <= 5; ++v) ASSERT_TRUE(victim.push(v));
  Entry out = 0;
  ASSERT_TRUE(thief.steal_half_into(victim, out));
  // ceil(5/2) = 3 oldest: 1, 2, 3; the last of them is handed out.
  EXPECT_EQ(out, 3u);
  EXPECT_EQ(thief.size(), 2u);
  EXPECT_EQ(drain(thief), iota_entries(1, 2));
  EXPECT_EQ(drain(victim), iota_entries(4, 2));
}

TEST(RunQueue, StealFromSmallQueues) {
  RunQueue victim(8);
  RunQueue thief(8);
  Entry out = 0;
  EXPECT_FALSE(thief.steal_half_into(victim, out));  // empty victim
  EXPECT_EQ(out, 0u);

  ASSERT_TRUE(victim.push(1));
  ASSERT_TRUE(thief.steal_half_into(victim, out));  // one entry: handed out, nothing queued
  EXPECT_EQ(out, 1u);
  EXPECT_TRUE(thief.empty());
  EXPECT_TRUE(victim.empty());

  ASSERT_TRUE(victim.push(2));
  ASSERT_TRUE(victim.push(3));
  ASSERT_TRUE(thief.steal_half_into(victim, out));  // two: takes one, the older
  EXPECT_EQ(out, 2u);
  EXPECT_TRUE(thief.empty());
  EXPECT_EQ(drain(victim), std::vector<Entry>{3});
}

TEST(RunQueue, StealFromAFullQueueTakesHalf) {
  RunQueue victim(8);
  RunQueue thief(8);
  for (Entry v = 1; v <= 8; ++v) ASSERT_TRUE(victim.push(v));
  Entry out = 0;
  ASSERT_TRUE(thief.steal_half_into(victim, out));
  EXPECT_EQ(out, 4u);
  EXPECT_EQ(drain(thief), iota_entries(1, 3));
  EXPECT_EQ(drain(victim), iota_entries(5, 4));
}

TEST(RunQueue, StolenEntriesAreVisibleToTheThiefsOwnThieves) {
  RunQueue victim(8);
  RunQueue thief(8);
  RunQueue second(8);
  for (Entry v = 1; v <= 8; ++v) ASSERT_TRUE(victim.push(v));
  Entry out = 0;
  ASSERT_TRUE(thief.steal_half_into(victim, out));  // thief holds 1, 2, 3
  ASSERT_TRUE(second.steal_half_into(thief, out));  // takes 1, 2
  EXPECT_EQ(out, 2u);
  EXPECT_EQ(drain(second), std::vector<Entry>{1});
  EXPECT_EQ(drain(thief), std::vector<Entry>{3});
}

// Pushes `entry` and returns the position it went to.
std::uint32_t push_at(RunQueue& q, Entry entry) {
  const std::uint32_t position = q.next_position();
  EXPECT_TRUE(q.push(entry));
  return position;
}

TEST(RunQueue, NextPositionAdvancesWithEachPush) {
  RunQueue q(4);
  const std::uint32_t first = q.next_position();
  ASSERT_TRUE(q.push(1));
  EXPECT_EQ(q.next_position(), first + 1);
  Entry e;
  ASSERT_TRUE(q.pop(e));
  EXPECT_EQ(q.next_position(), first + 1);  // pops do not move it
}

TEST(RunQueue, EraseAtTombstonesTheEntryAtThatPosition) {
  RunQueue q(8);
  std::vector<std::uint32_t> position;
  for (Entry v = 1; v <= 5; ++v) position.push_back(push_at(q, v));
  EXPECT_TRUE(q.erase_at(position[3], 4));
  EXPECT_EQ(q.size(), 5u);                   // a tombstone still occupies its slot
  EXPECT_FALSE(q.erase_at(position[3], 4));  // already a tombstone
  EXPECT_TRUE(q.erase_at(position[0], 1));   // the oldest live entry too
  EXPECT_EQ(drain(q), (std::vector<Entry>{0, 2, 3, 0, 5}));
}

TEST(RunQueue, EraseAtRequiresTheSameEntry) {
  RunQueue q(8);
  const std::uint32_t position = push_at(q, 7);
  EXPECT_FALSE(q.erase_at(position, 8));
  EXPECT_EQ(drain(q), std::vector<Entry>{7});
}

TEST(RunQueue, EraseAtIgnoresPositionsNotYetPushed) {
  RunQueue q(4);
  ASSERT_TRUE(q.push(1));
  EXPECT_FALSE(q.erase_at(q.next_position(), 0));
  EXPECT_FALSE(q.erase_at(q.next_position() + 1, 1));
  EXPECT_EQ(drain(q), std::vector<Entry>{1});
}

TEST(RunQueue, EraseAtIgnoresConsumedPositionsEvenWhenTheSlotWasReused) {
  RunQueue q(4);
  const std::uint32_t old_position = push_at(q, 7);
  Entry e;
  ASSERT_TRUE(q.pop(e));
  ASSERT_EQ(e, 7u);
  // Four more pushes: the last reuses the slot of `old_position`, with the
  // same entry value.
  for (Entry v : {1, 2, 3}) ASSERT_TRUE(q.push(v));
  const std::uint32_t new_position = push_at(q, 7);
  ASSERT_EQ(new_position - old_position, 4u);
  EXPECT_FALSE(q.erase_at(old_position, 7))
      << "tombstoned a live entry through a consumed position";
  EXPECT_EQ(drain(q), (std::vector<Entry>{1, 2, 3, 7}));
}

TEST(RunQueue, EraseAtIgnoresPositionsTakenByAThief) {
  RunQueue victim(8);
  RunQueue thief(8);
  const std::uint32_t position = push_at(victim, 1);
  ASSERT_TRUE(victim.push(2));
  Entry out = 0;
  ASSERT_TRUE(thief.steal_half_into(victim, out));
  ASSERT_EQ(out, 1u);
  EXPECT_FALSE(victim.erase_at(position, 1));
  EXPECT_EQ(drain(victim), std::vector<Entry>{2});
}

TEST(RunQueue, TombstonesTravelThroughStealAndSpill) {
  RunQueue victim(4);
  RunQueue thief(4);
  std::vector<std::uint32_t> position;
  for (Entry v = 1; v <= 4; ++v) position.push_back(push_at(victim, v));
  ASSERT_TRUE(victim.erase_at(position[0], 1));
  Entry spilled[2] = {9, 9};
  ASSERT_EQ(victim.spill_half(spilled), 2u);
  EXPECT_EQ(spilled[0], 0u);
  EXPECT_EQ(spilled[1], 2u);
  ASSERT_TRUE(victim.erase_at(position[2], 3));
  Entry out = 9;
  ASSERT_TRUE(thief.steal_half_into(victim, out));
  EXPECT_EQ(out, 0u);
  EXPECT_EQ(drain(victim), std::vector<Entry>{4});
}

TEST(RunQueue, ClearForgetsEveryEntry) {
  RunQueue q(8);
  for (Entry v = 1; v <= 6; ++v) ASSERT_TRUE(q.push(v));
  q.clear();
  EXPECT_TRUE(q.empty());
  Entry e;
  EXPECT_FALSE(q.pop(e));
  for (Entry v = 1; v <= 8; ++v) EXPECT_TRUE(q.push(v));  // full capacity again
}

// The 32-bit counters themselves cannot be wrapped in reasonable time
// (2^32 operations); instead the ring index wraps tens of thousands of times
// on a capacity-4 queue, checked against a std::deque model through every
// operation, with a thief queue whose counters wrap as well.
TEST(RunQueue, RingIndexWrapsManyTimesAgainstAModel) {
  RunQueue q(4);
  RunQueue thief(4);
  std::deque<Entry> model;
  std::mt19937 rng(12345);
  Entry next = 1;
  const long ops = goro::test::scaled(400'000, 40'000);
  for (long op = 0; op < ops; ++op) {
    switch (rng() % 6) {
      case 0:
      case 1:
      case 2: {  // push (spill when full)
        if (q.push(next)) {
          ASSERT_LT(model.size(), 4u);
          model.push_back(next);
        } else {
          ASSERT_EQ(model.size(), 4u);
          Entry half[2];
          ASSERT_EQ(q.spill_half(half), 2u);
          ASSERT_EQ(half[0], model[0]);
          ASSERT_EQ(half[1], model[1]);
          model.pop_front();
          model.pop_front();
          ASSERT_TRUE(q.push(next));
          model.push_back(next);
        }
        ++next;
        break;
      }
      case 3: {  // pop
        Entry e = 0;
        if (q.pop(e)) {
          ASSERT_FALSE(model.empty());
          ASSERT_EQ(e, model.front());
          model.pop_front();
        } else {
          ASSERT_TRUE(model.empty());
        }
        break;
      }
      case 4: {  // steal into the (empty) thief queue, then drain it
        Entry out = 0;
        const std::size_t n = model.size() - model.size() / 2;
        if (thief.steal_half_into(q, out)) {
          ASSERT_GT(n, 0u);
          std::vector<Entry> expected(model.begin(), model.begin() + static_cast<long>(n));
          model.erase(model.begin(), model.begin() + static_cast<long>(n));
          ASSERT_EQ(out, expected.back());
          expected.pop_back();
          ASSERT_EQ(drain(thief), expected);
        } else {
          ASSERT_EQ(n, 0u);
        }
        break;
      }
      case 5: {  // tombstone a random live entry through its position
        if (!model.empty()) {
          const std::size_t i = rng() % model.size();
          const std::uint32_t position =
              q.next_position() - static_cast<std::uint32_t>(model.size() - i);
          if (model[i] != 0) {
            ASSERT_FALSE(q.erase_at(position, model[i] + 1000000));  // wrong entry
            ASSERT_TRUE(q.erase_at(position, model[i]));
            model[i] = 0;
          }
        }
        break;
      }
    }
    ASSERT_EQ(q.size(), model.size());
  }
  EXPECT_EQ(drain(q), std::vector<Entry>(model.begin(), model.end()));
}

// --- RunQueue, concurrently ---------------------------------------------------

// One owner pushes 1..N (popping some itself, spilling half when full) while
// thieves steal from it and from each other; every entry must be consumed
// exactly once.
void owner_and_thieves(std::uint32_t capacity, int thieves, long n) {
  const int queues = thieves + 1;
  std::vector<std::unique_ptr<RunQueue>> q;
  for (int i = 0; i < queues; ++i) q.push_back(std::make_unique<RunQueue>(capacity));
  std::vector<std::vector<Entry>> consumed(static_cast<std::size_t>(queues));
  std::atomic<bool> owner_done{false};
  std::atomic<long> steals{0};

  std::vector<std::thread> threads;
  for (int t = 1; t <= thieves; ++t) {
    threads.emplace_back([&, t] {
      RunQueue& mine = *q[static_cast<std::size_t>(t)];
      std::vector<Entry>& got = consumed[static_cast<std::size_t>(t)];
      std::mt19937 rng(static_cast<unsigned>(t));
      for (;;) {
        const bool last_pass = owner_done.load();
        // Mostly the owner; sometimes another thief.
        std::size_t victim = rng() % 4 != 0 ? 0 : rng() % static_cast<unsigned>(queues);
        if (victim == static_cast<std::size_t>(t)) victim = 0;
        Entry out = 0;
        if (mine.steal_half_into(*q[victim], out)) {
          steals.fetch_add(1, std::memory_order_relaxed);
          got.push_back(out);
        }
        Entry e;
        while (mine.pop(e)) got.push_back(e);
        if (last_pass) break;
      }
    });
  }

  {
    RunQueue& mine = *q[0];
    std::vector<Entry>& got = consumed[0];
    std::vector<Entry> half(capacity / 2);
    for (Entry v = 1; v <= static_cast<Entry>(n); ++v) {
      while (!mine.push(v)) {
        const std::uint32_t spilled = mine.spill_half(half.data());
        got.insert(got.end(), half.begin(), half.begin() + spilled);
      }
      if (v % 3 == 0) {
        Entry e;
        if (mine.pop(e)) got.push_back(e);
      }
    }
    Entry e;
    while (mine.pop(e)) got.push_back(e);
    owner_done.store(true);
  }
  for (auto& t : threads) t.join();

  std::vector<Entry> all;
  for (auto& v : consumed) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n)) << "entries lost or duplicated";
  for (long i = 0; i < n; ++i) {
    ASSERT_EQ(all[static_cast<std::size_t>(i)], static_cast<Entry>(i + 1)) << "at " << i;
  }
  for (int i = 0; i < queues; ++i) EXPECT_TRUE(q[static_cast<std::size_t>(i)]->empty());
  // Not asserted: how many steals happened (scheduling dependent).
  ::testing::Test::RecordProperty("steals", static_cast<int>(steals.load()));
}

TEST(RunQueue, ConcurrentOwnerAndThievesConsumeEveryEntryExactlyOnce) {
  owner_and_thieves(256, 3, goro::test::scaled(2'000'000));
}

TEST(RunQueue, ConcurrentStealsOnATinyQueueConsumeEveryEntryExactlyOnce) {
  owner_and_thieves(4, 2, goro::test::scaled(1'000'000));
}

// --- GlobalQueue --------------------------------------------------------------

TEST(GlobalQueue, PushAndPopBatchAreFifo) {
  GlobalQueue q;
  EXPECT_EQ(q.size_hint(), 0u);
  const auto first = iota_entries(1, 5);
  q.push_batch(first.data(), first.size());
  q.push(6);
  EXPECT_EQ(q.size_hint(), 6u);
  Entry out[4];
  ASSERT_EQ(q.pop_batch(out, 4), 4u);
  EXPECT_EQ(std::vector<Entry>(out, out + 4), iota_entries(1, 4));
  EXPECT_EQ(q.size_hint(), 2u);
  ASSERT_EQ(q.pop_batch(out, 4), 2u);  // at most what is there
  EXPECT_EQ(std::vector<Entry>(out, out + 2), iota_entries(5, 2));
  EXPECT_EQ(q.pop_batch(out, 4), 0u);
  EXPECT_EQ(q.size_hint(), 0u);
}

TEST(GlobalQueue, PushBatchSkipsTombstones) {
  GlobalQueue q;
  const std::vector<Entry> batch = {1, 0, 2, 0, 0, 3};
  q.push_batch(batch.data(), batch.size());
  q.push(0);
  const std::vector<Entry> tombstones = {0, 0, 0};
  q.push_batch(tombstones.data(), tombstones.size());
  EXPECT_EQ(q.size_hint(), 3u);
  EXPECT_EQ(drain(q), iota_entries(1, 3));
}

TEST(GlobalQueue, GrowsPreservingOrderWhenTheRingHasWrapped) {
  GlobalQueue q;
  const auto first = iota_entries(1, 40);
  q.push_batch(first.data(), first.size());
  Entry out[30];
  ASSERT_EQ(q.pop_batch(out, 30), 30u);      // head is now mid-ring
  const auto more = iota_entries(41, 1000);  // wraps, then grows several times
  for (std::size_t i = 0; i < more.size(); i += 100) q.push_batch(more.data() + i, 100);
  EXPECT_EQ(q.size_hint(), 1010u);
  EXPECT_EQ(drain(q), iota_entries(31, 1010));
}

TEST(GlobalQueue, StaysFifoAfterABurstGrewAndDrained) {
  GlobalQueue q;
  const auto burst = iota_entries(1, 20'000);  // grows the ring far past its start
  q.push_batch(burst.data(), burst.size());
  EXPECT_EQ(drain(q), burst);  // drained: the ring may shrink back
  EXPECT_EQ(q.size_hint(), 0u);
  for (Entry round = 0; round < 3; ++round) {
    const auto more = iota_entries(100'000 * (round + 1), 300);
    q.push_batch(more.data(), more.size());
    EXPECT_EQ(q.size_hint(), 300u);
    EXPECT_EQ(drain(q), more);
  }
}

TEST(GlobalQueue, ClearForgetsEveryEntry) {
  GlobalQueue q;
  const auto batch = iota_entries(1, 100);
  q.push_batch(batch.data(), batch.size());
  q.clear();
  EXPECT_EQ(q.size_hint(), 0u);
  Entry out[1];
  EXPECT_EQ(q.pop_batch(out, 1), 0u);
  q.push(7);
  EXPECT_EQ(drain(q), std::vector<Entry>{7});
}

TEST(GlobalQueue, ShrinksAsItDrainsAfterABurst) {
  GlobalQueue q;
  EXPECT_EQ(q.capacity(), GlobalQueue::kInitialSize);
  const auto burst = iota_entries(1, 20'000);
  q.push_batch(burst.data(), burst.size());
  const std::size_t grown = q.capacity();
  EXPECT_GE(grown, burst.size());
  // Pop to just under a quarter: the ring halves (at least once) and keeps
  // the rest in order.
  std::vector<Entry> out(burst.size());
  const std::size_t keep = grown / 4 - 1;
  ASSERT_EQ(q.pop_batch(out.data(), burst.size() - keep), burst.size() - keep);
  EXPECT_LE(q.capacity(), grown / 2);
  EXPECT_GE(q.capacity(), keep);
  // Drained: back to the initial ring, and still a working FIFO.
  EXPECT_EQ(drain(q), iota_entries(burst.size() - keep + 1, keep));
  EXPECT_EQ(q.capacity(), GlobalQueue::kInitialSize);
  q.push_batch(burst.data(), 100);
  EXPECT_EQ(drain(q), iota_entries(1, 100));
}

TEST(GlobalQueue, ClearGivesTheGrownRingBack) {
  GlobalQueue q;
  const auto burst = iota_entries(1, 5000);
  q.push_batch(burst.data(), burst.size());
  ASSERT_GT(q.capacity(), GlobalQueue::kInitialSize);
  q.clear();
  EXPECT_EQ(q.capacity(), GlobalQueue::kInitialSize);
}

// Entries below this go stale (the stand-in for claim entries whose
// goroutines were joined inline while they waited in the queue).
std::atomic<Entry> stale_below{0};
std::atomic<long> stale_tests{0};
bool below_threshold(Entry e) noexcept {
  stale_tests.fetch_add(1);
  return e < stale_below.load();
}

TEST(GlobalQueue, AFullRingDropsStaleEntriesInsteadOfGrowing) {
  GlobalQueue q(&below_threshold);
  stale_below = 0;
  // Nobody pops; every entry goes stale soon after it was pushed, as on a
  // P whose goroutines join their spilled children inline.
  constexpr Entry kPushes = 100'000;
  for (Entry e = 1; e <= kPushes; ++e) {
    q.push(e);
    if (e > 10) {
      stale_below = e - 10;
      q.note_stale();
    }
  }
  EXPECT_EQ(q.capacity(), GlobalQueue::kInitialSize);
  // What is left: the live entries in order, after some stale ones that
  // were pushed since the last compaction (consumers drop those).
  std::vector<Entry> left = drain(q);
  ASSERT_LE(left.size(), GlobalQueue::kInitialSize);
  ASSERT_TRUE(std::is_sorted(left.begin(), left.end()));
  left.erase(left.begin(), std::lower_bound(left.begin(), left.end(), stale_below.load()));
  EXPECT_EQ(left, iota_entries(kPushes - 10, 11));
}

TEST(GlobalQueue, AFullRingKeepsOneOfEachRepeatedEntry) {
  // Stale claim entries whose records were recycled for new goroutines:
  // the same bits, again and again, that pass the stale test.
  GlobalQueue q(&below_threshold);
  stale_below = 0;
  for (int round = 0; round < 10'000; ++round) {
    const auto same = iota_entries(1, 8);
    q.push_batch(same.data(), same.size());
    for (int i = 0; i < 8; ++i) q.note_stale();  // the previous round's copies
  }
  EXPECT_EQ(q.capacity(), GlobalQueue::kInitialSize);
  const std::vector<Entry> left = drain(q);
  ASSERT_GE(left.size(), 8u);
  EXPECT_EQ(std::vector<Entry>(left.begin(), left.begin() + 8), iota_entries(1, 8));
  for (Entry e : left) EXPECT_TRUE(e >= 1 && e <= 8) << e;
}

TEST(GlobalQueue, AFullRingOfLiveEntriesStillGrows) {
  GlobalQueue q(&below_threshold);
  stale_below = 0;
  const auto burst = iota_entries(1, 1000);
  for (Entry e : burst) {
    q.push(e);
    if (e % 8 == 0) q.note_stale();  // notes of entries elsewhere, not here
  }
  EXPECT_GE(q.capacity(), burst.size());
  EXPECT_EQ(drain(q), burst);
}

TEST(GlobalQueue, AFullRingWithoutStaleNotesGrowsWithoutScanning) {
  // A burst of live entries (a million spawns overflowing): no entry was
  // noted stale, so a full ring doubles without testing its entries.
  GlobalQueue q(&below_threshold);
  stale_below = 0;
  stale_tests = 0;
  const auto burst = iota_entries(1, 100'000);
  q.push_batch(burst.data(), burst.size());
  EXPECT_EQ(stale_tests.load(), 0);
  EXPECT_EQ(drain(q), burst);
}

TEST(GlobalQueue, ConcurrentProducersAndConsumersSeeEveryEntryOnceInProducerOrder) {
  GlobalQueue q;
  constexpr int kProducers = 2;
  constexpr int kConsumers = 2;
  const long per_producer = goro::test::scaled(200'000);
  std::atomic<int> producers_left{kProducers};
  std::vector<std::vector<Entry>> got(kConsumers);
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      // Producer p's entries: p + 1 + kProducers * i, pushed in batches of 1..5.
      std::vector<Entry> batch;
      for (long i = 0; i < per_producer; ++i) {
        batch.push_back(static_cast<Entry>(p + 1 + kProducers * i));
        if (batch.size() == static_cast<std::size_t>(i % 5 + 1)) {
          q.push_batch(batch.data(), batch.size());
          batch.clear();
        }
      }
      q.push_batch(batch.data(), batch.size());
      producers_left.fetch_sub(1);
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      Entry buf[16];
      for (;;) {
        const bool producers_done = producers_left.load() == 0;
        const std::size_t n = q.pop_batch(buf, static_cast<std::size_t>(c * 7 + 3));
        got[static_cast<std::size_t>(c)].insert(got[static_cast<std::size_t>(c)].end(), buf,
                                                buf + n);
        if (n == 0 && producers_done) break;
      }
    });
  }
  for (auto& t : threads) t.join();
  // Each consumer saw each producer's entries in increasing order (FIFO).
  for (const auto& seen : got) {
    std::vector<Entry> last(kProducers, 0);
    for (Entry e : seen) {
      const auto p = static_cast<std::size_t>((e - 1) % kProducers);
      ASSERT_GT(e, last[p]);
      last[p] = e;
    }
  }
  std::vector<Entry> all;
  for (const auto& seen : got) all.insert(all.end(), seen.begin(), seen.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kProducers * per_producer));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
}

}  // namespace
