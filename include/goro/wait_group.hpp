// goro/wait_group.hpp
//
// Defines: goro::WaitGroup (Go's sync.WaitGroup).
//
//   goro::WaitGroup wg;
//   for (int i = 0; i < n; ++i) { wg.add(1); goro::go(work(i, wg)); }  // work calls wg.done()
//   for (int i = 0; i < n; ++i) wg.go(job, i);  // Go 1.25's wg.Go: add(1), done() at the end
//   auto done = wg.done_guard();  // in a goroutine body: Go's `defer wg.Done()`
//   co_await wg.wait();          // in a goroutine
//   wg.wait_blocking();          // on a thread outside the runtime
//
// Design (Go's sync/waitgroup.go)
//
// Glossary
//   state    one 64-bit word: the counter (signed, high 32 bits) and the
//            number of waiters (low 32 bits), so that "counter reached 0"
//            and "who waits" are read in one load.
//   sema     a detail::Sema the waiters park on.
//
// Invariants
//   W1. Waiters are counted only while the counter is > 0 (a waiter's CAS
//       fails if the counter changed).
//   W2. When an add brings the counter to 0 with waiters counted, no other
//       add or wait may run concurrently (Go's rule: Adds with a positive
//       delta that start when the counter is 0 must happen before Wait); the
//       adder resets the word to 0 and releases the sema once per waiter.
//
// Algorithm
//   add(d): 1. state += d << 32. 2. Counter < 0: undo and throw (Go panics:
//           "sync: negative WaitGroup counter"). 3. Counter > 0 or nobody
//           waits: done. 4. Counter 0 with w waiters: state = 0, release the
//           sema w times.
//   wait:   1. Counter 0: done (one acquire load). 2. CAS waiters + 1; on
//           failure reload and retry. 3. Park on the sema (a goroutine) or
//           block the thread (wait_blocking).
//   withdraw (a parked waiter's frame destroyed at shutdown): take the
//           waiter out of the sema's queue and, if it was still there (no
//           release is on its way to it), uncount it, so that the word
//           counts only waiters that exist and the group can be reused.
//
// Rejected alternative: a list of waiters under a lock (no semaphore): the
// count in the word keeps add()/done() one atomic add when nobody waits.
#ifndef GORO_WAIT_GROUP_HPP_
#define GORO_WAIT_GROUP_HPP_

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "goro/detail/goroutine.hpp"
#include "goro/detail/invoke_task.hpp"
#include "goro/detail/sync_waiter.hpp"
#include "goro/go.hpp"
#include "goro/task.hpp"

namespace goro {

class WaitGroup;

namespace detail {
template <class F, class... Args>
Task<void> invoke_then_done(WaitGroup* wg, BoundCall<F, Args...> call);
}  // namespace detail

// WaitGroup: waits for a collection of goroutines to finish.
//
// Contract: add(n) adds n (may be negative) to the counter; done() is
// add(-1); wait() parks until the counter is 0. A counter that goes negative
// throws std::logic_error (and is left as it was). As in Go, calls to add
// with a positive delta that start while the counter is 0 must happen
// before wait(); a WaitGroup may be reused once every wait() has returned.
// add/done may be called from any thread.
class WaitGroup {
 public:
  // What done_guard() gives: calls done() once when destroyed (below).
  class [[nodiscard(
      "done() runs when the guard is destroyed: keep it in a named local")]] DoneGuard {
   public:
    DoneGuard(const DoneGuard&) = delete;
    DoneGuard& operator=(const DoneGuard&) = delete;
    ~DoneGuard() {
      // Made on a goroutine but destroyed where none runs: the runtime is
      // destroying the goroutine's frame at shutdown (see done_guard()).
      if (made_on_goroutine_ && detail::current_goroutine() == nullptr) return;
      wg_->done();
    }

   private:
    friend class WaitGroup;
    explicit DoneGuard(WaitGroup * wg) noexcept
        : wg_(wg), made_on_goroutine_(detail::current_goroutine() != nullptr) {}

    WaitGroup* wg_;
    bool made_on_goroutine_;
  };

  // co_await wg.wait().
  class [[nodiscard("co_await it: nothing waits until the wait is awaited")]] WaitAwaiter {
   public:
    explicit WaitAwaiter(WaitGroup * wg) noexcept : wg_(wg) {}
    WaitAwaiter(const WaitAwaiter&) = delete;
    WaitAwaiter& operator=(const WaitAwaiter&) = delete;
    ~WaitAwaiter() { detail::withdraw_if_parked(waiter_, wg_, &WaitGroup::withdraw); }
    bool await_ready() const noexcept { return wg_->counter_is_zero(); }
    bool await_suspend(std::coroutine_handle<> awaiting) {
      if (!wg_->count_waiter()) return false;  // reached 0 meanwhile
      parked_ = true;
      return detail::park_on(wg_->sema_, waiter_, awaiting, "sync.WaitGroup.Wait");
    }
    void await_resume() const {
      if (parked_) wg_->check_not_reused();
    }

