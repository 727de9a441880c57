// lib/thread_census.cpp: the census of the process's threads (see
// thread_census.hpp).
#include "thread_census.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "mutex.hpp"

// Part of every sanitizer runtime's interface (sanitizer_common); the weak
// reference is null when no sanitizer runtime is linked.
extern "C" __attribute__((weak)) void __sanitizer_print_stack_trace();

namespace goro::detail {
namespace {

// Linux's PF_IO_WORKER (include/linux/sched.h), in field 9 of a thread's
// stat: the thread is one of the kernel's io_uring workers.
constexpr unsigned long kIoWorkerFlag = 0x10;

// A sanitizer's helper thread, as the census recognises it.
struct SupportThread {
  pid_t thread_id = 0;
  unsigned long long start_time = 0;  // field 22 of its stat, clock ticks since boot
};
// More helpers than this are left unrecorded, and so count as outside
// threads: a deadlock is then never declared, which is the safe side.
constexpr std::size_t kMaxSupportThreads = 8;

constinit Mutex census_mu;
// Every live mark, linked through previous_/next_.
constinit RuntimeThreadMark* marks ABSL_GUARDED_BY(census_mu) = nullptr;
constinit std::array<SupportThread, kMaxSupportThreads> support_threads
    ABSL_GUARDED_BY(census_mu){};
constinit std::size_t support_thread_count ABSL_GUARDED_BY(census_mu) = 0;
// The calling thread's innermost mark; a forked child keeps these.
constinit thread_local RuntimeThreadMark* innermost_mark = nullptr;

enum class StatRead { kRead, kGone, kUnreadable };

struct ThreadFacts {
  unsigned long flags = 0;
  unsigned long long start_time = 0;
};

// Reads fields 9 (flags) and 22 (start time) of /proc/self/task/<id>/stat.
StatRead read_thread_facts(pid_t thread_id, ThreadFacts& facts) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(thread_id));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH ? StatRead::kGone : StatRead::kUnreadable;
  char text[1024];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  const int read_error = errno;
  ::close(fd);
  if (n <= 0) return n < 0 && read_error == ESRCH ? StatRead::kGone : StatRead::kUnreadable;
  text[n] = '\0';
  // "id (name) state ppid ...": the name may hold spaces and parentheses,
  // so fields are counted from the last ')', which ends field 2.
  const char* cursor = std::strrchr(text, ')');
  if (cursor == nullptr) return StatRead::kUnreadable;
  const char* const end = text + n;
  bool have_flags = false;
  for (int field = 3; field <= 22; ++field) {
    while (cursor < end && *cursor != ' ') ++cursor;
    while (cursor < end && *cursor == ' ') ++cursor;
    if (cursor == end) return StatRead::kUnreadable;
    if (field == 9) {
      have_flags = std::from_chars(cursor, end, facts.flags).ec == std::errc();
    } else if (field == 22) {
      const bool have_start = std::from_chars(cursor, end, facts.start_time).ec == std::errc();
      return have_flags && have_start ? StatRead::kRead : StatRead::kUnreadable;
    }
  }
  return StatRead::kUnreadable;
}

// Calls `each(thread_id)` for every thread /proc lists for the process;
// false when the list cannot be read (whole).
template <class Each>
bool for_each_listed_thread(Each&& each) {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return false;
  absl::Cleanup close_dir = [dir] { ::closedir(dir); };
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) return errno == 0;
    const char* name = entry->d_name;
    int thread_id = 0;
    const auto [rest, error] = std::from_chars(name, name + std::strlen(name), thread_id);
    if (error != std::errc() || *rest != '\0') continue;  // "." and ".."
    if (!each(static_cast<pid_t>(thread_id))) return true;
  }
}

bool sanitizer_runtime_linked() noexcept { return &__sanitizer_print_stack_trace != nullptr; }

// Records every listed thread but `self` and `probe` as a support thread.
// Called only where no thread of the program can be running (see the top
// of thread_census.hpp).
void record_support_threads(pid_t self, pid_t probe) ABSL_EXCLUSIVE_LOCKS_REQUIRED(census_mu) {
  support_thread_count = 0;
  (void)for_each_listed_thread([&](pid_t thread_id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (thread_id == self || thread_id == probe) return true;
    ThreadFacts facts;
    if (read_thread_facts(thread_id, facts) != StatRead::kRead) return true;
    if (support_thread_count == kMaxSupportThreads) return false;
    support_threads[support_thread_count++] = SupportThread{thread_id, facts.start_time};
    return true;
  });
}

}  // namespace

