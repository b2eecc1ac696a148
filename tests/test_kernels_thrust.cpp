// The GPU's arithmetic, tested on the CPU: every functor CudaBackend launches (kernels.hpp) is run
// here through Thrust's CPP system, as thrust::for_each over the index range a kernel would cover,
// and compared with plain reference loops. CI has no GPU; this is what checks the kernels there.
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/cpp/execution_policy.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <thread>
#include <vector>

#include "helpers.hpp"

namespace k = minigrad::kernels;


template <class F>
static void run(std::int64_t n, const F& f) {
    thrust::for_each(thrust::cpp::par, thrust::counting_iterator<std::int64_t>(0), thrust::counting_iterator<std::int64_t>(n), f);
}

static std::vector<float> random_values(std::size_t n, std::uint64_t seed) {
    mg::Generator gen(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(gen.uniform(-2, 2));
    return v;
}

TEST_CASE("GemmElement (the GPU's matmul) equals a reference product in every transpose, bias and accumulate mode") {
    const std::int64_t m = 7, n = 5, kk = 6;
    const auto a = random_values(m * kk, 1), b = random_values(kk * n, 2), bias = random_values(n, 3), init = random_values(m * n, 4);
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (bool with_bias : {false, true})
                for (bool overwrite : {false, true}) {
                    CAPTURE(ta);
                    CAPTURE(tb);
                    CAPTURE(with_bias);
                    CAPTURE(overwrite);
                    std::vector<float> c = init;
                    run(m * n, k::GemmElement<float>{a.data(), b.data(), with_bias ? bias.data() : nullptr, c.data(), m, n, kk, ta, tb, overwrite});
                    for (std::int64_t r = 0; r < m; ++r)
                        for (std::int64_t j = 0; j < n; ++j) {
                            double ref = with_bias ? bias[j] : 0.0;
                            for (std::int64_t p = 0; p < kk; ++p) ref += double(ta ? a[p * m + r] : a[r * kk + p]) * (tb ? b[j * kk + p] : b[p * n + j]);
                            if (!overwrite) ref += init[r * n + j];
                            CHECK(c[r * n + j] == doctest::Approx(ref).epsilon(1e-5));
                        }
                    // ...and the CPU backend's own gemm agrees with it.
                    std::vector<float> cpu = init;
                    mg::Cpu::gemm(k::GemmElement<float>{a.data(), b.data(), with_bias ? bias.data() : nullptr, cpu.data(), m, n, kk, ta, tb, overwrite}, 0);
                    for (std::size_t i = 0; i < c.size(); ++i) CHECK(cpu[i] == doctest::Approx(c[i]).epsilon(1e-5));
                }
}

TEST_CASE("GemmSplitK then SumRows (the GPU's product with few outputs and a long k) equals GemmElement in every mode; gemm_k_splits cuts only such products") {
    const std::int64_t m = 3, n = 4, kk = 100;
    const auto a = random_values(m * kk, 11), b = random_values(kk * n, 12), bias = random_values(n, 13), init = random_values(m * n, 14);
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (bool with_bias : {false, true})
                for (bool overwrite : {false, true})
                    for (std::int64_t chunk : {7, 32, 100}) {
                        CAPTURE(ta);
                        CAPTURE(tb);
                        CAPTURE(with_bias);
                        CAPTURE(overwrite);
                        CAPTURE(chunk);
                        const k::GemmElement<float> g0{a.data(), b.data(), with_bias ? bias.data() : nullptr, nullptr, m, n, kk, ta, tb, overwrite};
                        std::vector<float> whole = init, split = init;
                        auto g = g0;
                        g.c = whole.data();
                        run(m * n, g);
                        g.c = split.data();
                        const std::int64_t ranges = (kk + chunk - 1) / chunk;
                        std::vector<float> partial(static_cast<std::size_t>(ranges * m * n), -1.0f);
                        run(ranges * m * n, k::GemmSplitK<float>{g, partial.data(), chunk});
                        run(m * n, k::SumRows<float>{partial.data(), split.data(), ranges, m * n, overwrite});
                        for (std::size_t i = 0; i < whole.size(); ++i) CHECK(split[i] == doctest::Approx(whole[i]).epsilon(1e-5));
                        if (chunk == kk) CHECK(split == whole);  // one range: the same sum in the same order
                    }
    // digits' second layer's weight gradient on a GPU that fills 270336 threads: 640 outputs over a
    // batch of 1797, cut into 56 ranges of 33 rows, not 640 threads walking all 1797
    CHECK(k::gemm_k_splits(640, 1797, 270336) == 56);
    CHECK(k::gemm_k_splits(640, 63, 270336) == 1);        // k too short to cut
    CHECK(k::gemm_k_splits(67584, 4096, 270336) == 1);    // outputs already a quarter of the threads
    CHECK(k::gemm_k_splits(10, 1 << 20, 270336) == 27033);  // as many as fill the threads
}

TEST_CASE("GemmThen (a product with an activation's gradient as its epilogue) equals the product, then the gradient; so does Cpu::gemm_then") {
    const std::int64_t m = 9, n = 6, kk = 4;
    const auto dy = random_values(m * kk, 21), w = random_values(n * kk, 22), z = random_values(m * n, 23), init = random_values(m * n, 24);
    std::vector<float> h(m * n);
    run(m * n, k::UnaryForward<float, k::Tanh<float>>{z.data(), h.data(), {}});
    for (bool overwrite : {false, true}) {
        CAPTURE(overwrite);
        // two launches: dh = dy w (m, n), then dz = tanh's gradient of dh
        std::vector<float> dh_two(m * n), dz_two = init;
        const k::GemmElement<float> two{dy.data(), w.data(), nullptr, dh_two.data(), m, n, kk, false, true, true};
        run(m * n, two);
        run(m * n, k::UnaryBackward<float, k::Tanh<float>>{z.data(), h.data(), dh_two.data(), dz_two.data(), {}, overwrite});
        // one launch
        std::vector<float> dh(m * n), dz = init;
        k::GemmElement<float> g = two;
        g.c = dh.data();
        const k::UnaryBackward<float, k::Tanh<float>> f{z.data(), h.data(), dh.data(), dz.data(), {}, overwrite};
        run(m * n, k::GemmThen<float, decltype(f)>{g, f});
        CHECK(dh == dh_two);
        CHECK(dz == dz_two);
        for (std::int64_t i = 0; i < m * n; ++i)
            CHECK(dz[i] == doctest::Approx((overwrite ? 0.0 : init[i]) + double(dh_two[i]) * (1.0 - double(h[i]) * h[i])).epsilon(1e-6));
        // the CPU backend's: its own product kernel (not GemmElement's order), then the same gradient
        std::vector<float> cpu_dh(m * n), cpu_dz = init;
        g.c = cpu_dh.data();
        mg::Cpu::gemm_then(g, k::UnaryBackward<float, k::Tanh<float>>{z.data(), h.data(), cpu_dh.data(), cpu_dz.data(), {}, overwrite}, 0);
        for (std::int64_t i = 0; i < m * n; ++i) {
            CHECK(cpu_dh[i] == doctest::Approx(dh[i]).epsilon(1e-5));
            CHECK(cpu_dz[i] == doctest::Approx(dz[i]).epsilon(1e-5));
        }
    }
}

TEST_CASE("elementwise kernels: add with a broadcast row, relu forward/backward, gradient accumulation") {
    const auto a = random_values(12, 5), row = random_values(4, 6), dy = random_values(12, 7);
    std::vector<float> y(12);
    const auto read_a = mg::detail::operand<k::Read::same>(a.data(), mg::Shape{3, 4}, mg::Shape{3, 4});
    const auto read_row = mg::detail::operand<k::Read::row>(row.data(), mg::Shape{4}, mg::Shape{3, 4});
    run(12, k::BinaryForward<float, k::Add<float>, decltype(read_a), decltype(read_row)>{read_a, read_row, y.data()});
    for (int i = 0; i < 12; ++i) CHECK(y[i] == a[i] + row[i % 4]);
    run(12, k::UnaryForward<float, k::Relu<float>>{a.data(), y.data(), {}});
    for (int i = 0; i < 12; ++i) CHECK(y[i] == (a[i] > 0 ? a[i] : 0.0f));
    std::vector<float> dx(12, 1.0f);
    run(12, k::UnaryBackward<float, k::Relu<float>>{a.data(), y.data(), dy.data(), dx.data(), {}, false});
    for (int i = 0; i < 12; ++i) CHECK(dx[i] == 1.0f + (y[i] > 0 ? dy[i] : 0.0f));
    run(12, k::AccumulateGrad<float>{dy.data(), dx.data(), true});
    CHECK(dx == dy);
    std::vector<float> db(4, 0.5f);
    run(4, k::SumRows<float>{dy.data(), db.data(), 3, 4, false});
    for (int j = 0; j < 4; ++j) CHECK(db[j] == doctest::Approx(0.5f + dy[j] + dy[4 + j] + dy[8 + j]));
    std::vector<float> scalar{3.0f}, out(5, 1.0f);
    run(5, k::BroadcastScalarGrad<float>{scalar.data(), out.data(), 0.5f, false});
    CHECK(out == std::vector<float>(5, 2.5f));
    run(5, k::Fill<float>{out.data(), 7.0f});
    run(5, k::AddScalar<float>{out.data(), 1.0f, false});
    CHECK(out == std::vector<float>(5, 8.0f));
}

TEST_CASE("broadcast kernels: a [3, 1] / [1, 4] division read through strides, both gradients summed back") {
    // a is (3, 1), b is (1, 4), y and dy are (3, 4)
    const mg::Shape sa{3, 1}, sb{1, 4}, out{3, 4};
    const auto a = random_values(3, 20), dy = random_values(12, 22);
    std::vector<float> b = random_values(4, 21);
    for (auto& v : b) v = 0.5f + std::abs(v);  // a divisor away from 0
    const auto read_a = mg::detail::operand<k::Read::strided>(a.data(), sa, out);
    const auto read_b = mg::detail::operand<k::Read::strided>(b.data(), sb, out);
    using Div = k::Div<float>;
    std::vector<float> y(12), share_a(12), share_b(12);
    run(12, k::BinaryForward<float, Div, decltype(read_a), decltype(read_b)>{read_a, read_b, y.data()});
    run(12, k::BinaryBackward<float, Div, 0, decltype(read_a), decltype(read_b)>{read_a, read_b, dy.data(), share_a.data(), true});
    run(12, k::BinaryBackward<float, Div, 1, decltype(read_a), decltype(read_b)>{read_a, read_b, dy.data(), share_b.data(), true});
    std::vector<float> da(3, 1.0f), db(4, 1.0f);  // added to
    // SumBroadcast's two indexes: over the dims the operand keeps, and the dims it stretches
    const auto index = [](std::initializer_list<std::int64_t> dims, std::initializer_list<std::int64_t> strides) {
        return k::strided_index(dims.begin(), strides.begin(), static_cast<int>(dims.size()));
    };
    run(3, k::SumBroadcast<float>{share_a.data(), da.data(), index({3}, {4}), index({4}, {1}), 4, false});
    run(4, k::SumBroadcast<float>{share_b.data(), db.data(), index({4}, {1}), index({3}, {4}), 3, false});
    for (int r = 0; r < 3; ++r) {
        double ref_da = 1;
        for (int c = 0; c < 4; ++c) {
            CHECK(y[r * 4 + c] == doctest::Approx(a[r] / b[c]).epsilon(1e-6));
            ref_da += double(dy[r * 4 + c]) / b[c];
        }
        CHECK(da[r] == doctest::Approx(ref_da).epsilon(1e-5));
    }
    for (int c = 0; c < 4; ++c) {
        double ref_db = 1;
        for (int r = 0; r < 3; ++r) ref_db += -double(dy[r * 4 + c]) * a[r] / (double(b[c]) * b[c]);
        CHECK(db[c] == doctest::Approx(ref_db).epsilon(1e-5));
    }
    // a (2, 3, 4) tensor summed over its first and last dims down to (1, 3, 1)
    const auto g = random_values(24, 23);
    std::vector<float> middle(3);
    run(3, k::SumBroadcast<float>{g.data(), middle.data(), index({3}, {4}), index({2, 4}, {12, 1}), 8, true});
    for (int j = 0; j < 3; ++j) {
        double ref = 0;
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < 4; ++c) ref += g[(i * 3 + j) * 4 + c];
        CHECK(middle[j] == doctest::Approx(ref).epsilon(1e-5));
    }
}

