// net/server.cpp: Server, one goroutine per connection and a graceful
// shutdown (goro/net/server.hpp).
//
// Why. Stopping a server well takes three things users get wrong by hand:
// no connection may be accepted after shutdown has begun, the handlers
// must get a bounded time to finish, and when that time is up whatever is
// left must be ended for sure, so that no goroutine and no fd outlives the
// shutdown. Go's net/http Server does this for HTTP; this is the same for
// raw stream connections, on the public goro::net and goro API only.
//
// State (ServerState, shared by the Server, every serve loop and every
// handler goroutine, so that it outlives whichever goes last), under
// `mutex`: `stopping` (shutdown or close began), `closed` (close ran),
// `serving` (serve loops between their start and the close of their
// listener), and `connections`: for each handler goroutine, the NetFd of
// its Conn, by an id. Three contexts, made once and cancelled once each:
//   draining       cancelled when stopping begins: accept loops end,
//                  handlers may watch it (Server::draining);
//   handler_context  every handler's ctx, cancelled by close() or at
//                  shutdown's deadline (step S3);
//   drained        cancelled once stopping && serving == 0 &&
//                  connections is empty: what shutdown waits for.
//
// serve, step by step:
//   A1. Under the mutex: if stopping, return OK (the listener closes as
//       the task ends); else count the loop in `serving`.
//   A2. accept with `draining` as the context, so that stopping wakes it.
//   A3. A connection: under the mutex, if stopping, drop it (its Conn
//       closes it); else give it an id and record its NetFd. Then start
//       the handler goroutine (H1). The record comes first, so step S3
//       can close every connection a handler holds.
//   A4. An error: if draining is cancelled, stop (A5) with OK. A shortage
//       (ENOBUFS, ENOMEM; EMFILE and ENFILE are kept as a defence, though
//       Listener::accept waits them out itself), a connection that failed
//       before it was accepted (ECONNABORTED, EPROTO, EPERM), or an
//       interrupted or would-block accept (EINTR, EAGAIN): sleep, with
//       `draining`, 5 ms doubling to 1 s (reset by a success), and go to
//       A2. Anything else: stop (A5) with it.
//   A5. Close the listener, then under the mutex leave `serving` and check
//       for drained (D).
// A handler goroutine:
//   H1. Run handler(handler_context, conn).
//   H2. When it returns (its Conn, unless moved away, closed by then):
//       under the mutex erase its record and check for drained (D).
// shutdown(ctx):
//   S1. Under the mutex set stopping and check for drained (D); after
//       unlocking cancel `draining`: accept loops and backoff sleeps wake
//       and run A5.
//   S2. Wait for `drained` or ctx's done channel (a select). Drained:
//       return OK.
//   S3. Otherwise cancel handler_context, take a copy of every recorded
//       NetFd under the mutex and close each after unlocking (their parked
//       operations wake with closed_error, net_fd.hpp C1-C3), then wait
//       for `drained` and return ctx.err().
// close() is S1 and S3 without the waits.
// D. Drained: stopping with no loop serving and no connection recorded.
//   It is checked under the mutex by each step that can make it true, and
//   `drained` is cancelled after unlocking (cancelling twice is harmless).
//   Once stopping, nothing is added to `serving` or `connections` (A1 and
//   A3 check stopping under the same mutex), so drained stays true.
//
// Invariants: a recorded connection's handler goroutine has started or is
// about to start (A3) and has not passed H2; every serve loop counted in
// `serving` still owns an open listener or is closing it (A5).
//
// Rejected: a goro::WaitGroup for the handlers (its wait cannot be raced
// against ctx's deadline without a goroutine of its own, and Go's rule
// that an Add from zero happens before a Wait would need the same
// stopping flag anyway); closing the listeners from shutdown (they belong
// to the serve loops' frames, which would have to be reached across
// threads; cancelling their accept reaches them through goro::net's own
// wake-up); an intrusive list of connections threaded through the handler
// goroutines' frames (no allocation, but a connection must be recorded
// before its goroutine runs, A3, which the frame does not exist for yet);
// returning from shutdown at the deadline without waiting for the closed
// handlers (Go does; then a goroutine could outlive the shutdown).
#include "goro/net/server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "conn_access.hpp"
#include "goro/go.hpp"
#include "goro/net/error.hpp"
#include "goro/select.hpp"
#include "goro/time.hpp"
#include "mutex.hpp"
#include "net_fd.hpp"

namespace goro::net {

namespace internal {

struct ServerState : std::enable_shared_from_this<ServerState> {
  explicit ServerState(std::unique_ptr<detail::ServerHandler> served) : handler(std::move(served)) {
    auto [draining_context, cancel_draining] = with_cancel(background());
    draining = std::move(draining_context);
    stop_draining = std::move(cancel_draining);
    auto [handler_ctx, cancel] = with_cancel(background());
    handler_context = std::move(handler_ctx);
    cancel_handlers = std::move(cancel);
    auto [drained_context, cancel_drained] = with_cancel(background());
    drained = std::move(drained_context);
    mark_drained = std::move(cancel_drained);
  }

  // A1: false when stopping (serve returns at once).
  bool enter_serving() {
    MutexLock lock(&mutex);
    if (stopping) return false;
    ++serving;
    return true;
  }