// The census's access to the marks.
struct ThreadCensus {
  static void link(RuntimeThreadMark* mark) ABSL_EXCLUSIVE_LOCKS_REQUIRED(census_mu) {
    mark->previous_ = nullptr;
    mark->next_ = marks;
    if (marks != nullptr) marks->previous_ = mark;
    marks = mark;
  }

  static void unlink(RuntimeThreadMark* mark) ABSL_EXCLUSIVE_LOCKS_REQUIRED(census_mu) {
    if (mark->previous_ != nullptr) {
      mark->previous_->next_ = mark->next_;
    } else {
      marks = mark->next_;
    }
    if (mark->next_ != nullptr) mark->next_->previous_ = mark->previous_;
  }

  // pthread_atfork handlers: the census lock is held across fork(), so
  // that the child's copy of the marks and support threads is whole.
  static void before_fork() ABSL_NO_THREAD_SAFETY_ANALYSIS { census_mu.lock(); }
  static void after_fork_in_parent() ABSL_NO_THREAD_SAFETY_ANALYSIS { census_mu.unlock(); }
  static void after_fork_in_child() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // Only the forking thread exists here: keep its marks, forget the
    // others (their threads are not in this process).
    marks = nullptr;
    for (RuntimeThreadMark* mark = innermost_mark; mark != nullptr; mark = mark->outer_) {
      link(mark);
    }
    if (sanitizer_runtime_linked()) {
      record_support_threads(::gettid(), 0);
    } else {
      support_thread_count = 0;
    }
    census_mu.unlock();
  }

  static bool outside_thread_alive() {
    MutexLock lock(census_mu);
    std::vector<pid_t> marked;
    for (const RuntimeThreadMark* mark = marks; mark != nullptr; mark = mark->next_) {
      marked.push_back(mark->thread_id_);
    }
    std::sort(marked.begin(), marked.end());
    bool outside = false;
    const bool listed = for_each_listed_thread([&](pid_t thread_id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (std::binary_search(marked.begin(), marked.end(), thread_id)) return true;
      ThreadFacts facts;
      switch (read_thread_facts(thread_id, facts)) {
        case StatRead::kGone:
          return true;
        case StatRead::kUnreadable:
          outside = true;  // cannot tell: the safe side
          return false;
        case StatRead::kRead:
          break;
      }
      if ((facts.flags & kIoWorkerFlag) != 0) return true;
      for (std::size_t i = 0; i < support_thread_count; ++i) {
        if (support_threads[i].thread_id == thread_id &&
            support_threads[i].start_time == facts.start_time) {
          return true;
        }
      }
      outside = true;
      return false;
    });
    return outside || !listed;
  }
};

namespace {

// Runs when goro is loaded, before the program's ordinary static
// initializers (priority 101 is the first one left to programs): see
// "Support threads" at the top of thread_census.hpp.
__attribute__((constructor(101))) void start_census() {
  pthread_atfork(&ThreadCensus::before_fork, &ThreadCensus::after_fork_in_parent,
                 &ThreadCensus::after_fork_in_child);
  if (!sanitizer_runtime_linked()) return;
  pid_t probe = 0;
  try {
    // The join orders the probe's write before the read below.
    std::thread([&probe] { probe = ::gettid(); }).join();
  } catch (...) {
    return;  // no helper recorded: detection stays on the safe side
  }
  MutexLock lock(census_mu);
  record_support_threads(::gettid(), probe);
}

}  // namespace

RuntimeThreadMark::RuntimeThreadMark() noexcept : thread_id_(::gettid()), outer_(innermost_mark) {
  innermost_mark = this;
  MutexLock lock(census_mu);
  ThreadCensus::link(this);
}

RuntimeThreadMark::~RuntimeThreadMark() {
  {
    MutexLock lock(census_mu);
    ThreadCensus::unlink(this);
  }
  innermost_mark = outer_;
}

bool outside_thread_alive() noexcept {
  try {
    return ThreadCensus::outside_thread_alive();
  } catch (...) {
    return true;  // no memory for the census: the safe side
  }
}

}  // namespace goro::detail
