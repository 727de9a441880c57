// tests/counting_new.hpp: replaces the global operator new with one that
// counts its calls, for the tests that check a path allocates nothing.
// Include it from exactly one source file of a test binary (it defines the
// replacement functions).
//
// Defines: GORO_TEST_COUNTS_NEW (1 where the counting replacement is in
// force: not under ThreadSanitizer, whose runtime defines operator new
// itself, nor where coroutine frames come from operator new by design),
// and in goro::test: news_on_this_thread() (the calls this thread made)
// and news_in_process() (the calls of every thread).
#ifndef GORO_TESTS_COUNTING_NEW_HPP_
#define GORO_TESTS_COUNTING_NEW_HPP_

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_COUNTS_NEW 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_COUNTS_NEW 0
#endif
#endif
#if !defined(GORO_TEST_COUNTS_NEW) && defined(GORO_SYSTEM_FRAME_ALLOCATOR) && \
    GORO_SYSTEM_FRAME_ALLOCATOR
#define GORO_TEST_COUNTS_NEW 0
#endif
#ifndef GORO_TEST_COUNTS_NEW
#define GORO_TEST_COUNTS_NEW 1
#endif

namespace goro::test {

inline thread_local long news_by_this_thread = 0;
// Relaxed: read by the thread that runs a test body after the operations it
// counts returned to it (a resumption, which the scheduler orders).
inline std::atomic<long> news_by_process{0};

inline long news_on_this_thread() { return news_by_this_thread; }
inline long news_in_process() { return news_by_process.load(std::memory_order_relaxed); }

}  // namespace goro::test

#if GORO_TEST_COUNTS_NEW
// g++ warns of free() on memory from operator new where it inlines the two
// into a caller; the replacements below pair malloc with free, as they must.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  ++goro::test::news_by_this_thread;
  goro::test::news_by_process.fetch_add(1, std::memory_order_relaxed);  // see news_by_process
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#endif  // GORO_TESTS_COUNTING_NEW_HPP_
