// net/net_fd.cpp: NetFd's mutex sections (the mechanism is described in
// net_fd.hpp).
#include "net_fd.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace goro::net::internal {

NetFd::~NetFd() {
  // No operation is in flight (each holds a reference), so only a timer
  // armed by the last one can still fire: disarming waits for that.
  for (SideState& state : sides_) (void)state.timer.disarm();
  // Acquire: pairs with the release store in receive_stream().
  delete receive_stream_.load(std::memory_order_acquire);
  bool release;
  {
    MutexLock lock(&mutex_);
    release = !released_;
    released_ = true;
  }
  if (release) (void)io::close(fd_);
}

absl::Status NetFd::close() {
  // Without state (a default-constructed source allocates its own).
  std::stop_source read_interrupt(std::nostopstate);
  std::stop_source write_interrupt(std::nostopstate);
  bool release_now;
  {
    MutexLock lock(&mutex_);
    if (closed_) return closed_error("close");
    closed_ = true;
    // C1: no fire after this (T1), so the sources can be taken out.
    (void)side_state(Side::kRead).timer.disarm();
    (void)side_state(Side::kWrite).timer.disarm();
    read_interrupt = std::move(side_state(Side::kRead).interrupt);
    write_interrupt = std::move(side_state(Side::kWrite).interrupt);
    release_now = in_flight_ == 0;
    if (release_now) released_ = true;
  }
  // Wakes every parked operation (step C2); a moved-from source without
  // state does nothing.
  read_interrupt.request_stop();
  write_interrupt.request_stop();
  stop_receive_stream();
  if (!release_now) return absl::OkStatus();  // the last operation closes the fd
  absl::Status status = io::close(fd_);
  return annotate(status, "close");
}

void NetFd::set_deadline(Side side, Clock::time_point deadline) {
  // Without state: only D4 gives it one (a default-constructed source
  // would allocate on every change).
  std::stop_source woken(std::nostopstate);
  {
    MutexLock lock(&mutex_);
    SideState& state = side_state(side);
    state.deadline = deadline;  // D1
    if (closed_) return;
    const bool armed = state.timer.armed();
    if (deadline == Clock::time_point::max()) {
      if (armed) (void)state.timer.disarm();  // D3
    } else if (!armed || deadline < state.timer.deadline()) {
      // D4 (D2, a later deadline with the timer armed, leaves it).
      if (armed) (void)state.timer.disarm();
      if (state.running > 0) woken = std::exchange(state.interrupt, std::stop_source());
    }
  }
  woken.request_stop();  // does nothing without state
}

absl::StatusOr<std::stop_token> NetFd::begin(Side side, const char* operation) {
  MutexLock lock(&mutex_);
  if (closed_) return closed_error(operation);
  SideState& state = side_state(side);
  if (state.interrupt.stop_requested()) {
    // Step 1: the timer fired (T3). Disarming waits for its fire to return;
    // then the source may be replaced (T1).
    (void)state.timer.disarm();
    state.interrupt = std::stop_source();
  }
  if (state.deadline != Clock::time_point::max() && !state.timer.armed()) {
    if (state.deadline <= Clock::now()) {
      return absl::DeadlineExceededError(std::string(operation) + ": i/o timeout");
    }
    state.timer.arm(state.deadline, &state.interrupt);  // T2
  }
  ++in_flight_;
  ++state.running;
  return state.interrupt.get_token();
}

bool NetFd::end(Side side) {
  bool closed = false;
  bool release = false;
  {
    MutexLock lock(&mutex_);
    --side_state(side).running;
    --in_flight_;
    closed = closed_;
    if (closed) {
      release = in_flight_ == 0 && !released_;
      if (release) released_ = true;
    }
  }
  if (release) release_fd();
  return closed;
}

void NetFd::leave() {
  bool release = false;
  {
    MutexLock lock(&mutex_);
    --in_flight_;
    release = closed_ && in_flight_ == 0 && !released_;
    if (release) released_ = true;
  }
  if (release) release_fd();
}

absl::Status NetFd::check_deadline(Side side, const Context& ctx, const char* operation) {
  Clock::time_point deadline;
  {
    MutexLock lock(&mutex_);
    if (closed_) return closed_error(operation);
    deadline = side_state(side).deadline;
  }
  if (auto context_deadline = ctx.deadline(); context_deadline && *context_deadline < deadline) {
    deadline = *context_deadline;
  }
  if (deadline != Clock::time_point::max() && deadline <= Clock::now()) {
    return absl::DeadlineExceededError(std::string(operation) + ": i/o timeout");
  }
  if (ctx.cancelled()) return annotate(ctx.err(), operation);
  return absl::OkStatus();
}

absl::Status NetFd::enter(const char* operation, Clock::time_point* write_deadline) {
  MutexLock lock(&mutex_);
  if (closed_) return closed_error(operation);
  if (write_deadline != nullptr) *write_deadline = side_state(Side::kWrite).deadline;
  ++in_flight_;
  return absl::OkStatus();
}

absl::StatusOr<std::size_t> NetFd::try_send(const void* data, std::size_t length) {
  Clock::time_point deadline;
  if (absl::Status entered = enter("write", &deadline); !entered.ok()) return entered;
  absl::StatusOr<std::size_t> result;
  if (deadline != Clock::time_point::max() && deadline <= Clock::now()) {
    result = absl::DeadlineExceededError("write: i/o timeout");
  } else {
    for (;;) {
      const ssize_t n = ::send(fd_, data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        result = static_cast<std::size_t>(n);
        break;
      }
      if (errno == EINTR) continue;
      result = errno == EAGAIN || errno == EWOULDBLOCK ? absl::StatusOr<std::size_t>(0)
                                                       : errno_error(errno, "write: send");
      break;
    }
  }
  leave();
  return result;
}

void NetFd::release_fd() noexcept { (void)io::close(fd_); }

io::ReceiveStream* NetFd::receive_stream() {
  // Acquire: pairs with the release store below (the stream is built).
  if (io::ReceiveStream* stream = receive_stream_.load(std::memory_order_acquire)) return stream;
  // The same answer for every read of this runtime, so no read takes the
  // plain path while another has bytes queued in a stream.
  if (!io::ReceiveStream::multishot_active()) return nullptr;
  MutexLock lock(&mutex_);
  io::ReceiveStream* stream = receive_stream_.load(std::memory_order_relaxed);  // under the lock
  if (stream == nullptr) {
    stream = new io::ReceiveStream(fd_);
    receive_stream_.store(stream, std::memory_order_release);
  }
  return stream;
}

// Cancels the multishot receive and drops the bytes it queued for nobody.
void NetFd::stop_receive_stream() noexcept {
  // Acquire: pairs with the release store in receive_stream().
  if (io::ReceiveStream* stream = receive_stream_.load(std::memory_order_acquire)) stream->stop();
}

}  // namespace goro::net::internal
