// A worker pool: four goroutines take jobs from one channel and send
// results to another; a WaitGroup says when they have all finished, so
// that the results channel can be closed and drained with a plain loop.
// Shows WaitGroup::go (a capturing lambda, moved into the goroutine's
// frame), `while (auto v = co_await ch.recv())` as Go's range over a
// channel, and goro::go for the goroutine that closes the results.
//
// The same program in Go is 35 lines; this one is 34, counted from the
// #include lines to the end of main.
#include <cstdio>

#include <goro/goro.hpp>

namespace {

goro::Task<int> worker_pool() {
  goro::Chan<int> jobs = goro::make_chan<int>(100);
  goro::Chan<long> results = goro::make_chan<long>(100);
  goro::WaitGroup workers;
  for (int w = 0; w < 4; ++w) {
    workers.go([jobs, results]() -> goro::Task<void> {
      while (auto job = co_await jobs.recv()) co_await results.send(long{*job} * *job);
    });
  }
  for (int j = 1; j <= 100; ++j) co_await jobs.send(j);
  jobs.close();
  goro::go([&workers, results]() -> goro::Task<void> {
    co_await workers.wait();
    results.close();
  });
  long count = 0;
  long sum = 0;
  while (auto square = co_await results.recv()) {
    ++count;
    sum += *square;
  }
  std::printf("worker pool: 4 workers squared %ld jobs, sum %ld\n", count, sum);
  co_return count == 100 && sum == 338350 ? 0 : 1;
}

}  // namespace

int main() { return goro::run(worker_pool()); }
