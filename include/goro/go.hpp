// goro/go.hpp
//
// Defines: goro::go (start a detached goroutine) and goro::spawn (start a
// goroutine and get a JoinHandle for its result).
#ifndef GORO_GO_HPP_
#define GORO_GO_HPP_

#include "goro/detail/goroutine.hpp"
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

// Starts `task` as a new goroutine, like go(), and returns a JoinHandle whose
// co_await gives the task's value or rethrows its exception. If the handle
// is dropped unread, an exception goes to Config::on_uncaught_exception (or
// aborts), as go()'s do. While the runtime is shutting down the task is
// destroyed unrun and the handle is empty.
template <class T>
JoinHandle<T> spawn(Task<T> task) {
  auto root = task.release();
  return JoinHandle<T>(detail::start_goroutine(root, &root.promise(), /*joinable=*/true));
}

}  // namespace goro

#endif  // GORO_GO_HPP_
