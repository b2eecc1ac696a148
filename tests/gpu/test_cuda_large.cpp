// Large shapes on CUDA against the CPU backend: cuBLAS and its crossover, TF32, multi-block
// reductions, warp-per-row kernels, optimizers over millions of parameters. (Their captured steps,
// cuBLAS inside one and the loader feeding one, are in test_cuda_step_graph.cpp.) Cases tagged
// [large] are left out of the sanitizer runs.
#include "gpu_helpers.hpp"

// ---- large shapes: cuBLAS, multi-block reductions, warp-per-row kernels -----------------------

// |a_i - b_i| <= tol * max |b|: for gradients, whose elements are small (1/rows) and would pass
// any absolute tolerance.
static void check_close_scaled(const std::vector<float>& a, const std::vector<float>& b, double tol) {
    REQUIRE(a.size() == b.size());
    double scale = 0, worst = 0;
    for (float v : b) scale = std::max(scale, double(std::abs(v)));
    REQUIRE(scale > 0);
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    CHECK(worst <= tol * scale);
}

static std::vector<float> random_row(std::int64_t n, mg::Generator& gen) {
    return CpuT::uniform({n}, -1, 1, gen).to_vector();
}


struct Tf32Guard {
    bool saved = mg::cuda::tf32_allowed();
    explicit Tf32Guard(bool allow) { mg::cuda::allow_tf32(allow); }
    ~Tf32Guard() { mg::cuda::allow_tf32(saved); }
};

// c = op(a) op(b) [+ bias] (written or added to init) through Cuda::gemm, by cuBLAS or GemmElement;
// checks that the path asked for is the one taken.
static std::vector<float> gpu_gemm(bool by_cublas, const GpuT& a, const GpuT& b, const GpuT* bias, const CpuT& init,
                                   std::int64_t m, std::int64_t n, std::int64_t k, bool ta, bool tb, bool overwrite) {
    CrossoverGuard guard(by_cublas ? 0 : never);
    auto c = init.to<mg::Cuda>();
    const auto before = mg::counters().library_gemms;
    mg::Cuda::gemm(mg::kernels::GemmElement<float>{a.data(), b.data(), bias ? bias->data() : nullptr, c.data(), m, n, k, ta, tb, overwrite}, 0);
    CHECK(mg::counters().library_gemms - before == (by_cublas ? 1u : 0u));
    return c.to_vector();
}

TEST_CASE("cuBLAS equals the built-in GemmElement in every transpose, bias and accumulate mode at odd sizes [large]") {
    mg::Generator gen(11);
    const std::int64_t sizes[] = {1, 3, 17, 1000};
    for (auto m : sizes)
        for (auto n : sizes)
            for (auto k : sizes) {
                if ((m == 1000) + (n == 1000) + (k == 1000) > 2) continue;  // 1000^3 adds time, not coverage
                const auto a = CpuT::uniform({m * k}, -1, 1, gen).to<mg::Cuda>(), b = CpuT::uniform({k * n}, -1, 1, gen).to<mg::Cuda>();
                const auto bias = CpuT::uniform({n}, -1, 1, gen).to<mg::Cuda>();
                const auto init = CpuT::uniform({m, n}, -1, 1, gen);
                for (bool ta : {false, true})
                    for (bool tb : {false, true})
                        for (bool with_bias : {false, true})
                            for (bool overwrite : {false, true}) {
                                CAPTURE(m);
                                CAPTURE(n);
                                CAPTURE(k);
                                CAPTURE(ta);
                                CAPTURE(tb);
                                CAPTURE(with_bias);
                                CAPTURE(overwrite);
                                const GpuT* bias_ptr = with_bias ? &bias : nullptr;
                                const auto lib = gpu_gemm(true, a, b, bias_ptr, init, m, n, k, ta, tb, overwrite);
                                const auto own = gpu_gemm(false, a, b, bias_ptr, init, m, n, k, ta, tb, overwrite);
                                // every term is at most 1 in size: k+2 of them bound the rounding
                                const double tol = 2e-6 * static_cast<double>(k + 2);
                                double worst = 0;
                                for (std::size_t i = 0; i < lib.size(); ++i) worst = std::max(worst, std::abs(double(lib[i]) - own[i]));
                                CHECK(worst <= tol);
                            }
            }
}

