// README.md's example (keep them in step): a tree of goroutines.
#include <cstdio>

#include <goro/goro.hpp>

// Each goroutine spawns two children and sums what they return.
goro::Task<long> tree(int depth) {
  if (depth == 0) co_return 1;
  auto a = goro::spawn(tree(depth - 1));
  auto b = goro::spawn(tree(depth - 1));
  co_return co_await a + co_await b;  // join: an exception in a child rethrows here
}

goro::Task<long> main_task() {
  long leaves = co_await goro::spawn(tree(16));  // 131071 goroutines
  co_await goro::yield();
  co_return leaves;
}

int main() {
  long leaves = goro::run(main_task());  // one worker thread per CPU
  std::printf("tree(16) has %ld leaves\n", leaves);
  return leaves == 65536 ? 0 : 1;
}
