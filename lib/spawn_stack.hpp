// lib/spawn_stack.hpp
//
// Defines: goro::detail::SpawnStack, a P's stack of goroutines spawned on
// it that have not started yet.
//
// Why a stack beside the FIFO run queue. A goroutine that spawns children
// and then waits for them (skynet, a parallel divide-and-conquer, a
// fan-out/fan-in) wants each child's subtree to run soon after the child
// was made, while the data it shares with its parent is still in cache. In
// the FIFO queue every new child queues behind everything the P already
// had, so a tree runs almost breadth-first: by the time a leaf reports to
// its parent's channel, the parent's channel, frame and G record have left
// the cache (docs/PERFORMANCE.md, "Channels and select", has skynet with
// channels both ways). Cilk, TBB and Rayon run their owners' work this way
// (work-first, LIFO for the owner, FIFO for thieves, who then take the
// oldest, biggest subtrees). Goroutines readied by a channel, a timer or
// I/O, and yielding ones, keep Go's FIFO queue; only goroutines started by
// go() and spawn() that have not run yet go here, and the scheduler bounds
// how long they may keep the FIFO queue waiting (scheduler.cpp,
// local_get).
//
// Where go() and spawn() put a new goroutine: runnext if it is free (the
// first child still runs first), otherwise this stack, otherwise (full)
// the local queue's tail (scheduler_interface.hpp, Placement::kSpawn;
// Scheduler::start_on). What the stack gives up, and the bounds:
//   1. Unstarted children run newest first, not in spawn order. Go
//      promises no order either.
//   2. A stream of spawns could keep the FIFO queue waiting: after
//      kSpawnChain (61) stack takes in a row while the queue holds
//      goroutines, the queue's oldest goes first (scheduler.hpp,
//      SchedulerTuning; Fairness.NewSpawnsDoNotStarveTheLocalQueue).
//   3. A thief takes one entry per steal, not half (Rejected alternatives).
//
// Dead entries. A spawn()'s child is a claim entry (p_core.hpp): its
// parent usually joins it inline (runtime.cpp, joining step 2), which
// makes the entry dead where it stands, often below live ones (a parent
// joins its first children while the later ones wait above them). Dead
// entries are harmless (whoever pops or steals one drops it), but a tree
// joined inline never pops its own P's stack, so left there they would fill
// it. So an inline join whose child's entry is the newest drops the dead
// entries at the newest end (drop_newest: one fence for all of them): a
// parent that joins its children in spawn order drops them all with its
// last join, so the stack stays about as deep as the tree (children per
// level times levels) instead of growing with every spawn
// (Spawn.AJoinedTreeKeepsItsSpawnStackAsDeepAsTheTree).
//
// The algorithm is the bounded Chase-Lev deque in the C11 formulation of
// Lê, Pop, Cohen and Zappa Nardelli ("Correct and efficient work-stealing
// for weak memory models", PPoPP 2013).
//
// Glossary
//   owner       the P's worker thread: pushes and pops at the owner end.
//   thief       another P's worker: steals at the steal end, one entry at a
//               time.
//   owner_end_  one past the newest entry (Chase-Lev's "bottom").
//   steal_end_  the oldest entry (Chase-Lev's "top"); only ever grows.
//
// Invariants
//   S1. Live entries are slots [steal_end_, owner_end_) modulo the
//       capacity; owner_end_ - steal_end_ <= capacity (32-bit counters,
//       compared through signed differences, so wrap-around is harmless).
//   S2. Only the owner writes owner_end_ and the slots; steal_end_ moves
//       only by a successful compare-exchange (thieves, and the owner
//       racing them for the last entry).
//   S3. The owner overwrites a slot only after the entry in it was
//       claimed: push checks owner_end_ - steal_end_ < capacity with an
//       acquire load, which pairs with the claim's compare-exchange.
//
// Algorithm
//   push (owner): if full, fail; write slot owner_end_ (relaxed); store
//     owner_end_ + 1 (release: the slot is visible to a thief that
//     acquires owner_end_).
//   pop (owner): b = owner_end_ - 1; store owner_end_ = b; the owner's
//     fence (light while biased, else full: B1); t = steal_end_. b > t:
//     the entry is ours, no thief can reach it. b == t: the last entry:
//     compare-exchange steal_end_ t -> t + 1 to beat the thieves to it;
//     either way the stack is empty after, so owner_end_ = t + 1. b < t:
//     a thief took the last one: restore.
//   steal (thief): a relaxed look at both ends: empty, done. Count itself
//     in thieves_ and, while the stack is biased, revoke the bias (below).
//     Then t = steal_end_ (acquire); full fence; b = owner_end_ (acquire);
//     t < b: read slot t, compare-exchange steal_end_ t -> t + 1.
//   drop_newest(n) (owner, n dead entries): b = owner_end_; k = b - n;
//     store owner_end_ = k; the owner's fence; t = steal_end_. k > t:
//     done, no thief can reach index k (pop's argument), so none can reach
//     those above it. k <= t: store owner_end_ = b back (no thief can have gone
//     past b) and pop them one by one.
//   The fences make the owner's store of owner_end_ and a thief's load of
//   it (and the thief's load of steal_end_ and the owner's) a Dekker pair:
//   for the last entry, at most one of them believes it is uncontended,
//   and the compare-exchange settles the rest.
//
// The bias. A tree joined inline pops and drops at the owner end millions
// of times between two steals, so the owner's half of the Dekker pair is
// split as the channel locks split theirs (chan_lock.hpp): while the stack
// is biased to its owner, the owner fences with light_fence (a compiler
// barrier once membarrier is registered), and the first thief to come
// revokes the bias with one heavy_fence; after that both sides use full
// fences until the owner takes the bias back.
//   B1. mode_ is kBiased, kRevoking or kShared. The owner's fence loads it
//       right after its store of owner_end_ (no fence between): kBiased,
//       light_fence; anything else, full_fence.
//   B2. A thief counts itself in thieves_ (a locked increment: a full
//       fence) before it reads mode_, and leaves only after its claim.
//   B3. A thief that reads kBiased compare-exchanges it to kRevoking, calls
//       heavy_fence, stores kShared and steals as above. One that reads
//       kRevoking steals nothing this time (another thief's heavy fence may
//       not have returned yet). One that reads kShared steals as above.
//   B4. Why B1-B3 keep the Dekker pair: heavy_fence makes the owner's CPU
//       execute a full barrier X. If X comes before the owner's store of
//       owner_end_, the owner's load of mode_ after it sees kRevoking (the
//       compare-exchange preceded the heavy fence) and fences fully. If X
//       comes after the store, the store is visible to every thief load of
//       owner_end_ that follows the revocation; the owner's unfenced load
//       of steal_end_ may be older than a thief's claim, which is the case
//       the pop already handles (it then reads a smaller steal end, so at
//       worst it races for the last entry with the compare-exchange).
//       Every owner operation after X reads kRevoking or kShared.
//   B5. Taking the bias back (owner, every rebias_after_ full fences, in
//       the pop or drop that made the last one, after it: that operation's
//       own pair is complete): from kShared only, store kBiased,
//       full fence, read thieves_; a thief in flight puts kShared back.
//       With B2 that is a Dekker pair: a thief that counted itself before
//       the owner's read is seen, and one that counts itself after reads
//       kBiased and revokes it (B3). A store of kShared over a revoker's
//       kRevoking is harmless: the owner fenced fully since kShared and
//       pops nothing between its two stores.
//   B6. Each revocation costs a membarrier, so the wait before taking the
//       bias back backs off: it doubles (up to kRebiasAfterMax) each time
//       the bias did not hold for 16 times the wait in light fences, and
//       returns to kRebiasAfter when it did. A P whose spawns are stolen
//       one by one (a producer of goroutines beside idle thieves) stays
//       shared; a tree stolen from a few times stays biased.
//
// Rejected alternatives
//   * The owner popping its FIFO run queue LIFO: that queue's thieves take
//     half at a time, and a half claimed by one compare-exchange can
//     include entries the owner is popping from the other end.
//   * Stealing half of a spawn stack: the same race; thieves take one
//     entry, which for a tree is the oldest and largest subtree.
//   * Asymmetric fences for pop without the bias (membarrier on every
//     steal): each steal would interrupt every CPU running the process,
//     and membarrier calls from several thieves serialise in the kernel
//     (docs/PERFORMANCE.md, "The spawn stack with an asymmetric fence").
//   * Zeroing a joined child's slot where it stands, as the local queue
//     tombstones it: a thief may have read the slot and be about to claim
//     its index, and once the slot is reused it would take the new entry's
//     index with the old entry's value, losing the new one.
//   * Keeping spawn()'s children in the local queue, tombstoned in O(1):
//     a tree joined inline never pops that queue either, so the
//     tombstones fill it and spill through the global queue's lock every
//     few parents (docs/PERFORMANCE.md, "spawn()'s children on the spawn
//     stack").
#ifndef GORO_LIB_SPAWN_STACK_HPP_
#define GORO_LIB_SPAWN_STACK_HPP_

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>

