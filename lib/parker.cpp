// lib/parker.cpp: the futex-based Parker (see parker.hpp for the design).
#include "parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace goro::detail {
namespace {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  // Returns on wake, on EAGAIN (the word changed first) and on EINTR; the
  // caller re-checks the word in every case.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          nullptr, nullptr, 0);
}

void futex_wake_one(std::atomic<std::uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

}  // namespace

void Parker::park() noexcept {
  for (;;) {
    // Acquire: pairs with unpark's release, so what the waker wrote before
    // depositing the token (e.g. our spinning flag) is visible to us.
    if (token_.exchange(0, std::memory_order_acquire) == 1) return;
    futex_wait(&token_, 0);
  }
}

void Parker::unpark() noexcept {
  // Release: publishes the waker's writes to the parked thread.
  if (token_.exchange(1, std::memory_order_release) == 0) futex_wake_one(&token_);
}

}  // namespace goro::detail
