// Gradient clipping as torch.nn.utils:
// - clip_grad_norm_(params, max_norm, norm_type = 2, error_if_nonfinite = false): the gradients'
//   total norm of order norm_type (any p > 0, or infinity: the largest magnitude), and every
//   gradient scaled by min(max_norm / (norm + 1e-6), 1);
// - clip_grad_value_(params, clip_value): every gradient clamped to [-clip_value, clip_value].
// All on the backend: the norm comes back as a scalar tensor and the host never reads it (unless
// error_if_nonfinite asks it to), so a step with clipping can be captured.
//
// The norm is accumulated in double whatever the gradients' type: a float gradient of 1e20 has a
// square of 1e40, which is infinite as a float, while the norm itself (1.4e20 for two of them) is
// a finite float. Each thread sums a chunk of 16 gradients into one double, so the scratch is an
// eighth of the float gradients' bytes, and the backend's sum adds the chunks.
#pragma once

#include <cmath>
#include <vector>

#include "../tensor.hpp"
#include "checks.hpp"

namespace minigrad::kernels {

// Up to `capacity` gradients handled in one launch; offsets are their starts in one flat range.
template <class T>
struct GradTable {
    static constexpr int capacity = 8;
    T* grad[capacity];
    index_t offset[capacity + 1];
    int count;
};

// How a norm's terms are made and joined: sum of squares (p = 2), of magnitudes (p = 1), of
// magnitudes to the p (any other p), or the largest magnitude (p = infinity).
enum class NormKind { Square, Abs, Power, Max };

// The largest of a and b, NaN if either is (a NaN gradient makes a NaN norm, as in PyTorch).
MINIGRAD_HD inline double max_or_nan(double a, double b) { return a != a || a >= b ? a : b; }

// partial is (chunks of the table): chunk c joins the terms of the table's elements
// [16 c, 16 c + 16); c over ceil(elements / 16).
template <class T>
struct GradNormChunks {
    static constexpr index_t chunk = 16;
    GradTable<T> table;
    double* partial;
    double p;
    NormKind kind;
    MINIGRAD_HD void operator()(index_t c) const {
        const index_t end_all = table.offset[table.count];
        const index_t begin = c * chunk, end = begin + chunk < end_all ? begin + chunk : end_all;
        int t = 0;
        while (begin >= table.offset[t + 1]) ++t;
        double acc = 0;
        for (index_t i = begin; i < end; ++i) {
            while (i >= table.offset[t + 1]) ++t;
            const double g = static_cast<double>(table.grad[t][i - table.offset[t]]);
            const double a = g < 0 ? -g : g;
            switch (kind) {
                case NormKind::Square: acc += g * g; break;
                case NormKind::Abs: acc += a; break;
                case NormKind::Power: acc += std::pow(a, p); break;
                case NormKind::Max: acc = max_or_nan(acc, a); break;
            }
        }
        partial[c] = acc;
    }
    // The host's loop over chunks [cb, ce): a sum of squares takes four chunks of one gradient at
    // a time, each chunk's terms added in operator()'s order (the same bits), the four chains
    // overlapping instead of one waiting on the last add; the rest as operator().
    MINIGRAD_HD_INLINE void range(index_t cb, index_t ce) const {
        int t = 0;
        for (index_t c = cb; c < ce;) {
            const index_t begin = c * chunk;
            while (t + 1 < table.count && begin >= table.offset[t + 1]) ++t;
            index_t whole = (table.offset[t + 1] - begin) / chunk;  // chunks from c wholly inside gradient t
            if (whole > ce - c) whole = ce - c;
            if (kind != NormKind::Square || whole < 4) {
                (*this)(c);
                ++c;
                continue;
            }
            const T* g = table.grad[t] + (begin - table.offset[t]);
            index_t k = 0;
            for (; k + 4 <= whole; k += 4) {
                double acc[4] = {0, 0, 0, 0};
                for (index_t i = 0; i < chunk; ++i)
                    for (int u = 0; u < 4; ++u) {
                        const double v = static_cast<double>(g[(k + u) * chunk + i]);
                        acc[u] += v * v;
                    }
                for (int u = 0; u < 4; ++u) partial[c + k + u] = acc[u];
            }
            c += k;
        }
    }
};

// x is (2 half) or (2 half - 1): x[i] = max(x[i], x[i + half]) for i < n - half, so that the
// largest of x's first n values is in its first half. Repeated down to one value: the largest.
struct MaxHalve {
    double* x;
    index_t half;
    MINIGRAD_HD void operator()(index_t i) const { x[i] = max_or_nan(x[i], x[i + half]); }
};

// One element: the total norm from the joined terms, as the gradients' type in norm[0] and as a
// double in total_norm[0], and the scale min(max_norm / (norm + 1e-6), 1) in coef[0].
template <class T>
struct NormFinish {
    const double* joined;
    T* norm;
    double* total_norm;
    double* coef;
    double max_norm;
    double p;
    NormKind kind;
    MINIGRAD_HD void operator()(index_t) const {
        const double j = joined[0];
        const double n = kind == NormKind::Square ? std::sqrt(j) : kind == NormKind::Power ? std::pow(j, 1.0 / p) : j;
        norm[0] = static_cast<T>(n);
        total_norm[0] = n;
        const double c = max_norm / (n + 1e-6);
        coef[0] = c > 1.0 ? 1.0 : c;  // NaN stays NaN: NaN gradients, as PyTorch with error_if_nonfinite=False
    }
};

// The table's gradients scaled by coef[0]; i over the table's elements.
template <class T>
struct ScaleGrads {
    GradTable<T> table;
    const double* coef;
    MINIGRAD_HD void operator()(index_t i) const {
        int t = 0;
        while (i >= table.offset[t + 1]) ++t;
        T& g = table.grad[t][i - table.offset[t]];
        g = static_cast<T>(static_cast<double>(g) * coef[0]);
    }
};

// The table's gradients clamped to [-clip, clip] (NaN stays NaN); i over the table's elements.
template <class T>
struct ClampGrads {
    GradTable<T> table;
    T clip;
    MINIGRAD_HD void operator()(index_t i) const {
        int t = 0;
        while (i >= table.offset[t + 1]) ++t;
        T& g = table.grad[t][i - table.offset[t]];
        g = g > clip ? clip : g < -clip ? -clip : g;
    }
};

// The functors the clipping functions launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using ClipGradFunctors = Functors<GradNormChunks<T>, BlockSum<double>, MaxHalve, NormFinish<T>, ScaleGrads<T>, ClampGrads<T>>;

}  // namespace minigrad::kernels

