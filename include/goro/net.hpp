// goro/net.hpp
//
// Includes the whole of goro::net, Go's net package on goro's netpoller:
// addresses and name resolution (net/address.hpp), errors (net/error.hpp),
// connections (net/conn.hpp), listeners (net/listener.hpp), dialing
// (net/dial.hpp) and datagram sockets (net/packet_conn.hpp). Link with
// goro::net.
#ifndef GORO_NET_HPP_
#define GORO_NET_HPP_

#include "goro/net/address.hpp"
#include "goro/net/conn.hpp"
#include "goro/net/dial.hpp"
#include "goro/net/error.hpp"
#include "goro/net/listener.hpp"
#include "goro/net/packet_conn.hpp"

#endif  // GORO_NET_HPP_
