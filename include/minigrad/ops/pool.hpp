// Pooling over (N, C, H, W) as torch.nn.functional's: max_pool2d (kernel, stride = kernel,
// padding, dilation, ceil_mode; its gradient goes to each window's arg-max, the first maximum, a
// NaN counting as one; max_pool2d_with_indices also returns those arg-maxes), avg_pool2d (padding,
// ceil_mode, count_include_pad, divisor_override) and adaptive_avg_pool2d (windows from
// floor(p H / OH) to ceil((p + 1) H / OH)). Forward is a row of outputs per thread (or warp);
// backward a row of input elements, each summing the windows that read it in a fixed order (no
// atomics).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "checks.hpp"
#include "conv.hpp"

namespace minigrad {

namespace kernels {

// An input of (n*c planes, h, w) pooled to (oh, ow): window (p, q) spans rows p*stride_h - pad_h
// .. + dil_h * (kh - 1) + 1, reading every dil_h-th of them (max pooling; 1 for the others), and
// columns likewise (adaptive: its own bounds, below). An average's divisor: divisor_override where
// not 0, else the window's size within the padded input (count_pad) or within the input.
struct PoolGeometry {
    index_t planes, h, w, oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w;
    bool adaptive;
    index_t dil_h = 1, dil_w = 1;
    bool count_pad = true;
    index_t divisor_override = 0;
    MINIGRAD_HD index_t span_h() const { return dil_h * (kh - 1) + 1; }
    MINIGRAD_HD index_t span_w() const { return dil_w * (kw - 1) + 1; }
    MINIGRAD_HD index_t row_begin(index_t p) const { return adaptive ? p * h / oh : p * stride_h - pad_h; }
    MINIGRAD_HD index_t row_end(index_t p) const { return adaptive ? ((p + 1) * h + oh - 1) / oh : p * stride_h - pad_h + span_h(); }
    MINIGRAD_HD index_t col_begin(index_t q) const { return adaptive ? q * w / ow : q * stride_w - pad_w; }
    MINIGRAD_HD index_t col_end(index_t q) const { return adaptive ? ((q + 1) * w + ow - 1) / ow : q * stride_w - pad_w + span_w(); }
    // The first row (column) window p (q) reads inside the input: its first tap at or after 0
    MINIGRAD_HD index_t first_tap_row(index_t p) const {
        const index_t b = row_begin(p);
        return b >= 0 ? b : b + (-b + dil_h - 1) / dil_h * dil_h;
    }
    MINIGRAD_HD index_t first_tap_col(index_t q) const {
        const index_t b = col_begin(q);
        return b >= 0 ? b : b + (-b + dil_w - 1) / dil_w * dil_w;
    }
    // The same bounds clipped to the input (the padding is not read)
    MINIGRAD_HD index_t input_row_begin(index_t p) const { return row_begin(p) < 0 ? 0 : row_begin(p); }
    MINIGRAD_HD index_t input_row_end(index_t p) const { return row_end(p) < h ? row_end(p) : h; }
    MINIGRAD_HD index_t input_col_begin(index_t q) const { return col_begin(q) < 0 ? 0 : col_begin(q); }
    MINIGRAD_HD index_t input_col_end(index_t q) const { return col_end(q) < w ? col_end(q) : w; }
    // The windows whose rows hold row y: p in [first, last)
    MINIGRAD_HD index_t first_window_row(index_t y) const {
        if (adaptive) return y * oh / h;  // the first p with row_end(p) > y
        const index_t top = y + pad_h - span_h() + 1;  // p * stride_h >= top
        return top <= 0 ? 0 : (top + stride_h - 1) / stride_h;
    }
    MINIGRAD_HD index_t last_window_row(index_t y) const {
        if (adaptive) return ((y + 1) * oh + h - 1) / h < oh ? ((y + 1) * oh + h - 1) / h : oh;
        const index_t p = (y + pad_h) / stride_h + 1;
        return p < oh ? p : oh;
    }
    MINIGRAD_HD index_t first_window_col(index_t x) const {
        if (adaptive) return x * ow / w;
        const index_t left = x + pad_w - span_w() + 1;
        return left <= 0 ? 0 : (left + stride_w - 1) / stride_w;
    }
    MINIGRAD_HD index_t last_window_col(index_t x) const {
        if (adaptive) return ((x + 1) * ow + w - 1) / w < ow ? ((x + 1) * ow + w - 1) / w : ow;
        const index_t q = (x + pad_w) / stride_w + 1;
        return q < ow ? q : ow;
    }
};

// take ? i : j in bit operations (select_bits, backend/kernels.hpp, for values): a pooling's choice
// of maximum follows the data, and as a branch (which the compiler makes of a plain select) it is
// mispredicted about every other time, a quarter of a small CNN's step.
MINIGRAD_HD_INLINE index_t select_index(bool take, index_t i, index_t j) { return j ^ ((j ^ i) & -static_cast<index_t>(take)); }

// The pooling functors are row functors (launch_rows): the forwards' row r is one output row
// (plane, p), its ow windows the columns; the backwards' row r is one input row (plane, y), its w
// elements the columns. One thread walks a backward row finding each element's windows without a
// division (they move right monotonically); a GPU warp's lanes take neighbouring columns.

// y (planes, oh, ow) = each window's maximum, where (its row * w + column in the plane) the first
// one; rows and columns in the padding are not read. A window whose taps all fall in the padding
// (a dilation wider than the input allows it) is -inf, with where -1.
template <class T>
struct MaxPoolForward {
    const T* x;
    T* y;
    std::int64_t* where;
    PoolGeometry g;
    MINIGRAD_HD index_t work_per_index() const { return g.ow * g.kh * g.kw; }
    // Whether `v` replaces the running maximum `b`: greater, or a NaN where b is none (the first
    // NaN stays). Both comparisons always run (`&`, not `&&`), so that a loop of selects vectorises.
    MINIGRAD_HD_INLINE static bool takes(T v, T b) { return !(v <= b) & !(b != b); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const index_t p = r % g.oh, plane = r / g.oh;
        const T* in = x + plane * g.h * g.w;
        const index_t r0 = g.first_tap_row(p), r1 = g.input_row_end(p);
        index_t qa = 0, qb = 0;  // one thread: the windows [qa, qb) whose columns are all in the input, tap by tap
        if constexpr (Lanes == 1) {
            if (r0 < r1) interior_windows(r, in, r0, r1, qa, qb);
        }
        for (index_t q = lane; q < g.ow; q += Lanes) {
            if (q == qa && qa < qb) q = qb;  // done above
            if (q >= g.ow) break;
            const index_t c0 = g.first_tap_col(q), c1 = g.input_col_end(q);
            if (r0 >= r1 || c0 >= c1) {  // every tap in the padding (a wide dilation): -inf, as PyTorch; no gradient
                y[r * g.ow + q] = -std::numeric_limits<T>::infinity();
                where[r * g.ow + q] = -1;
                continue;
            }
            index_t best = r0 * g.w + c0;
            T b = in[best];
            for (index_t rr = r0; rr < r1; rr += g.dil_h)
                for (index_t c = c0; c < c1; c += g.dil_w) {
                    const T v = in[rr * g.w + c];
                    const bool take = takes(v, b);
                    best = select_index(take, rr * g.w + c, best);
                    b = select_bits(take, v, b);
                }
            y[r * g.ow + q] = b;
            where[r * g.ow + q] = best;
        }
    }
    // Windows [qa, qb) of output row r, every column tap of which is in the input: the row's outputs
    // are the running maxima, updated one tap at a time across the windows (the taps of each window
    // in the order above: the same results and indices), a loop of loads and selects that vectorises
    // (the per-window loop was a mispredicted branch per tap: a quarter of LeNet's step).
    MINIGRAD_HD_INLINE void interior_windows(index_t r, const T* in, index_t r0, index_t r1, index_t& qa, index_t& qb) const {
        const index_t sw = g.stride_w;
        qa = g.pad_w <= 0 ? 0 : (g.pad_w + sw - 1) / sw;  // col_begin(q) >= 0
        const index_t last = g.w + g.pad_w - g.span_w();  // col_end(q) <= w: q * sw <= last
        qb = last < 0 ? 0 : last / sw + 1;
        qb = qb < g.ow ? qb : g.ow;
        if (qb <= qa) {
            qa = qb = 0;
            return;
        }
        T* yr = y + r * g.ow;
        std::int64_t* wr = where + r * g.ow;
        bool first = true;
        for (index_t rr = r0; rr < r1; rr += g.dil_h)
            for (index_t j = 0; j < g.kw; ++j) {
                const index_t at = rr * g.w - g.pad_w + j * g.dil_w;  // the tap's flat index at q = 0
                if (first) {
                    for (index_t q = qa; q < qb; ++q) {
                        yr[q] = in[at + q * sw];
                        wr[q] = at + q * sw;
                    }
                    first = false;
                    continue;
                }
                MINIGRAD_IVDEP
                for (index_t q = qa; q < qb; ++q) {
                    const T v = in[at + q * sw], b = yr[q];
                    const bool take = takes(v, b);
                    yr[q] = select_bits(take, v, b);
                    wr[q] = select_index(take, at + q * sw, wr[q]);
                }
            }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// Calls fn(xw, q0, q1) for input row r's columns that lane `lane` of Lanes takes, with [q0, q1) the
// windows whose columns hold xw.
template <int Lanes, class F>
MINIGRAD_HD void for_each_pool_column(const PoolGeometry& g, int lane, F&& fn) {
    if constexpr (Lanes == 1) {
        index_t q0 = 0, q1 = 0;
        for (index_t xw = 0; xw < g.w; ++xw) {
            while (q0 < g.ow && g.col_end(q0) <= xw) ++q0;   // the first window ending after xw
            while (q1 < g.ow && g.col_begin(q1) <= xw) ++q1;  // past the last window starting at or before xw
            fn(xw, q0, q1);
        }
    } else {
        for (index_t xw = lane; xw < g.w; xw += Lanes) fn(xw, g.first_window_col(xw), g.last_window_col(xw));
    }
}

// dx (planes, h, w), written or added, = the sum of dy over the windows whose maximum was this
// element.
template <class T>
struct MaxPoolBackward {
    const T* dy;
    const std::int64_t* where;
    T* dx;
    PoolGeometry g;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return g.w * (g.kh / g.stride_h + 1) * (g.kw / g.stride_w + 1); }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const index_t xh = r % g.h, plane = r / g.h;
        const index_t p0 = g.first_window_row(xh), p1 = g.last_window_row(xh);
        if constexpr (Lanes == 1) {
            if (g.stride_h >= g.span_h() && g.stride_w >= g.span_w()) return disjoint_windows(r, xh, plane, p0, p1);
        }
        if (Lanes == 1 && overwrite) {  // one thread: zero the row, then add each window's dy at its maximum, if in this row (the same
                                        // sums, in the same order, as the per-element loop below)
            T* out = dx + r * g.w;
            for (index_t xw = 0; xw < g.w; ++xw) out[xw] = T(0);
            for (index_t p = p0; p < p1; ++p)
                for (index_t q = 0; q < g.ow; ++q) {
                    const index_t o = (plane * g.oh + p) * g.ow + q, column = where[o] - xh * g.w;
                    if (column >= 0 && column < g.w) out[column] += dy[o];
                }
            return;
        }
        for_each_pool_column<Lanes>(g, lane, [&](index_t xw, index_t q0, index_t q1) {
            const index_t at = xh * g.w + xw;
            T acc = 0;
            for (index_t p = p0; p < p1; ++p)
                for (index_t q = q0; q < q1; ++q) {
                    const index_t o = (plane * g.oh + p) * g.ow + q;
                    if (where[o] == at) acc += dy[o];
                }
            dx[r * g.w + xw] = write(dx[r * g.w + xw], acc, overwrite);
        });
    }
    // One thread, windows that do not overlap (stride at least the span, both dims: 2x2 stride 2):
    // row xh is in at most one row of windows, each element in at most one window, and gets that
    // window's dy where its maximum is this element, else 0: a select per tap, where the scatter
    // above tests each window's maximum for this row with a branch the data decides.
    MINIGRAD_HD_INLINE void disjoint_windows(index_t r, index_t xh, index_t plane, index_t p0, index_t p1) const {
        T* out = dx + r * g.w;
        if (overwrite)
            for (index_t xw = 0; xw < g.w; ++xw) out[xw] = T(0);
        if (p0 >= p1) return;
        const index_t o0 = (plane * g.oh + p0) * g.ow, at0 = xh * g.w;
        for (index_t q = 0; q < g.ow; ++q) {
            const index_t target = where[o0 + q] - at0;  // the maximum's column, if in this row
            const T d = dy[o0 + q];
            for (index_t j = 0, c = q * g.stride_w - g.pad_w; j < g.kw; ++j, c += g.dil_w)
                if (c >= 0 && c < g.w) out[c] += select_bits(target == c, d, T(0));
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// y (planes, oh, ow) = each window's mean: its sum over the rows and columns in the input, divided
// by divisor_override, or by the window's size within the padded input (count_include_pad, PyTorch's
// default: kh * kw except where ceil_mode's last window runs past the padding) or within the input
// alone; adaptive, by the window's size.
template <class T>
struct AvgPoolForward {
    const T* x;
    T* y;
    PoolGeometry g;
    MINIGRAD_HD T divisor(index_t p, index_t q) const {
        if (g.adaptive) return static_cast<T>((g.row_end(p) - g.row_begin(p)) * (g.col_end(q) - g.col_begin(q)));
        if (g.divisor_override != 0) return static_cast<T>(g.divisor_override);
        if (!g.count_pad) return static_cast<T>((g.input_row_end(p) - g.input_row_begin(p)) * (g.input_col_end(q) - g.input_col_begin(q)));
        const index_t rows = (g.row_end(p) < g.h + g.pad_h ? g.row_end(p) : g.h + g.pad_h) - g.row_begin(p);
        const index_t cols = (g.col_end(q) < g.w + g.pad_w ? g.col_end(q) : g.w + g.pad_w) - g.col_begin(q);
        return static_cast<T>(rows * cols);
    }
    MINIGRAD_HD index_t work_per_index() const { return g.ow * g.kh * g.kw; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const index_t p = r % g.oh, plane = r / g.oh;
        const T* in = x + plane * g.h * g.w;
        const index_t r0 = g.input_row_begin(p), r1 = g.input_row_end(p);
        for (index_t q = lane; q < g.ow; q += Lanes) {
            const index_t c0 = g.input_col_begin(q), c1 = g.input_col_end(q);
            T acc = 0;
            for (index_t rr = r0; rr < r1; ++rr)
                for (index_t c = c0; c < c1; ++c) acc += in[rr * g.w + c];
            y[r * g.ow + q] = acc / divisor(p, q);
        }
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// dx (planes, h, w), written or added, = the sum over the windows that hold the element of dy / the
// window's divisor.
template <class T>
struct AvgPoolBackward {
    const T* dy;
    T* dx;
    AvgPoolForward<T> forward;  // its geometry and divisors
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return forward.g.w * 4; }
    template <int Lanes, class Team>
    MINIGRAD_HD void row(index_t r, int lane, const Team&) const {
        const PoolGeometry& g = forward.g;
        const index_t xh = r % g.h, plane = r / g.h;
        const index_t p0 = g.first_window_row(xh), p1 = g.last_window_row(xh);
        if (Lanes == 1 && overwrite) {  // one thread: zero the row, then add each window's share over its columns (the same sums, in the
                                        // same order, as the per-element loop below)
            T* out = dx + r * g.w;
            for (index_t xw = 0; xw < g.w; ++xw) out[xw] = T(0);
            for (index_t p = p0; p < p1; ++p)
                for (index_t q = 0; q < g.ow; ++q) {
                    const T share = dy[(plane * g.oh + p) * g.ow + q] / forward.divisor(p, q);
                    const index_t c0 = g.input_col_begin(q), c1 = g.input_col_end(q);
                    for (index_t c = c0; c < c1; ++c) out[c] += share;
                }
            return;
        }
        for_each_pool_column<Lanes>(g, lane, [&](index_t xw, index_t q0, index_t q1) {
            T acc = 0;
            for (index_t p = p0; p < p1; ++p)
                for (index_t q = q0; q < q1; ++q) acc += dy[(plane * g.oh + p) * g.ow + q] / forward.divisor(p, q);
            dx[r * g.w + xw] = write(dx[r * g.w + xw], acc, overwrite);
        });
    }
    MINIGRAD_HD void operator()(index_t r) const { row<1>(r, 0, SoloTeam{}); }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using PoolFunctors = Functors<MaxPoolForward<T>, MaxPoolBackward<T>, AvgPoolForward<T>, AvgPoolBackward<T>>;

}  // namespace kernels

namespace detail {

template <class B, class T>
struct MaxPoolNode : Node<B, T> {
    kernels::PoolGeometry g{};
    Tensor<B, std::int64_t> where;
    const char* op_name() const override { return "max_pool2d"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch_rows(g.planes * g.h, g.w, kernels::MaxPoolBackward<T>{out.grad->data, where.data(), dx.data, g, dx.overwrite}, x.device);
    }
};
template <class B, class T>
struct AvgPoolNode : Node<B, T> {
    kernels::PoolGeometry g{};
    const char* name = "avg_pool2d";
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch_rows(g.planes * g.h, g.w, kernels::AvgPoolBackward<T>{out.grad->data, dx.data, kernels::AvgPoolForward<T>{nullptr, nullptr, g}, dx.overwrite},
                       x.device);
    }
};

// The checks of a fixed-window pooling, then its geometry: PyTorch's output size, with ceil_mode
// rounding up but dropping a last window that would start past the input and its left padding.
template <class B, class T>
kernels::PoolGeometry pool_geometry(const char* op, const Tensor<B, T>& x, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation = 1,
                                    bool ceil_mode = false) {
    require_floating<T>();
    check_defined(op, x, 1, "input");
    check_ndim(op, x, 1, "input", 4, "[N, C, H, W]");
    if (kernel.h < 1 || kernel.w < 1) fail<ValueError>("{}: kernel_size [{}, {}] must be positive", op, kernel.h, kernel.w);
    if (stride.h == 0 && stride.w == 0) stride = kernel;  // PyTorch's default: stride = kernel_size
    if (stride.h < 1 || stride.w < 1) fail<ValueError>("{}: stride [{}, {}] must be positive", op, stride.h, stride.w);
    if (dilation.h < 1 || dilation.w < 1) fail<ValueError>("{}: dilation [{}, {}] must be positive", op, dilation.h, dilation.w);
    if (padding.h < 0 || padding.w < 0 || 2 * padding.h > kernel.h || 2 * padding.w > kernel.w) {
        fail<ValueError>("{}: padding [{}, {}] must be >= 0 and at most half the kernel_size [{}, {}]", op, padding.h, padding.w, kernel.h, kernel.w);
    }
    kernels::PoolGeometry g{};
    g.planes = x.size(0) * x.size(1), g.h = x.size(2), g.w = x.size(3), g.kh = kernel.h, g.kw = kernel.w;
    g.stride_h = stride.h, g.stride_w = stride.w, g.pad_h = padding.h, g.pad_w = padding.w, g.adaptive = false;
    g.dil_h = dilation.h, g.dil_w = dilation.w;
    if (g.h + 2 * g.pad_h < g.span_h() || g.w + 2 * g.pad_w < g.span_w()) {
        if (dilation.h == 1 && dilation.w == 1) {
            fail<ShapeError>("{}: kernel_size [{}, {}] is larger than argument #1 'input' of shape {} padded by [{}, {}]", op, g.kh, g.kw, x.shape(),
                             g.pad_h, g.pad_w);
        }
        fail<ShapeError>("{}: kernel_size [{}, {}] with dilation [{}, {}] spans [{}, {}], more than argument #1 'input' of shape {} padded by [{}, {}]",
                         op, g.kh, g.kw, g.dil_h, g.dil_w, g.span_h(), g.span_w(), x.shape(), g.pad_h, g.pad_w);
    }
    const auto out_size = [&](std::int64_t in, std::int64_t pad, std::int64_t span, std::int64_t step) {
        std::int64_t n = (in + 2 * pad - span + (ceil_mode ? step - 1 : 0)) / step + 1;
        if (ceil_mode && (n - 1) * step >= in + pad) --n;
        return n;
    };
    g.oh = out_size(g.h, g.pad_h, g.span_h(), g.stride_h);
    g.ow = out_size(g.w, g.pad_w, g.span_w(), g.stride_w);
    return g;
}

template <class B, class T>
Tensor<B, T> avg_pool(const char* op, const Tensor<B, T>& x, const kernels::PoolGeometry& g) {
    auto y = Tensor<B, T>::empty(Shape{x.size(0), x.size(1), g.oh, g.ow}, x.device());
    if (y.numel() > 0) B::launch_rows(g.planes * g.oh, g.ow, kernels::AvgPoolForward<T>{x.data(), y.data(), g}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<AvgPoolNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->g = g;
        node->name = op;
        attach(y.impl(), std::move(node));
    }
    return y;
}

}  // namespace detail

// PyTorch's keyword arguments of max_pool2d and avg_pool2d. stride 0 (the default) is the kernel
// size; divisor_override 0 is none.
struct MaxPool2dOptions {
    Size2 stride = 0, padding = 0, dilation = 1;
    bool ceil_mode = false;
};
struct AvgPool2dOptions {
    Size2 stride = 0, padding = 0;
    bool ceil_mode = false, count_include_pad = true;
    std::int64_t divisor_override = 0;
};

// x is (N, C, H, W); the result (N, C, OH, OW) and, for each output, where its maximum is in its
// input plane (row * W + column, as PyTorch's return_indices), OH = (H + 2 padding - dilation
// (kernel - 1) - 1) / stride + 1, rounded up with ceil_mode. The gradient flows through the values.
template <class B, class T>
std::pair<Tensor<B, T>, Tensor<B, std::int64_t>> max_pool2d_with_indices(const Tensor<B, T>& x, Size2 kernel_size, const MaxPool2dOptions& o = {}) {
    const auto g = detail::pool_geometry("max_pool2d", x, kernel_size, o.stride, o.padding, o.dilation, o.ceil_mode);
    auto y = Tensor<B, T>::empty(Shape{x.size(0), x.size(1), g.oh, g.ow}, x.device());
    auto where = Tensor<B, std::int64_t>::empty(y.shape(), x.device());
    if (y.numel() > 0) B::launch_rows(g.planes * g.oh, g.ow, kernels::MaxPoolForward<T>{x.data(), y.data(), where.data(), g}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::MaxPoolNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->g = g;
        node->where = where;
        detail::attach(y.impl(), std::move(node));
    }
    return {std::move(y), std::move(where)};
}
template <class B, class T>
Tensor<B, T> max_pool2d(const Tensor<B, T>& x, Size2 kernel_size, const MaxPool2dOptions& options) {
    return max_pool2d_with_indices(x, kernel_size, options).first;
}
// The positional form, as F.max_pool2d(x, kernel, stride, padding).
template <class B, class T>
Tensor<B, T> max_pool2d(const Tensor<B, T>& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0) {
    return max_pool2d(x, kernel_size, MaxPool2dOptions{.stride = stride, .padding = padding});
}
template <class B, class T>
Tensor<B, T> avg_pool2d(const Tensor<B, T>& x, Size2 kernel_size, const AvgPool2dOptions& o) {
    if (o.divisor_override < 0) detail::fail<ValueError>("avg_pool2d: divisor_override {} must be positive (0: none)", o.divisor_override);
    auto g = detail::pool_geometry("avg_pool2d", x, kernel_size, o.stride, o.padding, 1, o.ceil_mode);
    g.count_pad = o.count_include_pad;
    g.divisor_override = o.divisor_override;
    return detail::avg_pool("avg_pool2d", x, g);
}
template <class B, class T>
Tensor<B, T> avg_pool2d(const Tensor<B, T>& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0) {
    return avg_pool2d(x, kernel_size, AvgPool2dOptions{.stride = stride, .padding = padding});
}
// x is (N, C, H, W); the result (N, C, output_size), each output the mean of its window.
template <class B, class T>
Tensor<B, T> adaptive_avg_pool2d(const Tensor<B, T>& x, Size2 output_size) {
    detail::require_floating<T>();
    detail::check_defined("adaptive_avg_pool2d", x, 1, "input");
    detail::check_ndim("adaptive_avg_pool2d", x, 1, "input", 4, "[N, C, H, W]");
    if (output_size.h < 1 || output_size.w < 1) {
        detail::fail<ValueError>("adaptive_avg_pool2d: output_size [{}, {}] must be positive", output_size.h, output_size.w);
    }
    if (x.size(2) < 1 || x.size(3) < 1) {
        detail::fail<ShapeError>("adaptive_avg_pool2d: argument #1 'input' has shape {}, expected H and W of at least 1", x.shape());
    }
    kernels::PoolGeometry g{};
    g.planes = x.size(0) * x.size(1), g.h = x.size(2), g.w = x.size(3), g.oh = output_size.h, g.ow = output_size.w, g.adaptive = true;
    g.kh = g.kw = g.stride_h = g.stride_w = 1;
    return detail::avg_pool("adaptive_avg_pool2d", x, g);
}

}  // namespace minigrad
