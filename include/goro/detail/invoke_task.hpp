// goro/detail/invoke_task.hpp
//
// Defines: the machinery behind the forms that start a goroutine from a
// callable (goro::go(f, args...), goro::spawn(f, args...), Group::go(f,
// args...), WaitGroup::go(f, args...)): the TaskInvocable concept,
// invoke_task, start_goroutine_from_call (where a goroutine's callable and
// arguments are kept), and the wrappers for the forms that await a body.
//
// Why the callable is kept by the goroutine
//
//   A Task is lazy, and a lambda coroutine reads its captures through the
//   closure object, of which its frame holds only a pointer. In
//   `go([s]() -> Task<void> { ... }())` the closure is a temporary that
//   dies at the end of the statement, before the goroutine first runs. So
//   go(f, args...) copies the callable and the arguments to a place that
//   lives exactly as long as the goroutine, and calls them there: the
//   body's frame may point into that place for as long as it exists.
//
// Glossary
//   parts        std::tuple of the decay-copied callable and arguments.
//   inline call  room for parts in the goroutine's record (kInlineCallBytes,
//                kInlineCallAlign; lib/goroutine.hpp): no allocation.
//   box          parts that do not fit, in one block from goro's frame
//                allocator; the inline call then holds the box's address.
//
// Algorithm (go(f, args...) and spawn(f, args...):
// start_goroutine_from_call)
//   1. On a worker thread, take the goroutine's record before anything else
//      (reserve_goroutine), so that the parts get their final address
//      before the callable is called. Elsewhere (a thread outside the
//      runtime; a runtime stopping, or none) there is no record yet: the
//      parts go into a box, whose address is just as final.
//   2. Decay-copy f and each argument into the parts, in the record or in
//      a box (an lvalue is copied, an rvalue moved). An exception from a
//      copy leaves go() before any goroutine exists (the record goes back),
//      as from std::thread's constructor.
//   3. Call the callable there and then, on the caller's thread, as an
//      rvalue with rvalue arguments (std::thread's rule). The body Task it
//      returns is the goroutine's root. A coroutine's body does not run yet
//      (a Task is lazy): the call makes its frame and moves its by-value
//      parameters in, and a lambda body will read its captures through a
//      pointer to the parts. A call that throws instead of returning a Task
//      gives, as the root, a Task that throws the same exception when it
//      runs (throw_when_run): the exception is the goroutine's, as if the
//      body had thrown it.
//   4. Start the goroutine (start_reserved_goroutine, or start_goroutine
//      with the box), with a function that destroys the parts (and frees
//      the box). The runtime calls it right after it destroys the root
//      frame, wherever it does (finishing, after the JoinHandle read the
//      result, the shutdown sweep): the body's frame, whose destructors may
//      still read captures, always goes first. Where start_goroutine
//      refuses the goroutine (no runtime, or stopping), it destroys the
//      root and then the parts at once.
//   Group::go and after_func need a Task that is not a goroutine's root
//   (the group awaits it inside a goroutine of its own): invoke_in_frame
//   is a coroutine whose by-value parameters are the parts, which awaits
//   the body. WaitGroup::go's wrapper awaits the body, destroys the parts
//   (BoundCall), and then calls done(), so that whoever wait() releases
//   finds them gone.
//
// Costs: for parts that fit the record, nothing beyond go(task)'s: no
// frame, no allocation, no extra resume. For larger parts, one block from
// the frame allocator.
//
// Rejected alternatives
//   * A root wrapper coroutine taking f and args as by-value parameters,
//     which calls the callable when the goroutine first runs and hands the
//     goroutine over to the body: a second frame, a resume and a transfer
//     per goroutine, where the record already has room for most callables.
//     It would call the callable in the goroutine rather than in go(); for
//     a coroutine that difference is only where its parameters are moved.
//   * std::invoke (or std::apply) to make the call: with clang's lifetime
//     checks on (GORO_CORO_LIFETIME_CHECKS), a function returning a Task
//     without being a coroutine must be marked GORO_CORO_WRAPPER, and the
//     standard library's are not. invoke_task is the part of std::invoke
//     that a callable returning a Task needs, so marked.
//   * Invoking the callable as an lvalue (f(args...)): an rvalue-qualified
//     operator() and a function taking a move-only argument by value could
//     not be called. The callable is called once, so moving is free to do.
//   * std::function, or a heap block for every callable: an allocation
//     where the record has room, and std::function cannot hold a move-only
//     callable.
#ifndef GORO_DETAIL_INVOKE_TASK_HPP_
#define GORO_DETAIL_INVOKE_TASK_HPP_

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/detail/frame_allocator.hpp"
#include "goro/detail/goroutine.hpp"
#include "goro/task.hpp"

