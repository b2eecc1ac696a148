// Per-index functors that both backends launch and that belong to no one op: fills, gradient
// accumulation, column sums, the broadcast of a bias or of a scalar's gradient, and GemmElement,
// the matrix product every backend's gemm primitive takes (and runs itself below a size). With them
// the shared math: exp_float, the rows8 vectors, the element policies. An op's own functors live in
// its ops/<family>.hpp, an optimizer's in optim/, the loss log's in loss_log.hpp (docs/design.md).
// CpuBackend runs a functor in a loop; CudaBackend runs it one index per GPU thread. Both backends
// therefore compute the same thing, and CI, which has no GPU, tests the GPU's arithmetic by
// running the functors on the host.
//
// Every functor, wherever it lives, follows these rules. Its operator()(i) handles index i of the
// range it is launched over and writes only what belongs to index i (so the CPU may split a range
// across threads); the comment above it gives the shapes and what i is. A functor whose index does
// a whole row or column of work says how much in work_per_index(), which the CPU weighs against
// its threshold for using threads. `overwrite` is false when the result is added to what is there
// (gradient accumulation).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../config.hpp"

namespace minigrad::kernels {

using index_t = std::int64_t;

template <class T>
MINIGRAD_HD inline T write(T old, T value, bool overwrite) {
    return overwrite ? value : old + value;
}

// take ? a : b in bit operations, which no compiler turns back into a branch: for a choice the data
// makes (a pooling's maximum, mispredicted as a branch about every other time), and for a select
// whose sides the vectoriser must not see as a load on one path (a gradient written or added)
template <class T>
MINIGRAD_HD_INLINE T select_bits(bool take, T a, T b) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    Bits x, y;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    const Bits mask = Bits(0) - static_cast<Bits>(take);
    x = (x & mask) | (y & ~mask);
    std::memcpy(&a, &x, sizeof a);
    return a;
}

// e^x for float, inline and branch-free (no libm call): x = n ln2 + r with ln2 split in two
// (Cody-Waite) so r is exact, e^r from its degree-6 Taylor-like minimax polynomial on |r| <= ln2/2,
// then 2^n put straight into the exponent bits. Within 2 ulp of std::exp on [-87, 88] (tested);
// the same code runs on both backends, so their softmaxes agree. exp_reduced returns e^r - 1 and
// sets scale = 2^n, so that e^x = scale (1 + result).
MINIGRAD_HD_INLINE float exp_reduced(float x, float& scale) {
    // Clamped to [-87, 88] (NaN to -87) by selects the compiler's vectoriser takes: both bounds
    // from x, then one chosen by sign. `x > -87 ? x : -87` then `x < 88 ? ...` would leave the
    // second comparison on one path only, which it keeps as a branch (a comparison may trap).
    const float above_lo = x > -87.0f ? x : -87.0f;
    const float below_hi = x < 88.0f ? x : 88.0f;
    x = x >= 0.0f ? below_hi : above_lo;
    // Round x/ln2 to the nearest integer: one instruction where SSE4.1 is on (the AVX2 build of
    // the CPU loops, the GPU); the add-and-subtract-2^23 trick would break under -ffast-math.
    const float n = std::nearbyint(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                     1.6666665459e-1f) * r + 5.0000001201e-1f;
    const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * r * r + r;
}
MINIGRAD_HD inline float exp_float(float x) {
    float scale;
    const float em1 = exp_reduced(x, scale);
    return (em1 + 1.0f) * scale;
}
// e^x - 1 as 2^n (e^r - 1) + (2^n - 1): exact arithmetic where n = 0 (|x| <= ln2/2), so small x
// keeps its digits, which exp_float(x) - 1 would lose.
MINIGRAD_HD inline float expm1_float(float x) {
    float scale;
    const float em1 = exp_reduced(x, scale);
    return em1 * scale + (scale - 1.0f);
}
// tanh and the logistic sigmoid for float, branch-free so that a loop over elements vectorises
// (the C library's tanhf and expf are a call per element: a quarter of an LSTM layer's time).
// tanh x = e / (e + 2) with e = e^2x - 1; sigmoid x = 1 / (1 + e^-x). Each within a few ulp of the
// exact value (tested: tanh everywhere, sigmoid on [-87, 87], below which it is under 2e-38 where
// the exact value is smaller still); NaN gives NaN.
MINIGRAD_HD inline float tanh_float(float x) {
    const float e = expm1_float(2.0f * x);
    const float t = e / (e + 2.0f);
    return std::isnan(x) ? x : t;  // an unordered comparison, which never traps: the loop stays vectorisable
}
MINIGRAD_HD inline float sigmoid_float(float x) {
    const float y = 1.0f / (1.0f + exp_float(-x));
    return std::isnan(x) ? x : y;
}