TEST_CASE("unary kernels: gelu, sigmoid, clamp, pow, sin and cos against reference math in double") {
    const auto x = random_values(16, 30), dy = random_values(16, 31);
    std::vector<float> y(16), dx(16);
    const auto check_rule = [&](auto rule, auto forward, auto derivative) {
        using Rule = decltype(rule);
        run(16, k::UnaryForward<float, Rule>{x.data(), y.data(), rule});
        run(16, k::UnaryBackward<float, Rule>{x.data(), y.data(), dy.data(), dx.data(), rule, true});
        for (int i = 0; i < 16; ++i) {
            CAPTURE(Rule::name);
            CAPTURE(x[i]);
            CHECK(y[i] == doctest::Approx(forward(double(x[i]))).epsilon(1e-5).scale(1e-6));
            CHECK(dx[i] == doctest::Approx(dy[i] * derivative(double(x[i]))).epsilon(1e-5).scale(1e-6));
        }
    };
    const auto gelu = [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); };
    check_rule(k::Gelu<float>{true}, gelu, [&](double v) { return (gelu(v + 1e-6) - gelu(v - 1e-6)) / 2e-6; });
    const auto gelu_exact = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
    check_rule(k::Gelu<float>{false}, gelu_exact, [&](double v) { return (gelu_exact(v + 1e-6) - gelu_exact(v - 1e-6)) / 2e-6; });
    check_rule(k::Sigmoid<float>{}, [](double v) { return 1 / (1 + std::exp(-v)); },
               [](double v) { return std::exp(-v) / ((1 + std::exp(-v)) * (1 + std::exp(-v))); });
    check_rule(k::Clamp<float>{-0.5f, 1.0f}, [](double v) { return std::min(std::max(v, -0.5), 1.0); },
               [](double v) { return v >= -0.5 && v <= 1.0 ? 1.0 : 0.0; });
    check_rule(k::Pow<float>{3.0f}, [](double v) { return v * v * v; }, [](double v) { return 3 * v * v; });
    check_rule(k::Sin<float>{}, [](double v) { return std::sin(v); }, [](double v) { return std::cos(v); });
    check_rule(k::Cos<float>{}, [](double v) { return std::cos(v); }, [](double v) { return -std::sin(v); });
}

TEST_CASE("row kernels: log_softmax, cross_entropy and argmax (MaxDim over rows) against reference math") {
    const std::int64_t rows = 6, cols = 4;
    const auto x = random_values(rows * cols, 8), dy = random_values(rows * cols, 9);
    const std::vector<std::int32_t> target{0, 3, 1, 2, 2, 0};
    std::vector<float> y(rows * cols), dx(rows * cols), row_loss(rows), grad(rows * cols), dlogits(rows * cols);
    std::vector<std::int32_t> best(rows);
    run(rows, k::LogSoftmaxForward<float>{x.data(), y.data(), cols});
    run(rows, k::LogSoftmaxBackward<float>{y.data(), dy.data(), dx.data(), cols, true});
    run(rows, k::CrossEntropyForward<float, std::int32_t>{x.data(), target.data(), row_loss.data(), grad.data(), cols, -100, 0.0f});
    const std::vector<float> dloss{2.0f};
    const float inv_rows = 1.0f / rows;
    run(rows, k::CrossEntropyBackward<float, std::int32_t>{grad.data(), target.data(), dloss.data(), dlogits.data(), cols, &inv_rows, true, -100});
    run(rows, k::MaxDim<float, std::int32_t>{x.data(), nullptr, best.data(), cols, 1});
    for (std::int64_t r = 0; r < rows; ++r) {
        double lse = 0, dsum = 0;
        for (std::int64_t c = 0; c < cols; ++c) lse += std::exp(double(x[r * cols + c]));
        lse = std::log(lse);
        for (std::int64_t c = 0; c < cols; ++c) dsum += dy[r * cols + c];
        std::int64_t arg = 0;
        for (std::int64_t c = 0; c < cols; ++c) {
            const auto i = r * cols + c;
            const double p = std::exp(x[i] - lse);
            CHECK(y[i] == doctest::Approx(x[i] - lse).epsilon(1e-5));
            CHECK(dx[i] == doctest::Approx(dy[i] - p * dsum).epsilon(1e-5));
            CHECK(grad[i] == doctest::Approx(p - (target[r] == c)).epsilon(1e-5));
            CHECK(dlogits[i] == doctest::Approx((p - (target[r] == c)) * 2.0 / rows).epsilon(1e-5));
            if (x[i] > x[r * cols + arg]) arg = c;
        }
        CHECK(row_loss[r] == doctest::Approx(lse - x[r * cols + target[r]]).epsilon(1e-5));
        CHECK(best[r] == arg);
    }
}

TEST_CASE("CrossEntropyForward never reads outside its row for a bad label (the GPU reports it later)") {
    const std::vector<float> x{1, 2, 3, 4, 5, 6};
    const std::vector<std::int32_t> target{0, 7};
    std::vector<float> row_loss(2), grad(6);
    run(2, k::CrossEntropyForward<float, std::int32_t>{x.data(), target.data(), row_loss.data(), grad.data(), 3, -100, 0.0f});
    CHECK(std::isfinite(row_loss[1]));
    CHECK(row_loss[0] == doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 1).epsilon(1e-5));
}

