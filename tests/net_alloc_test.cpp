// tests/net_alloc_test.cpp: what goro::net allocates on its common paths
// (a Conn's reads with multishot receive off), counted with a global
// operator new.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "test_util.hpp"

// Counts the global operator new calls of the whole process (every thread:
// a worker may run the goroutine that allocates). Not under
// ThreadSanitizer, whose runtime defines operator new itself, nor where
// frames come from operator new by design.
#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_COUNTS_NEW 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_COUNTS_NEW 0
#endif
#endif
#if !defined(GORO_TEST_COUNTS_NEW) && defined(GORO_SYSTEM_FRAME_ALLOCATOR) && \
    GORO_SYSTEM_FRAME_ALLOCATOR
#define GORO_TEST_COUNTS_NEW 0
#endif
#ifndef GORO_TEST_COUNTS_NEW
#define GORO_TEST_COUNTS_NEW 1
#endif

namespace {
// Relaxed: read by the thread that runs the test body after the operations
// it counts returned to it (a resumption, which the scheduler orders).
std::atomic<long> global_news{0};
}  // namespace

#if GORO_TEST_COUNTS_NEW
void* operator new(std::size_t size) {
  global_news.fetch_add(1, std::memory_order_relaxed);  // see global_news
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace goro {
namespace {

using namespace std::chrono_literals;

constexpr bool kCountsNew = GORO_TEST_COUNTS_NEW != 0;

long news_now() { return global_news.load(std::memory_order_relaxed); }  // see global_news

// A connected Unix stream pair: a Conn and the peer's raw fd.
struct ConnPair {
  net::Conn conn;
  int conn_fd = -1;
  int peer = -1;
};

bool make_pair(ConnPair& pair) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) return false;
  pair.conn = net::Conn::from_fd(fds[0]);
  pair.conn_fd = fds[0];
  pair.peer = fds[1];
  return true;
}

constexpr int kConns = 64;

// The first read of each of kConns Conns, data already waiting: the
// allocations those reads made go to *news.
Task<std::string> first_reads(long* news) {
  std::vector<ConnPair> pairs(kConns + 1);
  for (ConnPair& pair : pairs) {
    if (!make_pair(pair)) co_return "socketpair";
    if (::write(pair.peer, "x", 1) != 1) co_return "write";
  }
  char c = 0;
  // One read before counting: what the first read of the runtime makes
  // (a frame cache's span) is not a Conn's cost.
  if (auto n = co_await pairs[kConns].conn.read(&c, 1); !n.ok() || *n != 1) co_return "warm-up";
  const long before = news_now();
  for (int i = 0; i < kConns; ++i) {
    auto n = co_await pairs[i].conn.read(&c, 1);
    if (!n.ok() || *n != 1 || c != 'x') co_return "read " + std::to_string(i);
  }
  *news = news_now() - before;
  for (ConnPair& pair : pairs) ::close(pair.peer);
  co_return "";
}

TEST(NetAllocation, AConnsReadsAllocateNothingWithMultishotReceiveOff) {
  test::Watchdog watchdog("NetAllocation.AConnsReadsAllocateNothingWithMultishotReceiveOff", 120s);
  Config config = test::with_procs(1);
  ASSERT_FALSE(config.multishot_receive);  // the default
  long news = 0;
  EXPECT_EQ(run(first_reads(&news), config), "");
  if (!kCountsNew) GTEST_SKIP() << "operator new is not counted in this build";
  // A receive stream per Conn would be at least two (the stream and its
  // multishot source).
  EXPECT_LT(news, kConns) << news << " allocations in " << kConns << " first reads";
}

TEST(NetAllocation, AConnsFirstReadMakesItsReceiveStreamWithMultishotReceiveOn) {
  test::Watchdog watchdog(
      "NetAllocation.AConnsFirstReadMakesItsReceiveStreamWithMultishotReceiveOn", 120s);
  Config config = test::with_procs(1);
  config.multishot_receive = true;
  long news = 0;
  std::string backend;
  EXPECT_EQ(run(
                [](long* news, std::string* backend) -> Task<std::string> {
                  *backend = io::poller_backend();
                  co_return co_await first_reads(news);
                }(&news, &backend),
                config),
            "");
  if (!kCountsNew) GTEST_SKIP() << "operator new is not counted in this build";
  // The counter sees the streams where they are made (so the test above
  // could see them too); under epoll there are none.
  if (backend == "io_uring") {
    EXPECT_GE(news, 2 * kConns) << news;
  } else {
    EXPECT_LT(news, kConns) << news;
  }
}

}  // namespace
}  // namespace goro
