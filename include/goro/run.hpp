// goro/run.hpp
//
// Defines: goro::run, the entry point that starts the runtime,
// goro::Deadlock, what it throws when every goroutine is stuck, and
// goro::OutsideWaker, which tells the deadlock detector that something it
// cannot see may still wake a goroutine.
#ifndef GORO_RUN_HPP_
#define GORO_RUN_HPP_

#include <coroutine>
#include <stdexcept>

#include "goro/config.hpp"
#include "goro/task.hpp"

namespace goro {

// Thrown by run() when every goroutine is parked with nothing left that
// could wake one (see Config::detect_deadlocks). what() is the report that
// was also printed to stderr: each goroutine's id, what it waits for and
// for how long, as Go heads a traceback ("goroutine 7 [chan receive, 2
// minutes]"), with Go's wait reasons ("chan send (nil chan)", "select",
// "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.WaitGroup.Wait",
// "sync.Cond.Wait", "semacquire", ...; "join" for a JoinHandle,
// "errgroup.Group.Wait" for a Group). The time is "N ms" below a second,
// "N s" below a minute, "N minutes" from then on, and may exceed the true
// wait by about 10 ms (lib/deadlock.cpp).
class Deadlock : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// OutsideWaker: a promise that a waker the deadlock detector cannot see
// may still wake a goroutine (send on a channel, WaitGroup::done, cancel a
// context, go(), ...). While any OutsideWaker lives in the process, the
// deadlock detector never declares a deadlock, however long every
// goroutine stays parked.
//
// A live thread of the process needs none: every thread outside the
// runtime counts as a possible waker while it lives (see run()). What the
// detector cannot see is a waker that is no live thread when every
// goroutine is parked: a thread that will be started later (on demand, by
// another library's callback, ...). Such a waker is trusted only for
// Config::deadlock_grace unless an OutsideWaker speaks for it.
//
// Contract: create one before the goroutines start waiting for the waker
// (typically where it is set up) and destroy it once it will wake nobody
// any more. Its creation and destruction count as activity, so the
// detector waits a full Config::deadlock_grace after the last one goes
// before it decides. Move-only; a moved-from OutsideWaker promises
// nothing. Usable from any thread, with or without a runtime running (it
// is process-wide, as the runtime is).
class [[nodiscard("an OutsideWaker promises only while it lives")]] OutsideWaker {
 public:
  OutsideWaker() noexcept;
  OutsideWaker(OutsideWaker && other) noexcept : active_(other.active_) { other.active_ = false; }
  OutsideWaker& operator=(OutsideWaker&& other) noexcept {
    if (this != &other) {
      release();
      active_ = other.active_;
      other.active_ = false;
    }
    return *this;
  }
  OutsideWaker(const OutsideWaker&) = delete;
  OutsideWaker& operator=(const OutsideWaker&) = delete;
  ~OutsideWaker() { release(); }

  // Ends the promise now (idempotent).
  void release() noexcept;

 private:
  bool active_;
};

namespace detail {
// Runs the runtime until the goroutine made from `main` finishes. Leaves
// main's frame suspended at its final point (the caller reads the result
// and destroys it). Throws std::logic_error, after destroying `main`, if a
// runtime is already running in this process, and std::system_error, after
// destroying `main`, if the runtime cannot start.
void run_main(std::coroutine_handle<> main, TaskPromiseBase* promise, const Config& config);
}  // namespace detail

// Starts the runtime with `config`, runs `main` as goroutine 1 and returns
// its value (or rethrows its exception) once it finishes.
//
//  * The calling thread becomes the worker of P 0; Config::procs - 1 more
//    worker threads are started and all are joined before run returns.
//  * When main finishes, the runtime stops: the goroutines still alive are
//    destroyed (their frames' destructors run) and nothing else of them
//    runs. A goroutine in the middle of running is waited for until it
//    next suspends (coroutines cannot be preempted).
//  * If every goroutine stays parked with nothing that could wake one (a
//    deadlock, Config::detect_deadlocks), run destroys them all, main
//    included, and throws goro::Deadlock. A program that Go would not call
//    deadlocked is not: while any thread of the process outside the
//    runtime lives (one that may still feed a channel, count down a
//    WaitGroup, cancel a context; in Go it would be a goroutine, or an M in
//    a cgo call), no deadlock is declared, whatever that thread does. The
//    runtime's own threads (the workers, this thread while it is in run,
//    sysmon, goro::blocking's threads), the kernel's io_uring workers and
//    a sanitizer's helper threads do not count. A waker that is no live
//    thread holds an OutsideWaker.
//  * One runtime at a time per process: calling run while another run is
//    active (from a goroutine or from another thread) throws
//    std::logic_error and changes nothing of the runtime that runs. run may
//    be called again after it returns.
//  * If the runtime cannot start (the system refuses a worker or sysmon
//    thread, file descriptors run out for the pollers, io_uring was asked
//    for by name and is refused: Config::poller), run throws
//    std::system_error with the system's error. main never ran and was
//    destroyed, as were goroutines that other threads started meanwhile;
//    every thread it started is joined and every descriptor it opened is
//    closed, so run may be called again.
template <class T>
T run(Task<T> main, Config config = {}) {
  auto handle = main.release();
  detail::run_main(handle, &handle.promise(), config);
  struct Destroy {
    std::coroutine_handle<detail::TaskPromise<T>> handle;
    ~Destroy() { handle.destroy(); }
  } destroy{handle};
  return handle.promise().take_result();
}

}  // namespace goro

#endif  // GORO_RUN_HPP_