TEST_CASE("cross-entropy with label smoothing and ignore_index, and nll, per row (reduction none), against reference math") {
    const std::int64_t rows = 5, cols = 4;
    const auto x = random_values(rows * cols, 40), dy = random_values(rows, 41);
    const std::vector<std::int32_t> target{1, -100, 3, 0, 2};
    const float e = 0.1f;
    std::vector<float> row_loss(rows), grad(rows * cols), dlogits(rows * cols, 9.0f), nll(rows), dlogp(rows * cols, 9.0f);
    run(rows, k::CrossEntropyForward<float, std::int32_t, true>{x.data(), target.data(), row_loss.data(), grad.data(), cols, -100, e});
    // reduction none: the upstream gradient is per row, no scale
    run(rows, k::CrossEntropyBackward<float, std::int32_t, mg::Reduction::None>{grad.data(), target.data(), dy.data(), dlogits.data(), cols,
                                                                                nullptr, true, -100});
    run(rows, k::NllForward<float, std::int32_t>{x.data(), target.data(), nll.data(), cols, -100});
    run(rows, k::NllBackward<float, std::int32_t>{target.data(), dy.data(), dlogp.data(), cols, -100, nullptr, true, true});
    for (std::int64_t r = 0; r < rows; ++r) {
        CAPTURE(r);
        double lse = 0, mean_x = 0;
        for (std::int64_t c = 0; c < cols; ++c) lse += std::exp(double(x[r * cols + c])), mean_x += x[r * cols + c] / double(cols);
        lse = std::log(lse);
        const bool ignored = target[r] == -100;
        const double expected = ignored ? 0.0 : (1 - e) * (lse - x[r * cols + target[r]]) + e * (lse - mean_x);
        CHECK(row_loss[r] == doctest::Approx(expected).epsilon(1e-5));
        CHECK(nll[r] == (ignored ? 0.0f : -x[r * cols + target[r]]));
        for (std::int64_t c = 0; c < cols; ++c) {
            const auto i = r * cols + c;
            const double p = std::exp(x[i] - lse), hit = c == target[r] ? 1.0 : 0.0;
            CHECK(dlogits[i] == doctest::Approx(ignored ? 0.0 : (p - (1 - e) * hit - e / cols) * dy[r]).epsilon(1e-5));
            CHECK(dlogp[i] == (ignored ? 0.0f : -static_cast<float>(hit) * dy[r]));
        }
    }
}

TEST_CASE("pointwise losses (mse, l1, bce with logits and pos_weight): values and derivatives against reference math") {
    const std::int64_t rows = 3, cols = 4, n = rows * cols;
    const auto x = random_values(n, 50), y = random_values(n, 51);
    std::vector<float> prob(n), pw{0.5f, 1.0f, 2.0f, 3.0f};
    for (std::int64_t i = 0; i < n; ++i) prob[i] = (y[i] + 2) / 4;  // in [0, 1]
    const std::vector<float> dloss{0.5f};
    std::vector<float> out(n), dx(n), dt(n, 1.0f), dw(n);
    run(n, k::PointwiseLossForward<float, k::MseRule>{x.data(), y.data(), nullptr, out.data(), cols});
    run(n, k::PointwiseLossBackward<float, k::MseRule>{x.data(), y.data(), nullptr, dloss.data(), dx.data(), cols, 0.25f, k::LossArg::Input, false, true});
    run(n, k::PointwiseLossBackward<float, k::MseRule>{x.data(), y.data(), nullptr, dloss.data(), dt.data(), cols, 0.25f, k::LossArg::Target, false, false});
    for (std::int64_t i = 0; i < n; ++i) {
        const double diff = double(x[i]) - y[i];
        CHECK(out[i] == doctest::Approx(diff * diff).epsilon(1e-6));
        CHECK(dx[i] == doctest::Approx(2 * diff * 0.5 * 0.25).epsilon(1e-6));
        CHECK(dt[i] == doctest::Approx(1 - 2 * diff * 0.5 * 0.25).epsilon(1e-6));
    }
    run(n, k::PointwiseLossForward<float, k::L1Rule>{x.data(), y.data(), nullptr, out.data(), cols});
    run(n, k::PointwiseLossBackward<float, k::L1Rule>{x.data(), x.data(), nullptr, dloss.data(), dx.data(), cols, 1.0f, k::LossArg::Input, false, true});
    for (std::int64_t i = 0; i < n; ++i) {
        CHECK(out[i] == std::abs(x[i] - y[i]));
        CHECK(dx[i] == 0.0f);  // x against itself: sign(0) = 0
    }
    // bce with logits, per element (reduction none): dloss is (n)
    const auto dper = random_values(n, 52);
    run(n, k::PointwiseLossForward<float, k::BceWithLogitsRule>{x.data(), prob.data(), pw.data(), out.data(), cols});
    run(n, k::PointwiseLossBackward<float, k::BceWithLogitsRule>{x.data(), prob.data(), pw.data(), dper.data(), dx.data(), cols, 1.0f, k::LossArg::Input, true, true});
    run(n, k::PointwiseLossBackward<float, k::BceWithLogitsRule>{x.data(), prob.data(), pw.data(), dper.data(), dt.data(), cols, 1.0f, k::LossArg::Target, true, true});
    run(n, k::PointwiseLossBackward<float, k::BceWithLogitsRule>{x.data(), prob.data(), pw.data(), dper.data(), dw.data(), cols, 1.0f, k::LossArg::Weight, true, true});
    for (std::int64_t i = 0; i < n; ++i) {
        const double s = 1 / (1 + std::exp(-double(x[i]))), t = prob[i], w = pw[i % cols];
        CHECK(out[i] == doctest::Approx(-(w * t * std::log(s) + (1 - t) * std::log(1 - s))).epsilon(1e-5));
        CHECK(dx[i] == doctest::Approx(((1 - t) - (1 + (w - 1) * t) * (1 - s)) * dper[i]).epsilon(1e-5));
        CHECK(dt[i] == doctest::Approx((-std::log(s) * w + std::log(1 - s)) * dper[i]).epsilon(1e-5));
        CHECK(dw[i] == doctest::Approx(-t * std::log(s) * dper[i]).epsilon(1e-5));
    }
}

TEST_CASE("RecordScalar and SetLogStorage: a log appends, grows, and never writes past its capacity") {
    std::vector<float> first(2), second(4);
    k::LogSlots slots{first.data(), 0, 2};
    const std::vector<float> loss{1.5f};
    run(1, k::RecordScalar<float>{loss.data(), &slots});
    run(1, k::RecordScalar<float>{loss.data(), &slots});
    run(1, k::RecordScalar<float>{loss.data(), &slots});  // past capacity: counted, not written
    CHECK(slots.count == 3);
    CHECK(first == std::vector<float>{1.5f, 1.5f});
    run(1, k::SetLogStorage{&slots, second.data(), 4});
    CHECK(slots.values == second.data());
    CHECK(slots.capacity == 4);
    CHECK(slots.count == 3);
}

TEST_CASE("column sums in two passes (SumRowsPartial then SumRows, the GPU's bias gradient) equal one pass and a reference") {
    for (std::int64_t rows : {1, 3, 37, 1000})
        for (std::int64_t cols : {1, 5, 17})
            for (std::int64_t chunk_rows : {1, 4, 8, 33})
                for (bool overwrite : {false, true}) {
                    CAPTURE(rows);
                    CAPTURE(cols);
                    CAPTURE(chunk_rows);
                    CAPTURE(overwrite);
                    const auto dy = random_values(static_cast<std::size_t>(rows * cols), 20);
                    const auto init = random_values(static_cast<std::size_t>(cols), 21);
                    const std::int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
                    std::vector<float> partial(static_cast<std::size_t>(chunks * cols), -99.0f), two = init, one = init;
                    run(chunks * cols, k::SumRowsPartial<float>{dy.data(), partial.data(), rows, cols, chunk_rows});
                    run(cols, k::SumRows<float>{partial.data(), two.data(), chunks, cols, overwrite});
                    run(cols, k::SumRows<float>{dy.data(), one.data(), rows, cols, overwrite});
                    for (std::int64_t j = 0; j < cols; ++j) {
                        double ref = overwrite ? 0.0 : init[j], magnitude = 1;
                        for (std::int64_t r = 0; r < rows; ++r) ref += dy[r * cols + j], magnitude += std::abs(dy[r * cols + j]);
                        CHECK(std::abs(two[j] - ref) <= 1e-6 * magnitude);
                        CHECK(std::abs(two[j] - one[j]) <= 1e-6 * magnitude);
                    }
                }
}

TEST_CASE("ScaleWrite and BroadcastRow: the last step of a large sum, and a bias put in place before a library product") {
    const std::vector<float> total{4.0f};
    std::vector<float> out{1.0f};
    run(1, k::ScaleWrite<float>{total.data(), out.data(), 0.25f, false});
    CHECK(out[0] == 2.0f);
    run(1, k::ScaleWrite<float>{total.data(), out.data(), 0.5f, true});
    CHECK(out[0] == 2.0f);
    const std::vector<float> inv_count{0.125f};  // a scale only the device knows: 1 / the rows a mean counts
    run(1, k::ScaleWrite<float>{total.data(), out.data(), 2.0f, true, inv_count.data()});
    CHECK(out[0] == 1.0f);
    const std::vector<float> row{1, 2, 3};
    std::vector<float> y(6, 10.0f);
    run(6, k::BroadcastRow<float>{row.data(), y.data(), 3, false});
    CHECK(y == std::vector<float>{11, 12, 13, 11, 12, 13});
    run(6, k::BroadcastRow<float>{row.data(), y.data(), 3, true});
    CHECK(y == std::vector<float>{1, 2, 3, 1, 2, 3});
}

