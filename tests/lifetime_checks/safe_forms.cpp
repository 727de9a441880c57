// Must compile without a warning (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1,
// -Werror): the forms that keep what a goroutine reads alive, so that the
// checks that reject the dangling forms are known not to reject these.
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include <goro/go.hpp>
#include <goro/group.hpp>
#include <goro/wait_group.hpp>
#include <goro/yield.hpp>

void use(const std::string& s);

goro::Task<void> print(const std::string& s) {
  co_await goro::yield();
  use(s);
}

goro::Task<void> print_copy(std::string s) {
  co_await goro::yield();
  use(s);
}

goro::Task<absl::Status> check(std::string s) {
  co_await goro::yield();
  use(s);
  co_return absl::OkStatus();
}

GORO_CORO_WRAPPER goro::Task<void> start_copy(std::string s) { return print_copy(std::move(s)); }

goro::Task<int> forms(std::string s, std::shared_ptr<int> shared) {
  goro::go([s, shared]() -> goro::Task<void> {
    co_await goro::yield();
    use(s + std::to_string(*shared));
  });
  goro::go(print, std::string("a temporary, copied into the goroutine"));
  goro::go(print_copy(std::string("a by-value parameter")));
  goro::go(start_copy(s));
  auto handle = goro::spawn(
      [s](int x) -> goro::Task<int> {
        co_await goro::yield();
        co_return static_cast<int>(s.size()) + x;
      },
      1);
  goro::WaitGroup wg;
  wg.go([s]() -> goro::Task<void> {
    co_await goro::yield();
    use(s);
  });
  goro::Group group;
  group.go(check, s);
  group.go([s]() -> goro::Task<absl::Status> { co_return co_await check(s); });
  co_await print(std::string("a temporary that outlives this co_await"));
  co_await [&s]() -> goro::Task<void> { co_await print(s); }();
  co_await wg.wait();
  (void)co_await group.wait();
  co_return co_await handle;
}
