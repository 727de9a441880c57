// net/listener.cpp: listen and accept (goro/net/listener.hpp).
//
// listen, step by step:
//   1. Parse the network; for a Unix socket build the address (step 5).
//   2. TCP: an empty host or "::" on "tcp" is the wildcard of a dual-stack
//      AF_INET6 socket with IPV6_V6ONLY off (or "0.0.0.0" when the kernel
//      refuses AF_INET6); "tcp4" takes 0.0.0.0, "tcp6" takes "::" with
//      IPV6_V6ONLY on. Another host is resolved (net::resolve), and the
//      first address of the network's family, IPv4 first for "tcp", is
//      used, as Go does.
//   3. socket, SO_REUSEADDR (and SO_REUSEPORT when asked), bind, listen.
//   4. getsockname gives addr(), with the port the kernel chose.
//   5. Unix: bind; on EADDRINUSE with remove_stale, a blocking connect to
//      the path tells whether anyone listens there (answered at once by
//      the local kernel); refused means stale, so unlink and bind again.
//      The path is removed again by close.
// Steps 1-5 (open_bound_socket) serve listen_packet too, without listen(2).
// accept is NetFd::run of goro::io::accept (so close and deadlines wake it,
// net_fd.hpp); ECONNABORTED (a connection reset while it was queued) goes
// round again; a new TCP connection gets TCP_NODELAY and keep-alive.
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
#include <netinet/tcp.h>
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

constexpr int kKeepAliveSeconds = 15;

struct Accept {
  sockaddr_storage* address;
  socklen_t* length;
  io::FdAwaiter operator()(int fd, const io::IoOptions& options) const {
    *length = sizeof(sockaddr_storage);
    return io::accept(fd, reinterpret_cast<sockaddr*>(address), length, options);
  }
};

// A socket bound to `address` (and listening, for a stream socket); the
// fd, or why not.
absl::StatusOr<int> bind_and_listen(const Addr& address, int type, const ListenOptions& options,
                                    std::optional<bool> v6_only, const std::string& context) {
  auto fd = internal::make_socket(address.family(), type, /*nonblocking=*/false, context);
  if (!fd.ok()) return fd.status();
  auto fail = [&](absl::Status status) {
    ::close(*fd);
    return status;
  };
  if (address.is_ip()) {
    if (auto s = internal::set_int_option(*fd, SOL_SOCKET, SO_REUSEADDR, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (options.reuse_port) {
    if (auto s = internal::set_int_option(*fd, SOL_SOCKET, SO_REUSEPORT, 1, context); !s.ok()) {
      return fail(s);
    }
  }
  if (v6_only) {
    if (auto s =
            internal::set_int_option(*fd, IPPROTO_IPV6, IPV6_V6ONLY, *v6_only ? 1 : 0, context);
        !s.ok()) {
      return fail(s);
    }
  }
  if (::bind(*fd, address.sockaddr_pointer(), address.length()) != 0) {
    return fail(internal::errno_error(errno, context + ": bind"));
  }
  if (type == SOCK_STREAM && ::listen(*fd, options.backlog) != 0) {
    return fail(internal::errno_error(errno, context + ": listen"));
  }
  return *fd;
}

// Whether a Unix socket file at `address` has nobody accepting on it.
bool unix_socket_is_stale(const Addr& address, int type) {
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool refused =
      ::connect(probe, address.sockaddr_pointer(), address.length()) != 0 && errno == ECONNREFUSED;
  ::close(probe);
  return refused;
}

}  // namespace

Listener::Listener() noexcept = default;
Listener::Listener(std::shared_ptr<NetFd> socket, Addr address, std::string unlink_path) noexcept
    : socket_(std::move(socket)), address_(address), unlink_path_(std::move(unlink_path)) {}
Listener::Listener(Listener&& other) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    (void)close();
    socket_ = std::move(other.socket_);
    address_ = other.address_;
    unlink_path_ = std::move(other.unlink_path_);
  }
  return *this;
}
Listener::~Listener() { (void)close(); }

absl::Status Listener::close() {
  if (socket_ == nullptr) return closed_error("close");
  absl::Status status = socket_->close();
  if (status.ok() && !unlink_path_.empty()) {
    ::unlink(unlink_path_.c_str());
    unlink_path_.clear();
  }
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

Task<absl::StatusOr<Conn>> accept_on(std::shared_ptr<NetFd> socket, Context ctx) {
  if (socket == nullptr) co_return closed_error("accept");
  std::chrono::milliseconds pause = kFirstPause;
  for (;;) {
    sockaddr_storage address{};
    socklen_t length = 0;
    auto fd = co_await NetFd::run(socket, Side::kRead, "accept", ctx, Clock::time_point::max(),
                                  Accept{&address, &length});
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
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
      // Best effort, as in Go: a connection without them still works.
      (void)internal::set_int_option(*fd, IPPROTO_TCP, TCP_NODELAY, 1, "accept");
      (void)internal::set_keepalive(*fd, kKeepAliveSeconds);
    }
    co_return conn;
  }
}

}  // namespace

