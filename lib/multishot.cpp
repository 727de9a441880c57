// lib/multishot.cpp: multishot sources' life outside the ring (creation,
// stop, references) and goro::io::AcceptStream. The mechanism is described
// at the top of multishot.hpp; the ring's side is in poller_uring.cpp.
#include "multishot.hpp"

#include <unistd.h>

#include <cerrno>
#include <utility>

#include "goro/io_multishot.hpp"
#include "poller.hpp"

namespace goro::detail {

void discard_result(const MultishotSource& source, int result) noexcept {
  if (source.kind == MultishotSource::Kind::kAccept && result >= 0) ::close(result);
}

void release(MultishotSource& source) noexcept {
  // Acq_rel: see MultishotSource::references.
  if (source.references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::deque<int> results;
  {
    MutexLock lock(source.mu);  // for the annotations: nobody else is left
    results.swap(source.results);
  }
  for (int result : results) discard_result(source, result);
  delete &source;
}

MultishotSource* make_multishot_accept(int fd) {
  return new MultishotSource(MultishotSource::Kind::kAccept, fd);
}

void release_multishot(MultishotSource& source) noexcept { release(source); }

void stop_multishot(MultishotSource& source_ref) noexcept {
  MultishotSource* source = &source_ref;
  std::deque<int> results;
  absl::InlinedVector<IoOp*, 2> waiters;
  {
    MutexLock lock(source->mu);
    source->stopped = true;
    results.swap(source->results);
    waiters.swap(source->waiters);
    if (source->armed_on != nullptr && !source->cancel_asked) {
      source->cancel_asked = true;
      // Under the lock: the ring's terminal CQE, which disarms the source,
      // takes it too, so the poller is alive while armed_on names it.
      source->armed_on->cancel_multishot(source->user_data);
    }
  }
  for (int result : results) discard_result(*source, result);
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

}  // namespace goro::io
