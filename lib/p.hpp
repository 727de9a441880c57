// lib/p.hpp
//
// Defines: goro::detail::P, a processor with every mechanism's per-P
// state, and p_of (from the core's PCore to its P).
//
// P extends the scheduler core's PCore (p_core.hpp) with one member per
// mechanism, each of the mechanism's own type: the timer heap (TimerQueue,
// timers.hpp), the netpoller (Poller, poller.hpp), what sysmon reads of the
// worker thread (SpreadProbe, sysmon.hpp) and the frame allocator's cache
// (alloc::FrameCache); and it names the runtime-wide halves of the
// mechanisms it belongs to. The core never sees this type: it calls the
// mechanisms of a P through PMechanisms (p_core.hpp), which p.cpp
// defines. Mechanisms include this header to reach their own per-P state;
// they reach the core through scheduler_interface.hpp.
//
// Every P of a runtime is a P: the runtime makes them (runtime.hpp) and
// hands their PCores to its Scheduler, so p_of's downcast is always right.
#ifndef GORO_LIB_P_HPP_
#define GORO_LIB_P_HPP_

#include <cstdint>
#include <memory>

#include "alloc/frame_cache.hpp"
#include "p_core.hpp"
#include "poller.hpp"
#include "sysmon.hpp"
#include "timers.hpp"

namespace goro::detail {

class BlockingCalls;
class Runtime;

struct alignas(64) P final : PCore {
  // What the mechanisms of a P belong to, runtime-wide.
  struct Runtimewide {
    Runtime& runtime;
    Timers& timers;
    BlockingCalls& blocking_calls;
    Sysmon& sysmon;
  };

  P(Scheduler& scheduler, const Runtimewide& runtimewide, std::uint32_t index,
    std::uint32_t queue_capacity)
      : PCore(scheduler, index, queue_capacity),
        runtime(runtimewide.runtime),
        all_timers(runtimewide.timers),
        blocking_calls(runtimewide.blocking_calls),
        sysmon(runtimewide.sysmon) {}
  ~P();

  // The runtime this P belongs to (only the runtime layer, which defines
  // it, looks inside), and the runtime-wide halves of the mechanisms.
  Runtime& runtime;
  Timers& all_timers;
  BlockingCalls& blocking_calls;
  Sysmon& sysmon;

  // This P's halves.
  alloc::FrameCache frame_cache;
  // The netpoller: an idle worker sleeps in it, and wake() is how other
  // threads rouse it (poller.hpp). Made with the P, attached to the ring on
  // the worker thread.
  std::unique_ptr<Poller> poller;
  TimerQueue timers;
  SpreadProbe spread_probe;
};

inline P& p_of(PCore& core) noexcept { return static_cast<P&>(core); }

}  // namespace goro::detail

#endif  // GORO_LIB_P_HPP_
