// Measures the two thresholds of the Cpu backend on this machine, each as a table:
//  1. matrix products: the built-in kernel against BLAS (one thread each) over shapes m x n x k in
//     the modes training uses (forward x w^T + bias, dx = dy w, dw = dy^T x accumulated), to place
//     Cpu::blas_min_work;
//  2. launches: a ReLU over n elements on one thread against all threads, to place
//     detail::parallel_min_work.
// Each time is the median of --repeats runs of a loop lasting at least ~2 ms.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

namespace mg = minigrad;
namespace kn = minigrad::kernels;

template <class F>
double median_us(F&& f, int repeats) {
    f();  // warm caches and thread pools
    int inner = 1;
    for (;;) {  // enough calls per sample to last ~2 ms
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) f();
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 2e-3 || inner > (1 << 20)) break;
        inner *= 2;
    }
    std::vector<double> us;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) f();
        us.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e6 / inner);
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
}

struct Mode {
    const char* name;
    bool trans_a, trans_b, bias, overwrite;
};

int main(int argc, char** argv) {
    int repeats = 7, gemm_threads = 1;
    CLI::App app{"Where minigrad's Cpu backend switches to BLAS and to threads"};
    app.add_option("--repeats", repeats);
    app.add_option("--gemm-threads", gemm_threads, "threads BLAS may use in the first table (the built-in kernel uses one)");
    CLI11_PARSE(app, argc, argv);
#if defined(MINIGRAD_HAS_BLAS)
    mg::set_num_threads(gemm_threads);
    const Mode modes[] = {{"x w^T + b", false, true, true, true}, {"dy w", false, false, false, true}, {"dy^T x (+=)", true, false, false, false}};
    struct Size {
        std::int64_t m, n, k;
    };
    const Size sizes[] = {{120, 10, 4},   {120, 3, 10},  {120, 32, 4}, {20, 20, 20}, {24, 24, 24}, {32, 32, 8}, {1024, 512, 10}, {1024, 10, 1024},   {16, 16, 16},    {32, 32, 32},   {64, 10, 64},     {40, 40, 40},
                          {64, 64, 16},   {48, 48, 48},   {64, 64, 32},    {64, 64, 64},   {256, 10, 128},   {96, 96, 96},
                          {128, 128, 64}, {256, 64, 64},  {128, 128, 128}, {256, 128, 64}, {256, 128, 128}, {1024, 10, 512},
                          {256, 256, 256}, {1024, 512, 256}};
    fmt::print("## matrix products: built-in kernel (1 thread) vs BLAS ({} thread(s)) (us, median of {})\n\n", gemm_threads, repeats);
    fmt::print("| m x n x k | m*n*k | mode | built-in | BLAS | built-in / BLAS |\n| --- | --- | --- | --- | --- | --- |\n");
    for (const auto& s : sizes) {
        std::vector<float> a(s.m * s.k, 0.5f), b(s.k * s.n, 0.25f), bias(s.n, 1.0f), c(s.m * s.n, 0.0f);
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 7) * 0.1f;
        for (const auto& mode : modes) {
            const kn::GemmElement<float> g{a.data(), b.data(), mode.bias ? bias.data() : nullptr, c.data(), s.m, s.n, s.k,
                                           mode.trans_a, mode.trans_b, mode.overwrite};
            const double mine = median_us([&] { mg::Cpu::gemm_builtin(g); }, repeats);
            const double blas = median_us([&] { mg::Cpu::gemm_blas(g); }, repeats);
            fmt::print("| {}x{}x{} | {} | {} | {:.2f} | {:.2f} | {:.2f} |\n", s.m, s.n, s.k, s.m * s.n * s.k, mode.name, mine, blas, mine / blas);
        }
    }
#else
    fmt::print("(built without BLAS: no matrix-product table)\n");
#endif
    const int all = mg::detail::cores_available();
    mg::set_num_threads(all);
    fmt::print("\n## launches: ReLU over n elements, 1 thread vs {} (us, median of {})\n\n", all, repeats);
    fmt::print("| n | 1 thread | {} threads | 1 / {} |\n| --- | --- | --- | --- |\n", all, all);
    for (std::int64_t n = 1 << 11; n <= (1 << 20); n *= 2) {
        std::vector<float> x(n, -0.5f), y(n);
        for (std::int64_t i = 0; i < n; i += 2) x[i] = 1.0f;
        // below the library's threshold a launch never uses threads, so time the split directly
        auto relu = [&](int threads) {
#pragma omp parallel num_threads(threads)
            {
#if defined(_OPENMP)
                const std::int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
#else
                const std::int64_t team = 1, t = 0;
#endif
                const kn::UnaryForward<float, kn::Relu<float>> f{x.data(), y.data(), {}};
                for (std::int64_t i = n * t / team; i < n * (t + 1) / team; ++i) f(i);
            }
        };
        const double one = median_us([&] { relu(1); }, repeats);
        const double many = median_us([&] { relu(all); }, repeats);
        fmt::print("| {} | {:.2f} | {:.2f} | {:.2f} |\n", n, one, many, one / many);
    }
    return 0;
}
