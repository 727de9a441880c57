// lib/poller.cpp: the backend choice and what both pollers share (the wake
// eventfd, readying goroutines, SIGPIPE). The design is at the top of
// poller.hpp.
//
// SIGPIPE
//   A write to a pipe whose reader is gone, or to a socket whose peer shut
//   down, fails with EPIPE and also raises SIGPIPE on the writing thread,
//   whose default action kills the process. goro's I/O returns EPIPE as a
//   value (as Go and Rust do) without touching the process's disposition of
//   SIGPIPE, which belongs to the program:
//   1. Each worker thread blocks SIGPIPE in its own signal mask while it
//      serves a runtime (attach() to detach(); the thread that called run()
//      gets its previous mask back when run() returns). The signal a failed
//      write raises is directed at the writing thread, so it stays pending
//      there instead of being delivered. io_uring runs a write either on
//      the submitting worker (inline, or in its task work: the same
//      thread) or on an io-wq thread, which blocks every signal.
//   2. When an op completes with EPIPE, its worker takes the pending
//      SIGPIPE with a zero-timeout sigtimedwait, so that it is not
//      delivered when the mask is restored.
//   3. When the thread leaves the runtime, a SIGPIPE still pending on it
//      (raised by a goroutine's own write(2) outside goro::io, which got
//      EPIPE too) is taken the same way before the mask is restored.
//   send and send_some pass MSG_NOSIGNAL as well, which raises nothing.
//   The one visible effect: a SIGPIPE sent to the whole process (kill(2))
//   while every thread blocks it, the caller of run() included, may be
//   taken by step 2 instead of being delivered.
//   Rejected: ignoring SIGPIPE process-wide (Go's choice for fds other than
//   stdout and stderr): it changes what the program's own writes outside
//   goro do; and a MSG_NOSIGNAL send instead of write(2) everywhere: it
//   works for sockets only, and an fstat per registration would still leave
//   pipes.
#include "poller.hpp"

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>

#include "mutex.hpp"
#include "p_core.hpp"
#include "scheduler_interface.hpp"

namespace goro::detail {
namespace {

// Creates and destroys a ring with `flags`; returns 0 or -errno.
int probe_ring(unsigned flags) noexcept {
  io_uring ring;
  io_uring_params params{};
  params.flags = flags | IORING_SETUP_CQSIZE;
  params.cq_entries = PollerTuning::kCompletionEntries;
  const int rc = io_uring_queue_init_params(PollerTuning::kSubmissionEntries, &ring, &params);
  if (rc == 0) io_uring_queue_exit(&ring);
  return rc;
}

// What probing io_uring found: the backend to use and, when io_uring was
// refused, the error (0 when a ring was created).
struct UringProbe {
  PollerChoice choice;
  int error = 0;
};

// Errors that say nothing about the kernel, only about this moment (out of
// fds or memory): a later probe may succeed.
bool transient_probe_error(int error) noexcept {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == EAGAIN;
}

// Which io_uring setup flags this kernel accepts; the epoll driver if none.
UringProbe probe_uring() noexcept {
  struct Candidate {
    unsigned flags;
    const char* description;
  };
  static constexpr Candidate kCandidates[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
       "io_uring (SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG)"},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
       "io_uring (COOP_TASKRUN|TASKRUN_FLAG)"},
      {0, "io_uring (no setup flags)"},
  };
  int error = EINVAL;
  for (const Candidate& c : kCandidates) {
    const int rc = probe_ring(c.flags);
    if (rc == 0) return {{&uring_driver(), c.flags, c.description}, 0};
    error = -rc;
    if (rc != -EINVAL) break;  // EPERM, ENOSYS, EMFILE...: no point trying fewer flags
  }
  if (transient_probe_error(error)) {
    return {{&epoll_driver(), 0, "epoll (io_uring probe failed for now; probed again next run)"},
            error};
  }
  return {{&epoll_driver(), 0, "epoll (io_uring unavailable)"}, error};
}

// The probe's answer is kept once it is lasting (a ring was created, or
// the kernel refused for good); a transient failure is not kept, so the
// next runtime probes again instead of settling on epoll for the life of
// the process.
Mutex probe_mu;
std::optional<UringProbe> lasting_probe ABSL_GUARDED_BY(probe_mu);

UringProbe uring_probe() noexcept {
  MutexLock lock(probe_mu);
  if (lasting_probe.has_value()) return *lasting_probe;
  const UringProbe probe = probe_uring();
  if (!transient_probe_error(probe.error)) lasting_probe = probe;
  return probe;
}

// Relaxed: the drivers are constant tables, and a runtime's own threads use
// their P's poller; this is for calls that may come from outside.
std::atomic<const PollerDriver*> active_driver{nullptr};

}  // namespace

