// lib/frame_allocator.cpp
//
// Coroutine frame allocation (see goro/detail/frame_allocator.hpp): the
// one switch between goro's allocator (lib/alloc/) and the system's.
#include "goro/detail/frame_allocator.hpp"

#include <new>

#include "alloc/allocator.hpp"

namespace goro::detail {

#if defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR

void* allocate_frame(std::size_t size) { return ::operator new(size); }
void free_frame(void* frame, std::size_t size) noexcept { ::operator delete(frame, size); }
void* allocate_frame_aligned(std::size_t size, std::size_t align) {
  return ::operator new (size, std::align_val_t{align});
}
void free_frame_aligned(void* frame, std::size_t size, std::size_t align) noexcept {
  ::operator delete (frame, size, std::align_val_t{align});
}

#else

void* allocate_frame(std::size_t size) { return alloc::allocate(size); }
void free_frame(void* frame, std::size_t size) noexcept { alloc::free(frame, size); }
void* allocate_frame_aligned(std::size_t size, std::size_t align) {
  return alloc::allocate_aligned(size, align);
}
void free_frame_aligned(void* frame, std::size_t size, std::size_t align) noexcept {
  alloc::free_aligned(frame, size, align);
}

#endif

}  // namespace goro::detail
