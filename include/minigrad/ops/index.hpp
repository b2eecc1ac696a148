// The gathers: index_select(x, dim, index); embedding(index, weight), which is index_select
// along dim 0 of weight with an index of any shape, as torch.nn.functional.embedding; and
// gather(x, dim, index), which picks one entry along dim for each element of index, as
// torch.gather. Each has a gather kernel, a backward that adds a repeated index's gradients in
// index order (no atomics), one node, and one index check (ops/labels.hpp): on the host at once, on CUDA by a
// kernel, reported at the next host read as cross_entropy's labels are. The kernels also refuse
// to read or write outside x for an index the check has not yet reported (a GPU, or a compiled
// step that reports at its end): it reads 0, and its gradient goes nowhere.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include "checks.hpp"
#include "labels.hpp"

namespace minigrad {
namespace kernels {

// x is (outer, n_x, inner), index is (m) with values in [0, n_x), y is (outer, m, inner):
// y[o, j, in] = x[o, index[j], in]; i over y's elements. An index out of range (which CUDA reports
// only at the next host read) reads nothing and gives 0, so the kernel never reads past x.
template <class T, class L>
struct IndexSelect {
    const T* x;
    const L* index;
    T* y;
    index_t n_x, m, inner;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t o = i / (m * inner), j = (i / inner) % m, in = i % inner;
        const index_t k = static_cast<index_t>(index[j]);
        y[i] = k >= 0 && k < n_x ? x[(o * n_x + k) * inner + in] : T(0);
    }
};

// dy is (outer, m, inner), index is (m), dx is (outer, n_x, inner): dx[o, index[j], in] += dy[o, j,
// in], a repeated index adding up. Each index owns block_rows rows of one column (o, in) of dx
// (blocks of them cover the column): it zeroes them first when overwriting, then walks the indices
// in order and adds those that land in its rows. No atomics: the same sums every run, in the same
// order however the rows are blocked. The host takes one block (a thread per column); a GPU cuts
// the rows so that it has threads enough (B::column_chunks), a 30k-row embedding's gradient
// otherwise being a few hundred threads each zeroing 30k rows. c over outer * blocks * inner,
// neighbouring threads on neighbouring elements of a row.
template <class T, class L>
struct IndexSelectBackward {
    const T* dy;
    const L* index;
    T* dx;
    index_t n_x, m, inner, block_rows, blocks;
    bool overwrite;
    index_t skip = -1;  // an index whose row gets no gradient (embedding's padding_idx); -1: none
    MINIGRAD_HD index_t work_per_index() const { return block_rows + m; }
    MINIGRAD_HD void operator()(index_t c) const {
        const index_t in = c % inner, ob = c / inner, o = ob / blocks;
        const index_t first = ob % blocks * block_rows;
        const index_t last = first + block_rows < n_x ? first + block_rows : n_x;
        T* column = dx + o * n_x * inner + in;
        if (overwrite)
            for (index_t k = first; k < last; ++k) column[k * inner] = T(0);
        for (index_t j = 0; j < m; ++j) {
            const index_t k = static_cast<index_t>(index[j]);
            if (k >= first && k < last && k != skip) column[k * inner] += dy[(o * m + j) * inner + in];
        }
    }
};

// index and y have index's shape (x's rank, each dim but `dim` no larger than x's): y[i] = x at i's
// coordinates with the one along dim replaced by index[i]. x_at gives x's offset of i's coordinates
// with the one along dim taken as 0; stride is x's stride along dim. i over y
template <class T, class L>
struct GatherDim {
    const T* x;
    const L* index;
    T* y;
    StridedIndex x_at;
    index_t n_x, stride;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t k = static_cast<index_t>(index[i]);
        y[i] = k >= 0 && k < n_x ? x[x_at.offset(i) + k * stride] : T(0);
    }
};

