// lib/scheduler.cpp: the G/M/P scheduler. The design, its invariants and
// the spin/park handshake are described at the top of scheduler.hpp; the
// comments here say why each step and memory order is what it is.
#include "scheduler.hpp"

#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>

#include "absl/container/inlined_vector.h"
#include "alloc/allocator.hpp"
#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/chan_lock.hpp"
#include "goro/detail/cpu_relax.hpp"
#include "goro/detail/fast_random.hpp"
#include "goro/task.hpp"
#include "runtime_state.hpp"
#include "runtime_threads.hpp"
#include "syscall_threads.hpp"

namespace goro::detail {
namespace {

// The test seam of runtime_threads.hpp: starts left before refusals begin
// (negative: never refuse). Relaxed: tests set it before run() starts, and
// the starts that consume it need only the compare-exchange's atomicity.
std::atomic<int> thread_starts_before_refusal{-1};

}  // namespace

Scheduler::Scheduler(const Config& config, unsigned procs)
    : config_(config), poller_(choose_poller(config.poller)) {
  enable_asymmetric_fences();
  set_active_poller_kind(poller_.kind);
  if (poller_.kind == PollerKind::kEpoll) epoll_new_epoch();
  const std::uint32_t capacity = config.local_run_queue_capacity == 0
                                     ? SchedulerTuning::kLocalQueueCapacity
                                     : config.local_run_queue_capacity;
  ps_.reserve(procs);
  try {
    for (unsigned i = 0; i < procs; ++i) {
      ps_.push_back(std::make_unique<P>(*this, i, capacity));
      ps_.back()->rng = 0x243f6a8885a308d3ULL * (i + 1);
      // An eventfd (and epoll) each.
      ps_.back()->poller = Poller::make(*ps_.back(), poller_, config.io_rescue_signal);
      alloc::register_cache(&ps_.back()->frame_cache);
    }
  } catch (...) {
    // Out of fds or memory: no destructor runs for a half-built object, so
    // the registry must not keep caches that die with their Ps here.
    for (auto& p : ps_) alloc::unregister_cache(&p->frame_cache);
    throw;
  }
  {
    MutexLock lock(stall_mu_);
    open_stall_.assign(procs, 0);
  }
  // Strides coprime to the number of Ps visit every P exactly once from any
  // starting point (Go's randomOrder).
  for (std::uint32_t s = 1; s <= procs; ++s) {
    if (std::gcd(s, static_cast<std::uint32_t>(procs)) == 1) coprimes_.push_back(s);
  }
}

Scheduler::~Scheduler() {
  for (auto& p : ps_) {
    p->frame_cache.flush();
    alloc::unregister_cache(&p->frame_cache);
  }
}

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

P* Scheduler::current_p() noexcept { return tls_p; }

void Scheduler::run(G* main) {
  P& p0 = *ps_[0];
  bump(p0.stats.goroutines_started);
  const bool pushed = p0.runq.push(entry_for(main, /*claim=*/false));
  (void)pushed;  // an empty queue always has room
  const int old_timer_slack = start(p0);
  schedule(p0);
  leave_worker(p0, old_timer_slack);
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Every ring is drained (each worker did it as it left); epoll's parked
  // ops are forgotten before the sweep frees their frames.
  if (poller_.kind == PollerKind::kEpoll) epoll_new_epoch();
  sysmon_.stop();
  // Frames of goroutines parked in blocking calls hold the calls' jobs.
  wait_for_blocking_calls();
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
int Scheduler::start(P& p0) {
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
    begin_stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    if (p0_entered) leave_worker(p0, old_timer_slack);
    if (poller_.kind == PollerKind::kEpoll) epoll_new_epoch();
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

void Scheduler::worker_main(P& p) {
  int old_timer_slack;
  try {
    old_timer_slack = enter_worker(p);
  } catch (...) {
    (void)report_started(std::current_exception());
    return;
  }
  if (report_started(nullptr)) schedule(p);
  leave_worker(p, old_timer_slack);
}

bool Scheduler::report_started(std::exception_ptr error) {
  std::unique_lock lock(start_mu_);
  ++start_reports_;
  if (error && !start_error_) start_error_ = std::move(error);
  start_cv_.notify_all();
  start_cv_.wait(lock, [this] { return start_verdict_ != StartVerdict::kPending; });
  return start_verdict_ == StartVerdict::kRun;
}

int Scheduler::enter_worker(P& p) {
  tls_p = &p;
  assign_chan_lock_thread_id();
  // Relaxed: sysmon reads them as hints.
  p.chan_lock_id.store(chan_lock_thread_id, std::memory_order_relaxed);
  if (clockid_t clock; pthread_getcpuclockid(pthread_self(), &clock) == 0) {
    p.cpu_clock.store(clock, std::memory_order_relaxed);
  }
  // Timers wake idle workers through futex timeouts: no slack, so that a
  // sleep ends when asked rather than up to 50 us later (the default).
  const int old_timer_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
  alloc::tls_frame_cache = &p.frame_cache;
  try {
    p.poller->attach();
  } catch (...) {
    alloc::tls_frame_cache = nullptr;
    if (old_timer_slack > 0) prctl(PR_SET_TIMERSLACK, old_timer_slack, 0, 0, 0);
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

void Scheduler::schedule(P& p) {
  for (;;) {
    const Found found = find_runnable(p);
    if (found.g == nullptr) break;  // stopping
    if (p.spinning) reset_spinning(p);
    if (!found.inherit_time) {
      // Owner-only counter read by thieves: relaxed load + store.
      p.schedtick.store(p.schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    bump(p.stats.schedules);
    tls_g = found.g;
    // Relaxed: read by sysmon, which tolerates a stale value for a round.
    p.running_goroutine.store(found.g->id, std::memory_order_relaxed);
    // Runs until the goroutine (or one it transfers to) parks or finishes.
    // After this returns the goroutine may already run elsewhere: touch
    // nothing of it.
    found.g->resume.resume();
    tls_g = nullptr;
    p.running_goroutine.store(0, std::memory_order_relaxed);
    ++p.loop_epoch;
    // The goroutine suspended: a preempt request sysmon made is honoured.
    if (p.preempt.load(std::memory_order_relaxed))
      p.preempt.store(false, std::memory_order_relaxed);
  }
  if (p.spinning) {
    p.spinning = false;
    nmspinning_.fetch_sub(1, std::memory_order_relaxed);  // stopping: nobody waits on it
  }
}

void Scheduler::leave_worker(P& p, int old_timer_slack) noexcept {
  // Cancel and reap every op in this P's ring before any frame goes.
  p.poller->detach();
  p.g_cache.flush(GoroutinePool::instance());
  // Frames freed from now on (the shutdown sweep) go to the central lists.
  p.frame_cache.flush();
  alloc::tls_frame_cache = nullptr;
  if (old_timer_slack > 0) prctl(PR_SET_TIMERSLACK, old_timer_slack, 0, 0, 0);
  release_chan_lock_thread_id();
  tls_p = nullptr;
}

G* Scheduler::decode(Entry entry) noexcept {
  if (entry == 0) return nullptr;  // tombstone
  G* g = reinterpret_cast<G*>(entry & ~kEntryFlags);
  if ((entry & kClaimBit) == 0) return g;
  std::uint32_t expected = static_cast<std::uint32_t>(Claim::kUnclaimed);
  // Cheap check first: stale entries (the common loser) skip the RMW.
  if (g->claim.load(std::memory_order_relaxed) != expected) return nullptr;
  // Acquire on success: pairs with new_goroutine's release store of
  // kUnclaimed, so the record's fields (resume, root...) are visible.
  // Relaxed on failure: the entry is stale and we touch nothing else.
  if (g->claim.compare_exchange_strong(expected, static_cast<std::uint32_t>(Claim::kClaimed),
                                       std::memory_order_acquire, std::memory_order_relaxed)) {
    return g;
  }
  return nullptr;
}

G* Scheduler::pop_local_queue(P& p) noexcept {
  Entry entry;
  while (p.runq.pop(entry)) {
    if (G* g = decode(entry)) return g;
  }
  return nullptr;
}

G* Scheduler::pop_spawn_stack(P& p) noexcept {
  Entry entry;
  while (p.spawned.pop(entry)) {
    if (G* g = decode(entry)) return g;
  }
  return nullptr;
}

Scheduler::Found Scheduler::local_get(P& p) noexcept {
  // Only this thread stores non-zero values here, so the record behind the
  // entry is already visible.
  const Entry next = p.runnext.load(std::memory_order_relaxed);
  if (next != 0 && ++p.runnext_chain > SchedulerTuning::kRunnextChain) {
    // The chain is long enough: the queues' work first, if there is any
    // (runnext stays where it is and goes next).
    p.runnext_chain = 0;
    if (G* g = pop_local_queue(p)) return {g, false};
    if (G* g = pop_spawn_stack(p)) return {g, false};
  }
  if (next != 0 && take_runnext(p, next)) {
    if (G* g = decode(next)) return {g, true};
  }
  p.runnext_chain = 0;
  // New spawns, newest first, unless the local queue has waited through
  // kSpawnChain of them.
  if (++p.spawn_chain <= SchedulerTuning::kSpawnChain || p.runq.empty()) {
    if (G* g = pop_spawn_stack(p)) return {g, false};
  }
  p.spawn_chain = 0;
  if (G* g = pop_local_queue(p)) return {g, false};
  return {pop_spawn_stack(p), false};  // skipped above for fairness
}

bool Scheduler::runq_put(P& p, Entry entry, Placement placement) {
  if (placement != Placement::kTail && p.runnext.load(std::memory_order_relaxed) == 0) {
    // Only this thread stores non-zero values, so a free slot stays free
    // until our store (thieves only ever turn a value into 0): no exchange
    // needed, for kRunNext either. Release: a thief that CASes it out sees
    // the record.
    p.runnext.store(entry, std::memory_order_release);
    return false;
  }
  if (placement == Placement::kRunNext) {
    // Release: a thief that CASes the new entry out of runnext must see the
    // goroutine's record. What comes back was stored by us (or is 0 if a
    // thief took it), so no acquire is needed.
    entry = p.runnext.exchange(entry, std::memory_order_release);
    if (entry == 0) return false;
  }
  if (placement == Placement::kSpawn) {
    // Detached goroutines only (start_goroutine): a claim entry needs the
    // local queue's positions for the inline join's tombstone.
    assert((entry & kClaimBit) == 0);
    if (p.spawned.push(entry)) return true;
    // Full: the local queue's tail, below.
  }
  for (;;) {
    if ((entry & kClaimBit) != 0) {
      // Remember where the claim entry goes so that an inline join on this
      // P can tombstone it in O(1). Relaxed: only this thread uses it.
      G* g = reinterpret_cast<G*>(entry & ~kEntryFlags);
      g->queued_on.store(&p, std::memory_order_relaxed);
      g->queue_position.store(p.runq.next_position(), std::memory_order_relaxed);
    }
    // A handoff entry is held back from thieves: no point waking one.
    if (p.runq.push(entry)) return (entry & kHandoffBit) == 0;
    // Full: move the older half and `entry` to the global queue in one
    // batch (Go's runqputslow), so that the next 128 pushes are lock-free.
    absl::InlinedVector<Entry, SchedulerTuning::kLocalQueueCapacity / 2 + 1> batch(
        p.runq.capacity() / 2 + 1);
    const std::uint32_t n = p.runq.spill_half(batch.data());
    if (n == 0) continue;  // a thief made room
    // Entries of goroutines joined inline already stay out of the global
    // queue, which a P busy with inline joins may not pop for a long time.
    for (std::uint32_t i = 0; i < n; ++i) {
      if (entry_is_stale(batch[i])) batch[i] = 0;
    }
    batch[n] = entry;
    global_.push_batch(batch.data(), n + 1);
    bump(p.stats.local_queue_overflows);
    return true;
  }
}

G* Scheduler::global_get(P& p, std::uint32_t max) {
  const std::size_t queued = global_.size_hint();
  if (queued == 0) return nullptr;
  std::size_t n = std::min<std::size_t>(queued / ps_.size() + 1, p.runq.capacity() / 2);
  if (max != 0) n = std::min<std::size_t>(n, max);
  absl::InlinedVector<Entry, SchedulerTuning::kLocalQueueCapacity / 2> batch(n);
  n = global_.pop_batch(batch.data(), n);
  if (n == 0) return nullptr;
  bump(p.stats.global_queue_takes);
  G* result = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    if (result == nullptr) {
      result = decode(batch[i]);
    } else {
      runq_put(p, batch[i], Placement::kTail);
    }
  }
  return result;
}

// Taking runnext, owner and thief (an asymmetric Dekker handshake, as the
// spin/park one): the owner takes runnext on almost every handoff, a thief
// only when the owner has left it alone for kRunnextGraceNanos. So the
// owner pays plain stores and a compiler barrier, the thief a membarrier.
//   Owner: a. taking = X; b. light fence; c. if no thief is announced
//          (acquire), re-read runnext: still X, take it with a plain store
//          of 0; otherwise race the thieves with a CAS X -> 0.
//          d. taking = 0 (release).
//   Thief: e. thieves++; f. heavy fence; g. if taking == X, the owner is
//          taking it: back off; otherwise CAS runnext X -> 0. h. thieves--.
// The fences make a-c and e-g a Dekker pair: either the owner sees the
// thief (c) and uses the CAS, so exactly one CAS wins, or the thief sees
// the owner's `taking` (g) and backs off. The owner may instead read the
// count after a thief already left (h): that thief's CAS then happened
// before, and the re-read in c sees its 0. A thief that reads taking == 0
// because the owner already finished (d) also sees the owner's plain store
// of 0 (d is a release after it, g an acquire), so its CAS fails.
bool Scheduler::take_runnext(P& p, Entry next) noexcept {
  p.runnext_taking.store(next, std::memory_order_relaxed);  // a
  light_fence();                                            // b
  bool taken;
  // Acquire: if this reads a finished thief's decrement (h, a release), its
  // CAS on runnext happens-before the re-read below, which then sees it.
  if (p.runnext_thieves.load(std::memory_order_acquire) == 0) {  // c
    taken = p.runnext.load(std::memory_order_relaxed) == next;
    if (taken) p.runnext.store(0, std::memory_order_relaxed);
  } else {
    // Relaxed suffices: this thread published the record itself.
    taken = p.runnext.compare_exchange_strong(next, 0, std::memory_order_relaxed,
                                              std::memory_order_relaxed);
  }
  p.runnext_taking.store(0, std::memory_order_release);  // d
  return taken;
}

bool Scheduler::steal_runnext(P& victim, Entry& out) noexcept {
  Entry next = victim.runnext.load(std::memory_order_relaxed);
  if (next == 0) return false;
  // The victim put it there to run it next: give it a few microseconds to
  // do so before taking it (Go sleeps 3us here).
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::nanoseconds(SchedulerTuning::kRunnextGraceNanos);
  while (std::chrono::steady_clock::now() < deadline) {
    cpu_relax();
    if (victim.runnext.load(std::memory_order_relaxed) != next) return false;
  }
  // Steps e-h of the handshake above take_runnext. Seq_cst on the
  // increment: the owner reads the counter after its light fence.
  victim.runnext_thieves.fetch_add(1, std::memory_order_seq_cst);  // e
  heavy_fence();                                                   // f
  bool stolen = false;
  // Acquire: pairs with the owner's release in d (see above).
  if (victim.runnext_taking.load(std::memory_order_acquire) != next) {  // g
    // Acquire: pairs with the owner's release store that put the entry
    // there, making the goroutine's record visible.
    stolen = victim.runnext.compare_exchange_strong(next, 0, std::memory_order_acquire,
                                                    std::memory_order_relaxed);
  }
  // Release: our CAS (if any) is done before the owner may see no thief.
  victim.runnext_thieves.fetch_sub(1, std::memory_order_release);  // h
  if (!stolen) return false;
  out = next;
  return true;
}

G* Scheduler::steal_work(P& p) {
  const auto nprocs = static_cast<std::uint32_t>(ps_.size());
  std::int64_t now = 0;  // read once, in the last round, if a victim has timers
  for (int round = 0; round < SchedulerTuning::kStealRounds; ++round) {
    const bool last_round = round == SchedulerTuning::kStealRounds - 1;
    const std::uint64_t r = next_random(p.rng);
    std::uint32_t pos = static_cast<std::uint32_t>(r % nprocs);
    const std::uint32_t stride = coprimes_[(r >> 32) % coprimes_.size()];
    for (std::uint32_t i = 0; i < nprocs; ++i, pos = (pos + stride) % nprocs) {
      P& victim = *ps_[pos];
      if (&victim == &p) continue;
      // Looking for work is synchronising, not computing: counted, so that
      // sysmon does not take a worker that spins for its partner's next
      // goroutine for one whose goroutines compute (sysmon.hpp, step 1b).
      count_synchronisation();
      if (stopping()) return nullptr;
      Entry entry;
      // Handoff entries stay with their partners unless sysmon saw the
      // victim's queue stuck (ARCHITECTURE, "Keeping partners together").
      const Entry held = held_entry_bits(victim);
      if (p.runq.steal_half_into(victim.runq, entry, held)) {
        bump(p.stats.steals);
        bump(p.stats.stolen_goroutines, 1 + p.runq.size());
        if (G* g = decode(entry)) return g;
        if (Found f = local_get(p); f.g != nullptr) return f.g;
        continue;  // we stole only tombstones or stale claims
      }
      // New spawns, oldest (the largest subtree) first, one at a time.
      if (victim.spawned.steal(entry)) {
        bump(p.stats.steals);
        bump(p.stats.stolen_goroutines);
        if (G* g = decode(entry)) return g;
        continue;  // a stale claim: its goroutine was joined inline
      }
      if (last_round && victim.next_timer.load(std::memory_order_relaxed) != TimerHeap::kNever) {
        // Run a busy victim's due timers here (Go steals timers too).
        if (now == 0) now = monotonic_now_ns();
        if (victim.next_timer.load(std::memory_order_relaxed) <= now &&
            run_timers(victim, p, now)) {
          if (Found f = local_get(p); f.g != nullptr) return f.g;
        }
      }
      // Relaxed: a hint; steal_runnext re-reads runnext and CASes it.
      if (last_round && (victim.runnext.load(std::memory_order_relaxed) & held) == 0 &&
          steal_runnext(victim, entry)) {
        bump(p.stats.steals);
        bump(p.stats.stolen_goroutines);
        if (G* g = decode(entry)) return g;
      }
    }
  }
  return nullptr;
}

bool Scheduler::any_work_visible() const noexcept {
  if (global_.size_hint() != 0) return true;
  for (const auto& p : ps_) {
    // Handoff entries are held back from thieves (steal_work) unless sysmon
    // released them, so they are no work for an idle P: counting them would
    // have it spin through steal and re-check while their own P runs them.
    const Entry held = held_entry_bits(*p);
    if (p->runq.any_entry_without(held)) return true;
    if (!p->spawned.empty()) return true;
    const Entry next = p->runnext.load(std::memory_order_relaxed);
    if (next != 0 && (next & held) == 0) return true;
  }
  return false;
}

Scheduler::Found Scheduler::find_runnable(P& p) {
  for (;;) {
    if (stopping()) return {};
    // 0. Due timers of this P (they may ready goroutines into runnext), and
    // goroutines handed to this P while it was idle.
    check_timers(p);
    drain_inbox(p);
    // The netpoller every kPollInterval schedules even while there is
    // other work, so that completions are not starved by a long queue (or
    // by goroutines handing the P to each other through runnext, which does
    // not advance schedtick). Otherwise it waits for step 4: submitting
    // only once the queue has run lets SQEs from many goroutines go to the
    // kernel in one enter.
    if (p.stats.schedules.load(std::memory_order_relaxed) % SchedulerTuning::kPollInterval == 0) {
      p.poller->poll();
    }

    // 1. Fairness: the global queue first every 61st tick.
    if (p.schedtick.load(std::memory_order_relaxed) % SchedulerTuning::kGlobalQueueFairnessTick ==
            0 &&
        global_.size_hint() != 0) {
      if (G* g = global_get(p, 1)) return {g, false};
    }
    // 2. runnext, then the local queue.
    if (Found f = local_get(p); f.g != nullptr) return f;
    // 3. The global queue.
    if (global_.size_hint() != 0) {
      if (G* g = global_get(p, 0)) return {g, false};
    }
    // 4. The netpoller, without blocking (submits what goroutines queued).
    p.poller->poll();
    if (Found f = local_get(p); f.g != nullptr) return f;
    // 5. Steal, limiting spinners to half of the busy Ps.
    const std::uint32_t busy =
        static_cast<std::uint32_t>(ps_.size()) - npidle_.load(std::memory_order_relaxed);
    if (p.spinning || 2 * nmspinning_.load(std::memory_order_relaxed) < busy) {
      if (!p.spinning) {
        p.spinning = true;
        // Relaxed suffices: a submitter that misses this increment wakes a
        // worker anyway; one that sees it relies on our re-check in 6c.
        nmspinning_.fetch_add(1, std::memory_order_relaxed);
      }
      if (G* g = steal_work(p)) return {g, false};
    }
    // 5b. Ops in flight in a poller that is cheap to poll (io_uring: a
    // memory read): a completion is often microseconds away (a peer's
    // reply). Poll for a while before paying for going idle: a full fence,
    // a sleep in the kernel and a wakeup.
    if (p.poller->cheap_to_poll() && p.poller->has_ops_in_flight()) {
      if (Found f = spin_on_poller(p); f.g != nullptr) return f;
    }

    // 6a. Go idle. Our spinning flag is taken down in the same critical
    // section: once we are on the idle list a waker may set it again (it
    // hands us its nmspinning slot), so we must not read it unlocked.
    bool was_spinning;
    {
      MutexLock lock(sched_mu_);
      if (stopping_.load(std::memory_order_relaxed)) return {};  // set under sched_mu_
      if (global_.size_hint() != 0) continue;
      idle_.push_back(&p);
      p.idle = true;
      // seq_cst: part of the Dekker pair with the submitter's fence (6c/g).
      npidle_.fetch_add(1, std::memory_order_seq_cst);
      was_spinning = p.spinning;
      p.spinning = false;
    }
    // 6b. Stop spinning.
    if (was_spinning) nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    // 6c. Full fence: orders the two writes above before the re-check
    // reads. The heavy half of the asymmetric pair: submitters pay only a
    // compiler barrier (asymmetric_fence.hpp). Counted as a
    // synchronisation, as the steal rounds are, with the park that follows.
    count_synchronisation();
    heavy_fence();
    // 6d. Re-check every source of work (our inbox: see blocking.cpp).
    if (any_work_visible() || p.inbox_nonempty.load(std::memory_order_seq_cst)) {
      MutexLock lock(sched_mu_);
      if (p.idle) {
        idle_.erase(std::find(idle_.begin(), idle_.end(), &p));
        p.idle = false;
        npidle_.fetch_sub(1, std::memory_order_seq_cst);
        note_busy();
        p.spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
      }
      // Otherwise a waker already took us off the list and made us spinning;
      // its unpark token makes one later park() return at once, which the
      // loop tolerates.
      continue;
    }
    // 6e. Sleep until wakep (which makes us spinning), begin_stop, or the
    // earliest timer of any P.
    idle_sleep(p);
  }
}

Scheduler::Found Scheduler::spin_on_poller(P& p) noexcept {
  const std::int64_t deadline = monotonic_now_ns() + SchedulerTuning::kPollerSpinNanos;
  do {
    count_synchronisation();  // as in steal_work
    for (int i = 0; i < 16; ++i) cpu_relax();
    p.poller->poll();
    if (Found f = local_get(p); f.g != nullptr) return f;
    if (global_.size_hint() != 0 || p.inbox_nonempty.load(std::memory_order_relaxed)) break;
  } while (monotonic_now_ns() < deadline);
  return {};
}

void Scheduler::reset_spinning(P& p) noexcept {
  p.spinning = false;
  nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
  // We found work; there may be more. Keep one spinner looking (Go's
  // resetspinning), with the same fence discipline as a submitter.
  notify_work_available(&p);
}

void Scheduler::notify_work_available(P* p) noexcept {
  // Step g: the enqueue (already done) must be ordered before the loads of
  // npidle/nmspinning below. The light half of the asymmetric fence pairs
  // with the idle worker's heavy half (6c).
  light_fence();
  // Relaxed loads after the fence: the fence pair is all the handshake needs.
  if (npidle_.load(std::memory_order_relaxed) == 0) return;
  if (nmspinning_.load(std::memory_order_relaxed) != 0) return;
  std::uint32_t none = 0;
  if (!nmspinning_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) return;
  P* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    if (!idle_.empty()) {
      woken = idle_.back();
      idle_.pop_back();
      woken->idle = false;
      woken->spinning = true;  // it owns the nmspinning slot we just took
      npidle_.fetch_sub(1, std::memory_order_seq_cst);
      note_busy();
    }
  }
  if (woken == nullptr) {
    nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  if (p != nullptr) {
    bump(p->stats.wakeups);
    count_synchronisation();  // a wakeup, as in steal_work
  } else {
    outside_wakeups_.fetch_add(1, std::memory_order_relaxed);
  }
  woken->poller->wake();
}

void Scheduler::begin_stop() noexcept {
  std::vector<P*> sleepers;
  {
    MutexLock lock(sched_mu_);
    // Release: a worker that acquires `stopping` also sees everything the
    // finishing main goroutine wrote (its result).
    stopping_.store(true, std::memory_order_release);
    accepting_outside_ = false;
    sleepers.swap(idle_);
    for (P* p : sleepers) p->idle = false;
    npidle_.store(0, std::memory_order_relaxed);
  }
  for (P* p : sleepers) p->poller->wake();
}

bool Scheduler::global_put_from_outside(Entry entry) {
  MutexLock lock(sched_mu_);
  if (!accepting_outside_) return false;
  global_.push(entry);
  return true;
}

G* Scheduler::start_from_outside(std::coroutine_handle<> root, TaskPromiseBase* promise,
                                 bool joinable) {
  G* g;
  {
    // The record is born under the lock that begin_stop takes to refuse
    // outside work: a refused start never marks a record live, and an
    // accepted one happens-before the stop (and so before the sweep, which
    // then owns it).
    MutexLock lock(sched_mu_);
    if (!accepting_outside_) return nullptr;
    g = new_goroutine(nullptr, root, promise, joinable);
    global_.push(entry_for(g, joinable));
  }
  count_outside_start();
  notify_work_available(nullptr);
  return g;
}

G* Scheduler::new_goroutine(P* p, std::coroutine_handle<> root, TaskPromiseBase* promise,
                            bool joinable) {
  G* g = p != nullptr ? p->g_cache.allocate(*p->g_pool) : GoroutinePool::instance().allocate();
  g->root = root;
  g->resume = root;
  g->root_promise = promise;
  g->joinable = joinable;
  g->is_main = false;
  g->live.store(true, std::memory_order_relaxed);  // see G::live
  g->inline_on = nullptr;
  g->id = p != nullptr ? next_goroutine_id(*p) : id_source_.fetch_add(1, std::memory_order_relaxed);
  // Relaxed: published together with the record by the release below and
  // by the queue that carries the entry.
  g->join_state.store(kJoinRunning, std::memory_order_relaxed);
  promise->set_goroutine(g);
  // Release: a stale claim entry for this recycled record that wins the
  // claim (acquire) must see the fields written above. Non-joinable
  // goroutines are claimed from birth: no claim entry can win them.
  g->claim.store(static_cast<std::uint32_t>(joinable ? Claim::kUnclaimed : Claim::kClaimed),
                 std::memory_order_release);
  // Goroutines from outside are counted once the global queue took them
  // (count_outside_start): one refused at shutdown never started.
  if (p != nullptr) bump(p->stats.goroutines_started);
  return g;
}

std::uint64_t Scheduler::next_goroutine_id(P& p) noexcept {
  if (p.next_id == p.end_id) {
    // Relaxed: ids need uniqueness only, which the RMW gives.
    p.next_id = id_source_.fetch_add(SchedulerTuning::kIdBatch, std::memory_order_relaxed);
    p.end_id = p.next_id + SchedulerTuning::kIdBatch;
  }
  return p.next_id++;
}

bool Scheduler::claim_for_inline_join(P& p, G* child) noexcept {
  std::uint32_t unclaimed = static_cast<std::uint32_t>(Claim::kUnclaimed);
  // Acquire on success: pairs with new_goroutine's release store. The
  // handle pins the record, so the claim word is about this very child
  // (a queue entry may be stale, the claim word never is).
  if (child->claim.load(std::memory_order_relaxed) != unclaimed ||
      !child->claim.compare_exchange_strong(unclaimed, static_cast<std::uint32_t>(Claim::kClaimed),
                                            std::memory_order_acquire, std::memory_order_relaxed)) {
    return false;
  }
  // Tombstone the entry we just made stale, if it is still on this P.
  const Entry entry = entry_for(child, /*claim=*/true);
  if (p.runnext.load(std::memory_order_relaxed) == entry) {
    // A plain store is safe: only this thread stores non-zero values, so
    // the slot holds `entry` or, if a thief took it meanwhile, 0.
    p.runnext.store(0, std::memory_order_relaxed);
  } else if (child->queued_on.load(std::memory_order_relaxed) != &p ||
             // Relaxed: the hint is written by this very thread (see G::queued_on).
             !p.runq.erase_at(child->queue_position.load(std::memory_order_relaxed), entry)) {
    // The entry left this P's queues (spilled to the global queue, or
    // stolen into another P's queue, where it is dropped when met): it is
    // stale now, and the global queue may be holding it.
    global_.note_stale();
  }
  return true;
}

void Scheduler::report_uncaught(const UncaughtExceptionHook& hook, std::uint64_t id,
                                std::exception_ptr error) noexcept {
  if (hook) {
    hook(id, error);
    return;
  }
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "goroutine %llu: uncaught exception: %s\n",
               static_cast<unsigned long long>(id), what.c_str());
  std::fflush(stderr);
  std::abort();
}

void Scheduler::sweep_goroutines() noexcept {
  // Every worker has exited and outside threads can no longer start
  // goroutines (begin_stop refused them): this thread is the only one
  // touching the queues and timers, and no record is born meanwhile. Queue
  // entries and timers are dropped (a timer's node lives in a frame about
  // to be destroyed); the records say what is alive. An outside thread may
  // still release a finished goroutine by dropping its JoinHandle: it
  // leaves join_state at kJoinDone (drop_join_handle), which this walk
  // leaves alone.
  for (auto& p : ps_) {
    p->runq.clear();
    p->spawned.clear();
    p->runnext.store(0, std::memory_order_relaxed);
    {
      MutexLock inbox_lock(p->inbox_mu);
      p->inbox.clear();
      p->inbox_nonempty.store(false, std::memory_order_relaxed);
    }
    MutexLock lock(p->timer_mu);
    p->timers.clear([](TimerNode* node) { node->owner.store(nullptr, std::memory_order_relaxed); });
    p->next_timer.store(TimerHeap::kNever, std::memory_order_relaxed);
  }
  global_.clear();
  GoroutinePool::instance().for_each_record([](G& g) {
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
    if (recycle_now) recycle_goroutine(nullptr, &g);
  });
}

SchedulerStats Scheduler::stats() const noexcept {
  SchedulerStats s;
  s.procs = static_cast<std::uint32_t>(ps_.size());
  for (const auto& p : ps_) {
    const PStats& c = p->stats;
    auto get = [](const std::atomic<std::uint64_t>& v) {
      return v.load(std::memory_order_relaxed);
    };
    s.goroutines_started += get(c.goroutines_started);
    s.goroutines_finished += get(c.goroutines_finished);
    s.schedules += get(c.schedules);
    s.inline_joins += get(c.inline_joins);
    s.yields += get(c.yields);
    s.steals += get(c.steals);
    s.stolen_goroutines += get(c.stolen_goroutines);
    s.global_queue_takes += get(c.global_queue_takes);
    s.local_queue_overflows += get(c.local_queue_overflows);
    s.parks += get(c.parks);
    s.wakeups += get(c.wakeups);
    s.timers_fired += get(c.timers_fired);
    s.blocking_calls += get(c.blocking_calls);
    s.blocking_calls_queued += get(c.blocking_calls_queued);
    s.io_waits += get(c.io_waits);
    s.io_completions += get(c.io_completions);
  }
  s.goroutines_started += outside_started_.load(std::memory_order_relaxed);
  {
    MutexLock lock(stall_mu_);
    s.stalls = stall_count_;
  }
  s.wakeups += outside_wakeups_.load(std::memory_order_relaxed);
  s.spread_rounds = spread_rounds_.load(std::memory_order_relaxed);
  s.io_rescued = io_rescued_.load(std::memory_order_relaxed);
  s.global_queue_capacity = global_.capacity();
  s.blocking_queue_length = SyscallThreads::instance().waiting(this);
  return s;
}

}  // namespace goro::detail

namespace goro::detail {

void Scheduler::begin_stall(std::size_t p, std::uint64_t goroutine, std::int64_t nanos) {
  {
    MutexLock lock(stall_mu_);
    if (stalls_.size() == kStallHistory) stalls_.erase(stalls_.begin());
    stalls_.push_back(
        Stall{goroutine, std::chrono::nanoseconds(nanos), static_cast<std::uint32_t>(p)});
    open_stall_[p] = ++stall_count_;
  }
  // Ask the goroutine to give the P back at its next chance, and get an
  // idle worker to take what waits behind it (its queue, runnext, timers).
  ps_[p]->preempt.store(true, std::memory_order_relaxed);
  P* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    if (!idle_.empty()) woken = claim_idle_locked(idle_.back());
  }
  if (woken != nullptr) woken->poller->wake();
}

void Scheduler::end_stall(std::size_t p, std::int64_t nanos) {
  MutexLock lock(stall_mu_);
  // Update the record if it is still in the history.
  const std::uint64_t number = open_stall_[p];
  const std::uint64_t oldest = stall_count_ - stalls_.size() + 1;
  if (number >= oldest && number <= stall_count_) {
    stalls_[number - oldest].duration = std::chrono::nanoseconds(nanos);
  }
  open_stall_[p] = 0;
}

bool Scheduler::kick_global_queue() noexcept {
  if (global_.size_hint() == 0 || nmspinning_.load(std::memory_order_relaxed) != 0 ||
      npidle_.load(std::memory_order_relaxed) == 0) {
    return false;
  }
  notify_work_available(nullptr);
  return true;
}

std::vector<Stall> Scheduler::recent_stalls() noexcept {
  MutexLock lock(stall_mu_);
  return stalls_;
}

}  // namespace goro::detail
