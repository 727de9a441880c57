// goro/for_each.hpp
//
// Defines: goro::for_each, Go's `for v := range ch` as a call.
//
//   co_await goro::for_each(results, [&](Result r) { total += r.size; });
//   co_await goro::for_each(jobs, [&](Job j) -> goro::Task<void> { co_await run(j); });
//   absl::Status s = co_await goro::for_each(ctx, jobs, handle);  // until ctx is done
//
// Why a function. C++20 cannot write `for (auto v : co_await ...)`: a
// range-for calls begin() and operator++ as plain functions, which cannot
// suspend. The nearest loop is `while (auto v = co_await ch.recv())`
// (goro/chan.hpp), which needs no helper; for_each is for code that wants
// the body as a callable, and for the context-aware form, whose select
// over ctx.done() each caller would otherwise write out.
//
// Design. Each for_each hands the channel handle, the callable (and the
// context) by value to a coroutine, detail::for_each_value: they live in
// its frame, so the Task
// may be stored or started later without anything dangling, and the
// callable's own captures are the caller's business as for any callable.
// Algorithm: 1. receive (the plain form: ch.recv(); the context form: a
// select over ctx.done() and the channel, after a check of cancelled() so
// that a context already done stops before another value is taken);
// 2. closed and drained: return; 3. call f with the value moved out, and
// co_await the result if it is a Task; 4. f said false: return; repeat.
// Step 3 is written out in each loop rather than in a helper coroutine:
// a helper would cost a frame per value, and a plain callable none. A body
// returning a Task is called through detail::invoke_task, std::invoke's
// counterpart that clang's coroutine lifetime checks accept.
// Rejected: a range adaptor whose iterator awaits (an awaitable
// begin()/operator++ is not C++20).
#ifndef GORO_FOR_EACH_HPP_
#define GORO_FOR_EACH_HPP_

#include <concepts>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/detail/invoke_task.hpp"
#include "goro/select.hpp"
#include "goro/task.hpp"

