// goro/http/router.hpp
//
// Defines: goro::http::Router, a request handler that dispatches by
// method and path.
//
//   goro::http::Router router;
//   router.get("/users/{id}", show_user);          // request.param("id")
//   router.handle("POST", "/users", create_user);
//   router.prefix("GET", "/static/", serve_file);  // every path under /static/
//   goro::http::Server server(std::move(router));
//
// Contract:
//   * Patterns: an exact path ("/plaintext"); a path whose segments may be
//     `{name}`, each matching one non-empty segment, read back with
//     Request::param; prefix() routes every path that starts with the
//     prefix. Paths are compared as sent (no percent-decoding, no
//     cleaning of "//" or "..").
//   * Precedence: an exact path first, then patterns with `{name}`
//     segments in the order added, then the longest matching prefix.
//   * A path that matches no route gets 404; a path that some route
//     matches but not for this method gets 405 with an Allow header
//     listing the methods that would have matched. HEAD is served by a GET
//     route when no HEAD route exists (the server sends no body for it).
//   * The target "*" with no route for it is answered as Go answers it:
//     "OPTIONS *" with 200 and an empty body, any other method with 400
//     (and the connection closes).
//   * Routes are added before the Router goes to a Server; matching is
//     then read-only, safe from every connection at once.
#ifndef GORO_HTTP_ROUTER_HPP_
#define GORO_HTTP_ROUTER_HPP_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "goro/http/request.hpp"
#include "goro/http/response_writer.hpp"
#include "goro/http/server.hpp"
#include "goro/task.hpp"

namespace goro::http {

class Router {
 public:
  Router() = default;
  Router(Router&&) noexcept = default;
  Router& operator=(Router&&) noexcept = default;

  // Routes `method` requests whose path matches `pattern` to `handler`.
  void handle(std::string_view method, std::string_view pattern, Handler handler);
  void get(std::string_view pattern, Handler handler) {
    handle("GET", pattern, std::move(handler));
  }
  void post(std::string_view pattern, Handler handler) {
    handle("POST", pattern, std::move(handler));
  }
  // Routes `method` requests whose path starts with `path_prefix`.
  void prefix(std::string_view method, std::string_view path_prefix, Handler handler);

  // Dispatches (the Server's handler).
  GORO_CORO_WRAPPER Task<void> operator()(Request& request, ResponseWriter& response) const;

 private:
  enum class Kind { kExact, kPattern, kPrefix };
  struct Route {
    Kind kind;
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // kPattern: "{name}" or literal text
    Handler handler;
  };

  // Whether `route` matches `path`, filling `params` for a pattern.
  static bool matches(
      const Route& route, std::string_view path,
      absl::InlinedVector<std::pair<std::string_view, std::string_view>, 4>* params);

  std::vector<Route> routes_;
};

}  // namespace goro::http

#endif  // GORO_HTTP_ROUTER_HPP_
