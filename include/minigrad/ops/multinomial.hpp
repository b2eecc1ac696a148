// multinomial(probs, num_samples, replacement, gen): category indices drawn from the rows of
// probs, as torch.multinomial. probs is (C) or (N, C) of non-negative, finite weights (they need not
// sum to 1); the result is (num_samples) or (N, num_samples) of int64. Without replacement a row's
// draws are distinct, and num_samples may not exceed its non-zero weights.
//
// It is for generation (sampling a model's next token), not for a training step: the weights are
// read on the host (a host read, so on a GPU it waits for the work queued before it), checked, and
// drawn from with the Generator's uniform draws, one per sample in row order; then the indices go
// back to probs' backend. So a seed draws the same indices on every backend and thread count
// (they differ from PyTorch's, whose generator is another).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "../random.hpp"
#include "checks.hpp"

namespace minigrad {

template <class B, class T>
    requires std::is_floating_point_v<T>
Tensor<B, std::int64_t> multinomial(const Tensor<B, T>& probs, std::int64_t num_samples, bool replacement = false,
                                    Generator& gen = default_generator()) {
    using detail::fail;
    constexpr const char* op = "multinomial";
    if (!probs.defined()) fail<ValueError>("{}: argument #1 'probs' is an undefined tensor", op);
    if (probs.ndim() != 1 && probs.ndim() != 2) {
        fail<ShapeError>("{}: argument #1 'probs' has shape {}; expected 1 or 2 dims, (C) or (N, C)", op, probs.shape());
    }
    const std::int64_t rows = probs.ndim() == 2 ? probs.size(0) : 1, classes = probs.size(-1);
    if (classes == 0) fail<ShapeError>("{}: argument #1 'probs' has shape {}: no categories to draw from", op, probs.shape());
    if (num_samples <= 0) fail<ValueError>("{}: argument #2 'num_samples' is {}; expected a positive number", op, num_samples);
    if (!replacement && num_samples > classes) {
        fail<ValueError>("{}: cannot draw num_samples={} distinct categories from {} without replacement", op, num_samples, classes);
    }
    const auto weights = probs.to_vector();
    std::vector<std::int64_t> out(static_cast<std::size_t>(rows * num_samples));
    std::vector<double> row(static_cast<std::size_t>(classes));
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t nonzero = 0;
        for (std::int64_t c = 0; c < classes; ++c) {
            const double w = static_cast<double>(weights[static_cast<std::size_t>(r * classes + c)]);
            if (!std::isfinite(w) || w < 0) {
                fail<ValueError>("{}: probs[{}][{}] is {}; every weight must be finite and non-negative", op, r, c, w);
            }
            row[static_cast<std::size_t>(c)] = w;
            nonzero += w > 0;
        }
        if (nonzero == 0) fail<ValueError>("{}: row {} of probs sums to 0: nothing to draw", op, r);
        if (!replacement && num_samples > nonzero) {
            fail<ValueError>("{}: row {} has {} non-zero weights, fewer than num_samples={} drawn without replacement", op, r, nonzero,
                             num_samples);
        }
        std::vector<double> draws(static_cast<std::size_t>(num_samples));
        gen.fill_uniform(std::span<double>(draws), 0, 1);  // one lock per row: another thread's draws do not interleave
        for (std::int64_t s = 0; s < num_samples; ++s) {
            double total = 0;
            for (const double w : row) total += w;
            // the first category whose running sum passes u * total; never one of weight 0
            const double target = draws[static_cast<std::size_t>(s)] * total;
            std::int64_t pick = -1;
            double running = 0;
            for (std::int64_t c = 0; c < classes; ++c) {
                const double w = row[static_cast<std::size_t>(c)];
                if (w == 0) continue;
                pick = c;  // the last non-zero one, should rounding leave target past the end
                running += w;
                if (target < running) break;
            }
            out[static_cast<std::size_t>(r * num_samples + s)] = pick;
            if (!replacement) row[static_cast<std::size_t>(pick)] = 0;
        }
    }
    const auto shape = probs.ndim() == 2 ? Shape{rows, num_samples} : Shape{num_samples};
    return Tensor<B, std::int64_t>::from(std::span<const std::int64_t>(out), shape, probs.device());
}

}  // namespace minigrad
