// GPU test runner: reports "skipped: no CUDA device" (exit 77, which ctest counts as skipped) on a
// machine without a usable GPU, else runs every test case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <minigrad/minigrad.hpp>

int main(int argc, char** argv) {
    if (!minigrad::cuda::is_available()) {
        fmt::print("skipped: no CUDA device ({})\n", minigrad::cuda::unavailable_reason());
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
