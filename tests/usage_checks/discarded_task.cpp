// Must fail (clang >= 19, -Werror) with Task's nodiscard reason: a Task
// that is neither awaited nor started runs nothing.
#include <goro/task.hpp>

goro::Task<void> work() { co_return; }

goro::Task<void> caller() {
  work();
  co_return;
}
