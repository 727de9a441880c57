// lib/runtime.hpp
//
// Defines: goro::detail::Runtime, one run() of the runtime: its Ps (p.hpp)
// with the scheduler core that runs them, the runtime-wide halves of the
// mechanisms (the poller's driver, timers, blocking calls, sysmon), and
// their lives: start, the worker threads, stop and the shutdown sweep
// (runtime_threads.cpp), the deadlock check (deadlock.cpp), statistics.
//
// This is the one layer that sees everything: the scheduler core sees
// only PCores and PMechanisms (p_core.hpp), each mechanism its own
// state and the core's narrow interface (scheduler_interface.hpp), sysmon
// the SysmonView that Runtime implements. The entry points of the public
// templates (runtime.cpp) reach it through tls_p (P::runtime) or, from
// threads outside, through the runtime running now.
#ifndef GORO_LIB_RUNTIME_HPP_
#define GORO_LIB_RUNTIME_HPP_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blocking_calls.hpp"
#include "goro/config.hpp"
#include "goro/scheduler_stats.hpp"
#include "p.hpp"
#include "poller.hpp"
#include "scheduler.hpp"
#include "sysmon.hpp"
#include "timers.hpp"

namespace goro::detail {

// What Config::on_uncaught_exception holds.
using UncaughtExceptionHook = decltype(Config::on_uncaught_exception);

class Runtime final : private SysmonView {
 public:
  // Makes the Ps and their pollers (an eventfd each, and an epoll instance
  // under epoll). Throws std::system_error when io_uring was asked for by
  // name and is refused, or when fds or memory run out.
  Runtime(const Config& config, unsigned procs);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs the runtime until `main` finishes (called by run_main). If the
  // runtime cannot start (a thread or a poller refused), throws
  // std::system_error having stopped and joined whatever it had started and
  // destroyed the goroutines started from outside meanwhile; `main` never
  // ran and stays with the caller.
  void run(G* main);

  [[nodiscard]] Scheduler& scheduler() noexcept { return scheduler_; }

  // An exception nobody can read any more (a detached goroutine's, or one
  // a dropped JoinHandle never read) goes to `hook`, or, when it is empty,
  // is printed with the goroutine's id before std::abort().
  static void report_uncaught(const UncaughtExceptionHook& hook, std::uint64_t id,
                              std::exception_ptr error) noexcept;
  void report_uncaught(std::uint64_t id, std::exception_ptr error) noexcept {
    report_uncaught(config_.on_uncaught_exception, id, std::move(error));
  }
  [[nodiscard]] const UncaughtExceptionHook& uncaught_exception_hook() const noexcept {
    return config_.on_uncaught_exception;
  }

  [[nodiscard]] SchedulerStats stats() const noexcept;
  [[nodiscard]] std::vector<Stall> recent_stalls() const { return sysmon_.recent_stalls(); }
  // After run(): the deadlock report, empty if the run ended normally.
  [[nodiscard]] const std::string& deadlock_report() const noexcept { return deadlock_report_; }

 private:
  // SysmonView (sysmon.hpp).
  const std::vector<P*>& ps() const noexcept override { return p_list_; }
  bool all_idle() const noexcept override { return scheduler_.all_idle(); }
  std::uint32_t idle_procs() const noexcept override { return scheduler_.idle_procs(); }
  void preempt(P& p) noexcept override { scheduler_.preempt(p); }
  void notify_work_available() noexcept override { scheduler_.notify_work_available(nullptr); }
  bool kick_global_queue() noexcept override { return scheduler_.kick_global_queue(); }
  void set_active_procs(std::uint32_t active) noexcept override {
    scheduler_.set_active_procs(active);
  }
  // Standby Ps need I/O that follows a goroutine handed over (io_uring):
  // under epoll a standby P would keep receiving its fds' events and hand
  // over each goroutine they ready, a wakeup more per event, not fewer.
  bool standby_allowed() const noexcept override {
    return config_.standby_procs && poller_.driver->io_follows_the_goroutine;
  }
  bool detect_deadlocks() const noexcept override { return config_.detect_deadlocks; }
  std::int64_t deadlock_grace_nanos() const noexcept override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(config_.deadlock_grace).count();
  }
  // Deadlock detection (deadlock.cpp). If nothing could wake any goroutine
  // now, stores in `activity` a count that changes whenever anything runs
  // or arrives, and returns true.
  bool quiescent(std::uint64_t& activity) noexcept override;
  // Prints the report, stops the runtime, and makes run_main throw.
  void declare_deadlock() noexcept override;

  // The lives of the threads (runtime_threads.cpp).
  // Starting: attaches P 0 on this thread, starts the other workers, each
  // of which attaches its P and reports, then sysmon; returns P 0's saved
  // timer slack. On any failure it undoes everything and throws.
  int start(P& p0);
  // A worker thread's whole life: enter, report, run if the start
  // succeeded, leave.
  void worker_main(P& p);
  // Reports this worker's start (`error` null: attached) and waits for
  // the verdict: true to run, false to leave at once.
  bool report_started(std::exception_ptr error);
  // Binds this thread to p and attaches p's poller; returns the thread's
  // previous timer slack. On failure undoes the binding and throws.
  int enter_worker(P& p);
  // Detaches p's poller and unbinds this thread (the inverse of enter).
  void leave_worker(P& p, int old_timer_slack) noexcept;
  // After the workers exited: destroys every goroutine still alive.
  void sweep_goroutines() noexcept;

  // The Ps, each with its poller and frame cache registered.
  std::vector<std::unique_ptr<P>> make_ps(unsigned procs);

  // Goroutines listed by name in a deadlock report (the rest are counted).
  static constexpr std::size_t kDeadlockReportLimit = 100;

  Config config_;
  const PollerChoice poller_;
  Timers timers_;
  BlockingCalls blocking_calls_;
  std::vector<std::unique_ptr<P>> ps_;
  const std::vector<P*> p_list_;
  Scheduler scheduler_;
  // Declared after the Ps: destroyed first (it reads them while it runs).
  Sysmon sysmon_{*this};
  std::vector<std::thread> threads_;
  // The start handshake (start / report_started): how many workers have
  // reported, the first error, and the verdict they wait for.
  enum class StartVerdict { kPending, kRun, kAbandon };
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  std::size_t start_reports_ = 0;
  std::exception_ptr start_error_;
  StartVerdict start_verdict_ = StartVerdict::kPending;
  // Written by sysmon before it stops the runtime; read after the workers
  // and sysmon are joined.
  std::string deadlock_report_;
};

// One goroutine's wait as the deadlock report prints it inside the
// brackets: "chan receive, 120 ms" (deadlock.cpp). A null reason prints as
// "parked", with no time.
[[nodiscard]] std::string describe_wait(const char* reason, std::int64_t waited_nanos);

}  // namespace goro::detail

#endif  // GORO_LIB_RUNTIME_HPP_