namespace minigrad::optim {

namespace detail {

// The gradients of `params` that a step would use (is_stepped), all on one device.
template <class B, class T>
std::vector<std::shared_ptr<minigrad::detail::TensorImpl<B, T>>> stepped_grads(std::string_view fn, const std::vector<Tensor<B, T>>& params) {
    std::vector<std::shared_ptr<minigrad::detail::TensorImpl<B, T>>> grads;
    for (const auto& p : params) {
        auto& impl = p.impl();
        if (!is_stepped(impl)) continue;
        if (!grads.empty() && impl.device != grads.front()->device) {
            minigrad::detail::fail<DeviceError>("{}: gradients on devices {} and {}; clip each device's parameters apart", fn,
                                                grads.front()->device, impl.device);
        }
        grads.push_back(impl.grad);
    }
    return grads;
}

// Calls launch_table(table) for the grads as tables of up to eight.
template <class T, class Grads, class F>
void for_each_table(const Grads& grads, F&& launch_table) {
    kernels::GradTable<T> table{};
    for (std::size_t i = 0; i < grads.size(); ++i) {
        const int t = table.count++;
        table.grad[t] = grads[i]->data;
        table.offset[t + 1] = table.offset[t] + grads[i]->numel();
        if (table.count == kernels::GradTable<T>::capacity || i + 1 == grads.size()) {
            launch_table(table);
            table = {};
        }
    }
}

}  // namespace detail

// Scales the gradients of `params` (those a step would use: detail::is_stepped) so that their
// joint norm of order norm_type is at most max_norm, and returns that norm before scaling as a
// scalar tensor on their backend. norm_type is any p > 0, or infinity for the largest magnitude.
// With error_if_nonfinite, a NaN or infinite norm is refused before any gradient changes: a host
// read of the norm, so not inside a captured step.
// Launches: one per eight gradients to make the terms, a sum (or, for infinity, log2(chunks)
// halvings), one to finish the norm, one per eight gradients to scale; no host read.
template <class B, class T>
Tensor<B, T> clip_grad_norm_(const std::vector<Tensor<B, T>>& params, double max_norm, double norm_type = 2.0,
                             bool error_if_nonfinite = false) {
    minigrad::detail::check_at_least<double>("clip_grad_norm_", "max_norm", max_norm, 0.0);
    minigrad::detail::check_scalar<double>("clip_grad_norm_", "norm_type", norm_type, {.lo = 0, .lo_open = true, .allow_inf = true});
    const auto grads = detail::stepped_grads("clip_grad_norm_", params);
    if (grads.empty()) return Tensor<B, T>::zeros(Shape{});
    const int device = grads.front()->device;
    const auto kind = std::isinf(norm_type) ? kernels::NormKind::Max
                      : norm_type == 2      ? kernels::NormKind::Square
                      : norm_type == 1      ? kernels::NormKind::Abs
                                            : kernels::NormKind::Power;
    constexpr auto chunk = kernels::GradNormChunks<T>::chunk;
    std::int64_t chunks = 0;
    detail::for_each_table<T>(grads, [&](const kernels::GradTable<T>& table) { chunks += (table.offset[table.count] + chunk - 1) / chunk; });
    if (chunks == 0) return Tensor<B, T>::zeros(Shape{}, device);  // every gradient is empty

    auto partial = Tensor<B, double>::empty(Shape{chunks}, device);
    std::int64_t start = 0;
    detail::for_each_table<T>(grads, [&](const kernels::GradTable<T>& table) {
        const std::int64_t n = (table.offset[table.count] + chunk - 1) / chunk;
        B::launch(n, kernels::GradNormChunks<T>{table, partial.data() + start, norm_type, kind}, device);
        start += n;
    });
    auto joined = Tensor<B, double>::empty(Shape{}, device);
    const double* joined_data = joined.data();
    if (kind == kernels::NormKind::Max) {
        for (std::int64_t n = chunks; n > 1;) {
            const std::int64_t half = (n + 1) / 2;
            B::launch(n - half, kernels::MaxHalve{partial.data(), half}, device);
            n = half;
        }
        joined_data = partial.data();
    } else {
        B::sum(partial.data(), chunks, joined.data(), 1.0, true, device);
    }
    auto norm = Tensor<B, T>::empty(Shape{}, device);
    auto total_norm = Tensor<B, double>::empty(Shape{}, device);
    auto coef = Tensor<B, double>::empty(Shape{}, device);
    B::launch(1, kernels::NormFinish<T>{joined_data, norm.data(), total_norm.data(), coef.data(), max_norm, norm_type, kind}, device);
    if (error_if_nonfinite) {  // a host read, which a captured step refuses
        const double value = total_norm.item();
        if (!std::isfinite(value)) {
            minigrad::detail::fail<ValueError>("clip_grad_norm_: the total norm of order {} of {} gradients is {}, so "
                                               "they cannot be clipped; the gradients are left as they are (error_if_nonfinite=true)",
                                               norm_type, grads.size(), value);
        }
    }
    detail::for_each_table<T>(grads, [&](const kernels::GradTable<T>& table) {
        B::launch(table.offset[table.count], kernels::ScaleGrads<T>{table, coef.data()}, device);
    });
    return norm;
}

// Clamps every gradient of `params` (those a step would use) to [-clip_value, clip_value], as
// torch.nn.utils.clip_grad_value_. Launches: one per eight gradients; no host read.
template <class B, class T>
void clip_grad_value_(const std::vector<Tensor<B, T>>& params, double clip_value) {
    minigrad::detail::check_at_least<T>("clip_grad_value_", "clip_value", clip_value, 0.0);
    const auto grads = detail::stepped_grads("clip_grad_value_", params);
    if (grads.empty()) return;
    const int device = grads.front()->device;
    detail::for_each_table<T>(grads, [&](const kernels::GradTable<T>& table) {
        B::launch(table.offset[table.count], kernels::ClampGrads<T>{table, static_cast<T>(clip_value)}, device);
    });
}

}  // namespace minigrad::optim
