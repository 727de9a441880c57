// skynet: 1M goroutines in a 10-ary tree; each leaf returns its number and
// each parent sums its children. Two versions (skynet.hpp): spawn/join
// (JoinHandle), and Go's exact skynet, where each parent makes one
// unbuffered channel that all its children send their sums on (the
// counterpart of go-skynet).
// usage: skynet [REPS] [LEAVES]   (defaults 5 and 1000000) — prints the sum
// and the best time of REPS runs of each version.
#include "skynet.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <goro/goro.hpp>

namespace {

goro::Task<double> best_ms(int reps, long leaves, bool channels) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const long result = channels ? co_await skynet::channel_tree_sum(leaves, 10)
                                 : co_await goro::spawn(skynet::spawn_join_tree(0, leaves, 10));
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    if (result != skynet::leaf_sum(leaves)) {
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
  const long leaves = argc > 2 ? std::max(1L, std::atol(argv[2])) : 1'000'000;
  const std::string size = leaves == 1'000'000 ? "1M" : std::to_string(leaves);
  const long sum = skynet::leaf_sum(leaves);
  std::printf("skynet %s spawn_join sum=%ld best_ms=%.2f\n", size.c_str(), sum,
              goro::run(best_ms(reps, leaves, false)));
  std::printf("skynet %s channels sum=%ld best_ms=%.2f\n", size.c_str(), sum,
              goro::run(best_ms(reps, leaves, true)));
  return 0;
}
