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
//  * Destroying a suspended chain in constant stack. Left to the frames'
//    own destructors, a chain of N awaits suspended at its bottom (a
//    goroutine parked deep in a recursion, destroyed at shutdown) would be
//    torn down by N nested destroy() calls, and a deep enough chain
//    overflows the thread's stack. So each await of a Task by a Task links
//    the two frames: the parent's promise points at the child's (`awaited`)
//    and the child's at the Task object in the parent that owns it
//    (`owner`); the parent unlinks when it resumes. A frame with no
//    `awaited` link (finished, never started, or suspended on anything but
//    a Task: the usual case) is destroyed directly; otherwise:
//      1. Walk the `awaited` links down to the innermost frame, reversing
//         them as we go, so that each frame now points at its parent.
//      2. From the innermost frame up, take each frame's handle out of its
//         owner Task (which so becomes empty) and destroy the frame: its
//         own awaited Task is empty by then, so no destroy() nests.
//      3. Destroy the top frame.
//    Frames are destroyed innermost first, as the nested destructors would,
//    so a frame below may still use its parent's locals (a channel, a
//    mutex) while it is torn down. The one difference: a parent's
//    temporaries made after the awaited Task in the same full-expression
//    (the awaiter) now outlive the frames below.
//  * Goroutine roots. A Task started as a goroutine has no awaiter; its
//    promise points at the goroutine record instead, and its final suspend
//    asks the scheduler what to run next (a joiner waiting on it, or
//    nothing, returning control to the worker loop). A spawned child that
//    its joiner runs inline is awaited like any Task: its promise then
//    names no goroutine, and its final suspend transfers to the joiner.
//  * What a suspended frame may refer to. A coroutine's frame holds its
//    by-value parameters (moved in before the body starts) and only
//    pointers for its reference parameters and, in a lambda or member
//    coroutine, for the object it is called on. Those must outlive the
//    Task, and since a Task is lazy, a temporary that dies at the end of
//    the statement creating the Task dies before the body first runs:
//      safe   goro::go(f, args...), goro::spawn(f, args...) (they keep f
//             and args in the goroutine's frame: go.hpp); a coroutine
//             function taking its parameters by value; `co_await
//             lambda_or_function(temporaries)` (the temporaries outlive the
//             await, which ends in the same statement; but see the next
//             note for g++ 12)
//      wrong  goro::go([s]() -> Task<void> { ... }()): the closure holding
//             `s` is a temporary, gone at the `;`; likewise
//             goro::go(object.method()) for a temporary object, and
//             goro::go(f(std::string("x"))) for `f(const std::string&)`
//  * Temporaries in a co_await expression, built by g++ 12. g++ 12
//    destroys twice a temporary made by brace (aggregate) initialization,
//    a lambda's closure among them, when its type has a non-trivial
//    destructor and the full-expression that makes it contains a
//    co_await; what the called function does with it makes no difference
//    (it may even see a bitwise copy of it). clang does not. So with
//    g++ 12, in a statement that co_awaits:
//      wrong  co_await goro::blocking([s] { ... })  (s a std::string,
//             a Chan, a Context: anything with a destructor);
//             co_await ch.send(Message{name, 1})  (Message an aggregate
//             holding a std::string); co_await [s]() -> Task<void>
//             { ... }(); a handler or for_each body capturing such a value
//      safe   the same callable or aggregate named first and moved in:
//             `auto call = [s] { ... }; co_await goro::blocking(
//             std::move(call));`; a closure that captures only references
//             (`[&]`, `[&s]`) or trivially destructible values (ints,
//             pointers); a temporary made by a constructor
//             (std::string("x"), a class with constructors); a closure
//             made in a statement with no co_await (goro::go([s]() ->
//             Task<void> {...}), wg.go(...), group.go(...))
//    goro's own headers make no such temporary in their coroutines and
//    give their option types constructors (io::IoOptions). The behaviour
//    is pinned by tests/temporaries_test.cpp.
//  * Lifetime checks by clang (opt-in). With GORO_CORO_LIFETIME_CHECKS
//    defined to 1 (goro's own build does so), clang (checked with 19)
//    treats Task as a coroutine return type whose reference parameters,
//    and the object a lambda or member coroutine is called on, must
//    outlive it ([[clang::coro_return_type]], [[clang::coro_lifetimebound]]).
//    It then rejects, under -Werror, a Task that is kept in a variable or
//    returned while such a temporary dies (tests/lifetime_checks):
//      auto task = [s]() -> Task<void> { ... }();
//      auto task = f(std::string("x"));    // Task<void> f(const std::string&)
//        warning: temporary whose address is used as value of local
//        variable 'task' will be destroyed at the end of the
//        full-expression [-Wdangling]
//      GORO_CORO_WRAPPER Task<void> start(std::string s) { return f(s); }
//        warning: address of stack memory associated with parameter 's'
//        returned [-Wreturn-stack-address]
//    Not diagnosed: a Task handed straight to a function, or assigned,
//    which is how most dangling Tasks are made:
//      goro::go([s]() -> Task<void> { ... }());   goro::go(Object{}.method());
//      goro::spawn([s]() -> Task<int> { ... }()); goro::go(f(std::string("x")));
//      tasks.push_back([s]() -> Task<void> { ... }());
//      task = [s]() -> Task<void> { ... }();    // to an existing variable
//    Clang checks initializations of variables, members and return
//    values only, and a function's argument outlives the temporaries of
//    its call. Write goro::go(f, args...) instead (go.hpp).
//    The cost of opting in: clang then rejects every function returning a
//    Task that is not a coroutine and not marked GORO_CORO_WRAPPER (for a
//    lambda: `[&]() GORO_CORO_WRAPPER { return f(x); }`). Library code
//    carries no such mark, so std::invoke, std::apply and std::function
//    over callables returning a Task stop compiling: that is why the
//    checks are not on by default. The attributes change diagnostics
//    only, never code or layout, so translation units with and without
//    them link together.
//
// Rejected alternatives: eager tasks (a race between completion and
// co_await needs an atomic per await); resuming the awaiter with
// handle.resume() from final_suspend (recursion: the stack grows by one
// frame per synchronously completing await); deferring nested destroy()
// calls to a thread-local list drained by the outermost one (constant
// stack, but a parent's locals would die before the frames below it that
// may still refer to them).
#ifndef GORO_TASK_HPP_
#define GORO_TASK_HPP_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/frame_allocator.hpp"

