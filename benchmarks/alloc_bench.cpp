// alloc_bench: goro's frame allocator against the system allocators
// (Google Benchmark). docs/PERFORMANCE.md, "Frame allocator", has the
// results; scripts/bench-alloc.sh runs them.
//
// One source, four binaries (benchmarks/CMakeLists.txt):
//
//   alloc_bench           goro's allocator and glibc malloc
//   alloc_bench_mimalloc  linked with libmimalloc   (GORO_ALLOC_BENCH_MIMALLOC)
//   alloc_bench_jemalloc  linked with libjemalloc   (GORO_ALLOC_BENCH_JEMALLOC)
//   alloc_bench_tcmalloc  linked with libtcmalloc_minimal (GORO_ALLOC_BENCH_TCMALLOC)
//
// Why separate binaries: Debian's libmimalloc.so, libjemalloc.so and
// libtcmalloc_minimal.so all export malloc, free, operator new and operator
// delete, so linking any of them replaces the process's allocator (glibc's
// "malloc" would silently become mimalloc's). Each binary therefore holds
// exactly one system allocator, and main() checks at start-up that operator
// new and sized operator delete really resolve to it (and aborts if not);
// the resolved libraries are printed in the benchmark context.
//
// What is measured, per allocator: what a coroutine frame costs.
//   goro      goro::detail::allocate_frame(n) / free_frame(p, n): what every
//             goro frame uses (promise operator new / sized operator delete).
//   the rest  ::operator new(n) / ::operator delete(p, n): what a frame uses
//             with GORO_SYSTEM_FRAME_ALLOCATOR=ON (or any plain C++
//             coroutine). With glibc, libstdc++'s operator new calls malloc
//             and its sized delete calls free; mimalloc, jemalloc and
//             tcmalloc define their own operator new and sized delete
//             (mi_new/mi_free_size, je_*/sdallocx, tc_new/tc_delete_sized),
//             so each gets its best C++ path.
//
// Benchmarks
//   BM_AllocFree/<allocator>/<bytes>   one alloc+free pair per iteration, on
//     the benchmark's thread, always the same size: the allocators' fast
//     path (a thread-cache pop and push).
//   BM_CrossPFree/<allocator>/<bytes>  allocate on one thread, free on
//     another: the benchmark's thread allocates and pushes the pointer into
//     a lock-free single-producer/single-consumer ring of 1024 pointers; a
//     consumer thread pops and frees. Time per object (the ring bounds how
//     far the producer can run ahead, so the producer's loop time is the
//     pipeline's throughput). BM_CrossPFree/queue_only passes one fixed
//     pointer through the same ring without allocating: the queue's own
//     cost, to subtract by eye.
//
// goro on a thread with a P cache. goro's fast path needs the thread's
// tls_frame_cache (the P's FrameCache, lib/alloc/frame_cache.hpp): without
// one, allocate_frame takes the locked path for threads without a P. A
// worker thread does exactly this when it starts: it points
// alloc::tls_frame_cache at its P's FrameCache. The benchmarks do the same
// on their own threads (a FrameCache per thread, installed for the
// benchmark's duration, nullptr restored and the cache flushed after), so
// BM_AllocFree/goro is the path a goroutine takes, and the two threads of
// BM_CrossPFree/goro model two Ps exactly (one cache each; frees go into
// the consumer's cache, whose overflow goes back to the central list, from
// which the producer's cache refills).
//   Rejected: running the timed loop inside goro::run. benchmark::State may
//   be used only on the thread that called the benchmark function, and a
//   goroutine may resume on any worker, so `for (auto _ : state)` cannot
//   run inside a goroutine; it would need manual timing
//   (SetIterationTime) of a fixed batch per goro::run and would add the
//   runtime's start/stop to every iteration's bookkeeping. Installing the
//   cache directly measures the same allocator path with the ordinary
//   timing.
//
// Keeping the loop honest: the pointer is passed to
// benchmark::DoNotOptimize (an asm statement that takes it as an input and
// clobbers memory), so the compiler cannot elide the pair (clang may remove
// a new/delete or malloc/free pair whose pointer does not escape), and
// ClobberMemory() after the free keeps it from merging iterations.
// The calls are out-of-line in every case (goro's are in libgoro.a, the
// others in shared libraries), so no allocator gets inlined into the loop.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <type_traits>

#include <goro/detail/cpu_relax.hpp>
#include <goro/detail/frame_allocator.hpp>

#include "alloc/frame_cache.hpp"

#if defined(GORO_ALLOC_BENCH_MIMALLOC)
#include <mimalloc.h>
#define GORO_ALLOC_BENCH_SYSTEM "mimalloc"
#elif defined(GORO_ALLOC_BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define GORO_ALLOC_BENCH_SYSTEM "jemalloc"
#elif defined(GORO_ALLOC_BENCH_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#define GORO_ALLOC_BENCH_SYSTEM "tcmalloc"
#else
#define GORO_ALLOC_BENCH_SYSTEM "glibc"
#define GORO_ALLOC_BENCH_GORO 1
#endif

