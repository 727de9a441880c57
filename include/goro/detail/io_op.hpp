// goro/detail/io_op.hpp
//
// Defines: goro::detail::IoOp (one operation on a file descriptor, embedded
// in the awaiter in the waiting goroutine's frame), goro::detail::IoAwaiter
// (the awaiter behind goro::io's operations) and the runtime entry points it
// calls.
//
// An IoOp lives in the coroutine frame of the goroutine that waits for it,
// so an operation allocates nothing. The poller (lib/poller.hpp) links it
// into its own structures while it is in flight: io_uring carries its
// address in the SQE's user_data, epoll links it into the fd's waiter list.
// The goroutine is resumed only once the operation is over for the poller
// too (its CQE arrived, or it left the waiter list): its buffer and the
// IoOp itself are in the frame.
//
// A deadline is a TimerNode armed in the current P's heap; a cancellation
// is a std::stop_callback. Both call io_cancel, which asks the poller to end
// the operation early; the operation then completes with -ECANCELED (or
// with its real result if it finished first: data is never dropped).
// Destroying the awaiter disarms the timer and the callback, and both wait
// for a call in progress, so a cancel never touches a dead frame.
#ifndef GORO_DETAIL_IO_OP_HPP_
#define GORO_DETAIL_IO_OP_HPP_

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stop_token>

#include "goro/detail/timer.hpp"

namespace goro::detail {

struct G;
// A multishot source (lib/multishot.hpp): opaque here.
struct MultishotSource;

enum class IoKind : std::uint8_t {
  kRead,     // read(2): buffer, length
  kWrite,    // write(2): buffer, length
  kRecv,     // recv(2): buffer, length, flags
  kSend,     // send(2): buffer, length, flags | MSG_NOSIGNAL
  kAccept,   // accept4(2): address, address_length_out (SOCK_CLOEXEC)
  kConnect,  // connect(2): address, address_length
  kPoll,     // poll(2) for `flags` (POLLIN, POLLOUT...): result is revents
};

// Why an operation was cancelled (IoOp::cancel); the first reason wins.
// kClosed: goro::io::close(fd) ended it while it was parked.
enum class IoCancel : std::uint32_t { kNone = 0, kDeadline = 1, kCancelled = 2, kClosed = 3 };

// What to do: the arguments of the system call.
struct IoRequest {
  IoKind kind = IoKind::kRead;
  int fd = -1;
  int flags = 0;
  void* buffer = nullptr;
  std::size_t length = 0;
  const sockaddr* address = nullptr;        // kConnect
  socklen_t address_length = 0;             // kConnect
  socklen_t* address_length_out = nullptr;  // kAccept (address in `buffer`; both may be null)
  // kAccept, kRecv: the multishot source that serves the op where the backend
  // has multishot operations (lib/multishot.hpp); a backend without them
  // ignores it and runs the one-shot call on `fd`.
  MultishotSource* multishot = nullptr;
};

// The most bytes one operation moves: Linux's MAX_RW_COUNT (INT_MAX rounded
// down to a 4 KiB page), which read(2) and write(2) never exceed anyway.
// Longer requests are clamped to it, so that the length fits an SQE's
// 32-bit field and the result fits IoOp::result; the caller sees a short
// transfer, as from the kernel.
inline constexpr std::size_t kMaxIoLength = 0x7ffff000;

// Whether the caller asked not to wait (recv/send with MSG_DONTWAIT): then
// EAGAIN is the answer, not a reason to park.
inline bool io_never_waits(const IoRequest& r) noexcept {
  return (r.kind == IoKind::kRecv || r.kind == IoKind::kSend) && (r.flags & MSG_DONTWAIT) != 0;
}

struct IoOp {
  IoRequest request;
  // The outcome: >= 0 as the system call returns it, or -errno.
  int result = 0;
  // The parked goroutine.
  G* g = nullptr;
  // An IoCancel value; set once, by a compare-exchange from kNone, from any
  // thread (a deadline timer, a stop callback).
  std::atomic<std::uint32_t> cancel{0};
  // The poller that holds the operation (opaque; set by io_start), which
  // io_cancel asks to end it from any thread.
  void* poller = nullptr;
  // io_uring: the user_data its SQE carries (the address plus a sequence
  // number in the top 16 bits, so a stale cancel can never hit a later
  // operation at the same address).
  std::uint64_t user_data = 0;
  // io_uring: how many closes its ring had taken when the op started, so
  // that a CQE reaped after a close of its fd cannot resubmit it.
  std::uint64_t close_epoch = 0;
  // Poller-private links and flags.
  IoOp* next = nullptr;
  bool connect_started = false;  // epoll: connect(2) returned EINPROGRESS
  bool repoll = false;           // io_uring: waiting for readiness after -EAGAIN
};

// Tries the operation at once where the backend allows (epoll: one
// non-blocking system call). Returns true when it is complete (op.result
// set), false when the goroutine must wait.
[[nodiscard]] bool io_try(IoOp& op) noexcept;
// Hands the operation to the current P's poller for goroutine `awaiting`
// (must be called from a goroutine). Returns false if it completed on the
// spot.
[[nodiscard]] bool io_start(IoOp& op, std::coroutine_handle<> awaiting) noexcept;
// Parks the goroutine unless the operation completed (or was cancelled)
// during set-up. Returns false to continue at once.
[[nodiscard]] bool io_commit(IoOp& op) noexcept;
// Asks for `op` to end early for `reason`. Any thread; idempotent.
void io_cancel(IoOp& op, IoCancel reason) noexcept;

// Multishot sources (lib/multishot.hpp). A new source of accepted
// connections on listening socket `fd`, holding one reference for the
// caller.
[[nodiscard]] MultishotSource* make_multishot_accept(int fd);
// A new source of the bytes received on connected socket `fd`.
[[nodiscard]] MultishotSource* make_multishot_receive(int fd);
// Stops `source` (any thread): later and parked ops fail with -EBADF,
// queued results are released (accepted fds closed), and the kernel's
// multishot request is cancelled.
void stop_multishot(MultishotSource& source) noexcept;
// Drops the creator's reference (after stop_multishot).
void release_multishot(MultishotSource& source) noexcept;

// Deadline and stop-token plumbing shared by every operation's awaiter.
class IoAwaiter {
 public:
  IoAwaiter(const IoRequest& request, std::int64_t deadline_ns, std::stop_token stop) noexcept
      : stop_token_(std::move(stop)) {
    op_.request = request;
    deadline_.node.when = deadline_ns;
    deadline_.op = &op_;
  }
  IoAwaiter(const IoAwaiter&) = delete;
  IoAwaiter& operator=(const IoAwaiter&) = delete;
  ~IoAwaiter() { disarm(); }

