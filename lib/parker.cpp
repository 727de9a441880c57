// lib/parker.cpp: the futex-based Parker (see parker.hpp for the design).
#include "parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace goro::detail {
namespace {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  // Returns on wake, on EAGAIN (the word changed first) and on EINTR; the
  // caller re-checks the word in every case.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

// Waits with an absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET takes
// absolute time, so a retry after EINTR does not stretch the sleep).
void futex_wait_until(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::int64_t deadline_ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected,
          &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

std::int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
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

bool Parker::park_until(std::int64_t deadline_ns) noexcept {
  for (;;) {
    // Acquire: as in park().
    if (token_.exchange(0, std::memory_order_acquire) == 1) return true;
    if (now_ns() >= deadline_ns) return false;
    futex_wait_until(&token_, 0, deadline_ns);
  }
}

void Parker::unpark() noexcept {
  // Release: publishes the waker's writes to the parked thread.
  if (token_.exchange(1, std::memory_order_release) == 0) futex_wake_one(&token_);
}

}  // namespace goro::detail
