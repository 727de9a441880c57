// examples/fetch.cpp: fetches a URL with goro::http::Client and prints the
// response as it came: the status line, the header fields, a blank line,
// the body.
//
// usage: fetch URL   (http:// only; 10 s to get the whole response). Exits
// with 0 when a response arrived, whatever its status; 1 on an error,
// printed to standard error. Try, with examples/http_server running:
//   fetch http://127.0.0.1:8080/json
#include <chrono>
#include <cstdio>
#include <string>

#include <goro/goro.hpp>
#include <goro/http.hpp>

namespace {

using namespace std::chrono_literals;

goro::Task<int> fetch(std::string url) {
  goro::http::Client client;
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 10s);
  auto response = co_await client.get(url, ctx);
  cancel();
  if (!response.ok()) {
    std::fprintf(stderr, "fetch: %s\n", response.status().ToString().c_str());
    co_return 1;
  }
  std::printf("HTTP/1.%d %d %s\n", response->version_minor, response->status_code,
              response->reason.c_str());
  for (const goro::http::HeaderField& field : response->headers) {
    std::printf("%s: %s\n", field.name.c_str(), field.value.c_str());
  }
  std::printf("\n");
  std::fwrite(response->body.data(), 1, response->body.size(), stdout);
  std::fflush(stdout);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fetch URL\n");
    return 2;
  }
  return goro::run(fetch(argv[1]));
}
