// lib/alloc/allocator.hpp
//
// Defines: the frame allocator's entry points (goro::detail::alloc::allocate
// and friends) and the registry of P caches that memory_stats() reads.
//
// Why goro has its own allocator: every coroutine frame goro creates (a
// Task's frame, through its promise's operator new; goro/detail/
// frame_allocator.hpp) comes from here. Frames are goro's hottest
// allocation: every spawn and every awaited task makes one, and in a server
// they die on another P than the one that made them. Goroutine records (G)
// do not come from here: they are type-stable and live in their own slabs
// (goroutine_pool.hpp).
//
// Layers, as Go's malloc.go:
//   FrameCache (per P, no locks)  -> CentralList (per class, a lock)
//                                  -> PageHeap (one lock, spans of pages)
//                                  -> the OS (64 MiB arenas)
// Requests over 32 KiB go straight to the PageHeap. Threads without a P
// (syscall threads, threads outside the runtime, start-up and shutdown) use
// the CentralList directly, one object at a time, under its lock.
//
// Glossary (the layers' own essays have the detail)
//   page        8 KiB. arena: 64 MiB of address space mapped at once,
//               64 MiB-aligned (page_heap.hpp).
//   size class  one of the object sizes from 16 B to 32 KiB, each a multiple
//               of 16 (operator new's alignment), from 64 B up of a 64-byte
//               cache line (no false sharing); larger requests are large
//               objects (goro/detail/frame_size_classes.hpp; how the classes are chosen is at
//               the top of scripts/gen_size_classes.py).
//   span        a run of pages that is free, carved into objects of one
//               class, or holds one large object; its metadata lives outside
//               the pages (span.hpp).
//   page map    the two-level radix map from any address to its span.
//   FrameCache  (Go's mcache) a P's free list per class; CentralList (Go's
//               mcentral) one per class, owning its spans; PageHeap (Go's
//               mheap) the pages, the spans, the page map, the scavenger.
//
// Allocation, step by step
//   1. allocate(size) with size <= 32 KiB: look the class up in the size
//      table (two byte tables, O(1)).
//   2. On a worker thread, its P's FrameCache is found through a
//      thread-local pointer. Pop the class's free list: one load, one
//      store, a relaxed counter update; no lock, no atomic read-modify-
//      write. Done. For a Task's frame, steps 1 and 2 are inline in its
//      operator new (goro/detail/frame_allocator.hpp: the size is a
//      constant there, so the class is too), and the rest is called.
//   3. The list was empty: refill it from the class's CentralList with half
//      the cache's limit in one batch, under the central list's lock. The
//      central list takes objects from the free lists of its spans, and
//      carves more out of them with a bump pointer (pages are touched only
//      when their objects are handed out).
//   4. No span of the class has a free object: ask the PageHeap for a span
//      of the class's page count (under the heap lock): best fit, split off
//      the rest; if nothing fits, map new arenas and register their
//      page-map leaves.
//   5. Requests above 32 KiB go to step 4 directly and get a span of their
//      own; requests aligned beyond 16 bytes use the smallest class whose
//      size is a multiple of the alignment (objects sit at span start +
//      i * size, so such a class is aligned), or a large span.
//   6. A thread without a P takes one object from the central list under
//      its lock.
//
// Free, step by step
//   1. free(p, size): sized delete, the class comes from the size;
//      free_unsized looks the span up in the page map, lock-free.
//   2. On a worker thread: push onto the current P's list for the class,
//      no lock, no atomic read-modify-write. The frame may have been made
//      on any P. Inline for a Task's frame, as allocation step 2.
//   3. If that list now holds more than its limit (frame_cache.hpp), half
//      of it goes back to the central list in one batch, so that a P where
//      frames mostly die cannot hoard them.
//   4. The central list returns each object to its span's free list (the
//      page map names the span). A span whose objects have all come back
//      goes to the page heap at once, so its pages can serve any size.
//   5. The page heap marks the span free, coalesces it with its free
//      neighbours (found through the page map) and files it by size,
//      remembering when it became free (for the scavenger).
//   6. Without a P, the object goes straight back to its central list.
//
// Giving memory back: goro::release_memory() flushes the calling P's
// caches, releases every slab of goroutine records whose records are all
// free, and returns every free page to the OS; sysmon returns pages that
// stayed free for a while (sysmon.hpp, step 3). Why MADV_DONTNEED:
// page_heap.hpp.
//
// Sanitizers: under AddressSanitizer the allocator poisons what nobody may
// touch (free objects, except while it reads or writes their free-list
// link; uncarved span tails; free pages), so a use-after-free of a frame is
// reported as use-after-poison with goro's allocator in place. Building with
// GORO_SYSTEM_FRAME_ALLOCATOR=ON sends frames to operator new instead, so
// that ASan's own allocator sees them.
//
// Rejected alternatives (the layers' essays have their own)
//   * Thread-local caches for every thread (tcmalloc, mimalloc): a cache
//     here is per P, not per thread; threads without a P allocate rarely,
//     and a locked path keeps them from owning caches that nobody drains.
//   * Go's per-span allocation bitmaps and sweeping (central_list.hpp);
//     span headers inside the pages (page_heap.hpp).
#ifndef GORO_LIB_ALLOC_ALLOCATOR_HPP_
#define GORO_LIB_ALLOC_ALLOCATOR_HPP_

#include <cstddef>
#include <cstdint>

#include "frame_cache.hpp"
#include "goro/detail/frame_size_classes.hpp"

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
