// lib/goroutine_pool.cpp: type-stable goroutine records (see
// goroutine_pool.hpp for why they are never freed).
#include "goroutine_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <new>

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

G* slab_of(G* g) noexcept {
  return reinterpret_cast<G*>(reinterpret_cast<std::uintptr_t>(g) &
                              ~(GoroutinePoolTuning::kSlabBytes - 1));
}

}  // namespace

void GoroutinePool::thread_slab_locked(G* slab) {
  for (std::size_t i = GoroutinePoolTuning::kSlabRecords; i-- > 0;) {
    G* g = new (&slab[i]) G();
    g->next_free = free_;
    free_ = g;
  }
  free_count_ += GoroutinePoolTuning::kSlabRecords;
}

void GoroutinePool::add_slab_locked() {
  if (!released_slabs_.empty()) {
    // Reuse released pages first: they fault back in, zeroed.
    G* slab = released_slabs_.back();
    released_slabs_.pop_back();
    thread_slab_locked(slab);
    return;
  }
  if (unused_slabs_.empty()) {
    auto* chunk = static_cast<char*>(map_chunk());
    for (std::size_t i = GoroutinePoolTuning::kSlabsPerChunk; i-- > 0;) {
      unused_slabs_.push_back(reinterpret_cast<G*>(chunk + i * GoroutinePoolTuning::kSlabBytes));
    }
    for (std::size_t i = 0; i < GoroutinePoolTuning::kSlabsPerChunk; ++i) {
      slabs_.push_back(reinterpret_cast<G*>(chunk + i * GoroutinePoolTuning::kSlabBytes));
    }
  }
  G* slab = unused_slabs_.back();
  unused_slabs_.pop_back();
  thread_slab_locked(slab);
}

std::size_t GoroutinePool::release_free_slabs() noexcept {
  MutexLock lock(mu_);
  absl::flat_hash_map<G*, std::size_t> free_per_slab;
  for (G* g = free_; g != nullptr; g = g->next_free) ++free_per_slab[slab_of(g)];
  absl::flat_hash_set<G*> releasable;
  for (const auto& [slab, n] : free_per_slab) {
    if (n == GoroutinePoolTuning::kSlabRecords) releasable.insert(slab);
  }
  if (releasable.empty()) return 0;
  // Unthread their records, then give the pages back.
  for (G** link = &free_; *link != nullptr;) {
    if (releasable.contains(slab_of(*link))) {
      *link = (*link)->next_free;
      --free_count_;
    } else {
      link = &(*link)->next_free;
    }
  }
  for (G* slab : releasable) {
    madvise(slab, GoroutinePoolTuning::kSlabBytes, MADV_DONTNEED);
    released_slabs_.push_back(slab);
  }
  return releasable.size() * GoroutinePoolTuning::kSlabBytes;
}

std::size_t GoroutinePool::take_batch(G*& head, std::size_t max) {
  MutexLock lock(mu_);
  if (free_ == nullptr) add_slab_locked();
  head = free_;
  G* last = free_;
  std::size_t n = 1;
  while (n < max && last->next_free != nullptr) {
    last = last->next_free;
    ++n;
  }
  free_ = last->next_free;
  last->next_free = nullptr;
  free_count_ -= n;
  return n;
}

void GoroutinePool::give_batch(G* head, G* tail, std::size_t count) noexcept {
  MutexLock lock(mu_);
  tail->next_free = free_;
  free_ = head;
  free_count_ += count;
}

G* GoroutinePool::allocate() {
  G* g = nullptr;
  take_batch(g, 1);
  return g;
}

void GoroutinePool::free(G* g) noexcept { give_batch(g, g, 1); }

G* GoroutineCache::allocate(GoroutinePool& pool) {
  if (head_ == nullptr) count_ = pool.take_batch(head_, GoroutinePoolTuning::kBatch);
  G* g = head_;
  head_ = g->next_free;
  g->next_free = nullptr;
  --count_;
  return g;
}

void GoroutineCache::free(GoroutinePool& pool, G* g) noexcept {
  g->next_free = head_;
  head_ = g;
  if (++count_ <= GoroutinePoolTuning::kCacheLimit) return;
  // Spill a batch so that a P where goroutines mostly die does not hoard.
  G* first = head_;
  G* last = head_;
  for (std::size_t i = 1; i < GoroutinePoolTuning::kBatch; ++i) last = last->next_free;
  head_ = last->next_free;
  count_ -= GoroutinePoolTuning::kBatch;
  pool.give_batch(first, last, GoroutinePoolTuning::kBatch);
}

void GoroutineCache::flush(GoroutinePool& pool) noexcept {
  if (head_ == nullptr) return;
  G* last = head_;
  while (last->next_free != nullptr) last = last->next_free;
  pool.give_batch(head_, last, count_);
  head_ = nullptr;
  count_ = 0;
}

}  // namespace goro::detail
