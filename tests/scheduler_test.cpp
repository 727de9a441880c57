// Placeholder: to be replaced by the real scheduler_test.
#include <gtest/gtest.h>

TEST(Placeholder, Builds) { SUCCEED(); }
