// conv_transpose2d as torch.nn.functional's: stride, padding, output_padding, groups, dilation and
// bias. A transposed convolution is the adjoint of the convolution that maps its output's shape
// to its input's (same weights, stride, padding, dilation, groups), so it runs on conv's kernels
// (ops/conv.hpp) in the other order: the input reordered into the products' layout, the cols
// product w_g^T x_g, and Col2Im into the output; backward is that convolution's forward (Im2Col of
// the output gradient, one product per group) for the input, and its weight gradient for the
// weights. The bias is added as a broadcast (its gradient the broadcast's).
#pragma once

#include <cstdint>
#include <memory>

#include "conv.hpp"
#include "elementwise.hpp"

namespace minigrad {

struct ConvTranspose2dOptions {
    Size2 stride = 1;
    Size2 padding = 0;
    Size2 output_padding = 0;  // extra rows and columns at the end of the output, each < stride or dilation
    std::int64_t groups = 1;
    Size2 dilation = 1;
};

namespace detail {

template <class B, class T>
struct ConvTransposeNode : Node<B, T> {
    kernels::ConvGeometry g{};  // the convolution this is the adjoint of: its input is our output
    Tensor<B, T> grouped;       // our input in the products' layout (groups, og, n*h*w): the weight gradient reads it
    unsigned saved_inputs() const override { return 0b010; }  // the weight; the input is read through grouped
    const char* op_name() const override { return "conv_transpose2d"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto& w = *this->inputs[1];
        const std::int64_t og = g.o / g.groups, k = g.patch(), m = g.rows();
        auto cols = Tensor<B, T>::empty(Shape{g.groups, k, m}, out.device);  // the output gradient's patches
        B::launch_rows(g.groups * k, m, kernels::Im2Col<T>{out.grad->data, cols.data(), g}, out.device);
        if (w.requires_grad) {  // dw_g (og, k) = x_g (og, m) cols_g^T
            auto dw = grad_slot(w);
            for (std::int64_t gi = 0; gi < g.groups; ++gi) {
                B::gemm(kernels::GemmElement<T>{grouped.data() + gi * og * m, cols.data() + gi * k * m, nullptr, dw.data + gi * og * k, og, k, m, false,
                                                true, dw.overwrite},
                        w.device);
            }
        }
        if (x.requires_grad) {  // dx_g (og, m) = w_g (og, k) cols_g (k, m), reordered into x's (N, C, H, W)
            auto products = Tensor<B, T>::empty(Shape{g.groups, og, m}, x.device);
            for (std::int64_t gi = 0; gi < g.groups; ++gi) {
                B::gemm(kernels::GemmElement<T>{w.data + gi * og * k, cols.data() + gi * k * m, nullptr, products.data() + gi * og * m, og, m, k, false,
                                                false, true},
                        x.device);
            }
            auto dx = grad_slot(x);
            const kernels::ConvReorder<T> reorder{products.data(), dx.data, nullptr, nullptr, g, false, false, dx.overwrite};
            B::launch_rows(reorder.rows(), reorder.cols(), reorder, x.device);
        }
    }
};

}  // namespace detail

// x is (N, C_in, H, W), weight (C_in, C_out / groups, kH, kW), bias (C_out) or undefined; the result
// is (N, C_out, OH, OW), OH = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1.
template <class B, class T>
Tensor<B, T> conv_transpose2d(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias = {}, ConvTranspose2dOptions options = {}) {
    constexpr const char* op = "conv_transpose2d";
    detail::require_floating<T>();
    detail::check_defined(op, x, 1, "input");
    detail::check_defined(op, weight, 2, "weight");
    detail::check_same_device(op, x, "input", weight, 2, "weight");
    detail::check_ndim(op, x, 1, "input", 4, "[N, C, H, W]");
    detail::check_ndim(op, weight, 2, "weight", 4, "[in_channels, out_channels / groups, kH, kW]");
    const auto& o = options;
    if (o.groups < 1) detail::fail<ValueError>("conv_transpose2d: groups={} must be >= 1", o.groups);
    if (o.stride.h < 1 || o.stride.w < 1 || o.dilation.h < 1 || o.dilation.w < 1) {
        detail::fail<ValueError>("conv_transpose2d: stride [{}, {}] and dilation [{}, {}] must be >= 1", o.stride.h, o.stride.w, o.dilation.h,
                                 o.dilation.w);
    }
    if (o.padding.h < 0 || o.padding.w < 0) detail::fail<ValueError>("conv_transpose2d: padding must be >= 0");
    if (o.output_padding.h < 0 || o.output_padding.w < 0 || (o.output_padding.h >= o.stride.h && o.output_padding.h >= o.dilation.h) ||
        (o.output_padding.w >= o.stride.w && o.output_padding.w >= o.dilation.w)) {
        detail::fail<ValueError>("conv_transpose2d: output_padding [{}, {}] must be >= 0 and smaller than either stride [{}, {}] or dilation [{}, {}]",
                                 o.output_padding.h, o.output_padding.w, o.stride.h, o.stride.w, o.dilation.h, o.dilation.w);
    }
    const std::int64_t in = x.size(1);
    if (weight.size(0) != in) {
        detail::fail<ShapeError>("conv_transpose2d: argument #2 'weight' has shape {}: {} input channels, but argument #1 'input' of shape {} has {}",
                                 weight.shape(), weight.size(0), x.shape(), in);
    }
    if (in % o.groups != 0) detail::fail<ValueError>("conv_transpose2d: groups={} must divide the input's {} channels", o.groups, in);
    const std::int64_t out = weight.size(1) * o.groups;
    if (bias.defined()) {
        detail::check_same_device(op, x, "input", bias, 3, "bias");
        if (bias.shape() != Shape{out}) {
            detail::fail<ShapeError>("conv_transpose2d: argument #3 'bias' has shape {}, expected [{}] (one per output channel)", bias.shape(), out);
        }
    }
    // the convolution this is the adjoint of: input (N, out, OH, OW), output (N, in, H, W)
    kernels::ConvGeometry g{};
    g.n = x.size(0), g.c = out, g.o = in, g.groups = o.groups, g.kh = weight.size(2), g.kw = weight.size(3);
    g.oh = x.size(2), g.ow = x.size(3), g.stride_h = o.stride.h, g.stride_w = o.stride.w, g.pad_h = o.padding.h, g.pad_w = o.padding.w;
    g.dil_h = o.dilation.h, g.dil_w = o.dilation.w;
    g.h = (g.oh - 1) * g.stride_h - 2 * g.pad_h + g.dil_h * (g.kh - 1) + o.output_padding.h + 1;
    g.w = (g.ow - 1) * g.stride_w - 2 * g.pad_w + g.dil_w * (g.kw - 1) + o.output_padding.w + 1;
    if (g.h < 1 || g.w < 1) {
        detail::fail<ShapeError>("conv_transpose2d: the output would be {} x {} for argument #1 'input' of shape {} and argument #2 'weight' {}", g.h,
                                 g.w, x.shape(), weight.shape());
    }
    auto y = Tensor<B, T>::empty(Shape{g.n, out, g.h, g.w}, x.device());
    if (y.numel() == 0) return y;
    const std::int64_t og = g.o / g.groups, k = g.patch(), m = g.rows();
    auto grouped = Tensor<B, T>::empty(Shape{g.groups, og, m}, x.device());
    if (m > 0) {
        const kernels::ConvReorder<T> to_groups{x.data(), grouped.data(), nullptr, nullptr, g, true, false};
        B::launch_rows(to_groups.rows(), to_groups.cols(), to_groups, x.device());
    }
    auto cols = Tensor<B, T>::empty(Shape{g.groups, k, m}, x.device());
    for (std::int64_t gi = 0; gi < g.groups; ++gi) {  // cols_g (k, m) = w_g^T (k, og) x_g (og, m)
        B::gemm(kernels::GemmElement<T>{weight.data() + gi * og * k, grouped.data() + gi * og * m, nullptr, cols.data() + gi * k * m, k, m, og, true,
                                        false, true},
                x.device());
    }
    B::launch_rows(g.n * g.c * g.h, g.w, kernels::Col2Im<T>{cols.data(), y.data(), g, true}, x.device());
    if (detail::wants_grad(x, weight)) {
        auto node = std::make_shared<detail::ConvTransposeNode<B, T>>();
        node->inputs = {x.impl_ptr(), weight.impl_ptr(), nullptr};
        node->g = g;
        node->grouped = std::move(grouped);
        detail::attach(y.impl(), std::move(node));
    }
    if (bias.defined()) return y + bias.reshape({1, out, 1, 1});
    return y;
}

}  // namespace minigrad