void forget_uring_probe() noexcept {
  MutexLock lock(probe_mu);
  lasting_probe.reset();
}

PollerChoice choose_poller(PollerBackend requested) {
  if (requested == PollerBackend::kAuto) {
    if (const char* env = std::getenv("GORO_POLLER")) {
      if (std::strcmp(env, "epoll") == 0) requested = PollerBackend::kEpoll;
      if (std::strcmp(env, "uring") == 0 || std::strcmp(env, "io_uring") == 0) {
        requested = PollerBackend::kIoUring;
      }
    }
  }
  PollerChoice choice;
  if (requested == PollerBackend::kEpoll) {
    choice = {&epoll_driver(), 0, "epoll (requested)"};
  } else {
    const UringProbe probe = uring_probe();
    if (requested == PollerBackend::kIoUring && probe.choice.driver != &uring_driver()) {
      // Asked for by name: running on another backend would hide the
      // problem (and change the program's behaviour) without a word.
      throw std::system_error(probe.error, std::generic_category(),
                              "goro: io_uring was requested (Config::poller or GORO_POLLER) "
                              "but cannot be used");
    }
    choice = probe.choice;
  }
  if (const char* log = std::getenv("GORO_DEBUG"); log != nullptr && *log != '\0') {
    std::fprintf(stderr, "goro: poller %s\n", choice.description);
  }
  return choice;
}

PollerChoice with_multishot_settings(PollerChoice choice, const Config& config) {
  choice.multishot_accept = config.multishot_accept;
  choice.accept_queue_capacity = std::max(1U, config.accept_queue_capacity);
  choice.multishot_receive = config.multishot_receive;
  // A power of two the kernel accepts (1 to 32768), rounded down.
  unsigned count = std::clamp(config.receive_buffer_count, 1U, 32768U);
  while ((count & (count - 1)) != 0) count &= count - 1;
  choice.receive_buffer_count = count;
  choice.receive_buffer_size = std::max(1U, config.receive_buffer_size);
  choice.receive_queue_capacity = std::max(1U, config.receive_queue_capacity);
  return choice;
}

const PollerDriver& active_poller_driver() noexcept {
  const PollerDriver* driver = active_driver.load(std::memory_order_relaxed);
  return driver != nullptr ? *driver : epoll_driver();
}

void set_active_poller_driver(const PollerDriver& driver) noexcept {
  active_driver.store(&driver, std::memory_order_relaxed);
}

Poller::Poller(PCore& p) : p_(p), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "goro: eventfd");
}

Poller::~Poller() { ::close(wake_fd_); }

void Poller::wake() noexcept {
  // Acq_rel: releases the waker's writes (e.g. the idle-list change) to the
  // worker, which acquires them in wake_consumed(). Only the first wake
  // since the worker last consumed one writes.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 - 2 unread wakes).
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Poller::block_sigpipe() noexcept {
  if (signal_mask_saved_) return;
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  signal_mask_saved_ = pthread_sigmask(SIG_BLOCK, &pipe_only, &saved_signal_mask_) == 0;
}

void Poller::restore_signal_mask() noexcept {
  if (!signal_mask_saved_) return;
  signal_mask_saved_ = false;
  // One raised by a raw write(2) in a goroutine: that write saw EPIPE too.
  consume_sigpipe();
  pthread_sigmask(SIG_SETMASK, &saved_signal_mask_, nullptr);
}

void consume_sigpipe() noexcept {
  const int saved_errno = errno;  // callers report the EPIPE from errno
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  const timespec now{};
  // A zero timeout: returns at once whether or not one was pending (a
  // writer that saw EPIPE on a socket sent with MSG_NOSIGNAL raised none).
  while (sigtimedwait(&pipe_only, nullptr, &now) < 0 && errno == EINTR) {
  }
  errno = saved_errno;
}

void Poller::ready(IoOp& op) noexcept {
  // The first goroutine of a batch takes runnext if it is free (an echo
  // server's reader runs next, on this P), the rest go to the tail in
  // completion order; finish_batch() wakes a P once per batch, if any went
  // where a thief can take them (see ready_goroutine).
  if (make_runnable(p_, op.g, Placement::kRunNextIfFree)) stealable_ = true;
  ++readied_;
}

void Poller::ready_rescued(const RescuedGoroutines& goroutines) noexcept {
  // false once the runtime stops accepting work: the goroutine stays
  // parked for the sweep.
  for (G* g : goroutines) (void)make_runnable_through_global_queue(p_, g);
  if (!goroutines.empty()) notify_work_available_from_outside(p_);
}

void Poller::finish_batch() noexcept {
  if (readied_ == 0) return;
  bump(p_.stats.io_completions, readied_);
  readied_ = 0;
  if (stealable_) notify_work_available(p_);
  stealable_ = false;
}

}  // namespace goro::detail
