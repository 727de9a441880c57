// lib/alloc/page_heap.hpp
//
// Defines: goro::detail::alloc::PageHeap, the bottom layer of the frame
// allocator (Go's mheap): pages from the OS, spans of pages for the layers
// above, the page -> span map, and the scavenger.
//
// Glossary
//   page     8 KiB, the heap's unit.
//   arena    a 64 MiB region mapped from the OS at a 64 MiB-aligned address
//            (larger requests map a multiple of 64 MiB).
//   span     a run of pages: free, carved into objects of one size class,
//            or holding one large object (span.hpp).
//   page map the two-level radix map from an address to the span that holds
//            it, as Go's heapArena map: level 1 indexed by address bits
//            47..26 (one slot per 64 MiB), level 2 by bits 25..13 (one entry
//            per page). Level 1 is a 32 MiB NORESERVE mapping touched only
//            where arenas exist; each arena gets a 64 KiB level 2 array.
//   released a free span whose pages were returned to the OS with
//            madvise(MADV_DONTNEED); they read as zero when touched again.
//
// Invariants (all under mu_ except the page map reads)
//   1. Every page of every arena belongs to exactly one span.
//   2. The page map entry of every page of a span in use names that span;
//      for a free span at least its first and last pages' entries do.
//   3. No two free spans are adjacent (they are coalesced on free).
//   4. A free span is on exactly one free list: free_[pages] for spans of
//      fewer than kListPages pages, large_free_ otherwise.
//
// Allocation (allocate): best fit among the exact-size lists upward, then
// the large list; if nothing fits, map more arenas. A larger span is split;
// the remainder stays free. Free (free): mark free, coalesce with the free
// neighbours found through the page map, file it. Large objects and the
// spans of the size classes come from here alike.
//
// Scavenging: free spans remember when they became free; scavenge(min_age)
// releases those free for at least min_age. MADV_DONTNEED, not MADV_FREE:
// with DONTNEED the resident set shrinks at once, so memory statistics, RSS
// readings and container limits agree with what goro reports; MADV_FREE only
// lets the kernel reclaim the pages under memory pressure, and until then
// they still count against the process (Go switched its default to
// DONTNEED in 1.16 for that reason). The price, a page fault and a zeroed
// page when a released page is reused, is paid only for memory that stayed
// idle.
//
// Page map reads are lock-free: a span's entries are written (under mu_)
// before any object in it is handed out, and an object is freed only after
// it was handed out, so the freeing thread already synchronizes with the
// write through whatever passed it the object.
//
// Rejected alternatives: a hash map from page to span (a lock or a probe
// sequence on every unsized free); storing span headers in the pages
// themselves (free pages could not be released to the OS, and a header in
// front of every large object breaks page alignment).
#ifndef GORO_LIB_ALLOC_PAGE_HEAP_HPP_
#define GORO_LIB_ALLOC_PAGE_HEAP_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../mutex.hpp"
#include "goro/detail/frame_size_classes.hpp"
#include "span.hpp"

namespace goro::detail::alloc {

struct PageHeapTuning {
  static constexpr std::size_t kArenaShift = 26;  // 64 MiB arenas
  static constexpr std::size_t kArenaSize = std::size_t{1} << kArenaShift;
  static constexpr std::size_t kAddressBits = 48;
  // Free spans shorter than this many pages are kept in exact-size lists.
  static constexpr std::size_t kListPages = 128;
};

class PageHeap {
 public:
  struct Stats {
    std::uint64_t bytes_mapped = 0;    // arenas mapped from the OS
    std::uint64_t bytes_in_spans = 0;  // pages in spans in use (small or large)
    std::uint64_t bytes_released = 0;  // free pages returned to the OS
    std::uint64_t large_objects = 0;   // large objects in use
    std::uint64_t large_bytes = 0;     // their pages
  };

  // The process-wide heap (never destroyed: memory may be freed by static
  // destructors).
  static PageHeap& instance() noexcept;

  // A span of `pages` pages in state `state` (kSmall or kLarge), its page
  // map entries set. Its memory stays ASan-poisoned: the caller unpoisons
  // what it hands out. Throws std::bad_alloc if the OS refuses memory.
  Span* allocate(std::size_t pages, SpanState state, std::uint32_t size_class);

  // Returns a span in use to the heap (coalescing, poisoning its pages).
  void free(Span* span) noexcept;

  // The span holding address `p`, or nullptr if p is not in the heap.
  // Lock-free; see the header comment for why that is safe.
  [[nodiscard]] Span* span_of(const void* p) const noexcept;

  // Releases to the OS every free span that has been free for at least
  // `min_age_ns`. Returns the number of bytes released.
  std::size_t scavenge(std::uint64_t min_age_ns) noexcept;

  [[nodiscard]] Stats stats() noexcept;

  static std::uint64_t now_ns() noexcept;

 private:
  struct PageMapLeaf {
    std::atomic<Span*> spans[PageHeapTuning::kArenaSize / kPageSize];
  };

  PageHeap();

  Span* new_span_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void delete_span_locked(Span* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Span* find_free_locked(std::size_t pages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void grow_locked(std::size_t pages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void insert_free_locked(Span* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void remove_free_locked(Span* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Coalesces a span just marked free with its free neighbours and files it.
  void release_span_locked(Span* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void set_page(std::uintptr_t page_address, Span* s) noexcept;
  void set_all_pages(Span* s) noexcept;
  void set_boundary_pages(Span* s) noexcept;
  SpanList& list_for(std::size_t pages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  // Level 1 of the page map: one slot per 64 MiB of address space.
  std::atomic<PageMapLeaf*>* page_map_ = nullptr;
  SpanList free_[PageHeapTuning::kListPages] ABSL_GUARDED_BY(mu_);
  SpanList large_free_ ABSL_GUARDED_BY(mu_);
  Span* spare_spans_ ABSL_GUARDED_BY(mu_) = nullptr;  // recycled metadata
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_PAGE_HEAP_HPP_