  bool await_ready() noexcept {
    // The deadline first: a context whose deadline passed has cancelled its
    // stop token too, and the operation reports the deadline (as Go's
    // ctx.Err() does), however late this goroutine got here.
    if (has_deadline() && deadline_.node.when <= monotonic_now_ns()) {
      return cancel_now(IoCancel::kDeadline);
    }
    if (stop_token_.stop_requested()) return cancel_now(IoCancel::kCancelled);
    return io_try(op_);
  }

  bool await_suspend(std::coroutine_handle<> awaiting) {
    if (!io_start(op_, awaiting)) return false;
    if (has_deadline()) {
      deadline_.node.fire = &Deadline::fire;
      arm_timer(&deadline_.node);
    }
    if (stop_token_.stop_possible()) {
      stop_callback_.emplace(stop_token_, StopCanceller{&op_, deadline_.node.when});
    }
    // After a true return the goroutine may run anywhere at once.
    return io_commit(op_);
  }

 protected:
  // The outcome after await_resume: the timer and the callback are over.
  [[nodiscard]] int finish() noexcept {
    disarm();
    return op_.result;
  }
  [[nodiscard]] IoCancel cancel_reason() const noexcept {
    return static_cast<IoCancel>(op_.cancel.load(std::memory_order_acquire));
  }

  IoOp op_;

 private:
  struct Deadline {
    TimerNode node;  // first member: fire() casts back
    IoOp* op = nullptr;
    static void fire(TimerNode* node) noexcept {
      io_cancel(*reinterpret_cast<Deadline*>(node)->op, IoCancel::kDeadline);
    }
  };
  // A stop request that arrives once the deadline has passed (a context
  // cancelled by its own deadline) reports the deadline, as above.
  struct StopCanceller {
    IoOp* op;
    std::int64_t deadline_ns;
    void operator()() const noexcept {
      io_cancel(*op, deadline_ns != kNoDeadline && deadline_ns <= monotonic_now_ns()
                         ? IoCancel::kDeadline
                         : IoCancel::kCancelled);
    }
  };

  [[nodiscard]] bool has_deadline() const noexcept { return deadline_.node.when != kNoDeadline; }
  bool cancel_now(IoCancel reason) noexcept {
    op_.cancel.store(static_cast<std::uint32_t>(reason), std::memory_order_relaxed);
    op_.result = -ECANCELED;
    return true;
  }
  void disarm() noexcept {
    // Both wait for a fire or callback in progress (it touches op_).
    if (deadline_.node.fire != nullptr) disarm_timer(&deadline_.node);
    stop_callback_.reset();
  }

 public:
  static constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();

 private:
  Deadline deadline_;
  std::stop_token stop_token_;
  std::optional<std::stop_callback<StopCanceller>> stop_callback_;
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_IO_OP_HPP_