#include "goro/detail/asymmetric_fence.hpp"

namespace goro::detail {

class SpawnStack {
 public:
  using Entry = std::uintptr_t;

  // The owner's fully fenced pops and drops after which it first tries to
  // take the bias back (B5), and the most that B6's back-off waits.
  static constexpr std::uint32_t kRebiasAfter = 256;
  static constexpr std::uint32_t kRebiasAfterMax = 1u << 16;

  // `capacity` must be a power of two >= 2; `rebias_after` and
  // `rebias_after_max` (tests shrink them) as kRebiasAfter and
  // kRebiasAfterMax.
  explicit SpawnStack(std::uint32_t capacity, std::uint32_t rebias_after = kRebiasAfter,
                      std::uint32_t rebias_after_max = kRebiasAfterMax)
      : mask_(capacity - 1),
        rebias_base_(rebias_after),
        rebias_max_(rebias_after_max),
        rebias_after_(rebias_after),
        slots_(std::make_unique<std::atomic<Entry>[]>(capacity)) {
    assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  }
  SpawnStack(const SpawnStack&) = delete;
  SpawnStack& operator=(const SpawnStack&) = delete;

  [[nodiscard]] std::uint32_t capacity() const noexcept { return mask_ + 1; }

  // Owner only. Pushes `entry` as the newest; false (nothing changed) when
  // full.
  bool push(Entry entry) noexcept {
    const std::uint32_t b = owner_end_.load(std::memory_order_relaxed);  // only we write it
    // Acquire: pairs with the claims' compare-exchange (S3).
    const std::uint32_t t = steal_end_.load(std::memory_order_acquire);
    if (b - t >= capacity()) return false;
    slots_[b & mask_].store(entry, std::memory_order_relaxed);
    // Release: publishes the slot to thieves that acquire owner_end_.
    owner_end_.store(b + 1, std::memory_order_release);
    return true;
  }

