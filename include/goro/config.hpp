// goro/config.hpp
//
// Defines: goro::Config (how goro::run sets up the runtime) and
// goro::available_procs().
#ifndef GORO_CONFIG_HPP_
#define GORO_CONFIG_HPP_

#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <functional>

namespace goro {

// Settings for one goro::run. Every field has a working default.
// Which netpoller backend a runtime uses (goro/io.hpp).
enum class PollerBackend : unsigned char {
  // io_uring where the kernel allows it, else epoll; the environment
  // variable GORO_POLLER=uring|epoll overrides (uring then counts as
  // kIoUring). Whether io_uring is allowed is probed once and kept for the
  // process, unless the probe failed for a passing reason (out of file
  // descriptors or memory: EMFILE, ENFILE, ENOMEM, EAGAIN): then that run
  // uses epoll and the next one probes again.
  kAuto,
  // io_uring. If it cannot be used (the kernel or a sandbox refuses it, or
  // a passing shortage as above), run() throws std::system_error with the
  // error of the refusal rather than running on epoll.
  kIoUring,
  // epoll.
  kEpoll,
};

struct Config {
  // Number of Ps (processors): how many goroutines run in parallel, one
  // worker thread each. 0 picks the default: the environment variable
  // GORO_MAXPROCS when set to a positive integer, otherwise
  // available_procs().
  unsigned procs = 0;

  // While threads outside the runtime keep the machine's CPUs busy (a load
  // generator beside a server, other services), only as many Ps run
  // goroutines as there are CPUs left, at least one; the others stand by
  // and hand what becomes runnable on them to the running ones, so that
  // the Ps do not take turns on the same CPUs (docs/ARCHITECTURE.md,
  // "Sharing the machine"; SchedulerStats::active_procs). Every P runs
  // while nothing else does, while a goroutine holds a P for 10 ms, and
  // always under an affinity mask narrower than the machine or on the
  // epoll backend (whose fds stay with one P). false: every P always runs,
  // as Go's do.
  bool standby_procs = true;

  // Called when an exception escapes a goroutine and nobody can observe it
  // otherwise: one started with goro::go (on the worker thread, as it
  // finishes), or one started with goro::spawn whose JoinHandle was dropped
  // without being awaited (on the worker as it finishes if the handle went
  // first, else on the thread that drops the handle). When empty, goro
  // prints "goroutine N: uncaught exception: <what()>" to stderr and calls
  // std::abort(), as an unrecovered panic ends a Go program. The handler
  // must not throw.
  std::function<void(std::uint64_t goroutine_id, std::exception_ptr error)> on_uncaught_exception{};

  // How many goro::blocking calls may run at once (each on its own
  // thread); past that, calls wait in a FIFO queue, their goroutines
  // parked, until running ones return. At least 1. Go's default thread
  // limit.
  unsigned max_blocking_threads = 10000;

  // Capacity of each P's local run queue: 0 means the default (256, Go's
  // value); otherwise a power of two of at least 4. Lowering it is meant for
  // tests that exercise overflow to the global queue.
  unsigned local_run_queue_capacity = 0;

  // The netpoller backend. goro::io::poller_backend() says which one runs.
  PollerBackend poller = PollerBackend::kAuto;

