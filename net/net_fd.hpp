// net/net_fd.hpp: NetFd, the socket under every Conn, Listener and
// PacketConn: it owns the fd, runs goro::io operations on it under Go's
// deadline rules, and makes close safe while operations are parked.
//
// Why. goro::io takes a deadline and a stop token per operation; Go's
// sockets keep deadlines per socket (set_read_deadline applies to every
// later read, and to one already parked), and Go's Close wakes every
// goroutine parked on the socket with ErrClosed. And an fd number must
// never be closed while an operation still names it: the kernel hands the
// number out again, and the pending operation (an io_uring SQE, an epoll
// waiter) would act on the new file. NetFd provides both on the public
// goro::io API alone, identically under io_uring and epoll.
//
// State (under `mutex_`): the fd; `closed_`; `in_flight_`, the operations
// between begin and end (each an io operation, or a plain system call such
// as setsockopt); and per side (read, write) the deadline, the number of
// operations running on that side (between begin and end), `interrupt`, a
// std::stop_source whose token each of those operations passes to goro::io
// as its stop token, and `timer`, a goro::StopTimer that stops
// `interrupt` when the side's deadline passes.
//
// Memory ordering: NetFd holds no atomic of its own. Every field is read
// and written under `mutex_`, which orders them between threads. The
// signals that cross threads outside it are request_stop() on an interrupt
// source (close, set_deadline, the timer's fire): std::stop_source makes
// the request happen before the stop callbacks it runs (goro::io's
// cancellation of the parked operation) and before any stop_requested()
// that returns true. That is enough: a woken operation learns why it woke
// only in end() and begin(), under `mutex_`. The fire reads the source
// without the mutex, which invariant T1 makes safe: the timer is armed
// under the mutex after the source was put in place, and the source is
// replaced only after the timer is disarmed, a disarm that waits for a
// fire in progress.
//
// The deadline timer (Go's model: the deadline belongs to the socket, not
// to each operation):
//   T1. A side's interrupt source is replaced only under the mutex and with
//       its timer not armed (disarmed first, or already fired), so the
//       source a firing timer stops is the one the operations hold.
//   T2. The timer is armed only by begin (a goroutine, under the mutex), at
//       the side's deadline, when the side has one and the timer is not
//       armed; it is disarmed by set_deadline (D3, D4), close (C1), the
//       destructor, and begin after a fire (step 1: the disarm then only
//       waits for the fire to return).
//   T3. The timer firing stops the interrupt source: every operation
//       parked on the side, or about to park, wakes and goes round (step
//       4); begin then finds the deadline passed (i/o timeout) or moved
//       later (it takes a fresh source and re-arms the timer).
//
// An operation (NetFd::run):
//   1. begin: under the mutex, fail with closed_error if closed. If the
//      side's interrupt source was stopped (its timer fired), disarm the
//      timer (waiting for the fire to return) and take a fresh source (T1).
//      If the side has a deadline and its timer is not armed: fail with
//      "i/o timeout" if the deadline has passed, else arm the timer for it
//      (T2). Count itself in flight and on its side; copy the side's
//      interrupt token.
//   2. Await the goro::io operation with that token (combined with the
//      Context's stop token when there is one: a stop_source of the
//      operation's own, requested by either) and with only the caller's own
//      deadlines (`extra_deadline`, the Context's): the side's deadline is
//      the timer's.
//   3. end: under the mutex, leave the counts; note whether the socket was
//      closed. If closed and this was the last operation in flight, close
//      the fd (step C3).
//   4. A result (data, an error of the system call) is returned as it is.
//      An operation cancelled or timed out returns closed_error when the
//      socket was closed, the caller's error when the caller's own stop or
//      deadline ended it, and otherwise (the interrupt: the side's deadline
//      passed, or moved, or a set_deadline woke it) starts again at step 1,
//      where the deadline decides.
// A deadline change (set_deadline):
//   D1. Under the mutex, store it.
//   D2. A deadline no earlier than the armed timer's leaves the timer as it
//       is (the common case: a server pushing its deadline further out on
//       each request). The timer fires at the old deadline once; the
//       operations parked then go round and re-arm it at the new one
//       (T3), one early wake-up per expiry of the old deadline instead of a
//       heap operation per change.
//   D3. No deadline (time_point::max()): the timer is disarmed; operations
//       parked keep waiting, now without a deadline.
//   D4. An earlier deadline than the armed timer's, or a deadline while
//       operations run with no timer armed: disarm the timer; with
//       operations running, swap in a fresh interrupt source (T1) and,
//       after unlocking, request a stop on the old one. Those operations
//       wake (goro::io cancels them on both pollers; one not parked yet
//       sees the stop before it parks) and go round, arming the timer for
//       the new deadline.
// So only D4 and a fired timer allocate (a new source's shared state);
// moving a deadline later costs a mutex section.
// Close (C1-C3):
//   C1. Under the mutex: fail with closed_error if already closed; set
//       closed_, disarm both timers, take both interrupt sources out; note
//       whether nothing is in flight.
//   C2. After unlocking, request a stop on both sources: every parked
//       operation wakes. goro::io guarantees it comes back only once the
//       kernel (io_uring) or the poller (epoll) is done with it, with its
//       real result if it completed first.
//   C3. The fd is closed (goro::io::close, which also drops epoll's
//       registration) by whoever sees closed_ with nothing in flight: the
//       closer at once if nothing was, else the last operation to leave.
//       No operation can start after C1 (step 1 refuses), so none is
//       pending when the number is released, and a recycled number never
//       reaches one.
// The NetFd itself is shared (std::shared_ptr) by the Conn and by each
// running operation, so a Conn destroyed while another goroutine is parked
// on it is closed, wakes that goroutine, and is freed when it leaves.
//
// Invariants: in_flight_ >= running(read) + running(write); the fd is open
// exactly while !closed_ || in_flight_ > 0 (or until the destructor runs,
// for a NetFd never closed); T1; an armed timer's deadline is no later
// than its side's deadline, unless D2 moved the deadline later (the timer
// then fires early, never late).
//
// Lock order: `mutex_`, then a P's timer lock (arm and disarm under the
// mutex). The fire runs under the timer lock and never takes `mutex_`.
//
// Costs: per operation, two uncontended mutex sections and a copy of a
// stop_token (one atomic increment); no timer and no clock read unless the
// timer must be armed. A Context that can be cancelled adds a stop_source
// (one allocation) and two stop_callbacks. try_send (Conn::try_write)
// waits for nothing, so it needs neither the loop nor a token: it is a
// with_fd call, two mutex sections around one send(2), and no coroutine
// frame.
//
// Rejected: a deadline timer per operation (goro::io's own deadline): a
// heap insert and remove and a clock read on every operation, which a
// server arming an idle deadline on each request pays on each request.
// Closing at once and relying on goro::io::close to end the
// parked operations (it does end every operation parked on the fd, on
// both pollers, but an operation between begin and the moment goro::io
// takes it would start on the released number, which another file may
// hold by then; with the count, the number is released once every
// operation has left, and goro::io::close finds none to cancel and costs
// a plain close(2)); shutdown(2)
// before close (it wakes a connected socket's waiters, but not those of
// an unconnected UDP socket, it changes what the peer sees, and the fd
// must still stay open until the woken operations have left); one
// stop_source per operation always (an allocation per read for the rare
// case of a parked deadline change); one reusable interrupt per side,
// reset once the operations it woke have left (std::stop_source
// cannot be reset once stopped, and goro::io takes a std::stop_token, so a
// reset is a new source anyway); cancelling the parked operation itself
// through goro::io (NetFd would have to register each operation's awaiter
// and keep it alive and started while it may cancel it, reaching into
// goro::io's internals).
#ifndef GORO_NET_NET_FD_HPP_
#define GORO_NET_NET_FD_HPP_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "error_internal.hpp"
#include "goro/clock.hpp"
#include "goro/context.hpp"
#include "goro/io.hpp"
#include "goro/io_multishot.hpp"
#include "goro/net/error.hpp"
#include "goro/stop_timer.hpp"
#include "goro/task.hpp"
#include "mutex.hpp"