// The gradient of GatherDim: p walks index's shape with dim stretched to x's size n_x (every element
// of dx that index can reach); dx there = the sum of dy over the m entries of index along dim, at
// p's other coordinates, whose value is p's coordinate along dim, in index order. dx_at and
// index_at give p's offset in dx and (with dim taken as 0) in index and dy; index_stride is their
// stride along dim, inner the size of the walk's dims after dim. p over the walk's elements
template <class T, class L>
struct GatherDimBackward {
    const T* dy;
    const L* index;
    T* dx;
    StridedIndex dx_at, index_at;
    index_t n_x, m, index_stride, inner;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return m; }
    MINIGRAD_HD void operator()(index_t p) const {
        const index_t k = (p / inner) % n_x, base = index_at.offset(p);
        T acc = 0;
        for (index_t t = 0; t < m; ++t)
            if (static_cast<index_t>(index[base + t * index_stride]) == k) acc += dy[base + t * index_stride];
        const index_t at = dx_at.offset(p);
        dx[at] = write(dx[at], acc, overwrite);
    }
};

// The functors this file's ops launch, for compiled steps, with indices of type L (kernels::Functors,
// backend/kernels.hpp).
template <class T, class L>
using IndexFunctors = Functors<IndexSelect<T, L>, IndexSelectBackward<T, L>, GatherDim<T, L>, GatherDimBackward<T, L>>;

}  // namespace kernels

namespace detail {

template <class B, class T, class L>
struct GatherNode : Node<B, T> {
    DimSplit split;
    Tensor<B, L> index;
    const char* name;
    std::int64_t skip = -1;
    const char* op_name() const override { return name; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        const std::int64_t chunks = B::column_chunks(split.size, split.outer * split.inner, x.device);
        const std::int64_t block_rows = chunks < 2 ? split.size : (split.size + chunks - 1) / chunks;
        const std::int64_t blocks = block_rows == 0 ? 1 : (split.size + block_rows - 1) / block_rows;
        B::launch(split.outer * blocks * split.inner,
                  kernels::IndexSelectBackward<T, L>{out.grad->data, index.data(), dx.data, split.size, index.numel(), split.inner,
                                                     block_rows, blocks, dx.overwrite, skip},
                  x.device);
    }
};

// y of y_shape (x's shape with dim d's size replaced by index's element count, in any layout the
// caller names) = x's entries along d picked by index; checks index first.
template <class B, class T, std::integral L>
Tensor<B, T> gather(const char* op, LabelSite site, const Tensor<B, T>& x, int d, const Tensor<B, L>& index, const Shape& y_shape,
                    std::int64_t skip = -1) {
    const auto split = split_at(x.shape(), d);
    const std::int64_t m = index.numel();
    if (split.size == 0 && m > 0) {  // no index can be in range: said now, on the host
        fail<ValueError>("{}: {} has {} entries, but dim {} of the tensor it indexes (shape {}) has size 0", op, site.arg, m, d, x.shape());
    }
    check_labels<B>(index.data(), m, split.size, site, index.device());
    auto y = Tensor<B, T>::empty(y_shape, x.device());
    B::launch(y.numel(), kernels::IndexSelect<T, L>{x.data(), index.data(), y.data(), split.size, m, split.inner}, x.device());
    if (wants_grad(x)) {
        auto node = std::make_shared<GatherNode<B, T, L>>();
        node->inputs = {x.impl_ptr(), nullptr, nullptr};
        node->split = split;
        node->index = index;
        node->name = op;
        node->skip = skip;
        attach(y.impl(), std::move(node));
    }
    return y;
}

// Row-major strides of a shape.
inline void contiguous_strides(const Shape& s, std::int64_t* strides) {
    std::int64_t stride = 1;
    for (int d = s.ndim() - 1; d >= 0; --d) {
        strides[d] = stride;
        stride *= s[d];
    }
}

// x is any shape, index has x's rank; y has index's shape
template <class B, class T, class L>
struct GatherDimNode : Node<B, T> {
    int dim;
    Tensor<B, L> index;
    const char* op_name() const override { return "gather"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& x = *this->inputs[0];
        auto dx = grad_slot(x);
        const Shape& xs = x.shape;
        const Shape& is = index.shape();
        const int nd = xs.ndim();
        std::int64_t walk[Shape::max_dims], x_strides[Shape::max_dims], index_strides[Shape::max_dims], inner = 1;
        contiguous_strides(xs, x_strides);
        contiguous_strides(is, index_strides);
        const std::int64_t index_stride = nd > 0 ? index_strides[dim] : 1;
        bool covers = true;  // whether the walk reaches every element of dx
        for (int d = 0; d < nd; ++d) {
            walk[d] = d == dim ? xs[d] : is[d];
            covers = covers && walk[d] == xs[d];
            if (d > dim) inner *= walk[d];
        }
        if (nd > 0) index_strides[dim] = 0;
        const std::int64_t walked = make_shape(walk, nd).numel();
        bool overwrite = dx.overwrite;
        if (!covers && overwrite) {  // elements the index cannot reach get 0
            B::launch(x.numel(), kernels::Fill<T>{dx.data, T(0)}, x.device);
            overwrite = false;
        }
        const std::int64_t n_x = nd > 0 ? xs[dim] : 1, m = nd > 0 ? is[dim] : 1;
        B::launch(walked,
                  kernels::GatherDimBackward<T, L>{out.grad->data, index.data(), dx.data, kernels::strided_index(walk, x_strides, nd),
                                                   kernels::strided_index(walk, index_strides, nd), n_x, m, index_stride, inner, overwrite},
                  x.device);
    }
};

}  // namespace detail

