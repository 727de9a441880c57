// Built by the consumer tests against goro::goro: a goroutine tree that
// must sum to 2^depth. Returns non-zero on a wrong result.
#include <atomic>
#include <cstdio>

#include <goro/goro.hpp>

namespace {

std::atomic<int> detached_runs{0};

goro::Task<long> tree(int depth) {
  if (depth == 0) co_return 1;
  auto a = goro::spawn(tree(depth - 1));
  auto b = goro::spawn(tree(depth - 1));
  co_await goro::yield();
  co_return co_await a + co_await b;
}

goro::Task<void> bump() {
  detached_runs.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

goro::Task<long> main_task() {
  for (int i = 0; i < 4; ++i) goro::go(bump());
  co_return co_await goro::spawn(tree(10));
}

}  // namespace

int main() {
  const long sum = goro::run(main_task(), goro::Config{.procs = 2});
  if (sum != 1024) {
    std::fprintf(stderr, "consumer: tree(10) = %ld, want 1024\n", sum);
    return 1;
  }
  std::printf("consumer: ok (tree(10) = %ld, detached ran %d of 4)\n", sum, detached_runs.load());
  return 0;
}