namespace goro {
namespace detail {

// What for_each accepts as a body: f(T&&) returning void, bool, Task<void>
// or Task<bool>.
template <class F, class T>
concept ForEachBody = std::invocable<F&, T&&> &&
    (std::same_as<std::invoke_result_t<F&, T&&>, void> ||
     std::same_as<std::invoke_result_t<F&, T&&>, bool> ||
     std::same_as<std::invoke_result_t<F&, T&&>, Task<void>> ||
     std::same_as<std::invoke_result_t<F&, T&&>, Task<bool>>);

template <class T, class F>
Task<void> for_each_value(RecvChan<T> ch, F f) {
  using Result = std::invoke_result_t<F&, T&&>;
  while (auto value = co_await ch.recv()) {
    if constexpr (std::same_as<Result, void>) {
      std::invoke(f, std::move(*value));
    } else if constexpr (std::same_as<Result, bool>) {
      if (!std::invoke(f, std::move(*value))) co_return;
    } else if constexpr (std::same_as<Result, Task<void>>) {
      co_await invoke_task(f, std::move(*value));
    } else {
      const bool go_on = co_await invoke_task(f, std::move(*value));
      if (!go_on) co_return;
    }
  }
}

template <class T, class F>
Task<absl::Status> for_each_value(Context ctx, RecvChan<T> ch, F f) {
  using Result = std::invoke_result_t<F&, T&&>;
  for (;;) {
    if (ctx.cancelled()) co_return ctx.err();
    auto r = co_await select(recv_from(ctx.done()), recv_from(ch));
    if (r.index() == 0) co_return ctx.err();
    std::optional<T>& value = r.template get<1>();
    if (!value) co_return absl::OkStatus();  // closed and drained
    if constexpr (std::same_as<Result, void>) {
      std::invoke(f, std::move(*value));
    } else if constexpr (std::same_as<Result, bool>) {
      if (!std::invoke(f, std::move(*value))) co_return absl::OkStatus();
    } else if constexpr (std::same_as<Result, Task<void>>) {
      co_await invoke_task(f, std::move(*value));
    } else {
      const bool go_on = co_await invoke_task(f, std::move(*value));
      if (!go_on) co_return absl::OkStatus();
    }
  }
}

}  // namespace detail

// co_await goro::for_each(ch, f): Go's `for v := range ch { f(v) }`.
//
// Contract:
//  * Receives from `ch` until it is closed and drained, and calls f with
//    each value (as an rvalue: f may take T, T&& or const T&), in order,
//    one call at a time, on the awaiting goroutine.
//  * f returns void (go on), bool (false stops, as `break`: the values
//    still in the channel stay there), Task<void> or Task<bool> (awaited
//    before the next receive, so f may block, send, sleep, do I/O).
//  * An exception from f, or from awaiting its Task, ends the loop and
//    propagates out of the co_await; the channel is left as it is.
//  * A nil channel blocks forever, as ranging over one does in Go.
//  * The channel handle and f are copied (or moved) into the coroutine's
//    frame; what f captures by reference must outlive the await.
//  * Must be awaited in a goroutine (it parks when nothing is ready).
//  * Built by g++ 12, a capturing lambda written inside a co_await
//    expression (here: a body written in the call) is destroyed once more
//    than it is constructed (clang does not do this). Harmless for a
//    closure that captures only references and trivially destructible
//    values; one that captures a handle (a Chan, a Context, a
//    std::string) releases it twice. With g++ 12, name such a body first:
//    `auto body = [out](int v) -> goro::Task<void> {...};
//     co_await goro::for_each(in, body);`.
template <class T, class F>
requires detail::ForEachBody<std::decay_t<F>, T>
[[nodiscard(
    "co_await it: nothing is received until the loop is awaited")]] GORO_CORO_WRAPPER Task<void>
for_each(RecvChan<T> ch, F&& f) {
  return detail::for_each_value<T, std::decay_t<F>>(std::move(ch), std::forward<F>(f));
}
template <class T, class F>
requires detail::ForEachBody<std::decay_t<F>, T>
[[nodiscard(
    "co_await it: nothing is received until the loop is awaited")]] GORO_CORO_WRAPPER Task<void>
for_each(const Chan<T>& ch, F&& f) {
  return detail::for_each_value<T, std::decay_t<F>>(RecvChan<T>(ch), std::forward<F>(f));
}

// co_await goro::for_each(ctx, ch, f): as for_each(ch, f), and also stops
// when `ctx` is done, Go's
//
//   for {
//     select {
//     case <-ctx.Done(): return ctx.Err()
//     case v, ok := <-ch: if !ok { return nil }; f(v)
//     }
//   }
//
// Gives ctx.err() (kCancelled, kDeadlineExceeded) if the context was done
// before a receive, or while one waited; OkStatus when the channel was
// closed and drained or f returned false. A context already done stops the
// loop before its next value; when a value and the context's end are both
// ready at one receive, either may be taken (Go's select chooses at
// random), so a value can still reach f shortly after the end. A call of f
// in progress is not interrupted: pass ctx to f (capture it) for that.
template <class T, class F>
requires detail::ForEachBody<std::decay_t<F>, T>
[[nodiscard("co_await it: nothing is received until the loop is awaited")]] GORO_CORO_WRAPPER
    Task<absl::Status>
    for_each(Context ctx, RecvChan<T> ch, F&& f) {
  return detail::for_each_value<T, std::decay_t<F>>(std::move(ctx), std::move(ch),
                                                    std::forward<F>(f));
}
template <class T, class F>
requires detail::ForEachBody<std::decay_t<F>, T>
[[nodiscard("co_await it: nothing is received until the loop is awaited")]] GORO_CORO_WRAPPER
    Task<absl::Status>
    for_each(Context ctx, const Chan<T>& ch, F&& f) {
  return detail::for_each_value<T, std::decay_t<F>>(std::move(ctx), RecvChan<T>(ch),
                                                    std::forward<F>(f));
}

}  // namespace goro

#endif  // GORO_FOR_EACH_HPP_
