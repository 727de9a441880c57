// goro/http.hpp
//
// Includes the whole of goro::http, an HTTP/1.1 server and client on goro::net:
// handlers (http/handler.hpp), requests (http/request.hpp), responses (http/response_writer.hpp),
// the server and its options (http/server.hpp), the router (http/router.hpp) and the client
// (http/client.hpp). Link with goro::http.
#ifndef GORO_HTTP_HPP_
#define GORO_HTTP_HPP_

#include "goro/http/client.hpp"
#include "goro/http/handler.hpp"
#include "goro/http/request.hpp"
#include "goro/http/response_writer.hpp"
#include "goro/http/router.hpp"
#include "goro/http/server.hpp"

#endif  // GORO_HTTP_HPP_
