// tests/http_parser_test.cpp: the server's request parser (llhttp in strict
// mode plus goro's own head checks), fed from memory: what it accepts,
// what it refuses and with which status, and that spans survive being fed
// one byte at a time.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "request_parser.hpp"

namespace goro::http::internal {
namespace {

struct Parsed {
  RequestParser::HeadState state;
  ParseError error;
  std::string body;
};

// Parses `request` fed `step` bytes at a time, then its body.
Parsed parse(std::string request, std::size_t step = 1 << 20, RequestParser::Limits limits = {}) {
  RequestParser parser(limits);
  parser.begin_request();
  std::size_t fed = 0;
  RequestParser::HeadResult head{RequestParser::HeadState::kNeedMore, 0};
  while (head.state == RequestParser::HeadState::kNeedMore && fed < request.size()) {
    const std::size_t length = std::min(step, request.size() - fed);
    head = parser.parse_head(request.data(), request.data() + fed, length);
    fed += head.consumed;
  }
  Parsed parsed{head.state, parser.error(), {}};
  if (head.state != RequestParser::HeadState::kComplete) return parsed;
  std::string out(request.size(), '\0');
  while (!parser.message_complete() && fed < request.size()) {
    const auto body = parser.parse_body(request.data() + fed, request.size() - fed, out.data());
    parsed.body.append(out.data(), body.produced);
    fed += body.consumed;
    if (body.error) {
      parsed.state = RequestParser::HeadState::kError;
      parsed.error = parser.error();
      return parsed;
    }
  }
  return parsed;
}

TEST(HttpParser, SpansSurviveOneByteFeeds) {
  std::string request =
      "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Long-Name:  value with spaces  \r\n\r\n";
  for (const std::size_t step : {std::size_t{1}, std::size_t{3}, request.size()}) {
    RequestParser parser({});
    parser.begin_request();
    std::size_t fed = 0;
    RequestParser::HeadResult head{RequestParser::HeadState::kNeedMore, 0};
    while (head.state == RequestParser::HeadState::kNeedMore) {
      head = parser.parse_head(request.data(), request.data() + fed,
                               std::min(step, request.size() - fed));
      fed += head.consumed;
    }
    ASSERT_EQ(head.state, RequestParser::HeadState::kComplete) << step;
    EXPECT_EQ(fed, request.size());
    EXPECT_TRUE(parser.message_complete());
    EXPECT_EQ(parser.method(), "GET");
    EXPECT_EQ(parser.target().view(request.data()), "/a/b?c=d");
    ASSERT_EQ(parser.headers().size(), 2u);
    EXPECT_EQ(parser.headers()[0].name.view(request.data()), "Host");
    EXPECT_EQ(parser.headers()[0].value.view(request.data()), "example.com");
    EXPECT_EQ(parser.headers()[1].value.view(request.data()), "value with spaces");
    EXPECT_TRUE(parser.keep_alive());
  }
}

TEST(HttpParser, StopsAtTheEndOfEachPipelinedRequest) {
  std::string two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser parser({});
  parser.begin_request();
  const auto first = parser.parse_head(two.data(), two.data(), two.size());
  ASSERT_EQ(first.state, RequestParser::HeadState::kComplete);
  EXPECT_EQ(first.consumed, two.size() / 2);
  EXPECT_EQ(parser.target().view(two.data()), "/1");
  parser.begin_request();
  char* base = two.data() + first.consumed;
  const auto second = parser.parse_head(base, base, two.size() - first.consumed);
  ASSERT_EQ(second.state, RequestParser::HeadState::kComplete);
  EXPECT_EQ(parser.target().view(base), "/2");
}

TEST(HttpParser, DecodesContentLengthAndChunkedBodies) {
  Parsed fixed = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_EQ(fixed.state, RequestParser::HeadState::kComplete);
  EXPECT_EQ(fixed.body, "hello");
  Parsed chunked = parse(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_EQ(chunked.state, RequestParser::HeadState::kComplete);
  EXPECT_EQ(chunked.body, "hello world");
}

struct Refused {
  const char* name;
  std::string request;
  ParseError error;
};

TEST(HttpParser, RefusesAmbiguousOrMalformedFraming) {
  const std::vector<Refused> cases = {
      {"content-length with chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       ParseError::kBadRequest},
      {"chunked with content-length",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       ParseError::kBadRequest},
      {"duplicate content-length",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
       ParseError::kBadRequest},
      {"malformed content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n",
       ParseError::kBadRequest},
      {"negative content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
       ParseError::kBadRequest},
      {"invalid chunk size",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       ParseError::kBadRequest},
      {"transfer-encoding not ending in chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
       ParseError::kNotImplemented},
      {"transfer-encoding with a coding before chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       ParseError::kNotImplemented},
      {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", ParseError::kBadRequest},
      {"two spaces before the target", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
       ParseError::kBadRequest},
      {"no version (HTTP/0.9)", "GET /\r\n\r\n", ParseError::kBadRequest},
      {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", ParseError::kVersionUnsupported},
      {"unknown expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
       ParseError::kExpectationFailed},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", ParseError::kBadRequest},
      {"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
       ParseError::kBadRequest},
      {"bare LF line end", "GET / HTTP/1.1\nHost: a\n\n", ParseError::kBadRequest},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ParseError::kBadRequest},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", ParseError::kBadRequest},
      {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::kBadRequest},
      {"invalid header name", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
       ParseError::kBadRequest},
      {"HTTP/2 preface", std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
       ParseError::kHttp2Preface},
      {"content-length over the limit",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", ParseError::kBodyTooLarge},
      {"head over the limit",
       "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n",
       ParseError::kHeaderTooLarge},
      {"chunked body over the limit",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
           std::string("200000\r\n") + std::string(0x200000, 'x') + "\r\n0\r\n\r\n",
       ParseError::kBodyTooLarge},
  };
  for (const Refused& c : cases) {
    for (const std::size_t step : {std::size_t{1} << 30, std::size_t{7}}) {
      const Parsed parsed = parse(c.request, step);
      EXPECT_EQ(parsed.state, RequestParser::HeadState::kError) << c.name << " step " << step;
      EXPECT_EQ(parsed.error, c.error) << c.name << " step " << step;
    }
  }
}

TEST(HttpParser, NewerHttp1MinorVersionIsReadAsHttp11) {
  for (const std::size_t step : {std::size_t{1} << 30, std::size_t{7}, std::size_t{1}}) {
    const Parsed parsed = parse("GET /x HTTP/1.2\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", step);
    EXPECT_EQ(parsed.state, RequestParser::HeadState::kComplete) << "step " << step;
    EXPECT_EQ(parsed.body, "ab") << "step " << step;
  }
  RequestParser parser({});
  parser.begin_request();
  std::string request = "GET /x HTTP/1.9\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parser.parse_head(request.data(), request.data(), 5).state,
            RequestParser::HeadState::kNeedMore);
  const auto head = parser.parse_head(request.data(), request.data() + 5, request.size() - 5);
  ASSERT_EQ(head.state, RequestParser::HeadState::kComplete);
  EXPECT_EQ(head.consumed, request.size() - 5);
  EXPECT_EQ(parser.version_minor(), 1);
  EXPECT_EQ(parser.target().view(request.data()), "/x");
  EXPECT_EQ(parser.headers().size(), 1U);
}

TEST(HttpParser, AcceptsHttp10WithoutHostAndClosesAfterIt) {
  RequestParser parser({});
  parser.begin_request();
  std::string request = "GET / HTTP/1.0\r\n\r\n";
  const auto head = parser.parse_head(request.data(), request.data(), request.size());
  ASSERT_EQ(head.state, RequestParser::HeadState::kComplete);
  EXPECT_FALSE(parser.keep_alive());
}

TEST(HttpParser, ConnectionCloseEndsKeepAlive) {
  RequestParser parser({});
  parser.begin_request();
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(parser.parse_head(request.data(), request.data(), request.size()).state,
            RequestParser::HeadState::kComplete);
  EXPECT_FALSE(parser.keep_alive());
}

}  // namespace
}  // namespace goro::http::internal
