// lib/goroutine.hpp
//
// Defines: goro::detail::GoroutineRecord (a goroutine's whole record: the
// public G plus what only the runtime uses), Claim, record_of, and
// destroy_root / destroy_inline_call (a root frame and the callable kept
// beside it).
//
// Records are type-stable: they are carved from slabs that live as long
// as the process and are recycled through per-P free lists
// (goroutine_pool.hpp), as Go recycles its g structs. Type stability is
// what makes the first-run claim below safe (a stale queue entry may point
// at a record that has since been recycled; it only ever touches the
// atomic `claim`).
//
// Glossary (beside goro/detail/goroutine.hpp's)
//   claim       who runs a joinable goroutine for the first time: the
//               scheduler (through its queue entry) or a joiner running it
//               inline. Exactly one compare-exchange wins.
//
// Every G is a GoroutineRecord (the pool makes nothing else), so
// record_of's downcast is always right.
#ifndef GORO_LIB_GOROUTINE_HPP_
#define GORO_LIB_GOROUTINE_HPP_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>

#include "goro/detail/goroutine.hpp"

namespace goro::detail {

// Values of GoroutineRecord::claim.
enum class Claim : std::uint32_t {
  kFree = 0,       // record is on a free list (no goroutine)
  kUnclaimed = 1,  // joinable goroutine queued, not yet started
  kClaimed = 2,    // started (by the scheduler or inline by its joiner)
};

struct alignas(64) GoroutineRecord final : G {
  // The root task's frame, owned by this record while the goroutine is live.
  std::coroutine_handle<> root;
  // First-run arbitration for joinable goroutines (see Claim).
  std::atomic<std::uint32_t> claim{static_cast<std::uint32_t>(Claim::kFree)};
  bool joinable = false;
  bool is_main = false;
  // True between allocation and release. Read with the runtime stopped (the
  // shutdown sweep, the deadlock report), while a thread outside the
  // runtime may still release a finished goroutine's record by dropping its
  // JoinHandle: hence atomic; relaxed, because whoever acts on a record
  // also reads join_state, which orders the rest.
  std::atomic<bool> live{false};
  // Where the claim entry was last put: a P's spawn stack (its address),
  // or a P's local queue (the P's address, as an opaque pointer, and the
  // queue position). A hint, written by that P's owner and used only by it,
  // so that an inline join can take the entry off in O(1) (a spawn stack's
  // dead entries go together: spawn_stack.hpp); atomics only because a
  // stale entry may write the hint of a recycled record from another
  // thread.
  std::atomic<void*> queued_on{nullptr};
  std::atomic<std::uint32_t> queue_position{0};
  // Free-list link while the record is free.
  GoroutineRecord* next_free = nullptr;
  // The callable and arguments of a goroutine started by go(f, args...) or
  // spawn(f, args...) when they fit here (detail/invoke_task.hpp), and how
  // to destroy them: nullptr when the storage holds nothing to destroy.
  // The root frame may refer to the storage (a lambda body reads its
  // captures through it), so it is destroyed right after the root frame,
  // by whoever destroys that (destroy_root, and the shutdown sweep). Plain
  // fields: written before the record is published, like `root`.
  InlineCallDestroyer destroy_inline_call = nullptr;
  alignas(kInlineCallAlign) std::byte inline_call[kInlineCallBytes];
};

static_assert(sizeof(GoroutineRecord) == 128, "two cache lines per record");

// Makes `g` (not yet initialised for its goroutine) keep `boxed`: the
// box's address in the inline call storage, and its destroyer.
inline void attach_boxed_call(GoroutineRecord& g, const BoxedCall& boxed) noexcept {
  g.destroy_inline_call = boxed.destroy;
  ::new (g.inline_call) void*(boxed.box);
}

// Destroys what the inline call storage of `g` holds, if anything. After
// the root frame is gone (see GoroutineRecord::inline_call).
inline void destroy_inline_call(GoroutineRecord& g) noexcept {
  // A record goes back to the pool with no destroyer (attach_boxed_call
  // and start_reserved_goroutine set one only for a call that needs it).
  // No branch hint: a callable whose captures own memory is as common as
  // a Task or a trivially destructible callable.
  if (const InlineCallDestroyer destroy = g.destroy_inline_call) {
    g.destroy_inline_call = nullptr;
    destroy(g.inline_call);
  }
}

// Destroys the root frame of `g`, then its inline call. Only for a frame
// that may be destroyed with one destroy(): finished, in its final suspend,
// or never started (a parked chain goes through destroy_frame_chain).
inline void destroy_root(GoroutineRecord& g) noexcept {
  g.root.destroy();
  destroy_inline_call(g);
}

inline GoroutineRecord* record_of(G* g) noexcept { return static_cast<GoroutineRecord*>(g); }
inline const GoroutineRecord* record_of(const G* g) noexcept {
  return static_cast<const GoroutineRecord*>(g);
}

}  // namespace goro::detail

#endif  // GORO_LIB_GOROUTINE_HPP_
