// The Cpu backend's large-shape paths: BLAS products against the built-in kernel in every mode, and
// launches split across threads against the same launches on one thread.
#include "helpers.hpp"

#include <cmath>
#include <cstdlib>
#include <random>

namespace {

// Restores the thread count a test changed.
struct ThreadCountGuard {
    int saved = mg::get_num_threads();
    ~ThreadCountGuard() { mg::set_num_threads(saved); }
};

}  // namespace

#if defined(MINIGRAD_HAS_BLAS)
TEST_CASE_TEMPLATE("gemm: BLAS matches the built-in kernel in every mode and at odd sizes", T, float, double) {
    ThreadCountGuard guard;
    struct Size {
        std::int64_t m, n, k;
    };
    std::vector<Size> sizes;
    for (std::int64_t m : {1, 3, 17})
        for (std::int64_t n : {1, 3, 17})
            for (std::int64_t k : {1, 3, 17}) sizes.push_back({m, n, k});
    // 1000 along each axis, and a product large enough to be split across threads by rows and by columns
    for (Size s : {Size{1000, 17, 3}, Size{3, 1000, 17}, Size{17, 3, 1000}, Size{1000, 1000, 3}, Size{17, 1000, 1000}})
        sizes.push_back(s);
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    for (int threads : {1, 2}) {
        mg::set_num_threads(threads);
        for (const auto& s : sizes) {
            const auto a = uniform_values<T>(s.m * s.k, 1), b = uniform_values<T>(s.k * s.n, 2), bias = uniform_values<T>(s.n, 3);
            const auto c0 = uniform_values<T>(s.m * s.n, 4);
            for (int mode = 0; mode < 16; ++mode) {
                const bool trans_a = mode & 1, trans_b = mode & 2, with_bias = mode & 4, overwrite = mode & 8;
                auto mine = c0, theirs = c0;
                auto element = [&](std::vector<T>& c) {
                    return mg::kernels::GemmElement<T>{a.data(), b.data(), with_bias ? bias.data() : nullptr, c.data(), s.m, s.n, s.k,
                                                       trans_a, trans_b, overwrite};
                };
                mg::Cpu::gemm_builtin(element(mine));
                mg::Cpu::gemm_blas(element(theirs));
                // each output is a sum of k products of values in [-1, 1], plus the bias and old value
                const double tol = eps * static_cast<double>(s.k + 2);
                double worst = 0;
                for (std::size_t i = 0; i < mine.size(); ++i) worst = std::max(worst, std::abs(double(mine[i]) - double(theirs[i])));
                INFO("threads ", threads, ", m x n x k = ", s.m, " x ", s.n, " x ", s.k, ", trans_a ", trans_a, ", trans_b ", trans_b,
                     ", bias ", with_bias, ", overwrite ", overwrite);
                CHECK(worst <= tol);
            }
        }
    }
}

TEST_CASE("gemm: the dispatch sends wide products to BLAS and narrow ones to the built-in kernel") {
    // A built-in result differs from BLAS's in the last bits somewhere in a 64x64x1000 product (OpenBLAS adds k in blocks); the
    // op's result must equal the BLAS one exactly, and a narrow product the built-in one exactly.
    for (std::int64_t n : {64, 10}) {
        const std::int64_t m = 64, k = 1000;
        const auto a = uniform_values<float>(m * k, 5), b = uniform_values<float>(k * n, 6);
        std::vector<float> via_op(m * n), blas(m * n), builtin(m * n);
        auto element = [&](std::vector<float>& c) { return mg::kernels::GemmElement<float>{a.data(), b.data(), nullptr, c.data(), m, n, k, false, false, true}; };
        mg::Cpu::gemm(element(via_op), 0);
        mg::Cpu::gemm_blas(element(blas));
        mg::Cpu::gemm_builtin(element(builtin));
        INFO("n = ", n);
        CHECK((via_op == (n > 16 ? blas : builtin)));
        if (n > 16) CHECK(blas != builtin);  // else the check above could not tell the two apart
    }
}
#endif

