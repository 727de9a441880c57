// Tests of the frame allocator (lib/alloc/): the size-class table, span
// carving, the page map, large objects, frees on other Ps, threads without
// a P, memory going back to the OS, and ASan catching a use-after-free of
// a frame.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc/allocator.hpp"
#include "alloc/central_list.hpp"
#include "alloc/page_heap.hpp"
#include "goro/detail/frame_size_classes.hpp"
#include "goro/goro.hpp"
#include "goroutine_pool.hpp"
#include "test_scale.hpp"

namespace goro {
namespace {

using detail::alloc::kClassCount;
using detail::alloc::kMaxSmallSize;
using detail::alloc::kPageSize;
using detail::alloc::kSizeClasses;
using detail::alloc::PageHeap;
using detail::alloc::Span;
using detail::alloc::SpanState;

std::uint64_t in_use(std::uint32_t size_class) {
  return memory_stats().size_classes[size_class].objects_in_use;
}

TEST(SizeClasses, EveryRequestMapsToTheSmallestClassThatFits) {
  for (std::size_t size = 0; size <= kMaxSmallSize; ++size) {
    const std::uint32_t c = detail::alloc::size_to_class(size);
    ASSERT_GE(c, 1u) << size;
    ASSERT_LT(c, kClassCount) << size;
    ASSERT_GE(kSizeClasses[c].size, size) << size;
    if (c > 1) {
      ASSERT_LT(kSizeClasses[c - 1].size, size) << "size " << size << " fits class " << c - 1;
    }
  }
}

TEST(SizeClasses, EveryClassIsSixteenByteAlignedAndWastesLittleTail) {
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    const auto& cls = kSizeClasses[c];
    const std::size_t span = cls.pages * kPageSize;
    EXPECT_EQ(cls.size % 16, 0u) << c;
    EXPECT_EQ(cls.objects, span / cls.size) << c;
    EXPECT_LE(span % cls.size, span / 8) << c;
    if (c > 1) {
      EXPECT_GT(cls.size, kSizeClasses[c - 1].size) << c;
    }
  }
}

TEST(SizeClasses, AlignedRequestsGetTheSmallestAlignedClass) {
  for (std::size_t align = 32; align <= kPageSize; align *= 2) {
    for (std::size_t size = 1; size <= kMaxSmallSize; size += 7) {
      const std::uint32_t c = detail::alloc::size_to_class_aligned(size, align);
      ASSERT_NE(c, 0u) << size << " align " << align;
      ASSERT_GE(kSizeClasses[c].size, size);
      ASSERT_EQ(kSizeClasses[c].size % align, 0u);
      for (std::uint32_t smaller = 1; smaller < c; ++smaller) {
        ASSERT_FALSE(kSizeClasses[smaller].size >= size && kSizeClasses[smaller].size % align == 0)
            << "class " << smaller << " would do for " << size << " align " << align;
      }
    }
  }
  EXPECT_EQ(detail::alloc::size_to_class_aligned(100, 2 * kPageSize), 0u);
}

TEST(CentralList, CarvesObjectsAtFixedStridesWithinSpans) {
  const std::uint32_t c = detail::alloc::size_to_class(200);
  const auto& cls = kSizeClasses[c];
  void* head = nullptr;
  const std::size_t n = detail::alloc::central_list(c).remove_batch(head, 3 * cls.objects);
  ASSERT_GE(n, 1u);
  std::vector<void*> objects;
  for (void* p = head; p != nullptr; p = detail::alloc::next_free_object(p)) objects.push_back(p);
  ASSERT_EQ(objects.size(), n);
  for (void* p : objects) {
    Span* s = PageHeap::instance().span_of(p);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->state, SpanState::kSmall);
    EXPECT_EQ(s->size_class, c);
    const auto offset = reinterpret_cast<std::uintptr_t>(p) - s->start;
    EXPECT_EQ(offset % cls.size, 0u);
    EXPECT_LT(offset / cls.size, cls.objects);
  }
  std::sort(objects.begin(), objects.end());
  EXPECT_EQ(std::adjacent_find(objects.begin(), objects.end()), objects.end())
      << "duplicate object";
  // Give them back through the list they came as.
  void* relinked = nullptr;
  for (void* p : objects) {
    detail::alloc::set_next_free_object(p, relinked);
    relinked = p;
  }
  detail::alloc::central_list(c).insert_batch(relinked, objects.size());
}

