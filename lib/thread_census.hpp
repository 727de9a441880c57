// lib/thread_census.hpp
//
// Defines: goro::detail::RuntimeThreadMark, which marks the runtime's own
// threads, and goro::detail::outside_thread_alive(), the census of the
// process's threads that the deadlock detector takes before it declares a
// deadlock.
//
// Why: Go declares "all goroutines are asleep" only when no M runs; an M
// blocked in a system call or a cgo call counts as running, because it may
// return and wake a goroutine. A thread of the process outside the goro
// runtime is goro's equivalent of such an M: at any moment it may send on a
// channel, count down a WaitGroup, cancel a context or call go(), and a
// library cannot see what it will do. So while such a thread lives, no
// deadlock is declared, however long every goroutine stays parked. The
// census sorts every thread the kernel lists for the process into:
//   (a) the runtime's own: the workers, sysmon, the syscall threads of
//       goro::blocking (process-wide), and the thread inside run(); each
//       holds a RuntimeThreadMark for as long as it serves the runtime.
//       They are counted whichever runtime they serve, so a runtime that
//       is still being torn down while the next one starts (run() allows
//       one runtime at a time) adds nothing of its own;
//   (b) the kernel's io_uring workers (iou-wrk, iou-sqp), which Linux lists
//       as threads of the process that owns the ring: PF_IO_WORKER in
//       their stat flags. They complete operations that the pollers count
//       already (step 3 of deadlock.cpp), and an idle one lingers for as
//       long as the thread that submitted lives;
//   (c) a sanitizer runtime's helper threads (ThreadSanitizer's background
//       thread, which it starts with the program's first thread), which
//       run no user code. "Support threads" below;
//   (d) everything else: threads outside the runtime, possible wakers.
// outside_thread_alive() is true when a thread of kind (d) lives.
//
// Invariants:
//   * A mark exists only while its thread lives: it is made after the
//     thread starts and dropped before the thread ends. The census can
//     therefore take a runtime thread for an outside one (while it starts,
//     while it ends, while the kernel still lists a thread already joined),
//     which only delays a declaration until the next census, but never an
//     outside thread for a runtime one. The census holds the lock that
//     dropping a mark takes, so a thread found marked is still alive and
//     its thread id cannot have been reused meanwhile.
//   * The census reads /proc only when sysmon is about to declare a
//     deadlock, never on a hot path. A mark costs a lock and a few pointer
//     writes at the start and the end of a thread.
//
// Census (outside_thread_alive), step by step:
//   1. Under the lock, collect the thread ids of all marks, sorted.
//   2. List /proc/self/task. For each thread id that is not marked, read
//      its stat: a thread gone meanwhile is skipped, so is a kernel
//      io_uring worker, and so is a support thread (recorded as thread id
//      and start time, so that a later thread reusing the id is not taken
//      for it). Any other thread is outside the runtime: answer true.
//   3. When the census cannot be taken (no /proc, no memory), answer true:
//      a deadlock is never declared on a guess.
//
// Support threads are recognised at two moments when no thread of the
// program can be running yet:
//   * when goro is loaded: a constructor that runs before every ordinary
//     static initializer checks whether a sanitizer runtime is linked (its
//     interface symbol resolves). If so it starts and joins one probe
//     thread, because ThreadSanitizer starts its helper with the first
//     thread the program creates, and then records every thread listed
//     except itself and the probe;
//   * in a child made by fork(), where only the forking thread survives:
//     a sanitizer runtime restarts its helper in its own fork handler,
//     registered at its initialization and so run before goro's
//     (pthread_atfork runs child handlers in registration order). goro's
//     handler records every thread listed except the forking one as a
//     support thread, and keeps only the forking thread's marks (the
//     others belong to threads that do not exist in the child).
// Without a sanitizer runtime nothing is recorded: there, every unmarked
// thread that is not an io_uring worker is a possible waker. A helper that
// a sanitizer starts after goro's constructor is not recognised:
// AddressSanitizer starts one only when its options ask for an RSS limit or
// a heap profile, from a static initializer of its runtime that may run
// after goro's. With such options no deadlock is declared (the safe side).
//
// Rejected alternatives:
//   * Counting (the thread count in /proc/self/stat against a count of the
//     runtime's threads): helper threads of sanitizers and of the kernel
//     must be told apart one by one anyway, and in a forked child a count
//     inherited from the parent counts threads that do not exist there, so
//     that an outside thread could hide behind it.
//   * Recognising sanitizer helpers by their signal mask (they start with
//     signals blocked): the mask differs between sanitizer versions
//     (ThreadSanitizer's helper leaves the synchronous signals open), and a
//     program's own thread may block as many. Or by name: they carry the
//     process's name, like the program's threads.
//   * Counting only threads that have used a goro object from outside (a
//     channel's try_send, WaitGroup::done, a context's cancel): a thread
//     that will feed a channel later may not have touched it yet, and Go
//     does not wait for a first touch either.
//   * Trusting only threads that hold a goro::OutsideWaker: a program that
//     Go would run to completion would be killed unless its author knew to
//     add one. OutsideWaker remains for wakers the census cannot see.
//
// Limits: a thread that will never wake a goroutine (a watchdog, a thread
// blocked on a terminal for ever) also holds a declaration off, as an M
// blocked in a cgo call does in Go. A waker that is not a live thread of
// this process (a thread another library will start later, a signal
// handler) is not seen: it holds a goro::OutsideWaker.
#ifndef GORO_LIB_THREAD_CENSUS_HPP_
#define GORO_LIB_THREAD_CENSUS_HPP_

#include <sys/types.h>

namespace goro::detail {

// Marks the calling thread as one of the runtime's own while the mark
// lives: made on the thread it marks, destroyed there too, before the
// thread ends. Marks nest (a thread marked twice is one runtime thread).
// Tests use one to hide a thread from the census, standing for a waker
// that the census cannot see.
class RuntimeThreadMark {
 public:
  RuntimeThreadMark() noexcept;
  ~RuntimeThreadMark();
  RuntimeThreadMark(const RuntimeThreadMark&) = delete;
  RuntimeThreadMark& operator=(const RuntimeThreadMark&) = delete;

 private:
  friend struct ThreadCensus;
  pid_t thread_id_;
  // The process-wide list of marks (under the census lock).
  RuntimeThreadMark* previous_ = nullptr;
  RuntimeThreadMark* next_ = nullptr;
  // The mark this one nests in on the same thread (nullptr: outermost).
  RuntimeThreadMark* outer_ = nullptr;
};

// Any thread; meant for sysmon when it is about to declare a deadlock.
// Whether a thread of the process that is not the runtime's own, not a
// kernel io_uring worker and not a sanitizer's helper lives now (or
// whether the census could not be taken). Reads /proc: not for hot paths.
[[nodiscard]] bool outside_thread_alive() noexcept;

}  // namespace goro::detail

#endif  // GORO_LIB_THREAD_CENSUS_HPP_