// A team of real threads, as a GPU warp is for row<Lanes>: each lane posts its value, waits for
// the others, and combines them all in lane order.
struct ThreadTeam {
    std::barrier<>* sync;
    std::vector<double>* slots;
    int lane, lanes;
    template <class T>
    T combine(T v, bool is_max) const {
        (*slots)[static_cast<std::size_t>(lane)] = v;
        sync->arrive_and_wait();
        T out = static_cast<T>((*slots)[0]);
        for (int l = 1; l < lanes; ++l) {
            const T other = static_cast<T>((*slots)[static_cast<std::size_t>(l)]);
            out = is_max ? (other > out ? other : out) : out + other;
        }
        sync->arrive_and_wait();
        return out;
    }
    template <class T>
    T max(T v) const { return combine(v, true); }
    template <class T>
    T sum(T v) const { return combine(v, false); }
};

template <int Lanes, class F>
static void run_lanes(std::int64_t rows, const F& f) {
    std::barrier<> sync(Lanes);
    std::vector<double> slots(Lanes);
    std::vector<std::thread> lanes;
    for (int lane = 0; lane < Lanes; ++lane)
        lanes.emplace_back([&, lane] {
            for (std::int64_t r = 0; r < rows; ++r) f.template row<Lanes>(r, lane, ThreadTeam{&sync, &slots, lane, Lanes});
        });
    for (auto& t : lanes) t.join();
}

TEST_CASE("row functors shared by several lanes (the GPU's warp per row) match one thread per row") {
    for (std::int64_t cols : {1, 3, 4, 5, 37}) {
        CAPTURE(cols);
        const std::int64_t rows = 5;
        const auto x = random_values(rows * cols, 30), dy = random_values(rows * cols, 31);
        const std::vector<std::int32_t> target{0, static_cast<std::int32_t>(cols - 1), 0, static_cast<std::int32_t>(cols / 2), 0};
        const std::vector<float> dloss{1.5f};
        const float inv_rows = 1.0f / rows;
        auto both = [&](auto make, std::size_t n_out) {  // make(out) -> functor writing out (n_out)
            std::vector<float> solo(n_out, 0.5f), team(n_out, 0.5f);
            run(rows, make(solo));
            run_lanes<4>(rows, make(team));
            for (std::size_t i = 0; i < n_out; ++i) CHECK(team[i] == doctest::Approx(solo[i]).epsilon(1e-6));
        };
        const auto n = static_cast<std::size_t>(rows * cols);
        std::vector<float> y(n);
        run(rows, k::LogSoftmaxForward<float>{x.data(), y.data(), cols});
        both([&](std::vector<float>& out) { return k::LogSoftmaxForward<float>{x.data(), out.data(), cols}; }, n);
        both([&](std::vector<float>& out) { return k::LogSoftmaxBackward<float>{y.data(), dy.data(), out.data(), cols, false}; }, n);
        // cross-entropy forward writes two outputs: check both, by packing them in one buffer
        both([&](std::vector<float>& out) {
            return k::CrossEntropyForward<float, std::int32_t>{x.data(), target.data(), out.data(), out.data() + rows, cols, -100, 0.0f};
        }, n + rows);
        std::vector<float> grad(n), row_loss(rows);
        run(rows, k::CrossEntropyForward<float, std::int32_t>{x.data(), target.data(), row_loss.data(), grad.data(), cols, -100, 0.0f});
        both([&](std::vector<float>& out) {
            return k::CrossEntropyBackward<float, std::int32_t>{grad.data(), target.data(), dloss.data(), out.data(), cols, &inv_rows, false, -100};
        }, n);
        // ...and with label smoothing, an ignored row (the third) and a mean's scale
        const std::vector<std::int32_t> with_ignored{0, static_cast<std::int32_t>(cols - 1), -100, static_cast<std::int32_t>(cols / 2), 0};
        both([&](std::vector<float>& out) {
            return k::CrossEntropyForward<float, std::int32_t, true>{x.data(), with_ignored.data(), out.data(), out.data() + rows, cols, -100, 0.1f};
        }, n + rows);
        run(rows, k::CrossEntropyForward<float, std::int32_t, true>{x.data(), with_ignored.data(), row_loss.data(), grad.data(), cols, -100, 0.1f});
        both([&](std::vector<float>& out) {
            return k::CrossEntropyBackward<float, std::int32_t>{grad.data(), with_ignored.data(), dloss.data(), out.data(), cols, &inv_rows, false, -100};
        }, n);
    }
}

// A LaneTable over two tensors of the given sizes, with lanes[t] lanes each (the GPU gives a tensor
// up to lane_cap lanes, the host one).
struct LaneFixture {
    std::vector<float> p[2], g[2], b[2][3];
    std::vector<std::int64_t> steps[2];
    k::LaneTable<float> table{};
    LaneFixture(std::int64_t n0, std::int64_t n1, std::int64_t lanes0, std::int64_t lanes1) {
        const std::int64_t n[2] = {n0, n1}, lanes[2] = {lanes0, lanes1};
        for (int t = 0; t < 2; ++t) {
            p[t] = random_values(static_cast<std::size_t>(n[t]), 10 + t);
            g[t] = random_values(static_cast<std::size_t>(n[t]), 20 + t);
            steps[t].assign(static_cast<std::size_t>(lanes[t]), 0);
            table.param[t] = p[t].data(), table.grad[t] = g[t].data(), table.step[t] = steps[t].data();
            for (int k = 0; k < 3; ++k) {
                b[t][k].assign(static_cast<std::size_t>(n[t]), 0.0f);
                table.buffer[k][t] = b[t][k].data();
            }
            table.numel[t] = n[t];
            table.lane_offset[t + 1] = table.lane_offset[t] + lanes[t];
        }
        table.count = 2;
    }
    template <class Rule>
    void step(const Rule& rule) {
        run(table.lane_offset[2], k::LaneUpdate<float, Rule>{table, rule});
    }
};

TEST_CASE("LaneUpdate with Adam/AdamW/RMSprop rules: many lanes per tensor (the GPU) equal one lane (the host) bit for bit, and a reference") {
    const double lr = 0.01;
    const double adam_hyper[2] = {lr, 0.9}, rms_hyper[2] = {lr, 0.5};  // {lr, beta1 or momentum}
    auto adam = [&](bool decoupled) { return k::AdamRule<float>{adam_hyper, 0.999, 0.1, 0.999f, 0.001f, 1e-8f, decoupled ? 0.0f : 0.1f, decoupled}; };
    const auto rms = k::RmspropRule<float>{rms_hyper, 0.9f, 0.1f, 1e-8f, 0.01f, true, true};
    for (int rule = 0; rule < 3; ++rule) {
        CAPTURE(rule);
        LaneFixture gpu(1000, 7, 333, 7), host(1000, 7, 1, 1);
        auto reference = host;  // stepped by the plain loop below
        for (int s = 1; s <= 5; ++s) {
            if (rule < 2) {
                gpu.step(adam(rule == 1));
                host.step(adam(rule == 1));
            } else {
                gpu.step(rms);
                host.step(rms);
            }
            // The reference: torch's formulas, element by element, in double where torch uses doubles.
            for (int t = 0; t < 2; ++t) {
                for (std::size_t j = 0; j < reference.p[t].size(); ++j) {
                    float& p = reference.p[t][j];
                    const float g0 = reference.g[t][j];
                    if (rule < 2) {
                        float& m = reference.b[t][0][j];
                        float& v = reference.b[t][1][j];
                        float g = g0;
                        if (rule == 1) p *= static_cast<float>(1 - lr * 0.1);
                        else g = g + 0.1f * p;
                        m = m * 0.9f + 0.1f * g;
                        v = v * 0.999f + 0.001f * g * g;
                        const double bc1 = 1 - std::pow(0.9, s), bc2 = 1 - std::pow(0.999, s);
                        const float denom = std::sqrt(v) / static_cast<float>(std::sqrt(bc2)) + 1e-8f;
                        p = p + static_cast<float>(-(lr / bc1)) * m / denom;
                    } else {
                        float& sq = reference.b[t][0][j];
                        float& buf = reference.b[t][1][j];
                        float& ga = reference.b[t][2][j];
                        const float g = g0 + 0.01f * p;
                        sq = sq * 0.9f + 0.1f * g * g;
                        ga = ga * 0.9f + 0.1f * g;
                        const float avg = std::sqrt(sq - ga * ga) + 1e-8f;
                        buf = buf * 0.5f + g / avg;
                        p = p + static_cast<float>(-lr) * buf;
                    }
                }
            }
        }
        for (int t = 0; t < 2; ++t) {
            CHECK(gpu.p[t] == host.p[t]);
            for (int k = 0; k < 3; ++k) CHECK(gpu.b[t][k] == host.b[t][k]);
            CHECK(gpu.steps[t] == std::vector<std::int64_t>(gpu.steps[t].size(), 5));
            CHECK(host.steps[t] == std::vector<std::int64_t>{5});
            for (std::size_t j = 0; j < host.p[t].size(); ++j) CHECK(host.p[t][j] == doctest::Approx(reference.p[t][j]).epsilon(1e-6));
        }
    }
}

