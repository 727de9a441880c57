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
// as setsockopt); and per side (read, write) the deadline, a generation
// counter bumped by every deadline change, the number of operations
// running on that side (between begin and end), `interrupt`, a
// std::stop_source whose token each of those operations passes to goro::io
// as its stop token, and `interrupt_bound`, the latest deadline that an
// operation holding that token took in begin (the earliest time point
// when none does).
//
// Memory ordering: NetFd holds no atomic of its own. Every field is read
// and written under `mutex_`, which orders them between threads. The one
// signal that crosses threads outside it is request_stop() on an interrupt
// source (close, set_deadline): std::stop_source makes the request happen
// before the stop callbacks it runs (goro::io's cancellation of the
// parked operation) and before any stop_requested() that returns true.
// That is enough: a woken operation learns why it woke only in end(),
// under `mutex_`, after the closer or the deadline setter wrote the reason
// under the same mutex before requesting the stop.
//
// An operation (NetFd::run):
//   1. begin: under the mutex, fail with closed_error if closed; else
//      count itself in flight and on its side, copy the side's deadline,
//      generation and interrupt token, and raise interrupt_bound to that
//      deadline.
//   2. Await the goro::io operation with that deadline (or the caller's
//      Context's, if earlier) and that token (combined with the Context's
//      stop token when there is one: a stop_source of the operation's own,
//      requested by either).
//   3. end: under the mutex, leave the counts (the last operation of its
//      side resets interrupt_bound); note whether the socket was closed
//      and whether the side's generation moved. If closed and this was the
//      last operation in flight, close the fd (step C3).
//   4. A result (data, an error of the system call) is returned as it is.
//      An operation ended by the interrupt returns closed_error when the
//      socket was closed, and starts again at step 1 when the deadline
//      changed (the new deadline, possibly already past, then decides). So
//      does one ended by its old deadline when the deadline was changed to
//      a later one meanwhile.
// A deadline change (set_deadline):
//   D1. Under the mutex, store it and bump the generation.
//   D2. A deadline no earlier than interrupt_bound (the common case: a
//       server pushing the deadline further out on each request, or no
//       operation running) wakes nobody. Each running operation that
//       holds the current token took a deadline no later than the new one,
//       so its own goro::io deadline ends it no later than the new deadline
//       would; if that happens, end sees the generation moved and step 4
//       sends it round with the new deadline. Data that arrives first
//       completes it as always. (One holding an earlier token was stopped
//       by D3 already and goes round anyway.)
//   D3. An earlier deadline, with operations running on that side: swap in
//       a fresh interrupt source and reset interrupt_bound (no operation
//       holds the new token yet); after unlocking, request a stop on the
//       old one. Those operations wake (goro::io cancels them on both
//       pollers; one not parked yet sees the stop before it parks), see
//       the new generation and go round again, taking the new token.
// So only D3 allocates (the new source's shared state), and only D3
// cancels a parked operation at once; D2 costs at most one early wake-up
// per running operation, at the deadline it parked with.
// Close (C1-C3):
//   C1. Under the mutex: fail with closed_error if already closed; set
//       closed_, take both interrupt sources out; note whether nothing is
//       in flight.
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
// for a NetFd never closed); an interrupt source is swapped only with
// operations running on its side; every running operation that holds a
// side's current interrupt token took a deadline no later than that
// side's interrupt_bound (so an operation D2 leaves parked is ended by its
// own deadline no later than the deadline D2 stored).
//
// Costs: per operation, two uncontended mutex sections and a copy of a
// stop_token (one atomic increment). A Context that can be cancelled adds
// a stop_source (one allocation) and two stop_callbacks. A deadline change
// allocates only in D3.
//
// Rejected: closing at once and relying on goro::io::close to end the
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
// case of a parked deadline change). For deadline changes: a fresh
// interrupt source on every change while an operation runs (an allocation,
// a cancel and a resubmission of the parked operation per change, which a
// server refreshing its deadlines on each request pays per request); one
// reusable interrupt per side, reset once no operation of the old
// generation remains (std::stop_source cannot be reset once stopped, and
// goro::io takes a std::stop_token, so a reset is a new source anyway);
// cancelling the parked operation itself through goro::io (NetFd would
// have to register each operation's awaiter and keep it alive and started
// while it may cancel it, reaching into goro::io's internals for a case
// that D2 already makes free).
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
    {
      MutexLock lock(&mutex_);
      if (closed_) return closed_error(operation);
      ++in_flight_;
    }
    auto result = call(fd_);
    leave();
    return result;
  }

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
    std::uint64_t generation = 0;
    int running = 0;  // operations between begin and end on this side
    // The latest deadline an operation holding `interrupt`'s token took in
    // begin; the earliest time point when none does (steps D2 and D3).
    Clock::time_point interrupt_bound = Clock::time_point::min();
    std::stop_source interrupt;
  };
  struct Ticket {
    Clock::time_point deadline;
    std::uint64_t generation;
    std::stop_token interrupt;
  };
  enum class Outcome : std::uint8_t { kUnchanged, kClosed, kDeadlineChanged };

  absl::StatusOr<Ticket> begin(Side side, const char* operation);
  Outcome end(Side side, const Ticket& ticket);
  // Leaves in_flight_ (a with_fd call), closing the fd if it was the last.
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
    auto ticket = self->begin(side, operation);
    if (!ticket.ok()) co_return ticket.status();
    const Clock::time_point deadline = std::min(ticket->deadline, outer_deadline);
    std::optional<Result> result;
    if (!user_stop.stop_possible()) {
      result.emplace(co_await start(self->fd_, io::IoOptions(deadline, ticket->interrupt)));
    } else {
      std::stop_source combined;
      std::stop_callback<RequestStop> on_interrupt(ticket->interrupt, RequestStop{&combined});
      std::stop_callback<RequestStop> on_user_stop(user_stop, RequestStop{&combined});
      result.emplace(co_await start(self->fd_, io::IoOptions(deadline, combined.get_token())));
    }
    const Outcome outcome = self->end(side, *ticket);
    if (result->ok()) co_return std::move(*result);
    const absl::StatusCode code = status_of(*result).code();
    if (code == absl::StatusCode::kCancelled || code == absl::StatusCode::kDeadlineExceeded) {
      if (outcome == Outcome::kClosed) co_return closed_error(operation);
      // The Conn's deadline moved: go round with the new one, unless the
      // caller's own deadline or stop is what ended the operation.
      const bool caller_done = user_stop.stop_requested() || outer_deadline <= Clock::now();
      if (outcome == Outcome::kDeadlineChanged && !caller_done) continue;
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
