// The translation unit that builds the tests' shared precompiled header
// (tests/CMakeLists.txt, goro_test_pch); it defines nothing.