// y[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on for the others), as torch.gather: index
// has x's rank, each of its dims but `dim` no larger than x's, and values in [0, x.size(dim)); y has
// index's shape. The gradient adds up where index repeats.
template <class B, class T, std::integral L>
Tensor<B, T> gather(const Tensor<B, T>& x, std::int64_t dim, const Tensor<B, L>& index) {
    detail::check_defined("gather", x, 1, "input");
    detail::check_defined("gather", index, 3, "index");
    detail::check_same_device("gather", x, "input", index, 3, "index");
    const int d = detail::normalize_dim("gather", x.shape(), dim, 2);
    const int nd = x.ndim();
    if (index.ndim() != nd) {
        detail::fail<ShapeError>("gather: argument #3 'index' has shape {}, expected as many dims as argument #1 'input' of shape {}",
                                 index.shape(), x.shape());
    }
    for (int k = 0; k < nd; ++k) {
        if (k != d && index.size(k) > x.size(k)) {
            detail::fail<ShapeError>("gather: argument #3 'index' has shape {}, larger than argument #1 'input' of shape {} in dim {} ({} > {}); "
                                     "only dim {} may be larger",
                                     index.shape(), x.shape(), k, index.size(k), x.size(k), d);
        }
    }
    const std::int64_t n_x = nd > 0 ? x.size(d) : 1;
    if (n_x == 0 && index.numel() > 0) {
        detail::fail<ValueError>("gather: argument #3 'index' has {} entries, but dim {} of argument #1 'input' (shape {}) has size 0",
                                 index.numel(), d, x.shape());
    }
    detail::check_labels<B>(index.data(), index.numel(), n_x, {"gather", "argument #3 'index'", true, false}, index.device());
    auto y = Tensor<B, T>::empty(index.shape(), x.device());
    std::int64_t x_strides[Shape::max_dims];
    detail::contiguous_strides(x.shape(), x_strides);
    const std::int64_t stride = nd > 0 ? x_strides[d] : 1;
    if (nd > 0) x_strides[d] = 0;
    std::int64_t dims[Shape::max_dims];
    for (int k = 0; k < index.ndim(); ++k) dims[k] = index.size(k);
    const auto x_at = nd > 0 ? kernels::strided_index(dims, x_strides, nd) : kernels::StridedIndex{};
    B::launch(y.numel(), kernels::GatherDim<T, L>{x.data(), index.data(), y.data(), x_at, n_x, stride}, x.device());
    if constexpr (std::is_floating_point_v<T>) {
        if (detail::wants_grad(x)) {
            auto node = std::make_shared<detail::GatherDimNode<B, T, L>>();
            node->inputs = {x.impl_ptr(), nullptr, nullptr};
            node->dim = d;
            node->index = index;
            detail::attach(y.impl(), std::move(node));
        }
    }
    return y;
}
template <class BA, class TA, class BB, class L>
    requires(!std::is_same_v<BA, BB>)
