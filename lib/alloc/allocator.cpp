// lib/alloc/allocator.cpp: the frame allocator's front end (see
// allocator.hpp for the layers).
#include "allocator.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <vector>

#include "../mutex.hpp"
#include "central_list.hpp"
#include "frame_cache.hpp"
#include "goro/detail/frame_size_classes.hpp"
#include "goro/memory.hpp"
#include "page_heap.hpp"

namespace goro::detail::alloc {
namespace {

struct CacheRegistry {
  Mutex mu;
  std::vector<FrameCache*> caches ABSL_GUARDED_BY(mu);
};

CacheRegistry& registry() {
  static auto* r = new CacheRegistry();
  return *r;
}

}  // namespace

void* allocate_without_cache(std::uint32_t size_class, std::size_t size) {
  void* object = nullptr;
  central_list(size_class).remove_batch(object, 1);
  unpoison(object, size);
  return object;
}

void free_without_cache(void* p, std::uint32_t size_class) noexcept {
  poison(p, kSizeClasses[size_class].size);
  set_next_free_object(p, nullptr);
  central_list(size_class).insert_batch(p, 1);
}

void* allocate_large(std::size_t size, std::size_t align) {
  std::size_t pages = (size + kPageSize - 1) / kPageSize;
  if (align > kPageSize) pages += align / kPageSize;  // room to align inside
  Span* s = PageHeap::instance().allocate(pages, SpanState::kLarge, 0);
  std::uintptr_t p = s->start;
  if (align > kPageSize) p = (p + align - 1) & ~(align - 1);
  unpoison(reinterpret_cast<void*>(p), size);
  return reinterpret_cast<void*>(p);
}

namespace {

void* allocate_small(std::uint32_t size_class, std::size_t size) {
  if (FrameCache* cache = tls_frame_cache) return cache->allocate(size_class, size);
  return allocate_without_cache(size_class, size);
}

void free_small(void* p, std::uint32_t size_class) noexcept {
  if (FrameCache* cache = tls_frame_cache) {
    cache->free(p, size_class);
    return;
  }
  free_without_cache(p, size_class);
}

}  // namespace

void* allocate_aligned(std::size_t size, std::size_t align) {
  if (align <= kMinAlign) return allocate(size);
  const std::uint32_t size_class = size_to_class_aligned(size, align);
  if (size_class != 0) return allocate_small(size_class, size);
  return allocate_large(size, align);
}

void free_aligned(void* p, std::size_t size, std::size_t align) noexcept {
  if (p == nullptr) return;
  if (align <= kMinAlign) {
    free(p, size);
    return;
  }
  const std::uint32_t size_class = size_to_class_aligned(size, align);
  if (size_class != 0) {
    free_small(p, size_class);
    return;
  }
  free_unsized(p);
}

void free_unsized(void* p) noexcept {
  if (p == nullptr) return;
  Span* s = PageHeap::instance().span_of(p);
  if (s->state == SpanState::kSmall) {
    free_small(p, s->size_class);
  } else {
    PageHeap::instance().free(s);
  }
}

void register_cache(FrameCache* cache) {
  CacheRegistry& r = registry();
  MutexLock lock(r.mu);
  r.caches.push_back(cache);
}

void unregister_cache(FrameCache* cache) noexcept {
  CacheRegistry& r = registry();
  MutexLock lock(r.mu);
  r.caches.erase(std::remove(r.caches.begin(), r.caches.end(), cache), r.caches.end());
}

}  // namespace goro::detail::alloc

namespace goro {

MemoryStats memory_stats() {
  using namespace detail::alloc;
  MemoryStats out;
  out.size_classes.resize(kClassCount);
  std::vector<std::uint64_t> cached(kClassCount, 0);
  {
    CacheRegistry& r = registry();
    detail::MutexLock lock(r.mu);
    for (FrameCache* cache : r.caches) {
      for (std::uint32_t c = 1; c < kClassCount; ++c) {
        cached[c] += cache->cached(c);
      }
    }
  }
  std::uint64_t small_in_use = 0;
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    const CentralList::Stats central = central_list(c).stats();
    SizeClassStats& s = out.size_classes[c];
    s.object_size = kSizeClasses[c].size;
    s.spans = central.spans;
    // Cache counts are read without the central lock: clamp the race.
    s.objects_in_use = central.objects_out - std::min(central.objects_out, cached[c]);
    s.objects_free = central.objects_free + cached[c];
    s.allocations = central.objects_handed_out;
    small_in_use += s.objects_in_use * s.object_size;
  }
  const PageHeap::Stats heap = PageHeap::instance().stats();
  out.bytes_mapped = heap.bytes_mapped;
  out.bytes_released = heap.bytes_released;
  out.large_objects = heap.large_objects;
  out.large_bytes = heap.large_bytes;
  out.bytes_in_use = small_in_use + heap.large_bytes;
  const std::uint64_t resident = heap.bytes_mapped - heap.bytes_released;
  out.bytes_free = resident - std::min(resident, out.bytes_in_use);
  return out;
}

}  // namespace goro
