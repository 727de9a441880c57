// goro/signal.hpp
//
// Defines: goro::SignalStop, goro::SignalContext, goro::signal_context and
// goro::signal_number: Go's signal.NotifyContext, a context cancelled when
// the process receives one of the given signals.
//
//   goro::Task<int> serve() {
//     auto [ctx, stop] = goro::signal_context(goro::background(), {SIGINT, SIGTERM});
//     ...start serving...
//     co_await goro::recv_from(ctx.done());  // or pass ctx down
//     stop();  // a second Ctrl-C now ends the process the usual way
//     ...shut down gracefully...
//   }
//
// Semantics are Go's:
//   * While a notification is registered, the listed signals no longer
//     take their previous action (ending the process, another handler):
//     goro catches them. The first one that arrives cancels the context;
//     goro::cause(ctx) is then absl::CancelledError("received signal
//     SIGTERM") with the signal's number attached (signal_number). A
//     signal that is not listed is left to its own disposition.
//   * stop() ends the registration: when no other registration lists a
//     signal any more, its previous disposition (as sigaction(2) saw it
//     when the first registration for it was made) comes back. stop() also
//     cancels the context (plain cancellation, no cause) if no signal did.
//     Until stop(), signals stay caught, also after the context is done:
//     a program that wants a second Ctrl-C to kill it calls stop() once
//     ctx is done, as Go programs do.
//   * Several registrations may list the same signal; each is told.
//
// Threads: the signal may arrive on any thread of the process (a worker,
// a thread outside goro); how it is handled does not depend on which. The
// mechanism is in lib/signal.cpp, whose top comment explains it.
#ifndef GORO_SIGNAL_HPP_
#define GORO_SIGNAL_HPP_

#include <initializer_list>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "goro/context.hpp"

namespace goro {

namespace detail {
struct SignalNotification;
}  // namespace detail

// The stop function of a signal_context (Go's stop func returned by
// NotifyContext). Calling it unregisters the notification, restoring the
// signals' previous dispositions where no other registration lists them,
// and cancels the context; idempotent. Destroying it stops too, so a
// notification never outlives the scope that made it. Move-only; a
// moved-from or default-constructed SignalStop does nothing. Any thread,
// with or without a runtime running; not concurrently with itself on the
// same object.
class SignalStop {
 public:
  SignalStop() noexcept = default;
  explicit SignalStop(std::shared_ptr<detail::SignalNotification> notification) noexcept
      : notification_(std::move(notification)) {}
  SignalStop(SignalStop&&) noexcept = default;
  SignalStop& operator=(SignalStop&& other) noexcept {
    if (this != &other) {
      (*this)();
      notification_ = std::move(other.notification_);
    }
    return *this;
  }
  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;
  ~SignalStop() { (*this)(); }

  void operator()() noexcept;

 private:
  std::shared_ptr<detail::SignalNotification> notification_;
};

// What signal_context returns:
//   auto [ctx, stop] = goro::signal_context(parent, {SIGINT, SIGTERM});
struct SignalContext {
  Context ctx;
  SignalStop stop;
};

// Go's signal.NotifyContext: a child of `parent` that is cancelled when the
// process receives one of `signals` (with the cause described at the top
// of this header), when `parent` is, or when stop is called.
//  * Call it while a runtime runs (from a goroutine, or from a thread
//    while run() is active): one goroutine waits for the signals. Once
//    run() returns, that goroutine is gone: the context is then no longer
//    cancelled by a signal, but the signals stay caught until stop.
//  * Throws std::invalid_argument for a signal that cannot be caught
//    (SIGKILL, SIGSTOP) or is no signal number (1 to 64), std::system_error
//    when the process has no file descriptors left, std::length_error with
//    64 registrations alive at once, and std::logic_error with no runtime
//    running; nothing stays registered then.
//  * Costs a pipe (two file descriptors) and a parked goroutine per
//    registration.
[[nodiscard("hold the stop function: destroying it unregisters at once")]] SignalContext
signal_context(const Context& parent, std::initializer_list<int> signals);

// The signal number a signal_context's cause carries (goro::cause of its
// context, or of a context below it), or nullopt for any other status.
[[nodiscard]] std::optional<int> signal_number(const absl::Status& cause);

}  // namespace goro

#endif  // GORO_SIGNAL_HPP_
