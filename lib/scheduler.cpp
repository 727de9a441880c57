// lib/scheduler.cpp: the G/M/P scheduler core. The design, its invariants
// and the spin/park handshake are described at the top of scheduler.hpp;
// the comments here say why each step and memory order is what it is.
#include "scheduler.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <numeric>

#include "absl/container/inlined_vector.h"
#include "goro/detail/asymmetric_fence.hpp"
#include "goro/detail/cpu_relax.hpp"
#include "goro/detail/fast_random.hpp"
#include "goro/detail/synchronisation_count.hpp"
#include "goro/detail/timer.hpp"
#include "goro/task.hpp"
#include "runtime_state.hpp"

namespace goro::detail {

Scheduler::Scheduler(std::vector<PCore*> ps)
    : ps_(std::move(ps)), active_procs_(static_cast<std::uint32_t>(ps_.size())) {
  const auto procs = static_cast<std::uint32_t>(ps_.size());
  for (PCore* p : ps_) p->rng = 0x243f6a8885a308d3ULL * (p->index + 1);
  // Strides coprime to the number of Ps visit every P exactly once from any
  // starting point (Go's randomOrder).
  for (std::uint32_t s = 1; s <= procs; ++s) {
    if (std::gcd(s, procs) == 1) coprimes_.push_back(s);
  }
}

void Scheduler::schedule(PCore& p) {
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
    // The goroutine suspended: a preempt request sysmon made is honoured.
    if (p.preempt.load(std::memory_order_relaxed))
      p.preempt.store(false, std::memory_order_relaxed);
  }
  if (p.spinning) {
    p.spinning = false;
    nmspinning_.fetch_sub(1, std::memory_order_relaxed);  // stopping: nobody waits on it
  }
}