TEST_CASE("matrix products take cuBLAS from the crossover on, and linear/matmul match the CPU there") {
    CHECK(mg::cuda::cublas_crossover() == mg::cuda::default_cublas_crossover);
    CHECK(error_message([] { mg::cuda::set_cublas_crossover(-1); }) == "set_cublas_crossover: argument #1 'mnk' is -1, expected >= 0");
    mg::Generator gen(12);
    auto x = CpuT::uniform({300, 200}, -1, 1, gen), w = CpuT::uniform({100, 200}, -1, 1, gen), b = CpuT::uniform({100}, -1, 1, gen);
    auto xg = x.to<mg::Cuda>(), wg = w.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
    const std::int64_t mnk = 300 * 100 * 200;
    {
        CrossoverGuard guard(mnk + 1);
        const auto before = mg::counters().library_gemms;
        (void)mg::linear(xg, wg, bg);
        CHECK(mg::counters().library_gemms == before);
    }
    CrossoverGuard guard(mnk);
    const auto before = mg::counters().library_gemms;
    auto y = mg::linear(xg, wg, bg);
    CHECK(mg::counters().library_gemms == before + 1);
    check_close(y.to_vector(), mg::linear(x, w, b).to_vector(), 1e-5);
}

TEST_CASE("TF32 is off by default; allowed, it changes float products by about 1e-3 at most [large]") {
    CHECK_FALSE(mg::cuda::tf32_allowed());
    mg::Generator gen(13);
    const std::int64_t n = 512;
    auto a = CpuT::uniform({n, n}, -1, 1, gen), b = CpuT::uniform({n, n}, -1, 1, gen);
    const auto av = a.to_vector(), bv = b.to_vector();
    std::vector<double> ref(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t p = 0; p < n; ++p)
            for (std::int64_t j = 0; j < n; ++j) ref[i * n + j] += double(av[i * n + p]) * bv[p * n + j];
    const double scale = *std::max_element(ref.begin(), ref.end(), [](double l, double r) { return std::abs(l) < std::abs(r); });
    auto max_error = [&](const std::vector<float>& c) {
        double worst = 0;
        for (std::size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(c[i] - ref[i]));
        return worst / std::abs(scale);
    };
    CrossoverGuard guard(0);
    auto ag = a.to<mg::Cuda>(), bg = b.to<mg::Cuda>();
    const auto fp32 = mg::matmul(ag, bg).to_vector();
    std::vector<float> tf32;
    {
        Tf32Guard allow(true);
        tf32 = mg::matmul(ag, bg).to_vector();
    }
    CHECK_FALSE(mg::cuda::tf32_allowed());
    MESSAGE("max error relative to the largest output: FP32 ", max_error(fp32), ", TF32 ", max_error(tf32));
    CHECK(max_error(fp32) < 1e-5);  // FP32 math: TF32's 10-bit mantissa would be far above this
    CHECK(max_error(tf32) < 2e-3);
    CHECK(tf32 != fp32);  // the opt-in does reach cuBLAS
}