// Eight rows at a time on an x86-64 CPU with AVX2+FMA, one row per lane of a GCC/Clang vector:
// for row kernels over a few columns (a softmax over a handful of classes), where a row per index
// leaves the CPU's vector units idle. A functor may offer rows8(r) beside its row(); Cpu::launch_rows
// uses it where the CPU has AVX2, and everything else (the GPU, other CPUs, the tail rows) runs
// row(). rows8::exp is exp_float lane by lane (same steps); rows8::log is within 1 ulp of the exact logarithm
// for normal positive floats (tested), which is all a softmax's sum can be.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(MINIGRAD_NO_CPU_DISPATCH)
#define MINIGRAD_ROWS8 1
namespace rows8 {
typedef float f32x8 __attribute__((vector_size(32)));
typedef std::int32_t i32x8 __attribute__((vector_size(32)));

// The widest rows Cpu::launch_rows gives to rows8: a functor may keep a row's columns in vectors.
inline constexpr std::int64_t max_cols = 16;

template <class To, class From>
[[gnu::target("avx2,fma")]] inline To bits_as(const From& from) {
    static_assert(sizeof(To) == sizeof(From));
    To to;
    std::memcpy(&to, &from, sizeof to);
    return to;
}
// Lane i = x0[i * stride]: column c of eight rows of a row-major matrix is column(x0 + c, cols).
[[gnu::target("avx2,fma")]] inline f32x8 column(const float* x0, std::int64_t stride) {
    f32x8 v;
    for (int i = 0; i < 8; ++i) v[i] = x0[i * stride];
    return v;
}

[[gnu::target("avx2,fma")]] inline f32x8 exp(f32x8 x) {
    const f32x8 lo = f32x8{} - 87.0f, hi = f32x8{} + 88.0f;
    x = x > lo ? x : lo;
    x = x < hi ? x : hi;
    const f32x8 n = __builtin_ia32_roundps256(x * 1.44269504088896341f, 0x0C);  // nearbyint
    f32x8 r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    const f32x8 p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                     1.6666665459e-1f) * r + 5.0000001201e-1f;
    const f32x8 er = p * r * r + r + 1.0f;
    const i32x8 bits = (__builtin_convertvector(n, i32x8) + 127) << 23;
    return er * bits_as<f32x8>(bits);
}

// x = 2^e m with m in [sqrt(1/2), sqrt(2)) and f = m - 1 (exact). With s = f / (2 + f),
// log m = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s^2)), R summed to s^10 (|s| < 0.172: the next term
// is below 2^-30 of the result); the small terms are added first, ln2 split in two as in exp_float.
[[gnu::target("avx2,fma")]] inline f32x8 log(f32x8 x) {
    const i32x8 sqrt_half = i32x8{} + 0x3f3504f3;
    const i32x8 off = bits_as<i32x8>(x) - sqrt_half;
    const i32x8 e = off >> 23;  // arithmetic: a mantissa below sqrt(1/2) borrows from the exponent
    const f32x8 m = bits_as<f32x8>((off & 0x007fffff) + sqrt_half);
    const f32x8 f = m - 1.0f;
    const f32x8 s = f / (f + 2.0f);
    const f32x8 z = s * s;
    const f32x8 r = z * (0.6666666666f + z * (0.4000000000f + z * (0.2857142857f + z * 0.2222222222f)));
    const f32x8 half_f2 = 0.5f * f * f;
    const f32x8 fe = __builtin_convertvector(e, f32x8);
    return fe * 0.693359375f - ((half_f2 - (s * (half_f2 + r) + fe * -2.12194440e-4f)) - f);
}

}  // namespace rows8
#endif

