// Shape ops, as PyTorch names them: reshape / view / flatten, transpose / t, narrow / slice, cat
// (index_select is with embedding, in ops/index.hpp). Tensors here are always contiguous and own
// their storage, so every result is
// a copy (one launch, or one backend copy for reshape): a view sharing storage would need a version
// counter shared with its base for autograd's in-place check, which TensorImpl does not have.
// A dim op sees a tensor as (outer, n, inner) around its dim (detail::split_at).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "broadcast.hpp"
#include "checks.hpp"

namespace minigrad {
namespace kernels {

// y = x with its dims reordered (a transpose, a permute), written or added: `at` reads x through
// its strides over y's dims. i over y's elements.
template <class T>
struct Permute {
    const T* x;
    T* y;
    StridedIndex at;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const { y[i] = write(y[i], x[at.offset(i)], overwrite); }
    // The host's loop: the divisions of offset() once for `begin`, then x's position moves as an
    // odometer over y's dims, and each run along y's last dim is one loop (a copy where that dim
    // is also x's last: head splits and merges, which keep the last dim). The same values as
    // operator(), element for element.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        if (begin >= end) return;
        if (at.nd == 0) {  // one element
            for (index_t i = begin; i < end; ++i) y[i] = write(y[i], x[0], overwrite);
            return;
        }
        index_t digit[StridedIndex::max_dims]{}, rest = begin, off = 0;
        for (int d = at.nd - 1; d >= 0; --d) {
            digit[d] = rest % at.dims[d];
            rest /= at.dims[d];
            off += digit[d] * at.strides[d];
        }
        const int last = at.nd - 1;
        const index_t inner = at.dims[last], step = at.strides[last];
        for (index_t i = begin; i < end;) {
            const index_t run = inner - digit[last] < end - i ? inner - digit[last] : end - i;
            const T* src = x + off;
            T* dst = y + i;
            if (step == 1) {
                if (overwrite) {
                    for (index_t j = 0; j < run; ++j) dst[j] = src[j];
                } else {
                    for (index_t j = 0; j < run; ++j) dst[j] += src[j];
                }
            } else {
                for (index_t j = 0; j < run; ++j) dst[j] = write(dst[j], src[j * step], overwrite);
            }
            i += run;
            off += run * step;
            digit[last] += run;
            for (int d = last; d > 0 && digit[d] == at.dims[d]; --d) {  // carry into the dims outside
                off -= at.dims[d] * at.strides[d];
                digit[d] = 0;
                ++digit[d - 1];
                off += at.strides[d - 1];
            }
        }
    }
};

// src is (outer, n_src, inner), dst is (outer, n_dst, inner) with n_dst <= n_src: dst = src's
// entries [start, start + n_dst) along the middle dim, written or added (narrow, and cat's
// backward); i over dst's elements
template <class T>
struct WindowRead {
    const T* src;
    T* dst;
    index_t n_src, n_dst, start, inner;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = i / (n_dst * inner), k = (i / inner) % n_dst, in = i % inner;
        dst[i] = write(dst[i], src[(o * n_src + start + k) * inner + in], overwrite);
    }
    // The host's loop: each outer index's window is n_dst * inner contiguous elements of src, so
    // [begin, end) goes in contiguous runs, one division per run instead of three per element.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        const index_t run = n_dst * inner;
        for (index_t i = begin; i < end;) {
            const index_t o = i / run, off = i - o * run, n = run - off < end - i ? run - off : end - i;
            const T* __restrict s = src + (o * n_src + start) * inner + off;
            T* __restrict d = dst + i;
            if (overwrite)
                for (index_t j = 0; j < n; ++j) d[j] = s[j];
            else
                for (index_t j = 0; j < n; ++j) d[j] += s[j];
            i += n;
        }
    }
};

