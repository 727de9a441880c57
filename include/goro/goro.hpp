// goro/goro.hpp
//
// Umbrella header: includes every public goro header.
#ifndef GORO_GORO_HPP_
#define GORO_GORO_HPP_

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/clock.hpp"
#include "goro/cond.hpp"
#include "goro/config.hpp"
#include "goro/context.hpp"
#include "goro/defer.hpp"
#include "goro/for_each.hpp"
#include "goro/go.hpp"
#include "goro/group.hpp"
#include "goro/io.hpp"
#include "goro/join_handle.hpp"
#include "goro/memory.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/run.hpp"
#include "goro/rwmutex.hpp"
#include "goro/scheduler_stats.hpp"
#include "goro/select.hpp"
#include "goro/semaphore.hpp"
#include "goro/signal.hpp"
#include "goro/stop_timer.hpp"
#include "goro/task.hpp"
#include "goro/time.hpp"
#include "goro/wait_group.hpp"
#include "goro/yield.hpp"

#endif  // GORO_GORO_HPP_
