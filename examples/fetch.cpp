// examples/fetch.cpp: fetches URLs concurrently and prints the status and
// size of each, as Go's fetchall ("The Go Programming Language", 1.6) does,
// with an errgroup limit and a context timeout:
//
//   ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//   var g errgroup.Group
//   g.SetLimit(4)
//   for i, url := range urls {
//     g.Go(func() error { results[i] = fetch(ctx, url); return nil })
//   }
//   g.Wait()
//
// usage: fetch URL...   (http:// only; at most 4 requests at once; 10 s for
// them all). Prints one line per URL, in the order given, once all are
// done: "URL: STATUS REASON, N bytes" or "URL: error: MESSAGE". Exits 0
// when every URL answered (whatever the status), 1 otherwise. Try, with
// examples/http_server running:
//   fetch http://127.0.0.1:8080/json http://127.0.0.1:8080/plaintext
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <goro/goro.hpp>
#include <goro/http.hpp>

#include "absl/strings/str_cat.h"

namespace {

using namespace std::chrono_literals;

constexpr long kConcurrentFetches = 4;

struct Result {
  std::string line;  // the status and size, or what went wrong
  bool answered = false;
};

goro::Task<Result> fetch(goro::http::Client& client, goro::Context ctx, std::string url) {
  auto response = co_await client.get(url, ctx);
  if (!response.ok())
    co_return Result{absl::StrCat(url, ": error: ", response.status().ToString())};
  co_return Result{absl::StrCat(url, ": ", response->status_code, " ", response->reason, ", ",
                                response->body.size(), " bytes"),
                   true};
}

goro::Task<int> fetch_all(std::vector<std::string> urls) {
  goro::http::Client client;
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 10s);
  std::vector<Result> results(urls.size());  // each goroutine writes its own
  goro::Group group;
  group.set_limit(kConcurrentFetches);
  for (std::size_t i = 0; i < urls.size(); ++i) {
    group.go([&, i]() -> goro::Task<absl::Status> {
      results[i] = co_await fetch(client, ctx, urls[i]);
      co_return absl::OkStatus();
    });
  }
  (void)co_await group.wait();  // every task returns OK: the errors are in the results
  bool all_answered = true;
  for (const Result& result : results) {
    std::printf("%s\n", result.line.c_str());
    all_answered = all_answered && result.answered;
  }
  std::fflush(stdout);
  co_return all_answered ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fetch URL...\n");
    return 2;
  }
  return goro::run(fetch_all(std::vector<std::string>(argv + 1, argv + argc)));
}
