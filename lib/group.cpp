// lib/group.cpp
//
// goro::Group: golang.org/x/sync/errgroup on goro's goroutines.
//
// Glossary
//   state    a GroupState, shared (refcounted) by the Group handles and by
//            every goroutine the group runs.
//   active   tasks started (their goroutine spawned) and not yet returned.
//   queue    tasks given to go() while the limit was reached: unstarted
//            Task frames, FIFO.
//   first    the first failure: a non-OK status or an exception, recorded
//            once; what wait() reports.
//   waiters  goroutines parked in wait(), a list of GroupWaiter nodes that
//            live in their awaiters (nothing is allocated to wait).
//
// Invariants (all fields but refs guarded by mu)
//   G1. limit < 0 or active <= limit; the queue is non-empty only while
//       active == limit.
//   G2. waiters is non-empty only while active > 0 or the queue is not
//       empty: whoever brings both to zero takes the whole list, and a
//       waiter enqueues only after checking, under mu, that they are not.
//   G3. A parked waiter is readied exactly once, by the finisher that took
//       it from the list, after mu is released; the finisher reads its
//       `next` before readying it (the frame may be gone right after).
//   G4. first is written once, false -> true; the context is cancelled by
//       the party that wrote it, after unlocking (cancel is thread-safe and
//       calls out: channel wakeups, stop callbacks).
//
// A task, step by step
//   1. go(): lock; with the limit reached, queue the task, unlock, done.
//      Else active++, unlock, spawn run_one(state, task) (a goroutine that
//      holds a reference to the state).
//   2. run_one awaits the task, catching any exception, destroys the
//      task's frame (its parameters, and the callable and arguments of a
//      task made by go(f, args...), die before the task counts as
//      returned, so none outlives wait()), then finish():
//      lock; record the first failure; active--; if a task is queued and
//      the limit allows, dequeue it and active++ again (it takes over the
//      slot); if active == 0 and the queue is empty, take every waiter;
//      unlock; cancel the context if this was the first failure; spawn the
//      dequeued task; ready the waiters.
//   3. wait(): lock; if active == 0 and the queue is empty, return at once;
//      else link the waiter, unlock, park. Resumed (or not parked): cancel
//      the context (errgroup's Wait does, releasing it), report first.
//
// Memory orders: refs as every refcount here (relaxed increments from an
// existing reference, acq_rel decrement so that the freeing thread sees
// all the other holders' writes). Everything else is under mu; the
// SpinLock's acquire/release orders it, and a readied waiter sees the
// finisher's writes through the run queue's hand-over.
//
// Rejected alternatives
//   * Blocking go() when the limit is reached (errgroup's Go): it would
//     have to be co_awaited, which makes the unlimited case, by far the
//     common one, clumsy. A queue of unstarted Task frames bounds the
//     running tasks just as well and costs no parked goroutine.
//   * A WaitGroup plus a mutex-protected error (errgroup's own layout): two
//     objects and two locks where one short critical section suffices.
//   * Accepting only callables, as errgroup's Go takes a func() error: a
//     Task from a coroutine function is as safe and needs no wrapper frame.
//     go(f, args...) wraps the callable in a Task (detail/invoke_task.hpp,
//     invoke_in_frame), so from there on the group handles Tasks only.
#include "goro/group.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <stdexcept>
#include <utility>

#include "goro/detail/goroutine.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/go.hpp"

namespace goro::detail {

class GroupState {
 public:
  // Relaxed: made from an existing reference (the shared_ptr rule).
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // Acq_rel: the deleting thread sees every other holder's writes.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void set_cancel(CancelFunc cancel) noexcept { cancel_ = std::move(cancel); }

  // Step 1.
  void go(Task<absl::Status> task) {
    mu_.lock();
    if (limit_ >= 0 && active_ >= static_cast<std::size_t>(limit_)) {
      try {
        queue_.push_back(std::move(task));
      } catch (...) {
        mu_.unlock();
        throw;
      }
      mu_.unlock();
      return;
    }
    ++active_;
    mu_.unlock();
    start(std::move(task));
  }

  bool try_go(Task<absl::Status> task) {
    mu_.lock();
    if (limit_ >= 0 && active_ >= static_cast<std::size_t>(limit_)) {
      mu_.unlock();
      return false;  // `task` is destroyed unrun
    }
    ++active_;
    mu_.unlock();
    start(std::move(task));
    return true;
  }

  void set_limit(long n) {
    mu_.lock();
    const bool busy = active_ != 0 || !queue_.empty();
    if (!busy) limit_ = n < 0 ? -1 : n;
    mu_.unlock();
    if (busy) throw std::logic_error("goro::Group::set_limit: modified while tasks are active");
  }

  [[nodiscard]] bool idle() noexcept {
    mu_.lock();
    const bool idle = idle_locked();
    mu_.unlock();
    return idle;
  }

