// lstm_cell(gates, hc_prev): one step of torch.nn.LSTM's cell after its two products, fused: gates
// (N, 4 H) are the pre-activations in PyTorch's order (input, forget, cell, output), hc_prev (N, 2 H)
// the previous step's [h | c], of which the cell reads c. The result is (N, 2 H), [h | c] with
// c = f c_prev + i g and h = o tanh(c) (i, f, o sigmoids, g a tanh). One launch forward and one
// backward per step, where the same arithmetic as separate ops took four gate slices and nine
// elementwise launches; backward recomputes the gates from the pre-activations. nn::LSTM
// (nn/recurrent.hpp) runs it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// The four gates of one element, from the pre-activations of row r, column j (H columns per gate).
template <class T>
struct LstmGates {
    T i, f, g, o;
    MINIGRAD_HD_INLINE LstmGates(const T* row, index_t j, index_t hidden)
        : i(sigmoid(row[j])), f(sigmoid(row[hidden + j])), g(kernels::tanh(row[2 * hidden + j])), o(sigmoid(row[3 * hidden + j])) {}
};

// gates (rows, 4 hidden), hc_prev and hc (rows, 2 hidden); r over rows
template <class T>
struct LstmCellForward {
    const T* gates;
    const T* hc_prev;
    T* hc;
    index_t hidden;
    MINIGRAD_HD index_t work_per_index() const { return 4 * hidden; }
    MINIGRAD_HD_INLINE void operator()(index_t r) const {
        const T* row = gates + r * 4 * hidden;
        const T* prev = hc_prev + r * 2 * hidden;
        T* out = hc + r * 2 * hidden;
        MINIGRAD_IVDEP
        for (index_t j = 0; j < hidden; ++j) {
            const LstmGates<T> a(row, j, hidden);
            const T c = a.f * prev[hidden + j] + a.i * a.g;
            out[hidden + j] = c;
            out[j] = a.o * kernels::tanh(c);
        }
    }
};

// dhc (rows, 2 hidden) is the gradient of [h | c]; dgates (rows, 4 hidden) and the c half of
// dhc_prev (rows, 2 hidden) get theirs, written or added (the h half of dhc_prev is the product's
// business: written 0 where overwriting, else left). Either may be null. r over rows
template <class T>
struct LstmCellBackward {
    const T* gates;
    const T* hc_prev;
    const T* hc;
    const T* dhc;
    T* dgates;
    T* dhc_prev;
    index_t hidden;
    bool overwrite_gates, overwrite_prev;
    MINIGRAD_HD index_t work_per_index() const { return 8 * hidden; }
    MINIGRAD_HD_INLINE void operator()(index_t r) const {
        if (dgates && dhc_prev) row<true, true>(r);
        else if (dgates) row<true, false>(r);
        else if (dhc_prev) row<false, true>(r);
    }
    // What a gradient adds to: 0 where it overwrites (select_bits: an overwritten buffer may hold
    // anything, a NaN too; `write` selects, and the compiler turns that select into a load on one
    // path, which keeps the loop from vectorising).
    // one loop per choice of outputs, with no test inside: it vectorises
    template <bool Gates, bool Prev>
    MINIGRAD_HD_INLINE void row(index_t r) const {
        const T* g = gates + r * 4 * hidden;
        const T* prev = hc_prev + r * 2 * hidden;
        const T* c = hc + r * 2 * hidden + hidden;
        const T* d = dhc + r * 2 * hidden;
        T* dg = Gates ? dgates + r * 4 * hidden : nullptr;
        T* dp = Prev ? dhc_prev + r * 2 * hidden : nullptr;
        const bool keep_gates = !overwrite_gates, keep_prev = !overwrite_prev;
        MINIGRAD_IVDEP
        for (index_t j = 0; j < hidden; ++j) {
            const LstmGates<T> a(g, j, hidden);
            const T tc = kernels::tanh(c[j]);
            const T dh = d[j];
            const T dc = d[hidden + j] + dh * a.o * (T(1) - tc * tc);
            if constexpr (Gates) {
                dg[j] = select_bits(keep_gates, dg[j], T(0)) + dc * a.g * a.i * (T(1) - a.i);
                dg[hidden + j] = select_bits(keep_gates, dg[hidden + j], T(0)) + dc * prev[hidden + j] * a.f * (T(1) - a.f);
                dg[2 * hidden + j] = select_bits(keep_gates, dg[2 * hidden + j], T(0)) + dc * a.i * (T(1) - a.g * a.g);
                dg[3 * hidden + j] = select_bits(keep_gates, dg[3 * hidden + j], T(0)) + dh * tc * a.o * (T(1) - a.o);
            }
            if constexpr (Prev) dp[hidden + j] = select_bits(keep_prev, dp[hidden + j], T(0)) + dc * a.f;
        }
        if constexpr (Prev) {
            if (overwrite_prev)
                for (index_t j = 0; j < hidden; ++j) dp[j] = T(0);
        }
    }
};

