// lib/frame_allocator.cpp
//
// Coroutine frame allocation (see goro/detail/frame_allocator.hpp). For now
// frames come from the global operator new; this file is the one place the
// span/size-class allocator will plug in.
#include "goro/detail/frame_allocator.hpp"

#include <new>

namespace goro::detail {

void* allocate_frame(std::size_t size) { return ::operator new(size); }

void free_frame(void* frame, std::size_t size) noexcept { ::operator delete(frame, size); }

}  // namespace goro::detail
