// benchmarks/latency_histogram.hpp
//
// Defines: LatencyHistogram, a log-linear histogram of non-negative 64-bit
// values (loadgen records latencies in nanoseconds), in the manner of Gil
// Tene's HDR histogram: constant relative precision over the whole range,
// recording in O(1) without allocation on the hot path, percentiles read
// back with a known error bound, and histograms merged by adding counts.
//
// Why its own: Debian 12 packages no C or C++ HdrHistogram library (only
// the Go one), and what loadgen needs is about a hundred lines.
//
// Design. With kSubBucketBits = B (7), values are split into groups:
//   * group 0 holds the values [0, 2^B) one per bucket (exact);
//   * group g >= 1 holds [2^(g+B-1), 2^(g+B)) in 2^B buckets of width
//     2^(g-1), that is, the value's top B+1 bits select the bucket.
// So a bucket's width is at most 2^-B (1/128, under 0.8 %) of any value in
// it, whatever the magnitude: 1 us and 10 s are both kept to 3 significant
// figures in binary. The bucket of v is found with one count-leading-zeros
// and two shifts:
//   1. h = index of v's highest set bit; if h < B, the bucket is v itself
//      in group 0;
//   2. otherwise the group is g = h - B + 1, and the bucket in the group is
//      (v >> (g - 1)) - 2^B (the B bits below the leading one).
// A group's 2^B counters are allocated the first time a value falls in it:
// latencies of one run span a few powers of two, so a histogram per
// connection costs a few KiB rather than the 64 groups of the whole range,
// and thousands of connections can each keep one without sharing a counter
// (no atomics, no contention); they are merged when the run ends.
//
// Invariants: total() is the sum of all counts; min() and max() are the
// exact extreme values recorded (percentiles are clamped to them); for
// every quantile q, value_at_quantile(q) is the highest value of the bucket
// holding the ceil(q * total())-th smallest recorded value (at least the
// first), clamped to [min(), max()], so it lies in [v, v + v / 2^B] for the
// exact order statistic v.
//
// Rejected: a fixed array of the whole range per histogram (64 x 128
// counters, 64 KiB: too much for a histogram per connection); shared
// atomic counters (every record a contended read-modify-write across
// worker threads); storing samples and sorting (memory grows with the run).
#ifndef GORO_BENCHMARKS_LATENCY_HISTOGRAM_HPP_
#define GORO_BENCHMARKS_LATENCY_HISTOGRAM_HPP_

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;
  // Group 0, then one group for each highest-bit position from B to 63.
  static constexpr int kGroups = 64 - kSubBucketBits + 1;

  LatencyHistogram() = default;
  LatencyHistogram(LatencyHistogram&&) noexcept = default;
  LatencyHistogram& operator=(LatencyHistogram&&) noexcept = default;

  // Counts one value (`count` times).
  void record(std::uint64_t value, std::uint64_t count = 1) {
    if (count == 0) return;
    const Position position = position_of(value);
    auto& group = groups_[position.group];
    if (!group) group = std::make_unique<Group>();  // zero-initialised counters
    (*group)[position.bucket] += count;
    total_ += count;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  // Adds every count of `other` to this histogram.
  void merge(const LatencyHistogram& other) {
    for (int g = 0; g < kGroups; ++g) {
      if (!other.groups_[g]) continue;
      auto& group = groups_[g];
      if (!group) group = std::make_unique<Group>();
      for (std::uint64_t b = 0; b < kSubBuckets; ++b) (*group)[b] += (*other.groups_[g])[b];
    }
    total_ += other.total_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  [[nodiscard]] std::uint64_t total() const { return total_; }
  // The smallest and largest values recorded (0 when empty).
  [[nodiscard]] std::uint64_t min() const { return total_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const { return max_; }

  // The value at quantile q in [0, 1] (see the invariants above); 0 when
  // empty. q = 1 gives max().
  [[nodiscard]] std::uint64_t value_at_quantile(double q) const {
    if (total_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (int g = 0; g < kGroups; ++g) {
      if (!groups_[g]) continue;
      for (std::uint64_t b = 0; b < kSubBuckets; ++b) {
        seen += (*groups_[g])[b];
        if (seen >= rank) return std::clamp(highest_value_of(g, b), min(), max_);
      }
    }
    return max_;
  }

  // Calls visit(low, high, count) for each non-empty bucket in increasing
  // order: `count` values in [low, high].
  template <typename Visit>
  void for_each_bucket(Visit visit) const {
    for (int g = 0; g < kGroups; ++g) {
      if (!groups_[g]) continue;
      for (std::uint64_t b = 0; b < kSubBuckets; ++b) {
        const std::uint64_t count = (*groups_[g])[b];
        if (count != 0) visit(lowest_value_of(g, b), highest_value_of(g, b), count);
      }
    }
  }

  // The bounds of the bucket that holds `value`.
  [[nodiscard]] static std::uint64_t lowest_equivalent(std::uint64_t value) {
    const Position position = position_of(value);
    return lowest_value_of(position.group, position.bucket);
  }
  [[nodiscard]] static std::uint64_t highest_equivalent(std::uint64_t value) {
    const Position position = position_of(value);
    return highest_value_of(position.group, position.bucket);
  }

 private:
  using Group = std::array<std::uint64_t, kSubBuckets>;
  struct Position {
    int group;
    std::uint64_t bucket;
  };

  // Steps 1 and 2 of the design above.
  static Position position_of(std::uint64_t value) {
    if (value < kSubBuckets) return {0, value};
    const int highest_bit = 63 - std::countl_zero(value);
    const int group = highest_bit - kSubBucketBits + 1;
    return {group, (value >> (group - 1)) - kSubBuckets};
  }
  static std::uint64_t lowest_value_of(int group, std::uint64_t bucket) {
    if (group == 0) return bucket;
    return (kSubBuckets + bucket) << (group - 1);
  }
  static std::uint64_t highest_value_of(int group, std::uint64_t bucket) {
    if (group == 0) return bucket;
    // The bucket's last value; for the very last bucket that is 2^64 - 1.
    return lowest_value_of(group, bucket) + ((std::uint64_t{1} << (group - 1)) - 1);
  }

  std::array<std::unique_ptr<Group>, kGroups> groups_{};
  std::uint64_t total_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

#endif  // GORO_BENCHMARKS_LATENCY_HISTOGRAM_HPP_