GORO_CORO_WRAPPER Task<absl::StatusOr<Conn>> Listener::accept(Context ctx) {
  return accept_on(socket_, std::move(ctx));
}

namespace internal {

Task<absl::StatusOr<BoundSocket>> open_bound_socket(std::string network, std::string address,
                                                    ListenOptions options, int type,
                                                    std::string context) {
  auto parsed = parse_network(network);
  if (!parsed.ok()) co_return parsed.status();
  if (parsed->type != type) {
    co_return absl::InvalidArgumentError(
        context + (type == SOCK_STREAM ? ": not a stream network" : ": not a datagram network"));
  }

  if (!parsed->is_ip()) {
    auto unix_address = Addr::unix_socket(address);
    if (!unix_address.ok()) co_return unix_address.status();
    const bool abstract = address.front() == '@';
    auto fd = bind_and_listen(*unix_address, type, options, std::nullopt, context);
    if (!fd.ok() && !abstract && options.remove_stale && errno_of(fd.status()) == EADDRINUSE &&
        unix_socket_is_stale(*unix_address, type)) {
      ::unlink(address.c_str());
      fd = bind_and_listen(*unix_address, type, options, std::nullopt, context);
    }
    if (!fd.ok()) co_return fd.status();
    co_return BoundSocket{*fd, *unix_address, abstract ? std::string() : address};
  }

  auto host_port = split_host_port(address);
  if (!host_port.ok()) co_return host_port.status();
  const std::string& host = host_port->host;
  Addr chosen;
  std::optional<bool> v6_only;
  if (host.empty() || host == "::" || host == "0.0.0.0") {
    auto wildcard_v4 = Addr::parse_ip_port(join_host_port("0.0.0.0", host_port->port));
    auto wildcard_v6 = Addr::parse_ip_port(join_host_port("::", host_port->port));
    if (!wildcard_v4.ok()) co_return wildcard_v4.status();
    if (parsed->family == AF_INET || host == "0.0.0.0") {
      if (parsed->family == AF_INET6) {
        co_return absl::InvalidArgumentError(context + ": not an IPv6 address");
      }
      chosen = *wildcard_v4;
    } else {
      chosen = *wildcard_v6;
      v6_only = parsed->family == AF_INET6;
    }
  } else {
    auto addresses = co_await resolve(network, address);
    if (!addresses.ok()) co_return annotate(addresses.status(), context);
    chosen = addresses->front();
    if (parsed->family == AF_UNSPEC) {
      for (const Addr& candidate : *addresses) {
        if (candidate.family() == AF_INET) {
          chosen = candidate;
          break;
        }
      }
    }
    if (chosen.family() == AF_INET6) v6_only = true;  // a specific address: that family
  }

  auto fd = bind_and_listen(chosen, type, options, v6_only, context);
  if (!fd.ok() && chosen.family() == AF_INET6 && !v6_only.value_or(true) &&
      errno_of(fd.status()) == EAFNOSUPPORT) {
    // No IPv6 in this kernel: ":port" on "tcp" or "udp" means IPv4.
    chosen = *Addr::parse_ip_port(join_host_port("0.0.0.0", host_port->port));
    fd = bind_and_listen(chosen, type, options, std::nullopt, context);
  }
  if (!fd.ok()) co_return fd.status();
  co_return BoundSocket{*fd, local_address(*fd), std::string()};
}

}  // namespace internal

Task<absl::StatusOr<Listener>> listen(std::string network, std::string address,
                                      ListenOptions options) {
  std::string context = "listen " + network + " " + address;
  auto bound = co_await internal::open_bound_socket(std::move(network), std::move(address), options,
                                                    SOCK_STREAM, std::move(context));
  if (!bound.ok()) co_return bound.status();
  fd_shortage().prepare();
  co_return Listener(std::make_shared<NetFd>(bound->fd), bound->address,
                     std::move(bound->unlink_path));
}

namespace internal {

ShortageCounts shortage_counts_for_testing() noexcept { return fd_shortage().counts(); }

}  // namespace internal

}  // namespace goro::net
