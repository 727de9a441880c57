// skynet: 1M goroutines in a 10-ary tree; each leaf returns its number and
// each parent sums its children. Two versions (skynet.hpp): spawn/join
// (JoinHandle), and Go's exact skynet, where each parent makes one
// unbuffered channel that all its children send their sums on (the
// counterpart of go-skynet).
// usage: skynet [REPS]   (default 5) — prints the best of REPS runs.
#include "skynet.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <goro/goro.hpp>

namespace {

constexpr long kLeaves = 1'000'000;

goro::Task<double> best_ms(int reps, bool channels) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const long result = channels ? co_await skynet::channel_tree_sum(kLeaves, 10)
                                 : co_await goro::spawn(skynet::spawn_join_tree(0, kLeaves, 10));
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    if (result != skynet::leaf_sum(kLeaves)) {
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
