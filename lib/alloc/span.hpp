// lib/alloc/span.hpp
//
// Defines: goro::detail::alloc::Span (a run of pages and what it holds),
// SpanList (an intrusive doubly linked list of spans) and the ASan-aware
// accessors for the free-list link stored inside free objects.
#ifndef GORO_LIB_ALLOC_SPAN_HPP_
#define GORO_LIB_ALLOC_SPAN_HPP_

#include <cstddef>
#include <cstdint>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#endif

#if defined(GORO_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace goro::detail::alloc {

// Marks memory the allocator owns but nobody may touch (free objects,
// uncarved span tails, free pages), so that ASan reports a use-after-free
// of a frame even though the memory never went back to ASan's allocator.
inline void poison(const void* p, std::size_t n) noexcept {
#if defined(GORO_ASAN)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void unpoison(const void* p, std::size_t n) noexcept {
#if defined(GORO_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// A free object's first word links it to the next free object. Under ASan
// the object stays poisoned except while the allocator itself reads or
// writes that word.
inline void* next_free_object(void* object) noexcept {
  unpoison(object, sizeof(void*));
  void* next = *static_cast<void**>(object);
  poison(object, sizeof(void*));
  return next;
}

inline void set_next_free_object(void* object, void* next) noexcept {
  unpoison(object, sizeof(void*));
  *static_cast<void**>(object) = next;
  poison(object, sizeof(void*));
}

enum class SpanState : std::uint8_t {
  kFree,   // in the page heap's free lists
  kSmall,  // carved into objects of one size class, owned by a CentralList
  kLarge,  // one large object
};

// Span metadata lives outside the pages it describes (in a type-stable pool
// of the page heap), so free pages can be returned to the OS.
struct Span {
  std::uintptr_t start = 0;  // address of the first page
  std::size_t pages = 0;
  SpanState state = SpanState::kFree;
  std::uint32_t size_class = 0;

  // kSmall: objects given back to the span, and the part not carved yet.
  void* free_objects = nullptr;
  std::uintptr_t carve_next = 0;
  std::uintptr_t carve_end = 0;
  std::uint32_t allocated = 0;  // objects out of the span (in caches or in use)
  bool on_nonempty_list = false;

  // kFree: when it became free (for the scavenger), and whether its pages
  // were returned to the OS.
  std::uint64_t free_since_ns = 0;
  bool released = false;

  // Links for the list the span is on (a CentralList's or the page heap's).
  Span* prev = nullptr;
  Span* next = nullptr;

  [[nodiscard]] std::uintptr_t end() const noexcept { return start + (pages << 13); }
};

class SpanList {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] Span* front() const noexcept { return head_; }

  void push_front(Span* s) noexcept {
    s->prev = nullptr;
    s->next = head_;
    if (head_ != nullptr) head_->prev = s;
    head_ = s;
  }

  void remove(Span* s) noexcept {
    if (s->prev != nullptr) {
      s->prev->next = s->next;
    } else {
      head_ = s->next;
    }
    if (s->next != nullptr) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
  }

 private:
  Span* head_ = nullptr;
};

}  // namespace goro::detail::alloc

#endif  // GORO_LIB_ALLOC_SPAN_HPP_