TEST_CASE("LaneUpdate with the SGD rule: many lanes per tensor equal one lane bit for bit, and torch.optim.SGD's formulas") {
    const double lr = 0.05;
    struct Setting {
        float momentum, dampening, weight_decay;
        bool nesterov;
    };
    for (const Setting& o : {Setting{0, 0, 0.1f, false}, Setting{0.9f, 0, 0, false}, Setting{0.9f, 0.2f, 0.05f, false},
                             Setting{0.8f, 0, 0.01f, true}}) {
        CAPTURE(o.momentum);
        CAPTURE(o.nesterov);
        const double hyper[2] = {lr, o.momentum};
        const k::SgdRule<float> rule{hyper, o.dampening, o.weight_decay, o.nesterov, o.momentum != 0};
        LaneFixture gpu(1000, 7, 333, 7), host(1000, 7, 1, 1);
        auto reference = host;
        for (int s = 1; s <= 3; ++s) {
            gpu.step(rule);
            host.step(rule);
            for (int t = 0; t < 2; ++t) {
                for (std::size_t j = 0; j < reference.p[t].size(); ++j) {
                    float& p = reference.p[t][j];
                    float& buf = reference.b[t][0][j];
                    float g = reference.g[t][j] + o.weight_decay * p;
                    if (o.momentum != 0) {
                        buf = s == 1 ? g : o.momentum * buf + (1 - o.dampening) * g;
                        g = o.nesterov ? g + o.momentum * buf : buf;
                    }
                    p -= static_cast<float>(lr) * g;
                }
            }
        }
        for (int t = 0; t < 2; ++t) {
            CHECK(gpu.p[t] == host.p[t]);
            CHECK(gpu.b[t][0] == host.b[t][0]);
            CHECK(host.steps[t] == std::vector<std::int64_t>{3});
            for (std::size_t j = 0; j < host.p[t].size(); ++j) {
                CHECK(host.p[t][j] == doctest::Approx(reference.p[t][j]).epsilon(1e-6));
                CHECK(host.b[t][0][j] == doctest::Approx(reference.b[t][0][j]).epsilon(1e-6));
            }
        }
    }
}

TEST_CASE("GradNormChunks, a sum, NormFinish, then ScaleGrads: the joint norm over a table of two, in double, every gradient scaled") {
    // 20 values: two chunks of 16 elements, the first crossing from g0 to g1
    std::vector<float> g0(10, 3.0f), g1(10, 4.0f);
    g1[9] = 1e20f;  // its square overflows a float; the double terms hold it
    k::GradTable<float> table{};
    table.grad[0] = g0.data(), table.grad[1] = g1.data();
    table.offset[1] = 10, table.offset[2] = 20, table.count = 2;
    std::vector<double> partial(2);
    run(2, k::GradNormChunks<float>{table, partial.data(), 2.0, k::NormKind::Square});
    CHECK(partial[0] == 10 * 9.0 + 6 * 16.0);
    const double big = 1e20f;  // the float nearest 1e20
    CHECK(partial[1] == 3 * 16.0 + big * big);
    const double joined = partial[0] + partial[1];
    float norm = -1;
    double total = -1, coef = -1;
    run(1, k::NormFinish<float>{&joined, &norm, &total, &coef, 1.0, 2.0, k::NormKind::Square});
    CHECK(total == std::sqrt(joined));
    CHECK(norm == static_cast<float>(std::sqrt(joined)));
    CHECK(coef == 1.0 / (std::sqrt(joined) + 1e-6));
    run(20, k::ScaleGrads<float>{table, &coef});
    CHECK(g0[0] == static_cast<float>(3.0 * coef));
    CHECK(g1[9] == static_cast<float>(big * coef));
}

TEST_CASE("GradNormChunks and MaxHalve: the largest magnitude over chunks, and NaN wins") {
    std::vector<float> g(70);
    for (int i = 0; i < 70; ++i) g[static_cast<std::size_t>(i)] = static_cast<float>((i % 7) - 3);
    g[41] = -9.5f;
    k::GradTable<float> table{};
    table.grad[0] = g.data(), table.offset[1] = 70, table.count = 1;
    std::vector<double> partial(5);  // ceil(70 / 16)
    run(5, k::GradNormChunks<float>{table, partial.data(), INFINITY, k::NormKind::Max});
    CHECK(partial == std::vector<double>{3, 3, 9.5, 3, 3});
    for (std::int64_t n = 5; n > 1;) {
        const std::int64_t half = (n + 1) / 2;
        run(n - half, k::MaxHalve{partial.data(), half});
        n = half;
    }
    CHECK(partial[0] == 9.5);
    g[69] = NAN;
    run(5, k::GradNormChunks<float>{table, partial.data(), INFINITY, k::NormKind::Max});
    CHECK(std::isnan(partial[4]));
    std::vector<double> x{1, NAN, 2};
    run(1, k::MaxHalve{x.data(), 2});  // x[0] = max(x[0], x[2])
    run(1, k::MaxHalve{x.data(), 1});  // x[0] = max(x[0], x[1]): NaN
    CHECK(std::isnan(x[0]));
}

TEST_CASE("ClampGrads: every gradient of a table within [-clip, clip], NaN kept") {
    std::vector<float> g0{-5, 0.5f}, g1{2, NAN};
    k::GradTable<float> table{};
    table.grad[0] = g0.data(), table.grad[1] = g1.data();
    table.offset[1] = 2, table.offset[2] = 4, table.count = 2;
    run(4, k::ClampGrads<float>{table, 1.0f});
    CHECK(g0 == std::vector<float>{-1, 0.5f});
    CHECK(g1[0] == 1);
    CHECK(std::isnan(g1[1]));
}

TEST_CASE("dropout: the CPU's vectorised loop (range) draws the GPU's per-element mask, across a counter's high word and from backend memory") {
    const std::int64_t n = 3000;
    std::vector<float> x(n), dy(n);
    for (std::int64_t i = 0; i < n; ++i) x[i] = 1.0f + 0.001f * static_cast<float>(i), dy[i] = 2.0f - 0.0005f * static_cast<float>(i);
    // offsets whose counters cross from high word 0 to 1, and 6 to 7 with a seed over 32 bits
    const std::uint64_t high_seed = (std::uint64_t{5} << 32) | 99;
    const std::uint64_t counters[3] = {high_seed, (std::uint64_t{7} << 32) - 1234, 0};
    const k::DropoutMask masks[] = {
        {42, (std::uint64_t{1} << 32) - 1000, k::DropoutMask::threshold(0.3)},
        {high_seed, (std::uint64_t{7} << 32) - 1234, k::DropoutMask::threshold(0.5)},
        {0, 0, k::DropoutMask::threshold(0.5), counters},  // a captured step's: counters read from memory
    };
    for (const auto& mask : masks) {
        std::vector<float> y_gpu(n), y_cpu(n), dx_gpu(n, 0.5f), dx_cpu(n, 0.5f);
        run(n, k::DropoutForward<float>{x.data(), y_gpu.data(), mask, 1.5f});
        run(n, k::DropoutBackward<float>{dy.data(), dx_gpu.data(), mask, 1.5f, false});
        mg::Cpu::launch(n, k::DropoutForward<float>{x.data(), y_cpu.data(), mask, 1.5f}, 0);
        mg::Cpu::launch(n, k::DropoutBackward<float>{dy.data(), dx_cpu.data(), mask, 1.5f, false}, 0);
        CHECK(y_cpu == y_gpu);
        CHECK(dx_cpu == dx_gpu);
        // a launch that starts past the high word's change, as a thread's share of a large one does
        std::vector<float> y_part(n);
        k::DropoutForward<float>{x.data(), y_part.data(), mask, 1.5f}.range(1500, n);
        CHECK(std::equal(y_part.begin() + 1500, y_part.end(), y_gpu.begin() + 1500));
        std::int64_t kept = 0;
        for (float v : y_gpu) kept += v != 0.0f;
        CHECK(kept > n / 3);
        CHECK(kept < n);
    }
}

TEST_CASE("dropout mask: about p dropped, forward and backward drop the same elements, a pure function of offset + index") {
    const std::int64_t n = 100000;
    const double p = 0.2;
    const k::DropoutMask mask{1234, 77, k::DropoutMask::threshold(p)};
    const std::vector<float> x(n, 1.0f), dy(n, 2.0f);
    std::vector<float> y(n), dx(n, 5.0f);
    run(n, k::DropoutForward<float>{x.data(), y.data(), mask, 1.25f});
    run(n, k::DropoutBackward<float>{dy.data(), dx.data(), mask, 1.25f, true});
    std::int64_t dropped = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        CHECK((y[i] == 0.0f || y[i] == 1.25f));
        CHECK(dx[i] == 2.0f * y[i]);
        dropped += y[i] == 0.0f;
    }
    CHECK(std::abs(static_cast<double>(dropped) / n - p) < 0.004);  // 3 standard deviations
    // index i at offset 77 is index i - 7 at offset 84: a replayed graph only moves the offset
    const k::DropoutMask later{1234, 84, mask.drop_below};
    int agree = 0, same_index_agree = 0;
    for (std::int64_t i = 7; i < 1000; ++i) {
        agree += mask.keep(i) == later.keep(i - 7);
        same_index_agree += mask.keep(i) == later.keep(i);
    }
    CHECK(agree == 993);
    CHECK(same_index_agree < 993);
    // the CPU backend's dropout launches the same mask
    mg::Generator gen(1234);
    (void)gen.reserve(77);
    auto xt = mg::Tensor<mg::Cpu>::ones({n});
    CHECK(mg::dropout(xt, p, true, gen).to_vector() == y);
}

