// lib/alloc/frame_cache.hpp
//
// Defines: goro::detail::alloc::FrameCache, a P's private object cache
// (Go's mcache), and the thread-local pointer through which the allocator
// finds the cache of the P running on this thread.
//
// One free list per size class, used only by the P's worker thread: the
// fast paths are a pop and a push, with no lock and no atomic
// read-modify-write. The counts are atomics written with relaxed stores
// (plain moves) only so that memory_stats() may read them from elsewhere.
//
// Frames are freed where they die, usually on another P than the one that
// made them, so a cache can fill up with objects of another P's making.
// When a class's list passes its limit, half of it goes back to the central
// list (and from there to the spans and the page heap); when a list is
// empty, a batch is fetched. The limit is 64 KiB worth of objects, between
// 16 and 512 objects, so no cache grows without bound under a
// producer/consumer pattern and a P holds at most about 3.5 MiB idle.
#ifndef GORO_LIB_ALLOC_FRAME_CACHE_HPP_
#define GORO_LIB_ALLOC_FRAME_CACHE_HPP_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "central_list.hpp"
#include "goro/detail/frame_allocator.hpp"
#include "goro/detail/frame_size_classes.hpp"
#include "span.hpp"

namespace goro::detail::alloc {

namespace frame_cache_detail {

inline constexpr std::size_t kBytesPerClass = 64 * 1024;
inline constexpr std::uint32_t kMinObjects = 16;
inline constexpr std::uint32_t kMaxObjects = 512;

constexpr std::array<std::uint32_t, kClassCount> make_limits() {
  std::array<std::uint32_t, kClassCount> limits{};
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    const std::size_t n = kBytesPerClass / kSizeClasses[c].size;
    limits[c] = n < kMinObjects   ? kMinObjects
                : n > kMaxObjects ? kMaxObjects
                                  : static_cast<std::uint32_t>(n);
  }
  return limits;
}

}  // namespace frame_cache_detail

struct FrameCacheTuning {
  // A class's list holds at most kBytesPerClass worth of objects, clamped
  // to [kMinObjects, kMaxObjects]. Computed at compile time: the free path
  // checks the limit on every free, and a division there would cost more
  // than the rest of the path.
  static constexpr std::array<std::uint32_t, kClassCount> kLimits =
      frame_cache_detail::make_limits();

  static constexpr std::uint32_t limit(std::uint32_t size_class) { return kLimits[size_class]; }
};

class FrameCache {
 public:
  FrameCache() {
    for (std::uint32_t c = 1; c < kClassCount; ++c) lists_[c].limit = FrameCacheTuning::limit(c);
  }
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;
  ~FrameCache() { flush(); }

  // An object of class `size_class`, unpoisoned for `size` bytes. The
  // counts are owner-written relaxed load+store pairs (plain moves), read
  // relaxed by memory_stats().
  void* allocate(std::uint32_t size_class, std::size_t size) {
    List& list = lists_[size_class];
    void* object = list.head;
    if (object == nullptr) [[unlikely]] {
      object = refill(size_class);
    } else {
      list.head = next_free_object(object);
      list.count.store(list.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }
    unpoison(object, size);
    return object;
  }

  // Takes back an object of class `size_class`.
  void free(void* object, std::uint32_t size_class) noexcept {
    poison(object, kSizeClasses[size_class].size);
    List& list = lists_[size_class];
    set_next_free_object(object, list.head);
    list.head = object;
    const std::uint32_t count = list.count.load(std::memory_order_relaxed) + 1;
    list.count.store(count, std::memory_order_relaxed);
    if (count > list.limit) [[unlikely]]
      release_half(size_class);
  }

  // Returns every cached object to the central lists.
  void flush() noexcept;

  // The free lists, indexed by size class, for the inline fast path
  // (goro/detail/frame_allocator.hpp, tls_frame_free_lists).
  [[nodiscard]] FrameFreeList* free_lists() noexcept { return lists_; }

  // The fast path pushed onto `size_class`'s list past its limit: half of
  // it goes back (allocator.hpp, free step 3).
  void over_limit(std::uint32_t size_class) noexcept { release_half(size_class); }

  // Objects cached for `size_class` (racy from other threads; relaxed).
  [[nodiscard]] std::uint32_t cached(std::uint32_t size_class) const noexcept {
    return lists_[size_class].count.load(std::memory_order_relaxed);
  }

 private:
  using List = FrameFreeList;

  void* refill(std::uint32_t size_class);
  void release_half(std::uint32_t size_class) noexcept;

  List lists_[kClassCount];
};

// The cache of the P whose worker is this thread (nullptr elsewhere). Set
// by the worker when it starts and cleared when it stops; read only inside
// one allocation or free, never across a suspension point.
// constinit: no dynamic initialisation, so other files access it directly
// instead of through a TLS wrapper call.
extern constinit thread_local FrameCache* tls_frame_cache;

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_FRAME_CACHE_HPP_
