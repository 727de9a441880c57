// lib/poller.cpp: the backend choice and what both pollers share (the wake
// eventfd, readying goroutines). The design is at the top of poller.hpp.
#include "poller.hpp"

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>

#include "mutex.hpp"
#include "scheduler.hpp"

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

// Which io_uring setup flags this kernel accepts; kind kEpoll if none.
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
    if (rc == 0) return {{PollerKind::kIoUring, c.flags, c.description}, 0};
    error = -rc;
    if (rc != -EINVAL) break;  // EPERM, ENOSYS, EMFILE...: no point trying fewer flags
  }
  if (transient_probe_error(error)) {
    return {{PollerKind::kEpoll, 0, "epoll (io_uring probe failed for now; probed again next run)"},
            error};
  }
  return {{PollerKind::kEpoll, 0, "epoll (io_uring unavailable)"}, error};
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

// Relaxed: a hint for calls from outside the runtime; a runtime's own
// threads use their Scheduler's choice.
std::atomic<PollerKind> active_kind{PollerKind::kEpoll};

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
    choice = {PollerKind::kEpoll, 0, "epoll (requested)"};
  } else {
    const UringProbe probe = uring_probe();
    if (requested == PollerBackend::kIoUring && probe.choice.kind != PollerKind::kIoUring) {
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

PollerKind active_poller_kind() noexcept { return active_kind.load(std::memory_order_relaxed); }

void set_active_poller_kind(PollerKind kind) noexcept {
  active_kind.store(kind, std::memory_order_relaxed);
}

Poller::Poller(P& p) : p_(p), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
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

void Poller::ready(IoOp& op) noexcept {
  if (p_.scheduler.ready_io(p_, op.g)) stealable_ = true;
  ++readied_;
}

void Poller::finish_batch() noexcept {
  if (readied_ == 0) return;
  bump(p_.stats.io_completions, readied_);
  readied_ = 0;
  if (stealable_) p_.scheduler.notify_work_available(&p_);
  stealable_ = false;
}

}  // namespace goro::detail

namespace goro::detail {

std::unique_ptr<Poller> make_uring_poller(P& p, unsigned setup_flags);
std::unique_ptr<Poller> make_epoll_poller(P& p);

std::unique_ptr<Poller> Poller::make(P& p, const PollerChoice& choice) {
  if (choice.kind == PollerKind::kIoUring) return make_uring_poller(p, choice.uring_flags);
  return make_epoll_poller(p);
}

}  // namespace goro::detail
