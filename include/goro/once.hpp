// goro/once.hpp
//
// Defines: goro::Once (Go's sync.Once).
//
//   goro::Once once;
//   co_await once.call([] { init(); });                           // plain callable
//   co_await once.call([]() -> goro::Task<> { co_await load(); });  // or a Task
//
// Design (Go's sync/once.go)
//
// Glossary
//   done   an atomic flag, set once fn has returned (or thrown).
//   m      a goro::Mutex held by the goroutine running fn; the others wait
//          on it, so they park rather than spin while fn runs (fn may
//          itself co_await for a long time).
//
// Invariants
//   O1. fn runs at most once: only under m, and only if done is still 0.
//   O2. done is set after fn returns and before m is unlocked, with release;
//       a caller that reads done == 1 (acquire) sees all of fn's effects.
//
// Algorithm
//   1. Fast path: done == 1 (acquire load): return at once, no suspension.
//   2. Slow path (a coroutine, so the first callers pay one frame): lock m;
//      if done is still 0, run fn (co_await it if it returns a Task), set
//      done (also when fn throws); unlock m.
//
// When fn throws: Go's choice. The Once counts as done (fn never runs again)
// and the exception propagates to the caller that ran fn; callers that
// waited meanwhile, and later callers, return normally. Rejected: leaving it
// retryable (what std::call_once does) — Go's users expect "at most once",
// and a retrying Once turns one failing initialisation into one per caller.
//
// Rejected alternative: a Task per call (simple, but a frame allocation on
// the fast path, which is a single load here).
#ifndef GORO_ONCE_HPP_
#define GORO_ONCE_HPP_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "goro/mutex.hpp"
#include "goro/task.hpp"

namespace goro {

// Once: runs a function exactly once, however many goroutines ask.
//
// Contract: `co_await once.call(fn)` runs fn (a callable taking no
// arguments, returning anything or a Task) if no call on this Once has run
// one yet, and otherwise waits until the one that does has finished. Every
// call returns after fn's effects are visible. If fn throws, the Once is
// done and the exception propagates to that caller only.
class Once {
 public:
  template <class F>
  class [[nodiscard(
      "co_await it: the function does not run until the call is awaited")]] CallAwaiter {
   public:
    CallAwaiter(Once * once, F fn) : once_(once), fn_(std::move(fn)) {}
    bool await_ready() const noexcept { return once_->done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) {
      slow_.emplace(run_slow(once_, std::move(fn_)));
      inner_.emplace(std::move(*slow_).operator co_await());
      return inner_->await_suspend(awaiting);
    }
    void await_resume() {
      if (inner_) inner_->await_resume();  // rethrows fn's exception
    }

   private:
    static Task<void> run_slow(Once * once, F fn) {
      auto guard = co_await once->m_.scoped_lock();
      if (once->done_.load(std::memory_order_relaxed) != 0) co_return;  // under m: O1
      struct SetDone {
        Once* once;
        // Release (O2): fn's effects before done.
        ~SetDone() { once->done_.store(1, std::memory_order_release); }
      } set_done{once};
      if constexpr (detail::kIsTask<std::invoke_result_t<F&>>) {
        co_await fn();  // not std::invoke: see GORO_CORO_WRAPPER in task.hpp
      } else {
        std::invoke(fn);
      }
    }

    Once* once_;
    F fn_;
    std::optional<Task<void>> slow_;
    std::optional<typename Task<void>::Awaiter> inner_;
  };

  Once() noexcept = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // fn is decay-copied (moved from an rvalue) into the awaiter. Built by
  // g++ 12, a closure written in the co_await expression that captures
  // anything with a destructor is destroyed twice: capture by reference,
  // or name it first and move it in (task.hpp, "Temporaries in a co_await
  // expression").
  template <class F>
  [[nodiscard("co_await it: the function does not run until the call is awaited")]] CallAwaiter<
      std::decay_t<F>>
  call(F&& fn) {
    return CallAwaiter<std::decay_t<F>>(this, std::forward<F>(fn));
  }

  // True once fn has run (returned or thrown). Acquire: see O2.
  [[nodiscard]] bool done() const noexcept { return done_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

}  // namespace goro

#endif  // GORO_ONCE_HPP_
