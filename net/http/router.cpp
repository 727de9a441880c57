// net/http/router.cpp: Router's matching (the rules are in
// goro/http/router.hpp). Routes are few: a linear scan per request, exact
// routes first, compares lengths before bytes and allocates nothing.
#include "goro/http/router.hpp"

#include <string>

namespace goro::http {

namespace {

Task<void> reply_not_found(ResponseWriter& response) {
  response.reply(404, "text/plain; charset=utf-8", "404 Not Found");
  co_return;
}

// The asterisk form names no resource (RFC 9112 3.2.4), so it is answered
// here as Go's server and ServeMux answer it: "OPTIONS *" asks what the
// server supports and gets 200 with an empty body; any other method with
// "*" is malformed: 400, and the connection closes.
Task<void> reply_asterisk(std::string_view method, ResponseWriter& response) {
  if (method == "OPTIONS") co_return;  // a handler that writes nothing: 200, empty
  response.add_header("Connection", "close");
  response.reply(400, "text/plain; charset=utf-8", "400 Bad Request");
}

Task<void> reply_not_allowed(ResponseWriter& response, std::string allow) {
  response.add_header("Allow", allow);
  response.reply(405, "text/plain; charset=utf-8", "405 Method Not Allowed");
  co_return;
}

}  // namespace

void Router::handle(std::string_view method, std::string_view pattern, Handler handler) {
  Route route{Kind::kExact, std::string(method), std::string(pattern), {}, std::move(handler)};
  if (pattern.find('{') != std::string_view::npos) {
    route.kind = Kind::kPattern;
    std::size_t start = 0;
    for (;;) {
      const std::size_t slash = pattern.find('/', start);
      route.segments.emplace_back(pattern.substr(start, slash - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
  }
  routes_.push_back(std::move(route));
}

void Router::prefix(std::string_view method, std::string_view path_prefix, Handler handler) {
  routes_.push_back(
      Route{Kind::kPrefix, std::string(method), std::string(path_prefix), {}, std::move(handler)});
}

bool Router::matches(
    const Route& route, std::string_view path,
    absl::InlinedVector<std::pair<std::string_view, std::string_view>, 4>* params) {
  switch (route.kind) {
    case Kind::kExact:
      return path == route.pattern;
    case Kind::kPrefix:
      return path.starts_with(route.pattern);
    case Kind::kPattern:
      break;
  }
  params->clear();
  std::size_t index = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string_view segment = path.substr(start, slash - start);
    if (index >= route.segments.size()) return false;
    const std::string& want = route.segments[index++];
    if (want.size() >= 2 && want.front() == '{' && want.back() == '}') {
      if (segment.empty()) return false;
      params->emplace_back(std::string_view(want).substr(1, want.size() - 2), segment);
    } else if (segment != want) {
      return false;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return index == route.segments.size();
}

Task<void> Router::operator()(Request& request, ResponseWriter& response) const {
  const std::string_view path = request.path();
  const std::string_view method = request.method();
  absl::InlinedVector<std::pair<std::string_view, std::string_view>, 4> params;
  const Route* found = nullptr;
  const Route* get_for_head = nullptr;
  bool path_matched = false;
  // Exact, then patterns in order, then the longest prefix.
  for (const Kind kind : {Kind::kExact, Kind::kPattern, Kind::kPrefix}) {
    std::size_t longest = 0;
    for (const Route& route : routes_) {
      if (route.kind != kind || !matches(route, path, &params)) continue;
      if (kind == Kind::kPrefix && found != nullptr && route.pattern.size() <= longest) continue;
      path_matched = true;
      if (route.method == method) {
        found = &route;
        longest = route.pattern.size();
        if (kind != Kind::kPrefix) break;
      } else if (method == "HEAD" && route.method == "GET" && get_for_head == nullptr) {
        get_for_head = &route;
      }
    }
    if (found != nullptr) break;
  }
  if (found == nullptr) found = get_for_head;
  if (found != nullptr) {
    if (found->kind == Kind::kPattern) matches(*found, path, &request.params_);
    return found->handler(request, response);
  }
  if (!path_matched) {
    return path == "*" ? reply_asterisk(method, response) : reply_not_found(response);
  }
  std::string allow;
  for (const Route& route : routes_) {
    if (!matches(route, path, &params)) continue;
    if (allow.find(route.method) != std::string::npos) continue;
    if (!allow.empty()) allow += ", ";
    allow += route.method;
    if (route.method == "GET" && allow.find("HEAD") == std::string::npos) allow += ", HEAD";
  }
  return reply_not_allowed(response, std::move(allow));
}

}  // namespace goro::http
