// tests/latency_histogram_test.cpp: the log-linear histogram loadgen keeps
// its latencies in (benchmarks/latency_histogram.hpp): exact small values,
// every bucket within the relative error bound, percentiles of known
// distributions, and merging.
#include "latency_histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

constexpr std::uint64_t kSubBuckets = LatencyHistogram::kSubBuckets;

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.total(), 0u);
  EXPECT_EQ(histogram.min(), 0u);
  EXPECT_EQ(histogram.max(), 0u);
  EXPECT_EQ(histogram.value_at_quantile(0.5), 0u);
}

TEST(LatencyHistogram, ValuesBelowTheSubBucketCountAreExact) {
  LatencyHistogram histogram;
  for (std::uint64_t v = 0; v < kSubBuckets; ++v) histogram.record(v);
  for (std::uint64_t v = 0; v < kSubBuckets; ++v) {
    EXPECT_EQ(LatencyHistogram::lowest_equivalent(v), v);
    EXPECT_EQ(LatencyHistogram::highest_equivalent(v), v);
  }
  // The k-th smallest of 0..127 is k-1: quantile k/128 gives it.
  EXPECT_EQ(histogram.value_at_quantile(1.0 / kSubBuckets), 0u);
  EXPECT_EQ(histogram.value_at_quantile(0.5), kSubBuckets / 2 - 1);
  EXPECT_EQ(histogram.value_at_quantile(1.0), kSubBuckets - 1);
}

TEST(LatencyHistogram, EveryBucketHoldsItsValueWithinTheRelativeErrorBound) {
  std::mt19937_64 random(42);
  std::vector<std::uint64_t> values = {kSubBuckets,
                                       kSubBuckets + 1,
                                       2 * kSubBuckets - 1,
                                       2 * kSubBuckets,
                                       1'000'000'007,
                                       std::uint64_t{1} << 40,
                                       std::numeric_limits<std::uint64_t>::max()};
  for (int i = 0; i < 100'000; ++i) values.push_back(random() >> (random() % 64));
  for (const std::uint64_t v : values) {
    const std::uint64_t low = LatencyHistogram::lowest_equivalent(v);
    const std::uint64_t high = LatencyHistogram::highest_equivalent(v);
    ASSERT_LE(low, v);
    ASSERT_GE(high, v);
    // Width at most v / 2^B: 3 significant binary digits' worth of error.
    ASSERT_LE(high - low, v / kSubBuckets) << v;
    // Buckets tile the range: the next value starts the next bucket.
    if (high != std::numeric_limits<std::uint64_t>::max()) {
      ASSERT_EQ(LatencyHistogram::lowest_equivalent(high + 1), high + 1) << v;
    }
  }
}

TEST(LatencyHistogram, PercentilesOfAUniformRangeAreWithinTheBound) {
  // 1..1,000,000 once each: the exact p-th percentile is p * 1e6.
  LatencyHistogram histogram;
  constexpr std::uint64_t kCount = 1'000'000;
  for (std::uint64_t v = 1; v <= kCount; ++v) histogram.record(v);
  EXPECT_EQ(histogram.total(), kCount);
  EXPECT_EQ(histogram.min(), 1u);
  EXPECT_EQ(histogram.max(), kCount);
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    // The rank the histogram looks for, computed as it does.
    const auto exact = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(kCount)));
    const std::uint64_t reported = histogram.value_at_quantile(q);
    EXPECT_GE(reported, exact) << q;
    EXPECT_LE(reported, exact + exact / kSubBuckets) << q;
  }
  EXPECT_EQ(histogram.value_at_quantile(1.0), kCount);
}

TEST(LatencyHistogram, PercentilesOfABimodalDistributionPickTheRightMode) {
  // 990 fast (100 us) and 10 slow (50 ms) requests, in nanoseconds.
  LatencyHistogram histogram;
  histogram.record(100'000, 990);
  histogram.record(50'000'000, 10);
  EXPECT_EQ(histogram.value_at_quantile(0.5), LatencyHistogram::highest_equivalent(100'000));
  EXPECT_EQ(histogram.value_at_quantile(0.98), LatencyHistogram::highest_equivalent(100'000));
  // The 991st value is the first slow one; the max is clamped to what was recorded.
  EXPECT_EQ(histogram.value_at_quantile(0.991), 50'000'000u);
  EXPECT_EQ(histogram.value_at_quantile(0.999), 50'000'000u);
  EXPECT_EQ(histogram.max(), 50'000'000u);
}

TEST(LatencyHistogram, MergingEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(7);
  LatencyHistogram all;
  std::vector<LatencyHistogram> parts(8);
  for (int i = 0; i < 80'000; ++i) {
    const std::uint64_t v = 1'000 + random() % 10'000'000;
    all.record(v);
    parts[static_cast<std::size_t>(i) % parts.size()].record(v);
  }
  LatencyHistogram merged;
  for (const auto& part : parts) merged.merge(part);
  merged.merge(LatencyHistogram());  // an empty one changes nothing
  EXPECT_EQ(merged.total(), all.total());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  for (const double q : {0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    EXPECT_EQ(merged.value_at_quantile(q), all.value_at_quantile(q)) << q;
  }
}

TEST(LatencyHistogram, BucketsAreVisitedInIncreasingOrderWithTheirCounts) {
  LatencyHistogram histogram;
  histogram.record(5, 2);
  histogram.record(1'000'000, 3);
  histogram.record(300);
  std::vector<std::uint64_t> counts;
  std::uint64_t last_high = 0;
  histogram.for_each_bucket([&](std::uint64_t low, std::uint64_t high, std::uint64_t count) {
    EXPECT_GE(low, last_high);
    last_high = high;
    counts.push_back(count);
  });
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{2, 1, 3}));
}

}  // namespace