namespace goro::detail {

template <class T>
inline constexpr bool kIsReferenceWrapper = false;
template <class T>
inline constexpr bool kIsReferenceWrapper<std::reference_wrapper<T>> = true;

// What calling the decay-copied `F` with decay-copied `Args` (as rvalues)
// returns.
template <class F, class... Args>
using InvokeResult = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

// A callable that a goroutine can be started from: its decay-copies can be
// made from the given arguments, and calling them as rvalues (std::invoke's
// rules: function objects, functions, member function pointers with an
// object, pointer or reference_wrapper) returns a Task.
template <class F, class... Args>
concept TaskInvocable =
    std::constructible_from<std::decay_t<F>, F> &&
    (std::constructible_from<std::decay_t<Args>, Args>&&...) &&
    std::invocable<std::decay_t<F>, std::decay_t<Args>...>&& kIsTask<InvokeResult<F, Args...>>;

// The value type of the Task that a TaskInvocable returns.
template <class F, class... Args>
using InvokeTaskValue = typename InvokeResult<F, Args...>::value_type;

// A pointer to member function called on `object` (an object of the class,
// a reference_wrapper to one, or a pointer or smart pointer to one).
template <class Member, class Class, class Object, class... Args>
GORO_CORO_WRAPPER decltype(auto) invoke_member_function(Member Class::*member, Object&& object,
                                                        Args&&... args) {
  using Bare = std::remove_cvref_t<Object>;
  if constexpr (std::is_base_of_v<Class, Bare>) {
    return (std::forward<Object>(object).*member)(std::forward<Args>(args)...);
  } else if constexpr (kIsReferenceWrapper<Bare>) {
    return (object.get().*member)(std::forward<Args>(args)...);
  } else {
    return ((*std::forward<Object>(object)).*member)(std::forward<Args>(args)...);
  }
}

// std::invoke for a callable returning a Task (see "Rejected alternatives").
template <class F, class... Args>
GORO_CORO_WRAPPER decltype(auto) invoke_task(F&& f, Args&&... args) {
  if constexpr (std::is_member_function_pointer_v<std::remove_cvref_t<F>>) {
    return invoke_member_function(f, std::forward<Args>(args)...);
  } else {
    return std::forward<F>(f)(std::forward<Args>(args)...);
  }
}

// A Task made from a callable, for a caller that awaits it or starts it
// later (Group::go, after_func; see the end of the algorithm above). `F`
// and `Args` are decayed types, so the parameters are copies the frame
// owns, and the callable is called when the Task first runs.
template <class T, class F, class... Args>
Task<T> invoke_in_frame(F f, Args... args) {
  co_return co_await invoke_task(std::move(f), std::move(args)...);
}

// Calls the callable held first in `parts` once, as an rvalue, with the
// arguments that follow it in `parts`, as rvalues.
template <class Parts, std::size_t... I>
GORO_CORO_WRAPPER decltype(auto) invoke_parts(Parts& parts, std::index_sequence<I...>) {
  return invoke_task(std::move(std::get<0>(parts)), std::move(std::get<I + 1>(parts))...);
}

// Throws `error` where it is awaited, without suspending.
class Rethrow {
 public:
  explicit Rethrow(std::exception_ptr error) noexcept : error_(std::move(error)) {}
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  [[noreturn]] void await_resume() const { std::rethrow_exception(error_); }

