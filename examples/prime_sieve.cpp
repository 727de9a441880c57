// examples/prime_sieve.cpp: Go's concurrent prime sieve (the one on go.dev's
// front page). A goroutine sends 2, 3, 4, ... down a channel; main takes
// the first number from the channel at the end of the chain, which is a
// prime, prints it, and puts a filter goroutine after it that drops the
// multiples of that prime. After N primes the chain is N filters long.
// The goroutines still running when main returns are destroyed with the
// runtime, as a Go program's are when main returns.
//
// usage: prime_sieve [N]   (default 100). Prints the primes ten to a line,
// then "prime_sieve: the first N primes, the last P".
#include <cstdio>
#include <cstdlib>

#include <goro/goro.hpp>

namespace {

// Sends 2, 3, 4, ... to `out`.
goro::Task<void> generate(goro::Chan<long> out) {
  for (long i = 2;; ++i) co_await out.send(i);
}

// Copies what comes from `in` to `out`, leaving out the multiples of `prime`.
goro::Task<void> filter(goro::Chan<long> in, goro::Chan<long> out, long prime) {
  for (;;) {
    const long i = *co_await in.recv();
    if (i % prime != 0) co_await out.send(i);
  }
}

goro::Task<int> sieve(int count) {
  goro::Chan<long> numbers = goro::make_chan<long>();
  goro::go(generate(numbers));
  long prime = 0;
  for (int i = 1; i <= count; ++i) {
    prime = *co_await numbers.recv();
    std::printf("%ld%c", prime, i % 10 == 0 || i == count ? '\n' : ' ');
    goro::Chan<long> filtered = goro::make_chan<long>();
    goro::go(filter(numbers, filtered, prime));
    numbers = filtered;
  }
  std::printf("prime_sieve: the first %d primes, the last %ld\n", count, prime);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 100;
  if (count < 1) {
    std::fprintf(stderr, "usage: prime_sieve [N]   (N >= 1)\n");
    return 2;
  }
  return goro::run(sieve(count));
}