// Element policies, for per-element code written once (an optimizer's rule):
//   template <class V> void update(index_t j, ...) { auto x = V::load(p + j); ...; V::store(p + j, x); }
// runs element j with V = Scalar<T> on every backend and, in a host loop over float elements on
// x86-64, elements j..j+3 with V = Lanes4: one SSE vector (baseline on x86-64, so no dispatch and
// no ABI question). Its sqrt is sqrtps, exact and with no errno to keep: std::sqrt's errno is what
// stops the compiler's own vectoriser, unless the user builds with -fno-math-errno.
template <class T>
struct Scalar {
    using type = T;
    static constexpr int width = 1;
    MINIGRAD_HD_INLINE static T load(const T* p) { return *p; }
    MINIGRAD_HD_INLINE static void store(T* p, T v) { *p = v; }
    MINIGRAD_HD_INLINE static T sqrt(T v) { return std::sqrt(v); }
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDA_ARCH__)
#define MINIGRAD_LANES4 1
struct Lanes4 {
    typedef float type __attribute__((vector_size(16)));
    static constexpr int width = 4;
    MINIGRAD_HD_INLINE static type load(const float* p) {
        type v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    MINIGRAD_HD_INLINE static void store(float* p, type v) { std::memcpy(p, &v, sizeof v); }
    MINIGRAD_HD_INLINE static type sqrt(type v) { return __builtin_ia32_sqrtps(v); }
};

// While alive, this thread's SSE arithmetic (float and double, scalar and vector) flushes
// subnormal results to zero and reads subnormal inputs as zero (MXCSR's FTZ and DAZ bits); the
// caller's mode comes back at the end of the scope. For loops where numbers decay geometrically
// towards zero, an optimizer's moments: without it every subnormal operand or result costs a
// microcode assist of about a hundred cycles, and the moments of a rarely active weight stay
// subnormal for hundreds of steps (the digits epoch measured 1.5x slower). The asm statements
// clobber memory, so that no load or store of the loop moves across them.
class SubnormalsAsZero {
  public:
    SubnormalsAsZero() {
        asm volatile("stmxcsr %0" : "=m"(saved_)::"memory");
        if ((saved_ & mode) != mode) {
            unsigned flushing = saved_ | mode;
            asm volatile("ldmxcsr %0" ::"m"(flushing) : "memory");
        }
    }
    ~SubnormalsAsZero() {
        if ((saved_ & mode) != mode) asm volatile("ldmxcsr %0" ::"m"(saved_) : "memory");
    }
    SubnormalsAsZero(const SubnormalsAsZero&) = delete;
    SubnormalsAsZero& operator=(const SubnormalsAsZero&) = delete;

  private:
    static constexpr unsigned mode = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
    unsigned saved_;
};
#endif

template <class T>
MINIGRAD_HD inline T exp(T x) {
    if constexpr (std::is_same_v<T, float>)
        return exp_float(x);
    else
        return std::exp(x);
}
template <class T>
MINIGRAD_HD inline T tanh(T x) {
    if constexpr (std::is_same_v<T, float>)
        return tanh_float(x);
    else
        return std::tanh(x);
}
template <class T>
MINIGRAD_HD inline T sigmoid(T x) {
    if constexpr (std::is_same_v<T, float>)
        return sigmoid_float(x);
    else
        return T(1) / (T(1) + std::exp(-x));
}

// y is (n); i over n
template <class T>
struct Fill {
    T* y;
    T value;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = value; }
};

// y is (n); i over n
template <class T>
struct AddScalar {
    T* y;
    T value;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = write(y[i], value, overwrite); }
};