TEST_CASE("layer_norm kernels: forward, dx and dweight against reference math in double; lanes match one thread") {
    for (std::int64_t cols : {1, 4, 37}) {
        CAPTURE(cols);
        const std::int64_t rows = 6;
        const auto n = static_cast<std::size_t>(rows * cols);
        const auto x = random_values(n, 40), dy = random_values(n, 41), w = random_values(cols, 42), b = random_values(cols, 43);
        const float eps = 1e-5f;
        std::vector<float> y(n), mean(rows), rstd(rows), dx(n, 0.25f), dw(cols, 0.5f);
        run(rows, k::LayerNormForward<float>{x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), cols, eps});
        run(rows, k::LayerNormBackward<float>{x.data(), w.data(), mean.data(), rstd.data(), dy.data(), dx.data(), cols, false});
        run(cols, k::LayerNormWeightBackward<float>{x.data(), mean.data(), rstd.data(), dy.data(), dw.data(), rows, cols, rows, false});
        // in chunks of rows, as a GPU cuts it (B::column_chunks): partial sums per chunk of 4 rows, then SumRows adds the chunks
        std::vector<float> partial(2 * cols, -1.0f), chunked_dw(cols, 0.5f);
        run(2 * cols, k::LayerNormWeightBackward<float>{x.data(), mean.data(), rstd.data(), dy.data(), partial.data(), rows, cols, 4, true});
        run(cols, k::SumRows<float>{partial.data(), chunked_dw.data(), 2, cols, false});
        std::vector<double> ref_dw(cols, 0.5);
        for (std::int64_t r = 0; r < rows; ++r) {
            double m = 0, var = 0;
            for (std::int64_t c = 0; c < cols; ++c) m += x[r * cols + c] / double(cols);
            for (std::int64_t c = 0; c < cols; ++c) var += (x[r * cols + c] - m) * (x[r * cols + c] - m) / double(cols);
            const double s = 1 / std::sqrt(var + eps);
            CHECK(mean[r] == doctest::Approx(m).epsilon(1e-5));
            CHECK(rstd[r] == doctest::Approx(s).epsilon(1e-4));
            // dx = s (g - mean(g) - xhat mean(g xhat)), g = dy w
            double g_mean = 0, g_xhat_mean = 0;
            for (std::int64_t c = 0; c < cols; ++c) {
                const double g = double(dy[r * cols + c]) * w[c], xhat = (x[r * cols + c] - m) * s;
                g_mean += g / double(cols);
                g_xhat_mean += g * xhat / double(cols);
                ref_dw[c] += double(dy[r * cols + c]) * xhat;
            }
            for (std::int64_t c = 0; c < cols; ++c) {
                const auto i = r * cols + c;
                const double xhat = (x[i] - m) * s;
                CHECK(y[i] == doctest::Approx(xhat * w[c] + b[c]).epsilon(1e-4).scale(1));
                CHECK(dx[i] == doctest::Approx(0.25 + s * (double(dy[i]) * w[c] - g_mean - xhat * g_xhat_mean)).epsilon(1e-4).scale(1));
            }
        }
        for (std::int64_t c = 0; c < cols; ++c) {
            CHECK(dw[c] == doctest::Approx(ref_dw[c]).epsilon(1e-4).scale(1));
            CHECK(chunked_dw[c] == doctest::Approx(ref_dw[c]).epsilon(1e-4).scale(1));
        }
        // four lanes per row (a GPU warp) give what one thread per row gives
        std::vector<float> team_y(n), team_mean(rows), team_rstd(rows), team_dx(n, 0.25f);
        run_lanes<4>(rows, k::LayerNormForward<float>{x.data(), w.data(), b.data(), team_y.data(), team_mean.data(), team_rstd.data(), cols, eps});
        run_lanes<4>(rows, k::LayerNormBackward<float>{x.data(), w.data(), mean.data(), rstd.data(), dy.data(), team_dx.data(), cols, false});
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(team_y[i] == doctest::Approx(y[i]).epsilon(1e-5).scale(1));
            CHECK(team_dx[i] == doctest::Approx(dx[i]).epsilon(1e-5).scale(1));
        }
        for (std::int64_t r = 0; r < rows; ++r) CHECK(team_rstd[r] == doctest::Approx(rstd[r]).epsilon(1e-5));
    }
}

TEST_CASE("the gather's kernels as embedding runs them (dim 0, outer 1): the rows, and the scatter-add backward with repeated indices, written or added") {
    const std::int64_t num = 4, dim = 3;
    const std::vector<std::int64_t> index{2, 0, 2, 3, 2};
    const auto n = static_cast<std::int64_t>(index.size());
    const auto w = random_values(num * dim, 50), dy = random_values(n * dim, 51);
    std::vector<float> y(n * dim);
    run(n * dim, k::IndexSelect<float, std::int64_t>{w.data(), index.data(), y.data(), num, n, dim});
    for (std::int64_t kk = 0; kk < n; ++kk)
        for (std::int64_t j = 0; j < dim; ++j) CHECK(y[kk * dim + j] == w[index[kk] * dim + j]);
    for (bool overwrite : {true, false}) {
        CAPTURE(overwrite);
        std::vector<float> dw(num * dim, 7.0f);
        run(dim, k::IndexSelectBackward<float, std::int64_t>{dy.data(), index.data(), dw.data(), num, n, dim, num, 1, overwrite});
        for (std::int64_t r = 0; r < num; ++r)
            for (std::int64_t j = 0; j < dim; ++j) {
                double ref = overwrite ? 0.0 : 7.0;
                for (std::int64_t kk = 0; kk < n; ++kk)
                    if (index[kk] == r) ref += dy[kk * dim + j];
                CHECK(dw[r * dim + j] == doctest::Approx(ref).epsilon(1e-6).scale(1));
            }
        // rows cut into blocks, as a GPU cuts them (B::column_chunks): the same bits, whatever the block
        for (std::int64_t block_rows : {1, 2, 3}) {
            CAPTURE(block_rows);
            const std::int64_t blocks = (num + block_rows - 1) / block_rows;
            std::vector<float> blocked(num * dim, 7.0f);
            run(blocks * dim, k::IndexSelectBackward<float, std::int64_t>{dy.data(), index.data(), blocked.data(), num, n, dim, block_rows, blocks, overwrite});
            CHECK(blocked == dw);
        }
    }
}

TEST_CASE("dim functors: SumDim, MaxDim and SoftmaxDimForward over a middle dim against reference loops") {
    // x is (outer 2, n 3, inner 4)
    const std::int64_t outer = 2, n = 3, inner = 4;
    const auto x = random_values(outer * n * inner, 41);
    const auto at = [&](std::int64_t o, std::int64_t k, std::int64_t in) { return x[(o * n + k) * inner + in]; };
    std::vector<float> sums(outer * inner), values(outer * inner), soft(x.size());
    std::vector<std::int64_t> where(outer * inner);
    run(outer * inner, k::SumDim<float>{x.data(), sums.data(), n, inner, 0.5f});
    run(outer * inner, k::MaxDim<float, std::int64_t>{x.data(), values.data(), where.data(), n, inner});
    run(outer * inner, k::SoftmaxDimForward<float>{x.data(), soft.data(), n, inner, false});
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t in = 0; in < inner; ++in) {
            double total = 0, exps = 0;
            std::int64_t best = 0;
            for (std::int64_t kk = 0; kk < n; ++kk) {
                total += at(o, kk, in);
                exps += std::exp(double(at(o, kk, in)));
                if (at(o, kk, in) > at(o, best, in)) best = kk;
            }
            CHECK(sums[o * inner + in] == doctest::Approx(0.5 * total).epsilon(1e-6));
            CHECK(where[o * inner + in] == best);
            CHECK(values[o * inner + in] == at(o, best, in));
            for (std::int64_t kk = 0; kk < n; ++kk)
                CHECK(soft[(o * n + kk) * inner + in] == doctest::Approx(std::exp(double(at(o, kk, in))) / exps).epsilon(1e-5));
        }
}

