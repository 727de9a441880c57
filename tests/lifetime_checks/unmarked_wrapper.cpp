// Must be rejected (clang >= 19, GORO_CORO_LIFETIME_CHECKS=1): with the
// checks on, a function that returns a Task without being a coroutine must
// be marked GORO_CORO_WRAPPER (the price of the checks; see task.hpp).
#include <goro/task.hpp>

goro::Task<int> answer() { co_return 42; }

goro::Task<int> forward_answer() { return answer(); }
