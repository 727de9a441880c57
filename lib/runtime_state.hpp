// lib/runtime_state.hpp
//
// Defines: the per-thread scheduler state (which P this thread is the worker
// of, which goroutine it is running) and goroutine-record recycling, shared
// by the scheduler and the entry points in runtime.cpp.
//
// Thread-locals are read only between suspension points, never cached
// across one: a goroutine that suspends may continue on another thread.
#ifndef GORO_LIB_RUNTIME_STATE_HPP_
#define GORO_LIB_RUNTIME_STATE_HPP_

#include "goro/detail/goroutine.hpp"

namespace goro::detail {

struct P;
struct PCore;

// The P whose worker is this thread; nullptr on other threads.
extern constinit thread_local P* tls_p;
// The goroutine running on this thread; nullptr between goroutines.
extern constinit thread_local G* tls_g;

// Returns a finished (or swept) goroutine's record to `p`'s cache, or to the
// shared pool when p is nullptr.
void recycle_goroutine(PCore* p, G* g) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_RUNTIME_STATE_HPP_
