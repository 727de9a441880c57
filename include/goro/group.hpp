// goro/group.hpp
//
// Defines: goro::Group, goro::GroupWithContext and the awaiter of
// Group::wait: golang.org/x/sync/errgroup for goro.
//
//   goro::Task<absl::Status> fetch(goro::Context ctx, std::string url);
//
//   goro::Task<absl::Status> fetch_all(goro::Context parent, std::vector<std::string> urls) {
//     auto [group, ctx] = goro::Group::with_context(parent);
//     for (auto& url : urls) group.go(fetch, ctx, url);  // or group.go(fetch(ctx, url))
//     group.go([ctx]() -> goro::Task<absl::Status> { co_return co_await ping(ctx); });
//     co_return co_await group.wait();  // the first error, once all returned
//   }
//
// Semantics are errgroup's: go() runs the task in a new goroutine; the
// first task to return a non-OK status (or to throw) records it and, for a
// group made by with_context, cancels the group's context, so that the
// other tasks, which should watch it, stop early; wait() waits until every
// task has returned, cancels the context, and gives the first error.
//
// A task is a Task<absl::Status> or a callable returning one with its
// arguments, which the task's frame keeps for as long as it runs, as
// goro::go(f, args...) keeps them (go.hpp): a capturing lambda is safe
// there, and not as
// `group.go([x]() -> Task<absl::Status> {...}())`, whose closure dies at
// the `;`.
//
// Deviation from errgroup: with a limit (set_limit), go() does not block
// its caller until a slot is free; the task waits, unstarted, in the
// group's FIFO queue and starts when a running task returns. try_go is
// errgroup's TryGo.
#ifndef GORO_GROUP_HPP_
#define GORO_GROUP_HPP_

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "goro/context.hpp"
#include "goro/detail/invoke_task.hpp"
#include "goro/task.hpp"

namespace goro {

namespace detail {

struct G;
class GroupState;

// A goroutine parked in Group::wait (one per waiting goroutine, in its
// awaiter, in its frame).
struct GroupWaiter {
  G* g = nullptr;
  GroupWaiter* next = nullptr;
};

}  // namespace detail

class Group;
struct GroupWithContext;

// The awaiter of `co_await group.wait()`. Gives the first error (OK if
// none); rethrows the first exception a task threw if that came first.
class GroupWaitAwaiter {
 public:
  explicit GroupWaitAwaiter(detail::GroupState* state) noexcept : state_(state) {}
  GroupWaitAwaiter(const GroupWaitAwaiter&) = delete;
  GroupWaitAwaiter& operator=(const GroupWaitAwaiter&) = delete;

  bool await_ready() const noexcept;
  bool await_suspend(std::coroutine_handle<> awaiting);
  absl::Status await_resume();

 private:
  detail::GroupState* state_;
  detail::GroupWaiter waiter_;
};

// errgroup.Group: a handle to a set of goroutines that work on parts of one
// task. Copies share the group (so tasks may add more tasks through a copy
// passed as a parameter). Thread-safe: go(), try_go() and wait() may be
// called from any goroutine concurrently; go() also from outside threads.
class Group {
 public:
  // A group without a context: errors are recorded, nothing is cancelled
  // (errgroup's zero Group).
  Group();
  // errgroup.WithContext: a group and a child of `parent` that is
  // cancelled by the first failing task, or by wait() returning.
  static GroupWithContext with_context(const Context& parent);

  Group(const Group& other) noexcept;
  Group(Group&& other) noexcept;
  Group& operator=(Group other) noexcept;
  // Does not wait: running tasks keep the group's state alive.
  ~Group();

  // Runs `task` in a new goroutine (or, with the limit reached, queues it
  // to start when a slot frees up). Its status is recorded when it
  // returns: the first non-OK one is what wait() gives and cancels the
  // context. An exception escaping it counts as a failure (it cancels the
  // context) and is rethrown by wait() if it was the first failure.
  void go(Task<absl::Status> task);

  // errgroup's TryGo: starts `task` only if the limit allows it now;
  // otherwise destroys it unrun and returns false.
  bool try_go(Task<absl::Status> task);

  // go(task) for the task `f(args...)`, with `f` a callable returning
  // Task<absl::Status>: f and the arguments are copied into the task's own
  // frame, as goro::go(f, args...) copies them (go.hpp: copies, std::ref,
  // lifetimes, an exception from the call itself), and called when the
  // task starts, in its goroutine (go() calls f before it returns). A
  // queued task holds them until it starts. They are destroyed before the
  // task counts as returned, so before wait() can give its result.
  template <class F, class... Args>
  requires detail::TaskInvocable<F, Args...> &&
      std::same_as<detail::InvokeResult<F, Args...>, Task<absl::Status>>
  void go(F&& f, Args&&... args) {
    go(detail::invoke_in_frame<absl::Status, std::decay_t<F>, std::decay_t<Args>...>(
        std::forward<F>(f), std::forward<Args>(args)...));
  }

  // try_go(task) for the task `f(args...)`, as go(f, args...). When the
  // limit refuses it, f and the copies are destroyed and f is not called.
  template <class F, class... Args>
  requires detail::TaskInvocable<F, Args...> &&
      std::same_as<detail::InvokeResult<F, Args...>, Task<absl::Status>>
  bool try_go(F&& f, Args&&... args) {
    return try_go(detail::invoke_in_frame<absl::Status, std::decay_t<F>, std::decay_t<Args>...>(
        std::forward<F>(f), std::forward<Args>(args)...));
  }

  // errgroup's SetLimit: at most `n` tasks run at once; n < 0 means no
  // limit (the default). With n == 0 nothing starts (go() queues for
  // ever, try_go fails). Throws std::logic_error while tasks are running
  // or queued, as errgroup panics.
  void set_limit(long n);

  // `co_await group.wait()`: parks until every task given to go() so far
  // (and any added meanwhile) has returned, then cancels the group's
  // context and gives the first error, or rethrows the first exception.
  // Several goroutines may wait at once. Must be awaited in a goroutine.
  [[nodiscard("co_await it: nothing waits until the wait is awaited")]] GroupWaitAwaiter wait()
      const noexcept {
    return GroupWaitAwaiter(state_);
  }

 private:
  explicit Group(detail::GroupState* state) noexcept : state_(state) {}

  detail::GroupState* state_;
};

// What Group::with_context returns: `auto [group, ctx] = ...`.
struct GroupWithContext {
  Group group;
  Context ctx;
};

}  // namespace goro

#endif  // GORO_GROUP_HPP_
