// lib/alloc/page_heap.cpp: the page heap (design in page_heap.hpp).
#include "page_heap.hpp"

#include <sys/mman.h>
#include <time.h>

#include <new>

namespace goro::detail::alloc {
namespace {

constexpr std::size_t kLeafCount = std::size_t{1}
                                   << (PageHeapTuning::kAddressBits - PageHeapTuning::kArenaShift);

void* map_or_null(std::size_t bytes) noexcept {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Maps `bytes` (a multiple of the arena size) at an arena-aligned address:
// over-map by one arena and trim both ends.
void* map_aligned(std::size_t bytes) noexcept {
  const std::size_t align = PageHeapTuning::kArenaSize;
  auto* raw = static_cast<char*>(map_or_null(bytes + align));
  if (raw == nullptr) return nullptr;
  const auto addr = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (addr + align - 1) & ~(align - 1);
  const std::size_t head = aligned - addr;
  if (head != 0) munmap(raw, head);
  const std::size_t tail = align - head;
  if (tail != 0) munmap(reinterpret_cast<char*>(aligned) + bytes, tail);
  return reinterpret_cast<void*>(aligned);
}

constexpr std::size_t kSpansPerChunk = 1024;

}  // namespace

PageHeap& PageHeap::instance() noexcept {
  static PageHeap* heap = new PageHeap();
  return *heap;
}

PageHeap::PageHeap() {
  void* l1 = map_or_null(kLeafCount * sizeof(std::atomic<PageMapLeaf*>));
  if (l1 == nullptr) throw std::bad_alloc();
  // Zero pages: every slot starts as nullptr (std::atomic of a pointer is
  // trivially zero-initialisable).
  page_map_ = static_cast<std::atomic<PageMapLeaf*>*>(l1);
}

std::uint64_t PageHeap::now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

Span* PageHeap::span_of(const void* p) const noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t slot = a >> PageHeapTuning::kArenaShift;
  if (slot >= kLeafCount) return nullptr;
  // Acquire: pairs with the release store that installed the leaf.
  PageMapLeaf* leaf = page_map_[slot].load(std::memory_order_acquire);
  if (leaf == nullptr) return nullptr;
  // Relaxed: see the header comment (the object's hand-over synchronizes).
  return leaf->spans[(a >> kPageShift) & (PageHeapTuning::kArenaSize / kPageSize - 1)].load(
      std::memory_order_relaxed);
}

// Relaxed loads and stores: under mu_, and readers synchronize through the
// objects they free (see the header); the leaf was installed under mu_ too.
void PageHeap::set_page(std::uintptr_t page_address, Span* s) noexcept {
  PageMapLeaf* leaf =
      page_map_[page_address >> PageHeapTuning::kArenaShift].load(std::memory_order_relaxed);
  leaf->spans[(page_address >> kPageShift) & (PageHeapTuning::kArenaSize / kPageSize - 1)].store(
      s, std::memory_order_relaxed);
}

void PageHeap::set_all_pages(Span* s) noexcept {
  for (std::uintptr_t a = s->start; a < s->end(); a += kPageSize) set_page(a, s);
}

void PageHeap::set_boundary_pages(Span* s) noexcept {
  set_page(s->start, s);
  set_page(s->end() - kPageSize, s);
}

Span* PageHeap::new_span_locked() {
  if (spare_spans_ == nullptr) {
    // Span metadata is never returned to the OS: a chunk of it is a small,
    // fixed cost, and recycling keeps it type-stable.
    void* chunk = map_or_null(kSpansPerChunk * sizeof(Span));
    if (chunk == nullptr) throw std::bad_alloc();
    auto* spans = static_cast<Span*>(chunk);
    for (std::size_t i = 0; i < kSpansPerChunk; ++i) {
      Span* s = new (&spans[i]) Span();
      s->next = spare_spans_;
      spare_spans_ = s;
    }
  }
  Span* s = spare_spans_;
  spare_spans_ = s->next;
  *s = Span();
  return s;
}

void PageHeap::delete_span_locked(Span* s) {
  s->next = spare_spans_;
  spare_spans_ = s;
}

SpanList& PageHeap::list_for(std::size_t pages) {
  return pages < PageHeapTuning::kListPages ? free_[pages] : large_free_;
}

void PageHeap::insert_free_locked(Span* s) { list_for(s->pages).push_front(s); }

void PageHeap::remove_free_locked(Span* s) { list_for(s->pages).remove(s); }

Span* PageHeap::find_free_locked(std::size_t pages) {
  for (std::size_t n = pages; n < PageHeapTuning::kListPages; ++n) {
    if (!free_[n].empty()) return free_[n].front();
  }
  // Best fit among the large spans (few: they coalesce).
  Span* best = nullptr;
  for (Span* s = large_free_.front(); s != nullptr; s = s->next) {
    if (s->pages >= pages && (best == nullptr || s->pages < best->pages)) best = s;
  }
  return best;
}

void PageHeap::grow_locked(std::size_t pages) {
  const std::size_t arena = PageHeapTuning::kArenaSize;
  const std::size_t bytes = ((pages * kPageSize + arena - 1) / arena) * arena;
  void* region = map_aligned(bytes);
  if (region == nullptr) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(region);
  for (std::uintptr_t a = start; a < start + bytes; a += arena) {
    std::atomic<PageMapLeaf*>& slot = page_map_[a >> PageHeapTuning::kArenaShift];
    if (slot.load(std::memory_order_relaxed) == nullptr) {  // only written under mu_
      void* leaf = map_or_null(sizeof(PageMapLeaf));
      if (leaf == nullptr) {
        munmap(region, bytes);
        throw std::bad_alloc();
      }
      // Release: span_of's acquire load sees a zeroed leaf.
      slot.store(static_cast<PageMapLeaf*>(leaf), std::memory_order_release);
    }
  }
  stats_.bytes_mapped += bytes;
  stats_.bytes_released += bytes;  // never touched: not resident
  poison(region, bytes);
  Span* s = new_span_locked();
  s->start = start;
  s->pages = bytes / kPageSize;
  s->state = SpanState::kFree;
  s->released = true;
  s->free_since_ns = now_ns();
  release_span_locked(s);
}

Span* PageHeap::allocate(std::size_t pages, SpanState state, std::uint32_t size_class) {
  MutexLock lock(mu_);
  Span* s = find_free_locked(pages);
  if (s == nullptr) {
    grow_locked(pages);
    s = find_free_locked(pages);
  }
  remove_free_locked(s);
  if (s->pages > pages) {
    Span* rest = new_span_locked();
    rest->start = s->start + pages * kPageSize;
    rest->pages = s->pages - pages;
    rest->state = SpanState::kFree;
    rest->released = s->released;
    rest->free_since_ns = s->free_since_ns;
    set_boundary_pages(rest);
    insert_free_locked(rest);
    s->pages = pages;
  }
  if (s->released) {
    // Its pages fault back in as they are touched.
    stats_.bytes_released -= s->pages * kPageSize;
    s->released = false;
  }
  s->state = state;
  s->size_class = size_class;
  s->free_objects = nullptr;
  s->allocated = 0;
  s->on_nonempty_list = false;
  s->carve_next = s->start;
  s->carve_end = s->end();
  set_all_pages(s);
  stats_.bytes_in_spans += s->pages * kPageSize;
  if (state == SpanState::kLarge) {
    stats_.large_objects += 1;
    stats_.large_bytes += s->pages * kPageSize;
  }
  return s;
}

void PageHeap::free(Span* s) noexcept {
  poison(reinterpret_cast<void*>(s->start), s->pages * kPageSize);
  MutexLock lock(mu_);
  stats_.bytes_in_spans -= s->pages * kPageSize;
  if (s->state == SpanState::kLarge) {
    stats_.large_objects -= 1;
    stats_.large_bytes -= s->pages * kPageSize;
  }
  s->state = SpanState::kFree;
  s->released = false;
  s->free_since_ns = now_ns();
  release_span_locked(s);
}

void PageHeap::release_span_locked(Span* s) {
  // Coalesce with the left neighbour: the span holding the page before us.
  if (Span* left = span_of(reinterpret_cast<void*>(s->start - kPageSize));
      left != nullptr && left->state == SpanState::kFree && left->end() == s->start) {
    remove_free_locked(left);
    if (left->released != s->released) {
      // Mixed: count the merged span as resident (conservative); the next
      // scavenge releases it all again.
      if (left->released) stats_.bytes_released -= left->pages * kPageSize;
      if (s->released) stats_.bytes_released -= s->pages * kPageSize;
      s->released = false;
    }
    s->start = left->start;
    s->pages += left->pages;
    if (left->free_since_ns > s->free_since_ns) s->free_since_ns = left->free_since_ns;
    delete_span_locked(left);
  }
  if (Span* right = span_of(reinterpret_cast<void*>(s->end()));
      right != nullptr && right->state == SpanState::kFree && right->start == s->end()) {
    remove_free_locked(right);
    if (right->released != s->released) {
      if (right->released) stats_.bytes_released -= right->pages * kPageSize;
      if (s->released) stats_.bytes_released -= s->pages * kPageSize;
      s->released = false;
    }
    s->pages += right->pages;
    if (right->free_since_ns > s->free_since_ns) s->free_since_ns = right->free_since_ns;
    delete_span_locked(right);
  }
  set_boundary_pages(s);
  insert_free_locked(s);
}

std::size_t PageHeap::scavenge(std::uint64_t min_age_ns) noexcept {
  MutexLock lock(mu_);
  const std::uint64_t now = now_ns();
  std::size_t released = 0;
  auto scan = [&](SpanList& list) {
    for (Span* s = list.front(); s != nullptr; s = s->next) {
      if (s->released || now - s->free_since_ns < min_age_ns) continue;
      const std::size_t bytes = s->pages * kPageSize;
      if (madvise(reinterpret_cast<void*>(s->start), bytes, MADV_DONTNEED) != 0) continue;
      s->released = true;
      stats_.bytes_released += bytes;
      released += bytes;
    }
  };
  for (auto& list : free_) scan(list);
  scan(large_free_);
  return released;
}

PageHeap::Stats PageHeap::stats() noexcept {
  MutexLock lock(mu_);
  return stats_;
}

}  // namespace goro::detail::alloc
