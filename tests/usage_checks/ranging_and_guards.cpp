// Must compile without a warning (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1,
// -Werror): the receive loops, goro::for_each with each kind of body, and
// the scope guards, as the headers document them.
#include <goro/goro.hpp>

void use(int v);

goro::Task<void> consume(goro::Chan<int> ch, goro::RecvChan<int> view) {
  while (auto v = co_await ch.recv()) use(*v);
  while (auto r = co_await view.recv_ok()) use(r.value);
}

goro::Task<void> ranges(goro::Chan<int> ch, goro::Context ctx) {
  int total = 0;
  co_await goro::for_each(ch, [&total](int v) { total += v; });
  co_await goro::for_each(ch, [](int v) { return v < 10; });
  co_await goro::for_each(ch, [](int v) -> goro::Task<void> {
    co_await goro::yield();
    use(v);
  });
  co_await goro::for_each(goro::RecvChan<int>(ch), [](int v) -> goro::Task<bool> {
    co_await goro::yield();
    co_return v < 10;
  });
  absl::Status status = co_await goro::for_each(ctx, ch, [](int v) { use(v); });
  if (!status.ok()) use(-1);
  use(total);
}

goro::Task<void> worker(goro::WaitGroup& wg, goro::SendChan<int> out) {
  auto done = wg.done_guard();
  auto closer = out.close_guard();
  auto logged = goro::defer([] { use(0); });
  co_await out.send(1);
}
