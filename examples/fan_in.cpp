// Fan-in over three channels plus a ticker: three producers send 10, 20
// and 30 values; main merges them into a batch and a ticker flushes the
// batch every 5 ms (and once more at the end), the usual way to bound how
// long a value waits in a batch. A source that is closed and drained is set
// to a nil channel, whose case never fires, so the loop runs until all
// three are nil. How many batches there are depends on timing; what is
// printed (the totals) does not. Shows select with a handler per case
// (on(recv_from(ch), ...), on(ticker, ...)), nil channels in a select and
// goro::Ticker.
//
// The same program in Go is 57 lines; this one is 60, counted from the
// #include lines to the end of main.
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include <goro/goro.hpp>

namespace {

using namespace std::chrono_literals;

goro::RecvChan<int> produce(int base, int n) {
  goro::Chan<int> out = goro::make_chan<int>(0);
  goro::go([out, base, n]() -> goro::Task<void> {
    auto closer = out.close_guard();
    for (int i = 1; i <= n; ++i) {
      co_await out.send(base + i);
      co_await goro::sleep(1ms);
    }
  });
  return out;
}

goro::Task<int> fan_in() {
  std::array<goro::RecvChan<int>, 3> sources{produce(1000, 10), produce(2000, 20),
                                             produce(3000, 30)};
  goro::Ticker ticker(5ms);
  auto stop_ticker = goro::defer([&ticker] { ticker.stop(); });
  std::array<int, 3> counts{};
  std::vector<int> batch;
  long merged = 0;
  long sum = 0;
  auto flush = [&] {
    for (int v : batch) sum += v;
    merged += static_cast<long>(batch.size());
    batch.clear();
  };
  auto take = [&](std::size_t i) {
    return [&, i](std::optional<int> v) {
      if (!v) return void(sources[i] = {});
      ++counts[i];
      batch.push_back(*v);
    };
  };
  const auto take0 = take(0), take1 = take(1), take2 = take(2);
  while (!sources[0].nil() || !sources[1].nil() || !sources[2].nil()) {
    co_await goro::select(goro::on(goro::recv_from(sources[0]), take0),
                          goro::on(goro::recv_from(sources[1]), take1),
                          goro::on(goro::recv_from(sources[2]), take2), goro::on(ticker, flush));
  }
  flush();
  std::printf("fan-in: %ld values (%d, %d, %d from the three sources), sum %ld\n", merged,
              counts[0], counts[1], counts[2], sum);
  co_return merged == 60 && sum == 140730 ? 0 : 1;
}

}  // namespace

int main() { return goro::run(fan_in()); }