Tensor<BA, TA> gather(const Tensor<BA, TA>&, std::int64_t, const Tensor<BB, L>&) {
    detail::reject_mix<BA, TA, BB, TA, 3>();
    return {};
}

// The entries of dim picked by index (1-D, integers in [0, size of dim)); repeats allowed. The
// gradient adds up at a repeated index.
template <class B, class T, std::integral L>
Tensor<B, T> index_select(const Tensor<B, T>& x, std::int64_t dim, const Tensor<B, L>& index) {
    detail::check_defined("index_select", x, 1, "input");
    detail::check_defined("index_select", index, 3, "index");
    detail::check_same_device("index_select", x, "input", index, 3, "index");
    if (x.ndim() == 0) detail::fail<ShapeError>("index_select: argument #1 'input' is a scalar (shape []), which has no dim to index");
    const int d = detail::normalize_dim("index_select", x.shape(), dim, 2);
    if (index.ndim() != 1) {
        detail::fail<ShapeError>("index_select: argument #3 'index' has shape {}, expected a vector [n]", index.shape());
    }
    return detail::gather("index_select", {"index_select", "argument #3 'index'", true, false}, x, d, index,
                          detail::with_dim(x.shape(), d, index.numel()));
}
template <class BA, class TA, class BB, class L>
    requires(!std::is_same_v<BA, BB>)
Tensor<BA, TA> index_select(const Tensor<BA, TA>&, std::int64_t, const Tensor<BB, L>&) {
    detail::reject_mix<BA, TA, BB, TA, 3>();
    return {};
}

// A row of weight (num, dim) per index: index is an integer tensor of up to 3 dimensions, the
// result is index's shape + [dim]. The gradient of a repeated index's row adds up; the row of
// padding_idx (negative counts from the end, as PyTorch's) gets none.
template <class B, std::integral L, class T>
Tensor<B, T> embedding(const Tensor<B, L>& index, const Tensor<B, T>& weight, std::optional<std::int64_t> padding_idx = std::nullopt) {
    detail::check_defined("embedding", index, 1, "input");
    detail::check_defined("embedding", weight, 2, "weight");
    detail::check_same_device("embedding", index, "input", weight, 2, "weight");
    detail::check_ndim("embedding", weight, 2, "weight", 2, "a matrix [num_embeddings, embedding_dim]");
    if (index.ndim() > 3) {
        detail::fail<ShapeError>("embedding: argument #1 'input' has shape {}, expected at most 3 dimensions", index.shape());
    }
    const auto dim = weight.size(1);
    const auto& s = index.shape();
    const Shape out_shape = s.ndim() == 0 ? Shape{dim}
                            : s.ndim() == 1 ? Shape{s[0], dim}
                            : s.ndim() == 2 ? Shape{s[0], s[1], dim}
                                            : Shape{s[0], s[1], s[2], dim};
    std::int64_t skip = -1;
    if (padding_idx) {
        const std::int64_t rows = weight.size(0);
        if (*padding_idx < -rows || *padding_idx >= rows) {
            detail::fail<ValueError>("embedding: padding_idx={} is out of range for {} embeddings (expected -{} <= padding_idx < {})", *padding_idx, rows,
                                     rows, rows);
        }
        skip = *padding_idx < 0 ? *padding_idx + rows : *padding_idx;
    }
    return detail::gather("embedding", {"embedding", "argument #1 'input'", true, false}, weight, 0, index, out_shape, skip);
}
template <class BA, class L, class BB, class T>
    requires(!std::is_same_v<BA, BB>)
Tensor<BB, T> embedding(const Tensor<BA, L>&, const Tensor<BB, T>&, std::optional<std::int64_t> = std::nullopt) {
    detail::reject_mix<BA, L, BB, T, 2>();
    return {};
}

}  // namespace minigrad
