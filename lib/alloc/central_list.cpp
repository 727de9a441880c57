// lib/alloc/central_list.cpp: per-size-class span pools (design in
// central_list.hpp).
#include "central_list.hpp"

namespace goro::detail::alloc {

CentralList& central_list(std::uint32_t size_class) noexcept {
  static CentralList* lists = [] {
    auto* all = new CentralList[kClassCount];
    for (std::uint32_t c = 0; c < kClassCount; ++c) all[c].init(c);
    return all;
  }();
  return lists[size_class];
}

std::size_t CentralList::remove_batch(void*& head, std::size_t max) {
  const SizeClass& cls = kSizeClasses[size_class_];
  MutexLock lock(mu_);
  std::size_t n = 0;
  head = nullptr;
  void* tail = nullptr;
  while (n < max) {
    Span* s = nonempty_.front();
    if (s == nullptr) {
      s = PageHeap::instance().allocate(cls.pages, SpanState::kSmall, size_class_);
      s->on_nonempty_list = true;
      nonempty_.push_front(s);
      stats_.spans += 1;
      stats_.objects_free += cls.objects;
    }
    // Take from the span's free list first, then carve.
    while (n < max) {
      void* object = s->free_objects;
      if (object != nullptr) {
        s->free_objects = next_free_object(object);
      } else if (s->carve_next + cls.size <= s->carve_end) {
        object = reinterpret_cast<void*>(s->carve_next);
        s->carve_next += cls.size;
      } else {
        break;
      }
      if (tail == nullptr) {
        head = object;
      } else {
        set_next_free_object(tail, object);
      }
      tail = object;
      ++s->allocated;
      ++n;
    }
    if (s->free_objects == nullptr && s->carve_next + cls.size > s->carve_end) {
      nonempty_.remove(s);  // full: every object is out
      s->on_nonempty_list = false;
    }
  }
  set_next_free_object(tail, nullptr);
  stats_.objects_out += n;
  stats_.objects_free -= n;
  stats_.objects_handed_out += n;
  return n;
}

void CentralList::insert_batch(void* head, std::size_t count) noexcept {
  const SizeClass& cls = kSizeClasses[size_class_];
  PageHeap& heap = PageHeap::instance();
  MutexLock lock(mu_);
  for (std::size_t i = 0; i < count; ++i) {
    void* object = head;
    head = next_free_object(object);
    Span* s = heap.span_of(object);
    set_next_free_object(object, s->free_objects);
    s->free_objects = object;
    if (--s->allocated == 0) {
      // Every object is back: the pages go back to the heap for any use.
      if (s->on_nonempty_list) nonempty_.remove(s);
      stats_.spans -= 1;
      stats_.objects_free -= cls.objects - 1;  // the others were counted free already
      heap.free(s);
      continue;
    }
    if (!s->on_nonempty_list) {
      s->on_nonempty_list = true;
      nonempty_.push_front(s);
    }
    stats_.objects_free += 1;
  }
  stats_.objects_out -= count;
}

CentralList::Stats CentralList::stats() noexcept {
  MutexLock lock(mu_);
  return stats_;
}

}  // namespace goro::detail::alloc
