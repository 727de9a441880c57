// lib/multishot.cpp: multishot sources' life outside the ring (creation,
// stop, references) and goro::io::AcceptStream. The mechanism is described
// at the top of multishot.hpp; the ring's side is in poller_uring.cpp.
#include "multishot.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "goro/io_multishot.hpp"
#include "p.hpp"
#include "poller.hpp"
#include "runtime_state.hpp"

namespace goro::detail {

namespace {

// Invariant 7 of multishot.hpp. Relaxed: a hint for the deadlock detector,
// which reads it twice a grace period apart; a waiter that parks or leaves
// in between runs or readies a goroutine, which moves the detector's
// activity count, so a stale value cannot end in a false report.
std::atomic<std::int64_t> multishot_waiters{0};

}  // namespace

void count_multishot_waiters(std::int64_t delta) noexcept {
  multishot_waiters.fetch_add(delta, std::memory_order_relaxed);  // see multishot_waiters
}

bool multishot_waiters_parked() noexcept {
  return multishot_waiters.load(std::memory_order_relaxed) != 0;  // see multishot_waiters
}

void discard_result(const MultishotResult& result, MultishotSource::Kind kind) noexcept {
  if (kind == MultishotSource::Kind::kAccept) {
    if (result.value >= 0) ::close(result.value);
  } else if (result.pool != nullptr) {
    give_back(*result.pool, result.buffer_id);
  }
}

int take_received(MultishotSource& source, void* buffer, std::size_t length) noexcept {
  auto* out = static_cast<std::byte*>(buffer);
  std::size_t moved = 0;
  std::size_t emptied = 0;
  for (MultishotResult& result : source.results) {
    if (result.pool == nullptr) {
      // The end of the stream or an error: after the bytes before it.
      if (moved == 0) {
        const int value = result.value;
        source.results.erase(source.results.begin());
        return value;
      }
      break;
    }
    if (moved == length) break;
    const std::size_t n = std::min(length - moved, static_cast<std::size_t>(result.value));
    std::memcpy(out + moved, result.pool->buffer(result.buffer_id) + result.offset, n);
    moved += n;
    result.offset += static_cast<std::uint32_t>(n);
    result.value -= static_cast<int>(n);
    if (result.value != 0) break;  // the caller's buffer is full
    give_back(*result.pool, result.buffer_id);
    ++emptied;
  }
  source.results.erase(source.results.begin(),
                       source.results.begin() + static_cast<std::ptrdiff_t>(emptied));
  return static_cast<int>(moved);
}

void release(MultishotSource& source) noexcept {
  // Acq_rel: see MultishotSource::references.
  if (source.references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  absl::InlinedVector<MultishotResult, 2> results;
  {
    MutexLock lock(source.mu);  // for the annotations: nobody else is left
    results.swap(source.results);
  }
  for (const MultishotResult& result : results) discard_result(result, source.kind);
  delete &source;
}

MultishotSource* make_multishot_accept(int fd) {
  return new MultishotSource(MultishotSource::Kind::kAccept, fd);
}

MultishotSource* make_multishot_receive(int fd) {
  return new MultishotSource(MultishotSource::Kind::kReceive, fd);
}

void release_multishot(MultishotSource& source) noexcept { release(source); }

void stop_multishot(MultishotSource& source_ref) noexcept {
  MultishotSource* source = &source_ref;
  absl::InlinedVector<MultishotResult, 2> results;
  absl::InlinedVector<IoOp*, 2> waiters;
  {
    MutexLock lock(source->mu);
    source->stopped = true;
    results.swap(source->results);
    waiters.swap(source->waiters);
    count_multishot_waiters(-static_cast<std::int64_t>(waiters.size()));
    if (source->armed_on != nullptr && !source->cancel_asked) {
      source->cancel_asked = true;
      // Under the lock: the ring's terminal CQE, which disarms the source,
      // takes it too, so the poller is alive while armed_on names it.
      source->armed_on->cancel_multishot(source->user_data);
    }
  }
  for (const MultishotResult& result : results) discard_result(result, source->kind);
  // Step 5 of multishot.hpp: taken out under the lock, readied here.
  for (IoOp* op : waiters) {
    op->result = -EBADF;
    ready_goroutine(op->g);
  }
}

}  // namespace goro::detail

namespace goro::io {

AcceptStream::AcceptStream(int listening_fd)
    : fd_(listening_fd), source_(goro::detail::make_multishot_accept(listening_fd)) {}

AcceptStream::~AcceptStream() {
  stop();
  goro::detail::release_multishot(*source_);
}

FdAwaiter AcceptStream::accept(const IoOptions& options) {
  // Stopped: an accept on no fd fails with EBADF on every backend (under
  // io_uring the stopped source says so too).
  const bool stopped = stopped_.load(std::memory_order_relaxed);
  return FdAwaiter(
      goro::detail::IoRequest{
          .kind = goro::detail::IoKind::kAccept, .fd = stopped ? -1 : fd_, .multishot = source_},
      options);
}

std::size_t AcceptStream::queued() const {
  goro::detail::MutexLock lock(source_->mu);
  return source_->results.size();
}

void AcceptStream::stop() noexcept {
  if (stopped_.exchange(true, std::memory_order_relaxed)) return;
  goro::detail::stop_multishot(*source_);
}

ReceiveStream::ReceiveStream(int fd) : fd_(fd), source_(goro::detail::make_multishot_receive(fd)) {}

ReceiveStream::~ReceiveStream() {
  stop();
  goro::detail::release_multishot(*source_);
}

SizeAwaiter ReceiveStream::read(void* buffer, std::size_t length, const IoOptions& options) {
  const bool stopped = stopped_.load(std::memory_order_relaxed);
  return SizeAwaiter(goro::detail::IoRequest{.kind = goro::detail::IoKind::kRecv,
                                             .fd = stopped ? -1 : fd_,
                                             .buffer = buffer,
                                             .length = std::min(length, goro::detail::kMaxIoLength),
                                             .multishot = source_},
                     options);
}

bool ReceiveStream::multishot_active() noexcept {
  const goro::detail::P* p = goro::detail::tls_p;
  return p != nullptr && goro::detail::tls_g != nullptr && p->poller->serves_multishot_receive();
}

void ReceiveStream::stop() noexcept {
  if (stopped_.exchange(true, std::memory_order_relaxed)) return;
  goro::detail::stop_multishot(*source_);
}

}  // namespace goro::io
