// conv2d and conv1d as torch.nn.functional's: stride, padding (numbers, "same", "valid"),
// dilation, groups and bias, with their backward. Lowered to the matrix product the backends
// already have (im2col): the input's patches are gathered into cols (groups, C/groups*KH*KW, N*OH*OW),
// a row per kernel entry, so that the gather copies runs of each input row; each group's output is
// one product with its weights (B::gemm: OpenBLAS or the register-blocked kernel on the CPU, cuBLAS
// or the built-in one on CUDA), and one reorder (which adds the bias) puts it in (N, O, OH, OW)
// order. Backward: the reorder back (which sums the bias gradient), the weight gradient from the
// saved cols, the cols' gradient, and col2im, which sums every input element's share in a fixed
// order (no atomics). conv1d is the same with a height of 1, with no copy. On the host a large call
// runs all of this over chunks of images whose patches fit a core's L2 cache (conv_chunk_images),
// and backward then remakes each chunk's patches instead of keeping the forward's.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "checks.hpp"
#include "shape.hpp"

namespace minigrad {

// A size per spatial dim: one number for both, or {h, w}.
struct Size2 {
    std::int64_t h = 0, w = 0;
    Size2(std::int64_t both = 0) : h(both), w(both) {}  // NOLINT: a number is a Size2, as in PyTorch
    Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
};
// Padding: numbers (one for both dims, or {h, w}), or "same" (the output as large as the input:
// stride 1 only; an odd total padding puts the extra row or column at the end, as PyTorch) or
// "valid" (none).
struct Padding {
    Size2 size{0};
    bool same = false;
    Padding(std::int64_t both = 0) : size(both) {}  // NOLINT
    Padding(std::int64_t h, std::int64_t w) : size(h, w) {}
    template <std::size_t N>
    Padding(const char (&mode)[N]) {  // NOLINT: "same" or "valid", as in PyTorch
        const std::string_view m(mode);
        if (m == "same")
            same = true;
        else if (m != "valid")
            detail::fail<ValueError>("conv: padding '{}' is not one of 'same', 'valid' or a number", m);
    }
};
struct Conv2dOptions {
    Size2 stride = 1;
    Padding padding = 0;
    Size2 dilation = 1;
    std::int64_t groups = 1;
};
struct Conv1dOptions {
    std::int64_t stride = 1;
    Padding padding = 0;
    std::int64_t dilation = 1;
    std::int64_t groups = 1;
};

namespace kernels {

// Where a convolution reads: the input (n, c, h, w), the weights (o, c / groups, kh, kw), the
// output (n, o, oh, ow); pad_h, pad_w are the padding before the first row and column.
struct ConvGeometry {
    index_t n, c, h, w, o, kh, kw, oh, ow, groups, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    MINIGRAD_HD index_t group_channels() const { return c / groups; }
    MINIGRAD_HD index_t patch() const { return c / groups * kh * kw; }  // k of each product
    MINIGRAD_HD index_t rows() const { return n * oh * ow; }            // m of each product
};

// cols is (groups, c/groups*kh*kw, n*oh*ow): row (group, ci, ki, kj) holds, at each output
// position, the input element that kernel entry reads there, 0 where it reaches into the padding.
// A row functor (launch_rows): row r is one kernel entry of one group, its n*oh*ow positions the
// columns. One thread copies each output row's valid span in one run (contiguous where the stride
// is 1) and zeroes the rest; a GPU warp's lanes take neighbouring positions.
template <class T>
struct Im2Col {
    const T* x;
    T* cols;
    ConvGeometry g;
    MINIGRAD_HD index_t work_per_index() const { return g.rows(); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const index_t k = g.patch(), m = g.rows(), entry = r % k, group = r / k;
        const index_t kj = entry % g.kw, ki = entry / g.kw % g.kh, ci = entry / (g.kw * g.kh);
        const index_t channel = group * g.group_channels() + ci, positions = g.oh * g.ow;
        const index_t shift_h = ki * g.dil_h - g.pad_h, shift_w = kj * g.dil_w - g.pad_w;
        T* out = cols + r * m;
        if constexpr (Lanes == 1) {
            // the output columns q whose input column q * stride + shift_w is inside [0, w)
            index_t q_lo = shift_w >= 0 ? 0 : (-shift_w + g.stride_w - 1) / g.stride_w;
            index_t q_hi = g.w - shift_w <= 0 ? 0 : (g.w - shift_w - 1) / g.stride_w + 1;
            q_lo = q_lo < g.ow ? q_lo : g.ow;
            q_hi = q_hi < g.ow ? q_hi : g.ow;
            q_hi = q_hi > q_lo ? q_hi : q_lo;
            for (index_t b = 0; b < g.n; ++b) {
                const T* plane = x + (b * g.c + channel) * g.h * g.w;
                for (index_t p = 0; p < g.oh; ++p) {
                    T* o = out + b * positions + p * g.ow;
                    const index_t y = p * g.stride_h + shift_h;
                    if (y < 0 || y >= g.h) {
                        for (index_t q = 0; q < g.ow; ++q) o[q] = T(0);
                        continue;
                    }
                    const T* line = plane + y * g.w;
                    for (index_t q = 0; q < q_lo; ++q) o[q] = T(0);
                    if (g.stride_w == 1) {
                        for (index_t q = q_lo; q < q_hi; ++q) o[q] = line[q + shift_w];
                    } else {
                        for (index_t q = q_lo; q < q_hi; ++q) o[q] = line[q * g.stride_w + shift_w];
                    }
                    for (index_t q = q_hi; q < g.ow; ++q) o[q] = T(0);
                }
            }
        } else {
            for (index_t e = lane; e < m; e += Lanes) {
                const index_t q = e % g.ow, p = e / g.ow % g.oh, b = e / positions;
                const index_t y = p * g.stride_h + shift_h, x_ = q * g.stride_w + shift_w;
                out[e] = y >= 0 && y < g.h && x_ >= 0 && x_ < g.w ? x[((b * g.c + channel) * g.h + y) * g.w + x_] : T(0);
            }
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// dx (n, c, h, w), written or added, = the sum of dcols (as Im2Col lays cols out) over the kernel
// entries that read each input element, kernel row then column in order. A row functor: row r is
// one input row (n, c, h), its w elements the columns. One thread writing (overwrite) zeroes the
// row and adds each kernel entry's span of positions in that order (the same sums); otherwise each
// element sums its own.
template <class T>
struct Col2Im {
    const T* dcols;
    T* dx;
    ConvGeometry g;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return g.w * g.kh * g.kw; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const index_t xh = r % g.h, channel = r / g.h % g.c, b = r / (g.h * g.c);
        const index_t group = channel / g.group_channels(), ci = channel % g.group_channels();
        const index_t m = g.rows(), positions = g.oh * g.ow;
        // the entries of this channel's kernel: rows of dcols, each position offset by b's
        const T* entries = dcols + (group * g.patch() + ci * g.kh * g.kw) * m + b * positions;
        T* out = dx + r * g.w;
        if (Lanes == 1 && overwrite && g.stride_w == 1) {
            for (index_t xw = 0; xw < g.w; ++xw) out[xw] = T(0);
            for (index_t ki = 0; ki < g.kh; ++ki) {
                const index_t ph = xh + g.pad_h - ki * g.dil_h;  // = output row * stride
                if (ph < 0 || (g.stride_h != 1 && ph % g.stride_h != 0)) continue;
                const index_t p = g.stride_h == 1 ? ph : ph / g.stride_h;
                if (p >= g.oh) continue;
                for (index_t kj = 0; kj < g.kw; ++kj) {
                    // input column xw reads output column q = xw + shift, for q in [0, ow)
                    const index_t shift = g.pad_w - kj * g.dil_w;
                    const index_t lo = shift >= 0 ? 0 : -shift, hi_q = g.w + shift < g.ow ? g.w + shift : g.ow;
                    const T* d = entries + (ki * g.kw + kj) * m + p * g.ow;
                    for (index_t xw = lo; xw + shift < hi_q; ++xw) out[xw] += d[xw + shift];
                }
            }
            return;
        }
        for (index_t xw = lane; xw < g.w; xw += Lanes) {
            T acc = 0;
            for (index_t ki = 0; ki < g.kh; ++ki) {
                const index_t ph = xh + g.pad_h - ki * g.dil_h;
                if (ph < 0 || (g.stride_h != 1 && ph % g.stride_h != 0)) continue;
                const index_t p = g.stride_h == 1 ? ph : ph / g.stride_h;
                if (p >= g.oh) continue;
                for (index_t kj = 0; kj < g.kw; ++kj) {
                    const index_t pw = xw + g.pad_w - kj * g.dil_w;
                    if (pw < 0 || (g.stride_w != 1 && pw % g.stride_w != 0)) continue;
                    const index_t q = g.stride_w == 1 ? pw : pw / g.stride_w;
                    if (q >= g.ow) continue;
                    acc += entries[(ki * g.kw + kj) * m + p * g.ow + q];
                }
            }
            out[xw] = write(out[xw], acc, overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// The products' layout (groups, o/groups, n*oh*ow) to the output's (n, o, oh*ow) plus the bias;
// or back (to_groups), where each channel's row also sums into the bias gradient. Row functors:
// to the output, row r is one plane (b, channel) of oh*ow positions; back, row r is one channel,
// its n*oh*ow positions the columns.
template <class T>
struct ConvReorder {
    const T* from;
    T* to;
    const T* bias;  // to the output: added where set
    T* dbias;       // back: the sum of each channel's row, written or added, where set
    ConvGeometry g;
    bool to_groups, dbias_overwrite;
    bool overwrite = true;  // to the output: written, or added (conv_transpose2d's input gradient)
    MINIGRAD_HD index_t rows() const { return to_groups ? g.o : g.n * g.o; }
    MINIGRAD_HD index_t cols() const { return to_groups ? g.rows() : g.oh * g.ow; }
    MINIGRAD_HD index_t work_per_index() const { return cols(); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team& team) const {
        const index_t positions = g.oh * g.ow;
        if (to_groups) {  // to[channel, b * P + s] = from[b, channel, s]  (channel = gi * og + oo: the groups' order)
            T sum = 0;
            T* out = to + r * g.rows();
            for (index_t b = 0; b < g.n; ++b) {
                const T* src = from + (b * g.o + r) * positions;
                for (index_t s = lane; s < positions; s += Lanes) {
                    out[b * positions + s] = src[s];
                    sum += src[s];
                }
            }
            sum = team.sum(sum);
            if (dbias && lane == 0) dbias[r] = write(dbias[r], sum, dbias_overwrite);
        } else {  // to[b, channel, s] = from[channel, b * P + s] + bias[channel]
            const index_t channel = r % g.o, b = r / g.o;
            const T* src = from + channel * g.rows() + b * positions;
            const T add = bias ? bias[channel] : T(0);
            for (index_t s = lane; s < positions; s += Lanes) to[r * positions + s] = write(to[r * positions + s], src[s] + add, overwrite);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp);
// the products are the backends' gemm.
template <class T>
using ConvFunctors = Functors<Im2Col<T>, Col2Im<T>, ConvReorder<T>>;

}  // namespace kernels

namespace detail {

// Images per chunk of a convolution. On the host, where all the patches (cols) of a call are more
// than a core's L2 cache (2 MiB here), as many images as keep a chunk's within 512 KiB (at least
// one, the chunks as even as they go), so that Im2Col writes them, the product packs them and
// Col2Im reads them in the cache: the 75 MB of patches of a 64-channel 3x3 layer over 32 images of
// 32x32 went through memory three times a step. bench/conv_bench, one thread, medians of 20 steps,
// against one chunk: LeNet 6.38 -> 5.58 ms, the conv blocks 151 -> 129 ms; 256 KiB and 1 MiB did
// worse on one model or the other; a call that fits the cache (the digits CNN) is not split (its
// 2 chunks were 13% slower). On a GPU, all the images: one product each way.
template <class B, class T>
std::int64_t conv_chunk_images(const kernels::ConvGeometry& g) {
    if constexpr (!B::is_host) {
        return g.n;
    } else {
        constexpr std::int64_t cache = std::int64_t(1) << 21, budget = std::int64_t(1) << 19;
        const std::int64_t per_image = g.groups * g.patch() * g.oh * g.ow * static_cast<std::int64_t>(sizeof(T));
        if (per_image * g.n <= cache) return g.n;
        const std::int64_t most = budget / per_image > 1 ? budget / per_image : 1, chunks = (g.n + most - 1) / most;
        return (g.n + chunks - 1) / chunks;
    }
}
// The geometry of images [n0, n0 + images) alone
inline kernels::ConvGeometry conv_chunk(kernels::ConvGeometry g, std::int64_t images) {
    g.n = images;
    return g;
}

template <class B, class T>
struct ConvNode : Node<B, T> {
    kernels::ConvGeometry g{};
    std::int64_t chunk = 0;  // images per chunk (conv_chunk_images)
    Tensor<B, T> cols;       // one chunk: the forward's patches, which the weight gradient reads; else remade per chunk
    const char* name = "conv2d";
    unsigned saved_inputs() const override { return cols.defined() ? 0b010 : 0b011; }  // the weight, and the input where cols are remade
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto& w = *this->inputs[1];
        TensorImpl<B, T>* bias = this->inputs[2].get();
        const std::int64_t og = g.o / g.groups, k = g.patch(), positions = g.oh * g.ow, first = chunk < g.n ? chunk : g.n;
        // dy in the products' layout (groups, og, images * positions), and dbias = each channel's sum in the same pass
        auto dy = Tensor<B, T>::empty(Shape{g.groups, og, first * positions}, out.device);
        const bool bias_grad = bias && bias->requires_grad;
        GradSlot<B, T> db{nullptr, false}, dw{nullptr, false}, dx{nullptr, false};
        if (bias_grad) db = grad_slot(*bias);
        if (w.requires_grad) dw = grad_slot(w);
        if (x.requires_grad) dx = grad_slot(x);
        Tensor<B, T> chunk_cols = cols, dcols;
        if (w.requires_grad && !chunk_cols.defined()) chunk_cols = Tensor<B, T>::empty(Shape{g.groups, k, first * positions}, x.device);
        if (x.requires_grad) dcols = Tensor<B, T>::empty(Shape{g.groups, k, first * positions}, x.device);
        for (std::int64_t n0 = 0; n0 < g.n; n0 += chunk) {
            const auto gc = conv_chunk(g, chunk < g.n - n0 ? chunk : g.n - n0);
            const std::int64_t m = gc.rows();
            const bool later = n0 > 0;  // the weight's and bias's gradients add to the earlier chunks'
            const kernels::ConvReorder<T> back{out.grad->data + n0 * g.o * positions, dy.data(), nullptr, bias_grad ? db.data : nullptr, gc, true,
                                               db.overwrite && !later};
            B::launch_rows(back.rows(), back.cols(), back, out.device);
            if (w.requires_grad) {  // dw_g (og, k) = dy_g (og, m) cols_g^T
                if (!cols.defined()) B::launch_rows(g.groups * k, m, kernels::Im2Col<T>{x.data + n0 * g.c * g.h * g.w, chunk_cols.data(), gc}, x.device);
                for (std::int64_t gi = 0; gi < g.groups; ++gi) {
                    B::gemm(kernels::GemmElement<T>{dy.data() + gi * og * m, chunk_cols.data() + gi * k * m, nullptr, dw.data + gi * og * k, og, k, m,
                                                    false, true, dw.overwrite && !later},
                            w.device);
                }
            }
            if (x.requires_grad) {  // dcols_g (k, m) = w_g^T (k, og) dy_g (og, m), then col2im
                for (std::int64_t gi = 0; gi < g.groups; ++gi) {
                    B::gemm(kernels::GemmElement<T>{w.data + gi * og * k, dy.data() + gi * og * m, nullptr, dcols.data() + gi * k * m, k, m, og, true,
                                                    false, true},
                            x.device);
                }
                B::launch_rows(gc.n * g.c * g.h, g.w, kernels::Col2Im<T>{dcols.data(), dx.data + n0 * g.c * g.h * g.w, gc, dx.overwrite}, x.device);
            }
        }
    }
};

// The checks every convolution makes, then its geometry. spatial: 1 (conv1d: h = kh = 1) or 2.
template <class B, class T>
kernels::ConvGeometry conv_geometry(const char* op, int spatial, const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias,
                                    Size2 stride, Padding padding, Size2 dilation, std::int64_t groups) {
    require_floating<T>();
    check_defined(op, x, 1, "input");
    check_defined(op, weight, 2, "weight");
    check_same_device(op, x, "input", weight, 2, "weight");
    const int rank = spatial + 2;
    const char* layout = spatial == 2 ? "[N, C, H, W]" : "[N, C, L]";
    const char* kernel_layout = spatial == 2 ? "[out_channels, in_channels / groups, kH, kW]" : "[out_channels, in_channels / groups, kL]";
    check_ndim(op, x, 1, "input", rank, layout);
    check_ndim(op, weight, 2, "weight", rank, kernel_layout);
    if (groups < 1) fail<ValueError>("{}: groups={} must be >= 1", op, groups);
    if (stride.h < 1 || stride.w < 1) fail<ValueError>("{}: every stride must be >= 1 (got {})", op, spatial == 2 ? minigrad::detail::format("[{}, {}]", stride.h, stride.w) : minigrad::detail::format("{}", stride.w));
    if (dilation.h < 1 || dilation.w < 1) fail<ValueError>("{}: every dilation must be >= 1 (got {})", op, spatial == 2 ? minigrad::detail::format("[{}, {}]", dilation.h, dilation.w) : minigrad::detail::format("{}", dilation.w));
    if (padding.size.h < 0 || padding.size.w < 0) fail<ValueError>("{}: padding must be >= 0", op);
    kernels::ConvGeometry g{};
    g.n = x.size(0), g.c = x.size(1), g.o = weight.size(0), g.groups = groups;
    g.h = spatial == 2 ? x.size(2) : 1, g.w = x.size(-1);
    g.kh = spatial == 2 ? weight.size(2) : 1, g.kw = weight.size(-1);
    g.stride_h = spatial == 2 ? stride.h : 1, g.stride_w = stride.w;
    g.dil_h = spatial == 2 ? dilation.h : 1, g.dil_w = dilation.w;
    if (g.c % groups != 0 || g.o % groups != 0) {
        fail<ValueError>("{}: groups={} must divide both the input's {} channels and the weight's {} output channels", op, groups, g.c, g.o);
    }
    if (weight.size(1) * groups != g.c) {
        fail<ShapeError>("{}: argument #2 'weight' has shape {}: {} input channels per group, but argument #1 'input' of shape {} has {} "
                         "channels in {} group(s), {} each",
                         op, weight.shape(), weight.size(1), x.shape(), g.c, groups, g.c / groups);
    }
    if (bias.defined()) {
        check_same_device(op, x, "input", bias, 3, "bias");
        if (bias.shape() != Shape{g.o}) fail<ShapeError>("{}: argument #3 'bias' has shape {}, expected [{}] (one per output channel)", op, bias.shape(), g.o);
    }
    // padding totals per dim; "same" splits each as PyTorch does, the odd one at the end
    std::int64_t total_h = 2 * (spatial == 2 ? padding.size.h : 0), total_w = 2 * padding.size.w;
    g.pad_h = spatial == 2 ? padding.size.h : 0, g.pad_w = padding.size.w;
    if (padding.same) {
        if (g.stride_h != 1 || g.stride_w != 1) fail<ValueError>("{}: padding='same' needs stride 1, as in PyTorch", op);
        total_h = g.dil_h * (g.kh - 1), total_w = g.dil_w * (g.kw - 1);
        g.pad_h = total_h / 2, g.pad_w = total_w / 2;
    }
    const std::int64_t reach_h = g.dil_h * (g.kh - 1) + 1, reach_w = g.dil_w * (g.kw - 1) + 1;
    if (g.h + total_h < reach_h || g.w + total_w < reach_w) {
        fail<ShapeError>("{}: the kernel reaches {} (dilated), more than the padded input's {}: argument #1 'input' has shape {}, argument #2 "
                         "'weight' {}",
                         op, spatial == 2 ? minigrad::detail::format("[{}, {}]", reach_h, reach_w) : minigrad::detail::format("{}", reach_w),
                         spatial == 2 ? minigrad::detail::format("[{}, {}]", g.h + total_h, g.w + total_w) : minigrad::detail::format("{}", g.w + total_w), x.shape(),
                         weight.shape());
    }
    g.oh = (g.h + total_h - reach_h) / g.stride_h + 1;
    g.ow = (g.w + total_w - reach_w) / g.stride_w + 1;
    return g;
}

template <class B, class T>
Tensor<B, T> conv(const char* op, const kernels::ConvGeometry& g, const Shape& out_shape, const Tensor<B, T>& x, const Tensor<B, T>& weight,
                  const Tensor<B, T>& bias) {
    const std::int64_t og = g.o / g.groups, k = g.patch();
    auto y = Tensor<B, T>::empty(out_shape, x.device());
    if (y.numel() == 0) return y;
    // image chunks (conv_chunk_images): out_g (og, m) = w_g (og, k) cols_g (k, m) for each
    const std::int64_t chunk = conv_chunk_images<B, T>(g), positions = g.oh * g.ow, first = chunk < g.n ? chunk : g.n;
    auto cols = Tensor<B, T>::empty(Shape{g.groups, k, first * positions}, x.device());
    auto grouped = Tensor<B, T>::empty(Shape{g.groups, og, first * positions}, x.device());
    for (std::int64_t n0 = 0; n0 < g.n; n0 += chunk) {
        const auto gc = conv_chunk(g, chunk < g.n - n0 ? chunk : g.n - n0);
        const std::int64_t mc = gc.rows();
        B::launch_rows(g.groups * k, mc, kernels::Im2Col<T>{x.data() + n0 * g.c * g.h * g.w, cols.data(), gc}, x.device());
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
            B::gemm(kernels::GemmElement<T>{weight.data() + gi * og * k, cols.data() + gi * k * mc, nullptr, grouped.data() + gi * og * mc, og, mc, k,
                                            false, false, true},
                    x.device());
        }
        const kernels::ConvReorder<T> reorder{grouped.data(), y.data() + n0 * g.o * positions, bias.defined() ? bias.data() : nullptr, nullptr, gc,
                                              false, false};
        B::launch_rows(reorder.rows(), reorder.cols(), reorder, x.device());
    }
    if (wants_grad(x, weight, bias)) {
        auto node = std::make_shared<ConvNode<B, T>>();
        node->inputs = {x.impl_ptr(), weight.impl_ptr(), bias.defined() ? bias.impl_ptr() : nullptr};
        node->g = g;
        node->chunk = chunk;
        if (chunk >= g.n) node->cols = std::move(cols);  // one chunk: its patches serve backward as they are
        node->name = op;
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail

// x is (N, C, H, W), weight (O, C / groups, kH, kW), bias (O) or undefined; the result is
// (N, O, OH, OW), OH = (H + 2 pad - dilation (kH - 1) - 1) / stride + 1.
template <class B, class T>
Tensor<B, T> conv2d(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias = {}, Conv2dOptions options = {}) {
    const auto g = detail::conv_geometry("conv2d", 2, x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
    return detail::conv("conv2d", g, Shape{g.n, g.o, g.oh, g.ow}, x, weight, bias);
}
// x is (N, C, L), weight (O, C / groups, kL), bias (O) or undefined; the result is (N, O, OL).
template <class B, class T>
Tensor<B, T> conv1d(const Tensor<B, T>& x, const Tensor<B, T>& weight, const Tensor<B, T>& bias = {}, Conv1dOptions options = {}) {
    const auto g = detail::conv_geometry("conv1d", 1, x, weight, bias, Size2(1, options.stride), options.padding, Size2(1, options.dilation),
                                         options.groups);
    return detail::conv("conv1d", g, Shape{g.n, g.o, g.ow}, x, weight, bias);
}

}  // namespace minigrad