// With GORO_SYSTEM_FRAME_ALLOCATOR=ON allocate_frame is operator new: there
// is no goro allocator to measure.
#if defined(GORO_SYSTEM_FRAME_ALLOCATOR) && GORO_SYSTEM_FRAME_ALLOCATOR
#undef GORO_ALLOC_BENCH_GORO
#endif

namespace {

namespace galloc = goro::detail::alloc;

constexpr std::size_t kSizes[] = {64, 128, 256, 512, 1024, 4096};
constexpr std::size_t kCrossSizes[] = {64, 256, 1024, 4096};

// ---------------------------------------------------------------------------
// The allocators, as a frame would call them.

struct GoroFrames {
  static void* allocate(std::size_t n) { return goro::detail::allocate_frame(n); }
  static void free(void* p, std::size_t n) noexcept { goro::detail::free_frame(p, n); }
};

struct SystemFrames {
  static void* allocate(std::size_t n) { return ::operator new(n); }
  static void free(void* p, std::size_t n) noexcept { ::operator delete(p, n); }
};

// Installs a P cache on this thread for goro (what a worker does when it
// starts), nothing for the system allocators.
template <class A>
class ThreadCache {
 public:
  ThreadCache() {
    if constexpr (std::is_same_v<A, GoroFrames>) {
      cache_ = std::make_unique<galloc::FrameCache>();
      galloc::tls_frame_cache = cache_.get();
    }
  }
  ~ThreadCache() {
    if (cache_ != nullptr) {
      galloc::tls_frame_cache = nullptr;
      cache_.reset();  // flushes to the central lists
    }
  }
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;