TEST_CASE("sum and mean over 1..10^7 elements match a double reference, on both the one-block and multi-block paths [large]") {
    mg::Generator gen(14);
    for (std::int64_t n : {1, 2, 255, 256, 257, 65535, 65536, 65537, 1000003, 10000000}) {
        CAPTURE(n);
        const auto x = CpuT::uniform({n}, -1, 1, gen);
        const auto values = x.to_vector();
        double ref = 0, magnitude = 0;
        for (float v : values) ref += v, magnitude += std::abs(v);
        auto xg = x.to<mg::Cuda>();
        const auto launches = mg::counters().kernel_launches;
        const double got = mg::sum(xg).item();
        const std::uint64_t expected_launches = n >= mg::Cuda::device_reduce_min ? 2 : 1;  // DeviceReduce then ScaleWrite
        CHECK(mg::counters().kernel_launches - launches == expected_launches);
        CHECK(std::abs(got - ref) <= 1e-6 * magnitude + 1e-6);
        CHECK(std::abs(mg::mean(xg).item() - ref / n) <= (1e-6 * magnitude + 1e-6) / n);
        auto out = GpuT::from({2.5f});
        mg::Cuda::sum(xg.data(), n, out.data(), 0.5f, false, 0);  // added, scaled
        CHECK(std::abs(out.item() - (2.5 + 0.5 * ref)) <= 1e-6 * magnitude + 1e-5);
    }
}

TEST_CASE("column sums (the bias gradient) over many rows match the CPU backend, written and added [large]") {
    mg::Generator gen(15);
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{1, 1}, {3, 5}, {64, 3}, {100000, 10}, {4096, 1000}, {70000, 3}, {5, 300000}};
    for (auto [rows, cols] : shapes)
        for (bool overwrite : {false, true}) {
            CAPTURE(rows);
            CAPTURE(cols);
            CAPTURE(overwrite);
            const auto dy = CpuT::uniform({rows, cols}, -1, 1, gen);
            const auto init = random_row(cols, gen);
            auto cpu = CpuT::from(init, {cols});
            auto gpu = CpuT::from(init, {cols}).to<mg::Cuda>();
            mg::Cpu::sum_rows(dy.data(), rows, cols, cpu.data(), overwrite, 0);
            auto dyg = dy.to<mg::Cuda>();
            mg::Cuda::sum_rows(dyg.data(), rows, cols, gpu.data(), overwrite, 0);
            const auto c = cpu.to_vector(), g = gpu.to_vector(), values = dy.to_vector();
            double worst_gpu = 0, worst_cpu = 0;
            for (std::int64_t j = 0; j < cols; ++j) {
                double ref = overwrite ? 0.0 : init[j];
                for (std::int64_t r = 0; r < rows; ++r) ref += values[r * cols + j];
                worst_gpu = std::max(worst_gpu, std::abs(g[j] - ref));
                worst_cpu = std::max(worst_cpu, std::abs(c[j] - ref));
            }
            // a dropped or doubled row moves a sum by up to 1; rounding over 10^5 rows stays far below
            CHECK(worst_gpu <= 1e-5 + 1e-7 * static_cast<double>(rows));
            CHECK(worst_cpu <= 1e-5 + 1e-7 * static_cast<double>(rows));
        }
    // ...and through linear's backward, with the product on cuBLAS
    auto x = CpuT::uniform({50000, 8}, -1, 1, gen), w = CpuT::uniform({10, 8}, -1, 1, gen), b = CpuT::uniform({10}, -1, 1, gen);
    for (auto* t : {&w, &b}) t->requires_grad_();
    mg::sum(mg::linear(x, w, b)).backward();
    auto xg = x.to<mg::Cuda>(), wg = w.detach().to<mg::Cuda>(), bg = b.detach().to<mg::Cuda>();
    for (auto* t : {&wg, &bg}) t->requires_grad_();
    mg::sum(mg::linear(xg, wg, bg)).backward();
    check_close_scaled(bg.grad().to_vector(), b.grad().to_vector(), 1e-5);
    check_close_scaled(wg.grad().to_vector(), w.grad().to_vector(), 1e-5);
}