  // Owner only. Pops the newest entry; false when empty.
  bool pop(Entry& out) noexcept {
    std::uint32_t b = owner_end_.load(std::memory_order_relaxed);  // only we write it
    // Relaxed: steal_end_ only grows, so a stale value is smaller and
    // b == stale means empty for certain; otherwise the fenced load below
    // decides.
    if (b == steal_end_.load(std::memory_order_relaxed)) return false;
    --b;
    owner_end_.store(b, std::memory_order_relaxed);
    // The owner's half of the Dekker pair (file comment): our store of
    // owner_end_ is ordered before our load of steal_end_.
    owner_fence();
    std::uint32_t t = steal_end_.load(std::memory_order_relaxed);
    const auto left = static_cast<std::int32_t>(b - t);
    if (left > 0) {
      out = slots_[b & mask_].load(std::memory_order_relaxed);
      return true;
    }
    bool won = false;
    if (left == 0) {
      out = slots_[b & mask_].load(std::memory_order_relaxed);
      // Seq_cst: the last entry is contended; the compare-exchange is the
      // single arbiter between us and the thieves (Lê et al.).
      won = steal_end_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                               std::memory_order_relaxed);
    }
    // Empty now either way (b + 1 == the new steal end, or a thief's).
    owner_end_.store(b + 1, std::memory_order_relaxed);
    return won;
  }