   private:
    WaitGroup* wg_;
    detail::SyncWaiter waiter_;
    bool parked_ = false;
  };

  WaitGroup() noexcept = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(std::int32_t delta);
  void done() { add(-1); }

  // Go's `defer wg.Done()`: a guard that calls done() once, when it is
  // destroyed: when its scope ends by return, co_return or an exception.
  // It does not add(1): as with done(), the caller added first.
  //
  //   goro::Task<void> worker(goro::WaitGroup& wg, int job) {
  //     auto done = wg.done_guard();
  //     co_await process(job);  // may throw: done() is called all the same
  //   }
  //
  //  * A goroutine that the runtime destroys without resuming it (still
  //    parked when run() ends, or after goro::Deadlock) does not call
  //    done(): the guard, made on a goroutine, does nothing when it is
  //    destroyed where no goroutine runs, which is exactly that case (a
  //    goroutine's own scopes end while it runs). By then the WaitGroup
  //    may be gone (main's frame ends before the shutdown destroys the
  //    others), and every goroutine that could wait is being destroyed;
  //    Go likewise runs no deferred call of the goroutines left at exit.
  //    WaitGroup::go behaves the same. A thread outside the runtime that
  //    waits with wait_blocking() across run()'s end therefore waits for
  //    good on a goroutine destroyed that way.
  //  * A guard made outside any goroutine (a thread of its own, a
  //    goro::blocking call) always calls done().
  //  * A counter that goes negative throws from done() (see add); thrown
  //    from the guard's destructor that ends the program (std::terminate),
  //    as Go's "negative WaitGroup counter" panic does when not recovered.
  //  * Not movable: the guard belongs to the scope that made it.
  [[nodiscard("done() runs when the guard is destroyed: keep it in a named local")]] DoneGuard
  done_guard() noexcept {
    return DoneGuard(this);
  }

  // Go 1.25's wg.Go: add(1), then start `f(args...)` as a new goroutine
  // (goro::go(f, args...): f returns Task<void>; f and the arguments are
  // copied into the goroutine's frame, see go.hpp for copies, std::ref and
  // lifetimes), which calls done() when the body finishes, returned or
  // thrown. Before done() it destroys f and the arguments, so whoever
  // wait() releases may free what they refer to.
  //  * An exception escaping the body is still the goroutine's: after
  //    done(), it goes to Config::on_uncaught_exception, or is printed and
  //    aborts, as for any goroutine started by go() (Go's wg.Go crashes the
  //    program on a panic). Catch it in the body to handle it.
  //  * If the goroutine cannot start (no runtime: go() throws), or copying
  //    f or an argument throws, the counter is put back and the exception
  //    propagates. While the runtime is shutting down, go() drops the
  //    goroutine unrun and the counter stays up: nothing waits any more.
  //  * A goroutine destroyed while parked, by the shutdown sweep, does not
  //    call done(): the WaitGroup may be gone by then.
  template <class F, class... Args>
  requires detail::TaskInvocable<F, Args...> &&
      std::same_as<detail::InvokeResult<F, Args...>, Task<void>>
  void go(F&& f, Args&&... args) {
    add(1);
    try {
      goro::go(detail::invoke_then_done(
          this, detail::BoundCall<std::decay_t<F>, std::decay_t<Args>...>(
                    std::in_place, std::forward<F>(f), std::forward<Args>(args)...)));
    } catch (...) {
      done();
      throw;
    }
  }

  [[nodiscard("co_await it: nothing waits until the wait is awaited")]] WaitAwaiter
  wait() noexcept {
    return WaitAwaiter(this);
  }
  // Blocks the calling OS thread until the counter is 0. For threads
  // outside the runtime (or inside goro::blocking); throws std::logic_error
  // on a goroutine, whose worker thread must not block.
  void wait_blocking();

 private:
  static constexpr int kCounterShift = 32;

  [[nodiscard]] bool counter_is_zero() const noexcept {
    // Acquire: pairs with the release of the add that brought the counter to
    // 0, so the waiter sees everything the workers did before done().
    return (state_.load(std::memory_order_acquire) >> kCounterShift) == 0;
  }
  // Wait step 2: counts a waiter; false if the counter is 0 (no need to wait).
  bool count_waiter() noexcept;
  void check_not_reused() const;
  // A parked waiter's frame is destroyed (shutdown): see withdraw above.
  void withdraw(detail::SyncWaiter* w) noexcept;

  std::atomic<std::uint64_t> state_{0};
  detail::Sema sema_;
};

namespace detail {

// The root of a goroutine started by WaitGroup::go: runs the call, destroys
// the callable and its arguments, calls done(), then lets the body's
// exception, if any, escape as the goroutine's.
template <class F, class... Args>
Task<void> invoke_then_done(WaitGroup* wg, BoundCall<F, Args...> call) {
  std::exception_ptr failure;
  try {
    co_await call.invoke();
  } catch (...) {
    failure = std::current_exception();
  }
  call.reset();
  wg->done();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace goro

#endif  // GORO_WAIT_GROUP_HPP_
