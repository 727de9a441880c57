// lib/mutex.hpp
//
// Defines: goro::detail::Mutex and goro::detail::MutexLock, the lock for
// goro's internal, short critical sections (global run queue, idle list,
// goroutine-record pool).
//
// A thin annotated wrapper over std::mutex rather than absl::Mutex: Debian's
// Abseil is not built with ThreadSanitizer instrumentation, so TSan cannot
// see absl::Mutex's happens-before edges and reports false races, whereas
// it intercepts the pthread mutex under std::mutex. The wrapper keeps
// Abseil's thread-safety annotations, so clang's -Wthread-safety still
// checks the locking discipline.
#ifndef GORO_LIB_MUTEX_HPP_
#define GORO_LIB_MUTEX_HPP_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace goro::detail {

class ABSL_LOCKABLE Mutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace goro::detail

#endif  // GORO_LIB_MUTEX_HPP_