// y is (n): y *= factor (an in-place mul_); i over n
template <class T>
struct ScaleInPlace {
    T* y;
    T factor;
    MINIGRAD_HD void operator()(index_t i) const { y[i] *= factor; }
};

// dy, dx are (n); i over n
template <class T>
struct AccumulateGrad {
    const T* dy;
    T* dx;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { dx[i] = write(dx[i], dy[i], overwrite); }
};

// dy is (rows, cols): the sum of column j over rows [begin, end). Four partial sums: one running
// sum is a chain of dependent adds, four overlap.
template <class T>
MINIGRAD_HD inline T column_sum(const T* dy, index_t cols, index_t j, index_t begin, index_t end) {
    T acc[4] = {0, 0, 0, 0};
    index_t r = begin;
    for (; r + 4 <= end; r += 4)
        for (int u = 0; u < 4; ++u) acc[u] += dy[(r + u) * cols + j];
    for (; r < end; ++r) acc[0] += dy[r * cols + j];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// dy is (rows, cols), db is (cols): the gradient of a broadcast row; j over cols
template <class T>
struct SumRows {
    const T* dy;
    T* db;
    index_t rows, cols;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return rows; }
    MINIGRAD_HD void operator()(index_t j) const { db[j] = write(db[j], column_sum(dy, cols, j, 0, rows), overwrite); }
    // The host's loop over columns [begin, end): column_sum's four partial sums for 64 columns at a
    // time, reading dy row by row (contiguous, vectorised) instead of one column at a time down
    // the rows (a cache line per element). The same adds in the same order: the same bits.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        constexpr index_t tile = 64;
        for (index_t j0 = begin; j0 < end; j0 += tile) {
            const index_t w = end - j0 < tile ? end - j0 : tile;
            T acc[4][tile] = {};
            index_t r = 0;
            for (; r + 4 <= rows; r += 4)
                for (int u = 0; u < 4; ++u) {
                    const T* row = dy + (r + u) * cols + j0;
                    for (index_t c = 0; c < w; ++c) acc[u][c] += row[c];
                }
            for (; r < rows; ++r) {
                const T* row = dy + r * cols + j0;
                for (index_t c = 0; c < w; ++c) acc[0][c] += row[c];
            }
            for (index_t c = 0; c < w; ++c) db[j0 + c] = write(db[j0 + c], (acc[0][c] + acc[1][c]) + (acc[2][c] + acc[3][c]), overwrite);
        }
    }
};

// The first pass of a column sum spread over many threads: dy is (rows, cols), partial is
// (chunks, cols) with chunk c summing rows [c * chunk_rows, (c + 1) * chunk_rows). i over
// chunks * cols, a chunk's columns side by side so neighbouring threads read neighbouring floats.
// SumRows over partial (rows = chunks) finishes it.
template <class T>
struct SumRowsPartial {
    const T* dy;
    T* partial;
    index_t rows, cols, chunk_rows;
    MINIGRAD_HD index_t work_per_index() const { return chunk_rows; }
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t chunk = i / cols, j = i % cols;
        const index_t begin = chunk * chunk_rows;
        const index_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
        partial[i] = column_sum(dy, cols, j, begin, end);
    }
};

// total is (1), out is (1), device_scale (may be null) is (1): out = scale * total (* device_scale),
// written or added. The last step of a sum whose total a library reduction produced; one index
template <class T>
struct ScaleWrite {
    const T* total;
    T* out;
    T scale;
    bool overwrite;
    const T* device_scale = nullptr;
    MINIGRAD_HD void operator()(index_t) const {
        out[0] = write(out[0], device_scale ? total[0] * scale * device_scale[0] : total[0] * scale, overwrite);
    }
};

// row is (cols), y is (rows, cols): y = row in every row, written or added (a bias put in place
// before a library matrix product adds to it); i over rows * cols
template <class T>
struct BroadcastRow {
    const T* row;
    T* y;
    index_t cols;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = write(y[i], row[i % cols], overwrite); }
};