TEST(PageHeap, PageMapFindsEveryPageOfALargeObject) {
  const std::size_t size = 20 * kPageSize + 123;
  const MemoryStats before = memory_stats();
  auto* p = static_cast<char*>(detail::alloc::allocate(size));
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % kPageSize, 0u);
  std::memset(p, 0xab, size);
  Span* s = PageHeap::instance().span_of(p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, SpanState::kLarge);
  EXPECT_EQ(s->pages, 21u);
  for (std::size_t off = 0; off < size; off += kPageSize / 2) {
    EXPECT_EQ(PageHeap::instance().span_of(p + off), s) << off;
  }
  EXPECT_EQ(memory_stats().large_objects, before.large_objects + 1);
  detail::alloc::free(p, size);
  EXPECT_EQ(memory_stats().large_objects, before.large_objects);
  int on_stack = 0;
  EXPECT_EQ(PageHeap::instance().span_of(&on_stack), nullptr);
}

TEST(PageHeap, AdjacentFreeSpansCoalesce) {
  PageHeap& heap = PageHeap::instance();
  // Two spans split off the same free run are adjacent; find such a pair.
  Span* a = heap.allocate(3, SpanState::kLarge, 0);
  Span* b = heap.allocate(5, SpanState::kLarge, 0);
  if (b->start != a->end()) {
    Span* c = heap.allocate(5, SpanState::kLarge, 0);
    ASSERT_EQ(c->start, b->end()) << "consecutive allocations are not adjacent";
    heap.free(a);
    a = b;
    b = c;
  }
  const std::uintptr_t first = a->start;
  const std::uintptr_t last = b->end();
  heap.free(a);
  heap.free(b);
  Span* merged = heap.span_of(reinterpret_cast<void*>(first));
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->state, SpanState::kFree);
  EXPECT_LE(merged->start, first);
  EXPECT_GE(merged->end(), last);
  EXPECT_EQ(heap.span_of(reinterpret_cast<void*>(last - kPageSize)), merged);
}

TEST(Allocator, SizedAndUnsizedFreesReturnObjectsToTheirClass) {
  const std::uint32_t c = detail::alloc::size_to_class(200);
  const std::uint64_t base = in_use(c);
  std::vector<void*> objects;
  for (int i = 0; i < 1000; ++i) objects.push_back(detail::alloc::allocate(200));
  EXPECT_EQ(in_use(c), base + 1000);
  for (std::size_t i = 0; i < objects.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(objects[i]) % 16, 0u);
    std::memset(objects[i], static_cast<int>(i), 200);
  }
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (i % 2 == 0) {
      detail::alloc::free(objects[i], 200);
    } else {
      detail::alloc::free_unsized(objects[i]);
    }
  }
  EXPECT_EQ(in_use(c), base);
}

TEST(Allocator, AlignedAllocationsAreAligned) {
  for (std::size_t align : {32, 64, 256, 4096, 16384}) {
    for (std::size_t size : {1, 40, 100, 1000, 5000, 40000}) {
      void* p = detail::alloc::allocate_aligned(size, align);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << size << " align " << align;
      std::memset(p, 1, size);
      detail::alloc::free_aligned(p, size, align);
    }
  }
}

#if defined(__clang__)
// A task whose frame holds an over-aligned local. clang 19 aligns such a
// frame (over-allocating through the promise's operator new); g++ 12 does
// not, and places the local at the default 16-byte alignment whatever the
// promise offers (a limitation of its coroutine lowering), so there is
// nothing for goro to honour there: the allocator-level test above covers
// the aligned path itself.
Task<std::uintptr_t> over_aligned_frame() {
  alignas(128) char buffer[128];
  std::memset(buffer, 7, sizeof(buffer));
  co_await goro::yield();
  co_return reinterpret_cast<std::uintptr_t>(&buffer[0]);
}

Task<bool> over_aligned_frames_are_aligned() {
  bool ok = true;
  for (int i = 0; i < 100; ++i) ok = ok && (co_await over_aligned_frame()) % 128 == 0;
  co_return ok;
}

TEST(Allocator, OverAlignedFramesAreAligned) {
  EXPECT_TRUE(run(over_aligned_frames_are_aligned(), Config{.procs = 1}));
}
#endif

