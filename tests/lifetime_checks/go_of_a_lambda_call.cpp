// Compiles silently under clang 19 even with GORO_CORO_LIFETIME_CHECKS=1
// and -Werror, although the goroutine reads `s` from a closure that died
// at the end of the statement: clang checks a lifetime-bound temporary
// only where a variable, member or return value is initialized, and a
// function argument outlives its temporaries until the call returns. This
// check records that gap (task.hpp documents it); it fails once a clang
// diagnoses this form, which is the moment to update task.hpp and go.hpp.
// Write goro::go([s]() -> goro::Task<void> {...}) instead.
#include <string>

#include <goro/go.hpp>
#include <goro/yield.hpp>

void use(const std::string& s);

goro::Task<void> start(std::string s) {
  goro::go([s]() -> goro::Task<void> {
    co_await goro::yield();
    use(s);
  }());
  co_return;
}