// dy is (1), dx is (n): the gradient of sum (scale 1) or mean (scale 1/n); i over n
template <class T>
struct BroadcastScalarGrad {
    const T* dy;
    T* dx;
    T scale;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { dx[i] = write(dx[i], dy[0] * scale, overwrite); }
};

// Row functors (softmax, cross-entropy) write their per-row arithmetic once, as row<Lanes>(r, lane,
// team): `Lanes` threads share row r, lane `lane` takes columns lane, lane + Lanes, ..., and
// team.max / team.sum combine a value across the lanes, every lane getting the result. The
// operator()(r) every backend launches is row<1> with a team of one; CudaBackend runs row<32> with
// a warp as the team when rows are long (see Cuda::launch_rows).
struct SoloTeam {
    template <class T>
    MINIGRAD_HD T max(T v) const { return v; }
    template <class T>
    MINIGRAD_HD T sum(T v) const { return v; }
};

// A tensor of up to eight dims read through strides: for index i of a row-major space of dims,
// offset(i) = the sum over d of i's coordinate d times strides[d] (0 along a dim that is
// stretched). The host builds it with strided_index, which drops dims of size 1 and merges
// neighbours that are one run in memory, so most launches loop over one to three dims.
struct StridedIndex {
    static constexpr int max_dims = 8;
    int nd = 0;
    index_t dims[max_dims]{};
    index_t strides[max_dims]{};
    MINIGRAD_HD index_t offset(index_t i) const {
        index_t off = 0;
        for (int d = nd - 1; d >= 0; --d) {
            off += (i % dims[d]) * strides[d];
            i /= dims[d];
        }
        return off;
    }
};
// dims and strides of nd entries (nd <= 8), outermost first.
inline StridedIndex strided_index(const index_t* dims, const index_t* strides, int nd) {
    StridedIndex s;
    for (int d = 0; d < nd; ++d) {
        if (dims[d] == 1) continue;
        if (s.nd > 0 && s.strides[s.nd - 1] == strides[d] * dims[d]) {  // one run with the dim outside it
            s.dims[s.nd - 1] *= dims[d];
            s.strides[s.nd - 1] = strides[d];
        } else {
            s.dims[s.nd] = dims[d];
            s.strides[s.nd] = strides[d];
            ++s.nd;
        }
    }
    return s;
}

// c is (m, n) = op(a) op(b) [+ bias row (n)], where op(a) is (m, k) and op(b) is (k, n); a is
// stored (k, m) when trans_a, b is stored (n, k) when trans_b. i over m*n (one output each).
// a_sums, where given (trans_a only), gets the sums of a's columns (m), written or added, in the
// product's pass: a linear layer's bias gradient beside its weight gradient (GemmRowSums runs both).
template <class T>
struct GemmElement {
    const T* a;
    const T* b;
    const T* bias;  // may be null
    T* c;
    index_t m, n, k;
    bool trans_a, trans_b, overwrite;
    T* a_sums = nullptr;
    bool a_sums_overwrite = false;
    MINIGRAD_HD index_t work_per_index() const { return k > 0 ? k : 1; }
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t row = i / n, col = i % n;
        c[i] = write(c[i], dot(row, col, 0, k, bias ? bias[col] : T(0)), overwrite);
    }
    // acc + the terms p in [begin, end) of output (row, col)'s dot product, in order
    MINIGRAD_HD T dot(index_t row, index_t col, index_t begin, index_t end, T acc) const {
        for (index_t p = begin; p < end; ++p) {
            const T av = trans_a ? a[p * m + row] : a[row * k + p];
            const T bv = trans_b ? b[col * k + p] : b[p * n + col];
            acc += av * bv;
        }
        return acc;
    }
    // a_sums[j] (trans_a: a is stored (k, m)), summed as SumRows sums a column
    MINIGRAD_HD void a_sum(index_t j) const { a_sums[j] = write(a_sums[j], column_sum(a, m, j, 0, k), a_sums_overwrite); }
};

