// Times one matrix product on the GPU both ways, cuBLAS and the built-in GemmElement, over shapes
// from tiny to large, to set mg::cuda::cublas_crossover() by measurement (scripts/gpu-check.sh runs
// it). Prints a table and the smallest m*n*k from which cuBLAS wins at every larger measured shape.
//   gemm_bench [--repeats N]
#include <minigrad/minigrad.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace mg = minigrad;

struct Product {
    std::int64_t m, n, k;
    bool trans_a, trans_b;
    const char* what;
};

// Median microseconds of one product, the stream drained around each timed batch.
static double time_product(const Product& p, bool by_cublas, int repeats) {
    mg::cuda::set_cublas_crossover(by_cublas ? 0 : std::numeric_limits<std::int64_t>::max());
    auto a = mg::Tensor<mg::Cuda>::uniform({p.m * p.k}, -1, 1);
    auto b = mg::Tensor<mg::Cuda>::uniform({p.k * p.n}, -1, 1);
    auto c = mg::Tensor<mg::Cuda>::zeros({p.m, p.n});
    const mg::kernels::GemmElement<float> g{a.data(), b.data(), nullptr, c.data(), p.m, p.n, p.k, p.trans_a, p.trans_b, true};
    mg::Cuda::gemm(g, 0);  // warm-up: handle, kernels, caches
    mg::Cuda::synchronize(0);
    const double work = static_cast<double>(p.m) * p.n * p.k;
    const int batch = std::max(1, static_cast<int>(std::min(1000.0, 2e9 / (work + 1))));
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < batch; ++i) mg::Cuda::gemm(g, 0);
        mg::Cuda::synchronize(0);
        samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / batch);
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

int main(int argc, char** argv) {
    int repeats = 5;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
            repeats = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: gemm_bench [--repeats N]\n");
            return 2;
        }
    }
    if (!mg::cuda::is_available()) {
        std::printf("skipped: %s\n", mg::cuda::unavailable_reason().c_str());
        return 77;
    }
    std::vector<Product> products;
    for (std::int64_t s : {8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096})
        products.push_back({s, s, s, false, false, "square"});
    // the MLP step (batch x in x hidden x classes): forward, input gradient, weight gradient
    const std::int64_t mlp[][4] = {{120, 4, 10, 3}, {256, 64, 128, 10}, {1024, 256, 512, 10}, {1024, 784, 1024, 10}, {8192, 1024, 4096, 10}};
    for (const auto& s : mlp) {
        const std::int64_t batch = s[0], in = s[1], hidden = s[2], classes = s[3];
        products.push_back({batch, hidden, in, false, true, "mlp fc1 forward"});
        products.push_back({batch, classes, hidden, false, true, "mlp fc2 forward"});
        products.push_back({batch, hidden, classes, false, false, "mlp fc2 dx"});
        products.push_back({classes, hidden, batch, true, false, "mlp fc2 dw"});
        products.push_back({hidden, in, batch, true, false, "mlp fc1 dw"});
    }
    std::sort(products.begin(), products.end(), [](const Product& l, const Product& r) {
        return static_cast<double>(l.m) * l.n * l.k < static_cast<double>(r.m) * r.n * r.k;
    });
    std::printf("GPU: %s; crossover now %lld (m*n*k)\n", mg::cuda::device_name(0).c_str(),
                static_cast<long long>(mg::cuda::cublas_crossover()));
    std::printf("| m | n | k | m*n*k | what | GemmElement us | cuBLAS us | faster |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    std::vector<std::pair<double, bool>> cublas_wins;  // (m*n*k, cuBLAS faster)
    for (const auto& p : products) {
        const double own = time_product(p, false, repeats), lib = time_product(p, true, repeats);
        const double work = static_cast<double>(p.m) * p.n * p.k;
        cublas_wins.emplace_back(work, lib < own);
        std::printf("| %lld | %lld | %lld | %.0f | %s | %.2f | %.2f | %s |\n", static_cast<long long>(p.m), static_cast<long long>(p.n),
                    static_cast<long long>(p.k), work, p.what, own, lib, lib < own ? "cuBLAS" : "GemmElement");
    }
    // the smallest m*n*k from which cuBLAS wins at every larger measured shape
    double crossover = -1;
    for (auto it = cublas_wins.rbegin(); it != cublas_wins.rend() && it->second; ++it) crossover = it->first;
    if (crossover < 0)
        std::printf("measured crossover: none (GemmElement won the largest shape)\n");
    else
        std::printf("measured crossover: m*n*k >= %.0f (set MINIGRAD_CUBLAS_CROSSOVER or mg::cuda::default_cublas_crossover)\n", crossover);
    return 0;
}
