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

namespace goro::detail::alloc {

class FrameCache;

[[nodiscard]] void* allocate(std::size_t size);
// `align` a power of two; above 16 the object is aligned to it.
[[nodiscard]] void* allocate_aligned(std::size_t size, std::size_t align);
// Sized free: the class comes from the size (no page-map lookup for small
// objects).
void free(void* p, std::size_t size) noexcept;
void free_aligned(void* p, std::size_t size, std::size_t align) noexcept;
// Unsized free: the class comes from the page map.
void free_unsized(void* p) noexcept;

// P caches register themselves so that memory_stats() can count what they
// hold.
void register_cache(FrameCache* cache);
void unregister_cache(FrameCache* cache) noexcept;

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_ALLOCATOR_HPP_
