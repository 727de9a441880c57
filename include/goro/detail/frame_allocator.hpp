// goro/detail/frame_allocator.hpp
//
// Defines: goro::detail::allocate_frame, goro::detail::free_frame.
//
// Every coroutine frame goro creates (Task frames, goroutine bookkeeping)
// is allocated through these two functions, so that the frame allocator can
// be swapped in one place. Today they forward to the global operator new;
// the span/size-class allocator (mcache/mcentral/mheap) replaces their
// bodies without touching any caller.
#ifndef GORO_DETAIL_FRAME_ALLOCATOR_HPP_
#define GORO_DETAIL_FRAME_ALLOCATOR_HPP_

#include <cstddef>

namespace goro::detail {

// Returns `size` bytes aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__.
// Throws std::bad_alloc when memory is exhausted. Safe from any thread.
[[nodiscard]] void* allocate_frame(std::size_t size);

// Frees memory returned by allocate_frame(size) with the same size.
// Safe from any thread, including one other than the allocating thread.
void free_frame(void* frame, std::size_t size) noexcept;

}  // namespace goro::detail

#endif  // GORO_DETAIL_FRAME_ALLOCATOR_HPP_