// src is (outer, n_src, inner), dst is (outer, n_dst, inner) with n_src <= n_dst: src goes to
// dst's entries [start, start + n_src) along the middle dim (cat), or is added there (add: narrow's
// backward into a gradient that already holds values); i over src's elements
template <class T>
struct WindowWrite {
    const T* src;
    T* dst;
    index_t n_src, n_dst, start, inner;
    bool add = false;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = i / (n_src * inner), k = (i / inner) % n_src, in = i % inner;
        T& to = dst[(o * n_dst + start + k) * inner + in];
        to = add ? to + src[i] : src[i];
    }
    // The host's loop, in contiguous runs as WindowRead's.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        const index_t run = n_src * inner;
        for (index_t i = begin; i < end;) {
            const index_t o = i / run, off = i - o * run, n = run - off < end - i ? run - off : end - i;
            const T* __restrict s = src + i;
            T* __restrict d = dst + (o * n_dst + start) * inner + off;
            if (add)
                for (index_t j = 0; j < n; ++j) d[j] += s[j];
            else
                for (index_t j = 0; j < n; ++j) d[j] = s[j];
            i += n;
        }
    }
};

// dy is (outer, n_y, inner), dx is (outer, n_x, inner): dx = dy inside [start, start + n_y) along
// the middle dim, 0 outside, written or added (narrow's backward); i over dx's elements
template <class T>
struct NarrowBackward {
    const T* dy;
    T* dx;
    index_t n_x, n_y, start, inner;
    bool overwrite;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = i / (n_x * inner), k = (i / inner) % n_x - start, in = i % inner;
        dx[i] = write(dx[i], k >= 0 && k < n_y ? dy[(o * n_y + k) * inner + in] : T(0), overwrite);
    }
    // The host's loop: per outer index, zeros (or nothing, when adding) before and after the window
    // and dy's contiguous run inside it.
    MINIGRAD_HD_INLINE void range(index_t begin, index_t end) const {
        const index_t run = n_x * inner, lo = start * inner, hi = (start + n_y) * inner;
        for (index_t i = begin; i < end;) {
            const index_t o = i / run, off = i - o * run, n = run - off < end - i ? run - off : end - i;
            T* __restrict d = dx + i;
            const T* __restrict s = dy + o * n_y * inner;  // the window's first element
            for (index_t j = 0; j < n; ++j) {
                const index_t at = off + j;
                const T v = at >= lo && at < hi ? s[at - lo] : T(0);
                d[j] = overwrite ? v : d[j] + v;
            }
            i += n;
        }
    }
};

// The functors this file's ops launch, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using ShapeFunctors = Functors<Permute<T>, WindowRead<T>, WindowWrite<T>, NarrowBackward<T>>;

}  // namespace kernels

namespace detail {

// ---- reshape ------------------------------------------------------------------------------

template <class B, class T>
struct ReshapeNode : Node<B, T> {
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        B::launch(x.numel(), kernels::AccumulateGrad<T>{out.grad->data, dx.data, dx.overwrite}, x.device);
    }
};

// The shape `sizes` asks for (one -1 inferred), or a ShapeError naming op and both shapes.
inline Shape resolve_shape(const char* op, std::span<const std::int64_t> sizes, const Shape& from) {
    if (sizes.size() > static_cast<std::size_t>(Shape::max_dims)) {
        fail<ShapeError>("{}: argument #2 'shape' has {} dims, at most {} are supported", op, sizes.size(), Shape::max_dims);
    }
    std::int64_t dims[Shape::max_dims];
    int inferred = -1;
    std::int64_t known = 1;
    for (std::size_t d = 0; d < sizes.size(); ++d) {
        dims[d] = sizes[d];
        if (sizes[d] == -1 && inferred < 0) {
            inferred = static_cast<int>(d);
        } else if (sizes[d] < 0) {
            fail<ShapeError>("{}: argument #2 'shape' [{}] has size {} at dim {}; only one -1 (inferred) is allowed, no other negative size",
                             op, join(sizes), sizes[d], d);
        } else if (__builtin_mul_overflow(known, sizes[d], &known)) {
            fail<ShapeError>("{}: argument #2 'shape' [{}] has sizes whose product overflows 64 bits (a shape holds at most {} elements)", op,
                             join(sizes), Shape::max_numel);
        }
    }
    if (inferred >= 0) {
        if (known == 0 || from.numel() % known != 0) {
            fail<ShapeError>("{}: argument #2 'shape' [{}] does not fit argument #1 'input' of shape {} ({} elements)", op,
                             join(sizes), from, from.numel());
        }
        dims[inferred] = from.numel() / known;
        known = from.numel();
    }
    if (known != from.numel()) {
        fail<ShapeError>("{}: argument #2 'shape' [{}] holds {} elements, but argument #1 'input' of shape {} has {}", op,
                         join(sizes), known, from, from.numel());
    }
    return make_shape(dims, static_cast<int>(sizes.size()));
}

