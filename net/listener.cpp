// net/listener.cpp: listen and accept (goro/net/listener.hpp).
//
// listen is open_bound_socket (net/socket.cpp: parse, resolve, socket,
// options, bind, listen) for SOCK_STREAM, wrapped in a Listener.
// accept is NetFd::run of the listener's goro::io::AcceptStream (a
// multishot accept under io_uring, goro/io_multishot.hpp; close and
// deadlines wake it, net_fd.hpp); ECONNABORTED (a connection reset while
// it was queued) goes round again; a new TCP connection gets TCP_NODELAY
// and keep-alive. close stops the stream after closing the socket
// (stop_multishot_accept), which cancels the kernel's request and closes
// the connections accepted for nobody.
//
// Running out of file descriptors (EMFILE: this process; ENFILE: the
// system). accept4(2) fails before it looks at the queue, so the failure
// repeats at once for as long as the shortage lasts, and the connections
// queued meanwhile wait for nothing: their peers see a silent server. An
// accept that meets it does not return it; it goes round:
//   E1. Shed one queued connection with the reserve fd: a descriptor
//       (/dev/null) held by the process from its first listen for this
//       alone. Under a process-wide lock: close the reserve, accept one
//       connection without waiting (O_NONBLOCK for that one call), close
//       it at once, reopen the reserve. The peer sees its connection end
//       (end of stream; a reset if it had sent data we never read)
//       instead of hanging. With nothing queued, nothing is shed.
//   E2. Pause, then accept again: 5 ms, doubling up to 1 s per accept
//       call while the shortage lasts, so a listener never spins. The
//       pause is a goro::io::poll for input on an eventfd nobody writes
//       (opened with the reserve), run by NetFd with the pause's end as
//       its deadline: close, the listener's deadline and the context end
//       it as they end a parked accept.
//   Another thread may take the number the reserve gave up (E1) before the
//   accept does; then nothing is shed, and the reserve is reopened by the
//   next shed or listen that finds a free descriptor. Sheds and pauses are
//   counted (tests read the counts: shortage_counts_for_testing).
//   Rejected: returning EMFILE to the caller, as Go does (every server loop
//   would need its own back-off, and most spin or exit); a reserve per
//   listener (a descriptor per listener for a rare event); sleeping with
//   goro::sleep (close would wait for the pause to end).
#include "goro/net/listener.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <utility>

#include "conn_access.hpp"
#include "fd_shortage.hpp"
#include "goro/time.hpp"
#include "mutex.hpp"
#include "net_fd.hpp"
#include "socket.hpp"

namespace goro::net {

using internal::NetFd;
using internal::Side;

namespace {

// One accept from the listener's stream (which knows the fd).
struct AcceptFrom {
  io::AcceptStream* accepts;
  io::FdAwaiter operator()(int, const io::IoOptions& options) const {
    return accepts->accept(options);
  }
};

// Cancels the listener's multishot accept and closes the connections it
// accepted for nobody (after the socket's close woke the parked accepts).
void stop_multishot_accept(io::AcceptStream* accepts) {
  if (accepts != nullptr) accepts->stop();
}

}  // namespace

Listener::Listener() noexcept = default;
Listener::Listener(std::shared_ptr<NetFd> socket, std::shared_ptr<io::AcceptStream> accepts,
                   Addr address, std::string unlink_path) noexcept
    : socket_(std::move(socket)),
      accepts_(std::move(accepts)),
      address_(address),
      unlink_path_(std::move(unlink_path)) {}
Listener::Listener(Listener&& other) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    (void)close();
    socket_ = std::move(other.socket_);
    accepts_ = std::move(other.accepts_);
    address_ = other.address_;
    unlink_path_ = std::move(other.unlink_path_);
  }
  return *this;
}
Listener::~Listener() { (void)close(); }

absl::Status Listener::close() {
  absl::Status status = internal::close_bound(socket_.get(), unlink_path_);
  if (status.ok()) stop_multishot_accept(accepts_.get());
  return status;
}

void Listener::set_deadline(Clock::time_point deadline) {
  if (socket_ != nullptr) socket_->set_deadline(Side::kRead, deadline);
}

