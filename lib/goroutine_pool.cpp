// lib/goroutine_pool.cpp: type-stable goroutine records (see
// goroutine_pool.hpp for why they are never freed).
#include "goroutine_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace goro::detail {

GoroutinePool& GoroutinePool::instance() noexcept {
  // Leaked on purpose: records must outlive every JoinHandle, including
  // ones destroyed by static destructors.
  static GoroutinePool* pool = new GoroutinePool();
  return *pool;
}

namespace {

constexpr std::size_t kChunkBytes =
    GoroutinePoolTuning::kSlabBytes * GoroutinePoolTuning::kSlabsPerChunk;

// A chunk of slabs aligned to the slab size, so a record's slab is its
// address rounded down.
void* map_chunk() {
  const std::size_t align = GoroutinePoolTuning::kSlabBytes;
  void* raw = mmap(nullptr, kChunkBytes + align, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto addr = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (addr + align - 1) & ~(align - 1);
  if (aligned != addr) munmap(raw, aligned - addr);
  const std::size_t tail = align - (aligned - addr);
  if (tail != 0) munmap(reinterpret_cast<char*>(aligned) + kChunkBytes, tail);
  return reinterpret_cast<void*>(aligned);
}

GoroutineRecord* slab_of(GoroutineRecord* g) noexcept {
  return reinterpret_cast<GoroutineRecord*>(reinterpret_cast<std::uintptr_t>(g) &
                                            ~(GoroutinePoolTuning::kSlabBytes - 1));
}

}  // namespace

void GoroutinePool::thread_slab_locked(GoroutineRecord* slab) {
  for (std::size_t i = GoroutinePoolTuning::kSlabRecords; i-- > 0;) {
    GoroutineRecord* g = new (&slab[i]) GoroutineRecord();
    g->next_free = free_;
    free_ = g;
  }
  free_count_ += GoroutinePoolTuning::kSlabRecords;
}

void GoroutinePool::add_slab_locked() {
  if (!released_slabs_.empty()) {
    // Reuse released pages first: they fault back in, zeroed.
    GoroutineRecord* slab = released_slabs_.back();
    released_slabs_.pop_back();
    thread_slab_locked(slab);
    return;
  }
  if (unused_slabs_.empty()) {
    auto* chunk = static_cast<char*>(map_chunk());
    for (std::size_t i = GoroutinePoolTuning::kSlabsPerChunk; i-- > 0;) {
      unused_slabs_.push_back(
          reinterpret_cast<GoroutineRecord*>(chunk + i * GoroutinePoolTuning::kSlabBytes));
    }
    for (std::size_t i = 0; i < GoroutinePoolTuning::kSlabsPerChunk; ++i) {
      slabs_.push_back(
          reinterpret_cast<GoroutineRecord*>(chunk + i * GoroutinePoolTuning::kSlabBytes));
    }
  }
  GoroutineRecord* slab = unused_slabs_.back();
  unused_slabs_.pop_back();
  thread_slab_locked(slab);
}

void GoroutinePool::merge_batches_locked() {
  for (const Batch& b : batches_) {
    b.tail->next_free = free_;
    free_ = b.head;
  }
  batches_.clear();
}

std::size_t GoroutinePool::release_free_slabs() noexcept {
  MutexLock lock(mu_);
  merge_batches_locked();
  absl::flat_hash_map<GoroutineRecord*, std::size_t> free_per_slab;
  for (GoroutineRecord* g = free_; g != nullptr; g = g->next_free) ++free_per_slab[slab_of(g)];
  absl::flat_hash_set<GoroutineRecord*> releasable;
  for (const auto& [slab, n] : free_per_slab) {
    if (n == GoroutinePoolTuning::kSlabRecords) releasable.insert(slab);
  }
  if (releasable.empty()) return 0;
  // Unthread their records, then give the pages back.
  for (GoroutineRecord** link = &free_; *link != nullptr;) {
    if (releasable.contains(slab_of(*link))) {
      *link = (*link)->next_free;
      --free_count_;
    } else {
      link = &(*link)->next_free;
    }
  }
  for (GoroutineRecord* slab : releasable) {
    madvise(slab, GoroutinePoolTuning::kSlabBytes, MADV_DONTNEED);
    released_slabs_.push_back(slab);
  }
  return releasable.size() * GoroutinePoolTuning::kSlabBytes;
}

std::size_t GoroutinePool::take_batch(GoroutineRecord*& head, GoroutineRecord*& tail,
                                      std::size_t max) {
  MutexLock lock(mu_);
  if (!batches_.empty() && batches_.back().count <= max) {
    const Batch b = batches_.back();  // O(1): the chain is already cut
    batches_.pop_back();
    head = b.head;
    tail = b.tail;
    free_count_ -= b.count;
    return b.count;
  }
  if (free_ == nullptr) {
    if (!batches_.empty()) merge_batches_locked();  // only asked for fewer
    if (free_ == nullptr) add_slab_locked();
  }
  head = free_;
  GoroutineRecord* last = free_;
  std::size_t n = 1;
  while (n < max && last->next_free != nullptr) {
    last = last->next_free;
    ++n;
  }
  free_ = last->next_free;
  last->next_free = nullptr;
  tail = last;
  free_count_ -= n;
  return n;
}

void GoroutinePool::give_batch(GoroutineRecord* head, GoroutineRecord* tail,
                               std::size_t count) noexcept {
  MutexLock lock(mu_);
  free_count_ += count;
  if (count == GoroutinePoolTuning::kBatch) {
    tail->next_free = nullptr;
    batches_.push_back(Batch{head, tail, count});
    return;
  }
  tail->next_free = free_;
  free_ = head;
}

GoroutineRecord* GoroutinePool::allocate() {
  GoroutineRecord* g = nullptr;
  GoroutineRecord* tail = nullptr;
  take_batch(g, tail, 1);
  return g;
}

void GoroutinePool::free(GoroutineRecord* g) noexcept { give_batch(g, g, 1); }

void GoroutineCache::refill(GoroutinePool& pool) {
  if (full_head_ != nullptr) {
    head_ = std::exchange(full_head_, nullptr);
    tail_ = std::exchange(full_tail_, nullptr);
    count_ = GoroutinePoolTuning::kBatch;
  } else {
    count_ = pool.take_batch(head_, tail_, GoroutinePoolTuning::kBatch);
  }
}

void GoroutineCache::keep_full_batch(GoroutinePool& pool) noexcept {
  // A full chain: keep it as the full batch, handing the previous one (if
  // any) to the pool, so that a P where goroutines mostly die does not
  // hoard. Neither step walks the chain.
  if (full_head_ != nullptr) pool.give_batch(full_head_, full_tail_, GoroutinePoolTuning::kBatch);
  full_head_ = std::exchange(head_, nullptr);
  full_tail_ = std::exchange(tail_, nullptr);
  count_ = 0;
}

void GoroutineCache::flush(GoroutinePool& pool) noexcept {
  if (head_ != nullptr) pool.give_batch(head_, tail_, count_);
  if (full_head_ != nullptr) pool.give_batch(full_head_, full_tail_, GoroutinePoolTuning::kBatch);
  head_ = tail_ = full_head_ = full_tail_ = nullptr;
  count_ = 0;
}

}  // namespace goro::detail