#if !defined(_OPENMP)
TEST_CASE("threads: without OpenMP get_num_threads() is 1, the one thread every launch runs on") {
    ThreadCountGuard guard;
    const auto ranges_in_large_launch = [] {
        int ranges = 0;
        mg::detail::parallel_ranges(std::int64_t{1} << 20, std::int64_t{1} << 20, [&](std::int64_t, std::int64_t) { ++ranges; });
        return ranges;
    };
    const char* old = std::getenv("MINIGRAD_NUM_THREADS");
    const std::string saved = old ? old : "";
    mg::detail::num_threads_setting().store(0);
    ::unsetenv("MINIGRAD_NUM_THREADS");
    CHECK(mg::get_num_threads() == 1);
    CHECK(ranges_in_large_launch() == 1);
    mg::detail::num_threads_setting().store(0);
    ::setenv("MINIGRAD_NUM_THREADS", "5", 1);
    CHECK(mg::get_num_threads() == 1);
    if (old) ::setenv("MINIGRAD_NUM_THREADS", saved.c_str(), 1);
    else ::unsetenv("MINIGRAD_NUM_THREADS");

    // set_num_threads still takes a count (and still rejects a bad one): it has no effect here.
    mg::set_num_threads(3);
    CHECK(mg::get_num_threads() == 1);
    CHECK(ranges_in_large_launch() == 1);
    CHECK(error_message([] { mg::set_num_threads(0); }) == "set_num_threads: argument #1 'n' is 0, expected at least 1");
}
#else
TEST_CASE("threads: set_num_threads and MINIGRAD_NUM_THREADS") {
    ThreadCountGuard guard;
    mg::set_num_threads(3);
    CHECK(mg::get_num_threads() == 3);
    CHECK(error_message([] { mg::set_num_threads(0); }) == "set_num_threads: argument #1 'n' is 0, expected at least 1");
    CHECK(mg::get_num_threads() == 3);

    // The environment is read when nothing has been set yet.
    const char* old = std::getenv("MINIGRAD_NUM_THREADS");
    const std::string saved = old ? old : "";
    mg::detail::num_threads_setting().store(0);
    ::setenv("MINIGRAD_NUM_THREADS", "5", 1);
    CHECK(mg::get_num_threads() == 5);
    mg::detail::num_threads_setting().store(0);
    ::setenv("MINIGRAD_NUM_THREADS", "two", 1);
    CHECK(error_message([] { mg::get_num_threads(); }) ==
          "MINIGRAD_NUM_THREADS is 'two', expected a whole number of threads from 1 to 4096");
    mg::detail::num_threads_setting().store(0);
    ::unsetenv("MINIGRAD_NUM_THREADS");
    CHECK(mg::get_num_threads() == mg::detail::cores_available());
    if (old) ::setenv("MINIGRAD_NUM_THREADS", saved.c_str(), 1);
}
#endif

namespace {

// One forward and backward pass of ops whose launches are big enough to be split (rows x cols
// elements, rows rows), run with the given thread count; returns every value and gradient.
std::vector<std::vector<float>> large_pass(int threads) {
    mg::set_num_threads(threads);
    const std::int64_t rows = 4096, cols = 40;
    auto x = mg::Tensor<mg::Cpu, float>::from(uniform_values<float>(rows * cols, 7), mg::Shape{rows, cols});
    auto bias = mg::Tensor<mg::Cpu, float>::from(uniform_values<float>(cols, 8), mg::Shape{cols});
    x.requires_grad_();
    bias.requires_grad_();
    std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) labels[static_cast<std::size_t>(r)] = static_cast<std::int32_t>((r * 7) % cols);
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    auto h = mg::relu(x + bias);
    auto loss = mg::cross_entropy(h, y) + mg::mean(mg::log_softmax(h));
    loss.backward();
    const auto classes = mg::argmax(h, 1).to_vector();
    return {h.to_vector(), loss.to_vector(), x.grad().to_vector(), bias.grad().to_vector(), std::vector<float>(classes.begin(), classes.end())};
}

}  // namespace

