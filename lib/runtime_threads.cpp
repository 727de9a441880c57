// lib/runtime_threads.cpp: a Runtime's life (runtime.hpp): making its Ps,
// starting its threads all or nothing, each worker's life, stopping and
// the shutdown sweep; and the test seam of runtime_threads.hpp.
#include "runtime_threads.hpp"

#include <pthread.h>
#include <sys/prctl.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "alloc/allocator.hpp"
#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/chan_lock.hpp"
#include "goro/task.hpp"
#include "runtime.hpp"
#include "runtime_state.hpp"

namespace goro::detail {
namespace {

// The test seam of runtime_threads.hpp: starts left before refusals begin
// (negative: never refuse). Relaxed: tests set it before run() starts, and
// the starts that consume it need only the compare-exchange's atomicity.
std::atomic<int> thread_starts_before_refusal{-1};

// The PCores of `ps`, for the scheduler core.
std::vector<PCore*> cores_of(const std::vector<P*>& ps) {
  return std::vector<PCore*>(ps.begin(), ps.end());
}

std::vector<P*> list_of(const std::vector<std::unique_ptr<P>>& ps) {
  std::vector<P*> list;
  list.reserve(ps.size());
  for (const auto& p : ps) list.push_back(p.get());
  return list;
}

}  // namespace

void fail_runtime_thread_starts_after(int successes) noexcept {
  thread_starts_before_refusal.store(successes, std::memory_order_relaxed);
}

bool runtime_thread_start_refused() noexcept {
  int left = thread_starts_before_refusal.load(std::memory_order_relaxed);
  while (left > 0) {
    if (thread_starts_before_refusal.compare_exchange_weak(left, left - 1,
                                                           std::memory_order_relaxed)) {
      return false;
    }
  }
  return left == 0;
}

Runtime::Runtime(const Config& config, unsigned procs)
    : config_(config),
      poller_(with_multishot_settings(choose_poller(config.poller), config)),
      blocking_calls_(config.max_blocking_threads),
      ps_(make_ps(procs)),
      p_list_(list_of(ps_)),
      scheduler_(cores_of(p_list_)) {
  enable_asymmetric_fences();
  set_active_poller_driver(*poller_.driver);
  poller_.driver->new_run();
  timers_.adopt(p_list_);
}

std::vector<std::unique_ptr<P>> Runtime::make_ps(unsigned procs) {
  const std::uint32_t capacity = config_.local_run_queue_capacity == 0
                                     ? SchedulerTuning::kLocalQueueCapacity
                                     : config_.local_run_queue_capacity;
  const P::Runtimewide runtimewide{*this, timers_, blocking_calls_, sysmon_};
  std::vector<std::unique_ptr<P>> ps;
  ps.reserve(procs);
  try {
    for (unsigned i = 0; i < procs; ++i) {
      // scheduler_ is made after the Ps, from their list: each P only keeps
      // a reference to it until then.
      ps.push_back(std::make_unique<P>(scheduler_, runtimewide, i, capacity));
      // An eventfd (and epoll) each.
      ps.back()->poller =
          poller_.driver->make_poller(*ps.back(), poller_, config_.io_rescue_signal);
      alloc::register_cache(&ps.back()->frame_cache);
    }
  } catch (...) {
    // Out of fds or memory: the registry must not keep caches that die
    // with their Ps here.
    for (auto& p : ps) alloc::unregister_cache(&p->frame_cache);
    throw;
  }
  return ps;
}

Runtime::~Runtime() {
  for (auto& p : ps_) {
    p->frame_cache.flush();
    alloc::unregister_cache(&p->frame_cache);
  }
}

void Runtime::run(G* main) {
  P& p0 = *ps_[0];
  bump(p0.stats.goroutines_started);
  const bool pushed = p0.runq.push(entry_for(main, /*claim=*/false));
  (void)pushed;  // an empty queue always has room
  const int old_timer_slack = start(p0);
  scheduler_.schedule(p0);
  leave_worker(p0, old_timer_slack);
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Every ring is drained (each worker did it as it left); epoll's parked
  // ops are forgotten before the sweep frees their frames.
  poller_.driver->new_run();
  sysmon_.stop();
  // Frames of goroutines parked in blocking calls hold the calls' jobs.
  blocking_calls_.wait_for_none();
  sweep_goroutines();
}

// Starting is all or nothing, so that run() either runs or throws with
// nothing left behind (no thread running, no ring or fd open):
//   1. This thread becomes P 0's worker and attaches its poller (an
//      io_uring ring is created on the thread that will submit to it).
//   2. The other workers start; each attaches its P's poller and reports
//      (report_started), then waits for the verdict. None runs a goroutine
//      before the verdict, so none can have touched main or another P.
//   3. Once all have reported without error, sysmon starts, and the
//      verdict "run" releases the workers.
//   4. On any failure (a thread refused, a ring or fd refused): the
//      verdict "abandon" sends the started workers to detach and exit;
//      they are joined, P 0 detaches, and begin_stop plus the sweep destroy
//      the goroutines that outside threads started meanwhile (they never
//      ran). The error goes up to run_main as a std::system_error.
// Rejected: starting the workers straight into their loops and stopping
// them on failure, as a normal shutdown does: a worker could already have
// stolen main from P 0 and run it, so user code would run in a runtime
// whose run() then reports that it never started.
int Runtime::start(P& p0) {
  bool p0_entered = false;
  int old_timer_slack = -1;
  try {
    old_timer_slack = enter_worker(p0);  // step 1
    p0_entered = true;
    // Reserved, so that push_back cannot throw once a thread runs.
    threads_.reserve(ps_.size() - 1);
    for (std::size_t i = 1; i < ps_.size(); ++i) {  // step 2
      threads_.push_back(start_runtime_thread("worker thread for P " + std::to_string(i),
                                              [this, i] { worker_main(*ps_[i]); }));
    }
    {
      std::unique_lock lock(start_mu_);
      start_cv_.wait(lock, [&] { return start_reports_ == threads_.size(); });
      if (start_error_) std::rethrow_exception(start_error_);
    }
    sysmon_.start();  // step 3
  } catch (...) {
    {  // step 4
      std::lock_guard lock(start_mu_);
      start_verdict_ = StartVerdict::kAbandon;
    }
    start_cv_.notify_all();
    scheduler_.begin_stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    if (p0_entered) leave_worker(p0, old_timer_slack);
    poller_.driver->new_run();
    sweep_goroutines();
    throw;
  }
  {
    std::lock_guard lock(start_mu_);
    start_verdict_ = StartVerdict::kRun;
  }
  start_cv_.notify_all();
  return old_timer_slack;
}

void Runtime::worker_main(P& p) {
  int old_timer_slack;
  try {
    old_timer_slack = enter_worker(p);
  } catch (...) {
    (void)report_started(std::current_exception());
    return;
  }
  if (report_started(nullptr)) scheduler_.schedule(p);
  leave_worker(p, old_timer_slack);
}

bool Runtime::report_started(std::exception_ptr error) {
  std::unique_lock lock(start_mu_);
  ++start_reports_;
  if (error && !start_error_) start_error_ = std::move(error);
  start_cv_.notify_all();
  start_cv_.wait(lock, [this] { return start_verdict_ != StartVerdict::kPending; });
  return start_verdict_ == StartVerdict::kRun;
}

int Runtime::enter_worker(P& p) {
  tls_p = &p;
  assign_chan_lock_thread_id();
  p.spread_probe.attach_to_this_thread();
  // Timers wake idle workers through futex timeouts: no slack, so that a
  // sleep ends when asked rather than up to 50 us later (the default).
  const int old_timer_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
  alloc::tls_frame_cache = &p.frame_cache;
  tls_frame_free_lists = p.frame_cache.free_lists();
  try {
    p.poller->attach();
  } catch (...) {
    alloc::tls_frame_cache = nullptr;
    tls_frame_free_lists = nullptr;
    if (old_timer_slack > 0) prctl(PR_SET_TIMERSLACK, old_timer_slack, 0, 0, 0);
    SpreadProbe::detach_this_thread();
    release_chan_lock_thread_id();
    tls_p = nullptr;
    throw;
  }
  if (p.index != 0) {
    const std::string name = "goro-p" + std::to_string(p.index);
    pthread_setname_np(pthread_self(), name.c_str());
  }
  return old_timer_slack;
}

void Runtime::leave_worker(P& p, int old_timer_slack) noexcept {
  // Cancel and reap every op in this P's ring before any frame goes.
  p.poller->detach();
  p.g_cache.flush(GoroutinePool::instance());
  // Frames freed from now on (the shutdown sweep) go to the central lists.
  p.frame_cache.flush();
  alloc::tls_frame_cache = nullptr;
  tls_frame_free_lists = nullptr;
  if (old_timer_slack > 0) prctl(PR_SET_TIMERSLACK, old_timer_slack, 0, 0, 0);
  SpreadProbe::detach_this_thread();
  release_chan_lock_thread_id();
  tls_p = nullptr;
}

void Runtime::sweep_goroutines() noexcept {
  // Every worker has exited and outside threads can no longer start
  // goroutines (begin_stop refused them): this thread is the only one
  // touching the queues and timers, and no record is born meanwhile. Queue
  // entries and timers are dropped (a timer's node lives in a frame about
  // to be destroyed); the records say what is alive. An outside thread may
  // still release a finished goroutine by dropping its JoinHandle: it
  // leaves join_state at kJoinDone (drop_join_handle), which this walk
  // leaves alone.
  scheduler_.drop_queued();
  timers_.clear();
  GoroutinePool::instance().for_each_record([](GoroutineRecord& g) {
    if (!g.live.load(std::memory_order_relaxed) || g.is_main) return;
    // A finished joinable goroutine keeps its frame for its handle.
    if (g.joinable && g.join_state.load(std::memory_order_acquire) == kJoinDone) return;
    std::coroutine_handle<> root = std::exchange(g.root, nullptr);
    TaskPromiseBase* promise = std::exchange(g.root_promise, nullptr);
    bool recycle_now = true;
    if (g.joinable) {
      // Mark it finished (result: none) so that its handle, when dropped,
      // recycles the record; a handle already dropped leaves it to us.
      recycle_now = g.join_state.exchange(kJoinDone, std::memory_order_acq_rel) == kJoinDetached;
    }
    // Runs the destructors of the goroutine's frames; they may drop other
    // handles (recycling finished records) but cannot start goroutines.
    // A chain of awaits however deep goes in constant stack (task.hpp).
    if (root) destroy_frame_chain(root, *promise);
    destroy_inline_call(g);  // after the frames that may refer to it
    if (recycle_now) recycle_goroutine(nullptr, &g);
  });
}

}  // namespace goro::detail
