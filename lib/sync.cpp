// lib/sync.cpp
//
// Shared parts of goro's sync primitives: the runtime semaphore (Sema), the
// parker of outside threads, and the out-of-line slow paths of RWMutex,
// WaitGroup, Cond and Semaphore. Designs: the headers' top comments
// (goro/detail/sync_waiter.hpp for what they share).
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "goro/cond.hpp"
#include "goro/detail/sync_waiter.hpp"
#include "goro/detail/synchronisation_count.hpp"
#include "goro/rwmutex.hpp"
#include "goro/semaphore.hpp"
#include "goro/wait_group.hpp"

namespace goro::detail {

void ResumeHook::never_destroyed(void*) noexcept {
  std::fprintf(stderr, "goro: internal error: a sync ResumeHook was destroyed\n");
  std::abort();
}

// An outside thread's wait: a flag under a std::mutex. The mutex is held
// only to set or test the flag, never across a wait by a worker thread
// (only the outside thread waits, in the condition variable). unpark()
// releases the mutex last: POSIX lets the waiter destroy it as soon as it
// can lock it, so the parker may live on the waiter's stack.
class ThreadParker {
 public:
  void park() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return unparked_; });
  }
  void unpark() {
    std::lock_guard<std::mutex> lock(mu_);
    unparked_ = true;
    cv_.notify_one();  // under the lock: the parker cannot be gone yet
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool unparked_ = false;
};

void unpark(ThreadParker* parker) noexcept { parker->unpark(); }

G* goroutine_to_park(const char* what, const char* reason) {
  G* g = current_goroutine();
  if (g == nullptr) {
    throw std::logic_error(std::string(what) +
                           ": must wait, but not called from a goroutine (no goroutine to park)");
  }
  note_wait(g, reason);
  return g;
}

bool Sema::acquire_or_queue(SyncWaiter* w) noexcept {
  lock_.lock();
  if (banked_ > 0) {
    --banked_;
    lock_.unlock();
    return false;
  }
  waiters_.push_back(w);
  lock_.unlock();  // S3
  return true;
}

void Sema::release(std::uint32_t n) noexcept {
  WakeList<SyncWaiter> to_wake;
  lock_.lock();
  for (; n > 0 && !waiters_.empty(); --n) {
    SyncWaiter* w = waiters_.pop_front();
    w->state = SyncWaiter::kGranted;  // S4: a unit is the waiter's now
    to_wake.push(w);
  }
  banked_ += n;
  lock_.unlock();
  to_wake.wake_all(wake_at_continuation);
}

bool Sema::withdraw(SyncWaiter* w) noexcept {
  lock_.lock();
  const bool removed = waiters_.remove(w);
  lock_.unlock();
  return removed;
}

}  // namespace goro::detail

