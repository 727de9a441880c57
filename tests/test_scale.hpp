// tests/test_scale.hpp
//
// goro::test::scaled(n): stress sizes for the current build. Sanitizers and
// unoptimised builds run the same tests on smaller inputs, so that every
// test binary stays within its time budget (release ~20 s, TSan ~60 s).
#ifndef GORO_TESTS_TEST_SCALE_HPP_
#define GORO_TESTS_TEST_SCALE_HPP_

#include <algorithm>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define GORO_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(GORO_TEST_TSAN)
#define GORO_TEST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(GORO_TEST_ASAN)
#define GORO_TEST_ASAN 1
#endif

namespace goro::test {

#if defined(GORO_TEST_TSAN)
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif
#if defined(GORO_TEST_ASAN)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#if defined(__OPTIMIZE__)
inline constexpr bool kOptimized = true;
#else
inline constexpr bool kOptimized = false;
#endif

// How much smaller stress inputs are in this build: sanitizers (built -O1)
// run about 5-10x slower, unoptimised builds more.
inline constexpr long kScaleDivisor = !kOptimized ? 10 : (kTsan || kAsan) ? 4 : 1;

// `n` for release builds, n / kScaleDivisor (at least `at_least`) otherwise.
constexpr long scaled(long n, long at_least = 1) { return std::max(n / kScaleDivisor, at_least); }

// For sizes that grow exponentially (tree depths): `depth` in release,
// `depth - reduce` under sanitizers or -O0.
constexpr int scaled_depth(int depth, int reduce = 3) {
  return kScaleDivisor == 1 ? depth : std::max(depth - reduce, 1);
}

}  // namespace goro::test

#endif  // GORO_TESTS_TEST_SCALE_HPP_
