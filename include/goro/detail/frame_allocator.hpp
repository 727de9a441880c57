// goro/detail/frame_allocator.hpp
//
// Defines: goro::detail::allocate_frame, goro::detail::free_frame and their
// over-aligned variants.
//
// Every coroutine frame goro creates (Task frames) is allocated through
// these functions: from goro's span/size-class allocator (lib/alloc/, Go's
// mcache/mcentral/mheap design), or from the global operator new when the
// library is built with GORO_SYSTEM_FRAME_ALLOCATOR=ON (so that ASan sees
// frame bugs through its own allocator).
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

}  // namespace goro::detail

#endif  // GORO_DETAIL_FRAME_ALLOCATOR_HPP_
