// Must fail (clang >= 19, -Werror) with goro's own message: a receive loop
// without its co_await tests the awaiter, not the value.
#include <goro/chan.hpp>
#include <goro/task.hpp>

goro::Task<int> consumer(goro::Chan<int> ch) {
  int sum = 0;
  while (auto v = ch.recv()) ++sum;
  co_return sum;
}
