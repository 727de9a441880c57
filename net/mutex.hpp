// net/mutex.hpp: goro::net::internal::Mutex, the lock of NetFd's short
// critical sections: std::mutex behind Abseil's thread-safety annotations.
//
// Not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer
// instrumentation, so TSan cannot see absl::Mutex's happens-before edges
// and reports false races; it does intercept the pthread mutex under
// std::mutex. The annotations keep clang's -Wthread-safety checks. The
// sections hold no wait and no system call of their own; the one thing in
// them that reaches further is a socket's deadline timer (net_fd.hpp, T2):
// disarming it waits for a fire in progress (a stop request and the
// cancellations it runs, all short), and arming it may wake the runtime's
// timer sleeper (one system call, when the timer is the earliest and the
// sleeper sleeps longer), once per deadline expiry, not per operation. So
// a worker thread that finds the lock taken is delayed briefly.
#ifndef GORO_NET_MUTEX_HPP_
#define GORO_NET_MUTEX_HPP_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace goro::net::internal {

class ABSL_LOCKABLE Mutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mutex_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mutex_;
};

}  // namespace goro::net::internal

#endif  // GORO_NET_MUTEX_HPP_
