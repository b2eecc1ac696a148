// matmul and linear (x w^T + b, fused into one gemm with a bias epilogue), forward and backward.
#pragma once

#include <memory>

#include "checks.hpp"
#include "unary.hpp"

namespace minigrad {
namespace detail {

template <class B, class T>
void gemm(T* c, const T* a, bool trans_a, const T* b, bool trans_b, const T* bias, std::int64_t m,
          std::int64_t n, std::int64_t k, bool overwrite, int device) {
    B::gemm(kernels::GemmElement<T>{a, b, bias, c, m, n, k, trans_a, trans_b, overwrite}, device);
}

// a is (m,k), b is (k,n), y is (m,n)
template <class B, class T>
struct MatmulNode : Node<B, T> {
    unsigned saved_inputs() const override { return 0b11; }
    const char* op_name() const override { return "matmul"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& a = *this->inputs[0];
        auto& b = *this->inputs[1];
        const auto m = a.shape[0], k = a.shape[1], n = b.shape[1];
        const T* dy = out.grad->data;
        if (a.requires_grad) {  // da (m,k) = dy (m,n) b^T
            auto da = grad_slot(a);
            product_into_grad(a, kernels::GemmElement<T>{dy, b.data, nullptr, da.data, m, k, n, false, true, da.overwrite});
        }
        if (b.requires_grad) {  // db (k,n) = a^T dy (m,n)
            auto db = grad_slot(b);
            product_into_grad(b, kernels::GemmElement<T>{a.data, dy, nullptr, db.data, k, n, m, true, false, db.overwrite});
        }
    }
};

// The rows of a linear layer's input (..., in): the product of every dim but the last (1 for a vector).
inline std::int64_t linear_rows(const Shape& x) {
    std::int64_t rows = 1;
    for (int d = 0; d + 1 < x.ndim(); ++d) rows *= x[d];
    return rows;
}

// x is (..., in), seen as (n, in); w is (out,in), bias is (out) or undefined, y is (..., out)
template <class B, class T>
struct LinearNode : Node<B, T> {
    unsigned saved_inputs() const override { return 0b11; }  // x and weight; the bias is not read
    const char* op_name() const override { return "linear"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto& w = *this->inputs[1];
        const auto rows = linear_rows(x.shape), in = w.shape[1], outs = w.shape[0];
        const T* dy = out.grad->data;
        const bool bias_grad = this->inputs[2] && this->inputs[2]->requires_grad;
        if (w.requires_grad) {  // dw (out,in) = dy^T (out,n) x (n,in), and dbias (out) = dy's column sums in the same pass
            auto dw = grad_slot(w);
            kernels::GemmElement<T> g{dy, x.data, nullptr, dw.data, outs, in, rows, true, false, dw.overwrite};
            if (bias_grad) {
                auto db = grad_slot(*this->inputs[2]);
                g.a_sums = db.data;
                g.a_sums_overwrite = db.overwrite;
            }
            B::gemm(g, w.device);
        } else if (bias_grad) {  // dbias (out) = sum over rows of dy
            auto db = grad_slot(*this->inputs[2]);
            B::sum_rows(dy, rows, outs, db.data, db.overwrite, out.device);
        }
        // dx last, with x's own rule (an activation's) as its epilogue where product_into_grad can
        if (x.requires_grad) {  // dx (n,in) = dy (n,out) w (out,in)
            auto dx = grad_slot(x);
            product_into_grad(x, kernels::GemmElement<T>{dy, w.data, nullptr, dx.data, rows, in, outs, false, false, dx.overwrite});
        }
    }
};

// a is (batch,m,k), b is (batch,k,n), y is (batch,m,n): one product per batch entry
template <class B, class T>
struct BmmNode : Node<B, T> {
    unsigned saved_inputs() const override { return 0b11; }
    const char* op_name() const override { return "bmm"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& a = *this->inputs[0];
        auto& b = *this->inputs[1];
        const auto batch = a.shape[0], m = a.shape[1], k = a.shape[2], n = b.shape[2];
        if (a.requires_grad) {  // da[i] (m,k) = dy[i] (m,n) b[i]^T
            auto da = grad_slot(a);
            for (std::int64_t i = 0; i < batch; ++i)
                gemm<B>(da.data + i * m * k, out.grad->data + i * m * n, false, b.data + i * k * n, true, (const T*)nullptr, m, k, n,
                        da.overwrite, a.device);
        }
        if (b.requires_grad) {  // db[i] (k,n) = a[i]^T dy[i] (m,n)
            auto db = grad_slot(b);
            for (std::int64_t i = 0; i < batch; ++i)
                gemm<B>(db.data + i * k * n, a.data + i * m * k, true, out.grad->data + i * m * n, false, (const T*)nullptr, k, n, m,
                        db.overwrite, b.device);
        }
    }
};

}  // namespace detail

// a is (batch,m,k), b is (batch,k,n), result is (batch,m,n); one product (a launch) per batch entry
template <class B, class T>
Tensor<B, T> bmm(const Tensor<B, T>& a, const Tensor<B, T>& b) {
    detail::require_floating<T>();
    detail::check_defined("bmm", a, 1, "input");
    detail::check_defined("bmm", b, 2, "mat2");
    detail::check_ndim("bmm", a, 1, "input", 3, "a batch of matrices [batch, m, k]");
    detail::check_ndim("bmm", b, 2, "mat2", 3, "a batch of matrices [batch, k, n]");
    detail::check_same_device("bmm", a, "input", b, 2, "mat2");
    if (b.size(0) != a.size(0) || b.size(1) != a.size(2)) {
        detail::fail<ShapeError>("bmm: argument #2 'mat2' has shape {}, expected [{}, {}, *] to match argument #1 'input' of shape {}",
                                 b.shape(), a.size(0), a.size(2), a.shape());
    }
    const auto batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
    auto y = Tensor<B, T>::empty(Shape{batch, m, n}, a.device());
    for (std::int64_t i = 0; i < batch; ++i)
        detail::gemm<B>(y.data() + i * m * n, a.data() + i * m * k, false, b.data() + i * k * n, false, (const T*)nullptr, m, n, k, true,
                        a.device());
    if (detail::wants_grad(a, b)) {
        auto node = std::make_shared<detail::BmmNode<B, T>>();
        node->inputs = {a.impl_ptr(), b.impl_ptr(), nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}

template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> bmm(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}

// a is (m,k), b is (k,n), result is (m,n); two batches of matrices (3-D) go to bmm
template <class B, class T>
Tensor<B, T> matmul(const Tensor<B, T>& a, const Tensor<B, T>& b) {
    detail::require_floating<T>();
    detail::check_defined("matmul", a, 1, "input");
    detail::check_defined("matmul", b, 2, "other");
    if (a.ndim() == 3 && b.ndim() == 3) return bmm(a, b);
    detail::check_ndim("matmul", a, 1, "input", 2, "a matrix [m, k]");
    detail::check_ndim("matmul", b, 2, "other", 2, "a matrix [k, n]");
    detail::check_same_device("matmul", a, "input", b, 2, "other");
    if (a.size(1) != b.size(0)) {
        detail::fail<ShapeError>("matmul: argument #2 'other' has shape {}, expected [{}, *] to match argument #1 'input' of shape {}",
                                 b.shape(), a.size(1), a.shape());
    }
    const auto m = a.size(0), k = a.size(1), n = b.size(1);
    auto y = Tensor<B, T>::empty(Shape{m, n}, a.device());
    detail::gemm<B>(y.data(), a.data(), false, b.data(), false, (const T*)nullptr, m, n, k, true, a.device());
    if (detail::wants_grad(a, b)) {
        auto node = std::make_shared<detail::MatmulNode<B, T>>();
        node->inputs = {a.impl_ptr(), b.impl_ptr(), nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> matmul(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}

namespace detail {
template <class B, class T>
void check_linear(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias) {
    require_floating<T>();
    detail::check_defined("linear", x, 1, "input");
    detail::check_defined("linear", weight, 2, "weight");
    detail::check_ndim("linear", weight, 2, "weight", 2, "a matrix [out, in]");
    if (x.ndim() < 1 || x.size(-1) != weight.size(1)) {
        detail::fail<ShapeError>("linear: argument #1 'input' has shape {}, expected [*, {}] (weight has shape {})",
                                 x.shape(), weight.size(1), weight.shape());
    }
    detail::check_same_device("linear", x, "input", weight, 2, "weight");
    if (bias.defined()) {
        detail::check_same_device("linear", x, "input", bias, 3, "bias");
        if (bias.ndim() != 1 || bias.size(0) != weight.size(0)) {
            detail::fail<ShapeError>("linear: argument #3 'bias' has shape {}, expected [{}] (weight has shape {})",
                                     bias.shape(), weight.size(0), weight.shape());
        }
    }
}

template <class B, class T>
kernels::GemmElement<T> linear_product(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias, T* y) {
    return {x.data(), weight.data(), bias.defined() ? bias.data() : nullptr, y, linear_rows(x.shape()), weight.size(0), weight.size(1), false, true, true};
}
// x's shape (..., in) with its last dim the layer's outputs: (..., out)
inline Shape linear_shape(const Shape& x, std::int64_t outs) {
    std::int64_t dims[Shape::max_dims];
    for (int d = 0; d < x.ndim(); ++d) dims[d] = x[d];
    dims[x.ndim() - 1] = outs;
    return make_shape(dims, x.ndim());
}

template <class B, class T>
void attach_linear(const Tensor<B, T>& y, const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias) {
    if (!wants_grad(x, weight, bias)) return;
    auto node = std::make_shared<LinearNode<B, T>>();
    node->inputs = {x.impl_ptr(), weight.impl_ptr(), bias.defined() ? bias.impl_ptr() : nullptr};
    attach(y.impl(), std::move(node));
}

// rule(linear(x, weight, bias)) in one launch, the activation as the product's epilogue
// (B::gemm_then). Both results and both nodes are the two ops', so backward() and every StepGraph
// mode see the two ops (and backward() fuses their gradients the same way). nn::Linear and
// nn::Sequential call it.
template <class B, class T, class Rule>
    requires kernels::product_epilogue<Rule>
Tensor<B, T> linear_then(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias, Rule rule) {
    check_linear(x, weight, bias);
    const Shape shape = linear_shape(x.shape(), weight.size(0));
    auto y = Tensor<B, T>::empty(shape, x.device()), h = Tensor<B, T>::empty(shape, x.device());
    B::gemm_then(linear_product(x, weight, bias, y.data()), kernels::UnaryForward<T, Rule>{y.data(), h.data(), rule}, x.device());
    attach_linear(y, x, weight, bias);
    attach_unary(h, y, rule);
    return h;
}
}  // namespace detail

// As torch.nn.functional.linear: x is (..., in) (any leading dims, or none), weight is (out,in),
// bias is (out) or undefined, result is (..., out). One product over x's rows, no copy.
template <class B, class T>
Tensor<B, T> linear(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias = {}) {
    detail::check_linear(x, weight, bias);
    auto y = Tensor<B, T>::empty(detail::linear_shape(x.shape(), weight.size(0)), x.device());
    B::gemm(detail::linear_product(x, weight, bias, y.data()), x.device());
    detail::attach_linear(y, x, weight, bias);
    return y;
}
template <class BA, class TA, class BB, class TB>
    requires detail::Mixed<BA, TA, BB, TB>
Tensor<BA, TA> linear(const Tensor<BA, TA>&, const Tensor<BB, TB>&) {
    detail::reject_mix<BA, TA, BB, TB, 2>();
    return {};
}
template <class BA, class TA, class BB, class TB, class BC, class TC>
    requires(detail::Mixed<BA, TA, BB, TB> || detail::Mixed<BA, TA, BC, TC>)
Tensor<BA, TA> linear(const Tensor<BA, TA>&, const Tensor<BB, TB>&, const Tensor<BC, TC>&) {
    if constexpr (detail::Mixed<BA, TA, BB, TB>)
        detail::reject_mix<BA, TA, BB, TB, 2>();
    else
        detail::reject_mix<BA, TA, BC, TC, 3>();
    return {};
}

}  // namespace minigrad
