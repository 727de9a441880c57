// lib/goroutine_pool.cpp: type-stable goroutine records (see
// goroutine_pool.hpp for why they are never freed).
#include "goroutine_pool.hpp"

namespace goro::detail {

GoroutinePool& GoroutinePool::instance() noexcept {
  // Leaked on purpose: records must outlive every JoinHandle, including
  // ones destroyed by static destructors.
  static GoroutinePool* pool = new GoroutinePool();
  return *pool;
}

void GoroutinePool::add_slab_locked() {
  auto slab = std::make_unique<G[]>(GoroutinePoolTuning::kSlabRecords);
  for (std::size_t i = 0; i < GoroutinePoolTuning::kSlabRecords; ++i) {
    slab[i].next_free = free_;
    free_ = &slab[i];
  }
  free_count_ += GoroutinePoolTuning::kSlabRecords;
  slabs_.push_back(std::move(slab));
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
