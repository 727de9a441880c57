// Must be rejected (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1, -Werror): a
// Task from a capturing lambda, kept in a variable past the statement that
// made the closure. The goroutine would read `s` from a dead closure.
#include <string>
#include <utility>

#include <goro/go.hpp>
#include <goro/yield.hpp>

void use(const std::string& s);

goro::Task<void> start(std::string s) {
  auto task = [s]() -> goro::Task<void> {
    co_await goro::yield();
    use(s);
  }();
  goro::go(std::move(task));
  co_return;
}