// A product with a_sums: i over m * (n + 1), index (row, n) being a_sums[row] and the others the
// product's outputs, so one launch computes both.
template <class T>
struct GemmRowSums {
    GemmElement<T> g;
    MINIGRAD_HD index_t work_per_index() const { return g.k > 0 ? g.k : 1; }
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t row = i / (g.n + 1), col = i % (g.n + 1);
        if (col == g.n)
            g.a_sum(row);
        else
            g(row * g.n + col);
    }
};

// A product cut along k (a split-k): partial is (splits, m * n), partial[s, i] = output i's dot
// product over the k range s (k_chunk terms, the last range fewer), the bias added in range 0; i
// over splits * m * n, neighbouring threads on neighbouring outputs. SumRows over partial (rows =
// splits) then writes or adds c, the ranges in order (no atomics). For a product with few outputs
// and a long k, such as a weight gradient over a large batch, where a thread per output would
// leave most of a GPU idle while each walks all of k (gemm_k_splits says when).
template <class T>
struct GemmSplitK {
    GemmElement<T> g;
    T* partial;
    index_t k_chunk;
    MINIGRAD_HD index_t work_per_index() const { return k_chunk; }
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t outputs = g.m * g.n, s = i / outputs, o = i % outputs;
        const index_t begin = s * k_chunk, end = begin + k_chunk < g.k ? begin + k_chunk : g.k;
        partial[i] = g.dot(o / g.n, o % g.n, begin, end, s == 0 && g.bias ? g.bias[o % g.n] : T(0));
    }
};
// Into how many ranges of k a device whose launches fill `fill` threads cuts a product (GemmSplitK):
// 1 (not cut) where its outputs already take a quarter of the threads or k is short; else enough to
// fill the threads, each range at least min_chunk terms.
inline index_t gemm_k_splits(index_t outputs, index_t k, index_t fill, index_t min_chunk = 32) {
    if (outputs <= 0 || k < 2 * min_chunk || outputs * 4 >= fill) return 1;
    const index_t by_threads = fill / outputs, by_k = k / min_chunk;
    return by_threads < by_k ? by_threads : by_k;
}

// A product and the elementwise op that reads it, as one launch: index i computes c[i], then f(i),
// which reads c only at i, in the same thread. An activation as the product's epilogue (forward:
// f.x is c), or an activation's gradient right after the product that makes its dy (f.dy is c).
// The backends' gemm_then launches it; a compiled program also makes it from two records.
template <class T, class F>
struct GemmThen {
    GemmElement<T> g;
    F f;
    MINIGRAD_HD index_t work_per_index() const { return g.work_per_index(); }
    MINIGRAD_HD void operator()(index_t i) const {
        g(i);
        f(i);
    }
};

// The functors a family of ops launches, as a list of types. Each ops/ and optim/ file that
// launches work exports its list next to its functors (kernels::UnaryFunctors<T>, ...), and a
// compiled step's program joins them (capture/compiled.hpp): no central catalogue to forget an op
// in. The unit tests check that every functor they saw launched in a float step is in the join
// (tests/unit_main.cpp).
template <class... Fs>
struct Functors {};
template <class... Ls>
struct JoinFunctors;
template <class... Fs>
struct JoinFunctors<Functors<Fs...>> {
    using type = Functors<Fs...>;
};
template <class... As, class... Bs, class... Rest>
struct JoinFunctors<Functors<As...>, Functors<Bs...>, Rest...> {
    using type = typename JoinFunctors<Functors<As..., Bs...>, Rest...>::type;
};
template <class... Ls>
using Join = typename JoinFunctors<Ls...>::type;

// The backend primitives' own functors (this file).
template <class T>
using PrimitiveFunctors = Functors<Fill<T>, AddScalar<T>, ScaleInPlace<T>, AccumulateGrad<T>, SumRows<T>, SumRowsPartial<T>,
                                  ScaleWrite<T>, BroadcastRow<T>, BroadcastScalarGrad<T>, GemmElement<T>, GemmRowSums<T>, GemmSplitK<T>>;

}  // namespace minigrad::kernels
