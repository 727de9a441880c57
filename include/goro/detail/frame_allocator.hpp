// goro/detail/frame_allocator.hpp
//
// Defines: goro::detail::allocate_frame, goro::detail::free_frame and their
// over-aligned variants; under g++, note_frame_start and check_frame_start
// (the frame layout check below).
//
// Every coroutine frame goro creates (Task frames) is allocated through
// these functions: from goro's span/size-class allocator (lib/alloc/, Go's
// mcache/mcentral/mheap design), or from the global operator new when the
// library is built with GORO_SYSTEM_FRAME_ALLOCATOR=ON (so that ASan sees
// frame bugs through its own allocator).
//
// Frame layout check (g++ only). The coroutine ABI that clang and g++ share
// (and that std::coroutine_handle relies on) puts the resume and destroy
// pointers at the start of a frame and the promise right after them, so
// that from_promise() finds the frame at a fixed distance before the
// promise. g++ 12 breaks this for a coroutine that co_awaits in the
// condition of an `if` or a `switch` and declares no named local variable:
// it lays the condition's hidden variable out first, ahead of the resume
// pointer. from_promise() then gives an address one pointer into the frame,
// and resuming that handle runs the body on a misread frame: it may do
// nothing (a goroutine that never starts), or anything. The damage shows
// far from its cause, so goro catches it where the frame is made:
//   1. A Task promise's operator new notes the address it allocated
//      (note_frame_start, a thread-local store).
//   2. get_return_object, which g++ calls right after constructing the
//      promise in the same frame, takes the note and compares it with the
//      address from_promise() gives (check_frame_start). They differ only
//      for a misplaced promise: the program stops with a message that says
//      how to rewrite the coroutine (name the awaited value:
//      `const bool ok = co_await f(); if (!ok) ...`).
//   A frame abandoned between the two (a parameter's copy throws) leaves a
//   stale note that the next frame's allocation overwrites; a frame made
//   inside another's creation (a parameter's copy that calls a coroutine)
//   takes the note, so the outer one is not checked rather than checked
//   against the wrong frame. Rejected: a configure-time test of the
//   compiler, which says that the bug exists but not which coroutine has it.
//
// The fast path is inline (allocation step 2 and free step 2 of
// lib/alloc/allocator.hpp): a Task's operator new and sized delete see the
// frame's size as a constant, so the size class folds away at compile time
// and what is left is a pop or a push on the running P's free list for the
// class, with no call. Everything else (an empty list, a list over its
// limit, a thread without a P, a large frame) is out of line. Under
// AddressSanitizer and with the system allocator the inline path is not
// used: the out-of-line one poisons free objects, which the fast path does
// not.
#ifndef GORO_DETAIL_FRAME_ALLOCATOR_HPP_
#define GORO_DETAIL_FRAME_ALLOCATOR_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/detail/frame_size_classes.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_FRAME_FAST_PATH_OFF 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || \
    (defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR)
#define GORO_FRAME_FAST_PATH_OFF 1
#endif

namespace goro::detail {

// One size class's free list in a P's frame cache (lib/alloc/frame_cache.hpp
// owns them). Only the P's worker thread touches head; count is atomic
// because memory_stats() reads it from other threads (relaxed: a count).
struct FrameFreeList {
  void* head = nullptr;  // each free object's first word links the next
  std::atomic<std::uint32_t> count{0};
  std::uint32_t limit = 0;  // more than this: half goes back (free step 3)
};

// The running P's free lists, indexed by size class, or nullptr on a
// thread without a P. Set by the worker when it starts and cleared when it
// stops (lib/runtime_threads.cpp); read only inside one allocation or
// free, never across a suspension point. constinit: no TLS wrapper call.
extern constinit thread_local FrameFreeList* tls_frame_free_lists;

// The out-of-line paths: the whole of allocate_frame / free_frame, and the
// free of an object that took its list over its limit (already pushed).
[[nodiscard]] void* allocate_frame_out_of_line(std::size_t size);
void free_frame_out_of_line(void* frame, std::size_t size) noexcept;
void frame_free_list_over_limit(std::uint32_t size_class) noexcept;

// Returns `size` bytes aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16).
// Throws std::bad_alloc when memory is exhausted. Safe from any thread;
// lock-free on a goroutine's thread unless the P's cache must be refilled.
[[nodiscard]] inline void* allocate_frame(std::size_t size) {
#if !defined(GORO_FRAME_FAST_PATH_OFF)
  if (size <= alloc::kMaxSmallSize) [[likely]] {
    if (FrameFreeList* lists = tls_frame_free_lists) [[likely]] {
      FrameFreeList& list = lists[alloc::size_to_class(size)];
      if (void* object = list.head) [[likely]] {
        list.head = *static_cast<void**>(object);
        // Owner-only: a relaxed load and store, no locked instruction.
        list.count.store(list.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        return object;
      }
    }
  }
#endif
  return allocate_frame_out_of_line(size);
}

// Frees memory returned by allocate_frame(size) with the same size. Safe
// from any thread, including one other than the allocating thread.
inline void free_frame(void* frame, std::size_t size) noexcept {
#if !defined(GORO_FRAME_FAST_PATH_OFF)
  if (size <= alloc::kMaxSmallSize) [[likely]] {
    if (FrameFreeList* lists = tls_frame_free_lists) [[likely]] {
      const std::uint32_t size_class = alloc::size_to_class(size);
      FrameFreeList& list = lists[size_class];
      *static_cast<void**>(frame) = list.head;
      list.head = frame;
      // Owner-only, as above.
      const std::uint32_t count = list.count.load(std::memory_order_relaxed) + 1;
      list.count.store(count, std::memory_order_relaxed);
      if (count > list.limit) [[unlikely]]
        frame_free_list_over_limit(size_class);
      return;
    }
  }
#endif
  free_frame_out_of_line(frame, size);
}

#undef GORO_FRAME_FAST_PATH_OFF

// As above, for frames whose alignment exceeds the default (a promise or a
// local declared alignas(64), say). `align` is a power of two.
[[nodiscard]] void* allocate_frame_aligned(std::size_t size, std::size_t align);
void free_frame_aligned(void* frame, std::size_t size, std::size_t align) noexcept;

#if defined(__GNUC__) && !defined(__clang__)

// The frame allocated last on this thread and not checked yet (step 1).
inline constinit thread_local void* unchecked_frame_start = nullptr;

// Step 1: notes `frame`, just allocated for a coroutine, and returns it.
inline void* note_frame_start(void* frame) noexcept {
  unchecked_frame_start = frame;
  return frame;
}

// Prints what went wrong and aborts. `handle_address` is what from_promise()
// gave; it holds the coroutine's resume function, which names it.
[[noreturn]] void report_misplaced_frame(void* allocated, void* handle_address) noexcept;

// Step 2: `handle_address` is the address of the handle that from_promise()
// gives for the promise just constructed in the frame noted in step 1.
inline void check_frame_start(void* handle_address) noexcept {
  void* allocated = unchecked_frame_start;
  unchecked_frame_start = nullptr;
  if (allocated != nullptr && allocated != handle_address) [[unlikely]] {
    report_misplaced_frame(allocated, handle_address);
  }
}

#else

inline void* note_frame_start(void* frame) noexcept { return frame; }
inline void check_frame_start(void*) noexcept {}

#endif

}  // namespace goro::detail

#endif  // GORO_DETAIL_FRAME_ALLOCATOR_HPP_
