// spawn_stack_test: the owner-LIFO, thief-FIFO spawn stack
// (lib/spawn_stack.hpp), alone, against a model, under concurrent
// owner/thief traffic that fights over the last entry, and with the owner
// dropping dead entries while thieves steal.
#include "spawn_stack.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/cpu_relax.hpp"
#include "test_scale.hpp"

namespace {

using goro::detail::SpawnStack;
using Entry = SpawnStack::Entry;

TEST(SpawnStack, StartsEmpty) {
  SpawnStack s(8);
  EXPECT_EQ(s.capacity(), 8u);
  EXPECT_TRUE(s.empty());
  Entry e = 42;
  EXPECT_FALSE(s.pop(e));
  EXPECT_FALSE(s.steal(e));
  EXPECT_EQ(e, 42u);  // untouched
}

TEST(SpawnStack, OwnerPopsNewestFirstThievesStealOldestFirst) {
  SpawnStack s(8);
  for (Entry v = 1; v <= 5; ++v) ASSERT_TRUE(s.push(v));
  EXPECT_EQ(s.size(), 5u);
  Entry e = 0;
  ASSERT_TRUE(s.pop(e));
  EXPECT_EQ(e, 5u);
  ASSERT_TRUE(s.steal(e));
  EXPECT_EQ(e, 1u);
  ASSERT_TRUE(s.pop(e));
  EXPECT_EQ(e, 4u);
  ASSERT_TRUE(s.steal(e));
  EXPECT_EQ(e, 2u);
  ASSERT_TRUE(s.pop(e));  // the last one, through the compare-exchange
  EXPECT_EQ(e, 3u);
  EXPECT_FALSE(s.pop(e));
  EXPECT_FALSE(s.steal(e));
  EXPECT_TRUE(s.empty());
}

TEST(SpawnStack, PushOnAFullStackFailsAndChangesNothing) {
  SpawnStack s(4);
  for (Entry v = 1; v <= 4; ++v) ASSERT_TRUE(s.push(v));
  EXPECT_FALSE(s.push(99));
  Entry e = 0;
  ASSERT_TRUE(s.steal(e));
  EXPECT_EQ(e, 1u);
  EXPECT_TRUE(s.push(5));  // the stolen slot is free again
  std::vector<Entry> popped;
  while (s.pop(e)) popped.push_back(e);
  EXPECT_EQ(popped, (std::vector<Entry>{5, 4, 3, 2}));
}

TEST(SpawnStack, ClearForgetsEveryEntry) {
  SpawnStack s(8);
  for (Entry v = 1; v <= 6; ++v) ASSERT_TRUE(s.push(v));
  s.clear();
  Entry e = 0;
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.pop(e));
  EXPECT_FALSE(s.steal(e));
  ASSERT_TRUE(s.push(7));
  ASSERT_TRUE(s.pop(e));
  EXPECT_EQ(e, 7u);
}

// Random pushes, pops and steals on one thread against a deque model, long
// enough for the 32-bit counters' ring positions to wrap many times.
TEST(SpawnStack, MatchesADequeModelThroughManyWraps) {
  SpawnStack s(8);
  std::deque<Entry> model;
  std::mt19937 rng(11);
  Entry next = 1;
  for (long step = 0; step < goro::test::scaled(400'000, 20'000); ++step) {
    Entry e = 0;
    switch (rng() % 5) {
      case 3: {  // peek at every depth the model holds, and one past it
        for (std::uint32_t depth = 0; depth <= model.size(); ++depth) {
          if (depth == model.size()) {
            ASSERT_FALSE(s.peek(depth, e));
          } else {
            ASSERT_TRUE(s.peek(depth, e));
            ASSERT_EQ(e, model[model.size() - 1 - depth]);
          }
        }
        break;
      }
      case 4:  // drop some of the newest: refused when it would empty the stack
        if (!model.empty()) {
          const auto count = static_cast<std::uint32_t>(1 + rng() % model.size());
          if (count < model.size()) {
            ASSERT_TRUE(s.drop_newest(count));
            model.resize(model.size() - count);
          } else {
            ASSERT_FALSE(s.drop_newest(count));
          }
        }
        break;
      case 0:
        if (model.size() < 8) {
          ASSERT_TRUE(s.push(next));
          model.push_back(next++);
        } else {
          ASSERT_FALSE(s.push(next));
        }
        break;
      case 1:
        if (model.empty()) {
          ASSERT_FALSE(s.pop(e));
        } else {
          ASSERT_TRUE(s.pop(e));
          ASSERT_EQ(e, model.back());
          model.pop_back();
        }
        break;
      case 2:
        if (model.empty()) {
          ASSERT_FALSE(s.steal(e));
        } else {
          ASSERT_TRUE(s.steal(e));
          ASSERT_EQ(e, model.front());
          model.pop_front();
        }
        break;
    }
    ASSERT_EQ(s.size(), model.size());
  }
}

