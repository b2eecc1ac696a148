// Shared by the GPU suite's files (test_cuda*.cpp): the CPU and CUDA tensor types, a closeness
// check, and Iris on either backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../helpers.hpp"
#include "iris.hpp"
#include "../iris_run.hpp"
#include "../recipe_run.hpp"

using CpuT = mg::Tensor<mg::Cpu>;
using GpuT = mg::Tensor<mg::Cuda>;

inline void check_close(const std::vector<float>& a, const std::vector<float>& b, double tol = 1e-5) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("element ", i);
        CHECK(a[i] == doctest::Approx(b[i]).epsilon(tol).scale(1.0));
    }
}

template <class B>
using IrisMLP = examples::IrisMLP<B>;

inline const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

struct Iris {
    CpuT x;
    mg::Tensor<mg::Cpu, std::int32_t> y;
};
inline Iris iris() {
    const auto split = examples::load_iris(iris_path);
    return {CpuT::from(split.x_train), mg::Tensor<mg::Cpu, std::int32_t>::from(split.y_train)};
}

// Iris (iris_run.hpp) with momentum on one backend, recording its loss each step.
template <class B>
struct IrisSteps : IrisRun<B> {
    mg::LossLog log;
    IrisSteps() : IrisRun<B>(0.9, 0.05) {}
    void step() { IrisRun<B>::step(log); }
};

// Sets where matrix products switch to cuBLAS for one scope.
struct CrossoverGuard {
    std::int64_t saved = mg::cuda::cublas_crossover();
    explicit CrossoverGuard(std::int64_t mnk) { mg::cuda::set_cublas_crossover(mnk); }
    ~CrossoverGuard() { mg::cuda::set_cublas_crossover(saved); }
    CrossoverGuard(const CrossoverGuard&) = delete;
    CrossoverGuard& operator=(const CrossoverGuard&) = delete;
};
inline constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
