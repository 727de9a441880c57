// goro/detail/invoke_task.hpp
//
// Defines: the machinery behind the forms that start a goroutine from a
// callable (goro::go(f, args...), goro::spawn(f, args...), Group::go(f,
// args...), WaitGroup::go(f, args...)): the TaskInvocable concept,
// invoke_task, and the wrapper coroutines that own the callable and its
// arguments for as long as the goroutine runs.
//
// Why a wrapper coroutine
//
//   A Task is lazy, and a lambda coroutine reads its captures through the
//   closure object, of which its frame holds only a pointer. In
//   `go([s]() -> Task<void> { ... }())` the closure is a temporary that
//   dies at the end of the statement, before the goroutine first runs.
//   The wrapper takes the callable and the arguments as by-value
//   parameters instead, and a coroutine moves its by-value parameters into
//   its own frame before its body starts: the callable then lives in the
//   goroutine's root frame, exactly as long as the goroutine needs it.
//
// Algorithm (go(f, args...) and spawn(f, args...); Group::go and
// after_func differ in steps 3 and 4, WaitGroup::go in step 4)
//   1. The caller decay-copies f and each argument into the wrapper's
//      parameters (an lvalue is copied, an rvalue moved). An exception
//      from a copy leaves go() before any goroutine exists, as from
//      std::thread's constructor.
//   2. Creating the wrapper Task allocates its frame from goro's frame
//      allocator (it is a Task like any other: TaskPromiseBase's operator
//      new) and moves the parameters into it; that Task is the goroutine's
//      root.
//   3. When the goroutine first runs, the wrapper invokes the callable once,
//      as an rvalue with rvalue arguments (std::thread's rule), and keeps
//      the Task it returns as a local. A callable that throws instead of
//      returning a Task throws inside the wrapper's body, so the exception
//      is the goroutine's, as if the body had thrown it (the wrapper's
//      promise is still the goroutine's result). Then the wrapper hands the
//      goroutine over to the body (HandOverToBody): the body's promise
//      becomes the goroutine's (its G, and G::root_promise, where the
//      JoinHandle and the runtime read the result or the exception), and
//      the wrapper transfers into the body and is never resumed.
//   4. The body finishes the goroutine itself, from its final suspend, as
//      a Task started by go(task) does. The runtime then destroys the
//      root, the wrapper, where it destroys any root (after the result was
//      read, for spawn): its frame destroys the body's Task, so the body's
//      frame, and then the callable and the arguments. The shutdown sweep
//      destroys a parked one the same way, innermost frame first
//      (task.hpp): the chain it walks starts at the body's promise, and
//      the wrapper, which awaits no Task, is destroyed last.
//   Group::go and after_func take a wrapper that is not a goroutine's root
//   (invoke_in_frame: the group awaits it inside a goroutine of its own),
//   so it awaits the body and co_returns its value; WaitGroup::go's wrapper
//   awaits the body, destroys the callable and arguments, and then calls
//   done(), so that whoever wait() releases finds them gone.
//
// Costs: one frame (the wrapper's) beyond the body's own, and one resume
// of it before the body starts; no goroutine and no other allocation. The
// body does not return into the wrapper.
//
// Rejected alternatives
//   * std::invoke (or std::apply) to make the call: with clang's lifetime
//     checks on (GORO_CORO_LIFETIME_CHECKS), a function returning a Task
//     without being a coroutine must be marked GORO_CORO_WRAPPER, and the
//     standard library's are not. invoke_task is the part of std::invoke
//     that a callable returning a Task needs, so marked.
//   * Invoking the callable as an lvalue (f(args...)): an rvalue-qualified
//     operator() and a function taking a move-only argument by value could
//     not be called. The wrapper calls once, so moving is free to do.
//   * A root wrapper that awaits the body like any Task (invoke_in_frame):
//     one more transfer back into the wrapper, its await_resume, result
//     move and final suspend per goroutine, for nothing the hand-over
//     does not give.
//   * Keeping f and args in a separate heap block owned by the goroutine,
//     or in a std::function: another allocation, where the wrapper's frame
//     is already a block that lives exactly as long as needed.
#ifndef GORO_DETAIL_INVOKE_TASK_HPP_
#define GORO_DETAIL_INVOKE_TASK_HPP_

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

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
// later (Group::go, after_func): steps 2 to 4. `F` and `Args` are decayed
// types, so the parameters are copies the frame owns.
template <class T, class F, class... Args>
Task<T> invoke_in_frame(F f, Args... args) {
  co_return co_await invoke_task(std::move(f), std::move(args)...);
}

// Step 3 of a goroutine root: makes `body` (owned by the root's frame) the
// frame that finishes the goroutine and holds its result, and transfers
// into it. The root is never resumed.
template <class T>
class HandOverToBody {
 public:
  explicit HandOverToBody(const Task<T>& body) noexcept : body_(TaskAccess::handle(body)) {}
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<TaskPromise<T>> root) noexcept {
    G* const g = root.promise().goroutine();
    // Plain stores: the goroutine's own thread, before anything else can
    // read either field (they are read when it finishes, or by the
    // shutdown sweep with every worker stopped).
    body_.promise().set_goroutine(g);
    g->root_promise = &body_.promise();
    return body_;
  }
  void await_resume() const noexcept {}

 private:
  std::coroutine_handle<TaskPromise<T>> body_;
};

// The root of a goroutine started from a callable (go(f, args...),
// spawn(f, args...)): steps 2 to 4, with the body finishing the goroutine
// itself. Only as a goroutine's root (HandOverToBody needs its G).
template <class T, class F, class... Args>
Task<T> invoke_as_goroutine_root(F f, Args... args) {
  const Task<T> body = invoke_task(std::move(f), std::move(args)...);
  co_await HandOverToBody<T>(body);
  std::abort();  // never resumed: destroyed, with the body, once it is done
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
    return invoke(std::index_sequence_for<Args...>());
  }
  // Destroys the callable and the arguments.
  void reset() noexcept { parts_.reset(); }

 private:
  template <std::size_t... I>
  GORO_CORO_WRAPPER InvokeResult<F, Args...> invoke(std::index_sequence<I...>) {
    return invoke_task(std::move(std::get<0>(*parts_)), std::move(std::get<I + 1>(*parts_))...);
  }

  std::optional<std::tuple<F, Args...>> parts_;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_INVOKE_TASK_HPP_