// The owner's push in the concurrent tests: pushes v, popping (and handing
// each popped entry to `taken`) while the stack is full. False when it stays
// full through 10 M pops: a broken stack can end up looking full forever
// (its ends crossed), and the test then fails instead of hanging.
template <class Taken>
bool push_making_room(SpawnStack& s, Entry v, Taken&& taken) {
  Entry e = 0;
  for (long tries = 0; !s.push(v); ++tries) {
    if (tries == 10'000'000) return false;
    if (s.pop(e)) taken(e);
  }
  return true;
}

// A thief's pause between bursts of steals, when the test asks for one: a
// few hundred to a few thousand spins, so that the owner's pops run
// without a thief in flight long enough to take the bias back (B5) and the
// next thief has to revoke it (B3).
void thief_pause(bool pause, std::mt19937& rng) {
  if (!pause) return;
  const unsigned spins = 200 + rng() % 4000;
  for (unsigned i = 0; i < spins; ++i) goro::detail::cpu_relax();
}

// The owner pushes 1..N, popping after most pushes so that the stack keeps
// running down to its last entry, while thieves steal; every entry is
// consumed exactly once. `rebias_after` and `pause` make the bias change
// hands often.
void owner_and_thieves(std::uint32_t capacity, int thieves, long n,
                       std::uint32_t rebias_after = SpawnStack::kRebiasAfter, bool pause = false,
                       std::uint32_t rebias_after_max = SpawnStack::kRebiasAfterMax) {
  goro::detail::enable_asymmetric_fences();  // the owner's light fences, as under a runtime
  SpawnStack s(capacity, rebias_after, /*rebias_after_max=*/rebias_after_max);
  std::vector<std::vector<Entry>> consumed(static_cast<std::size_t>(thieves + 1));
  std::atomic<bool> owner_done{false};
  std::vector<std::thread> threads;
  for (int t = 1; t <= thieves; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Entry>& got = consumed[static_cast<std::size_t>(t)];
      std::mt19937 pauses(static_cast<unsigned>(t));
      for (;;) {
        const bool last_pass = owner_done.load();
        Entry e = 0;
        while (s.steal(e)) got.push_back(e);
        if (last_pass) break;
        thief_pause(pause, pauses);
      }
    });
  }
  std::vector<Entry>& got = consumed[0];
  std::mt19937 rng(5);
  bool stuck = false;
  for (Entry v = 1; v <= static_cast<Entry>(n) && !stuck; ++v) {
    Entry e = 0;
    stuck = !push_making_room(s, v, [&](Entry taken) { got.push_back(taken); });
    if (rng() % 4 != 0 && s.pop(e)) got.push_back(e);
  }
  Entry e = 0;
  while (s.pop(e)) got.push_back(e);
  owner_done.store(true);
  for (auto& t : threads) t.join();
  ASSERT_FALSE(stuck) << "push kept failing on a stack the owner kept popping";

  std::vector<Entry> all;
  for (auto& v : consumed) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n)) << "entries lost or duplicated";
  for (long i = 0; i < n; ++i) {
    ASSERT_EQ(all[static_cast<std::size_t>(i)], static_cast<Entry>(i + 1)) << "at " << i;
  }
  EXPECT_TRUE(s.empty());
}

TEST(SpawnStack, ConcurrentOwnerAndThievesConsumeEveryEntryExactlyOnce) {
  owner_and_thieves(256, 2, goro::test::scaled(2'000'000));
}

TEST(SpawnStack, ConcurrentFightsOverTheLastEntryLoseNothing) {
  owner_and_thieves(2, 3, goro::test::scaled(1'000'000));
}

