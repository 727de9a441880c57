// goro/defer.hpp
//
// Defines: goro::defer, Go's `defer f()` as a scope guard.
//
//   goro::Task<void> copy(int in, int out) {
//     auto close_in = goro::defer([in] { ::close(in); });
//     ...                     // however the body ends, `in` is closed
//   }
//
// Why no type of goro's own. A deferred call in C++ is a local whose
// destructor makes the call, and absl::Cleanup is exactly that (with
// Cancel(), and std::move(c).Invoke() to run it early); defer() is
// absl::MakeCleanup under the name a Go programmer looks for, so that the
// contract below, which is about coroutines, has a place to live. The two
// guards whose target is another goroutine have members of their own,
// because their shutdown behaviour differs: WaitGroup::done_guard() and
// Chan::close_guard() (goro/wait_group.hpp, goro/chan.hpp).
//
// Contract, in a coroutine:
//  * The call runs when the guard's scope ends: by return or co_return, or
//    when an exception leaves the scope (the guard runs during unwinding,
//    so it must not throw: that ends the program). Guards in one scope run
//    in reverse order of declaration, as Go's defers do.
//  * A suspension does not end the scope: a guard in a coroutine lives
//    across co_awaits, in the frame, and runs on whatever worker thread the
//    goroutine is on when the scope ends.
//  * The guard runs whenever the frame is destroyed, also when the runtime
//    destroys a goroutine it will not resume (still parked when run() ends,
//    or after goro::Deadlock): there the call runs on the thread that
//    called run(), with no goroutine running, after main's frame has
//    ended. A deferred call that only releases what its goroutine owns (a
//    file descriptor, a lock, memory) is right there; one that touches
//    objects owned by main or signals other goroutines must not rely on
//    it (use the guards named above, which know the case). Go runs no
//    deferred call of the goroutines left at exit; C++ destroys what it
//    built, so goro runs them.
//  * A goroutine destroyed unrun (go() during shutdown) never made its
//    guards: nothing runs for it.
//  * Name each guard: `auto _ = ...` twice in one scope declares `_` twice
//    (allowed only from C++26).
#ifndef GORO_DEFER_HPP_
#define GORO_DEFER_HPP_

#include <type_traits>
#include <utility>

#include "absl/cleanup/cleanup.h"

namespace goro {

// Returns a guard (an absl::Cleanup) that calls f() once when destroyed,
// unless cancelled. f takes no arguments and returns void; it is moved (or
// copied) into the guard.
template <class F>
requires std::is_invocable_v<std::decay_t<F>> &&
    std::is_void_v<std::invoke_result_t<std::decay_t<F>>>
[[nodiscard("the call runs when the guard is destroyed: keep it in a named local")]] auto defer(
    F&& f) {
  return absl::MakeCleanup(std::forward<F>(f));
}

}  // namespace goro

#endif  // GORO_DEFER_HPP_
