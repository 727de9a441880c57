// Placeholder: to be replaced by the real spawn_test.
#include <gtest/gtest.h>

TEST(Placeholder, Builds) { SUCCEED(); }