namespace goro {

// --- RWMutex (steps: goro/rwmutex.hpp) --------------------------------------

bool RWMutex::announce_writer() noexcept {
  // Lock step 2. Acquire: sees the critical sections of the readers that
  // already left (their runlock released in this RMW chain). Release: the
  // negative count is what arriving readers read before queuing.
  const std::int32_t r = reader_count_.fetch_sub(kMaxReaders, std::memory_order_acq_rel);
  // Step 3. Acq_rel: the departing readers' decrements form one RMW chain;
  // whoever brings it to 0 has seen every reader's release.
  return r == 0 || reader_wait_.fetch_add(r, std::memory_order_acq_rel) + r == 0;
}

bool RWMutex::LockAwaiter::await_suspend(std::coroutine_handle<> awaiting) {
  awaiting_ = awaiting;
  if (!have_w_) {
    if (!mutex_waiter_.acquire(have_w_hook_.handle())) return true;  // on_have_w goes on
    if (rw_->announce_writer()) return false;
  }
  return detail::park_on(rw_->writer_sem_, sem_waiter_, awaiting, "sync.RWMutex.Lock");
}

void RWMutex::LockAwaiter::on_have_w(void* frame) noexcept {
  // Lock step 1 is over (we own w); steps 2-3, on our goroutine.
  auto* self = detail::ResumeHook::owner_of<LockAwaiter>(frame);
  self->mutex_waiter_.resumed();
  RWMutex* rw = self->rw_;
  const std::coroutine_handle<> awaiting = self->awaiting_;
  if (rw->announce_writer() ||
      !detail::park_on(rw->writer_sem_, self->sem_waiter_, awaiting, "sync.RWMutex.Lock")) {
    awaiting.resume();
  }
}

bool RWMutex::try_lock() noexcept {
  if (!w_.try_lock()) return false;
  std::int32_t expected = 0;
  // Acquire: sees the departed readers' critical sections.
  if (!reader_count_.compare_exchange_strong(expected, -kMaxReaders, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
    w_.unlock();
    return false;
  }
  return true;
}

bool RWMutex::try_rlock() noexcept {
  std::int32_t c = reader_count_.load(std::memory_order_relaxed);  // a guess: the CAS decides
  while (c >= 0) {
    // Acquire: as rlock's fast path.
    if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void RWMutex::unlock() {
  // Step 1. Release: readers that get in (their add acquires) see the
  // writer's critical section.
  const std::int32_t r =
      reader_count_.fetch_add(kMaxReaders, std::memory_order_release) + kMaxReaders;
  if (r >= kMaxReaders) {
    // Undo, to keep it usable; relaxed: misuse, nothing to publish.
    reader_count_.fetch_sub(kMaxReaders, std::memory_order_relaxed);
    throw std::logic_error("sync: Unlock of unlocked RWMutex");
  }
  if (r > 0) reader_sem_.release(static_cast<std::uint32_t>(r));  // step 2
  w_.unlock();                                                    // step 3
}

void RWMutex::runlock_slow(std::int32_t r) {
  if (r + 1 == 0 || r + 1 == -kMaxReaders) {
    // Undo, to keep it usable; relaxed: misuse, nothing to publish.
    reader_count_.fetch_add(1, std::memory_order_relaxed);
    throw std::logic_error("sync: RUnlock of unlocked RWMutex");
  }
  // Acq_rel: see announce_writer(); the last departing reader wakes the writer.
  if (reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) writer_sem_.release(1);
}

void RWMutex::withdraw_reader(detail::SyncWaiter* w) noexcept {
  if (w->state == detail::SyncWaiter::kGranted) {
    w->state = detail::SyncWaiter::kIdle;
    runlock();  // a read lock it never used; counted, so this cannot throw
    return;
  }
  // Relaxed: shutdown, no worker runs; nothing is published.
  if (reader_sem_.withdraw(w)) reader_count_.fetch_sub(1, std::memory_order_relaxed);
}

void RWMutex::withdraw_writer(detail::SyncWaiter* w) noexcept {
  if (w->state == detail::SyncWaiter::kGranted) {
    w->state = detail::SyncWaiter::kIdle;
    unlock();  // the write lock it never used; held, so this cannot throw
    return;
  }
  if (!writer_sem_.withdraw(w)) return;
  // Undo lock step 2. Relaxed: shutdown, no worker runs (see the file
  // comment for outside threads); the releases below order the wakeups.
  const std::int32_t counted =
      reader_count_.fetch_add(kMaxReaders, std::memory_order_relaxed) + kMaxReaders;
  const std::int32_t holding = reader_wait_.exchange(0, std::memory_order_relaxed);
  if (counted > holding) reader_sem_.release(static_cast<std::uint32_t>(counted - holding));
  w_.unlock();
}

// --- WaitGroup (steps: goro/wait_group.hpp) ---------------------------------

namespace {
std::uint64_t counter_delta(std::int32_t delta) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
}
}  // namespace

void WaitGroup::add(std::int32_t delta) {
  // Step 1. Acq_rel: release publishes what this goroutine did before
  // done() to the waiters (who acquire the counter, or are woken by the
  // adder that read this RMW chain); acquire lets the adder that reaches 0
  // pass everybody's work on through the sema.
  const std::uint64_t state =
      state_.fetch_add(counter_delta(delta), std::memory_order_acq_rel) + counter_delta(delta);
  const auto v = static_cast<std::int32_t>(state >> kCounterShift);
  const auto w = static_cast<std::uint32_t>(state);
  if (v < 0) {  // step 2; undo, relaxed: misuse, nothing to publish
    state_.fetch_sub(counter_delta(delta), std::memory_order_relaxed);
    throw std::logic_error("sync: negative WaitGroup counter");
  }
  if (w != 0 && delta > 0 && v == delta) {
    throw std::logic_error("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  if (v > 0 || w == 0) return;  // step 3
  // Step 4. Nobody else may touch the word now (W2); relaxed suffices.
  if (state_.load(std::memory_order_relaxed) != state) {
    throw std::logic_error("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  state_.store(0, std::memory_order_relaxed);
  sema_.release(w);
}

bool WaitGroup::count_waiter() noexcept {
  // Acquire on every load: a counter seen at 0 must show the workers' writes.
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> kCounterShift) == 0) return false;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acquire,
                                     std::memory_order_acquire)) {
      return true;
    }
  }
}

void WaitGroup::check_not_reused() const {
  // Relaxed: a misuse check; the wakeup itself came through the sema.
  if (state_.load(std::memory_order_relaxed) != 0) {
    throw std::logic_error("sync: WaitGroup is reused before previous Wait has returned");
  }
}

void WaitGroup::withdraw(detail::SyncWaiter* w) noexcept {
  if (!sema_.withdraw(w)) return;  // released: the adder already reset the word
  // Still queued, so the adder that brings the counter to 0 has not reset
  // the word yet and counts us: uncount. Relaxed: nothing is published (the
  // waiter is gone); the CAS keeps a concurrent add from being lost. A zero
  // count means that adder reset the word after our dequeue check: its
  // release banks the unit meant for us, as for any waiter it missed.
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  while (static_cast<std::uint32_t>(state) != 0 &&
         !state_.compare_exchange_weak(state, state - 1, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
  }
}

void WaitGroup::wait_blocking() {
  if (detail::current_goroutine() != nullptr) {
    throw std::logic_error(
        "goro::WaitGroup::wait_blocking on a goroutine (its worker must not block): "
        "use co_await wait()");
  }
  if (counter_is_zero() || !count_waiter()) return;
  detail::ThreadParker parker;
  detail::SyncWaiter waiter;
  waiter.prepare(nullptr, nullptr);
  waiter.thread = &parker;
  if (sema_.acquire_or_queue(&waiter)) parker.park();
  check_not_reused();
}

// --- Cond (steps: goro/cond.hpp) --------------------------------------------

bool Cond::WaitAwaiter::await_ready() const {
  // Step 1 (Go fails in the Unlock that Wait calls).
  if (!mutex_->is_locked()) throw std::logic_error("sync: Cond wait with an unlocked mutex");
  return false;
}

void Cond::WaitAwaiter::await_suspend(std::coroutine_handle<> awaiting) {
  // Step 2.
  awaiting_ = awaiting;
  waiter_.prepare(detail::goroutine_to_park("goro::Cond::wait", "sync.Cond.Wait"), hook_.handle());
  Cond* cond = cond_;  // S3: after queuing, nothing of *this
  Mutex* mutex = mutex_;
  cond->lock_.lock();
  cond->waiters_.push_back(&waiter_);
  cond->lock_.unlock();
  mutex->unlock();  // C1: after queuing; locked, as await_ready checked
}

void Cond::WaitAwaiter::on_signal(void* frame) noexcept {
  // Step 3, on our goroutine: take the mutex again.
  auto* self = detail::ResumeHook::owner_of<WaitAwaiter>(frame);
  const std::coroutine_handle<> awaiting = self->awaiting_;
  if (self->relock_.acquire(awaiting)) awaiting.resume();
}

void Cond::signal() noexcept {
  detail::count_synchronisation();  // for sysmon (synchronisation_count.hpp)
  lock_.lock();
  detail::SyncWaiter* w = waiters_.pop_front();
  lock_.unlock();
  if (w != nullptr) detail::wake(w, w->continuation);
}

void Cond::broadcast() noexcept {
  detail::count_synchronisation();  // for sysmon (synchronisation_count.hpp)
  detail::WakeList<detail::SyncWaiter> to_wake;
  lock_.lock();
  while (!waiters_.empty()) to_wake.push(waiters_.pop_front());
  lock_.unlock();
  to_wake.wake_all(detail::wake_at_continuation);
}

void Cond::withdraw(detail::SyncWaiter* w) noexcept {
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
}

// --- Semaphore (steps: goro/semaphore.hpp) ----------------------------------

Semaphore::Semaphore(std::int64_t size) : size_(size) {
  if (size < 0) throw std::invalid_argument("goro::Semaphore: negative size");
}

bool Semaphore::acquire_or_lock(std::int64_t n) {
  if (n < 0 || n > size_) {  // step 1
    throw std::invalid_argument("goro::Semaphore::acquire: weight " + std::to_string(n) +
                                " outside [0, size " + std::to_string(size_) + "]");
  }
  lock_.lock();
  if (size_ - cur_ >= n && waiters_.empty()) {  // step 2
    cur_ += n;
    lock_.unlock();
    return true;
  }
  if (detail::current_goroutine() == nullptr) {
    lock_.unlock();
    (void)detail::goroutine_to_park("goro::Semaphore::acquire", "semacquire");  // throws
  }
  return false;  // keep the lock: queue_and_unlock runs next
}

void Semaphore::queue_and_unlock(detail::SyncWaiter* w, std::coroutine_handle<> awaiting) noexcept {
  // Step 3.
  const std::int64_t weight = w->weight;
  w->prepare(detail::goroutine_to_park("goro::Semaphore::acquire", "semacquire"), awaiting);
  w->weight = weight;
  waiters_.push_back(w);
  lock_.unlock();  // S3
}

bool Semaphore::try_acquire(std::int64_t n) noexcept {
  if (n < 0 || n > size_) return false;
  lock_.lock();
  const bool ok = size_ - cur_ >= n && waiters_.empty();
  if (ok) cur_ += n;
  lock_.unlock();
  return ok;
}

void Semaphore::release(std::int64_t n) {
  detail::count_synchronisation();  // for sysmon (synchronisation_count.hpp)
  detail::WakeList<detail::SyncWaiter> to_wake;
  lock_.lock();
  if (n < 0 || n > cur_) {
    lock_.unlock();
    throw std::logic_error("semaphore: released more than held");
  }
  cur_ -= n;
  grant_locked(to_wake);
  lock_.unlock();
  to_wake.wake_all(detail::wake_at_continuation);
}

void Semaphore::grant_locked(detail::WakeList<detail::SyncWaiter>& to_wake) noexcept {
  // E2: grant from the front only.
  while (!waiters_.empty() && size_ - cur_ >= waiters_.front()->weight) {
    detail::SyncWaiter* w = waiters_.pop_front();
    cur_ += w->weight;
    w->state = detail::SyncWaiter::kGranted;  // S4: the units go back if it never runs
    to_wake.push(w);
  }
}

bool Semaphore::acquire_or_lock(ContextAcquireAwaiter& a) {
  const std::int64_t n = a.waiter_.weight;
  // Step 1.
  if (n < 0) {
    throw std::invalid_argument("goro::Semaphore::acquire: negative weight " + std::to_string(n));
  }
  if (absl::Status e = a.ctx_.err(); !e.ok()) {
    a.result_ = std::move(e);
    return true;
  }
  if (n > size_ && a.ctx_.done().nil()) {
    throw std::invalid_argument("goro::Semaphore::acquire: weight " + std::to_string(n) +
                                " over size " + std::to_string(size_) +
                                ", and a context that is never done");
  }
  // Step 2.
  if (n <= size_ && try_acquire(n)) return true;
  // Throws outside a goroutine.
  (void)detail::goroutine_to_park("goro::Semaphore::acquire", "semacquire");
  // Step 3. The callback may run right here, on this thread, if ctx was
  // cancelled since step 1: it takes the lock, so we do not hold it yet.
  a.callback_.emplace(a.ctx_.stop_token(), ContextAcquireAwaiter::Canceller{&a});
  lock_.lock();
  if (a.cancelled_) {
    lock_.unlock();
    return true;  // await_resume gives ctx.err()
  }
  if (n <= size_ && size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    // Granted: a callback that runs before the reset below must leave the
    // outcome alone (step 4); await_resume clears it.
    a.waiter_.state = detail::SyncWaiter::kGranted;
    lock_.unlock();
    a.callback_.reset();
    return true;
  }
  return false;  // keep the lock: queue_and_unlock runs next
}

void Semaphore::queue_and_unlock(ContextAcquireAwaiter& a,
                                 std::coroutine_handle<> awaiting) noexcept {
  // Step 3, the end.
  const std::int64_t weight = a.waiter_.weight;
  a.waiter_.prepare(detail::goroutine_to_park("goro::Semaphore::acquire", "semacquire"), awaiting);
  a.waiter_.weight = weight;
  if (weight > size_) {
    a.parked_aside_ = true;  // only the callback wakes it
  } else {
    waiters_.push_back(&a.waiter_);
  }
  lock_.unlock();  // S3
}

void Semaphore::cancel_waiter(ContextAcquireAwaiter& a) noexcept {
  // Step 4.
  detail::WakeList<detail::SyncWaiter> to_wake;
  lock_.lock();
  bool wake_it = false;
  if (a.waiter_.queued()) {
    const bool was_front = waiters_.front() == &a.waiter_;
    waiters_.remove(&a.waiter_);
    if (was_front) grant_locked(to_wake);
    wake_it = true;
  } else if (a.parked_aside_) {
    a.parked_aside_ = false;
    wake_it = true;
  }
  // Not granted: the goroutine is parked (woken below) or about to queue
  // (it sees the flag under the lock). Granted: the grant stands.
  if (a.waiter_.state != detail::SyncWaiter::kGranted) a.cancelled_ = true;
  lock_.unlock();
  to_wake.wake_all(detail::wake_at_continuation);
  if (wake_it) detail::wake(&a.waiter_, a.waiter_.continuation);  // last touch (S2)
}

void Semaphore::withdraw(detail::SyncWaiter* w) noexcept {
  if (w->state == detail::SyncWaiter::kGranted) {
    w->state = detail::SyncWaiter::kIdle;
    release(w->weight);  // units it never used; held, so this cannot throw
    return;
  }
  detail::WakeList<detail::SyncWaiter> to_wake;
  lock_.lock();
  const bool was_front = waiters_.front() == w;
  if (waiters_.remove(w) && was_front) grant_locked(to_wake);
  lock_.unlock();
  to_wake.wake_all(detail::wake_at_continuation);
}

}  // namespace goro
