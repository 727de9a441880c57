// goro/join_handle.hpp
//
// Defines: goro::JoinHandle<T>, returned by goro::spawn.
#ifndef GORO_JOIN_HANDLE_HPP_
#define GORO_JOIN_HANDLE_HPP_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "goro/detail/goroutine.hpp"
#include "goro/task.hpp"

namespace goro {

template <class T>
class JoinHandle;
namespace detail {
// How spawn() makes the handle of the goroutine it started.
struct JoinHandleAccess {
  template <class T>
  static JoinHandle<T> adopt(G* g) noexcept {
    return JoinHandle<T>(g);
  }
};
}  // namespace detail

// JoinHandle<T>: the right to a spawned goroutine's result.
//
// Contract:
//  * Move-only. `co_await handle` (lvalue or rvalue) suspends until the
//    goroutine finishes, then yields its value or rethrows its exception.
//    A handle can be awaited once; afterwards it is empty.
//  * If the goroutine has not been started by any P yet, the awaiting
//    goroutine runs it in place instead of parking (fork-join stays depth
//    first, as with TBB's or rayon's lazy tasks). Goroutines that were
//    already started, or stolen, are waited for by parking.
//  * Destroying (or `detach()`-ing) a handle without awaiting it detaches the
//    goroutine: it runs to completion and its result is discarded. An
//    exception it throws cannot be read any more, so it is reported as a
//    detached goroutine's is: to Config::on_uncaught_exception, or printed
//    with the goroutine's id before the process aborts when no handler is
//    set. That holds in both orders: dropped before the goroutine throws
//    (reported on the worker as it finishes), or after (reported by the
//    thread that drops the handle; on a thread outside the runtime, with
//    the handler of the runtime running then). A handle dropped once its
//    runtime is stopping (the shutdown sweep destroying the goroutine that
//    held it, or after run() returned) reports nothing: the program is
//    ending, as in Go when main returns. Await the handle to handle the
//    exception yourself.
//  * Awaiting an empty handle throws std::logic_error.
template <class T>
class [[nodiscard(
    "co_await it for the result; dropping it detaches the goroutine, as go() does")]] JoinHandle {
 public:
  JoinHandle() noexcept = default;
  JoinHandle(JoinHandle && other) noexcept : g_(std::exchange(other.g_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      g_ = std::exchange(other.g_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { reset(); }

  // True while the handle refers to a goroutine whose result is unread.
  [[nodiscard]] bool valid() const noexcept { return g_ != nullptr; }

  // The goroutine's id (as printed in diagnostics); 0 for an empty handle.
  [[nodiscard]] std::uint64_t id() const noexcept { return g_ ? g_->id : 0; }

  // True once the goroutine has finished (its result is ready).
  [[nodiscard]] bool is_finished() const noexcept {
    // Acquire pairs with the release in the finishing exchange: a true
    // answer makes the result visible to this thread.
    return g_ != nullptr && g_->join_state.load(std::memory_order_acquire) == detail::kJoinDone;
  }

  // Lets the goroutine run on without anyone waiting for it (an exception
  // it throws is reported as uncaught: see the contract above).
  void detach() noexcept { reset(); }

  class Awaiter {
   public:
    explicit Awaiter(JoinHandle& handle) noexcept : handle_(handle) {}
    bool await_ready() const {
      if (handle_.g_ == nullptr)
        throw std::logic_error("goro::JoinHandle: awaiting an empty handle");
      return handle_.is_finished();
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) {
      return detail::join_suspend(handle_.g_, awaiting);
    }
    T await_resume() {
      detail::G* g = std::exchange(handle_.g_, nullptr);
      struct Release {
        detail::G* g;
        // release_finished throws nothing, but is not noexcept (see there);
        // noexcept(false) spares this destructor a terminate handler, which
        // would keep await_resume from being inlined.
        ~Release() noexcept(false) { detail::release_finished(g); }
      } release{g};
      if (g->root_promise == nullptr) [[unlikely]]
        throw_destroyed_at_stop();
      return static_cast<detail::TaskPromise<T>*>(g->root_promise)->take_result();
    }

   private:
    // Out of line and cold: await_resume's common path stays small.
    [[noreturn, gnu::noinline, gnu::cold]] static void throw_destroyed_at_stop() {
      throw std::logic_error(
          "goro::JoinHandle: the goroutine was destroyed when its runtime stopped");
    }

    JoinHandle& handle_;
  };

  Awaiter operator co_await()& noexcept { return Awaiter(*this); }
  Awaiter operator co_await()&& noexcept { return Awaiter(*this); }

 private:
  friend struct detail::JoinHandleAccess;
  explicit JoinHandle(detail::G * g) noexcept : g_(g) {}

  void reset() noexcept {
    if (g_ != nullptr) detail::drop_join_handle(std::exchange(g_, nullptr));
  }

  detail::G* g_ = nullptr;
};

}  // namespace goro

#endif  // GORO_JOIN_HANDLE_HPP_