 private:
  std::exception_ptr error_;
};

// Step 3's root for a call that threw: throws that exception when it runs.
template <class T>
Task<T> throw_when_run(std::exception_ptr error) {
  co_await Rethrow(std::move(error));
}

// Where a goroutine's parts are kept (glossary): the inline call, or a box.
template <class Parts>
inline constexpr bool kPartsFitInline = sizeof(Parts) <= kInlineCallBytes &&
                                        alignof(Parts) <= kInlineCallAlign;

// A box's memory, from the frame allocator (aligned beyond its default
// where the parts need it).
template <class Parts>
inline constexpr bool kPartsOverAligned = alignof(Parts) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
template <class Parts>
void* allocate_box() {
  if constexpr (kPartsOverAligned<Parts>) {
    return allocate_frame_aligned(sizeof(Parts), alignof(Parts));
  } else {
    return allocate_frame(sizeof(Parts));
  }
}
template <class Parts>
void free_box(void* box) noexcept {
  if constexpr (kPartsOverAligned<Parts>) {
    free_frame_aligned(box, sizeof(Parts), alignof(Parts));
  } else {
    free_frame(box, sizeof(Parts));
  }
}

// The inline call's destroyers: for parts kept in it, and for a box whose
// address it holds.
template <class Parts>
void destroy_inline_parts(void* storage) noexcept {
  static_cast<Parts*>(storage)->~Parts();
}
template <class Parts>
void destroy_boxed_parts(void* storage) noexcept {
  Parts* const parts = *static_cast<Parts**>(storage);
  parts->~Parts();
  free_box<Parts>(parts);
}
// The destroyer step 4 hands over (nullptr: nothing to destroy).
template <class Parts>
constexpr InlineCallDestroyer destroyer_of_parts() noexcept {
  if constexpr (!kPartsFitInline<Parts>) {
    return &destroy_boxed_parts<Parts>;
  } else if constexpr (std::is_trivially_destructible_v<Parts>) {
    return nullptr;
  } else {
    return &destroy_inline_parts<Parts>;
  }
}

// Step 2 for parts that do not fit the record: a box holding them.
template <class Parts, class... A>
Parts* make_boxed_parts(A&&... a) {
  void* const box = allocate_box<Parts>();
  try {
    return ::new (box) Parts(std::forward<A>(a)...);
  } catch (...) {
    free_box<Parts>(box);
    throw;
  }
}

// Step 3: the root, from calling the parts. Throws only when even
// throw_when_run's frame cannot be allocated.
template <class T, class Parts, std::size_t... I>
[[gnu::always_inline]] inline std::coroutine_handle<TaskPromise<T>> call_for_root(
    Parts& parts, std::index_sequence<I...> i) {
  try {
    return invoke_parts(parts, i).release();
  } catch (...) {
    return throw_when_run<T>(std::current_exception()).release();
  }
}

// Starts a goroutine from `f(args...)` (steps 1 to 4), joinable or not.
// Returns the record, or nullptr when the runtime is stopping (as
// start_goroutine, which throws when none runs).
template <class T, class F, class... Args>
G* start_goroutine_from_call(bool joinable, F&& f, Args&&... args) {
  using Parts = std::tuple<std::decay_t<F>, std::decay_t<Args>...>;
  constexpr InlineCallDestroyer kDestroy = destroyer_of_parts<Parts>();
  constexpr auto kArgIndexes = std::index_sequence_for<Args...>();
  const ReservedGoroutine reserved = reserve_goroutine();  // step 1
  if (reserved.g != nullptr) {
    Parts* parts;
    try {  // step 2
      if constexpr (kPartsFitInline<Parts>) {
        parts = ::new (reserved.inline_call) Parts(std::forward<F>(f), std::forward<Args>(args)...);
      } else {
        parts = make_boxed_parts<Parts>(std::forward<F>(f), std::forward<Args>(args)...);
        ::new (reserved.inline_call) Parts*(parts);
      }
    } catch (...) {
      unreserve_goroutine(reserved.g);
      throw;
    }
    std::coroutine_handle<TaskPromise<T>> root;
    try {
      root = call_for_root<T>(*parts, kArgIndexes);  // step 3
    } catch (...) {
      if (kDestroy != nullptr) kDestroy(reserved.inline_call);
      unreserve_goroutine(reserved.g);
      throw;
    }
    return start_reserved_goroutine(reserved.g, root, &root.promise(), joinable, kDestroy);
  }
  // Steps 2 to 4 with a box, where no record could be reserved.
  Parts* parts = make_boxed_parts<Parts>(std::forward<F>(f), std::forward<Args>(args)...);
  std::coroutine_handle<TaskPromise<T>> root;
  try {
    root = call_for_root<T>(*parts, kArgIndexes);
  } catch (...) {
    destroy_boxed_parts<Parts>(&parts);
    throw;
  }
  const BoxedCall boxed{&destroy_boxed_parts<Parts>, parts};
  return start_goroutine(root, &root.promise(), joinable, &boxed);
}

// A callable and its arguments, decay-copied, in one object that can be
// destroyed before the frame holding it (WaitGroup::go's step 4).
template <class F, class... Args>
class BoundCall {
 public:
  template <class G, class... A>
  explicit BoundCall(std::in_place_t, G&& f, A&&... args)
      : parts_(std::in_place, std::forward<G>(f), std::forward<A>(args)...) {}

  // Calls the callable once, as an rvalue with rvalue arguments.
  GORO_CORO_WRAPPER InvokeResult<F, Args...> invoke() {
    return invoke_parts(*parts_, std::index_sequence_for<Args...>());
  }
  // Destroys the callable and the arguments.
  void reset() noexcept { parts_.reset(); }

 private:
  std::optional<std::tuple<F, Args...>> parts_;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_INVOKE_TASK_HPP_
