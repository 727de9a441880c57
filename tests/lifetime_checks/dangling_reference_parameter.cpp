// Must be rejected (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1, -Werror): a
// Task whose reference parameter is bound to a temporary, kept in a
// variable past the statement that made the temporary.
#include <string>
#include <utility>

#include <goro/go.hpp>
#include <goro/yield.hpp>

void use(const std::string& s);

goro::Task<void> print(const std::string& s) {
  co_await goro::yield();
  use(s);
}

goro::Task<void> start() {
  auto task = print(std::string("a temporary string, gone at the semicolon"));
  goro::go(std::move(task));
  co_return;
}
