// lib/alloc/frame_cache.cpp: a P's object cache (design in frame_cache.hpp).
#include "frame_cache.hpp"

namespace goro::detail::alloc {

constinit thread_local FrameCache* tls_frame_cache = nullptr;

void* FrameCache::refill(std::uint32_t size_class) {
  List& list = lists_[size_class];
  void* head = nullptr;
  const std::size_t n =
      central_list(size_class).remove_batch(head, FrameCacheTuning::limit(size_class) / 2);
  // Keep all but the first; hand the first out.
  list.head = next_free_object(head);
  list.count.store(static_cast<std::uint32_t>(n - 1), std::memory_order_relaxed);
  return head;
}

void FrameCache::release_half(std::uint32_t size_class) noexcept {
  List& list = lists_[size_class];
  // Counts: owner-written, relaxed (see frame_cache.hpp).
  const std::uint32_t count = list.count.load(std::memory_order_relaxed);
  const std::uint32_t give = count / 2;
  // Give back the most recently freed objects' successors: keep the head
  // (hottest in cache), detach `give` objects after the first count - give.
  void* keep_tail = list.head;
  for (std::uint32_t i = 1; i < count - give; ++i) keep_tail = next_free_object(keep_tail);
  void* given = next_free_object(keep_tail);
  set_next_free_object(keep_tail, nullptr);
  list.count.store(count - give, std::memory_order_relaxed);
  central_list(size_class).insert_batch(given, give);
}

void FrameCache::flush() noexcept {
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    List& list = lists_[c];
    // Counts: owner-written, relaxed (see frame_cache.hpp).
    const std::uint32_t count = list.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    central_list(c).insert_batch(list.head, count);
    list.head = nullptr;
    list.count.store(0, std::memory_order_relaxed);
  }
}

}  // namespace goro::detail::alloc