template <class B, class T>
Tensor<B, T> reshape_to(const Tensor<B, T>& x, const Shape& shape) {
    auto y = Tensor<B, T>::empty(shape, x.device());
    B::copy(y.data(), x.data(), x.impl().bytes(), x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<ReshapeNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        attach(y.impl(), std::move(node));
    }
    return y;
}

// ---- transpose ----------------------------------------------------------------------------

// y (written or added) = x with its dims reordered: y's dim d is x's dim order[d]; x_shape is x's shape
template <class B, class T>
void launch_permute(const T* x, const Shape& x_shape, const int* order, T* y, bool overwrite, int device) {
    const int nd = x_shape.ndim();
    std::int64_t strides[Shape::max_dims], dims[Shape::max_dims], in_strides[Shape::max_dims], stride = 1;
    for (int d = nd - 1; d >= 0; --d) {
        strides[d] = stride;
        stride *= x_shape[d];
    }
    for (int d = 0; d < nd; ++d) {
        dims[d] = x_shape[order[d]];
        in_strides[d] = strides[order[d]];
    }
    B::launch(x_shape.numel(), kernels::Permute<T>{x, y, kernels::strided_index(dims, in_strides, nd), overwrite}, device);
}

// y = x permuted by order (y's dim d is x's dim order[d]); its gradient permutes back.
template <class B, class T>
struct PermuteNode : Node<B, T> {
    std::array<int, Shape::max_dims> inverse{};  // x's dim d is the result's dim inverse[d]
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        launch_permute<B>(out.grad->data, out.shape, inverse.data(), dx.data, dx.overwrite, x.device);
    }
};

template <class B, class T>
Tensor<B, T> permute_checked(const Tensor<B, T>& x, const std::array<int, Shape::max_dims>& order) {
    std::int64_t dims[Shape::max_dims];
    for (int d = 0; d < x.ndim(); ++d) dims[d] = x.size(order[static_cast<std::size_t>(d)]);
    auto y = Tensor<B, T>::empty(make_shape(dims, x.ndim()), x.device());
    launch_permute<B>(x.data(), x.shape(), order.data(), y.data(), true, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<PermuteNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        for (int d = 0; d < x.ndim(); ++d) node->inverse[static_cast<std::size_t>(order[static_cast<std::size_t>(d)])] = d;
        attach(y.impl(), std::move(node));
    }
    return y;
}

// ---- narrow -------------------------------------------------------------------------------

template <class B, class T>
struct NarrowNode : Node<B, T> {
    DimSplit split;
    std::int64_t start, length;
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        if (dx.overwrite) {  // a fresh gradient: the window, and zeros around it
            B::launch(x.numel(), kernels::NarrowBackward<T>{out.grad->data, dx.data, split.size, length, start, split.inner, true}, x.device);
        } else {  // one that holds values already: only the window changes (an RNN's step slices cost their size, not the sequence's)
            B::launch(out.numel(), kernels::WindowWrite<T>{out.grad->data, dx.data, length, split.size, start, split.inner, true}, x.device);
        }
    }
};

template <class B, class T>
Tensor<B, T> narrow_unchecked(const Tensor<B, T>& x, int dim, std::int64_t start, std::int64_t length) {
    const auto split = split_at(x.shape(), dim);
    auto y = Tensor<B, T>::empty(with_dim(x.shape(), dim, length), x.device());
    B::launch(y.numel(), kernels::WindowRead<T>{x.data(), y.data(), split.size, length, start, split.inner, true}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<NarrowNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->start = start;
        node->length = length;
        attach(y.impl(), std::move(node));
    }
    return y;
}

