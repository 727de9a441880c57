// goro/detail/lock_guard.hpp
//
// Defines: goro::detail::BasicLockGuard<M, Release> (an RAII owner of one
// lock, released by Release) and ScopedLockAwaiter<Awaiter, Guard> (an
// awaiter that takes a lock as Awaiter does and then returns a Guard owning
// it). goro::LockGuard (mutex.hpp) and goro::ReadLockGuard (rwmutex.hpp)
// are BasicLockGuards; every scoped_lock() and scoped_rlock() returns a
// ScopedLockAwaiter.
//
// Design
//
// A guard is a pointer to the locked object, null once released: moving
// one hands the lock over, and destroying one that owns the lock releases
// it. Guards may be held across co_await: goro's locks belong to
// goroutines, not threads, so a goroutine that moves to another worker
// still owns them.
//
// Rejected alternative: one guard class per lock kind (Mutex, write lock,
// read lock): the same move and release logic once per kind; here the
// kinds differ only in the function that releases.
#ifndef GORO_DETAIL_LOCK_GUARD_HPP_
#define GORO_DETAIL_LOCK_GUARD_HPP_

#include <utility>

namespace goro::detail {

// What a guard calls to release its lock: m.unlock().
struct CallUnlock {
  template <class M>
  void operator()(M& m) const {
    m.unlock();
  }
};

// An RAII owner of one lock of M, released with Release (see LockGuard and
// ReadLockGuard).
template <class M, class Release>
class [[nodiscard(
    "the mutex is unlocked when the guard is destroyed: keep it in a named "
    "local")]] BasicLockGuard {
 public:
  // Adopts a lock the caller holds.
  explicit BasicLockGuard(M & m) noexcept : m_(&m) {}
  BasicLockGuard(BasicLockGuard && other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
  BasicLockGuard& operator=(BasicLockGuard&& other) noexcept {
    if (this != &other) {
      reset();
      m_ = std::exchange(other.m_, nullptr);
    }
    return *this;
  }
  ~BasicLockGuard() { reset(); }

  // Unlocks now (idempotent).
  void unlock() { reset(); }
  [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }

 private:
  void reset() {
    if (M* m = std::exchange(m_, nullptr)) Release()(*m);
  }
  M* m_;
};

// co_await x.scoped_lock() (and scoped_rlock()): takes the lock as Awaiter
// does, then returns a Guard that owns it. Awaiter gives its derived
// classes `locked()`, the object the Guard releases.
template <class Awaiter, class Guard>
class [[nodiscard(
    "co_await it: the lock is not taken until the scoped lock is awaited")]] ScopedLockAwaiter
    : public Awaiter {
 public:
  using Awaiter::Awaiter;
  Guard await_resume() noexcept {
    Awaiter::await_resume();
    return Guard(this->locked());
  }
};

}  // namespace goro::detail

#endif  // GORO_DETAIL_LOCK_GUARD_HPP_