// GORO_CORO_LIFETIME_CHECKS (see "Lifetime checks by clang" above): 1 marks
// Task for clang's coroutine lifetime analysis; 0 or undefined leaves it
// unmarked, as it always is for other compilers.
#if defined(GORO_CORO_LIFETIME_CHECKS) && GORO_CORO_LIFETIME_CHECKS && defined(__clang__) && \
    defined(__has_cpp_attribute)
#if __has_cpp_attribute(clang::coro_return_type) && __has_cpp_attribute(clang::coro_lifetimebound)
#define GORO_CORO_TASK_ATTRIBUTES [[clang::coro_return_type, clang::coro_lifetimebound]]
// Marks a function that returns a Task without being a coroutine. A GNU
// attribute, so that it also fits a lambda: `[&]() GORO_CORO_WRAPPER {...}`.
#define GORO_CORO_WRAPPER __attribute__((coro_wrapper))
#endif
#endif
#ifndef GORO_CORO_TASK_ATTRIBUTES
#define GORO_CORO_TASK_ATTRIBUTES
#define GORO_CORO_WRAPPER
#endif

namespace goro {

template <class T = void>
class Task;

namespace detail {
// True for Task<T>: what goroutine bodies and Once functions must return.
template <class T>
inline constexpr bool kIsTask = false;
template <class T>
inline constexpr bool kIsTask<Task<T>> = true;
}  // namespace detail

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
  // Under g++ each also notes where the frame starts, for the frame layout
  // check in get_return_object (goro/detail/frame_allocator.hpp).
  static void* operator new(std::size_t size) { return note_frame_start(allocate_frame(size)); }
  static void operator delete(void* frame, std::size_t size) noexcept { free_frame(frame, size); }
  static void* operator new(std::size_t size, std::align_val_t align) {
    return note_frame_start(allocate_frame_aligned(size, static_cast<std::size_t>(align)));
  }
  static void operator delete(void* frame, std::size_t size, std::align_val_t align) noexcept {
    free_frame_aligned(frame, size, static_cast<std::size_t>(align));
  }

  void set_continuation(std::coroutine_handle<> continuation) noexcept {
    continuation_ = continuation;
  }
  // Links this (suspending) frame to `child`, the Task frame it awaits,
  // whose handle is kept in `*owner` (see "Destroying a suspended chain").
  void link_awaited(TaskPromiseBase& child, std::coroutine_handle<>* owner) noexcept {
    awaited_ = &child;
    child.owner_ = owner;
  }
  // This frame resumed: it awaits no Task any more.
  void unlink_awaited() noexcept { awaited_ = nullptr; }
  void set_goroutine(G* goroutine) noexcept { goroutine_ = goroutine; }
  // The goroutine this frame is the root of; nullptr for any other frame.
  [[nodiscard]] G* goroutine() const noexcept { return goroutine_; }
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return exception_; }
  void rethrow_if_exception() const {
    if (exception_) [[unlikely]]
      rethrow_stored();
  }

 private:
  // Out of line and cold, so that the common path of every await that
  // reads a result tests one word and copies no exception_ptr.
  [[noreturn, gnu::noinline, gnu::cold]] void rethrow_stored() const {
    std::rethrow_exception(exception_);
  }

  friend void destroy_frame_chain(std::coroutine_handle<> frame, TaskPromiseBase& promise) noexcept;
  friend void destroy_awaiting_chain(std::coroutine_handle<> frame,
                                     TaskPromiseBase& promise) noexcept;

  std::coroutine_handle<> continuation_;
  G* goroutine_ = nullptr;
  std::exception_ptr exception_;
  TaskPromiseBase* awaited_ = nullptr;        // the Task frame this one awaits now
  std::coroutine_handle<>* owner_ = nullptr;  // the handle in the Task awaited as this frame
};

