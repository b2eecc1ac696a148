// clip_grad_norm_ as torch.nn.utils.clip_grad_norm_ with norm_type 2: the gradients' total norm,
// and every gradient scaled by min(max_norm / (norm + 1e-6), 1). All on the backend: the norm comes
// back as a scalar tensor and the host never reads it, so a step with clipping can be captured.
#pragma once

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

// The table's gradients, one after another, are (offset[count]); squares is (offset[count]) at
// `squares`; i over the table's elements
template <class T>
struct SquareGrads {
    GradTable<T> table;
    T* squares;
    MINIGRAD_HD void operator()(index_t i) const {
        int t = 0;
        while (i >= table.offset[t + 1]) ++t;
        const T g = table.grad[t][i - table.offset[t]];
        squares[i] = g * g;
    }
};

// total_sq is (1), the sum of every gradient's squares; norm is (1), written by index 0 when
// write_norm (the first table); i over the table's elements. A NaN norm makes NaN gradients, as
// in PyTorch (error_if_nonfinite=False).
template <class T>
struct ClipGrads {
    GradTable<T> table;
    const T* total_sq;
    T* norm;
    T max_norm;
    bool write_norm;
    MINIGRAD_HD void operator()(index_t i) const {
        const T total = std::sqrt(total_sq[0]);
        if (write_norm && i == 0) norm[0] = total;
        const T coef = max_norm / (total + T(1e-6));
        const T clamped = coef > T(1) ? T(1) : coef;
        int t = 0;
        while (i >= table.offset[t + 1]) ++t;
        table.grad[t][i - table.offset[t]] *= clamped;
    }
};

}  // namespace minigrad::kernels

namespace minigrad::optim {

// Scales the gradients of `params` (those a step would use: detail::is_stepped) so their joint 2-norm is
// at most max_norm, and returns that norm before scaling as a scalar tensor on their backend.
// Launches: one per eight gradients to square, one sum, one per eight to scale; no host read.
template <class B, class T>
Tensor<B, T> clip_grad_norm_(const std::vector<Tensor<B, T>>& params, double max_norm) {
    detail::check_at_least<T>("clip_grad_norm_", "max_norm", max_norm, 0.0);
    std::vector<std::shared_ptr<minigrad::detail::TensorImpl<B, T>>> grads;
    for (const auto& p : params) {
        auto& impl = p.impl();
        if (!detail::is_stepped(impl)) continue;
        if (!grads.empty() && impl.device != grads.front()->device) {
            minigrad::detail::fail<DeviceError>("clip_grad_norm_: gradients on devices {} and {}; clip each device's parameters apart",
                                                grads.front()->device, impl.device);
        }
        grads.push_back(impl.grad);
    }
    if (grads.empty()) return Tensor<B, T>::zeros(Shape{});
    const int device = grads.front()->device;
    std::int64_t total = 0;
    for (auto& g : grads) total += g->numel();

    auto squares = Tensor<B, T>::empty(Shape{total}, device);
    auto total_sq = Tensor<B, T>::empty(Shape{}, device);
    auto norm = Tensor<B, T>::empty(Shape{}, device);
    // The grads as tables of up to eight, each table's elements a contiguous run of `squares`.
    auto for_each_table = [&](auto launch_table) {
        kernels::GradTable<T> table{};
        std::int64_t start = 0;
        bool first = true;
        for (std::size_t i = 0; i < grads.size(); ++i) {
            const int t = table.count++;
            table.grad[t] = grads[i]->data;
            table.offset[t + 1] = table.offset[t] + grads[i]->numel();
            if (table.count == kernels::GradTable<T>::capacity || i + 1 == grads.size()) {
                launch_table(table, start, first);
                start += table.offset[table.count];
                first = false;
                table = {};
            }
        }
    };
    for_each_table([&](const kernels::GradTable<T>& table, std::int64_t start, bool) {
        B::launch(table.offset[table.count], kernels::SquareGrads<T>{table, squares.data() + start}, device);
    });
    B::sum(squares.data(), total, total_sq.data(), T(1), true, device);
    for_each_table([&](const kernels::GradTable<T>& table, std::int64_t, bool first) {
        B::launch(table.offset[table.count], kernels::ClipGrads<T>{table, total_sq.data(), norm.data(), static_cast<T>(max_norm), first},
                  device);
    });
    return norm;
}

}  // namespace minigrad::optim
