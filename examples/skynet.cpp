// skynet: 1M goroutines in a 10-ary tree; each leaf returns its number and
// each parent sums its children. Two versions: spawn/join (JoinHandle), and
// Go's exact skynet, where each parent makes one unbuffered channel that
// all its children send their sums on (the counterpart of go-skynet).
// usage: skynet [REPS]   (default 5) — prints the best of REPS runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <goro/goro.hpp>

namespace {

goro::Task<long> skynet(long num, long size, long div) {
  if (size == 1) co_return num;
  std::vector<goro::JoinHandle<long>> children;
  children.reserve(static_cast<std::size_t>(div));
  for (long i = 0; i < div; ++i) {
    children.push_back(goro::spawn(skynet(num + i * (size / div), size / div, div)));
  }
  long sum = 0;
  for (auto& child : children) sum += co_await child;
  co_return sum;
}

// Go's skynet, line for line: `c <- sum` to the parent's channel.
goro::Task<void> skynet_chan(goro::SendChan<long> c, long num, long size, long div) {
  if (size == 1) {
    co_await c.send(num);
    co_return;
  }
  goro::Chan<long> rc = goro::make_chan<long>();
  long sum = 0;
  for (long i = 0; i < div; ++i) {
    const long sub_num = num + i * (size / div);
    goro::go(skynet_chan(rc, sub_num, size / div, div));
  }
  for (long i = 0; i < div; ++i) sum += *co_await rc.recv();
  co_await c.send(sum);
}

goro::Task<long> skynet_chan_root() {
  goro::Chan<long> c = goro::make_chan<long>();
  goro::go(skynet_chan(c, 0, 1'000'000, 10));
  co_return *co_await c.recv();
}

goro::Task<double> best_ms(int reps, bool channels) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const long result =
        channels ? co_await skynet_chan_root() : co_await goro::spawn(skynet(0, 1'000'000, 10));
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    if (result != 499'999'500'000) {
      std::fprintf(stderr, "skynet: bad sum %ld\n", result);
      std::abort();
    }
    best = std::min(best, took.count());
  }
  co_return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::printf("skynet 1M spawn_join best_ms=%.2f\n", goro::run(best_ms(reps, false)));
  std::printf("skynet 1M channels best_ms=%.2f\n", goro::run(best_ms(reps, true)));
  return 0;
}
