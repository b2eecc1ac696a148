// The Cpu backend's built-in product kernel (Cpu::gemm_builtin): every narrow width it compiles
// (n <= 16), both of its loops (along c's rows, and down c's columns for a transposed a), blocks of
// rows cut short at the end, vectors of b and a that stop at their matrix's end, and the column sums
// of a weight gradient's bias. A vector read past its matrix's end shows only under the ASan
// preset (CI's asan stage runs this file); the values checked here show everywhere.
#include "helpers.hpp"

#include <algorithm>
#include <cmath>

namespace {

// a stored (k, m) as (m, k), or back: the same matrix, the other layout
template <class T>
std::vector<T> transposed(const std::vector<T>& x, std::int64_t rows, std::int64_t cols) {
    std::vector<T> out(x.size());
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) out[static_cast<std::size_t>(c * rows + r)] = x[static_cast<std::size_t>(r * cols + c)];
    return out;
}

}  // namespace

TEST_CASE_TEMPLATE("gemm_builtin: every narrow width, transpose, bias and accumulate mode against a double product", T, float, double) {
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    int products = 0;
    for (std::int64_t n = 0; n <= 18; ++n)
        for (std::int64_t m : {1, 2, 3, 5, 8, 9, 17, 120})
            for (std::int64_t k : {0, 1, 3, 4, 10, 121}) {
                const auto a = uniform_values<T>(m * k, 1), b = uniform_values<T>(k * n, 2), bias = uniform_values<T>(n, 3), c0 = uniform_values<T>(m * n, 4);
                const auto sums0 = uniform_values<T>(m, 5);
                for (int mode = 0; mode < 32; ++mode) {
                    const bool ta = mode & 1, tb = mode & 2, with_bias = mode & 4, overwrite = mode & 8, sums = mode & 16;
                    if (sums && !ta) continue;  // column sums come with a weight gradient's transposed a only
                    auto c = c0, a_sums = sums0;
                    mg::kernels::GemmElement<T> g{a.data(), b.data(), with_bias ? bias.data() : nullptr, c.data(), m, n, k, ta, tb, overwrite};
                    if (sums) {
                        g.a_sums = a_sums.data();
                        g.a_sums_overwrite = overwrite;
                    }
                    mg::Cpu::gemm_builtin(g);
                    INFO("m x n x k = ", m, " x ", n, " x ", k, ", trans_a ", ta, ", trans_b ", tb, ", bias ", with_bias, ", overwrite ",
                         overwrite, ", sums ", sums);
                    double worst = 0;
                    for (std::int64_t r = 0; r < m; ++r)
                        for (std::int64_t j = 0; j < n; ++j) {
                            double ref = with_bias ? double(bias[j]) : 0.0;
                            for (std::int64_t p = 0; p < k; ++p)
                                ref += double(ta ? a[p * m + r] : a[r * k + p]) * double(tb ? b[j * k + p] : b[p * n + j]);
                            if (!overwrite) ref += double(c0[r * n + j]);
                            worst = std::max(worst, std::abs(ref - double(c[r * n + j])));
                        }
                    CHECK(worst <= eps * double(k + 2));
                    if (sums) {  // the bits sum_rows gives: kernels::SumRows, one column at a time
                        auto expected = sums0;
                        const mg::kernels::SumRows<T> column{a.data(), expected.data(), k, m, overwrite};
                        for (std::int64_t j = 0; j < m; ++j) column(j);
                        CHECK(a_sums == expected);
                    }
                    ++products;
                }
            }
    CHECK(products == 19 * 8 * 6 * 24);
}

TEST_CASE("gemm_builtin: an output's bits do not depend on the loop or the block of rows that computed it") {
    // trans_a takes the loop down c's columns where m is large and n small, a transposed copy of a
    // the loop along its rows; every output adds the same products in the same order.
    for (std::int64_t n : {1, 3, 4, 10, 16})
        for (std::int64_t m : {3, 9, 120})
            for (std::int64_t k : {1, 4, 10, 120}) {
                const auto a = uniform_values<float>(m * k, 6), b = uniform_values<float>(k * n, 7), bias = uniform_values<float>(n, 8);
                const auto a_rows = transposed(a, k, m);  // (m, k)
                std::vector<float> down(m * n), along(m * n);
                mg::Cpu::gemm_builtin(mg::kernels::GemmElement<float>{a.data(), b.data(), bias.data(), down.data(), m, n, k, true, false, true});
                mg::Cpu::gemm_builtin(mg::kernels::GemmElement<float>{a_rows.data(), b.data(), bias.data(), along.data(), m, n, k, false, false, true});
                INFO("m x n x k = ", m, " x ", n, " x ", k);
#if MINIGRAD_CPU_DISPATCH || (defined(__x86_64__) && !defined(__FMA__))
                CHECK(down == along);  // also the SSE loops of MINIGRAD_NO_CPU_DISPATCH: no fused multiply-add
#else
                // Built for the machine (-march=native; and another CPU's, which has fused
                // multiply-adds), GCC fuses the multiply-adds of one loop and not always the other's:
                // the two may differ in the last bit.
                for (std::size_t i = 0; i < down.size(); ++i) CHECK(std::abs(down[i] - along[i]) <= 1e-6 * double(k + 2));
#endif
                // each row alone (a block of one, cut short) equals the same row within the whole product
                for (std::int64_t r = 0; r < m; ++r) {
                    std::vector<float> one(n);
                    mg::Cpu::gemm_builtin(
                        mg::kernels::GemmElement<float>{a_rows.data() + r * k, b.data(), bias.data(), one.data(), 1, n, k, false, false, true});
                    CHECK(std::equal(one.begin(), one.end(), along.begin() + r * n));
                }
            }
}

TEST_CASE("gemm: a weight gradient's bias sums are part of the product's one launch") {
    const std::int64_t m = 10, n = 4, k = 120;
    const auto a = uniform_values<float>(k * m, 9), b = uniform_values<float>(k * n, 10);
    std::vector<float> c(m * n), sums(m);
    mg::kernels::GemmElement<float> g{a.data(), b.data(), nullptr, c.data(), m, n, k, true, false, true};
    g.a_sums = sums.data();
    g.a_sums_overwrite = true;
    const auto before = mg::counters().kernel_launches;
    mg::Cpu::gemm(g, 0);
    CHECK(mg::counters().kernel_launches - before == 1);
    std::vector<float> expected(m);
    mg::Cpu::sum_rows(a.data(), k, m, expected.data(), true, 0);
    CHECK(sums == expected);
}