// ---- cat ----------------------------------------------------------------------------------

// Up to three inputs (a Node holds three); cat of more folds into nested cats when recording.
template <class B, class T>
struct CatNode : Node<B, T> {
    std::int64_t outer = 1, inner = 1, total = 0;
    std::array<std::int64_t, 3> sizes{}, starts{};
    void backward(TensorImpl<B, T>& out) override {
        for (std::size_t i = 0; i < this->inputs.size(); ++i) {
            auto* x = this->inputs[i].get();
            if (!x || !x->requires_grad) continue;
            auto dx = grad_slot(*x);
            B::launch(x->numel(), kernels::WindowRead<T>{out.grad->data, dx.data, total, sizes[i], starts[i], inner, dx.overwrite},
                      x->device);
        }
    }
};

}  // namespace detail

// A tensor with x's elements in a new shape; one size may be -1 (inferred). A copy (see above).
template <class B, class T>
Tensor<B, T> reshape(const Tensor<B, T>& x, std::span<const std::int64_t> shape) {
    detail::check_defined("reshape", x, 1, "input");
    return detail::reshape_to(x, detail::resolve_shape("reshape", shape, x.shape()));
}
template <class B, class T>
Tensor<B, T> reshape(const Tensor<B, T>& x, std::initializer_list<std::int64_t> shape) {
    return reshape(x, std::span<const std::int64_t>(shape.begin(), shape.size()));
}
// As reshape: every tensor here is contiguous, so a view is always possible (and a copy here).
template <class B, class T>
Tensor<B, T> view(const Tensor<B, T>& x, std::initializer_list<std::int64_t> shape) {
    detail::check_defined("view", x, 1, "input");
    return detail::reshape_to(x, detail::resolve_shape("view", std::span<const std::int64_t>(shape.begin(), shape.size()), x.shape()));
}

// Dims start_dim..end_dim merged into one (negative dims count from the end); a scalar becomes [1].
template <class B, class T>
Tensor<B, T> flatten(const Tensor<B, T>& x, std::int64_t start_dim = 0, std::int64_t end_dim = -1) {
    detail::check_defined("flatten", x, 1, "input");
    const int first = detail::normalize_dim("flatten", x.shape(), start_dim, 2, "start_dim");
    const int last = detail::normalize_dim("flatten", x.shape(), end_dim, 3, "end_dim");
    if (first > last) {
        detail::fail<ShapeError>("flatten: argument #2 'start_dim' ({}) comes after argument #3 'end_dim' ({}) for a tensor of shape {}",
                                 start_dim, end_dim, x.shape());
    }
    if (x.ndim() == 0) return detail::reshape_to(x, Shape{1});
    std::int64_t dims[Shape::max_dims];
    int n = 0;
    for (int d = 0; d < x.ndim(); ++d) {
        if (d <= first || d > last)
            dims[n++] = x.size(d);
        else
            dims[n - 1] *= x.size(d);
    }
    return detail::reshape_to(x, detail::make_shape(dims, n));
}

// x with dims dim0 and dim1 swapped (a copy).
template <class B, class T>
Tensor<B, T> transpose(const Tensor<B, T>& x, std::int64_t dim0, std::int64_t dim1) {
    detail::check_defined("transpose", x, 1, "input");
    const int d0 = detail::normalize_dim("transpose", x.shape(), dim0, 2, "dim0");
    const int d1 = detail::normalize_dim("transpose", x.shape(), dim1, 3, "dim1");
    if (x.ndim() < 2) return detail::reshape_to(x, x.shape());
    std::array<int, Shape::max_dims> order{};
    for (int d = 0; d < x.ndim(); ++d) order[static_cast<std::size_t>(d)] = d == d0 ? d1 : d == d1 ? d0 : d;
    return detail::permute_checked(x, order);
}

