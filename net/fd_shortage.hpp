// net/fd_shortage.hpp: what tests may observe of how accept survives a
// shortage of file descriptors (net/listener.cpp, steps E1-E2).
#ifndef GORO_NET_FD_SHORTAGE_HPP_
#define GORO_NET_FD_SHORTAGE_HPP_

#include <cstdint>

namespace goro::net::internal {

// Since the process started: connections shed with the reserve fd (E1),
// and pauses taken (E2).
struct ShortageCounts {
  std::uint64_t shed = 0;
  std::uint64_t pauses = 0;
};

[[nodiscard]] ShortageCounts shortage_counts_for_testing() noexcept;

}  // namespace goro::net::internal

#endif  // GORO_NET_FD_SHORTAGE_HPP_
