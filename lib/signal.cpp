// lib/signal.cpp
//
// goro::signal_context (goro/signal.hpp): signals turned into a context's
// cancellation.
//
// Why a self-pipe. A signal handler may run on any thread of the process,
// between any two instructions of whatever that thread was doing, so it may
// only do async-signal-safe things: no locks, no allocation, nothing of
// the scheduler. write(2) is safe. So each registration (a notification)
// owns a pipe: the handler writes the signal's number into the pipe of
// every notification that lists the signal, and one goroutine per
// notification reads its pipe with goro::io::read, parked in the poller
// like any other I/O, and cancels the context. Which thread the kernel
// picks for the signal does not matter, nor does it matter whether that
// thread belongs to goro.
//
// State (process-wide, outlives any one run()):
//   slots        kMaxNotifications entries {signals: a bit mask, write_fd};
//                the handler reads them, lock-free. A free slot has mask 0
//                and fd -1.
//   in_handler   how many handler invocations are between their first and
//                last look at the slots.
//   registry     a mutex over which slots are taken, how many
//                notifications list each signal, and each caught signal's
//                previous sigaction. Never touched by the handler.
//
// Invariants:
//   1. A signal has goro's handler installed exactly while at least one
//      registered notification lists it; its previous disposition is saved
//      when the first one registers and put back when the last one stops.
//   2. A write fd is closed only after its slot reads fd -1 and every
//      handler invocation that could have read the old fd has finished.
//      So the handler never writes to a closed or recycled fd number.
//   3. The read fd lives as long as the notification (the stop function
//      and the reader goroutine share it), so the reader never reads a
//      closed fd.
//
// Registering (signal_context):
//   1. Check every signal can be caught (not SIGKILL, SIGSTOP, in range).
//   2. Make a non-blocking close-on-exec pipe.
//   3. Under the registry lock, take a free slot; publish write_fd, then
//      the mask (the handler reads the mask first: a mask it sees has its
//      fd published, invariant 2's other half). For each listed signal no
//      notification listed before, save the old sigaction and install the
//      handler.
//   4. Start the reader goroutine: one io::read of one byte, honouring the
//      context; a byte read cancels the context with the signal's cause.
//      A signal that came before the reader started waits in the pipe.
//
// Handling (on_signal, any thread): count itself into in_handler, write
// the signal's number to each slot whose mask lists it (a full pipe drops
// the byte: one is enough), count itself out, restore errno.
//
// Stopping (SignalStop, idempotent):
//   1. Under the registry lock, clear the slot (mask 0, fd -1); for each
//      signal no notification lists any more, reinstall the saved
//      sigaction.
//   2. Wait until in_handler reads 0 (invariant 2): a handler running now
//      may have read the old fd; one that starts later sees -1.
//   3. Close the write fd: the reader, if still waiting, reads end of file
//      and returns.
//   4. Cancel the context (no cause; a signal's cause stays if it came
//      first).
//
// Memory orders. The slot fields, the mask and in_handler are seq_cst:
// step 2 of stopping needs the store of fd -1 and the load of in_handler
// ordered against the handler's increment of in_handler and its load of
// the fd in one total order (either the handler's increment comes first
// and step 2 waits for it, or the store of -1 does and the handler sees
// it); acquire/release alone would allow both to miss each other.
//
// Rejected alternatives:
//   * signalfd: the signal must be blocked in every thread of the process,
//     including threads goro does not own and threads started before the
//     call; one that leaves it unblocked gets the default action (the
//     process dies). Workable for a program that blocks signals first
//     thing in main, not for a library call.
//   * sigwait on a dedicated thread: the same blocking requirement, plus a
//     thread per process.
//   * Cancelling the context from the handler: takes locks, allocates,
//     wakes goroutines; none of it is async-signal-safe.
//   * One pipe for the process with a dispatching goroutine: it would have
//     to outlive runs and be restarted by each; a pipe per notification
//     keeps each registration self-contained.
#include "goro/signal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "goro/go.hpp"
#include "goro/io.hpp"
#include "goro/task.hpp"