// The bias taken back after every fully fenced pop, and thieves that come
// and go: the stack keeps changing between biased and shared while the
// owner pops down to the last entry.
TEST(SpawnStack, TheBiasChangingHandsLosesNothing) {
  owner_and_thieves(256, 2, goro::test::scaled(1'000'000), /*rebias_after=*/1, /*pause=*/true,
                    /*rebias_after_max=*/1);
  owner_and_thieves(2, 3, goro::test::scaled(1'000'000), /*rebias_after=*/1, /*pause=*/true,
                    /*rebias_after_max=*/1);
  owner_and_thieves(4, 1, goro::test::scaled(1'000'000), /*rebias_after=*/4, /*pause=*/true,
                    /*rebias_after_max=*/4);
  // With the back-off (B6) as built, from a short first wait.
  owner_and_thieves(256, 2, goro::test::scaled(1'000'000), /*rebias_after=*/1, /*pause=*/true);
}

// The scheduler's use of drop_newest (Scheduler::drop_dead_spawns): every
// value has a claim flag, and whoever takes an entry (the owner's pop, a
// thief's steal) runs it only by winning the flag, as a goroutine's claim
// entry is run. The owner also claims some values itself while their
// entries wait in the stack (an inline join), making those entries dead,
// and then drops the dead entries at the newest end as the scheduler does:
// one drop_newest, or pops when that would empty the stack. An entry
// dropped while still unclaimed would be a value nobody ever claims.
void owner_drops_dead_entries_while_thieves_steal(
    std::uint32_t capacity, int thieves, long n,
    std::uint32_t rebias_after = SpawnStack::kRebiasAfter, bool pause = false,
    std::uint32_t rebias_after_max = SpawnStack::kRebiasAfterMax) {
  goro::detail::enable_asymmetric_fences();
  SpawnStack s(capacity, rebias_after, /*rebias_after_max=*/rebias_after_max);
  const auto claims = std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(n) + 1);
  std::atomic<long> claimed{0};
  auto claim = [&](Entry v) {
    bool expected = false;
    if (claims[v].compare_exchange_strong(expected, true)) claimed.fetch_add(1);
  };
  auto dead = [&](Entry v) { return claims[v].load(); };
  std::atomic<bool> owner_done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 pauses(static_cast<unsigned>(t));
      for (;;) {
        const bool last_pass = owner_done.load();
        Entry e = 0;
        while (s.steal(e)) claim(e);
        if (last_pass) break;
        thief_pause(pause, pauses);
      }
    });
  }
  std::mt19937 rng(17);
  std::vector<Entry> waiting;  // pushed, maybe still in the stack
  bool stuck = false;
  for (Entry v = 1; v <= static_cast<Entry>(n) && !stuck; ++v) {
    Entry e = 0;
    stuck = !push_making_room(s, v, claim);
    waiting.push_back(v);
    // Join some in spawn order, as a parent joins its children.
    while (!waiting.empty() && rng() % 3 == 0) {
      const Entry joined = waiting.front();
      waiting.erase(waiting.begin());
      claim(joined);
      std::uint32_t count = 0;
      while (s.peek(count, e) && dead(e)) ++count;
      if (count == 0 || s.drop_newest(count)) continue;
      while (count-- > 0 && s.pop(e)) {
        ASSERT_TRUE(dead(e)) << "popped a live entry counted as dead";
      }
    }
    if (waiting.size() > capacity) waiting.clear();  // left to pops and thieves
    if (rng() % 8 == 0 && s.pop(e)) claim(e);
  }
  Entry e = 0;
  while (s.pop(e)) claim(e);
  owner_done.store(true);
  for (auto& t : threads) t.join();
  ASSERT_FALSE(stuck) << "push kept failing on a stack the owner kept emptying";
  EXPECT_EQ(claimed.load(), n) << "an unclaimed entry was dropped";
  EXPECT_TRUE(s.empty());
}

TEST(SpawnStack, DroppingDeadEntriesBesideThievesLosesNoLiveOne) {
  owner_drops_dead_entries_while_thieves_steal(256, 2, goro::test::scaled(1'000'000));
  owner_drops_dead_entries_while_thieves_steal(4, 3, goro::test::scaled(1'000'000));
  owner_drops_dead_entries_while_thieves_steal(256, 2, goro::test::scaled(1'000'000),
                                               /*rebias_after=*/1, /*pause=*/true,
                                               /*rebias_after_max=*/1);
}

}  // namespace