void destroy_awaiting_chain(std::coroutine_handle<> frame, TaskPromiseBase& promise) noexcept;

// Destroys the coroutine frame `frame`, whose promise is `promise`, and, if
// it is suspended awaiting a Task, the whole chain below it, innermost
// first, in constant stack space (steps in the file comment). Used by
// ~Task and by the runtime for goroutine roots.
inline void destroy_frame_chain(std::coroutine_handle<> frame, TaskPromiseBase& promise) noexcept {
  if (promise.awaited_ == nullptr) [[likely]] {
    frame.destroy();
  } else {
    destroy_awaiting_chain(frame, promise);
  }
}

// destroy_frame_chain's steps, for a frame that awaits a Task. Out of line:
// it is rare, and inlined in every ~Task it would bloat the hot paths.
[[gnu::noinline, gnu::cold]] inline void destroy_awaiting_chain(std::coroutine_handle<> frame,
                                                                TaskPromiseBase& promise) noexcept {
  // Step 1: reverse the links; `above` ends at the innermost frame.
  TaskPromiseBase* above = nullptr;
  for (TaskPromiseBase* at = &promise; at != nullptr;) {
    TaskPromiseBase* below = at->awaited_;
    at->awaited_ = above;
    above = at;
    at = below;
  }
  // Step 2: innermost first; each frame's `awaited_` now names its parent.
  for (TaskPromiseBase* at = above; at != &promise;) {
    TaskPromiseBase* parent = at->awaited_;
    std::exchange(*at->owner_, nullptr).destroy();  // frees `at`
    at = parent;
  }
  frame.destroy();  // step 3
}

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
//    its frame and, with it, every frame it owns. A chain of Tasks awaiting
//    one another is destroyed innermost frame first, in constant stack
//    space however deep it is. A Task must not be destroyed while another
//    Task awaits it (by lvalue, from outside its frame): the awaiting one
//    could never resume, and destroying it afterwards is undefined.
//  * T must not be a reference type; use a pointer or std::reference_wrapper.
//  * Built by g++ 12, a Task coroutine that co_awaits in the condition of an
//    `if` or a `switch` and declares no named local variable is
//    miscompiled (it cannot be resumed): creating it stops the program with
//    a message (goro/detail/frame_allocator.hpp, Frame layout check). Name
//    the awaited value: `const bool ok = co_await f(); if (!ok) ...`.
template <class T>
class [[nodiscard(
    "co_await it or pass it to go(): it runs nothing until then")]] GORO_CORO_TASK_ATTRIBUTES Task {
  static_assert(!std::is_reference_v<T>, "goro::Task<T&> is not supported; use a pointer");

 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task && other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  // True when this Task owns a coroutine frame.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  class Awaiter {
   public:
    // `owner`: the handle in the awaited Task, which outlives the await.
    explicit Awaiter(std::coroutine_handle<>* owner) noexcept
        : child_(typed(*owner)), owner_(owner) {}
    bool await_ready() const noexcept { return false; }
    template <class AwaitingPromise>
    std::coroutine_handle<> await_suspend(
        std::coroutine_handle<AwaitingPromise> awaiting) noexcept {
      child_.promise().set_continuation(awaiting);
      if constexpr (std::is_base_of_v<detail::TaskPromiseBase, AwaitingPromise>) {
        // A Task awaits a Task: link the frames for destroy_frame_chain.
        parent_ = &awaiting.promise();
        parent_->link_awaited(child_.promise(), owner_);
      }
      return child_;
    }
    T await_resume() {
      if (parent_ != nullptr) parent_->unlink_awaited();
      return child_.promise().take_result();
    }

   private:
    std::coroutine_handle<promise_type> child_;
    std::coroutine_handle<>* owner_;
    detail::TaskPromiseBase* parent_ = nullptr;  // the awaiting Task's promise, if it is one
  };

  Awaiter operator co_await()& noexcept { return Awaiter(&handle_); }
  Awaiter operator co_await()&& noexcept { return Awaiter(&handle_); }

  // Gives up ownership of the frame (used by the scheduler to start a
  // goroutine). The caller becomes responsible for destroying it (with
  // detail::destroy_frame_chain if it may be suspended).
  [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
    return typed(std::exchange(handle_, nullptr));
  }

 private:
  friend class detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  static std::coroutine_handle<promise_type> typed(std::coroutine_handle<> handle) noexcept {
    return std::coroutine_handle<promise_type>::from_address(handle.address());
  }
  void destroy() noexcept {
    if (handle_) detail::destroy_frame_chain(handle_, typed(handle_).promise());
  }

  // Untyped, so that a child frame awaited through this Task can point at
  // it (TaskPromiseBase::owner_) whatever T is.
  std::coroutine_handle<> handle_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  auto handle = std::coroutine_handle<TaskPromise<T>>::from_promise(*this);
  check_frame_start(handle.address());
  return Task<T>(handle);
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  auto handle = std::coroutine_handle<TaskPromise<void>>::from_promise(*this);
  check_frame_start(handle.address());
  return Task<void>(handle);
}

}  // namespace detail
}  // namespace goro

#endif  // GORO_TASK_HPP_