// x with its dims reordered: the result's dim d is x's dim dims[d] (negative dims count from the
// end), as torch.permute; a copy.
template <class B, class T>
Tensor<B, T> permute(const Tensor<B, T>& x, std::span<const std::int64_t> dims) {
    detail::check_defined("permute", x, 1, "input");
    if (static_cast<int>(dims.size()) != x.ndim()) {
        detail::fail<ShapeError>("permute: argument #2 'dims' has {} entries, but argument #1 'input' has {} dims (shape {})", dims.size(),
                                 x.ndim(), x.shape());
    }
    std::array<int, Shape::max_dims> order{};
    std::array<bool, Shape::max_dims> seen{};
    for (std::size_t d = 0; d < dims.size(); ++d) {
        const int from = detail::normalize_dim("permute", x.shape(), dims[d], 2, "dims");
        if (seen[static_cast<std::size_t>(from)]) {
            detail::fail<ShapeError>("permute: argument #2 'dims' names dim {} twice ([{}])", from, detail::join(dims));
        }
        seen[static_cast<std::size_t>(from)] = true;
        order[d] = from;
    }
    return detail::permute_checked(x, order);
}
template <class B, class T>
Tensor<B, T> permute(const Tensor<B, T>& x, std::initializer_list<std::int64_t> dims) {
    return permute(x, std::span<const std::int64_t>(dims.begin(), dims.size()));
}

// The transpose of a matrix; a vector or scalar as it is (PyTorch's t()).
template <class B, class T>
Tensor<B, T> t(const Tensor<B, T>& x) {
    detail::check_defined("t", x, 1, "input");
    if (x.ndim() > 2) detail::fail<ShapeError>("t: argument #1 'input' has shape {}, expected at most 2 dims; use transpose(x, dim0, dim1)", x.shape());
    return x.ndim() < 2 ? detail::reshape_to(x, x.shape()) : transpose(x, 0, 1);
}

// x with a dim of size 1 inserted at dim (in [-ndim - 1, ndim]; negative counts from the end of
// the result), as torch.unsqueeze; a copy.
template <class B, class T>
Tensor<B, T> unsqueeze(const Tensor<B, T>& x, std::int64_t dim) {
    detail::check_defined("unsqueeze", x, 1, "input");
    if (x.ndim() == Shape::max_dims) {
        detail::fail<ShapeError>("unsqueeze: argument #1 'input' has shape {}, already the most dims a tensor has ({})", x.shape(), Shape::max_dims);
    }
    const auto rank = static_cast<std::int64_t>(x.ndim()) + 1;
    if (dim < -rank || dim >= rank) {
        detail::fail<ShapeError>("unsqueeze: argument #2 'dim' is {}, out of range for a tensor of shape {} (expected a dim in [{}, {}])", dim,
                                 x.shape(), -rank, rank - 1);
    }
    const int at = static_cast<int>(dim < 0 ? dim + rank : dim);
    std::int64_t dims[Shape::max_dims];
    for (int d = 0, from = 0; d < rank; ++d) dims[d] = d == at ? 1 : x.size(from++);
    return detail::reshape_to(x, detail::make_shape(dims, static_cast<int>(rank)));
}

// x without its dims of size 1 (all of them, or dim only, which stays if its size is not 1), as
// torch.squeeze; a copy.
template <class B, class T>
Tensor<B, T> squeeze(const Tensor<B, T>& x) {
    detail::check_defined("squeeze", x, 1, "input");
    std::int64_t dims[Shape::max_dims];
    int n = 0;
    for (int d = 0; d < x.ndim(); ++d)
        if (x.size(d) != 1) dims[n++] = x.size(d);
    return detail::reshape_to(x, detail::make_shape(dims, n));
}
template <class B, class T>
Tensor<B, T> squeeze(const Tensor<B, T>& x, std::int64_t dim) {
    detail::check_defined("squeeze", x, 1, "input");
    const int at = detail::normalize_dim("squeeze", x.shape(), dim, 2);
    if (x.ndim() == 0 || x.size(at) != 1) return detail::reshape_to(x, x.shape());
    std::int64_t dims[Shape::max_dims];
    int n = 0;
    for (int d = 0; d < x.ndim(); ++d)
        if (d != at) dims[n++] = x.size(d);
    return detail::reshape_to(x, detail::make_shape(dims, n));
}

