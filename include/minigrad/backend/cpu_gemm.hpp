// The Cpu backend's built-in matrix product: c (m, n) = op(a) op(b) [+ bias (n)], written or
// added, and a's column sums where asked (shapes as kernels::GemmElement). For the narrow outputs of
// small models (n <= 16, known at compile time) a block of c is held in registers, vectorised along
// c's rows or, for a weight gradient, down its columns; wider outputs go a row at a time.
//
// These loops are most of the machine code a file that uses minigrad compiles (34 functions per
// element type, 80% of a small test's object code at -O3). detail::gemm_builtin is a plain (not
// inline) function template, so that the prebuilt library (CMake target minigrad::prebuilt, which
// defines MINIGRAD_PREBUILT) compiles it once for float and double and its users compile it not at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "cpu_isa.hpp"
#include "kernels.hpp"

namespace minigrad::detail {

struct CpuGemm {
// Lanes of the product loops compiled without a target attribute: 8 in a build for an AVX2 CPU
// (-march=native on one: no dispatch is compiled, and these loops are the AVX2 ones), 4 otherwise
// (SSE2, or another CPU's 128-bit vectors).
#if defined(__AVX2__)
static constexpr int plain_lanes = 8;
#else
static constexpr int plain_lanes = 4;
#endif

// Lanes: values in one vector (float: 4 = 128-bit SSE, 8 = 256-bit AVX; a double's vectors are
// twice as wide, two registers where that is wider than the ISA's). Whichever loop below computes
// an output, it is bias + a(r, 0) b(0, j) + ... + a(r, k-1) b(k-1, j), added in that order, so a
// product's values do not depend on which loop its shape chose (in a build for the machine,
// -march=native, GCC may fuse one loop's multiply-adds and not the other's: the last bit then can).
template <class T, int Lanes>
[[gnu::always_inline]] static inline void gemm_body(const kernels::GemmElement<T>& g) {
    MINIGRAD_ASSERT(!g.a_sums || g.trans_a);  // column sums of a stored (k, m) only
    const T* b = g.b;
    if (g.trans_b) {
        thread_local std::vector<T> scratch;  // grows once to the largest b: no per-step allocation
        scratch.resize(static_cast<std::size_t>(g.k * g.n));
        for (std::int64_t j = 0; j < g.n; ++j)
            for (std::int64_t p = 0; p < g.k; ++p) scratch[static_cast<std::size_t>(p * g.n + j)] = g.b[j * g.k + p];
        b = scratch.data();
    }
    if (g.n <= 16) {
        gemm_narrow<T, Lanes>(g, b, std::make_integer_sequence<int, 17>{});
    } else {
        gemm_wide(g, b);
    }
    if (g.a_sums) a_column_sums<T, Lanes>(g);
}
template <class T, int Lanes, int... Ns>
[[gnu::always_inline]] static inline void gemm_narrow(const kernels::GemmElement<T>& g, const T* b, std::integer_sequence<int, Ns...>) {
    (void)((g.n == Ns ? (gemm_width<T, Ns, Lanes>(g, b), true) : false) || ...);
}
// Each width is its own function, not inlined into the caller: GCC's optimiser takes time
// superlinear in a function's size, and with all sixteen widths in one function every file that
// uses a tensor took 5x longer to compile at -O3 (125 s against 28 s). A call per product costs
// nothing measurable. Where the dispatch is compiled, Lanes 8 is gemm_avx2's alone, so its widths
// keep that target (a build for an AVX2 CPU has no dispatch: its Lanes 8 is gemm_builtin's).
template <class T, int N, int Lanes>
#if MINIGRAD_CPU_DISPATCH
    requires(Lanes != 8)
#endif
[[gnu::noinline]] static void gemm_width(const kernels::GemmElement<T>& g, const T* b) {
    gemm_fixed_width<T, N, Lanes>(g, b);
}
#if MINIGRAD_CPU_DISPATCH
template <class T, int N, int Lanes>
    requires(Lanes == 8)
MINIGRAD_TARGET_AVX2 [[gnu::noinline]] static void gemm_width(const kernels::GemmElement<T>& g, const T* b) {
    gemm_fixed_width<T, N, Lanes>(g, b);
}
#endif

// n = N <= 16 columns, known at compile time. Two loops, and the cheaper for the shape, counted
// in vector instructions per p: along c's rows (b's row p in vectors, a broadcast of a(r, p) and
// a multiply-add per vector, for each row), or, where a is stored transposed (its column p is
// contiguous), down c's columns (Lanes rows of a in one load, a broadcast of b(p, j) and a
// multiply-add per column). The first needs no transposition; the second fills every lane when
// m is large and N is small, as in a weight gradient (m outputs, k the batch).
template <class T, int N, int Lanes>
[[gnu::always_inline]] static inline void gemm_fixed_width(const kernels::GemmElement<T>& g, const T* b) {
    if constexpr (N == 0) {
        return;  // m x 0: nothing to write
    } else {
        constexpr int C = (N + Lanes - 1) / Lanes;
        constexpr int R = C >= 8 ? 1 : 8 / C;  // gemm_along_rows's rows per block
        if (g.trans_a) {
            const std::int64_t down_columns = (g.m + Lanes - 1) / Lanes * (1 + 2 * N);
            const std::int64_t along_rows = (g.m + R - 1) / R * (C + R * (1 + C));  // a short block costs a whole one
            if (down_columns < along_rows) return gemm_down_columns<T, N, Lanes>(g, b);
        }
        gemm_along_rows<T, N, Lanes>(g, b);
    }
}

// c's rows as C vectors each (the last holding N - (C - 1) * Lanes columns), R rows at a time so
// that each vector of b's row p serves R rows. A vector of b reaches past its row where that
// stays inside b (those lanes are computed and never stored); c's and the bias's last vectors
// move element by element. (Helpers, not lambdas: a lambda would not inherit gemm_avx2's target.)
template <class T, int N, int Lanes>
[[gnu::always_inline]] static inline void gemm_along_rows(const kernels::GemmElement<T>& g, const T* b) {
    using V = typename detail::Vec<T, Lanes>::type;
    constexpr int C = (N + Lanes - 1) / Lanes;
    constexpr int last = N - (C - 1) * Lanes;  // columns in a row's last vector
    constexpr int R = C >= 8 ? 1 : 8 / C;     // R * C accumulators, half the vector registers
    const std::int64_t m = g.m, k = g.k;
    // rows p < whole: b's row p read as C whole vectors stays inside b's k * N values
    const std::int64_t whole = last == Lanes ? k : k * N < C * Lanes ? 0 : std::min(k, (k * N - C * Lanes) / N + 1);
    V bias[C];
    for (int c = 0; c < C; ++c) {
        bias[c] = V{};
        if (g.bias) load_part(bias[c], g.bias + c * Lanes, c == C - 1 ? last : Lanes);
    }
    std::int64_t r = 0;
    for (; r + R <= m; r += R) gemm_row_block<T, N, Lanes, R, false>(g, b, r, R, whole, bias);
    if (r < m) gemm_row_block<T, N, Lanes, R, true>(g, b, r, static_cast<int>(m - r), whole, bias);
}
// Rows rows from r, of which the first `valid` exist (Partial: the others repeat the last one's
// arithmetic and are not stored; one pass over b for the last rows, not one per row).
template <class T, int N, int Lanes, int Rows, bool Partial>
[[gnu::always_inline]] static inline void gemm_row_block(const kernels::GemmElement<T>& g, const T* b, std::int64_t r, int valid,
                                                         std::int64_t whole, const typename detail::Vec<T, Lanes>::type* bias) {
    using V = typename detail::Vec<T, Lanes>::type;
    constexpr int C = (N + Lanes - 1) / Lanes;
    constexpr int last = N - (C - 1) * Lanes;
    const std::int64_t k = g.k;
    const std::int64_t a_row = g.trans_a ? 1 : k, a_col = g.trans_a ? g.m : 1;  // a(r, p) = a[r * a_row + p * a_col]
    const T* a0 = g.a + r * a_row;
    std::int64_t at[Rows];  // row i's offset in a (Partial: the missing rows read the last one)
    for (int i = 0; i < Rows; ++i) at[i] = (Partial && i >= valid ? valid - 1 : i) * a_row;
    V acc[Rows][C];
    for (int i = 0; i < Rows; ++i)
        for (int c = 0; c < C; ++c) acc[i][c] = bias[c];
    // Two loops, not one with a test per p: merged, the Iris products took 4% more instructions.
    std::int64_t p = 0;
    for (; p < whole; ++p) {
        V bv[C];
        for (int c = 0; c < C; ++c) std::memcpy(&bv[c], b + p * N + c * Lanes, sizeof(V));
        for (int i = 0; i < Rows; ++i) {
            const T av = a0[(Partial ? at[i] : i * a_row) + p * a_col];
            for (int c = 0; c < C; ++c) acc[i][c] += bv[c] * av;
        }
    }
    for (; p < k; ++p) {
        V bv[C];
        for (int c = 0; c < C; ++c) load_part(bv[c], b + p * N + c * Lanes, c == C - 1 ? last : Lanes);
        for (int i = 0; i < Rows; ++i) {
            const T av = a0[(Partial ? at[i] : i * a_row) + p * a_col];
            for (int c = 0; c < C; ++c) acc[i][c] += bv[c] * av;
        }
    }
    // whole vectors, then the last one's columns one by one, each a loop of constant length
    for (int i = 0; i < Rows; ++i) {
        if (Partial && i >= valid) break;
        T* __restrict cr = g.c + (r + i) * N;
        for (int c = 0; c + 1 < C; ++c) {
            V out = acc[i][c];
            if (!g.overwrite) {
                V old;
                std::memcpy(&old, cr + c * Lanes, sizeof(V));
                out = old + out;
            }
            std::memcpy(cr + c * Lanes, &out, sizeof(V));
        }
        T* __restrict tail = cr + (C - 1) * Lanes;
        if (g.overwrite)
            for (int e = 0; e < last; ++e) tail[e] = acc[i][C - 1][e];
        else
            for (int e = 0; e < last; ++e) tail[e] += acc[i][C - 1][e];
    }
}
// v = the first count values from `from`, zeros after them (an out-parameter: a function that
// returns a vector wider than the baseline ISA draws GCC's ABI warning)
template <class V, class T>
[[gnu::always_inline]] static inline void load_part(V& v, const T* from, int count) {
    v = V{};
    for (int i = 0; i < count; ++i) v[i] = from[i];
}

// a stored transposed, (k, m): Lanes rows of c at once, a(r..r+Lanes, p) being one load from a's
// row p. acc[j] lane i is c(r + i, j). A last block of fewer rows reads a whole vector where it
// stays inside a (the lanes past m are computed and dropped), element by element after that.
template <class T, int N, int Lanes>
[[gnu::always_inline]] static inline void gemm_down_columns(const kernels::GemmElement<T>& g, const T* b) {
    using V = typename detail::Vec<T, Lanes>::type;
    const std::int64_t m = g.m, k = g.k;
    for (std::int64_t r = 0; r < m; r += Lanes) {
        const int lanes = m - r < Lanes ? static_cast<int>(m - r) : Lanes;
        V acc[N];
        for (int j = 0; j < N; ++j) {
            acc[j] = V{};
            if (g.bias)  // lane by lane, not V{} + bias: that would turn a -0 bias into +0
                for (int i = 0; i < Lanes; ++i) acc[j][i] = g.bias[j];
        }
        // rows p < whole: a vector from a + p * m + r stays inside a's k * m values (two loops,
        // not a test per p)
        const std::int64_t whole = k * m < r + Lanes ? 0 : std::min(k, (k * m - r - Lanes) / m + 1);
        std::int64_t p = 0;
        for (; p < whole; ++p) {
            V av;
            std::memcpy(&av, g.a + p * m + r, sizeof(V));
            const T* __restrict bp = b + p * N;
            for (int j = 0; j < N; ++j) acc[j] += av * bp[j];
        }
        for (; p < k; ++p) {
            V av{};
            for (int i = 0; i < lanes; ++i) av[i] = g.a[p * m + r + i];
            const T* __restrict bp = b + p * N;
            for (int j = 0; j < N; ++j) acc[j] += av * bp[j];
        }
        for (int i = 0; i < lanes; ++i) {
            T* __restrict cr = g.c + (r + i) * N;
            if (g.overwrite)
                for (int j = 0; j < N; ++j) cr[j] = acc[j][i];
            else
                for (int j = 0; j < N; ++j) cr[j] += acc[j][i];
        }
    }
}

// n > 16 at run time (products too small for BLAS, or no BLAS): a row of c at a time, the
// compiler vectorising along it.
template <class T>
[[gnu::always_inline]] static inline void gemm_wide(const kernels::GemmElement<T>& g, const T* b) {
    const std::int64_t m = g.m, k = g.k, n = g.n;
    const std::int64_t a_row = g.trans_a ? 1 : k, a_col = g.trans_a ? m : 1;
    for (std::int64_t r = 0; r < m; ++r) {
        T* __restrict cr = g.c + r * n;
        if (g.overwrite)
            for (std::int64_t j = 0; j < n; ++j) cr[j] = g.bias ? g.bias[j] : T(0);
        else if (g.bias)
            for (std::int64_t j = 0; j < n; ++j) cr[j] += g.bias[j];
        for (std::int64_t p = 0; p < k; ++p) {
            const T av = g.a[r * a_row + p * a_col];
            const T* __restrict bp = b + p * n;
            for (std::int64_t j = 0; j < n; ++j) cr[j] += av * bp[j];
        }
    }
}

// a_sums[j] = the sum of a's column j, a stored (k, m) (a weight gradient's bias gradient), in
// kernels::column_sum's order (four running sums, rows r % 4, then (s0 + s1) + (s2 + s3)): the
// bits sum_rows gives. Lanes columns at once, a vector per row of a, which reaches past the row
// where that stays inside a (those lanes are dropped).
template <class T, int Lanes>
[[gnu::always_inline]] static inline void a_column_sums(const kernels::GemmElement<T>& g) {
    using V = typename detail::Vec<T, Lanes>::type;
    const std::int64_t m = g.m, k = g.k;
    for (std::int64_t j0 = 0; j0 < m; j0 += Lanes) {
        const int w = m - j0 < Lanes ? static_cast<int>(m - j0) : Lanes;
        // rows p < whole: a vector from a + p * m + j0 stays inside a's k * m values
        const std::int64_t whole = k * m < j0 + Lanes ? 0 : std::min(k, (k * m - j0 - Lanes) / m + 1);
        V s[4] = {};
        std::int64_t p = 0;
        for (; p + 4 <= whole; p += 4)  // no test per row where every row is a whole vector
            for (int u = 0; u < 4; ++u) {
                V row;
                std::memcpy(&row, g.a + (p + u) * m + j0, sizeof(V));
                s[u] += row;
            }
        for (; p + 4 <= k; p += 4)
            for (int u = 0; u < 4; ++u) {
                V row;
                if (p + u < whole)
                    std::memcpy(&row, g.a + (p + u) * m + j0, sizeof(V));
                else
                    load_part(row, g.a + (p + u) * m + j0, w);
                s[u] += row;
            }
        for (; p < k; ++p) {
            V row;
            load_part(row, g.a + p * m + j0, w);
            s[0] += row;
        }
        const V total = (s[0] + s[1]) + (s[2] + s[3]);
        for (int e = 0; e < w; ++e) g.a_sums[j0 + e] = kernels::write(g.a_sums[j0 + e], total[e], g.a_sums_overwrite);
    }
}

#if MINIGRAD_CPU_DISPATCH
template <class T>
MINIGRAD_TARGET_AVX2 static void gemm_avx2(const kernels::GemmElement<T>& g) {
    gemm_body<T, 8>(g);
}
#endif
};

// The product on the calling thread, a_sums included; the AVX2 loops where the CPU has them.
template <class T>
void gemm_builtin(const kernels::GemmElement<T>& g) {
#if MINIGRAD_CPU_DISPATCH
    if (cpu_has_avx2_fma()) return CpuGemm::gemm_avx2(g);
#endif
    CpuGemm::gemm_body<T, CpuGemm::plain_lanes>(g);
}

#if defined(MINIGRAD_PREBUILT) && !defined(MINIGRAD_NO_CPU_DISPATCH) && !defined(__AVX2__)
// compiled once, in the prebuilt library (src/prebuilt.cpp), for the ISA dispatch it was built with
extern template void gemm_builtin<float>(const kernels::GemmElement<float>&);
extern template void gemm_builtin<double>(const kernels::GemmElement<double>&);
#endif

}  // namespace minigrad::detail
