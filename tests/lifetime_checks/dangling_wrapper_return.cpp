// Must be rejected (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1, -Werror): a
// function that is not a coroutine returns a Task bound to its own
// parameter, which dies when it returns.
#include <string>

#include <goro/task.hpp>
#include <goro/yield.hpp>

void use(const std::string& s);

goro::Task<void> print(const std::string& s) {
  co_await goro::yield();
  use(s);
}

GORO_CORO_WRAPPER goro::Task<void> start(std::string s) { return print(s); }