  // The signal goro sends to one of its worker threads so that I/O of the
  // thread's P completes while a goroutine there computes without
  // suspending (io_uring backend only: the ring's completions are run by
  // its own thread; epoll needs no signal). Default SIGURG, the signal Go
  // uses to preempt goroutines: its default action is to ignore it, and
  // it is raised otherwise only for out-of-band socket data.
  //   * goro installs its handler (SA_SIGINFO | SA_RESTART | SA_ONSTACK)
  //     the first time a runtime uses io_uring with the signal, and leaves
  //     it installed for the life of the process. A signal that goro did
  //     not send goes on to the handler installed before goro's (none, or
  //     SIG_DFL / SIG_IGN: it is ignored).
  //   * It is sent only to goro's own worker threads, only while one
  //     goroutine has run for a millisecond or more without suspending
  //     and operations of its P wait, and at most every few hundred
  //     microseconds. Never to a thread that blocks the signal, nor once
  //     the program has installed another handler for it.
  //   * A system call that a goroutine makes itself (not through goro::io)
  //     may be interrupted by it: most restart (SA_RESTART); those that
  //     never restart (signal(7): nanosleep, poll, epoll_wait, select,
  //     sockets with SO_RCVTIMEO / SO_SNDTIMEO...) fail with EINTR, as
  //     under any signal.
  //   * 0 sends none: an operation that completes on a P whose goroutine
  //     computes then waits until that goroutine suspends or yields.
  // Anything but 0 or a signal a handler can be installed for (not
  // SIGKILL, SIGSTOP, or the real-time signals the C library keeps)
  // makes run() throw std::invalid_argument.
  int io_rescue_signal = SIGURG;

  // io_uring backend: goro::io::AcceptStream (and so net::Listener)
  // keeps one multishot accept per listening socket in the kernel instead
  // of one accept per call (goro/io_multishot.hpp). Connections accepted
  // while no goroutine waits are queued, at most accept_queue_capacity per
  // socket (at least 1); past that the kernel's request is cancelled and
  // connections wait in the listen backlog until the next accept. The
  // epoll backend always accepts when the socket is readable.
  bool multishot_accept = true;
  unsigned accept_queue_capacity = 64;

  // io_uring backend: goro::io::ReceiveStream (and so net::Conn::read)
  // keeps one multishot receive per connection in the kernel, filling
  // buffers of a ring each P provides (receive_buffer_count buffers, a
  // power of two from 1 to 32768, of receive_buffer_size bytes each): an
  // idle connection holds no buffer. At most receive_queue_capacity buffers
  // (at least 1) wait per connection for its reader; past that the
  // connection's request is cancelled until the reader catches up. An
  // exhausted ring makes readers receive into their own buffers
  // (goro/io_multishot.hpp). false: one recv per read, straight into the
  // reader's buffer, which costs less CPU where a reader is usually parked
  // when bytes arrive (docs/PERFORMANCE.md); true saves memory where many
  // connections sit idle with a read parked. Needs Linux 5.19 or later:
  // run() throws std::system_error where the ring cannot be registered.
  bool multishot_receive = false;
  unsigned receive_buffer_count = 512;
  unsigned receive_buffer_size = 4096;
  unsigned receive_queue_capacity = 16;

  // Deadlock detection (Go's "all goroutines are asleep"): when every
  // goroutine has stayed parked for Config::deadlock_grace with nothing
  // that could wake one (no runnable goroutine, timer, I/O operation or
  // blocking call, no goroutine started or readied from outside the
  // runtime, no goro::OutsideWaker alive) and no thread of the process
  // outside the runtime lives, run() prints the goroutines and what each
  // waits for to stderr and throws goro::Deadlock. The rule for threads
  // outside the runtime: any live one may still wake a goroutine (feed a
  // channel, count down a WaitGroup, cancel a context), so none needs to
  // announce itself, however long it stays silent; the detector looks at
  // the process's threads only when it is about to declare, and again
  // while one lives (at most a second apart). A thread that will never
  // wake a goroutine (a watchdog, a thread blocked on a terminal) holds
  // detection off in the same way. A waker that is no live thread holds an
  // OutsideWaker (run.hpp).
  bool detect_deadlocks = true;
  std::chrono::milliseconds deadlock_grace{100};
};

// The CPUs this process may use: the size of its affinity mask, further
// limited by the cgroup v2 `cpu.max` quota (rounded up) when one is set.
// Always at least 1.
[[nodiscard]] unsigned available_procs() noexcept;

}  // namespace goro

#endif  // GORO_CONFIG_HPP_
