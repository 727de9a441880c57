// goro/yield.hpp
//
// Defines: goro::yield().
#ifndef GORO_YIELD_HPP_
#define GORO_YIELD_HPP_

#include <coroutine>

#include "goro/detail/goroutine.hpp"

namespace goro {

// `co_await goro::yield();` gives up the processor, as Go's runtime.Gosched:
// the goroutine goes to the tail of its P's run queue and continues after
// the goroutines queued before it had their turn (or sooner, on an idle P
// that steals it). When goroutines wait in the global queue, or sysmon has
// asked this goroutine to give its P back, it goes through the global queue
// instead (as Gosched always does), so that work waiting there gets its
// turn. Must be awaited from inside a goroutine (std::logic_error
// otherwise).
class [[nodiscard("co_await it: nothing yields until it is awaited")]]
YieldAwaiter{public : bool await_ready() const noexcept {return false;
}  // namespace goro
void await_suspend(std::coroutine_handle<> awaiting) const { detail::yield_suspend(awaiting); }
void await_resume() const noexcept {}
}
;

[[nodiscard("co_await it: nothing yields until it is awaited")]] inline YieldAwaiter
yield() noexcept {
  return {};
}

}  // namespace goro

#endif  // GORO_YIELD_HPP_