G* Scheduler::decode(Entry entry) noexcept {
  if (entry == 0) return nullptr;  // tombstone
  auto* g = reinterpret_cast<GoroutineRecord*>(entry & ~kEntryFlags);
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

G* Scheduler::pop_local_queue(PCore& p) noexcept {
  Entry entry;
  while (p.runq.pop(entry)) {
    if (G* g = decode(entry)) return g;
  }
  return nullptr;
}

G* Scheduler::pop_spawn_stack(PCore& p) noexcept {
  Entry entry;
  while (p.spawned.pop(entry)) {
    if (G* g = decode(entry)) return g;
  }
  return nullptr;
}

Scheduler::Found Scheduler::local_get(PCore& p) noexcept {
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

// Inline in runq_put and start_new_on (every spawn passes here).
[[gnu::always_inline]] inline Scheduler::SpawnPlace Scheduler::put_spawned(PCore& p,
                                                                           Entry entry) noexcept {
  if (p.runnext.load(std::memory_order_relaxed) == 0) {
    // Only this thread stores non-zero values, so a free slot stays free
    // until our store (thieves only ever turn a value into 0): no exchange
    // needed. Release: a thief that CASes it out sees the record.
    p.runnext.store(entry, std::memory_order_release);
    return SpawnPlace::kRunNext;
  }
  if ((entry & kClaimBit) != 0) {
    // A spawn()'s child: the inline join takes dead entries off the
    // stack's newest end (unlink_claimed_entry). Noted before the push
    // publishes the entry, as for the local queue (runq_put_local, which
    // overwrites it if the stack is full). Relaxed: a hint read only by
    // this P's owner (GoroutineRecord::queued_on).
    reinterpret_cast<GoroutineRecord*>(entry & ~kEntryFlags)
        ->queued_on.store(&p.spawned, std::memory_order_relaxed);
  }
  return p.spawned.push(entry) ? SpawnPlace::kSpawnStack : SpawnPlace::kNowhere;
}

bool Scheduler::runq_put(PCore& p, Entry entry, Placement placement) {
  if (placement == Placement::kSpawn) {
    const SpawnPlace place = put_spawned(p, entry);
    if (place != SpawnPlace::kNowhere) return place == SpawnPlace::kSpawnStack;
    return runq_put_local(p, entry);  // both taken: the local queue's tail
  }
  if (placement != Placement::kTail && p.runnext.load(std::memory_order_relaxed) == 0) {
    // A free slot: a plain store, for kRunNext too (put_spawned says why).
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
  return runq_put_local(p, entry);
}

bool Scheduler::runq_put_local(PCore& p, Entry entry) {
  if ((entry & kClaimBit) != 0) {
    // Remember where the claim entry goes so that an inline join on this
    // P can tombstone it in O(1). Relaxed: only this thread uses it.
    auto* g = reinterpret_cast<GoroutineRecord*>(entry & ~kEntryFlags);
    g->queued_on.store(&p, std::memory_order_relaxed);
    g->queue_position.store(p.runq.next_position(), std::memory_order_relaxed);
  }
  // A handoff entry is held back from thieves: no point waking one.
  if (p.runq.push(entry)) return (entry & kHandoffBit) == 0;
  return runq_put_full(p, entry);
}

// Out of line, with its batch on its own stack frame: every spawn and
// every ready passes through runq_put, and one push in 128 comes here.
bool Scheduler::runq_put_full(PCore& p, Entry entry) {
  for (;;) {
    // Full: move the older half and `entry` to the global queue in one
    // batch (Go's runqputslow), so that the next 128 pushes are lock-free.
    absl::InlinedVector<Entry, SchedulerTuning::kLocalQueueCapacity / 2 + 1> batch(
        p.runq.capacity() / 2 + 1);
    const std::uint32_t n = p.runq.spill_half(batch.data());
    // None: a thief made room. (A claim entry's position, noted in
    // runq_put, is still the next push's.)
    if (n == 0) {
      if (p.runq.push(entry)) return (entry & kHandoffBit) == 0;
      continue;
    }
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

G* Scheduler::global_get(PCore& p, std::uint32_t max) {
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
bool Scheduler::take_runnext(PCore& p, Entry next) noexcept {
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

bool Scheduler::steal_runnext(PCore& victim, Entry& out) noexcept {
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

G* Scheduler::steal_work(PCore& p) {
  const auto nprocs = static_cast<std::uint32_t>(ps_.size());
  std::int64_t now = 0;  // read once, in the last round, if a victim has timers
  for (int round = 0; round < SchedulerTuning::kStealRounds; ++round) {
    const bool last_round = round == SchedulerTuning::kStealRounds - 1;
    const std::uint64_t r = next_random(p.rng);
    std::uint32_t pos = static_cast<std::uint32_t>(r % nprocs);
    const std::uint32_t stride = coprimes_[(r >> 32) % coprimes_.size()];
    for (std::uint32_t i = 0; i < nprocs; ++i, pos = (pos + stride) % nprocs) {
      PCore& victim = *ps_[pos];
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
      // Run a busy victim's due timers here (Go steals timers too).
      if (last_round && PMechanisms::steal_due_timers(victim, p, now)) {
        if (Found f = local_get(p); f.g != nullptr) return f.g;
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

Scheduler::Found Scheduler::find_runnable(PCore& p) {
  for (;;) {
    if (stopping()) return {};
    // 0. Due timers of this P (they may ready goroutines into runnext), and
    // goroutines handed to this P while it was idle.
    PMechanisms::run_due_timers(p);
    drain_inbox(p);
    // The netpoller every kPollInterval schedules even while there is
    // other work, so that completions are not starved by a long queue (or
    // by goroutines handing the P to each other through runnext, which does
    // not advance schedtick). Otherwise it waits for step 4: submitting
    // only once the queue has run lets SQEs from many goroutines go to the
    // kernel in one enter.
    if (p.stats.schedules.load(std::memory_order_relaxed) % SchedulerTuning::kPollInterval == 0) {
      PMechanisms::poll_io(p);
    }

    // 0b. On standby: hand over what is runnable here, then go idle.
    const bool standby = on_standby(p);
    if (standby) {
      (void)hand_over(p);  // what completes later wakes this P's sleep (step e)
    } else {
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
      PMechanisms::poll_io(p);
      if (Found f = local_get(p); f.g != nullptr) return f;
      // 5. Steal, limiting spinners to half of the busy Ps.
      const std::uint32_t busy =
          static_cast<std::uint32_t>(ps_.size()) - npidle_.load(std::memory_order_relaxed);
      if (p.spinning || 2 * nmspinning_.load(std::memory_order_relaxed) < busy) {
        if (!p.spinning) {
          p.spinning = true;
          // Relaxed suffices: a submitter that misses this increment wakes a
          // worker anyway; one that sees it relies on our re-check (step d).
          nmspinning_.fetch_add(1, std::memory_order_relaxed);
        }
        if (G* g = steal_work(p)) return {g, false};
      }
      // 5b. Ops in flight in a poller that is cheap to poll (io_uring: a
      // memory read): a completion is often microseconds away (a peer's
      // reply). Poll for a while before paying for going idle: a full fence,
      // a sleep in the kernel and a wakeup; unless the other busy Ps and the
      // machine's other runnable threads fill every CPU, when the spin would
      // take one from a thread with work.
      // (`busy` counts p, which is not on the idle list.)
      if (PMechanisms::poller_spin_pays(p, busy > 0 ? busy - 1 : 0)) {
        if (Found f = spin_on_poller(p); f.g != nullptr) return f;
      }
    }

    // 6. Go idle, by the spin/park handshake (scheduler.hpp, steps a-e).
    // a. Our spinning flag is taken down in the same critical section:
    // once we are on the idle list a waker may set it again (it hands us
    // its nmspinning slot), so we must not read it unlocked.
    bool was_spinning;
    {
      MutexLock lock(sched_mu_);
      if (stopping_.load(std::memory_order_relaxed)) return {};  // set under sched_mu_
      if (!standby && global_.size_hint() != 0) continue;        // s3: an active P takes it
      idle_.push_back(&p);
      p.idle = true;
      // seq_cst: part of the Dekker pair with the submitter's fence (steps c/g).
      npidle_.fetch_add(1, std::memory_order_seq_cst);
      was_spinning = p.spinning;
      p.spinning = false;
    }
    // b. Stop spinning.
    if (was_spinning) nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    // c. Full fence: orders the two writes above before the re-check
    // reads. The heavy half of the asymmetric pair: submitters pay only a
    // compiler barrier (asymmetric_fence.hpp). Counted as a
    // synchronisation, as the steal rounds are, with the park that follows.
    count_synchronisation();
    heavy_fence();
    // d. Re-check every source of work (our inbox: see make_runnable_at_home);
    // on standby, only the inbox (s3). Standby is read again here, after
    // the fence: sysmon raising the active count and then notifying (s4)
    // is a submitter like any other, so either its notify sees us idle or
    // this read sees the new count.
    if ((!on_standby(p) && any_work_visible()) ||
        p.inbox_nonempty.load(std::memory_order_seq_cst)) {
      MutexLock lock(sched_mu_);
      if (p.idle) {
        idle_.erase(std::find(idle_.begin(), idle_.end(), &p));
        p.idle = false;
        npidle_.fetch_sub(1, std::memory_order_seq_cst);
        PMechanisms::note_busy(p);
        p.spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
      }
      // Otherwise a waker already took us off the list and made us spinning;
      // its unpark token makes one later park() return at once, which the
      // loop tolerates.
      continue;
    }
    // e. Sleep until wakep (which makes us spinning), begin_stop, an I/O
    // completion, or the earliest timer of any P.
    bump(p.stats.parks);
    PMechanisms::sleep_idle(p);
  }
}

bool Scheduler::hand_over(PCore& p) {
  // s2: give up the spinning slot before the notify below, which trusts a
  // spinner to look.
  if (p.spinning) {
    p.spinning = false;
    nmspinning_.fetch_sub(1, std::memory_order_seq_cst);  // as in step b
  }
  PMechanisms::poll_io(p);
  absl::InlinedVector<Entry, SchedulerTuning::kLocalQueueCapacity / 2> batch;
  // local_get wins the claim of a claim entry: what it returns is ours to
  // queue as a plain entry.
  for (Found f = local_get(p); f.g != nullptr; f = local_get(p)) {
    batch.push_back(entry_for(f.g, /*claim=*/false));
  }
  if (batch.empty()) return false;
  global_.push_batch(batch.data(), batch.size());  // step f
  bump(p.stats.handed_over, batch.size());
  notify_work_available(&p);  // steps g-h: wakes an active P if one is idle
  return true;
}

void Scheduler::set_active_procs(std::uint32_t active) noexcept {
  // Relaxed: step f of a submission (s4); notify_work_available's fence
  // (step g) orders it before the loads that decide whom to wake.
  const std::uint32_t before = active_procs_.exchange(active, std::memory_order_relaxed);
  // More Ps may run: what the standby Ps left waits for one of them.
  if (active > before) notify_work_available(nullptr);
}

Scheduler::Found Scheduler::spin_on_poller(PCore& p) noexcept {
  const std::int64_t deadline = monotonic_now_ns() + SchedulerTuning::kPollerSpinNanos;
  do {
    count_synchronisation();  // as in steal_work
    for (int i = 0; i < 16; ++i) cpu_relax();
    PMechanisms::poll_io(p);
    if (Found f = local_get(p); f.g != nullptr) return f;
    if (global_.size_hint() != 0 || p.inbox_nonempty.load(std::memory_order_relaxed)) break;
  } while (monotonic_now_ns() < deadline);
  return {};
}

void Scheduler::reset_spinning(PCore& p) noexcept {
  p.spinning = false;
  nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
  // We found work; there may be more. Keep one spinner looking (Go's
  // resetspinning), with the same fence discipline as a submitter.
  notify_work_available(&p);
}

void Scheduler::wake_idle_for(PCore* p) noexcept {
  std::uint32_t none = 0;
  if (!nmspinning_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) return;
  PCore* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    // s1: the most recently idle of the active Ps (the cache-warmest);
    // none when every active P is busy (they take the work themselves).
    const std::uint32_t active = active_procs();
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->index < active) {
        woken = *it;
        idle_.erase(std::next(it).base());
        break;
      }
    }
    if (woken != nullptr) {
      woken->idle = false;
      woken->spinning = true;  // it owns the nmspinning slot we just took
      npidle_.fetch_sub(1, std::memory_order_seq_cst);
      PMechanisms::note_busy(*woken);
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
  PMechanisms::wake(*woken);
}

void Scheduler::begin_stop() noexcept {
  std::vector<PCore*> sleepers;
  {
    MutexLock lock(sched_mu_);
    // Release: a worker that acquires `stopping` also sees everything the
    // finishing main goroutine wrote (its result).
    stopping_.store(true, std::memory_order_release);
    accepting_outside_ = false;
    sleepers.swap(idle_);
    for (PCore* p : sleepers) p->idle = false;
    npidle_.store(0, std::memory_order_relaxed);
  }
  for (PCore* p : sleepers) PMechanisms::wake(*p);
}

bool Scheduler::global_put_from_outside(Entry entry) {
  MutexLock lock(sched_mu_);
  if (!accepting_outside_) return false;
  global_.push(entry);
  return true;
}

G* Scheduler::start_from_outside(std::coroutine_handle<> root, TaskPromiseBase* promise,
                                 bool joinable, const BoxedCall* boxed_call) {
  G* g;
  {
    // The record is born under the lock that begin_stop takes to refuse
    // outside work: a refused start never marks a record live, and an
    // accepted one happens-before the stop (and so before the sweep, which
    // then owns it).
    MutexLock lock(sched_mu_);
    if (!accepting_outside_) return nullptr;
    GoroutineRecord* record = allocate_goroutine(nullptr);
    if (boxed_call != nullptr) attach_boxed_call(*record, *boxed_call);
    init_goroutine(nullptr, record, root, promise, joinable);
    g = record;
    global_.push(entry_for(g, joinable));
  }
  count_outside_start();
  notify_work_available(nullptr);
  return g;
}

// start_here's steps, with every call that the common path does not make
// moved to the end as a tail call (start_new_on_refilled,
// queue_locally_and_notify, wake_idle_and_return): the common path keeps
// its values in scratch registers and saves none.
GoroutineRecord* Scheduler::start_new_on(std::coroutine_handle<> root, TaskPromiseBase* promise,
                                         bool joinable, PCore& p) {
  Scheduler& s = p.scheduler;
  GoroutineRecord* g = p.g_cache.try_allocate();
  if (g == nullptr) [[unlikely]]
    return s.start_new_on_refilled(p, root, promise, joinable);
  s.init_goroutine(&p, g, root, promise, joinable);
  const Entry entry = entry_for(g, joinable);
  if (s.put_spawned(p, entry) == SpawnPlace::kNowhere) [[unlikely]]
    return s.queue_locally_and_notify(p, g, entry);
  if (s.idle_p_needs_waking()) [[unlikely]]
    return s.wake_idle_and_return(p, g);
  return g;
}

namespace {

// Returns `g` so that the compiler cannot tell it is the argument: a caller
// that knew would keep `g` across the call, in a register it must save,
// instead of tail-calling (start_new_on's helpers).
inline GoroutineRecord* opaque(GoroutineRecord* g) noexcept {
  asm("" : "+r"(g));
  return g;
}

}  // namespace

GoroutineRecord* Scheduler::start_new_on_refilled(PCore& p, std::coroutine_handle<> root,
                                                  TaskPromiseBase* promise, bool joinable) {
  GoroutineRecord* g = allocate_goroutine(&p);
  start_here(p, g, root, promise, joinable);
  return opaque(g);
}

GoroutineRecord* Scheduler::queue_locally_and_notify(PCore& p, GoroutineRecord* g, Entry entry) {
  runq_put_local(p, entry);
  notify_work_available(&p);
  return opaque(g);
}

GoroutineRecord* Scheduler::wake_idle_and_return(PCore& p, GoroutineRecord* g) noexcept {
  wake_idle_for(&p);
  return opaque(g);
}

void Scheduler::start_on(PCore& p, GoroutineRecord* g, std::coroutine_handle<> root,
                         TaskPromiseBase* promise, bool joinable) {
  start_here(p, g, root, promise, joinable);
}

void Scheduler::start_here(PCore& p, GoroutineRecord* g, std::coroutine_handle<> root,
                           TaskPromiseBase* promise, bool joinable) {
  init_goroutine(&p, g, root, promise, joinable);
  // runnext if free, else the spawn stack (newest first: a tree runs
  // depth-first, see spawn_stack.hpp), else the local queue's tail. A
  // spawn()'s child is a claim entry, which its parent usually makes dead
  // by joining it inline; the join clears runnext or drops the spawn
  // stack's dead entries (unlink_claimed_entry), so that a tree keeps the
  // stack about as deep as the tree, not as large.
  runq_put(p, entry_for(g, joinable), Placement::kSpawn);
  notify_work_available(&p);
}

void Scheduler::init_goroutine(PCore* p, GoroutineRecord* g, std::coroutine_handle<> root,
                               TaskPromiseBase* promise, bool joinable) noexcept {
  g->root = root;
  g->resume = root;
  g->root_promise = promise;
  g->joinable = joinable;
  g->is_main = false;
  g->live.store(true, std::memory_order_relaxed);  // see GoroutineRecord::live
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
}

std::uint64_t Scheduler::next_goroutine_id(PCore& p) noexcept {
  if (p.next_id == p.end_id) {
    // Relaxed: ids need uniqueness only, which the RMW gives.
    p.next_id = id_source_.fetch_add(SchedulerTuning::kIdBatch, std::memory_order_relaxed);
    p.end_id = p.next_id + SchedulerTuning::kIdBatch;
  }
  return p.next_id++;
}

void Scheduler::drop_dead_spawns(PCore& p) noexcept {
  // The dead entries at the spawn stack's newest end, starting with the
  // one just joined (so counting starts below it): a tree joined in spawn
  // order leaves its first children's entries dead below the last one's,
  // so joining the last one finds them all, and its parent's if that was
  // the last of its own siblings, and so on up. Usually the entry below is
  // alive (a parent's unjoined child) and the joined one goes alone.
  std::uint32_t dead = 1;
  Entry entry;
  while (p.spawned.peek(dead, entry) && entry_is_stale(entry)) ++dead;
  if (p.spawned.drop_newest(dead)) return;
  // They reach the stack's oldest end, where thieves may be taking them:
  // one at a time, as the worker loop would.
  while (dead-- > 0 && p.spawned.pop(entry)) {
  }
}

void Scheduler::unlink_claimed_entry(PCore& p, G* joined) noexcept {
  GoroutineRecord* child = record_of(joined);
  const Entry entry = entry_for(child, /*claim=*/true);
  // Relaxed: as in claim_for_inline_join.
  const void* queued_on = child->queued_on.load(std::memory_order_relaxed);
  if (queued_on == &p.spawned) {
    // The newest entry on this P's spawn stack (claim_for_inline_join saw
    // it there; only this thread pushes, so it still is unless a thief
    // took it meanwhile, which drop_dead_spawns settles).
    drop_dead_spawns(p);
  } else if (queued_on != &p ||
             // Relaxed: written by this very thread.
             !p.runq.erase_at(child->queue_position.load(std::memory_order_relaxed), entry)) {
    // Not in this P's local queue (where it went when the spawn stack was
    // full) any more, or never: it was started from outside, spilled to
    // the global queue, stolen into another P's queue, or it waits on
    // another P (the joiner moved since the spawn). It is dropped where it
    // is met; the global queue may be holding it.
    global_.note_stale();
  }
}

SchedulerStats Scheduler::stats() const noexcept {
  SchedulerStats s;
  s.procs = static_cast<std::uint32_t>(ps_.size());
  s.active_procs = active_procs();
  for (const PCore* p : ps_) {
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
    s.handed_over_goroutines += get(c.handed_over);
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
  s.wakeups += outside_wakeups_.load(std::memory_order_relaxed);
  s.global_queue_capacity = global_.capacity();
  return s;
}

void Scheduler::preempt(PCore& p) noexcept {
  // Relaxed: a hint the owner reads at yield() and after each goroutine.
  p.preempt.store(true, std::memory_order_relaxed);
  wake_idle_p();
}

bool Scheduler::kick_global_queue() noexcept {
  if (global_.size_hint() == 0 || nmspinning_.load(std::memory_order_relaxed) != 0 ||
      npidle_.load(std::memory_order_relaxed) == 0) {
    return false;
  }
  notify_work_available(nullptr);
  return true;
}

PCore* Scheduler::claim_idle_locked(PCore* w) noexcept {
  idle_.erase(std::find(idle_.begin(), idle_.end(), w));
  w->idle = false;
  w->spinning = true;  // it owns the nmspinning slot added here
  npidle_.fetch_sub(1, std::memory_order_seq_cst);
  nmspinning_.fetch_add(1, std::memory_order_seq_cst);
  PMechanisms::note_busy(*w);
  return w;
}

void Scheduler::wake_idle_p() noexcept {
  PCore* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    // As wakep: it looks for work, then sleeps again.
    if (!idle_.empty()) woken = claim_idle_locked(idle_.back());
  }
  if (woken != nullptr) PMechanisms::wake(*woken);
}

void Scheduler::leave_idle(PCore& p) noexcept {
  MutexLock lock(sched_mu_);
  if (!p.idle) return;
  idle_.erase(std::find(idle_.begin(), idle_.end(), &p));
  p.idle = false;
  npidle_.fetch_sub(1, std::memory_order_seq_cst);  // as every npidle change (handshake)
  PMechanisms::note_busy(p);
}

// A P's inbox: how a goroutine made runnable by another thread reaches an
// idle P (a blocking call returning to its previous P, blocking.cpp).
// Why no wakeup is lost: the submitter decides under sched_mu_ whether the
// P is idle, and a worker joins the idle list under the same lock and
// afterwards re-checks its inbox flag (step d): either the submitter sees
// it idle (and wakes it) or the worker's re-check sees the flag set before
// the submitter took the lock.
void Scheduler::make_runnable_at_home(PCore& home, G* g) noexcept {
  PCore* woken = nullptr;
  {
    MutexLock lock(sched_mu_);
    if (home.idle) {
      {
        MutexLock inbox_lock(home.inbox_mu);
        home.inbox.push_back(g);
        // seq_cst: read by the home worker's idle re-check.
        home.inbox_nonempty.store(true, std::memory_order_seq_cst);
      }
      woken = claim_idle_locked(&home);
    }
  }
  if (woken != nullptr) {
    PMechanisms::wake(*woken);
  } else if (global_put_from_outside(entry_for(g, /*claim=*/false))) {
    notify_work_available(nullptr);
  } else {
    // Stopping: put it in the inbox all the same; the shutdown sweep will
    // destroy it with the other live goroutines.
    MutexLock inbox_lock(home.inbox_mu);
    home.inbox.push_back(g);
  }
}

void Scheduler::drain_inbox(PCore& p) noexcept {
  // Relaxed: a hint checked every schedule; the inbox lock orders the
  // goroutines themselves, and the idle re-check uses seq_cst.
  if (!p.inbox_nonempty.load(std::memory_order_relaxed)) return;
  std::vector<G*> arrived;
  {
    MutexLock lock(p.inbox_mu);
    arrived.swap(p.inbox);
    p.inbox_nonempty.store(false, std::memory_order_relaxed);  // under the inbox lock
  }
  for (G* g : arrived) runq_put(p, entry_for(g, /*claim=*/false), Placement::kTail);
}

bool Scheduler::nothing_runnable(std::uint64_t& activity) const noexcept {
  if (global_.size_hint() != 0) return false;
  std::uint64_t count = outside_started_.load(std::memory_order_relaxed) +
                        outside_readies_.load(std::memory_order_relaxed);
  for (const PCore* p : ps_) {
    // Relaxed loads: hints re-read after the grace period (deadlock.cpp).
    if (!p->runq.empty() || !p->spawned.empty() ||
        p->runnext.load(std::memory_order_relaxed) != 0) {
      return false;
    }
    if (p->inbox_nonempty.load(std::memory_order_relaxed)) return false;
    count += p->stats.schedules.load(std::memory_order_relaxed);
  }
  activity += count;
  return true;
}

void Scheduler::drop_queued() noexcept {
  for (PCore* p : ps_) {
    p->runq.clear();
    p->spawned.clear();
    p->runnext.store(0, std::memory_order_relaxed);
    MutexLock inbox_lock(p->inbox_mu);
    p->inbox.clear();
    p->inbox_nonempty.store(false, std::memory_order_relaxed);
  }
  global_.clear();
}

// The interface of the mechanisms (scheduler_interface.hpp).

bool make_runnable(PCore& p, G* g, Placement placement) noexcept {
  return p.scheduler.runq_put(p, entry_for(g, /*claim=*/false), placement);
}

void notify_work_available(PCore& p) noexcept { p.scheduler.notify_work_available(&p); }

bool make_runnable_through_global_queue(PCore& any, G* g) noexcept {
  Scheduler& s = any.scheduler;
  if (!s.global_put_from_outside(entry_for(g, /*claim=*/false))) return false;
  s.count_outside_ready();
  return true;
}

void notify_work_available_from_outside(PCore& any) noexcept {
  any.scheduler.notify_work_available(nullptr);
}

void make_runnable_at_home(PCore& home, G* g) noexcept {
  home.scheduler.make_runnable_at_home(home, g);
}

void wake_idle_p(PCore& any) noexcept { any.scheduler.wake_idle_p(); }

void leave_idle(PCore& p) noexcept { p.scheduler.leave_idle(p); }

bool stopping(const PCore& p) noexcept { return p.scheduler.stopping(); }

}  // namespace goro::detail