namespace goro::net::internal {

enum class Side : std::uint8_t { kRead = 0, kWrite = 1 };

class NetFd {
 public:
  explicit NetFd(int fd) noexcept : fd_(fd) {}
  NetFd(const NetFd&) = delete;
  NetFd& operator=(const NetFd&) = delete;
  // Closes the fd unless close() did (no operation can be in flight: each
  // holds a reference).
  ~NetFd();

  // Steps C1-C3 above. closed_error("close") on a second close.
  absl::Status close();

  [[nodiscard]] bool closed() const {
    MutexLock lock(&mutex_);
    return closed_;
  }

  // Sets the side's deadline (Clock::time_point::max(): none), waking the
  // operations parked on it so that they take it.
  void set_deadline(Side side, Clock::time_point deadline);

  // The stream reads take the socket's bytes from when the runtime
  // receives through multishot requests (io::ReceiveStream::
  // multishot_active: io_uring with Config::multishot_receive), made by the
  // first read and stopped by close() (stop_receive_stream) after the
  // parked reads woke. Null otherwise: reads are plain goro::io::recv calls
  // on the fd, and a connection that only ever reads that way allocates
  // no stream. Called from the reading goroutine.
  io::ReceiveStream* receive_stream();

  // Runs `call(fd)` (a plain system call returning absl::Status or
  // StatusOr) with the fd held open; closed_error(operation) when closed.
  template <class Call>
  auto with_fd(const char* operation, Call call) -> decltype(call(0)) {
    if (absl::Status entered = enter(operation); !entered.ok()) return entered;
    auto result = call(fd_);
    leave();
    return result;
  }

