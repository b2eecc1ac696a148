// embedding(index, weight): torch.nn.functional.embedding, a row of weight per index. index is an
// integer tensor of up to 3 dimensions, weight is (num, dim), the result is index's shape + [dim].
// An index outside [0, num) is an error: checked at once on the CPU; on CUDA by a kernel, reported
// at the next sync, as cross_entropy's labels are.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>

#include "checks.hpp"

namespace minigrad {
namespace kernels {

// index is (n), weight (num, dim), y (n, dim); i over n * dim
template <class T, class L>
struct EmbeddingForward {
    const L* index;
    const T* weight;
    T* y;
    index_t dim;
    MINIGRAD_HD void operator()(index_t i) const {
        const index_t k = i / dim;
        y[i] = weight[static_cast<index_t>(index[k]) * dim + (i - k * dim)];
    }
};

// index is (n), dy (n, dim), dweight (num, dim); j over dim. A repeated index adds its rows'
// gradients: each thread owns one column of dweight and walks the indices in order, so the sums
// are the same on every run and backend, with no atomics.
template <class T, class L>
struct EmbeddingBackward {
    const L* index;
    const T* dy;
    T* dweight;
    index_t n, num, dim;
    bool overwrite;
    MINIGRAD_HD index_t work_per_index() const { return n + (overwrite ? num : 0); }
    MINIGRAD_HD void operator()(index_t j) const {
        if (overwrite)
            for (index_t row = 0; row < num; ++row) dweight[row * dim + j] = T(0);
        for (index_t k = 0; k < n; ++k) dweight[static_cast<index_t>(index[k]) * dim + j] += dy[k * dim + j];
    }
};

}  // namespace kernels

namespace detail {

template <class B, class T, class L>
struct EmbeddingNode : Node<B, T> {
    std::shared_ptr<TensorImpl<B, L>> index;  // read by the rule; not a differentiable input
    const char* op_name() const override { return "embedding"; }
    void backward(TensorImpl<B, T>& out) override {
        auto& weight = *this->inputs[0];
        auto dweight = grad_slot(weight);
        const auto num = weight.shape[0], dim = weight.shape[1];
        B::launch(dim, kernels::EmbeddingBackward<T, L>{index->data, out.grad->data, dweight.data, index->numel(), num, dim, dweight.overwrite},
                  weight.device);
    }
};

template <class L>
[[noreturn]] void bad_embedding_index(L value, std::int64_t at, std::int64_t num, const Shape& weight_shape) {
    fail<ValueError>("embedding: argument #1 'input' has index {} at position {}, expected an index in [0, {}) (the rows of argument #2 'weight', shape {})",
                     static_cast<long long>(value), at, num, weight_shape);
}

}  // namespace detail

template <class B, std::integral L, class T>
Tensor<B, T> embedding(const Tensor<B, L>& index, const Tensor<B, T>& weight) {
    detail::check_defined("embedding", index, 1, "input");
    detail::check_defined("embedding", weight, 2, "weight");
    detail::check_same_device("embedding", index, "input", weight, 2, "weight");
    detail::check_ndim("embedding", weight, 2, "weight", 2, "a matrix [num_embeddings, embedding_dim]");
    if (index.ndim() > 3) {
        detail::fail<ShapeError>("embedding: argument #1 'input' has shape {}, expected at most 3 dimensions", index.shape());
    }
    const auto num = weight.size(0), dim = weight.size(1), n = index.numel();
    if constexpr (B::is_host) {  // host memory: looked at now, before anything is written (at every replay of a captured step)
        B::host_work(
            [values = index.data(), n, num, shape = weight.shape()] {
                for (std::int64_t k = 0; k < n; ++k) {
                    const auto v = static_cast<long long>(values[k]);  // an index past LLONG_MAX turns negative: still refused
                    if (v < 0 || v >= num) detail::bad_embedding_index(values[k], k, num, shape);
                }
            },
            index.device());
    } else {
        if (num == 0 && n > 0) {  // no index can be in range: said now, on the host
            minigrad::detail::fail<ValueError>("embedding: argument #1 'input' has {} indices, but the weight (shape {}) has no rows", n,
                                               weight.shape());
        }
        // On the device: reported at the next sync. The "ignored" value 0 is a valid index here, so
        // skipping its check loses nothing; there is no count to make (no inv_count).
        B::check_labels(index.data(), n, num, /*ignore_index=*/0, static_cast<T*>(nullptr), "embedding", index.device());
    }
    const auto& s = index.shape();
    const Shape out_shape = s.ndim() == 0 ? Shape{dim}
                            : s.ndim() == 1 ? Shape{s[0], dim}
                            : s.ndim() == 2 ? Shape{s[0], s[1], dim}
                                            : Shape{s[0], s[1], s[2], dim};
    auto y = Tensor<B, T>::empty(out_shape, weight.device());
    B::launch(n * dim, kernels::EmbeddingForward<T, L>{index.data(), weight.data(), y.data(), dim}, weight.device());
    if (detail::wants_grad(weight)) {
        auto node = std::make_shared<detail::EmbeddingNode<B, T, L>>();
        node->inputs = {weight.impl_ptr(), nullptr, nullptr};
        node->index = index.impl_ptr();
        detail::attach(y.impl(), std::move(node));
    }
    return y;
}
template <class BA, class L, class BB, class T>
    requires(!std::is_same_v<BA, BB>)
Tensor<BB, T> embedding(const Tensor<BA, L>&, const Tensor<BB, T>&) {
    detail::reject_mix<BA, L, BB, T, 2>();
    return {};
}

}  // namespace minigrad