namespace detail {
// y = x broadcast to y's shape; its gradient sums back over the dims it stretched.
template <class B, class T>
struct ExpandNode : Node<B, T> {
    const char* op_name() const override { return "expand"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        sum_to_shape<B>(out.grad->data, out.shape, dx.data, x.shape, dx.overwrite, x.device);
    }
};
}  // namespace detail

// x broadcast to `sizes` (as many dims as x or more, new ones in front; -1 keeps x's size; a dim
// of size 1 stretches), as torch.expand, but a copy, not a view.
template <class B, class T>
Tensor<B, T> expand(const Tensor<B, T>& x, std::span<const std::int64_t> sizes) {
    detail::check_defined("expand", x, 1, "input");
    const int nd = static_cast<int>(sizes.size()), pad = nd - x.ndim();
    if (pad < 0 || nd > Shape::max_dims) {
        detail::fail<ShapeError>("expand: argument #2 'size' has {} dims, expected {} to {} for argument #1 'input' of shape {}", nd,
                                 x.ndim(), Shape::max_dims, x.shape());
    }
    std::int64_t dims[Shape::max_dims];
    for (int d = 0; d < nd; ++d) {
        const std::int64_t want = sizes[static_cast<std::size_t>(d)];
        const std::int64_t have = d < pad ? 1 : x.size(d - pad);
        if (want == -1 && d < pad) {
            detail::fail<ShapeError>("expand: argument #2 'size' is [{}]: -1 at dim {}, a new leading dim, which has no size to keep",
                                     detail::join(sizes), d);
        }
        dims[d] = want == -1 ? have : want;
        if (dims[d] < 0 || (have != 1 && dims[d] != have)) {
            detail::fail<ShapeError>("expand: argument #2 'size' is [{}], which argument #1 'input' of shape {} cannot expand to (dim {}: {} "
                                     "to {}; only a size of 1 stretches)",
                                     detail::join(sizes), x.shape(), d, have, dims[d]);
        }
    }
    auto y = Tensor<B, T>::empty(detail::make_shape(dims, nd), x.device());
    if (y.numel() > 0) B::launch(y.numel(), kernels::Permute<T>{x.data(), y.data(), detail::broadcast_read(x.shape(), y.shape()), true}, x.device());
    if (detail::wants_grad(x)) {
        auto node = std::make_shared<detail::ExpandNode<B, T>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class B, class T>
Tensor<B, T> expand(const Tensor<B, T>& x, std::initializer_list<std::int64_t> sizes) {
    return expand(x, std::span<const std::int64_t>(sizes.begin(), sizes.size()));
}

// Entries [start, start + length) of dim (a negative start counts from the end), as a copy.
template <class B, class T>
Tensor<B, T> narrow(const Tensor<B, T>& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
    detail::check_defined("narrow", x, 1, "input");
    if (x.ndim() == 0) detail::fail<ShapeError>("narrow: argument #1 'input' is a scalar (shape []), which has no dim to narrow");
    const int d = detail::normalize_dim("narrow", x.shape(), dim, 2);
    const std::int64_t size = x.size(d);
    const std::int64_t first = start < 0 ? start + size : start;
    if (first < 0 || first > size) {
        detail::fail<ShapeError>("narrow: argument #3 'start' is {}, out of range for dim {} of size {} (argument #1 'input' has shape {})",
                                 start, d, size, x.shape());
    }
    if (length < 0 || length > size - first) {  // first <= size: no overflow, whatever length is
        detail::fail<ShapeError>("narrow: argument #4 'length' is {}: start {} + length {} is past the end of dim {} of size {} "
                                 "(argument #1 'input' has shape {})",
                                 length, first, length, d, size, x.shape());
    }
    return detail::narrow_unchecked(x, d, first, length);
}

// Python's x[start:end] along dim: negative bounds count from the end, bounds past either end are
// clipped, an empty range gives an empty dim.
template <class B, class T>
Tensor<B, T> slice(const Tensor<B, T>& x, std::int64_t dim, std::int64_t start, std::int64_t end) {
    detail::check_defined("slice", x, 1, "input");
    if (x.ndim() == 0) detail::fail<ShapeError>("slice: argument #1 'input' is a scalar (shape []), which has no dim to slice");
    const int d = detail::normalize_dim("slice", x.shape(), dim, 2);
    const std::int64_t size = x.size(d);
    const auto clip = [size](std::int64_t i) {
        i = i < 0 ? i + size : i;
        return i < 0 ? 0 : i > size ? size : i;
    };
    const std::int64_t first = clip(start), last = clip(end);
    return detail::narrow_unchecked(x, d, first, last > first ? last - first : 0);
}

// The tensors joined along dim; every other dim must match.
template <class B, class T>
Tensor<B, T> cat(const std::vector<Tensor<B, T>>& tensors, std::int64_t dim = 0) {
    if (tensors.empty()) detail::fail<ValueError>("cat: argument #1 'tensors' is an empty list, expected at least one tensor");
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i].defined()) detail::fail<Error>("cat: tensor #{} of argument #1 'tensors' is an undefined tensor", i + 1);
    }
    const auto& first = tensors[0];
    if (first.ndim() == 0) detail::fail<ShapeError>("cat: tensor #1 of argument #1 'tensors' is a scalar (shape []), which cannot be joined");
    const int d = detail::normalize_dim("cat", first.shape(), dim, 2);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& x = tensors[i];
        bool match = x.ndim() == first.ndim();
        for (int k = 0; match && k < x.ndim(); ++k) match = k == d || x.size(k) == first.size(k);
        if (!match) {
            detail::fail<ShapeError>("cat: tensor #{} has shape {}, which does not match tensor #1's shape {} in every dim but {}", i + 1,
                                     x.shape(), first.shape(), d);
        }
        if (x.device() != first.device()) detail::check_same_device("cat", first, "tensors", x, 1, "tensors");
        if (x.size(d) > Shape::max_numel - total) {  // total <= max_numel: no overflow; the sum wrapped to a negative size, a dropped dim
            detail::fail<ShapeError>("cat: the sizes along dim {} add up to more than a dim can hold (at most {}): {} before tensor #{}, "
                                     "plus its {} (shape {})",
                                     d, Shape::max_numel, total, i + 1, x.size(d), x.shape());
        }
        total += x.size(d);
    }
    bool grad = false;
    for (const auto& x : tensors) grad = grad || detail::wants_grad(x);
    if (grad && tensors.size() > 3) {  // a Node holds three inputs: join thirds first, so each element is copied log3(n) times, not n/2
        const std::size_t n = tensors.size(), a = n / 3, b = 2 * n / 3;
        const auto part = [&](std::size_t from, std::size_t to) {
            return to - from == 1 ? tensors[from] : cat(std::vector<Tensor<B, T>>(tensors.begin() + static_cast<std::ptrdiff_t>(from),
                                                                                  tensors.begin() + static_cast<std::ptrdiff_t>(to)), d);
        };
        return cat(std::vector<Tensor<B, T>>{part(0, a), part(a, b), part(b, n)}, d);
    }
    const auto split = detail::split_at(first.shape(), d);
    auto y = Tensor<B, T>::empty(detail::with_dim(first.shape(), d, total), first.device());
    std::int64_t start = 0;
    auto node = grad ? std::make_shared<detail::CatNode<B, T>>() : nullptr;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& x = tensors[i];
        const std::int64_t n = x.size(d);
        B::launch(x.numel(), kernels::WindowWrite<T>{x.data(), y.data(), n, total, start, split.inner}, x.device());
        if (node) {
            node->inputs[i] = x.impl_ptr();
            node->sizes[i] = n;
            node->starts[i] = start;
        }
        start += n;
    }
    if (node) {
        node->outer = split.outer;
        node->inner = split.inner;
        node->total = total;
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class B, class T>
Tensor<B, T> cat(std::initializer_list<Tensor<B, T>> tensors, std::int64_t dim = 0) {
    return cat(std::vector<Tensor<B, T>>(tensors), dim);
}

}  // namespace minigrad
