// Must fail (clang >= 19, -Werror) with the nodiscard reason that names
// the missing co_await: a send that is not awaited sends nothing.
#include <goro/chan.hpp>
#include <goro/task.hpp>

goro::Task<void> producer(goro::Chan<int> ch) {
  ch.send(1);
  co_return;
}