  // One send(2) of what the socket takes now, without waiting: the bytes
  // sent, 0 when the send buffer is full. closed_error("write") when
  // closed; "write: i/o timeout" when the write deadline has passed (the
  // clock is read only when there is one); the send's error otherwise.
  // The fd is held open across the call as by with_fd.
  [[nodiscard]] absl::StatusOr<std::size_t> try_send(const void* data, std::size_t length);

  // OK while neither the side's deadline nor ctx's has passed and ctx is
  // not cancelled; else the status an operation would fail with. For the
  // operations that try a non-blocking system call before they wait.
  [[nodiscard]] absl::Status check_deadline(Side side, const Context& ctx, const char* operation);

  // The operation loop (steps 1-4 above). `start(fd, options)` returns the
  // goro::io awaiter of one attempt, whose result is absl::Status or
  // absl::StatusOr<T>; `operation` (a string literal) names it in errors.
  // `extra_deadline` and ctx's deadline bound it besides the side's
  // deadline, and ctx's stop token cancels it. A null `self` fails with
  // closed_error. The task holds `self`, so the NetFd outlives it; `start` is kept in the task's
  // frame and must own what it refers to or refer to what outlives the task.
  template <class Start>
  static auto run(std::shared_ptr<NetFd> self, Side side, const char* operation, Context ctx,
                  Clock::time_point extra_deadline, Start start)
      -> Task<std::decay_t<
          decltype(std::declval<decltype(start(0, io::IoOptions()))&>().await_resume())>>;

 private:
  struct SideState {
    Clock::time_point deadline = Clock::time_point::max();
    int running = 0;  // operations between begin and end on this side
    std::stop_source interrupt;
    StopTimer timer;  // stops `interrupt` at the deadline (T1-T3)
  };