namespace goro {
namespace detail {

namespace {

constexpr int kMaxNotifications = 64;
constexpr int kMaxSignal = 64;  // a mask bit per signal number 1..64
constexpr char kSignalPayloadUrl[] = "goro.signal/number";

struct Slot {
  std::atomic<std::uint64_t> signals{0};
  std::atomic<int> write_fd{-1};
};

std::array<Slot, kMaxNotifications> slots;
std::atomic<int> in_handler{0};

struct Registry {
  std::mutex mutex;
  std::array<bool, kMaxNotifications> taken{};
  std::array<int, kMaxSignal + 1> listeners{};  // by signal number
  std::array<struct sigaction, kMaxSignal + 1> previous{};
};

Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: stop may run at exit
  return *instance;
}

std::uint64_t bit(int signal) { return std::uint64_t{1} << (signal - 1); }

extern "C" void on_signal(int signal) {
  const int saved_errno = errno;
  in_handler.fetch_add(1);  // seq_cst: see "Memory orders"
  const std::uint64_t mask = bit(signal);
  for (Slot& slot : slots) {
    // seq_cst, both: ordered after the increment above (see "Memory orders")
    if ((slot.signals.load() & mask) == 0) continue;
    const int fd = slot.write_fd.load();
    if (fd < 0) continue;
    const auto byte = static_cast<unsigned char>(signal);
    (void)!::write(fd, &byte, 1);  // EAGAIN on a full pipe: a byte is waiting already
  }
  in_handler.fetch_sub(1);  // seq_cst: stopping's step 2 waits for this
  errno = saved_errno;
}

// The name of a signal for the cause's message ("SIGTERM"), or its number.
std::string signal_name(int signal) {
  if (const char* name = ::sigabbrev_np(signal); name != nullptr) return absl::StrCat("SIG", name);
  return absl::StrCat("signal ", signal);
}

absl::Status signal_cause(int signal) {
  absl::Status cause = absl::CancelledError(absl::StrCat("received signal ", signal_name(signal)));
  const std::string number = absl::StrCat(signal);
  cause.SetPayload(kSignalPayloadUrl, absl::Cord(absl::string_view(number)));
  return cause;
}

}  // namespace

// One registration: its pipe, its slot, its context's cancel function.
struct SignalNotification {
  int read_fd = -1;
  int write_fd = -1;
  int slot = -1;  // -1 once stopped
  std::uint64_t signals = 0;
  CancelCauseFunc cancel;

  ~SignalNotification() {
    if (write_fd >= 0) ::close(write_fd);
    if (read_fd >= 0) ::close(read_fd);
  }

  // Registering, step 3. Throws std::length_error with every slot taken.
  void register_slot() {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (int i = 0; i < kMaxNotifications; ++i) {
      if (r.taken[i]) continue;
      r.taken[i] = true;
      slot = i;
      // seq_cst (release would do here): the fd before the mask, which the
      // handler reads first, so a handler that sees the mask sees the fd.
      slots[i].write_fd.store(write_fd);
      slots[i].signals.store(signals);
      struct sigaction action {};
      action.sa_handler = on_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART;
      for (int signal = 1; signal <= kMaxSignal; ++signal) {
        if ((signals & bit(signal)) != 0 && r.listeners[signal]++ == 0) {
          ::sigaction(signal, &action, &r.previous[signal]);
        }
      }
      return;
    }
    throw std::length_error("goro::signal_context: too many notifications at once");
  }

  // Stopping, steps 1-3.
  void unregister() noexcept {
    if (slot < 0) return;
    {
      Registry& r = registry();
      std::lock_guard lock(r.mutex);
      // seq_cst: against the handler's increment of in_handler, step 2 below
      slots[slot].signals.store(0);
      slots[slot].write_fd.store(-1);
      for (int signal = 1; signal <= kMaxSignal; ++signal) {
        if ((signals & bit(signal)) != 0 && --r.listeners[signal] == 0) {
          ::sigaction(signal, &r.previous[signal], nullptr);
        }
      }
      r.taken[slot] = false;
      slot = -1;
    }
    // A handler is a few system calls long: yielding the thread is enough.
    while (in_handler.load() != 0) std::this_thread::yield();  // seq_cst: "Memory orders"
    ::close(write_fd);
    write_fd = -1;
  }
};

namespace {

// Registering, step 4: the goroutine that turns the first byte into the
// context's cancellation.
Task<void> read_signals(std::shared_ptr<SignalNotification> notification, Context ctx) {
  unsigned char signal = 0;
  auto n = co_await io::read(notification->read_fd, &signal, 1, io::options_from(ctx));
  if (n.ok() && *n == 1) notification->cancel(signal_cause(signal));
}

}  // namespace
}  // namespace detail

void SignalStop::operator()() noexcept {
  if (notification_ == nullptr) return;
  const std::shared_ptr<detail::SignalNotification> notification = std::move(notification_);
  notification->unregister();
  notification->cancel(absl::OkStatus());
}

SignalContext signal_context(const Context& parent, std::initializer_list<int> signals) {
  auto notification = std::make_shared<detail::SignalNotification>();
  for (int signal : signals) {
    if (signal < 1 || signal > detail::kMaxSignal || signal == SIGKILL || signal == SIGSTOP) {
      throw std::invalid_argument(
          absl::StrCat("goro::signal_context: cannot catch signal ", signal));
    }
    notification->signals |= detail::bit(signal);
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "goro::signal_context: pipe2");
  }
  notification->read_fd = fds[0];
  notification->write_fd = fds[1];
  auto [ctx, cancel] = with_cancel_cause(parent);
  notification->cancel = cancel;
  notification->register_slot();
  SignalStop stop(notification);  // from here on, a throw unregisters
  go(detail::read_signals(notification, ctx));
  return SignalContext{std::move(ctx), std::move(stop)};
}

std::optional<int> signal_number(const absl::Status& cause) {
  const auto payload = cause.GetPayload(detail::kSignalPayloadUrl);
  int signal = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &signal))
    return std::nullopt;
  return signal;
}

}  // namespace goro