  // Owner only. Reads the entry `depth` places below the newest (0: the
  // newest) without taking it; false when the stack holds no such entry.
  // Thieves may take it meanwhile: what it returns is a hint for the
  // owner's next pop() or drop_newest().
  bool peek(std::uint32_t depth, Entry& out) const noexcept {
    const std::uint32_t b = owner_end_.load(std::memory_order_relaxed);  // only we write it
    // Relaxed: a stale (smaller) steal end only makes the stack look
    // fuller than it is, which the caller's pop() or drop_newest() settles;
    // the slots below b were written by this thread.
    const auto held = static_cast<std::int32_t>(b - steal_end_.load(std::memory_order_relaxed));
    if (static_cast<std::int32_t>(depth) >= held) return false;
    out = slots_[(b - 1 - depth) & mask_].load(std::memory_order_relaxed);
    return true;
  }

  // Owner only. Removes the `count` newest entries (1 <= count <= what
  // peek() showed), which must be dead (entries nobody may run), unless
  // that would leave the stack empty: then it changes nothing and returns
  // false, and the caller takes them with pop(), which settles the race
  // for the last entry with the thieves.
  // Why one fence is enough for `count` entries: pop()'s argument for
  // index b applies to index `kept` below; no thief can take an index
  // above `kept` without first taking `kept`.
  bool drop_newest(std::uint32_t count) noexcept {
    const std::uint32_t b = owner_end_.load(std::memory_order_relaxed);  // only we write it
    const std::uint32_t kept = b - count;
    owner_end_.store(kept, std::memory_order_relaxed);
    // The owner's half of the Dekker pair, as in pop().
    owner_fence();
    const std::uint32_t t = steal_end_.load(std::memory_order_relaxed);
    if (static_cast<std::int32_t>(kept - t) > 0) return true;
    // Thieves may be taking entries at or above `kept`: restore the end
    // they may have read (no thief can have gone past it), as if nothing
    // happened. The entries are dead, so whoever takes them drops them.
    owner_end_.store(b, std::memory_order_relaxed);
    return false;
  }

  // Thieves (any thread). Takes the oldest entry; false when empty or when
  // another consumer took it first.
  bool steal(Entry& out) noexcept {
    // A look first (relaxed: a hint): an empty stack costs no locked
    // instruction, however often idle thieves ask.
    if (static_cast<std::int32_t>(owner_end_.load(std::memory_order_relaxed) -
                                  steal_end_.load(std::memory_order_relaxed)) <= 0) {
      return false;
    }
    // B2. Seq_cst: the increment is the thief's half of B5's Dekker pair
    // (a full fence before the load of mode_).
    thieves_.fetch_add(1, std::memory_order_seq_cst);
    const bool took = mode_allows_steal() && steal_shared(out);
    // Release: the claim above comes before the count drops. An owner that
    // then takes the bias back and reads an older steal end anyway is the
    // stale-small case B4 already covers, so nothing stronger is needed.
    thieves_.fetch_sub(1, std::memory_order_release);
    return took;
  }

