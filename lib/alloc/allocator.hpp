// lib/alloc/allocator.hpp
//
// Defines: the frame allocator's entry points (goro::detail::alloc::allocate
// and friends) and the registry of P caches that memory_stats() reads.
//
// Layers, as Go's malloc.go (walked step by step in docs/ARCHITECTURE.md,
// "Frame allocator"):
//   FrameCache (per P, no locks)  -> CentralList (per class, a lock)
//                                  -> PageHeap (one lock, spans of pages)
//                                  -> the OS (64 MiB arenas)
// Requests over 32 KiB go straight to the PageHeap. Threads without a P
// (syscall threads, threads outside the runtime, start-up and shutdown) use
// the CentralList directly, one object at a time, under its lock.
#ifndef GORO_LIB_ALLOC_ALLOCATOR_HPP_
#define GORO_LIB_ALLOC_ALLOCATOR_HPP_

#include <cstddef>
#include <cstdint>

#include "frame_cache.hpp"
#include "size_classes.hpp"

namespace goro::detail::alloc {

class FrameCache;

// Slow paths (allocator.cpp).
[[nodiscard]] void* allocate_without_cache(std::uint32_t size_class, std::size_t size);
void free_without_cache(void* p, std::uint32_t size_class) noexcept;
[[nodiscard]] void* allocate_large(std::size_t size, std::size_t align);

// Unsized free: the class comes from the page map.
void free_unsized(void* p) noexcept;

// The fast paths are inline so that allocate_frame / free_frame are one
// call deep: a size-table lookup, the thread's P cache, a list pop or push.
[[nodiscard]] inline void* allocate(std::size_t size) {
  if (size <= kMaxSmallSize) [[likely]] {
    const std::uint32_t size_class = size_to_class(size);
    if (FrameCache* cache = tls_frame_cache) [[likely]]
      return cache->allocate(size_class, size);
    return allocate_without_cache(size_class, size);
  }
  return allocate_large(size, kPageSize);
}

// Sized free: the class comes from the size (no page-map lookup for small
// objects).
inline void free(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (size <= kMaxSmallSize) [[likely]] {
    const std::uint32_t size_class = size_to_class(size);
    if (FrameCache* cache = tls_frame_cache) [[likely]] {
      cache->free(p, size_class);
      return;
    }
    free_without_cache(p, size_class);
    return;
  }
  free_unsized(p);
}

// `align` a power of two; above 16 the object is aligned to it.
[[nodiscard]] void* allocate_aligned(std::size_t size, std::size_t align);
void free_aligned(void* p, std::size_t size, std::size_t align) noexcept;

// P caches register themselves so that memory_stats() can count what they
// hold.
void register_cache(FrameCache* cache);
void unregister_cache(FrameCache* cache) noexcept;

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_ALLOCATOR_HPP_
