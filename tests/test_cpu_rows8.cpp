// The Cpu backend's eight-rows-at-once path for narrow row kernels (kernels::rows8): its exp and
// log, and cross_entropy's rows8() against the same functor's row(), which the GPU runs.
#include "helpers.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#if defined(MINIGRAD_ROWS8)

namespace {

namespace k = mg::kernels;

std::int64_t ulps_apart(float a, float b) {
    std::int32_t x, y;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    return std::llabs(static_cast<long long>(x) - static_cast<long long>(y));
}

[[gnu::target("avx2,fma")]] float log8_lane0(float x) { return k::rows8::log(k::rows8::f32x8{} + x)[0]; }
[[gnu::target("avx2,fma")]] float exp8_lane0(float x) { return k::rows8::exp(k::rows8::f32x8{} + x)[0]; }
// exp_float as the CPU runs it where rows8 is used: compiled for AVX2+FMA (contracted the same way)
[[gnu::target("avx2,fma")]] float exp1_avx2(float x) { return k::exp_float(x); }
// A row functor one row per call, as Cpu::launch does on an AVX2 CPU (so rounding is comparable)
template <class F>
[[gnu::target("avx2,fma")]] void each_row_avx2(const F& f, std::int64_t rows) {
    for (std::int64_t r = 0; r < rows; ++r) f(r);
}

}  // namespace

TEST_CASE("rows8: log is within 1 ulp of the exact logarithm, exp is exp_float lane by lane") {
    if (!mg::Cpu::has_avx2_fma()) return;  // the path is never taken on this CPU
    std::int64_t worst = 0;
    float worst_at = 0;
    // every 1009th float from the smallest normal to the largest finite
    for (std::uint32_t bits = 0x00800000u; bits < 0x7f800000u; bits += 1009u) {
        float x;
        std::memcpy(&x, &bits, sizeof x);
        const auto u = ulps_apart(log8_lane0(x), static_cast<float>(std::log(static_cast<double>(x))));
        if (u > worst) worst = u, worst_at = x;
    }
    INFO("worst at x = " << worst_at);
    CHECK(worst <= 1);
    CHECK(log8_lane0(1.0f) == 0.0f);
    for (float x = -100.0f; x < 100.0f; x += 0.0137f) CHECK_MESSAGE(exp8_lane0(x) == exp1_avx2(x), "x = " << x);
    CHECK(exp8_lane0(std::numeric_limits<float>::quiet_NaN()) == exp1_avx2(std::numeric_limits<float>::quiet_NaN()));
}

template <bool Smoothed>
void check_cross_entropy_rows8() {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-30.0f, 30.0f);
    for (std::int64_t cols = 1; cols <= mg::Cpu::rows8_max_cols; ++cols) {
        for (std::int64_t rows : {8, 9, 23, 120}) {
            const auto n = static_cast<std::size_t>(rows * cols);
            std::vector<float> logits(n);
            for (auto& v : logits) v = dist(gen);
            std::vector<std::int32_t> target(static_cast<std::size_t>(rows));
            for (std::int64_t r = 0; r < rows; ++r) target[static_cast<std::size_t>(r)] = static_cast<std::int32_t>((r * 7) % cols);
            target[5] = -100;  // ignore_index: the row's loss is 0
            if (rows > 20) {  // what row() does with what the op's checks would refuse: the same here
                logits[3] = std::numeric_limits<float>::quiet_NaN();
                logits[static_cast<std::size_t>(9 * cols)] = std::numeric_limits<float>::infinity();
                target[2] = -1;
                target[4] = static_cast<std::int32_t>(cols);
            }
            std::vector<float> loss8(static_cast<std::size_t>(rows)), loss1(loss8), grad8(n), grad1(n);
            using F = k::CrossEntropyForward<float, std::int32_t, Smoothed>;
            const float smoothing = Smoothed ? 0.1f : 0.0f;
            mg::Cpu::launch_rows(rows, cols, F{logits.data(), target.data(), loss8.data(), grad8.data(), cols, -100, smoothing}, 0);
            each_row_avx2(F{logits.data(), target.data(), loss1.data(), grad1.data(), cols, -100, smoothing}, rows);
            CAPTURE(Smoothed);
            CAPTURE(cols);
            CAPTURE(rows);
            CHECK(loss8[5] == 0.0f);
            for (std::int64_t c = 0; c < cols; ++c) CHECK(grad8[static_cast<std::size_t>(5 * cols + c)] == 0.0f);  // ignored
            // softmax - onehot: exps within 1 ulp, times 1 / sum within a few ulp, then a subtraction
            // of 0 or about 1, so an absolute bound (the gradient lies in [-1, 1])
            for (std::size_t i = 0; i < n; ++i) {
                CAPTURE(i);
                if (std::isnan(grad1[i]))
                    CHECK(std::isnan(grad8[i]));
                else
                    CHECK(std::abs(grad8[i] - grad1[i]) <= 4e-7f);
            }
            for (std::size_t r = 0; r < loss8.size(); ++r) {
                CAPTURE(r);
                if (!std::isfinite(loss1[r])) {
                    CHECK((loss8[r] == loss1[r] || (std::isnan(loss8[r]) && std::isnan(loss1[r]))));
                } else {  // log differs from the C library's by at most 1 ulp; the loss by a few ulp of its terms
                    CHECK(loss8[r] == doctest::Approx(loss1[r]).epsilon(1e-6).scale(30));
                }
            }
        }
    }
}

TEST_CASE("rows8: cross_entropy's eight-row path matches its row path, widths 1..16, any row count, ignored rows, smoothing") {
    if (!mg::Cpu::has_avx2_fma()) return;
    check_cross_entropy_rows8<false>();
    check_cross_entropy_rows8<true>();
}

#endif  // MINIGRAD_ROWS8
