// goro/detail/frame_size_classes.hpp
//
// Defines: goro::detail::alloc::SizeClass, the frame allocator's size-class
// table (kSizeClasses, generated into frame_size_classes.inc by
// scripts/gen_size_classes.py) and size_to_class(), the O(1) map from a
// request size to the smallest class that fits it.
//
// A public detail header because a Task's operator new looks its frame's
// class up inline (goro/detail/frame_allocator.hpp): the frame's size is a
// constant there, so the lookup folds away at compile time.
//
// Constants: 8 KiB pages; small objects up to 32 KiB; every class a
// multiple of 16 bytes (operator new's default alignment), and from 64
// bytes up a multiple of a 64-byte cache line, so that frames of
// goroutines running on different cores never share a line. How the
// classes are chosen is written at the top of the generator; how the
// allocator uses them, in lib/alloc/allocator.hpp.
#ifndef GORO_DETAIL_FRAME_SIZE_CLASSES_HPP_
#define GORO_DETAIL_FRAME_SIZE_CLASSES_HPP_

#include <array>
#include <cstddef>
#include <cstdint>

namespace goro::detail::alloc {

inline constexpr std::size_t kPageShift = 13;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;  // 8 KiB
inline constexpr std::size_t kMaxSmallSize = 32768;
inline constexpr std::size_t kMinAlign = 16;

struct SizeClass {
  std::uint32_t size;     // bytes per object (0 for class 0, large objects)
  std::uint32_t pages;    // pages per span
  std::uint32_t objects;  // objects per span
};

inline constexpr SizeClass kSizeClasses[] = {
#include "goro/detail/frame_size_classes.inc"
};
inline constexpr std::uint32_t kClassCount = sizeof(kSizeClasses) / sizeof(kSizeClasses[0]);
static_assert(kSizeClasses[kClassCount - 1].size == kMaxSmallSize);

namespace size_class_detail {

// Sizes up to 1024 are looked up by 16-byte steps, larger ones by 128-byte
// steps (every class above 1024 is a multiple of 128), as Go's
// size_to_class8 / size_to_class128.
inline constexpr std::size_t kSmallLimit = 1024;

constexpr std::uint32_t smallest_fitting(std::size_t size) {
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    if (kSizeClasses[c].size >= size) return c;
  }
  return 0;
}

constexpr auto make_small_table() {
  std::array<std::uint8_t, kSmallLimit / 16 + 1> table{};
  for (std::size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<std::uint8_t>(smallest_fitting(i * 16));
  return table;
}

constexpr auto make_large_table() {
  std::array<std::uint8_t, (kMaxSmallSize - kSmallLimit) / 128 + 1> table{};
  for (std::size_t i = 0; i < table.size(); ++i) {
    table[i] = static_cast<std::uint8_t>(smallest_fitting(kSmallLimit + i * 128));
  }
  return table;
}

inline constexpr auto kSmallTable = make_small_table();
inline constexpr auto kLargeTable = make_large_table();

}  // namespace size_class_detail

// The smallest class whose objects hold `size` bytes; size must be at most
// kMaxSmallSize. Size 0 maps to class 1.
constexpr std::uint32_t size_to_class(std::size_t size) noexcept {
  using namespace size_class_detail;
  if (size <= kSmallLimit) return kSmallTable[(size + 15) >> 4];
  return kLargeTable[(size - kSmallLimit + 127) >> 7];
}

// The smallest class whose objects hold `size` bytes and are aligned to
// `align` (a power of two up to kPageSize), or 0 if none (then the request
// is served as a large object). Objects are carved at span start + i * size
// from page-aligned spans, so a class is align-aligned iff its size is a
// multiple of align.
inline std::uint32_t size_to_class_aligned(std::size_t size, std::size_t align) noexcept {
  if (size > kMaxSmallSize || align > kPageSize) return 0;
  for (std::uint32_t c = size_to_class(size); c < kClassCount; ++c) {
    if (kSizeClasses[c].size % align == 0) return c;
  }
  return 0;
}

}  // namespace goro::detail::alloc

#endif  // GORO_DETAIL_FRAME_SIZE_CLASSES_HPP_