TEST_CASE("threads: large launches give the same bits on one thread and on several, and count once") {
    ThreadCountGuard guard;
    const auto one = large_pass(1);
    for (int threads : {2, 3}) {
        INFO("threads ", threads);
        const auto many = large_pass(threads);
        REQUIRE(many.size() == one.size());
        for (std::size_t i = 0; i < one.size(); ++i) {
            CAPTURE(i);
            CHECK((many[i] == one[i]));
        }
    }
    mg::set_num_threads(2);
    std::vector<float> data(1 << 18, -1.0f), out(1 << 18);
    mg::reset_counters();
    mg::Cpu::launch(std::int64_t{1} << 18, mg::kernels::UnaryForward<float, mg::kernels::Relu<float>>{data.data(), out.data(), {}}, 0);
    CHECK(mg::counters().kernel_launches == 1);
    CHECK(out == std::vector<float>(1 << 18, 0.0f));
}

TEST_CASE("threads: a large sum is the same for any thread count and close to the exact sum") {
    ThreadCountGuard guard;
    const std::int64_t n = 1000003;  // several chunks and a partial one
    const auto values = uniform_values<float>(n, 9);
    double exact = 0;
    for (float v : values) exact += v;
    float first = 0;
    for (int threads : {1, 2, 3, 1, 2}) {
        mg::set_num_threads(threads);
        float out = 0;
        mg::Cpu::sum(values.data(), n, &out, 1.0f, true, 0);
        INFO("threads ", threads);
        if (threads == 1 && first == 0) first = out;
        CHECK(out == first);
        CHECK(std::abs(double(out) - exact) <= 1e-2);  // float sums of 65536 values, then of 16 partials
    }
}

