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
#ifndef GORO_DETAIL_FRAME_ALLOCATOR_HPP_
#define GORO_DETAIL_FRAME_ALLOCATOR_HPP_

#include <cstddef>

namespace goro::detail {

// Returns `size` bytes aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16).
// Throws std::bad_alloc when memory is exhausted. Safe from any thread;
// lock-free on a goroutine's thread unless the P's cache must be refilled.
[[nodiscard]] void* allocate_frame(std::size_t size);

// Frees memory returned by allocate_frame(size) with the same size. Safe
// from any thread, including one other than the allocating thread.
void free_frame(void* frame, std::size_t size) noexcept;

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
