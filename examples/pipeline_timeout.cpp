// A pipeline under a context timeout: generate -> square -> main. Every
// stage sends in a select against ctx.done(), so when the timeout fires
// each one returns, and its close_guard closes its output, which ends the
// stage after it. The source sends 1..10 and then stalls (as a slow
// upstream would), so it is the timeout that ends the run: main prints the
// ten squares' sum and the context's error (DEADLINE_EXCEEDED). Shows
// with_timeout, goro::defer for the cancel, Chan::close_guard, indexed
// select over a send and ctx.done(), and goro::go with a capturing lambda.
//
// The same program in Go is 49 lines; this one is 54, counted from the
// #include lines to the end of main.
#include <chrono>
#include <cstdio>

#include <goro/goro.hpp>

namespace {

using namespace std::chrono_literals;

goro::RecvChan<int> generate(goro::Context ctx, int n) {
  goro::Chan<int> out = goro::make_chan<int>(0);
  goro::go([ctx, out, n]() -> goro::Task<void> {
    auto closer = out.close_guard();
    for (int i = 1; i <= n; ++i) {
      auto sent = co_await goro::select(goro::send_to(out, i), goro::recv_from(ctx.done()));
      if (sent.index() == 1) co_return;
    }
    (void)co_await ctx.done().recv();  // stall until the timeout
  });
  return out;
}

goro::RecvChan<int> square(goro::Context ctx, goro::RecvChan<int> in) {
  goro::Chan<int> out = goro::make_chan<int>(0);
  goro::go([ctx, in, out]() -> goro::Task<void> {
    auto closer = out.close_guard();
    while (auto v = co_await in.recv()) {
      auto sent = co_await goro::select(goro::send_to(out, *v * *v), goro::recv_from(ctx.done()));
      if (sent.index() == 1) co_return;
    }
  });
  return out;
}

goro::Task<int> pipeline() {
  // Generous, so that a loaded machine still moves all ten values first.
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 1s);
  auto cancel_at_exit = goro::defer(cancel);
  long count = 0;
  long sum = 0;
  goro::RecvChan<int> squares = square(ctx, generate(ctx, 10));
  while (auto v = co_await squares.recv()) {
    ++count;
    sum += *v;
  }
  const absl::Status stopped_by = ctx.err();
  std::printf("pipeline: %ld squares, sum %ld, stopped by: %s\n", count, sum,
              stopped_by.ToString().c_str());
  co_return count == 10 && sum == 385 && absl::IsDeadlineExceeded(stopped_by) ? 0 : 1;
}

}  // namespace

int main() { return goro::run(pipeline()); }
