// goro/http/handler.hpp
//
// Defines: goro::http::Handler, what a Server (or a Router route) calls
// for each request: any callable `Task<void>(Request&, ResponseWriter&)
// const`, type-erased and owned.
//
// Contract:
//   * The callable is moved (or copied) into the Handler and lives as long
//     as it: a capturing lambda coroutine's Task reads its captures from
//     there, so they stay valid while any request it serves runs (the
//     Server keeps the Handler until its last connection ends).
//   * It is called as a const lvalue, concurrently from connections on
//     different threads: what it shares needs synchronization, as in Go.
//   * Move-only (a callable holding move-only captures is fine).
//
// Why not absl::AnyInvocable or std::function: their call operators return
// the Task without being coroutines, and goro's code is compiled with
// clang's coroutine lifetime checks, which reject such a function unless
// it is marked GORO_CORO_WRAPPER (goro/task.hpp); this one is.
#ifndef GORO_HTTP_HANDLER_HPP_
#define GORO_HTTP_HANDLER_HPP_

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "goro/task.hpp"

namespace goro::http {

class Request;
class ResponseWriter;

// A callable a Handler can hold.
template <class F>
concept HandlerCallable =
    !std::same_as<std::remove_cvref_t<F>, class Handler> &&
    std::constructible_from<std::decay_t<F>, F> &&
    std::invocable<const std::decay_t<F>&, Request&, ResponseWriter&> &&
    std::same_as<std::invoke_result_t<const std::decay_t<F>&, Request&, ResponseWriter&>,
                 Task<void>>;

class Handler {
 public:
  // An empty Handler; calling it is undefined.
  Handler() noexcept = default;
  template <HandlerCallable F>
  Handler(F&& f)  // NOLINT(google-explicit-constructor): a lambda converts
      : callable_(std::make_unique<Holder<std::decay_t<F>>>(std::forward<F>(f))) {}
  Handler(Handler&&) noexcept = default;
  Handler& operator=(Handler&&) noexcept = default;

  GORO_CORO_WRAPPER Task<void> operator()(Request& request, ResponseWriter& response) const {
    return callable_->call(request, response);
  }
  [[nodiscard]] explicit operator bool() const noexcept { return callable_ != nullptr; }

 private:
  struct Callable {
    virtual ~Callable() = default;
    virtual Task<void> call(Request& request, ResponseWriter& response) const = 0;
  };
  template <class F>
  struct Holder final : Callable {
    template <class G>
    explicit Holder(G&& g) : f(std::forward<G>(g)) {}
    GORO_CORO_WRAPPER Task<void> call(Request& request, ResponseWriter& response) const override {
      return f(request, response);
    }
    F f;
  };

  std::unique_ptr<Callable> callable_;
};

}  // namespace goro::http

#endif  // GORO_HTTP_HANDLER_HPP_
