// goro/go.hpp
//
// Defines: goro::go (start a detached goroutine) and goro::spawn (start a
// goroutine and get a JoinHandle for its result), each from a Task or from
// a callable and its arguments.
//
//   goro::go(worker, id, std::ref(wg));  // a function and its arguments
//   goro::go([name, out]() -> goro::Task<void> {  // a capturing lambda
//     co_await goro::sleep(1ms);
//     co_await out.send(name);  // name and out live in the goroutine's frame
//   });
//   auto sum = goro::spawn([](std::vector<int> v) -> goro::Task<long> {
//     co_return std::accumulate(v.begin(), v.end(), 0L);
//   }, std::move(values));
//
// Which to use. go(task) and spawn(task) take a Task whose body is a
// coroutine function's: its by-value parameters live in its frame, so
// `goro::go(serve(conn, std::string(name)))` is safe for `serve(Conn,
// std::string)`. A lambda coroutine, though, keeps only a pointer to its
// closure, and in `goro::go([s]() -> Task<void> {...}())` the closure is a
// temporary, destroyed at the `;` while the goroutine still has to run:
// its captures are read after they died (task.hpp, "What a suspended frame
// may refer to"). go(f, args...) and spawn(f, args...) move the callable
// and its arguments to where the goroutine keeps them before it starts,
// so captures and arguments live as long as the goroutine (mechanism:
// detail/invoke_task.hpp).
#ifndef GORO_GO_HPP_
#define GORO_GO_HPP_

#include <concepts>
#include <type_traits>
#include <utility>

#include "goro/detail/goroutine.hpp"
#include "goro/detail/invoke_task.hpp"
#include "goro/join_handle.hpp"
#include "goro/task.hpp"

namespace goro {

// Starts `task` as a new goroutine and returns at once, as Go's `go f()`.
//  * From a goroutine: the new goroutine goes into the current P's runnext
//    slot when that is free (it runs next on this P, inheriting the time
//    slice, unless an idle P steals it first), otherwise to the tail of the
//    P's run queue; an idle P is woken if none is looking for work.
//  * From a thread outside the runtime: it goes onto the global run queue
//    and an idle worker is woken.
//  * An exception escaping the goroutine goes to Config::on_uncaught_exception,
//    or is printed and aborts the process when none is installed.
//  * With no runtime running, throws std::logic_error (the task is destroyed).
//    While the runtime is shutting down, the task is destroyed unrun.
void go(Task<void> task);

// Starts `f(args...)` as a new goroutine, as go(task) does, with `f` a
// callable returning Task<void>: a lambda (capturing or not), a function,
// a function object, or a pointer to member function followed by the
// object (a pointer, a reference_wrapper or the object itself).
//  * f and every argument are decay-copied (moved when passed as rvalues)
//    to where the goroutine keeps them, and live until the goroutine's
//    frames are destroyed (they go after the body's frame). A copy that
//    throws throws from go(), and no goroutine starts. Move-only callables
//    and arguments are moved.
//  * References are not kept: an argument is copied even where f takes a
//    reference. To share an object instead, pass std::ref(x) or a pointer;
//    x must then outlive the goroutine. The same holds for what a lambda
//    captures by reference and for `this` captured or passed with a
//    member function: the object must outlive the goroutine. Arrays decay
//    to pointers (a string literal is fine; a local char buffer is not).
//  * f is called once, by go() itself before it returns, on the calling
//    thread, as an rvalue with rvalue arguments (as std::thread calls it):
//    a function taking a non-const reference needs std::ref. For a
//    coroutine that call only makes the body's frame and moves its
//    by-value parameters in; the body runs in the new goroutine, as Go's
//    `go f(x)` evaluates f and x in the caller and runs f in the
//    goroutine. A callable that is not a coroutine runs its own code in
//    go(). An exception thrown by the call (before it returns the Task) is
//    the goroutine's, like one thrown by the body: go() itself does not
//    throw it.
//  * Costs what go(task) costs when f and the arguments fit in 16 bytes
//    (aligned to at most 8): they are kept in the goroutine's record. Larger
//    ones take one block from goro's frame allocator. Nothing comes from
//    the global heap.
//  * With no runtime running, the call is still made, then the Task and
//    the copies are destroyed and std::logic_error is thrown; while the
//    runtime is shutting down they are destroyed unrun.
// A Task passed alone picks go(Task<void>) (a Task is not callable).
template <class F, class... Args>
requires detail::TaskInvocable<F, Args...> &&
    std::same_as<detail::InvokeResult<F, Args...>, Task<void>>
void go(F&& f, Args&&... args) {
  detail::start_goroutine_from_call<void>(/*joinable=*/false, std::forward<F>(f),
                                          std::forward<Args>(args)...);
}

// Starts `task` as a new goroutine, like go(), and returns a JoinHandle whose
// co_await gives the task's value or rethrows its exception. If the handle
// is dropped unread, an exception goes to Config::on_uncaught_exception (or
// aborts), as go()'s do. While the runtime is shutting down the task is
// destroyed unrun and the handle is empty.
template <class T>
JoinHandle<T> spawn(Task<T> task) {
  auto root = task.release();
  return detail::JoinHandleAccess::adopt<T>(
      detail::start_goroutine(root, &root.promise(), /*joinable=*/true));
}

// Starts `f(args...)` as a new goroutine, with `f` a callable returning
// Task<T>, and returns a JoinHandle<T>, as spawn(task) does. f and its
// arguments are copied, kept and called as by go(f, args...) (the call is
// made by spawn() itself); an exception thrown by the call reaches the
// handle like the body's. The callable and the arguments are destroyed
// before the joiner resumes.
template <class F, class... Args>
JoinHandle<detail::InvokeTaskValue<F, Args...>> spawn(
    F&& f, Args&&... args) requires detail::TaskInvocable<F, Args...> {
  using T = detail::InvokeTaskValue<F, Args...>;
  return detail::JoinHandleAccess::adopt<T>(detail::start_goroutine_from_call<T>(
      /*joinable=*/true, std::forward<F>(f), std::forward<Args>(args)...));
}

}  // namespace goro

#endif  // GORO_GO_HPP_
