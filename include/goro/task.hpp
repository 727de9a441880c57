// goro/task.hpp
//
// Defines: goro::Task<T>, goro::Task<void>.
//
// A Task is goro's unit of asynchronous work: a lazily started coroutine
// that produces a T (or an exception) and hands it to whoever awaits it.
//
//   goro::Task<int> answer() { co_return 42; }
//   goro::Task<int> twice() { co_return 2 * co_await answer(); }
//
// Design notes
//
//  * Lazy. Creating a Task runs nothing; the body starts when the Task is
//    awaited (or handed to goro::go / goro::spawn / goro::run). Because
//    nothing runs before the awaiter is attached, there is no race between
//    completion and registration of the continuation, and no atomics.
//  * Symmetric transfer. Awaiting a Task transfers control into the child
//    coroutine (await_suspend returns its handle) and the child's final
//    suspend transfers straight back to the awaiter. Neither direction
//    grows the thread's stack, so a loop of millions of awaits of tasks
//    that finish without suspending runs in constant stack space.
//  * Ownership. A Task owns its coroutine frame. Destroying a Task destroys
//    the frame; destroying a frame destroys its locals, among them the Task
//    it may be awaiting, so tearing down a suspended chain destroys every
//    frame in it exactly once.
//  * Goroutine roots. A Task started as a goroutine has no awaiter; its
//    promise points at the goroutine record instead, and its final suspend
//    asks the scheduler what to run next (a joiner waiting on it, or
//    nothing, returning control to the worker loop).
//
// Rejected alternatives: eager tasks (a race between completion and
// co_await needs an atomic per await); resuming the awaiter with
// handle.resume() from final_suspend (recursion: the stack grows by one
// frame per synchronously completing await).
#ifndef GORO_TASK_HPP_
#define GORO_TASK_HPP_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/frame_allocator.hpp"

namespace goro {

template <class T = void>
class Task;

namespace detail {

struct G;

// Called by a goroutine's root task when it finishes; returns the coroutine
// to run next on this thread (a waiting joiner, or noop_coroutine() to
// return to the worker loop). Defined by the scheduler.
std::coroutine_handle<> finish_goroutine(G* goroutine) noexcept;

// The part of a task's promise that does not depend on T.
class TaskPromiseBase {
 public:
  TaskPromiseBase() noexcept = default;
  TaskPromiseBase(const TaskPromiseBase&) = delete;
  TaskPromiseBase& operator=(const TaskPromiseBase&) = delete;

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      TaskPromiseBase& promise = self.promise();
      if (promise.goroutine_ != nullptr) [[unlikely]] {
        return finish_goroutine(promise.goroutine_);
      }
      return promise.continuation_;
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  // Frames come from goro's frame allocator (sized delete gives it the
  // size class directly). The aligned forms serve frames whose alignment
  // exceeds the default (an alignas local, say), where the compiler
  // supports them.
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { free_frame(frame, size); }
  static void* operator new(std::size_t size, std::align_val_t align) {
    return allocate_frame_aligned(size, static_cast<std::size_t>(align));
  }
  static void operator delete(void* frame, std::size_t size, std::align_val_t align) noexcept {
    free_frame_aligned(frame, size, static_cast<std::size_t>(align));
  }

  void set_continuation(std::coroutine_handle<> continuation) noexcept {
    continuation_ = continuation;
  }
  void set_goroutine(G* goroutine) noexcept { goroutine_ = goroutine; }
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return exception_; }
  void rethrow_if_exception() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::coroutine_handle<> continuation_;
  G* goroutine_ = nullptr;
  std::exception_ptr exception_;
};

template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  TaskPromise() noexcept {}
  ~TaskPromise() {
    if (has_value_) value_.~T();
  }

  Task<T> get_return_object() noexcept;

  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<U>(value));
    has_value_ = true;
  }

  // Moves the result out, or rethrows the task's exception.
  T take_result() {
    rethrow_if_exception();
    return std::move(value_);
  }

 private:
  union {
    T value_;
  };
  bool has_value_ = false;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take_result() const { rethrow_if_exception(); }
};

}  // namespace detail

// Task<T>: a lazily started coroutine producing a T.
//
// Contract:
//  * Move-only; a moved-from Task is empty (`valid()` is false).
//  * `co_await std::move(task)` or `co_await task` starts the body on the
//    awaiting thread and resumes the awaiter, by symmetric transfer, with
//    the returned value or by rethrowing the body's exception. A Task can be
//    awaited at most once; awaiting an empty Task is undefined behaviour.
//  * Destroying a Task that has not run, or one suspended mid-body, destroys
//    its frame and, with it, every frame it owns.
//  * T must not be a reference type; use a pointer or std::reference_wrapper.
template <class T>
class [[nodiscard]] Task {
  static_assert(!std::is_reference_v<T>, "goro::Task<T&> is not supported; use a pointer");

 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // True when this Task owns a coroutine frame.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> child) noexcept : child_(child) {}
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      child_.promise().set_continuation(awaiting);
      return child_;
    }
    T await_resume() { return child_.promise().take_result(); }

   private:
    std::coroutine_handle<promise_type> child_;
  };

  Awaiter operator co_await() & noexcept { return Awaiter(handle_); }
  Awaiter operator co_await() && noexcept { return Awaiter(handle_); }

  // Gives up ownership of the frame (used by the scheduler to start a
  // goroutine). The caller becomes responsible for destroying it.
  [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
    return std::exchange(handle_, nullptr);
  }

 private:
  friend class detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace detail
}  // namespace goro

#endif  // GORO_TASK_HPP_
