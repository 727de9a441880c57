// tests/http_response_counter_test.cpp: the HTTP/1.1 response framing of
// benchmarks/loadgen (http_response_counter.hpp): responses counted with
// their status codes whichever way the stream is cut into reads, every
// framing (Content-Length, chunked with extensions and trailers, no body,
// interim 1xx, to the end of the connection), and the broken framings
// refused.
#include "http_response_counter.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

using loadgen::HttpResponseCounter;

// Feeds `stream` in pieces of `piece` bytes (the last may be shorter);
// the status codes counted, or the first error.
struct Fed {
  std::vector<int> statuses;
  absl::Status status;
};
Fed feed_in_pieces(HttpResponseCounter& counter, std::string_view stream, std::size_t piece) {
  Fed fed;
  for (std::size_t at = 0; at < stream.size() && fed.status.ok(); at += piece) {
    fed.status =
        counter.feed(stream.substr(at, piece), [&](int code) { fed.statuses.push_back(code); });
  }
  return fed;
}

constexpr std::string_view kMixed =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
    "5;name=value\r\nHello\r\n8\r\n, World!\r\n0\r\nTrailer-Field: x\r\n\r\n"
    "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";

TEST(HttpResponseCounter, CountsEveryFramingWhereverTheReadsEnd) {
  const std::vector<int> expected = {200, 201, 204, 404, 304, 200};
  for (std::size_t piece = 1; piece <= kMixed.size(); ++piece) {
    HttpResponseCounter counter(/*head_request=*/false);
    const Fed fed = feed_in_pieces(counter, kMixed, piece);
    ASSERT_TRUE(fed.status.ok()) << "pieces of " << piece << ": " << fed.status;
    ASSERT_EQ(fed.statuses, expected) << "pieces of " << piece;
    EXPECT_FALSE(counter.close_requested());
  }
}

TEST(HttpResponseCounter, ResponsesToHeadEndAtTheirHead) {
  HttpResponseCounter counter(/*head_request=*/true);
  const Fed fed = feed_in_pieces(counter,
                                 "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                 7);
  ASSERT_TRUE(fed.status.ok()) << fed.status;
  EXPECT_EQ(fed.statuses, (std::vector<int>{200, 200}));
}

TEST(HttpResponseCounter, ABodyWithoutFramingEndsWithTheConnection) {
  HttpResponseCounter counter(/*head_request=*/false);
  const Fed fed = feed_in_pieces(counter, "HTTP/1.1 200 OK\r\n\r\nall of this is body", 5);
  ASSERT_TRUE(fed.status.ok()) << fed.status;
  EXPECT_TRUE(fed.statuses.empty());
  EXPECT_TRUE(counter.close_requested());
  std::vector<int> at_end;
  counter.finish([&](int code) { at_end.push_back(code); });
  EXPECT_EQ(at_end, std::vector<int>{200});
}

TEST(HttpResponseCounter, ConnectionCloseAndHttp10AreReported) {
  HttpResponseCounter closing(/*head_request=*/false);
  ASSERT_TRUE(feed_in_pieces(
                  closing, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 64)
                  .status.ok());
  EXPECT_TRUE(closing.close_requested());
  HttpResponseCounter http10(/*head_request=*/false);
  ASSERT_TRUE(
      feed_in_pieces(http10, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 64).status.ok());
  EXPECT_TRUE(http10.close_requested());
}

TEST(HttpResponseCounter, RefusesBrokenFraming) {
  const std::string oversized_head = "HTTP/1.1 200 OK\r\nX: " + std::string(70 * 1024, 'a');
  const std::string_view broken[] = {
      "garbage\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
      oversized_head,
  };
  for (const std::string_view stream : broken) {
    for (const std::size_t piece : {std::size_t{1}, std::size_t{4096}}) {
      HttpResponseCounter counter(/*head_request=*/false);
      const Fed fed = feed_in_pieces(counter, stream, piece);
      EXPECT_FALSE(fed.status.ok()) << "\"" << stream.substr(0, 80) << "\" in pieces of " << piece;
      EXPECT_TRUE(fed.statuses.empty()) << stream.substr(0, 80);
    }
  }
}

}  // namespace
