// Shared test helpers: host tensors from lists, and a central-difference gradient check.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

template <class T = double>
mg::Tensor<mg::Cpu, T> tensor(std::vector<T> values, mg::Shape shape, bool requires_grad = false) {
    auto t = mg::Tensor<mg::Cpu, T>::from(values, shape);
    if (requires_grad) t.requires_grad_();
    return t;
}

// n values drawn uniformly from [-1, 1) (std::mt19937 from seed), as T: a kernel's raw inputs.
template <class T>
std::vector<T> uniform_values(std::int64_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<T>(dist(gen));
    return v;
}

template <class T = double>
mg::Tensor<mg::Cpu, T> random_tensor(mg::Shape shape, std::uint64_t seed, double lo = -1, double hi = 1) {
    mg::Generator gen(seed);
    auto t = mg::Tensor<mg::Cpu, T>::uniform(shape, lo, hi, gen);
    t.requires_grad_();
    return t;
}

// sum(y * w) for weights w drawn uniformly from [0.5, 1.5) (a Generator from seed): a scalar whose
// gradient with respect to y is w, so that a gradient check sees every element with its own weight.
inline mg::Tensor<mg::Cpu, double> weighted_sum(const mg::Tensor<mg::Cpu, double>& y, std::uint64_t seed = 7) {
    mg::Generator gen(seed);
    return mg::sum(y * mg::Tensor<mg::Cpu, double>::uniform(y.shape(), 0.5, 1.5, gen));
}

// While it lives, every compiled program (StepMode::compiled) captured runs on the grid (a
// cooperative grid on a GPU, a team of host threads on the CPU), however small its records.
struct AllOnGrid {
    std::int64_t saved = mg::compiled_block_max_work();
    AllOnGrid() { mg::set_compiled_block_max_work(0); }
    ~AllOnGrid() { mg::set_compiled_block_max_work(saved); }
    AllOnGrid(const AllOnGrid&) = delete;
    AllOnGrid& operator=(const AllOnGrid&) = delete;
};

// Checks d f / d input for every input against central differences in double. f must return a
// scalar and must be smooth near the inputs' values.
inline void check_gradients(const std::function<mg::Tensor<mg::Cpu, double>()>& f,
                            std::vector<mg::Tensor<mg::Cpu, double>> inputs, double eps = 1e-6, double tol = 1e-6) {
    for (auto& in : inputs)
        if (in.impl().grad) in.impl().grad_is_zero = true;
    f().backward();
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        auto& in = inputs[k];
        REQUIRE(in.grad().defined());
        const auto analytic = in.grad().to_vector();
        double* data = in.data();
        for (std::int64_t i = 0; i < in.numel(); ++i) {
            const double saved = data[i];
            double plus, minus;
            {
                mg::NoGradGuard no_grad;
                data[i] = saved + eps;
                plus = f().item();
                data[i] = saved - eps;
                minus = f().item();
            }
            data[i] = saved;
            const double numeric = (plus - minus) / (2 * eps);
            INFO("input #", k, " element ", i);
            CHECK(analytic[static_cast<std::size_t>(i)] == doctest::Approx(numeric).epsilon(tol).scale(1.0));
        }
    }
}

// The message of the minigrad::Error that `f` throws (fails the test if it throws none).
template <class F>
std::string error_message(F&& f) {
    try {
        f();
    } catch (const mg::Error& e) {
        return e.what();
    }
    FAIL("expected a minigrad::Error");
    return {};
}