// The functors this file's op launches, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using LstmCellFunctors = Functors<LstmCellForward<T>, LstmCellBackward<T>>;

}  // namespace kernels

namespace detail {

template <class B, class T>
struct LstmCellNode : Node<B, T> {
    std::int64_t rows = 0, hidden = 0;
    unsigned saved_inputs() const override { return 0b011; }
    const char* op_name() const override { return "lstm_cell"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& gates = *this->inputs[0];
        auto& prev = *this->inputs[1];
        std::optional<GradSlot<B, T>> dgates, dprev;
        if (gates.requires_grad) dgates = grad_slot(gates);
        if (prev.requires_grad) dprev = grad_slot(prev);
        B::launch(rows,
                  kernels::LstmCellBackward<T>{gates.data, prev.data, out.data, out.grad->data, dgates ? dgates->data : nullptr,
                                               dprev ? dprev->data : nullptr, hidden, dgates && dgates->overwrite, dprev && dprev->overwrite},
                  gates.device);
    }
};

// gates (N, 4 H) and hc_prev (N, 2 H), as above; the result (N, 2 H) is [h | c]. Gradients reach
// gates and hc_prev's c half. In detail: torch.lstm_cell takes other arguments (the input and the
// weights), and nn::LSTM is the public form.
template <class B, class T>
Tensor<B, T> lstm_cell(const Tensor<B, T>& gates, const Tensor<B, T>& hc_prev) {
    constexpr const char* op = "lstm_cell";
    require_floating<T>();
    check_defined(op, gates, 1, "gates");
    check_defined(op, hc_prev, 2, "hc_prev");
    check_same_device(op, gates, "gates", hc_prev, 2, "hc_prev");
    if (gates.ndim() != 2 || gates.size(1) % 4 != 0 || hc_prev.ndim() != 2 || hc_prev.size(0) != gates.size(0) ||
        hc_prev.size(1) * 2 != gates.size(1)) {
        fail<ShapeError>("{}: argument #1 'gates' has shape {} and argument #2 'hc_prev' shape {}; expected [N, 4 H] and [N, 2 H]", op,
                                 gates.shape(), hc_prev.shape());
    }
    const std::int64_t rows = gates.size(0), hidden = gates.size(1) / 4;
    auto hc = Tensor<B, T>::empty(hc_prev.shape(), gates.device());
    if (hc.numel() > 0) B::launch(rows, kernels::LstmCellForward<T>{gates.data(), hc_prev.data(), hc.data(), hidden}, gates.device());
    if (wants_grad(gates, hc_prev)) {
        auto node = std::make_shared<LstmCellNode<B, T>>();
        node->inputs = {gates.impl_ptr(), hc_prev.impl_ptr(), nullptr};
        node->rows = rows;
        node->hidden = hidden;
        attach(hc.impl(), std::move(node));
    }
    return hc;
}

}  // namespace detail
}  // namespace minigrad
