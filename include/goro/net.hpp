// goro/net.hpp
//
// Includes the whole of goro::net, Go's net package on goro's netpoller:
// addresses and name resolution (net/address.hpp), errors (net/error.hpp),
// connections (net/conn.hpp), listeners (net/listener.hpp), dialing
// (net/dial.hpp), datagram sockets (net/packet_conn.hpp) and a server
// with graceful shutdown (net/server.hpp). Link with goro::net.
#ifndef GORO_NET_HPP_
#define GORO_NET_HPP_

#include "goro/net/address.hpp"
#include "goro/net/conn.hpp"
#include "goro/net/dial.hpp"
#include "goro/net/error.hpp"
#include "goro/net/listener.hpp"
#include "goro/net/packet_conn.hpp"
#include "goro/net/server.hpp"

#endif  // GORO_NET_HPP_
