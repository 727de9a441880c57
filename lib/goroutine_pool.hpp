// lib/goroutine_pool.hpp
//
// Defines: goro::detail::GoroutinePool (type-stable goroutine records) and
// goro::detail::GoroutineCache (a P's private free list of them).
//
// Why type-stable: a joinable goroutine's first-run queue entry can go
// stale (its joiner ran it inline, and a thief may hold a copy of the entry
// made just before). When the stale entry is consumed, the scheduler does a
// compare-exchange on the record's `claim` word, which must still be
// memory of a G at that moment, though possibly of a later goroutine; the
// claim protocol makes that harmless (see scheduler.hpp). So records are
// never returned to the system: they are carved from slabs that live for
// the whole process and recycled, as Go keeps every g it ever made in
// allgs and reuses dead ones.
//
// Type-stable is not the same as resident: release_memory() finds slabs
// whose records are all on the shared free list, takes them off the list
// and returns their pages to the OS (MADV_DONTNEED). The memory stays
// mapped, so a stale entry's look at a record's claim word reads zero, which
// is Claim::kFree, and fails as it should; a released slab is reused (its
// pages fault back in, zeroed) before a new one is mapped. A G whose bytes
// are all zero is a valid free record.
//
// Allocation path: the P's cache (no locks, no atomics) -> refill a batch
// from the shared pool under a lock -> a released slab -> a new slab. Frees
// go to the cache of the P that frees, which hands a full batch to the pool
// past its limit (goroutines often die on another P than their parent's, so
// a cache that never spilled would grow without bound on the consumer's
// side). Threads without a P use the pool directly.
//
// Batches move whole: a cache fills a chain of kBatch records, remembering
// its tail, and the pool keeps such chains as {head, tail, count}, so a
// refill or a spill is O(1) under the lock. Walking a chain to split it
// would take a cache miss per record under the lock: the records are cold
// by the time they are reused (docs/PERFORMANCE.md, "Figures behind design
// choices").
#ifndef GORO_LIB_GOROUTINE_POOL_HPP_
#define GORO_LIB_GOROUTINE_POOL_HPP_

#include <cstddef>
#include <vector>

#include "goroutine.hpp"
#include "mutex.hpp"

namespace goro::detail {

struct GoroutinePoolTuning {
  // Records per slab: 32 KiB, a whole number of OS pages, so a free slab
  // can be released.
  static constexpr std::size_t kSlabRecords = 256;
  static constexpr std::size_t kSlabBytes = kSlabRecords * sizeof(GoroutineRecord);
  // Slabs mapped from the system at a time (1 MiB).
  static constexpr std::size_t kSlabsPerChunk = 64;
  // Records moved per refill or spill; a P's cache holds at most two
  // batches (the one it fills and one full one).
  static constexpr std::size_t kBatch = 64;
};

class GoroutinePool;

// A P's private free list. Owner thread only.
class GoroutineCache {
 public:
  GoroutineCache() = default;
  GoroutineCache(const GoroutineCache&) = delete;
  GoroutineCache& operator=(const GoroutineCache&) = delete;

  // Inline while the chain has a record (allocate) or room below a full
  // batch (free): every spawn and every finish passes here.
  GoroutineRecord* allocate(GoroutinePool& pool) {
    if (head_ == nullptr) [[unlikely]]
      refill(pool);
    return take();
  }
  // allocate() without the refill: nullptr when the cache is empty.
  GoroutineRecord* try_allocate() noexcept {
    if (head_ == nullptr) [[unlikely]]
      return nullptr;
    return take();
  }
  void free(GoroutinePool& pool, GoroutineRecord* g) noexcept {
    if (push(g)) [[unlikely]]
      keep_full_batch(pool);
  }
  // free() in two steps, for a caller with a last call to make first:
  // push() takes `g` back and says whether keep_full_batch() must follow.
  [[nodiscard("true: call keep_full_batch()")]] bool push(GoroutineRecord* g) noexcept {
    if (head_ == nullptr) tail_ = g;
    g->next_free = head_;
    head_ = g;
    return ++count_ >= GoroutinePoolTuning::kBatch;
  }
  // free's slow path (after push() said so): the chain holds a whole batch.
  void keep_full_batch(GoroutinePool& pool) noexcept;
  // Returns every cached record to the pool (runtime stopping).
  void flush(GoroutinePool& pool) noexcept;

 private:
  // allocate's slow path: the chain is empty; takes the full batch kept
  // back, else a batch from the pool.
  void refill(GoroutinePool& pool);
  // Pops the chain's first record (the chain is not empty).
  GoroutineRecord* take() noexcept {
    GoroutineRecord* g = head_;
    head_ = g->next_free;
    g->next_free = nullptr;
    --count_;
    return g;
  }

  // The chain allocate() pops from and free() pushes onto; tail_ is its
  // last record (valid while head_ is not null).
  GoroutineRecord* head_ = nullptr;
  GoroutineRecord* tail_ = nullptr;
  std::size_t count_ = 0;
  // A full batch kept back (kBatch records), or null.
  GoroutineRecord* full_head_ = nullptr;
  GoroutineRecord* full_tail_ = nullptr;
};

class GoroutinePool {
 public:
  // The process-wide pool.
  static GoroutinePool& instance() noexcept;

  // Thread-safe paths for threads without a P.
  GoroutineRecord* allocate();
  void free(GoroutineRecord* g) noexcept;

  // Calls fn(GoroutineRecord&) for every record ever made. Only with no other thread
  // using the pool (the shutdown sweep); fn may allocate or free records.
  template <class Fn>
  void for_each_record(Fn&& fn) {
    for (std::size_t s = 0;; ++s) {
      GoroutineRecord* slab = nullptr;
      {
        MutexLock lock(mu_);
        if (s == slabs_.size()) return;
        slab = slabs_[s];
      }
      for (std::size_t i = 0; i < GoroutinePoolTuning::kSlabRecords; ++i) fn(slab[i]);
    }
  }

  // Returns to the OS the pages of every slab whose records are all on the
  // shared free list. Returns the bytes released.
  std::size_t release_free_slabs() noexcept;

 private:
  friend class GoroutineCache;
  // Takes up to `max` records as a null-terminated list from head to tail;
  // returns the count (at least 1).
  std::size_t take_batch(GoroutineRecord*& head, GoroutineRecord*& tail, std::size_t max);
  // Gives back a linked list of `count` records ending at `tail`.
  void give_batch(GoroutineRecord* head, GoroutineRecord* tail, std::size_t count) noexcept;
  // Links every whole batch into free_ (release_free_slabs walks free_).
  void merge_batches_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Batch {
    GoroutineRecord* head;
    GoroutineRecord* tail;
    std::size_t count;
  };
  void add_slab_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void thread_slab_locked(GoroutineRecord* slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  std::vector<GoroutineRecord*> slabs_ ABSL_GUARDED_BY(mu_);  // every slab, in order
  std::vector<GoroutineRecord*> released_slabs_
      ABSL_GUARDED_BY(mu_);  // off the free list, pages released
  std::vector<GoroutineRecord*> unused_slabs_ ABSL_GUARDED_BY(mu_);  // mapped, never threaded yet
  // Free records: whole batches, and single records (partial batches,
  // frees from threads without a P, fresh slabs). free_count_ counts both.
  std::vector<Batch> batches_ ABSL_GUARDED_BY(mu_);
  GoroutineRecord* free_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::size_t free_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace goro::detail

#endif  // GORO_LIB_GOROUTINE_POOL_HPP_