  // Step 3: false if the group is idle (do not park).
  bool park(GroupWaiter* waiter) noexcept {
    mu_.lock();
    if (idle_locked()) {
      mu_.unlock();
      return false;
    }
    waiter->next = waiters_;
    waiters_ = waiter;
    mu_.unlock();  // from here the finisher may ready us (G3)
    return true;
  }

  absl::Status result() {
    cancel_();
    mu_.lock();
    absl::Status error = error_;
    std::exception_ptr exception = exception_;
    mu_.unlock();
    if (exception) std::rethrow_exception(exception);
    return error;
  }

  // Step 2, after the task returned.
  void finish(absl::Status status, std::exception_ptr exception) noexcept {
    const bool failure = !status.ok() || exception != nullptr;
    bool first = false;
    Task<absl::Status> next;
    bool start_next = false;
    GroupWaiter* wake = nullptr;
    mu_.lock();
    if (failure && !failed_) {
      failed_ = first = true;
      error_ = std::move(status);
      exception_ = std::move(exception);
    }
    --active_;
    if (!queue_.empty() && (limit_ < 0 || active_ < static_cast<std::size_t>(limit_))) {
      next = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
      start_next = true;
    }
    if (idle_locked()) wake = std::exchange(waiters_, nullptr);
    mu_.unlock();
    if (first) cancel_();  // G4
    if (start_next) start(std::move(next));
    while (wake != nullptr) {
      GroupWaiter* w = wake;
      wake = w->next;  // before readying (G3)
      ready_goroutine(w->g);
    }
  }

 private:
  ~GroupState() = default;
  friend class goro::Group;

  [[nodiscard]] bool idle_locked() const noexcept { return active_ == 0 && queue_.empty(); }

  // Spawns the goroutine for a task whose slot (active_) is already taken.
  void start(Task<absl::Status> task);

  std::atomic<std::uint32_t> refs_{1};
  SpinLock mu_;
  std::size_t active_ = 0;
  long limit_ = -1;
  std::deque<Task<absl::Status>> queue_;
  bool failed_ = false;
  absl::Status error_;
  std::exception_ptr exception_;
  GroupWaiter* waiters_ = nullptr;
  // Set before the state is shared, then only called (thread-safe).
  CancelFunc cancel_;
};

namespace {

// Owns one reference to a GroupState (a run_one parameter).
class GroupRef {
 public:
  explicit GroupRef(GroupState* state) noexcept : state_(state) { state_->add_ref(); }
  GroupRef(GroupRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  GroupRef(const GroupRef&) = delete;
  GroupRef& operator=(const GroupRef&) = delete;
  ~GroupRef() {
    if (state_ != nullptr) state_->release();
  }
  GroupState* operator->() const noexcept { return state_; }

 private:
  GroupState* state_;
};

// The goroutine of one task (parameters, not captures: they live in the
// frame).
Task<void> run_one(GroupRef state, Task<absl::Status> task) {
  absl::Status status;
  std::exception_ptr exception;
  try {
    status = co_await std::move(task);
  } catch (...) {
    exception = std::current_exception();
  }
  task = Task<absl::Status>();  // step 2: the task's frame goes before finish()
  state->finish(std::move(status), std::move(exception));
}

}  // namespace

void GroupState::start(Task<absl::Status> task) {
  try {
    goro::go(run_one(GroupRef(this), std::move(task)));
  } catch (...) {
    // No runtime: the task never runs. Give the slot back, then report.
    finish(absl::OkStatus(), nullptr);
    throw;
  }
}

}  // namespace goro::detail

namespace goro {

Group::Group() : state_(new detail::GroupState()) {}

GroupWithContext Group::with_context(const Context& parent) {
  auto [ctx, cancel] = with_cancel(parent);
  Group group;
  group.state_->set_cancel(std::move(cancel));
  return {std::move(group), std::move(ctx)};
}

Group::Group(const Group& other) noexcept : state_(other.state_) { state_->add_ref(); }
Group::Group(Group&& other) noexcept : state_(other.state_) { state_->add_ref(); }
Group& Group::operator=(Group other) noexcept {
  std::swap(state_, other.state_);
  return *this;
}
Group::~Group() { state_->release(); }

void Group::go(Task<absl::Status> task) { state_->go(std::move(task)); }
bool Group::try_go(Task<absl::Status> task) { return state_->try_go(std::move(task)); }
void Group::set_limit(long n) { state_->set_limit(n); }

bool GroupWaitAwaiter::await_ready() const noexcept { return state_->idle(); }

bool GroupWaitAwaiter::await_suspend(std::coroutine_handle<> awaiting) {
  detail::G* g = detail::require_goroutine("goro::Group::wait");
  g->resume = awaiting;
  detail::note_wait(g, "errgroup.Group.Wait");  // for the deadlock report
  waiter_.g = g;
  return state_->park(&waiter_);
}

absl::Status GroupWaitAwaiter::await_resume() { return state_->result(); }

}  // namespace goro