  // A5, after the listener is closed.
  void leave_serving() {
    bool now_drained;
    {
      MutexLock lock(&mutex);
      --serving;
      now_drained = is_drained();
    }
    if (now_drained) mark_drained();
  }

  // A3: records `conn` and starts its handler goroutine, or drops it.
  void start(Conn conn);

  // H2.
  void forget(std::uint64_t id) {
    bool now_drained;
    {
      MutexLock lock(&mutex);
      connections.erase(id);
      now_drained = is_drained();
    }
    if (now_drained) mark_drained();
  }

  // S1. Idempotent.
  void begin_stop() {
    bool now_drained;
    {
      MutexLock lock(&mutex);
      stopping = true;
      now_drained = is_drained();
    }
    stop_draining();
    if (now_drained) mark_drained();
  }

  // S3 without its wait. Idempotent.
  void end_handlers() {
    cancel_handlers();
    std::vector<std::shared_ptr<NetFd>> left;
    {
      MutexLock lock(&mutex);
      left.reserve(connections.size());
      for (const auto& [id, socket] : connections) left.push_back(socket);
    }
    // A handler that already closed its Conn makes this closed_error: fine.
    for (const auto& socket : left) (void)socket->close();
  }

  bool is_drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    return stopping && serving == 0 && connections.empty();
  }

  const std::unique_ptr<detail::ServerHandler> handler;
  // Set by the constructor, then only read and cancelled (both
  // thread-safe).
  Context draining;
  CancelFunc stop_draining;
  Context handler_context;
  CancelFunc cancel_handlers;
  Context drained;
  CancelFunc mark_drained;

  mutable Mutex mutex;
  bool stopping ABSL_GUARDED_BY(mutex) = false;
  bool closed ABSL_GUARDED_BY(mutex) = false;
  int serving ABSL_GUARDED_BY(mutex) = 0;
  std::uint64_t next_id ABSL_GUARDED_BY(mutex) = 0;
  absl::flat_hash_map<std::uint64_t, std::shared_ptr<NetFd>> connections ABSL_GUARDED_BY(mutex);
};

}  // namespace internal

namespace {

using internal::ServerState;

constexpr std::chrono::milliseconds kFirstPause{5};
constexpr std::chrono::milliseconds kLongestPause{1000};

// A4: an accept error worth retrying after a pause.
bool is_temporary_accept_error(const absl::Status& status) {
  const std::optional<int> error = errno_of(status);
  if (!error) return false;
  switch (*error) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case EINTR:
    case EAGAIN:
      return true;
    default:
      return false;
  }
}

// H1-H2.
Task<void> serve_connection(std::shared_ptr<ServerState> state, std::uint64_t id, Conn conn) {
  auto forget = absl::Cleanup([&state, id] { state->forget(id); });
  co_await state->handler->serve(state->handler_context, std::move(conn));
}

// A1-A5.
Task<absl::Status> serve_on(std::shared_ptr<ServerState> state, Listener listener) {
  if (!state->enter_serving()) co_return absl::OkStatus();
  auto leave = absl::Cleanup([&state, &listener] {
    (void)listener.close();
    state->leave_serving();
  });
  std::chrono::milliseconds pause{0};
  for (;;) {
    auto conn = co_await listener.accept(state->draining);
    if (conn.ok()) {
      pause = std::chrono::milliseconds{0};
      state->start(std::move(*conn));
      continue;
    }
    if (state->draining.cancelled()) co_return absl::OkStatus();
    if (!is_temporary_accept_error(conn.status())) co_return conn.status();
    pause = pause.count() == 0 ? kFirstPause : std::min(pause * 2, kLongestPause);
    (void)co_await sleep(pause, state->draining);
  }
}

// S1-S3.
Task<absl::Status> shutdown_on(std::shared_ptr<ServerState> state, Context ctx) {
  state->begin_stop();
  (void)co_await select(recv_from(state->drained.done()), recv_from(ctx.done()));
  if (state->drained.cancelled()) co_return absl::OkStatus();
  state->end_handlers();
  (void)co_await select(recv_from(state->drained.done()));
  co_return ctx.err();
}

}  // namespace

namespace internal {

void ServerState::start(Conn conn) {
  std::uint64_t id;
  {
    MutexLock lock(&mutex);
    if (stopping) return;  // accepted in the race with shutdown: conn's destructor closes it
    id = next_id++;
    connections.emplace(id, ConnAccess::socket_of(conn));
  }
  go(serve_connection, shared_from_this(), id, std::move(conn));
}

}  // namespace internal

Server::Server(std::unique_ptr<detail::ServerHandler> handler)
    : state_(std::make_shared<ServerState>(std::move(handler))) {}

Server::~Server() { (void)close(); }

GORO_CORO_WRAPPER Task<absl::Status> Server::serve(Listener listener) {
  return serve_on(state_, std::move(listener));
}

GORO_CORO_WRAPPER Task<absl::Status> Server::shutdown(Context ctx) {
  return shutdown_on(state_, std::move(ctx));
}

absl::Status Server::close() {
  {
    internal::MutexLock lock(&state_->mutex);
    if (state_->closed) return closed_error("close");
    state_->closed = true;
  }
  state_->begin_stop();
  state_->end_handlers();
  return absl::OkStatus();
}

Context Server::draining() const { return state_->draining; }

std::size_t Server::connections() const {
  internal::MutexLock lock(&state_->mutex);
  return state_->connections.size();
}

}  // namespace goro::net
