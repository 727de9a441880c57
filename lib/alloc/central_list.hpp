// lib/alloc/central_list.hpp
//
// Defines: goro::detail::alloc::CentralList, the per-size-class pool shared
// by all Ps (Go's mcentral).
//
// A CentralList owns the spans of one size class. It hands objects to P
// caches in batches and takes batches back, each object returning to the
// span it was carved from (found through the page map). A span whose
// objects have all come back goes back to the page heap at once, so memory
// freed on any P can be reused for other sizes and, after a while, released
// to the OS.
//
// Invariants (under mu_)
//   1. Every span of the class in use is either on nonempty_ (it has free or
//      uncarved objects) or full (all objects out), never both.
//   2. span.allocated counts the objects out of the span, in P caches or in
//      use; objects_out_ is their sum over the class's spans.
//
// Objects are carved lazily (a bump pointer per span), so a new span's
// pages are touched only as its objects are handed out.
//
// Rejected alternative: Go's per-span allocation bitmaps swept by the GC.
// goro frees explicitly, and frees arrive in batches from P caches, so
// per-span free lists give O(1) per object without a sweep.
#ifndef GORO_LIB_ALLOC_CENTRAL_LIST_HPP_
#define GORO_LIB_ALLOC_CENTRAL_LIST_HPP_

#include <cstddef>
#include <cstdint>

#include "../mutex.hpp"
#include "page_heap.hpp"
#include "span.hpp"

namespace goro::detail::alloc {

class CentralList {
 public:
  struct Stats {
    std::uint64_t objects_out = 0;   // in P caches or in use
    std::uint64_t objects_free = 0;  // free in this class's spans (carved or not)
    std::uint64_t spans = 0;
    std::uint64_t objects_handed_out = 0;  // ever, to caches or threads without a P
  };

  CentralList() = default;
  void init(std::uint32_t size_class) noexcept { size_class_ = size_class; }

  // Takes up to `max` objects (at least one; throws std::bad_alloc if the
  // heap is out of memory) as a list linked through the objects; returns
  // the count. The objects stay ASan-poisoned.
  std::size_t remove_batch(void*& head, std::size_t max);

  // Gives back `count` objects linked from `head` (poisoned).
  void insert_batch(void* head, std::size_t count) noexcept;

  [[nodiscard]] Stats stats() noexcept;

 private:
  Mutex mu_;
  std::uint32_t size_class_ = 0;
  SpanList nonempty_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// The central lists of all classes (index 0 unused).
CentralList& central_list(std::uint32_t size_class) noexcept;

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_CENTRAL_LIST_HPP_
