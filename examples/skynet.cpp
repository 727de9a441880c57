// skynet: 1M goroutines in a 10-ary tree; each leaf returns its number and
// each parent sums its children. The counterpart of the Go anchor go-skynet
// (which uses channels; this uses spawn/join).
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

goro::Task<double> best_ms(int reps) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const long result = co_await goro::spawn(skynet(0, 1'000'000, 10));
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
  std::printf("skynet 1M spawn_join best_ms=%.2f\n", goro::run(best_ms(reps)));
  return 0;
}