// The host loops some functors carry (range(begin, end): Permute's odometer, SumRows's row-wise
// column sums, GradNormChunks's four chunks at a time) against their per-index operator(), over
// ranges that start and end anywhere, as the threads' ranges do.
TEST_CASE("functors' host loops give operator()'s values over any range") {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> value(-2, 2);
    auto filled = [&](std::size_t n) {
        std::vector<float> v(n);
        for (auto& x : v) x = value(rng);
        return v;
    };
    auto ranges = [&](mg::kernels::index_t n) {
        std::vector<std::pair<mg::kernels::index_t, mg::kernels::index_t>> out{{0, n}, {0, 1}, {n - 1, n}};
        std::uniform_int_distribution<mg::kernels::index_t> at(0, n);
        for (int i = 0; i < 20; ++i) {
            auto a = at(rng), b = at(rng);
            out.emplace_back(std::min(a, b), std::max(a, b));
        }
        return out;
    };
    SUBCASE("Permute, the last dim kept and moved, written and added") {
        for (auto order : {std::vector<int>{0, 2, 1, 3}, std::vector<int>{3, 1, 0, 2}, std::vector<int>{0, 1, 2, 3}}) {
            const std::int64_t in_dims[4] = {3, 5, 2, 7};
            std::int64_t strides[4], dims[4], read[4], stride = 1;
            for (int d = 3; d >= 0; --d) {
                strides[d] = stride;
                stride *= in_dims[d];
            }
            for (int d = 0; d < 4; ++d) {
                dims[d] = in_dims[order[static_cast<std::size_t>(d)]];
                read[d] = strides[order[static_cast<std::size_t>(d)]];
            }
            const auto x = filled(210);
            for (bool overwrite : {true, false}) {
                for (auto [b, e] : ranges(210)) {
                    auto want = filled(210), got = want;
                    const mg::kernels::Permute<float> per{x.data(), want.data(), mg::kernels::strided_index(dims, read, 4), overwrite};
                    for (auto i = b; i < e; ++i) per(i);
                    mg::kernels::Permute<float>{x.data(), got.data(), per.at, overwrite}.range(b, e);
                    CHECK(got == want);
                }
            }
        }
    }
    SUBCASE("SumRows over 150 columns of 10 and 3 rows") {
        for (mg::kernels::index_t rows : {10, 3}) {
            const auto dy = filled(static_cast<std::size_t>(rows * 150));
            for (bool overwrite : {true, false}) {
                for (auto [b, e] : ranges(150)) {
                    auto want = filled(150), got = want;
                    const mg::kernels::SumRows<float> sum{dy.data(), want.data(), rows, 150, overwrite};
                    for (auto j = b; j < e; ++j) sum(j);
                    mg::kernels::SumRows<float>{dy.data(), got.data(), rows, 150, overwrite}.range(b, e);
                    CHECK(got == want);
                }
            }
        }
    }
    SUBCASE("GradNormChunks over three gradients") {
        auto a = filled(200), b = filled(7), c = filled(333);
        mg::kernels::GradTable<float> table{};
        table.grad[0] = a.data();
        table.grad[1] = b.data();
        table.grad[2] = c.data();
        table.offset[0] = 0;
        table.offset[1] = 200;
        table.offset[2] = 207;
        table.offset[3] = 540;
        table.count = 3;
        const mg::kernels::index_t chunks = (540 + 15) / 16;
        for (auto kind : {mg::kernels::NormKind::Square, mg::kernels::NormKind::Abs}) {
            for (auto [lo, hi] : ranges(chunks)) {
                std::vector<double> want(static_cast<std::size_t>(chunks), -1), got = want;
                const mg::kernels::GradNormChunks<float> norm{table, want.data(), 2.0, kind};
                for (auto i = lo; i < hi; ++i) norm(i);
                mg::kernels::GradNormChunks<float>{table, got.data(), 2.0, kind}.range(lo, hi);
                CHECK(got == want);
            }
        }
    }
}

#if defined(MINIGRAD_ROWS8)
// gelu's eight-lane loops (range8, what Cpu::run_avx2 runs) against its per-element rule, both
// forms, forward and backward, with ranges that end inside a vector.
TEST_CASE("gelu's AVX2 loops agree with its rule element by element") {
    if (!mg::Cpu::has_avx2_fma()) return;
    std::vector<float> x(203), dy(203);
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = -7.0f + 14.0f * static_cast<float>(i) / 202.0f;
        dy[i] = 0.5f + 0.01f * static_cast<float>(i);
    }
    for (bool tanh_form : {false, true}) {
        const mg::kernels::Gelu<float> rule{tanh_form};
        std::vector<float> y(x.size()), y8(x.size(), 9.0f), dx(x.size()), dx8(x.size(), 1.0f);
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = rule.forward(x[i]);
        mg::kernels::UnaryForward<float, mg::kernels::Gelu<float>>{x.data(), y8.data(), rule}.range8(3, 203);
        for (std::size_t i = 0; i < x.size(); ++i) dx[i] = 1.0f + rule.backward(x[i], y[i], dy[i]);
        mg::kernels::UnaryBackward<float, mg::kernels::Gelu<float>>{x.data(), y.data(), dy.data(), dx8.data(), rule, false}.range8(3, 203);
        for (std::size_t i = 0; i < 3; ++i) {  // outside the range: untouched
            CHECK(y8[i] == 9.0f);
            CHECK(dx8[i] == 1.0f);
        }
        for (std::size_t i = 3; i < x.size(); ++i) {
            CAPTURE(x[i]);
            CHECK(std::abs(y8[i] - y[i]) <= 1e-6f * (1.0f + std::abs(y[i])));
            CHECK(std::abs(dx8[i] - dx[i]) <= 1e-6f * (1.0f + std::abs(dx[i])));
        }
    }
}
#endif
