// lib/p.cpp: P's mechanisms as the scheduler core calls them
// (PMechanisms, p_core.hpp): each is a thin step into the mechanism
// that owns the state, so that the core's loop reads as in scheduler.hpp
// and each mechanism's protocol stays in its own file.
#include "p.hpp"

namespace goro::detail {

P::~P() = default;

void PMechanisms::run_due_timers(PCore& core) noexcept {
  P& p = p_of(core);
  if (std::int64_t now = 0; p.timers.maybe_due(now)) Timers::run_due(p, p, now);
}

void PMechanisms::poll_io(PCore& p) noexcept { p_of(p).poller->poll(); }

bool PMechanisms::steal_due_timers(PCore& victim, PCore& p, std::int64_t& now) noexcept {
  P& v = p_of(victim);
  return v.timers.maybe_due(now) && Timers::run_due(v, p_of(p), now);
}

bool PMechanisms::poller_spin_pays(PCore& p, std::uint32_t other_busy_procs) noexcept {
  // io_uring: a poll with nothing to do is a memory read (poller.hpp).
  const Poller& poller = *p_of(p).poller;
  return poller.cheap_to_poll() && poller.has_ops_in_flight() &&
         p_of(p).sysmon.cpu_to_spare(other_busy_procs);
}

void PMechanisms::sleep_idle(PCore& core) noexcept {
  P& p = p_of(core);
  p.all_timers.idle_sleep(p);  // the timer sleeper handshake (timers.cpp)
}

void PMechanisms::wake(PCore& p) noexcept { p_of(p).poller->wake(); }

void PMechanisms::note_busy(PCore& p) noexcept { p_of(p).sysmon.note_busy(); }

}  // namespace goro::detail