  // Entries now: exact for the owner when no thief is active, otherwise a
  // racy estimate (a hint).
  [[nodiscard]] std::uint32_t size() const noexcept {
    // Acquire on both, as in steal.
    const std::uint32_t t = steal_end_.load(std::memory_order_acquire);
    const std::uint32_t b = owner_end_.load(std::memory_order_acquire);
    const auto n = static_cast<std::int32_t>(b - t);
    return n > 0 ? static_cast<std::uint32_t>(n) : 0;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  // Owner only, with no thief running (runtime stopped): forgets every
  // entry.
  void clear() noexcept {
    owner_end_.store(steal_end_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

 private:
  enum Mode : std::uint32_t { kBiased = 0, kRevoking = 1, kShared = 2 };

  // The owner's store-load fence after it moved owner_end_ (B1), and B5.
  void owner_fence() noexcept {
    // Relaxed: B4 is the argument; the value only picks the fence.
    if (mode_.load(std::memory_order_relaxed) == kBiased) {
      light_fence();
      ++biased_fences_;
      return;
    }
    full_fence();
    if (++shared_fences_ >= rebias_after_) take_bias_back();
  }

  // B5 and B6. Owner only, after the full fence of a pop or drop.
  void take_bias_back() noexcept {
    shared_fences_ = 0;
    // B6: a bias that held for many times the wait was worth taking back
    // soon; one revoked sooner than that waits twice as long next time.
    if (biased_fences_ >= 16 * rebias_after_) {
      rebias_after_ = rebias_base_;
    } else if (rebias_after_ < rebias_max_) {
      rebias_after_ = std::min(2 * rebias_after_, rebias_max_);
    }
    biased_fences_ = 0;
    // Relaxed loads and stores of mode_: the full fence orders the store of
    // kBiased before the load of thieves_, which is all B5 needs; a thief
    // reads mode_ after its own locked increment.
    if (mode_.load(std::memory_order_relaxed) != kShared) return;  // a revoker is at work
    mode_.store(kBiased, std::memory_order_relaxed);
    full_fence();
    if (thieves_.load(std::memory_order_relaxed) != 0) {
      mode_.store(kShared, std::memory_order_relaxed);
    }
  }

  // B3: whether this thief may steal now, revoking the bias if it must.
  bool mode_allows_steal() noexcept {
    // After the locked increment of thieves_ (B2, B5). Acquire: a thief
    // that reads kShared comes after the revoker's heavy fence (the
    // revoker's release store below).
    std::uint32_t mode = mode_.load(std::memory_order_acquire);
    if (mode == kShared) return true;
    if (mode == kRevoking) return false;
    // Relaxed: the heavy fence below orders it for the owner (B4); other
    // thieves read kRevoking and wait for kShared.
    if (!mode_.compare_exchange_strong(mode, kRevoking, std::memory_order_relaxed)) {
      return mode == kShared;
    }
    heavy_fence();
    // Release: a thief that reads kShared comes after the heavy fence.
    mode_.store(kShared, std::memory_order_release);
    return true;
  }

  // The steal proper, with the stack shared.
  bool steal_shared(Entry& out) noexcept {
    // Acquire on both: steal_end_ to see earlier claims, owner_end_ to see
    // the slots the owner published.
    std::uint32_t t = steal_end_.load(std::memory_order_acquire);
    // The thief's half of the Dekker pair (file comment).
    full_fence();
    const std::uint32_t b = owner_end_.load(std::memory_order_acquire);
    if (static_cast<std::int32_t>(b - t) <= 0) return false;
    const Entry entry = slots_[t & mask_].load(std::memory_order_relaxed);
    // Seq_cst: pairs with the owner's compare-exchange for the last entry;
    // success claims the slot, whose read above is then valid (S3: the
    // owner could not have overwritten it while steal_end_ was t).
    if (!steal_end_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                            std::memory_order_relaxed)) {
      return false;
    }
    out = entry;
    return true;
  }

  const std::uint32_t mask_;
  // Owner only (B5, B6): the first wait, the longest, the wait now, and
  // the fences of each kind since the last try.
  const std::uint32_t rebias_base_;
  const std::uint32_t rebias_max_;
  std::uint32_t rebias_after_;
  std::uint32_t shared_fences_ = 0;
  std::uint64_t biased_fences_ = 0;
  std::unique_ptr<std::atomic<Entry>[]> slots_;
  // Separate cache lines: thieves hammer steal_end_, the owner owner_end_;
  // mode_ is read by both and written seldom.
  alignas(64) std::atomic<std::uint32_t> owner_end_{0};
  alignas(64) std::atomic<std::uint32_t> steal_end_{0};
  std::atomic<std::uint32_t> thieves_{0};  // B2: thieves between count and claim
  alignas(64) std::atomic<std::uint32_t> mode_{kBiased};
};

}  // namespace goro::detail

#endif  // GORO_LIB_SPAWN_STACK_HPP_