TEST_CASE("shape functors: Permute (a transpose), WindowRead (narrow), IndexSelect and its column-wise backward") {
    const std::int64_t rows = 3, cols = 4;
    const auto x = random_values(rows * cols, 42);
    std::vector<float> xt(x.size());
    const std::int64_t dims[] = {cols, rows}, strides[] = {1, cols};
    run(rows * cols, k::Permute<float>{x.data(), xt.data(), k::strided_index(dims, strides, 2), true});
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) CHECK(xt[c * rows + r] == x[r * cols + c]);
    std::vector<float> window(rows * 2);
    run(rows * 2, k::WindowRead<float>{x.data(), window.data(), cols, 2, 1, 1, true});  // columns 1..2
    for (std::int64_t r = 0; r < rows; ++r) CHECK(window[r * 2 + 1] == x[r * cols + 2]);
    const std::vector<std::int64_t> index{2, 0, 2};
    std::vector<float> picked(3 * cols);
    run(3 * cols, k::IndexSelect<float, std::int64_t>{x.data(), index.data(), picked.data(), rows, 3, cols});
    for (std::int64_t c = 0; c < cols; ++c) CHECK(picked[2 * cols + c] == x[2 * cols + c]);
    const auto dy = random_values(3 * cols, 43);
    std::vector<float> dx(rows * cols, 99.0f);
    run(cols, k::IndexSelectBackward<float, std::int64_t>{dy.data(), index.data(), dx.data(), rows, 3, cols, rows, 1, true});
    for (std::int64_t c = 0; c < cols; ++c) {
        CHECK(dx[0 * cols + c] == dy[1 * cols + c]);
        CHECK(dx[1 * cols + c] == 0.0f);
        CHECK(dx[2 * cols + c] == dy[0 * cols + c] + dy[2 * cols + c]);
    }
}

// <a, b> in double
static double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
    return s;
}

TEST_CASE("Im2Col gathers each patch, zero in the padding, and Col2Im is its adjoint: <im2col(x), c> = <x, col2im(c)>") {
    // x (2, 4, 5, 6), 2 groups, kernel 3x2, stride 2x1, padding 1x0, dilation 1x2: oh 3, ow 4; and
    // the same with stride 1 and padding 1x1 (oh 5, ow 6), where one thread copies runs
    for (const k::ConvGeometry& g : {k::ConvGeometry{2, 4, 5, 6, 6, 3, 2, 3, 4, 2, 2, 1, 1, 0, 1, 2}, k::ConvGeometry{2, 4, 5, 6, 6, 3, 2, 5, 6, 2, 1, 1, 1, 1, 1, 2}}) {
        CAPTURE(g.stride_h);
        const auto x = random_values(2 * 4 * 5 * 6, 61);
        const std::int64_t m = g.rows(), kk = g.patch();
        std::vector<float> cols(static_cast<std::size_t>(g.groups * m * kk));
        run(g.groups * kk, k::Im2Col<float>{x.data(), cols.data(), g});  // a row per (group, kernel entry)
        std::vector<float> cols_lanes(cols.size(), -1.0f);  // a GPU warp's lanes sharing each row write the same
        run_lanes<4>(g.groups * kk, k::Im2Col<float>{x.data(), cols_lanes.data(), g});
        CHECK(cols_lanes == cols);
        // every entry against the definition: cols[group, (ci, ki, kj), (b, p, q)] = x[b, group * 2 + ci, p * sh - ph + ki, q * sw - pw + kj * 2]
        int wrong = 0;
        for (std::int64_t gi = 0; gi < 2; ++gi)
            for (std::int64_t ci = 0; ci < 2; ++ci)
                for (std::int64_t ki = 0; ki < 3; ++ki)
                    for (std::int64_t kj = 0; kj < 2; ++kj)
                        for (std::int64_t b = 0; b < 2; ++b)
                            for (std::int64_t p = 0; p < g.oh; ++p)
                                for (std::int64_t q = 0; q < g.ow; ++q) {
                                    const std::int64_t y = p * g.stride_h - g.pad_h + ki, xx = q * g.stride_w - g.pad_w + kj * 2;
                                    const float expected = y >= 0 && y < 5 && xx >= 0 && xx < 6 ? x[static_cast<std::size_t>(((b * 4 + gi * 2 + ci) * 5 + y) * 6 + xx)] : 0.0f;
                                    const auto at = static_cast<std::size_t>((gi * kk + (ci * 3 + ki) * 2 + kj) * m + (b * g.oh + p) * g.ow + q);
                                    wrong += cols[at] != expected;
                                }
        CHECK(wrong == 0);
        const auto c = random_values(cols.size(), 62);
        std::vector<float> dx(x.size(), 0.0f);
        run(g.n * g.c * g.h, k::Col2Im<float>{c.data(), dx.data(), g, true});  // a row per input row
        CHECK(dot(cols, c) == doctest::Approx(dot(x, dx)).epsilon(1e-5));
        std::vector<float> dx_lanes(x.size(), 0.0f);
        run_lanes<4>(g.n * g.c * g.h, k::Col2Im<float>{c.data(), dx_lanes.data(), g, true});
        for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx_lanes[i] == dx[i]);  // the same sums in the same order
    }
    // ConvReorder: to the output's (n, o, positions) with the bias, and back, summing the bias gradient
    const k::ConvGeometry g{2, 4, 5, 6, 6, 3, 2, 3, 4, 2, 2, 1, 1, 0, 1, 2};
    const std::int64_t positions = g.oh * g.ow, m = g.rows();
    const auto grouped = random_values(static_cast<std::size_t>(g.o * m), 65), bias = random_values(6, 66);
    std::vector<float> nchw(grouped.size()), back(grouped.size()), dbias(6);
    const k::ConvReorder<float> to_nchw{grouped.data(), nchw.data(), bias.data(), nullptr, g, false, false};
    const k::ConvReorder<float> to_groups{nchw.data(), back.data(), nullptr, dbias.data(), g, true, true};
    run(to_nchw.rows(), to_nchw);
    // y[b 1, channel 5, s 7] = out[channel 5, b 1 * P + 7] + bias[5]
    CHECK(nchw[static_cast<std::size_t>((1 * g.o + 5) * positions + 7)] == grouped[static_cast<std::size_t>(5 * m + positions + 7)] + bias[5]);
    run_lanes<4>(to_groups.rows(), to_groups);
    for (std::size_t i = 0; i < back.size(); ++i) CHECK(back[i] == grouped[i] + bias[i / static_cast<std::size_t>(m)]);
    for (std::size_t ch = 0; ch < 6; ++ch) {
        double sum = 0;
        for (std::int64_t e = 0; e < m; ++e) sum += back[ch * static_cast<std::size_t>(m) + static_cast<std::size_t>(e)];
        CHECK(dbias[ch] == doctest::Approx(sum).epsilon(1e-5));
    }
}

TEST_CASE("pooling kernels: max's backward is the adjoint of its gather, avg's of its forward; an adaptive window's divisor") {
    k::PoolGeometry g{6, 7, 6, 4, 4, 3, 2, 2, 2, 1, 1, false};
    const auto x = random_values(6 * 7 * 6, 63), d = random_values(6 * 4 * 4, 64);
    std::vector<float> y(d.size()), dx(x.size(), 0.0f);
    std::vector<std::int64_t> where(d.size());
    run(6 * 4, k::MaxPoolForward<float>{x.data(), y.data(), where.data(), g});  // a row per (plane, output row)
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == x[static_cast<std::size_t>(i / 16) * 42 + static_cast<std::size_t>(where[i])]);
    run(6 * 7, k::MaxPoolBackward<float>{d.data(), where.data(), dx.data(), g, true});  // a row per (plane, input row)
    CHECK(dot(y, d) == doctest::Approx(dot(x, dx)).epsilon(1e-5));
    std::vector<float> dx_lanes(x.size(), 0.0f);  // lanes find each column's windows by division, one thread by walking
    run_lanes<4>(6 * 7, k::MaxPoolBackward<float>{d.data(), where.data(), dx_lanes.data(), g, true});
    CHECK(dx_lanes == dx);
    std::vector<float> avg(d.size()), davg(x.size(), 0.0f);
    run(6 * 4, k::AvgPoolForward<float>{x.data(), avg.data(), g});
    run(6 * 7, k::AvgPoolBackward<float>{d.data(), davg.data(), k::AvgPoolForward<float>{nullptr, nullptr, g}, true});
    CHECK(dot(avg, d) == doctest::Approx(dot(x, davg)).epsilon(1e-5));
    std::vector<float> davg_lanes(x.size(), 0.0f);
    run_lanes<4>(6 * 7, k::AvgPoolBackward<float>{d.data(), davg_lanes.data(), k::AvgPoolForward<float>{nullptr, nullptr, g}, true});
    CHECK(davg_lanes == davg);
    // adaptive 7 -> 3 rows: windows [0, 3), [2, 5), [4, 7)
    k::PoolGeometry a{1, 7, 1, 3, 1, 1, 1, 1, 1, 0, 0, true};
    const std::vector<float> col{1, 2, 3, 4, 5, 6, 7};
    std::vector<float> out(3);
    run(3, k::AvgPoolForward<float>{col.data(), out.data(), a});  // 3 output rows of one column
    CHECK(out == std::vector<float>{2, 4, 6});
}

