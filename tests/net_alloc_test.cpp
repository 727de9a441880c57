// tests/net_alloc_test.cpp: what goro::net allocates on its common paths
// (a Conn's reads with multishot receive off, deadline refreshes while a
// read is parked), counted with a global operator new, and that deadline
// changes while a read is parked never lose its wake-up.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "counting_new.hpp"
#include "poller.hpp"
#include "test_util.hpp"

namespace goro {
namespace {

using namespace std::chrono_literals;

constexpr bool kCountsNew = GORO_TEST_COUNTS_NEW != 0;

long news_now() { return test::news_in_process(); }

bool runs_on_uring() { return std::string(io::poller_backend()) == "io_uring"; }

// Whether an operation on `fd` is parked in the poller.
bool parked_on(int fd) {
  return runs_on_uring() ? detail::uring_ops_on_fd_for_testing(fd) != 0
                         : detail::epoll_ops_parked_on_fd_for_testing(fd) != 0;
}

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

Task<absl::StatusOr<char>> read_one(net::Conn* conn) {
  char c = 0;
  auto n = co_await conn->read(&c, 1);
  if (!n.ok()) co_return n.status();
  if (*n != 1) co_return absl::OutOfRangeError("end of stream");
  co_return c;
}

constexpr int kChanges = 10'000;

// How the tests below end: `reader`, parked through the changes, gets the
// byte written now, and the next read, parked, is ended at once by a
// deadline in the past.
Task<std::string> wake_up_then_time_out(ConnPair* pair, JoinHandle<absl::StatusOr<char>> reader) {
  if (::write(pair->peer, "w", 1) != 1) co_return "write";
  auto got = co_await reader;
  if (!got.ok()) co_return got.status().ToString();
  if (*got != 'w') co_return std::string("read ") + *got;
  auto late = spawn(read_one, &pair->conn);
  if (!co_await test::yield_until([&] { return parked_on(pair->conn_fd); })) co_return "not parked";
  pair->conn.set_read_deadline(Clock::now() - 1s);
  auto timed_out = co_await late;
  if (timed_out.status().code() != absl::StatusCode::kDeadlineExceeded) {
    co_return "after the changes: " + timed_out.status().ToString();
  }
  ::close(pair->peer);
  co_return "";
}

// Makes a pair, parks a read on it under a deadline an hour after `start`,
// awaits `changes(&pair, start)` (a Task<std::string>: "" or what went
// wrong), then ends as wake_up_then_time_out.
template <class Changes>
Task<std::string> with_a_parked_read(Changes changes) {
  ConnPair pair;
  if (!make_pair(pair)) co_return "socketpair";
  const Clock::time_point start = Clock::now();
  pair.conn.set_read_deadline(start + 1h);
  auto reader = spawn(read_one, &pair.conn);
  if (!co_await test::yield_until([&] { return parked_on(pair.conn_fd); })) co_return "not parked";
  if (std::string failure = co_await changes(&pair, start); !failure.empty()) co_return failure;
  co_return co_await wake_up_then_time_out(&pair, std::move(reader));
}

// The deadline of the parked read is pushed further out kChanges times,
// as a server refreshing it per request does; the allocations that made go
// to *news.
Task<std::string> refresh(ConnPair* pair, Clock::time_point start, long* news) {
  const long before = news_now();
  const std::uint64_t parks = scheduler_stats().io_waits;
  for (int i = 1; i <= kChanges; ++i) pair->conn.set_read_deadline(start + 1h + i * 1ms);
  *news = news_now() - before;
  // Each change left the read parked: it did not start again.
  if (scheduler_stats().io_waits != parks) co_return "the read was woken";
  co_return "";
}

TEST(NetDeadline, RefreshedTenThousandTimesWhileAReadIsParkedAllocatesNothingAndKeepsTheWakeUp) {
  long news = 0;
  EXPECT_EQ(run(with_a_parked_read([&news](ConnPair* pair, Clock::time_point start)
                                       GORO_CORO_WRAPPER { return refresh(pair, start, &news); }),
                test::with_procs(2)),
            "");
  if (!kCountsNew) GTEST_SKIP() << "operator new is not counted in this build";
  EXPECT_LT(news, kChanges / 100) << news << " allocations in " << kChanges << " changes";
}

// The deadline of the parked read alternates kChanges times between an
// hour away and ever earlier times about half an hour away: each move
// earlier wakes the read, which parks again under the new deadline (the
// test waits until it has started its next operation); each move later
// leaves it parked.
Task<std::string> alternate(ConnPair* pair, Clock::time_point start) {
  for (int i = 0; i < kChanges; ++i) {
    if (i % 2 == 1) {
      pair->conn.set_read_deadline(start + 1h);
      continue;
    }
    const std::uint64_t parks = scheduler_stats().io_waits;
    pair->conn.set_read_deadline(start + 30min - i * 1ms);
    if (!co_await test::yield_until([&] { return scheduler_stats().io_waits > parks; })) {
      co_return "the read did not park again after change " + std::to_string(i);
    }
  }
  co_return "";
}

TEST(NetDeadline, MovedEarlierAndLaterTenThousandTimesWhileAReadIsParkedKeepsTheWakeUp) {
  EXPECT_EQ(run(with_a_parked_read(alternate), test::with_procs(2)), "");
}

// One attempt at a parked read whose deadline is moved `margin` out
// (earlier than its hour: the read wakes and parks again under it), then
// two hours out. The socket's deadline timer stays armed for the old
// deadline (a later one moves no timer): when it fires, the read wakes,
// finds the deadline moved and parks again, neither failing nor losing the
// byte written afterwards. "late" when the old deadline's timer had
// already fired when this goroutine came to the second change (the read
// may have timed out then, rightly): the runtime's count of fired timers
// says so, not a clock reading (on one P, timers fire only at this P's
// schedule points, and none comes between that count and the change).
// Such an attempt shows nothing, and the caller tries again.
Task<std::string> outlive_attempt(Clock::duration margin) {
  ConnPair pair;
  if (!make_pair(pair)) co_return "socketpair";
  pair.conn.set_read_deadline(Clock::now() + 1h);
  auto reader = spawn(read_one, &pair.conn);
  if (!co_await test::yield_until([&] { return parked_on(pair.conn_fd); })) co_return "not parked";
  std::uint64_t parks = scheduler_stats().io_waits;
  const std::uint64_t fired = scheduler_stats().timers_fired;
  pair.conn.set_read_deadline(Clock::now() + margin);
  if (!co_await test::yield_until(
          [&] { return scheduler_stats().io_waits > parks || reader.is_finished(); })) {
    co_return "the read did not park again under the earlier deadline";
  }
  if (reader.is_finished()) {
    // The earlier deadline passed before the read parked again under it.
    auto got = co_await reader;
    ::close(pair.peer);
    if (got.status().code() == absl::StatusCode::kDeadlineExceeded) co_return "late";
    co_return "the read ended under the earlier deadline: " + got.status().ToString();
  }
  parks = scheduler_stats().io_waits;
  const bool late = scheduler_stats().timers_fired != fired;
  pair.conn.set_read_deadline(Clock::now() + 2h);
  if (!late && !co_await test::yield_until([&] { return scheduler_stats().io_waits > parks; })) {
    co_return "the read did not park again after the old deadline passed";
  }
  if (::write(pair.peer, "w", 1) != 1) co_return "write";
  auto got = co_await reader;
  ::close(pair.peer);
  if (late) co_return "late";
  if (!got.ok()) co_return got.status().ToString();
  if (*got != 'w') co_return std::string("read ") + *got;
  co_return "";
}

// Tries with a doubling margin until an attempt comes in time: how fast
// the machine is decides how long the test runs, never its verdict. A read
// that ignores the deadline's move fails every attempt that comes in time
// (its verdict names the error), so no bound on the margin is needed to
// catch it.
Task<std::string> outlive_the_old_deadline(Clock::duration first_margin) {
  for (Clock::duration margin = first_margin;; margin *= 2) {
    std::string verdict = co_await outlive_attempt(margin);
    if (verdict != "late") co_return verdict;
  }
}

TEST(NetDeadline, PushedLaterWhileParkedTheReadOutlivesTheOldDeadline) {
  EXPECT_EQ(run(outlive_the_old_deadline(50ms), test::with_procs(1)), "");
  // From a margin too small to come in time: every "late" is recognised.
  EXPECT_EQ(run(outlive_the_old_deadline(1us), test::with_procs(1)), "");
}

}  // namespace
}  // namespace goro
