// goro/memory.hpp
//
// Defines: goro::MemoryStats, goro::memory_stats() and
// goro::release_memory(): what goro's frame allocator holds, and a way to
// give idle memory back to the OS.
#ifndef GORO_MEMORY_HPP_
#define GORO_MEMORY_HPP_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace goro {

struct SizeClassStats {
  std::uint32_t object_size = 0;     // bytes per object
  std::uint64_t objects_in_use = 0;  // handed out and not freed
  std::uint64_t objects_free = 0;    // free in P caches and in spans
  std::uint64_t spans = 0;           // spans carved into this class
  std::uint64_t allocations = 0;     // objects handed out, ever (by P caches)
};

// A snapshot of the frame allocator. Taken while goroutines allocate, the
// figures are approximate (each is read consistently, not all together).
struct MemoryStats {
  std::uint64_t bytes_mapped = 0;  // address space mapped from the OS
  std::uint64_t bytes_in_use = 0;  // objects in use (at their class size) + large objects
  std::uint64_t bytes_free = 0;    // mapped, resident, not in use (caches, span slack, free pages)
  std::uint64_t bytes_released = 0;          // mapped but returned to the OS (not resident)
  std::uint64_t large_objects = 0;           // objects over 32 KiB in use
  std::uint64_t large_bytes = 0;             // their pages
  std::vector<SizeClassStats> size_classes;  // index = size class; 0 is unused
};

// Reads the allocator's statistics. Safe from any thread.
[[nodiscard]] MemoryStats memory_stats();

// Returns the calling P's cached objects to the shared lists and every free
// page to the OS (madvise(MADV_DONTNEED)); returns the bytes released. Safe
// from any thread, inside or outside the runtime. The background scavenger
// (sysmon) does the same, gradually, for pages idle for a while.
std::size_t release_memory();

}  // namespace goro

#endif  // GORO_MEMORY_HPP_