namespace {

// The process's defence against running out of descriptors (E1-E2 above).
class FdShortage {
 public:
  // At listen: opens the reserve and the pause eventfd where they are not
  // open (best effort: a listener without them still works, and pauses
  // with goro::sleep).
  void prepare() {
    internal::MutexLock lock(&mutex_);
    reopen_reserve();
    if (pause_fd_ < 0) pause_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  // E1 for listening socket `listening_fd`.
  void shed_one(int listening_fd) {
    internal::MutexLock lock(&mutex_);
    if (reserve_fd_ < 0) {
      reopen_reserve();
      return;
    }
    ::close(reserve_fd_);  // never given to goro::io: nothing can be parked on it
    reserve_fd_ = -1;
    const int flags = ::fcntl(listening_fd, F_GETFL);
    const bool set_nonblocking = flags >= 0 && (flags & O_NONBLOCK) == 0;
    if (set_nonblocking) ::fcntl(listening_fd, F_SETFL, flags | O_NONBLOCK);
    const int pending = ::accept4(listening_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (set_nonblocking) ::fcntl(listening_fd, F_SETFL, flags);
    if (pending >= 0) {
      ::close(pending);  // never given to goro::io
      // Relaxed: a count for tests, read after the accepts it counts.
      shed_.fetch_add(1, std::memory_order_relaxed);
    }
    reopen_reserve();
  }

  // The eventfd a pause polls (-1: none could be opened).
  int pause_fd() {
    internal::MutexLock lock(&mutex_);
    return pause_fd_;
  }

  void count_pause() noexcept {
    pauses_.fetch_add(1, std::memory_order_relaxed);
  }  // relaxed: as shed_
  [[nodiscard]] internal::ShortageCounts counts() const noexcept {
    return {shed_.load(std::memory_order_relaxed), pauses_.load(std::memory_order_relaxed)};
  }

 private:
  void reopen_reserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  internal::Mutex mutex_;
  int reserve_fd_ ABSL_GUARDED_BY(mutex_) = -1;
  int pause_fd_ ABSL_GUARDED_BY(mutex_) = -1;  // opened once, never closed
  std::atomic<std::uint64_t> shed_{0};
  std::atomic<std::uint64_t> pauses_{0};
};

FdShortage& fd_shortage() {
  static auto* shortage = new FdShortage;  // never destroyed: listeners may outlive main
  return *shortage;
}

constexpr std::chrono::milliseconds kFirstPause{5};
constexpr std::chrono::milliseconds kLongestPause{1000};

// E2's wait: input on an eventfd nobody writes, so only the deadline, a
// stop or a close ends it.
struct WaitForNothing {
  int never_ready_fd;
  io::EventsAwaiter operator()(int /*listening_fd*/, const io::IoOptions& options) const {
    return io::poll(never_ready_fd, POLLIN, options);
  }
};

// E2: pauses `pause`; OK to accept again, or why accepting ends.
Task<absl::Status> pause_accepting(std::shared_ptr<NetFd> socket, Context ctx,
                                   std::chrono::milliseconds pause) {
  fd_shortage().count_pause();
  const int never_ready_fd = fd_shortage().pause_fd();
  if (never_ready_fd < 0) {
    co_await goro::sleep(pause);
  } else {
    auto waited = co_await NetFd::run(socket, Side::kRead, "accept", ctx, Clock::now() + pause,
                                      WaitForNothing{never_ready_fd});
    if (!waited.ok() && waited.status().code() != absl::StatusCode::kDeadlineExceeded) {
      co_return waited.status();  // closed, or the context was cancelled
    }
  }
  // The pause's own end, or the listener's or the context's deadline.
  co_return socket->check_deadline(Side::kRead, ctx, "accept");
}

Task<absl::StatusOr<Conn>> accept_on(std::shared_ptr<NetFd> socket,
                                     std::shared_ptr<io::AcceptStream> accepts, bool is_ip,
                                     Context ctx) {
  if (socket == nullptr) co_return closed_error("accept");
  std::chrono::milliseconds pause = kFirstPause;
  for (;;) {
    auto fd = co_await NetFd::run(socket, Side::kRead, "accept", ctx, Clock::time_point::max(),
                                  AcceptFrom{accepts.get()});
    if (!fd.ok()) {
      const std::optional<int> error = errno_of(fd.status());
      if (error == ECONNABORTED) continue;
      if (error == EMFILE || error == ENFILE) {
        // E1 and E2 of the top of this file.
        absl::Status shed = socket->with_fd("accept", [](int listening_fd) {
          fd_shortage().shed_one(listening_fd);
          return absl::OkStatus();
        });
        if (!shed.ok()) co_return shed;  // closed meanwhile
        absl::Status paused = co_await pause_accepting(socket, ctx, pause);
        if (!paused.ok()) co_return paused;
        pause = std::min(2 * pause, kLongestPause);
        continue;
      }
      co_return fd.status();
    }
    Conn conn = internal::ConnAccess::make(std::make_shared<NetFd>(*fd));
    if (is_ip) {
      internal::set_connection_options(*fd, "accept");
    }
    co_return conn;
  }
}

}  // namespace

GORO_CORO_WRAPPER Task<absl::StatusOr<Conn>> Listener::accept(Context ctx) {
  return accept_on(socket_, accepts_, address_.is_ip(), std::move(ctx));
}

Task<absl::StatusOr<Listener>> listen(std::string network, std::string address,
                                      ListenOptions options) {
  std::string context = "listen " + network + " " + address;
  auto bound = co_await internal::open_bound_socket(std::move(network), std::move(address), options,
                                                    SOCK_STREAM, std::move(context));
  if (!bound.ok()) co_return bound.status();
  fd_shortage().prepare();
  co_return Listener(std::make_shared<NetFd>(bound->fd),
                     std::make_shared<io::AcceptStream>(bound->fd), bound->address,
                     std::move(bound->unlink_path));
}

namespace internal {

ShortageCounts shortage_counts_for_testing() noexcept { return fd_shortage().counts(); }

}  // namespace internal

}  // namespace goro::net