TEST_CASE("BatchNorm's functors: statistics and the running update, apply, and backward as the adjoint, one thread or a warp's lanes per row") {
    // x (n 3, c 2, s 5): channel ch's elements at (k * 2 + ch) * 5 + j
    const k::BatchNormLayout l{3, 2, 5};
    const auto x = random_values(30, 71), dy = random_values(30, 72);
    std::vector<float> mean(2), rstd(2), running_mean{0.5f, -0.5f}, running_var{1.0f, 2.0f};
    std::vector<std::int64_t> tracked{0};
    run(1, k::BatchNormCount{tracked.data()});
    CHECK(tracked[0] == 1);
    // momentum < 0: the cumulative average, 1 / tracked = 1: the running statistics become the batch's
    run(2, k::BatchNormStats<float>{x.data(), mean.data(), rstd.data(), running_mean.data(), running_var.data(), tracked.data(), l, 1e-5f, -1.0f});
    for (int ch = 0; ch < 2; ++ch) {
        double sum = 0, squares = 0;
        for (int kk = 0; kk < 3; ++kk)
            for (int j = 0; j < 5; ++j) sum += x[static_cast<std::size_t>((kk * 2 + ch) * 5 + j)];
        const double m = sum / 15;
        for (int kk = 0; kk < 3; ++kk)
            for (int j = 0; j < 5; ++j) squares += std::pow(x[static_cast<std::size_t>((kk * 2 + ch) * 5 + j)] - m, 2);
        CHECK(mean[static_cast<std::size_t>(ch)] == doctest::Approx(m).epsilon(1e-5));
        CHECK(rstd[static_cast<std::size_t>(ch)] == doctest::Approx(1 / std::sqrt(squares / 15 + 1e-5)).epsilon(1e-5));
        CHECK(running_mean[static_cast<std::size_t>(ch)] == doctest::Approx(m).epsilon(1e-5));
        CHECK(running_var[static_cast<std::size_t>(ch)] == doctest::Approx(squares / 14).epsilon(1e-5));  // unbiased
    }
    std::vector<float> mean4(2), rstd4(2);
    run_lanes<4>(2, k::BatchNormStats<float>{x.data(), mean4.data(), rstd4.data(), nullptr, nullptr, nullptr, l, 1e-5f, 0.1f});
    for (std::size_t ch = 0; ch < 2; ++ch) {
        CHECK(mean4[ch] == doctest::Approx(mean[ch]).epsilon(1e-6));
        CHECK(rstd4[ch] == doctest::Approx(rstd[ch]).epsilon(1e-6));
    }
    // eval's statistics: y = (x - m) rstd w + b is affine in x, and backward (fixed statistics) is its adjoint
    const std::vector<float> w{1.5f, 0.5f}, b{0.25f, -1.0f};
    std::vector<float> y(30), dx(30), dx4(30), sums(4), dw(2), db(2);
    run(3 * 2, k::BatchNormApply<float>{x.data(), mean.data(), rstd.data(), w.data(), b.data(), y.data(), l, 5});
    std::vector<float> y_affine(30);  // the linear part: y - y(0)
    const std::vector<float> zeros(30, 0.0f);
    std::vector<float> y0(30);
    run(3 * 2, k::BatchNormApply<float>{zeros.data(), mean.data(), rstd.data(), w.data(), b.data(), y0.data(), l, 5});
    for (std::size_t i = 0; i < 30; ++i) y_affine[i] = y[i] - y0[i];
    run(3 * 2, k::BatchNormBackward<float>{x.data(), dy.data(), mean.data(), rstd.data(), w.data(), nullptr, dx.data(), l, 5, false, true});
    CHECK(dot(y_affine, dy) == doctest::Approx(dot(x, dx)).epsilon(1e-5));
    // the sums: dbias = sum dy, dweight = sum dy xhat, per channel; lanes agree with one thread
    run(2, k::BatchNormGradSums<float>{x.data(), dy.data(), mean.data(), rstd.data(), sums.data(), dw.data(), db.data(), l, true, true});
    std::vector<float> sums4(4);
    run_lanes<4>(2, k::BatchNormGradSums<float>{x.data(), dy.data(), mean.data(), rstd.data(), sums4.data(), nullptr, nullptr, l, true, true});
    for (std::size_t ch = 0; ch < 2; ++ch) {
        double dy_sum = 0, dy_xhat = 0;
        for (int kk = 0; kk < 3; ++kk)
            for (int j = 0; j < 5; ++j) {
                const auto i = static_cast<std::size_t>((kk * 2 + static_cast<int>(ch)) * 5 + j);
                dy_sum += dy[i];
                dy_xhat += dy[i] * (x[i] - mean[ch]) * rstd[ch];
            }
        CHECK(db[ch] == doctest::Approx(dy_sum).epsilon(1e-5));
        CHECK(dw[ch] == doctest::Approx(dy_xhat).epsilon(1e-5));
        CHECK(sums4[ch] == doctest::Approx(sums[ch]).epsilon(1e-5));
        CHECK(sums4[2 + ch] == doctest::Approx(sums[2 + ch]).epsilon(1e-5));
    }
    // batch statistics: dx sums to zero over each channel (the mean's share), lanes agree
    run(3 * 2, k::BatchNormBackward<float>{x.data(), dy.data(), mean.data(), rstd.data(), w.data(), sums.data(), dx.data(), l, 5, true, true});
    run_lanes<4>(3 * 2, k::BatchNormBackward<float>{x.data(), dy.data(), mean.data(), rstd.data(), w.data(), sums.data(), dx4.data(), l, 5, true, true});
    for (std::size_t i = 0; i < 30; ++i) CHECK(dx4[i] == doctest::Approx(dx[i]).epsilon(1e-6));
    for (int ch = 0; ch < 2; ++ch) {
        double total = 0;
        for (int kk = 0; kk < 3; ++kk)
            for (int j = 0; j < 5; ++j) total += dx[static_cast<std::size_t>((kk * 2 + ch) * 5 + j)];
        CHECK(std::abs(total) < 1e-5);
    }
}

TEST_CASE("index kernels: Topk (largest and smallest, with its backward) and GatherDim (with its backward) against reference loops") {
    // x is (outer 2, n 5, inner 3): topk along n
    const std::int64_t outer = 2, n = 5, inner = 3, kk = 3;
    const auto x = random_values(outer * n * inner, 61), dy = random_values(outer * kk * inner, 62);
    for (bool largest : {true, false}) {
        CAPTURE(largest);
        std::vector<float> values(outer * kk * inner), dx(x.size(), 7.0f);
        std::vector<std::int64_t> at(values.size());
        run(outer * inner, k::Topk<float, std::int64_t>{x.data(), values.data(), at.data(), n, kk, inner, largest});
        run(outer * inner, k::TopkBackward<float, std::int64_t>{dy.data(), at.data(), dx.data(), n, kk, inner, true});
        for (std::int64_t o = 0; o < outer; ++o)
            for (std::int64_t in = 0; in < inner; ++in) {
                std::vector<std::int64_t> order(n);
                for (std::int64_t j = 0; j < n; ++j) order[j] = j;
                const auto value = [&](std::int64_t j) { return x[(o * n + j) * inner + in]; };
                std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return largest ? value(a) > value(b) : value(a) < value(b); });
                std::vector<float> expected_dx(n, 0.0f);
                for (std::int64_t j = 0; j < kk; ++j) {
                    const auto slot = (o * kk + j) * inner + in;
                    CHECK(at[slot] == order[j]);
                    CHECK(values[slot] == value(order[j]));
                    expected_dx[order[j]] += dy[slot];
                }
                for (std::int64_t j = 0; j < n; ++j) CHECK(dx[(o * n + j) * inner + in] == expected_dx[j]);
            }
    }
    // gather along dim 1 of x (2, 5, 3) with index (2, 4, 3), repeats included
    const std::int64_t m = 4;
    std::vector<std::int64_t> index(outer * m * inner);
    for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<std::int64_t>((i * 7) % n);
    std::vector<float> y(index.size()), dx(x.size(), 5.0f), g = random_values(index.size(), 63);
    const std::int64_t walk[3] = {outer, n, inner}, gathered[3] = {outer, m, inner};
    const std::int64_t x_strides[3] = {n * inner, 0, 1}, dx_strides[3] = {n * inner, inner, 1}, index_strides[3] = {m * inner, 0, 1};
    run(outer * m * inner, k::GatherDim<float, std::int64_t>{x.data(), index.data(), y.data(), k::strided_index(gathered, x_strides, 3), n, inner});
    run(outer * n * inner, k::GatherDimBackward<float, std::int64_t>{g.data(), index.data(), dx.data(), k::strided_index(walk, dx_strides, 3),
                                                                      k::strided_index(walk, index_strides, 3), n, m, inner, inner, true});
    std::vector<double> expected(x.size(), 0.0);
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t j = 0; j < m; ++j)
            for (std::int64_t in = 0; in < inner; ++in) {
                const auto i = (o * m + j) * inner + in;
                CHECK(y[i] == x[(o * n + index[i]) * inner + in]);
                expected[(o * n + index[i]) * inner + in] += g[i];
            }
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(dx[i] == doctest::Approx(expected[i]).epsilon(1e-6));
}
