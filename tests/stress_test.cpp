// Placeholder: to be replaced by the real stress_test.
#include <gtest/gtest.h>

TEST(Placeholder, Builds) { SUCCEED(); }