 private:
  std::unique_ptr<galloc::FrameCache> cache_;
};

// ---------------------------------------------------------------------------
// BM_AllocFree

template <class A>
void BM_AllocFree(benchmark::State& state, std::size_t n) {
  ThreadCache<A> cache;
  for (auto _ : state) {
    void* p = A::allocate(n);
    benchmark::DoNotOptimize(p);
    A::free(p, n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------
// BM_CrossPFree

// Lock-free single-producer/single-consumer ring of pointers. Both sides
// publish their index once per kBatch objects (and the producer on flush()),
// and reread the other's only when the ring looks full (producer) or empty
// (consumer), so the indices' cache lines cross between the cores about once
// per batch, not once per object: the queue's own cost stays small beside
// the allocators' (see BM_CrossPFree/queue_only).
class Ring {
 public:
  static constexpr std::size_t kCapacity = 1024;
  static constexpr std::size_t kBatch = 32;

  void push(void* p) noexcept {
    for (unsigned spins = 0; tail_ - head_cache_ == kCapacity; ++spins) {
      head_cache_ = head_published_.load(std::memory_order_acquire);
      if (tail_ - head_cache_ == kCapacity) backoff(spins);
    }
    slots_[tail_ % kCapacity] = p;
    if (++tail_ % kBatch == 0) tail_published_.store(tail_, std::memory_order_release);
  }

  // Publishes what push() has not published yet.
  void flush() noexcept { tail_published_.store(tail_, std::memory_order_release); }

  void* pop() noexcept {
    for (unsigned spins = 0; tail_cache_ == head_; ++spins) {
      tail_cache_ = tail_published_.load(std::memory_order_acquire);
      if (tail_cache_ == head_) backoff(spins);
    }
    void* p = slots_[head_ % kCapacity];
    if (++head_ % kBatch == 0) head_published_.store(head_, std::memory_order_release);
    return p;
  }

 private:
  // Spin (a few microseconds), then give the core away: the dev machines
  // have 2 cores shared with other work, and a waiter that shares its core
  // with its peer must not starve it. Yielding at once would hand the core
  // to any other runnable process for a whole time slice at every full or
  // empty ring.
  static void backoff(unsigned spins) noexcept {
    if (spins < 256) {
      goro::detail::cpu_relax();
      return;
    }
    std::this_thread::yield();
  }

  // Consumer's line: its published index, private index and cached tail.
  alignas(64) std::atomic<std::size_t> head_published_{0};
  std::size_t head_ = 0;
  std::size_t tail_cache_ = 0;
  // Producer's line.
  alignas(64) std::atomic<std::size_t> tail_published_{0};
  std::size_t tail_ = 0;
  std::size_t head_cache_ = 0;
  alignas(64) void* slots_[kCapacity] = {};
};

// A pointer the consumer recognises as "stop" (never a real allocation).
void* stop_marker() {
  static char marker;
  return &marker;
}

template <class A>
void BM_CrossPFree(benchmark::State& state, std::size_t n) {
  auto ring = std::make_unique<Ring>();
  std::thread consumer([&ring, n] {
    ThreadCache<A> cache;  // the second P's cache
    for (;;) {
      void* p = ring->pop();
      if (p == stop_marker()) break;
      A::free(p, n);
    }
  });
  {
    ThreadCache<A> cache;  // the first P's cache
    for (auto _ : state) {
      void* p = A::allocate(n);
      benchmark::DoNotOptimize(p);
      ring->push(p);
    }
    ring->push(stop_marker());
    ring->flush();
    consumer.join();
  }
  state.SetItemsProcessed(state.iterations());
}

#if defined(GORO_ALLOC_BENCH_GORO)
void BM_CrossPFree_queue_only(benchmark::State& state) {
  auto ring = std::make_unique<Ring>();
  static char object;
  std::thread consumer([&ring] {
    for (;;) {
      void* p = ring->pop();
      if (p == stop_marker()) break;
      benchmark::DoNotOptimize(p);
    }
  });
  for (auto _ : state) {
    void* p = &object;
    benchmark::DoNotOptimize(p);
    ring->push(p);
  }
  ring->push(stop_marker());
  ring->flush();
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}
#endif

// ---------------------------------------------------------------------------
// Start-up check: the system allocator in this binary is the one its name
// says.

std::string library_of(const void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "?";
  std::string name = info.dli_fname;
  const std::size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "alloc_bench: %s is not what this binary measures (%s)\n", what,
               GORO_ALLOC_BENCH_SYSTEM);
  std::abort();
}

void check_system_allocator() {
  // The addresses the program's calls resolve to.
  void* (*op_new)(std::size_t) = &::operator new;
  void (*op_delete_sized)(void*, std::size_t) noexcept = &::operator delete;
  void* (*c_malloc)(std::size_t) = &::malloc;
  const std::string new_lib = library_of(reinterpret_cast<const void*>(op_new));
  const std::string delete_lib = library_of(reinterpret_cast<const void*>(op_delete_sized));
  const std::string malloc_lib = library_of(reinterpret_cast<const void*>(c_malloc));
  benchmark::AddCustomContext("system_allocator", GORO_ALLOC_BENCH_SYSTEM);
  benchmark::AddCustomContext("operator_new_from", new_lib);
  benchmark::AddCustomContext("sized_operator_delete_from", delete_lib);
  benchmark::AddCustomContext("malloc_from", malloc_lib);

  void* p = ::operator new(4096);
#if defined(GORO_ALLOC_BENCH_MIMALLOC)
  if (!mi_is_in_heap_region(p)) fail("operator new");
  if (new_lib.find("mimalloc") == std::string::npos) fail("operator new");
  if (delete_lib.find("mimalloc") == std::string::npos) fail("sized operator delete");
#elif defined(GORO_ALLOC_BENCH_JEMALLOC)
  std::uint64_t before = 0, after = 0;
  std::size_t len = sizeof(before);
  mallctl("thread.allocated", &before, &len, nullptr, 0);
  void* q = ::operator new(4096);
  len = sizeof(after);
  mallctl("thread.allocated", &after, &len, nullptr, 0);
  ::operator delete(q, 4096);
  if (after - before < 4096) fail("operator new");
  if (new_lib.find("jemalloc") == std::string::npos) fail("operator new");
  if (delete_lib.find("jemalloc") == std::string::npos) fail("sized operator delete");
#elif defined(GORO_ALLOC_BENCH_TCMALLOC)
  if (MallocExtension_GetOwnership(p) != MallocExtension_kOwned) fail("operator new");
  if (new_lib.find("tcmalloc") == std::string::npos) fail("operator new");
  if (delete_lib.find("tcmalloc") == std::string::npos) fail("sized operator delete");
#else
  // glibc: no other allocator may be loaded.
  for (const char* symbol : {"mi_malloc", "mallctl", "tc_malloc", "je_malloc"}) {
    if (dlsym(RTLD_DEFAULT, symbol) != nullptr) fail(symbol);
  }
  if (malloc_lib.find("libc.so") == std::string::npos) fail("malloc");
#endif
  ::operator delete(p, 4096);
}

void register_benchmarks() {
  const std::string sys = GORO_ALLOC_BENCH_SYSTEM;
  for (const std::size_t n : kSizes) {
#if defined(GORO_ALLOC_BENCH_GORO)
    benchmark::RegisterBenchmark(("BM_AllocFree/goro/" + std::to_string(n)).c_str(),
                                 BM_AllocFree<GoroFrames>, n);
#endif
    benchmark::RegisterBenchmark(("BM_AllocFree/" + sys + "/" + std::to_string(n)).c_str(),
                                 BM_AllocFree<SystemFrames>, n);
  }
  for (const std::size_t n : kCrossSizes) {
#if defined(GORO_ALLOC_BENCH_GORO)
    benchmark::RegisterBenchmark(("BM_CrossPFree/goro/" + std::to_string(n)).c_str(),
                                 BM_CrossPFree<GoroFrames>, n)
        ->UseRealTime();
#endif
    benchmark::RegisterBenchmark(("BM_CrossPFree/" + sys + "/" + std::to_string(n)).c_str(),
                                 BM_CrossPFree<SystemFrames>, n)
        ->UseRealTime();
  }
#if defined(GORO_ALLOC_BENCH_GORO)
  benchmark::RegisterBenchmark("BM_CrossPFree/queue_only", BM_CrossPFree_queue_only)->UseRealTime();
#endif
}

}  // namespace

int main(int argc, char** argv) {
  check_system_allocator();
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