TEST_CASE("log_softmax and cross_entropy over many rows and many classes match the CPU backend [large]") {
    mg::Generator gen(16);
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{3000, 1000}, {7, 5000}, {100000, 10}, {65, 64}, {65, 63}, {33, 65}};
    for (auto [rows, cols] : shapes) {
        CAPTURE(rows);
        CAPTURE(cols);
        auto x = CpuT::uniform({rows, cols}, -4, 4, gen);
        auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({rows}, 0, static_cast<double>(cols), gen);
        x.requires_grad_();
        auto cpu_loss = mg::add(mg::cross_entropy(x, labels), mg::mean(mg::log_softmax(x)));
        cpu_loss.backward();
        auto xg = x.detach().to<mg::Cuda>();
        xg.requires_grad_();
        auto gpu_loss = mg::add(mg::cross_entropy(xg, labels.to<mg::Cuda>()), mg::mean(mg::log_softmax(xg)));
        gpu_loss.backward();
        // the CPU sums the mean's millions of terms one after another: its rounding, not the GPU's, sets this
        check_close(gpu_loss.to_vector(), cpu_loss.to_vector(), 1e-4);
        check_close(mg::log_softmax(xg.detach()).to_vector(), mg::log_softmax(x.detach()).to_vector(), 1e-5);
        check_close_scaled(xg.grad().to_vector(), x.grad().to_vector(), 1e-5);
    }
}

TEST_CASE("SGD with momentum and weight decay over 3 million parameters matches the CPU backend [large]") {
    mg::Generator gen(17);
    auto p = CpuT::uniform({1000, 3000}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({1000}, 0, 3000, gen);
    auto pg = p.to<mg::Cuda>();
    auto lg = labels.to<mg::Cuda>();
    p.requires_grad_();
    pg.requires_grad_();
    mg::optim::SGD<mg::Cpu, float> cpu_opt(std::vector<CpuT>{p}, {.lr = 0.5, .momentum = 0.9, .weight_decay = 0.01});
    mg::optim::SGD<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.lr = 0.5, .momentum = 0.9, .weight_decay = 0.01});
    for (int step = 0; step < 3; ++step) {
        cpu_opt.zero_grad();
        gpu_opt.zero_grad();
        mg::cross_entropy(p, labels).backward();
        mg::cross_entropy(pg, lg).backward();
        cpu_opt.step();
        gpu_opt.step();
    }
    check_close(pg.to_vector(), p.to_vector(), 1e-5);
}

TEST_CASE("Adam and RMSprop over 3 million parameters (many elements per lane) match the CPU backend [large]") {
    mg::Generator gen(17);
    auto p = CpuT::uniform({1000, 3000}, -1, 1, gen);
    auto labels = mg::Tensor<mg::Cpu, std::int32_t>::uniform({1000}, 0, 3000, gen);
    auto lg = labels.to<mg::Cuda>();
    for (int kind = 0; kind < 2; ++kind) {
        CAPTURE(kind);
        auto pc = p.clone();
        auto pg = p.to<mg::Cuda>();
        pc.requires_grad_();
        pg.requires_grad_();
        auto run = [&](auto& cpu_opt, auto& gpu_opt) {
            for (int step = 0; step < 3; ++step) {
                cpu_opt.zero_grad();
                gpu_opt.zero_grad();
                mg::cross_entropy(pc, labels).backward();
                mg::cross_entropy(pg, lg).backward();
                cpu_opt.step();
                gpu_opt.step();
            }
        };
        if (kind == 0) {
            mg::optim::Adam<mg::Cpu, float> cpu_opt(std::vector<CpuT>{pc}, {.lr = 0.01, .weight_decay = 0.01});
            mg::optim::Adam<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.lr = 0.01, .weight_decay = 0.01});
            run(cpu_opt, gpu_opt);
        } else {
            mg::optim::RMSprop<mg::Cpu, float> cpu_opt(std::vector<CpuT>{pc}, {.momentum = 0.9, .centered = true});
            mg::optim::RMSprop<mg::Cuda, float> gpu_opt(std::vector<GpuT>{pg}, {.momentum = 0.9, .centered = true});
            run(cpu_opt, gpu_opt);
        }
        check_close(pg.to_vector(), pc.to_vector(), 1e-5);
    }
}
