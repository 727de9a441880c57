// A bounded crawler: crawls a fake in-memory web whose fetch is a blocking
// call (it sleeps, as a real fetch would wait on the network) run through
// goro::blocking on a syscall thread, so the goroutine parks and its P runs
// other goroutines meanwhile. An errgroup-style Group with a limit of 3
// bounds how many fetches run at once; each page's task starts the tasks of
// the links it finds, and because Group::go queues a task past the limit
// instead of blocking (as errgroup's Go does, which would deadlock here),
// a task may start others. The first error cancels the group's context,
// which tasks check before fetching. Shows Group::with_context, set_limit,
// Group::go(f, args...), goro::blocking and Mutex::scoped_lock.
//
// The same program in Go is 73 lines (it bounds the fetches with a channel
// of 3 slots, since SetLimit cannot be used from inside a task); this one
// is 84, counted from the #include lines to the end of main.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <goro/goro.hpp>

namespace {

const std::map<std::string, std::vector<std::string>> kWeb = {
    {"/", {"/a", "/b", "/c"}},
    {"/a", {"/a/1", "/a/2", "/"}},
    {"/b", {"/b/1", "/a", "/gone"}},
    {"/c", {"/c/1", "/c/2", "/c/3"}},
    {"/a/1", {"/"}},
    {"/a/2", {"/b/1", "/moved"}},
    {"/b/1", {}},
    {"/c/1", {"/c/2"}},
    {"/c/2", {"/a/2"}},
    {"/c/3", {"/a/1", "/gone"}},
};

std::atomic<int> in_flight{0};
std::atomic<int> most_in_flight{0};

// The page's links, or nullopt for a dead link. Blocks its thread.
std::optional<std::vector<std::string>> fetch(const std::string& url) {
  const int now = in_flight.fetch_add(1) + 1;
  int most = most_in_flight.load();
  while (now > most && !most_in_flight.compare_exchange_weak(most, now)) {
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  in_flight.fetch_sub(1);
  const auto page = kWeb.find(url);
  if (page == kWeb.end()) return std::nullopt;
  return page->second;
}

struct Crawl {
  explicit Crawl(goro::GroupWithContext g) : group(g.group), ctx(g.ctx) {}
  goro::Group group;
  goro::Context ctx;
  goro::Mutex mu;
  std::set<std::string> seen{"/"};  // guarded by mu, as are the counts
  int pages = 0;
  int dead = 0;
};

goro::Task<absl::Status> visit(Crawl* crawl, std::string url) {
  if (crawl->ctx.cancelled()) co_return crawl->ctx.err();
  auto fetch_page = [&url] { return fetch(url); };
  std::optional<std::vector<std::string>> links = co_await goro::blocking(fetch_page);
  auto guard = co_await crawl->mu.scoped_lock();
  if (!links) {
    ++crawl->dead;
    co_return absl::OkStatus();
  }
  ++crawl->pages;
  for (const std::string& link : *links) {
    if (crawl->seen.insert(link).second) crawl->group.go(visit, crawl, link);
  }
  co_return absl::OkStatus();
}

goro::Task<int> crawler() {
  Crawl crawl(goro::Group::with_context(goro::background()));
  crawl.group.set_limit(3);
  crawl.group.go(visit, &crawl, std::string("/"));
  const absl::Status status = co_await crawl.group.wait();
  const bool bounded = most_in_flight.load() <= 3;
  std::printf("crawler: %d pages, %d dead links, %s fetches at once (limit 3), status: %s\n",
              crawl.pages, crawl.dead, bounded ? "at most 3" : "MORE THAN 3",
              status.ToString().c_str());
  co_return (crawl.pages == 10 && crawl.dead == 2 && bounded && status.ok()) ? 0 : 1;
}

}  // namespace

int main() { return goro::run(crawler()); }
