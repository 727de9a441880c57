// A tour of the scheduler: runs many goroutines in the shapes servers and
// parallel programs produce, then prints what the scheduler did.
//
//  1. A fork-join tree of 2^17 - 1 goroutines (spawn + co_await), as the
//     README's example: joins run unstarted children inline, idle Ps steal.
//  2. 10,000 detached goroutines (goro::go) that each yield a few times,
//     counted down through an atomic, while main yields until they are done:
//     local run queues, runnext, overflow to the global queue, stealing.
//  3. Goroutines started from a thread outside the runtime, which land on
//     the global queue and wake an idle worker.
//  4. Echo over 32 socketpairs through the netpoller (goro::io), the
//     results gathered through a channel.
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

namespace {

goro::Task<long> tree(int depth) {
  if (depth == 0) co_return 1;
  auto left = goro::spawn(tree(depth - 1));
  auto right = goro::spawn(tree(depth - 1));
  co_return co_await left + co_await right;
}

goro::Task<void> worker(std::atomic<int>* remaining, int yields) {
  for (int i = 0; i < yields; ++i) co_await goro::yield();
  remaining->fetch_sub(1, std::memory_order_relaxed);
}

goro::Task<void> wait_for_zero(std::atomic<int>* remaining) {
  while (remaining->load(std::memory_order_relaxed) != 0) co_await goro::yield();
}

void spawn_from_outside(std::atomic<int>* remaining, int count) {
  for (int i = 0; i < count; ++i) goro::go(worker(remaining, 1));
}

goro::Task<void> echo(int fd, int messages) {
  for (int i = 0; i < messages; ++i) {
    int value = 0;
    auto n = co_await goro::io::recv(fd, &value, sizeof value, MSG_WAITALL);
    if (!n.ok() || *n != sizeof value) co_return;
    (void)co_await goro::io::send(fd, &value, sizeof value);
  }
}

goro::Task<void> client(int fd, int messages, goro::SendChan<long> results) {
  long sum = 0;
  for (int i = 0; i < messages; ++i) {
    (void)co_await goro::io::send(fd, &i, sizeof i);
    int reply = -1;
    auto n = co_await goro::io::recv(fd, &reply, sizeof reply, MSG_WAITALL);
    if (n.ok() && *n == sizeof reply) sum += reply;
  }
  co_await results.send(sum);
}

goro::Task<bool> echo_pairs(int pairs, int messages) {
  std::vector<std::array<int, 2>> fds(pairs);
  goro::Chan<long> results = goro::make_chan<long>(pairs);
  for (auto& f : fds) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.data()) != 0) co_return false;
    goro::go(echo(f[0], messages));
    goro::go(client(f[1], messages, results));
  }
  long total = 0;
  for (int i = 0; i < pairs; ++i) total += (co_await results.recv()).value_or(0);
  for (auto& f : fds) {
    (void)goro::io::close(f[0]);
    (void)goro::io::close(f[1]);
  }
  co_return total == static_cast<long>(pairs) * messages*(messages - 1) / 2;
}

goro::Task<int> demo() {
  const auto start = std::chrono::steady_clock::now();

  const long leaves = co_await goro::spawn(tree(17));
  std::printf("fork-join tree: %ld leaves from %ld goroutines\n", leaves, 2 * leaves - 1);

  std::atomic<int> remaining{10'000};
  for (int i = 0; i < 10'000; ++i) goro::go(worker(&remaining, 3));
  co_await wait_for_zero(&remaining);
  std::printf("yielders: 10000 goroutines yielded 3 times each\n");

  std::atomic<int> outside_remaining{1'000};
  std::thread outside(spawn_from_outside, &outside_remaining, 1'000);
  co_await wait_for_zero(&outside_remaining);
  outside.join();
  std::printf("outside: 1000 goroutines started by a non-runtime thread\n");

  const bool echoed = co_await echo_pairs(32, 1000);
  std::printf("netpoller (%s): 32 socketpairs echoed 1000 messages each%s\n",
              goro::io::poller_backend(), echoed ? "" : " -- WRONG DATA");

  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("done in %.1f ms\n", took.count());
  co_return leaves == (1L << 17) && echoed ? 0 : 1;
}

}  // namespace

int main() {
  const int status = goro::run(demo());
  const goro::SchedulerStats s = goro::scheduler_stats();
  std::printf(
      "\nscheduler, %u Ps:\n"
      "  goroutines started   %llu\n"
      "  goroutines finished  %llu\n"
      "  run from a queue     %llu\n"
      "  joined inline        %llu\n"
      "  yields               %llu\n"
      "  steals               %llu (%llu goroutines)\n"
      "  global queue takes   %llu\n"
      "  local overflows      %llu\n"
      "  worker parks         %llu\n"
      "  worker wakeups       %llu\n"
      "  I/O waits            %llu (poller: %s)\n",
      s.procs, static_cast<unsigned long long>(s.goroutines_started),
      static_cast<unsigned long long>(s.goroutines_finished),
      static_cast<unsigned long long>(s.schedules), static_cast<unsigned long long>(s.inline_joins),
      static_cast<unsigned long long>(s.yields), static_cast<unsigned long long>(s.steals),
      static_cast<unsigned long long>(s.stolen_goroutines),
      static_cast<unsigned long long>(s.global_queue_takes),
      static_cast<unsigned long long>(s.local_queue_overflows),
      static_cast<unsigned long long>(s.parks), static_cast<unsigned long long>(s.wakeups),
      static_cast<unsigned long long>(s.io_waits), goro::io::poller_backend());
  return status;
}