void allocate_and_free_outside(int rounds, std::atomic<bool>* ok) {
  std::mt19937 rng(12345);
  std::vector<std::pair<void*, std::size_t>> live;
  for (int i = 0; i < rounds; ++i) {
    const std::size_t size = 1 + rng() % 3000;
    auto* p = static_cast<unsigned char*>(detail::allocate_frame(size));
    p[0] = static_cast<unsigned char>(size);
    p[size - 1] = static_cast<unsigned char>(size);
    live.emplace_back(p, size);
    if (live.size() > 64 || rng() % 2 == 0) {
      auto [q, n] = live[rng() % live.size()];
      auto* b = static_cast<unsigned char*>(q);
      if (b[0] != static_cast<unsigned char>(n) || b[n - 1] != static_cast<unsigned char>(n)) {
        ok->store(false);
      }
      detail::free_frame(q, n);
      live.erase(std::find(live.begin(), live.end(), std::make_pair(q, n)));
    }
  }
  for (auto [q, n] : live) detail::free_frame(q, n);
}

TEST(Allocator, ThreadsOutsideTheRuntimeAllocateAndFree) {
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back(allocate_and_free_outside, test::scaled(100'000), &ok);
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(ok.load());
}

// Producer/consumer across Ps: producers allocate and fill objects, pass
// them through a locked queue, consumers on other Ps check and free them.
struct Handoff {
  std::mutex mu;
  std::deque<std::pair<unsigned char*, std::size_t>> queue;
  std::atomic<long> produced{0};
  std::atomic<long> consumed{0};
  std::atomic<long> corrupted{0};
};

Task<void> producer(Handoff* h, long count, unsigned seed) {
  std::mt19937 rng(seed);
  for (long i = 0; i < count; ++i) {
    const std::size_t size = 16 + rng() % 600;
    auto* p = static_cast<unsigned char*>(detail::allocate_frame(size));
    std::memset(p, static_cast<int>(size & 0xff), size);
    {
      std::lock_guard lock(h->mu);
      h->queue.emplace_back(p, size);
    }
    h->produced.fetch_add(1, std::memory_order_relaxed);
    if (i % 64 == 0) co_await goro::yield();
  }
}

Task<void> consumer(Handoff* h, long total) {
  while (h->consumed.load() < total) {
    std::pair<unsigned char*, std::size_t> item{nullptr, 0};
    {
      std::lock_guard lock(h->mu);
      if (!h->queue.empty()) {
        item = h->queue.front();
        h->queue.pop_front();
      }
    }
    if (item.first == nullptr) {
      co_await goro::yield();
      continue;
    }
    const auto expected = static_cast<unsigned char>(item.second & 0xff);
    if (item.first[0] != expected || item.first[item.second - 1] != expected) h->corrupted++;
    detail::free_frame(item.first, item.second);
    h->consumed.fetch_add(1);
  }
}

Task<void> cross_p_stress(Handoff* h, long per_producer) {
  std::vector<JoinHandle<void>> all;
  for (unsigned i = 0; i < 3; ++i) all.push_back(spawn(producer(h, per_producer, i + 1)));
  for (int i = 0; i < 2; ++i) all.push_back(spawn(consumer(h, 3 * per_producer)));
  for (auto& j : all) co_await j;
}

TEST(Allocator, ObjectsFreedOnOtherPsComeBackIntact) {
  const MemoryStats before = memory_stats();
  Handoff h;
  const long per_producer = test::scaled(400'000);
  run(cross_p_stress(&h, per_producer), Config{.procs = 3});
  EXPECT_EQ(h.consumed.load(), 3 * per_producer);
  EXPECT_EQ(h.corrupted.load(), 0);
  const MemoryStats after = memory_stats();
  std::uint64_t in_use_before = 0, in_use_after = 0;
  for (std::uint32_t c = 1; c < kClassCount; ++c) {
    in_use_before += before.size_classes[c].objects_in_use;
    in_use_after += after.size_classes[c].objects_in_use;
  }
  EXPECT_EQ(in_use_after, in_use_before);
}

long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

Task<long> parked_until_all_spawned(long i) {
  co_await goro::yield();
  co_return i;
}

Task<long> burst(long n) {
  std::deque<JoinHandle<long>> handles;
  for (long i = 0; i < n; ++i) handles.push_back(spawn(parked_until_all_spawned(i)));
  long sum = 0;
  for (auto& h : handles) sum += co_await h;
  co_return sum;
}

Task<std::vector<long>> burst_and_release(long n) {
  release_memory();
  malloc_trim(0);
  const long before = resident_kb();
  const long sum = co_await burst(n);
  const long peak = resident_kb();
  const std::size_t released = release_memory();
  malloc_trim(0);
  const long after = resident_kb();
  const MemoryStats stats = memory_stats();
  const long held = static_cast<long>(stats.bytes_mapped - stats.bytes_released);
  co_return std::vector<long>{sum, before, peak, after, static_cast<long>(released), held};
}

TEST(Allocator, MemoryGoesBackToTheOsAfterABurst) {
  const long n = test::scaled(1'000'000);
  const std::vector<long> r = run(burst_and_release(n), Config{.procs = 2});
  EXPECT_EQ(r[0], n * (n - 1) / 2);
  const long before = r[1], peak = r[2], after = r[3], released = r[4], held = r[5];
  EXPECT_GT(released, 0);
  if constexpr (!test::kTsan && !test::kAsan) {
    // Under the sanitizers RSS says little about goro's allocator: TSan's
    // and ASan's shadow memory of every page ever touched stays resident,
    // and ASan's quarantine keeps freed malloc blocks. The allocator's own
    // count below still holds there.
    EXPECT_GT(peak, before);
    // Most of what the burst added is gone again.
    EXPECT_LT(after - before, (peak - before) / 4)
        << "before " << before << " KiB, peak " << peak << " KiB, after " << after << " KiB";
  }
  // What the allocator still holds resident: the other P's cache (bounded)
  // and partly used spans.
  EXPECT_LT(held, 16L << 20) << "resident bytes still held by the allocator";
}

// Goroutine records move between P caches and the pool in whole batches:
// two caches, one allocating and one freeing (goroutines dying on another
// P), exchange records for many rounds; no live record is ever handed out
// twice, and every record stays a whole record.
TEST(GoroutinePool, BatchesMoveWholeBetweenCachesAndNothingIsHandedOutTwice) {
  using G = goro::detail::GoroutineRecord;
  using goro::detail::GoroutineCache;
  using goro::detail::GoroutinePool;
  GoroutinePool& pool = GoroutinePool::instance();
  GoroutineCache producer;
  GoroutineCache consumer;
  std::set<G*> live;
  std::vector<G*> order;
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    // A burst of allocations on one side (sizes around the batch size)...
    const int n = 1 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i) {
      G* g = producer.allocate(pool);
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(g) % alignof(G), 0u);
      ASSERT_TRUE(live.insert(g).second) << "record handed out twice";
      order.push_back(g);
    }
    // ...and frees of most of them on the other, oldest first.
    const std::size_t frees = order.size() - order.size() / 4;
    for (std::size_t i = 0; i < frees; ++i) {
      live.erase(order[i]);
      consumer.free(pool, order[i]);
    }
    order.erase(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(frees));
  }
  for (G* g : order) consumer.free(pool, g);
  producer.flush(pool);
  consumer.flush(pool);
  // Everything went back: a fresh cache can take as many again, all distinct.
  GoroutineCache again;
  std::set<G*> seen;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(seen.insert(again.allocate(pool)).second);
  for (G* g : seen) again.free(pool, g);
  again.flush(pool);
}

#if defined(GORO_ASAN) && !(defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR)

struct CaptureFrame {
  void** out;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> self) const noexcept {
    *out = self.address();
    return false;  // continue at once
  }
  void await_resume() const noexcept {}
};

Task<int> frame_owner(void** frame) {
  co_await CaptureFrame{frame};
  co_return 1;
}

Task<void*> finished_frame() {
  void* frame = nullptr;
  co_await frame_owner(&frame);  // the Task temporary (and its frame) dies here
  co_return frame;
}

TEST(AllocatorDeathTest, AsanCatchesUseAfterFreeOfAFrame) {
  void* frame = run(finished_frame(), Config{.procs = 1});
  ASSERT_NE(frame, nullptr);
  EXPECT_DEATH(static_cast<volatile char*>(frame)[8] = 1, "use-after-poison");
}

#endif

}  // namespace
}  // namespace goro
