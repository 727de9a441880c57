// lib/machine_load.hpp
//
// Defines: goro::detail::MachineLoad, which reads how many threads the
// whole machine has runnable at this instant, parse_runnable_threads, and
// the path sysmon reads it from (a test may point it at a file of its own).
//
// Why: an idle P whose ring has ops in flight polls it for a while before
// going to sleep (scheduler.hpp, find_runnable step 5b), because a reply on
// a local socket often comes within microseconds and a sleep and a wakeup
// cost about as much. That holds while a CPU is to spare. When the
// machine's CPUs are all taken (a load generator beside the server, other
// processes, more Ps than CPUs), the spinning thread takes a CPU from a
// thread that has work, often the very peer whose reply it waits for; the
// spin then costs CPU and buys nothing.
//
// How: Linux's /proc/loadavg gives, as its fourth field's numerator, the
// number of scheduling entities runnable at this instant on the whole
// machine (running or waiting for a CPU; the reader included).
//   1. The file is opened once, when the runtime starts (by sysmon, which
//      owns the MachineLoad), and closed when it stops: a descriptor opened
//      per sample would come and go while the program runs, and one kept
//      for the life of the process would outlive the runtime.
//   2. Sysmon samples it with one pread(2) at most every
//      SysmonTuning::kMachineLoadPeriodNanos while some P is busy, and
//      publishes how many of the runnable threads are neither its own
//      Ps' workers nor itself (sysmon.hpp, step 6).
//   3. A P about to spin adds the other Ps busy at that moment; if they
//      and the threads elsewhere fill every online CPU, it does not spin.
//   4. Where the file cannot be opened or parsed (no procfs, a sandbox, a
//      full descriptor table), the count is unknown and nobody else is
//      counted as runnable: spinning stays as it was.
// Rejected alternatives:
//   * Counting only goro's own threads (Ps busy against GOMAXPROCS): blind
//     to the other processes, which is where the contention comes from.
//   * Sampling on the P about to spin: an open or a read per decision on
//     the scheduler's idle path, where sysmon's rounds already come every
//     20 us to 10 ms.
//   * A per-P back-off after spins that found nothing: measured, it traded
//     the spin's user time for as much system time (sleeps, wakeups), since
//     under contention the spins do find work, only too late to be worth
//     the CPU.
//   * The load averages (first three fields): minutes of history, where the
//     decision is about now.
// The same count, averaged, decides how many Ps run goroutines while the
// machine is shared (sysmon.hpp, step 7; scheduler.hpp, "Sharing the
// machine").
#ifndef GORO_LIB_MACHINE_LOAD_HPP_
#define GORO_LIB_MACHINE_LOAD_HPP_

#include <cstdint>
#include <string_view>

namespace goro::detail {

// The runnable count of one machine, read from a file in /proc/loadavg's
// format. Not thread-safe: one thread samples (sysmon).
class MachineLoad {
 public:
  // Opens `path` (step 1). Never throws: a file that cannot be opened
  // makes every sample unknown (step 4).
  explicit MachineLoad(const char* path = "/proc/loadavg") noexcept;
  ~MachineLoad();
  MachineLoad(const MachineLoad&) = delete;
  MachineLoad& operator=(const MachineLoad&) = delete;

  // Scheduling entities runnable on the machine now, the caller included;
  // -1 when unknown (step 4).
  [[nodiscard]] int runnable_threads() const noexcept;

  // The machine's online CPUs (at least 1).
  [[nodiscard]] static int online_cpus() noexcept;

  // Whether the calling thread may run on every online CPU (its affinity
  // mask holds them all). Where it may not, the machine-wide count says
  // nothing about the CPUs it may use.
  [[nodiscard]] static bool runs_on_every_cpu() noexcept;

 private:
  int fd_ = -1;
};

// The file sysmon's MachineLoad reads when a runtime starts:
// "/proc/loadavg", unless a test set another (nullptr sets it back). The
// string must outlive the runtimes that start meanwhile.
[[nodiscard]] const char* machine_load_path() noexcept;
void set_machine_load_path_for_testing(const char* path) noexcept;
// Tests: how many samples every MachineLoad of the process has taken, so
// that a test can wait for sysmon to have read its file, not for a time.
[[nodiscard]] std::uint64_t machine_load_samples_for_testing() noexcept;

// The number of runnable scheduling entities in a /proc/loadavg line
// ("0.52 0.58 0.59 3/467 12345": 3), or -1 if the line does not have that
// shape.
[[nodiscard]] int parse_runnable_threads(std::string_view loadavg) noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_MACHINE_LOAD_HPP_
