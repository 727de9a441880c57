// net/conn_access.hpp: how listen, accept and dial make a Conn around a
// NetFd they already hold, and how Server reaches the NetFd of a Conn it
// hands to a handler (to close it at the shutdown deadline).
#ifndef GORO_NET_CONN_ACCESS_HPP_
#define GORO_NET_CONN_ACCESS_HPP_

#include <memory>

#include "goro/net/conn.hpp"

namespace goro::net::internal {

struct ConnAccess {
  [[nodiscard]] static Conn make(std::shared_ptr<NetFd> socket) noexcept;
  [[nodiscard]] static const std::shared_ptr<NetFd>& socket_of(const Conn& conn) noexcept {
    return conn.socket_;
  }
};

}  // namespace goro::net::internal

#endif  // GORO_NET_CONN_ACCESS_HPP_
