// lib/frame_allocator.cpp
//
// Coroutine frame allocation (see goro/detail/frame_allocator.hpp): the
// paths the inline fast path calls, and the one switch between goro's
// allocator (lib/alloc/) and the system's for them; the free lists' thread
// pointer; and the report of the frame layout check.
#include "goro/detail/frame_allocator.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>

#include "alloc/allocator.hpp"

namespace goro::detail {

constinit thread_local FrameFreeList* tls_frame_free_lists = nullptr;

#if defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR

void* allocate_frame_out_of_line(std::size_t size) { return ::operator new(size); }
void free_frame_out_of_line(void* frame, std::size_t size) noexcept {
  ::operator delete(frame, size);
}
void frame_free_list_over_limit(std::uint32_t) noexcept {}
void* allocate_frame_aligned(std::size_t size, std::size_t align) {
  return ::operator new (size, std::align_val_t{align});
}
void free_frame_aligned(void* frame, std::size_t size, std::size_t align) noexcept {
  ::operator delete (frame, size, std::align_val_t{align});
}

#else

void* allocate_frame_out_of_line(std::size_t size) { return alloc::allocate(size); }
void free_frame_out_of_line(void* frame, std::size_t size) noexcept { alloc::free(frame, size); }
void frame_free_list_over_limit(std::uint32_t size_class) noexcept {
  // The fast path found the lists through tls_frame_free_lists, which is
  // set together with tls_frame_cache.
  alloc::tls_frame_cache->over_limit(size_class);
}
void* allocate_frame_aligned(std::size_t size, std::size_t align) {
  return alloc::allocate_aligned(size, align);
}
void free_frame_aligned(void* frame, std::size_t size, std::size_t align) noexcept {
  alloc::free_aligned(frame, size, align);
}

#endif

#if defined(__GNUC__) && !defined(__clang__)

void report_misplaced_frame(void* allocated, void* handle_address) noexcept {
  void* resume_function = *static_cast<void**>(handle_address);
  std::fprintf(stderr,
               "goro: g++ laid out a coroutine frame with its promise out of place "
               "(frame %p, handle %p), so the coroutine cannot be resumed. The coroutine "
               "(resume function %p; gdb: info symbol %p) co_awaits in an if or switch "
               "condition and declares no named local variable, which g++ 12 miscompiles: "
               "name the awaited value first (const bool ok = co_await f(); if (!ok) ...).\n",
               allocated, handle_address, resume_function, resume_function);
  std::fflush(stderr);
  std::abort();
}

#endif

}  // namespace goro::detail