  // Steps 1 and 3: begin gives the interrupt token to pass to goro::io;
  // end gives whether the socket was closed.
  absl::StatusOr<std::stop_token> begin(Side side, const char* operation);
  bool end(Side side);
  // Counts a plain system call in flight (with_fd, try_send), which
  // leave() ends: closed_error(operation) when closed. With
  // `write_deadline`, also reads the write side's deadline in the same
  // section.
  absl::Status enter(const char* operation, Clock::time_point* write_deadline = nullptr);
  // Leaves in_flight_ (a call enter counted), closing the fd if it was the
  // last.
  void leave();
  void release_fd() noexcept;
  void stop_receive_stream() noexcept;

  SideState& side_state(Side side) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return sides_[static_cast<int>(side)];
  }

  const int fd_;
  mutable Mutex mutex_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  bool released_ ABSL_GUARDED_BY(mutex_) = false;
  int in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  SideState sides_[2] ABSL_GUARDED_BY(mutex_);
  // Made once, under mutex_; acquire loads see it made (release store).
  std::atomic<io::ReceiveStream*> receive_stream_{nullptr};
};

// The status of a result, whichever of the two shapes it has.
inline const absl::Status& status_of(const absl::Status& status) noexcept { return status; }
template <class T>
const absl::Status& status_of(const absl::StatusOr<T>& result) noexcept {
  return result.status();
}

// Requests a stop on the source it points to (a stop_callback's body).
struct RequestStop {
  std::stop_source* source;
  void operator()() const noexcept { source->request_stop(); }
};

template <class Start>
auto NetFd::run(std::shared_ptr<NetFd> self, Side side, const char* operation, Context ctx,
                Clock::time_point extra_deadline, Start start)
    -> Task<std::decay_t<
        decltype(std::declval<decltype(start(0, io::IoOptions()))&>().await_resume())>> {
  using Result =
      std::decay_t<decltype(std::declval<decltype(start(0, io::IoOptions()))&>().await_resume())>;
  Clock::time_point outer_deadline = extra_deadline;
  if (auto context_deadline = ctx.deadline();
      context_deadline && *context_deadline < outer_deadline) {
    outer_deadline = *context_deadline;
  }
  if (self == nullptr) co_return closed_error(operation);  // a moved-from or default Conn
  const std::stop_token user_stop = ctx.stop_token();
  for (;;) {
    auto interrupt = self->begin(side, operation);
    if (!interrupt.ok()) co_return interrupt.status();
    std::optional<Result> result;
    if (!user_stop.stop_possible()) {
      result.emplace(co_await start(self->fd_, io::IoOptions(outer_deadline, *interrupt)));
    } else {
      std::stop_source combined;
      std::stop_callback<RequestStop> on_interrupt(*interrupt, RequestStop{&combined});
      std::stop_callback<RequestStop> on_user_stop(user_stop, RequestStop{&combined});
      result.emplace(
          co_await start(self->fd_, io::IoOptions(outer_deadline, combined.get_token())));
    }
    const bool closed = self->end(side);
    if (result->ok()) co_return std::move(*result);
    const absl::StatusCode code = status_of(*result).code();
    if (code == absl::StatusCode::kCancelled || code == absl::StatusCode::kDeadlineExceeded) {
      if (closed) co_return closed_error(operation);
      // Step 4: unless the caller's own stop or deadline ended it, the
      // interrupt did (the side's deadline passed or moved): begin decides.
      const bool caller_done =
          user_stop.stop_requested() ||
          (outer_deadline != Clock::time_point::max() && outer_deadline <= Clock::now());
      if (!caller_done) continue;
      if (code == absl::StatusCode::kCancelled && !ctx.err().ok()) {
        co_return annotate(ctx.err(), operation);
      }
      if (code == absl::StatusCode::kDeadlineExceeded) {
        co_return absl::DeadlineExceededError(std::string(operation) + ": i/o timeout");
      }
    }
    co_return annotate(status_of(*result), operation);
  }
}

}  // namespace goro::net::internal

#endif  // GORO_NET_NET_FD_HPP_
