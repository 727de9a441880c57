// goro/detail/fast_random.hpp
//
// Defines: goro::detail::next_random, goro's one pseudo-random generator:
// the order in which a worker visits the other Ps when it steals
// (scheduler.cpp) and the order in which select() polls its cases
// (select.hpp).
//
// What it must be: cheap (it runs on every steal attempt and on every
// select), good enough that no P and no select case is favoured, and
// lock-free with its state owned by one thread (a P's state, or a
// thread_local). Nothing depends on it for security.
//
// How: splitmix64. The state advances by a fixed odd constant (so every
// state, zero included, is a valid seed and the period is 2^64), and the
// output is the state mixed by two multiply-xorshift rounds, so that
// neighbouring seeds (P 1, P 2, ...) give unrelated sequences. Both halves
// of the 64-bit result are usable: callers take one value from the low
// bits and another from the high bits.
//
// Rejected alternatives: std::mt19937_64 (2.5 KB of state per owner and a
// slower step, for a quality nothing here needs); xorshift64 (zero is a
// fixed point, so every seed needs care, and neighbouring seeds start out
// correlated).
#ifndef GORO_DETAIL_FAST_RANDOM_HPP_
#define GORO_DETAIL_FAST_RANDOM_HPP_

#include <cstdint>

namespace goro::detail {

// next_random: advances `state` and returns the next 64 random bits.
// `state` belongs to the caller's thread; any value is a valid seed.
inline std::uint64_t next_random(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace goro::detail

#endif  // GORO_DETAIL_FAST_RANDOM_HPP_
