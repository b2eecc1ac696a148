// Embedding(num_embeddings, embedding_dim, {.padding_idx}) as torch.nn.Embedding: a lookup table of
// rows, weight (num, dim) initialised N(0, 1) from minigrad's generator, so one seed gives the same
// table on every backend; the padding_idx row starts at zero and gets no gradient.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "../ops/index.hpp"
#include "module.hpp"

namespace minigrad::nn {

struct EmbeddingOptions {
    std::optional<std::int64_t> padding_idx{};
};

template <class B, class T = float>
class Embedding : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (num_embeddings, embedding_dim)

    Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen = default_generator())
        : Embedding(num_embeddings, embedding_dim, EmbeddingOptions{}, gen) {}
    // padding_idx as PyTorch's: that row starts at zero and gets no gradient (negative counts from the end)
    Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, EmbeddingOptions options, Generator& gen = default_generator()) {
        if (num_embeddings <= 0 || embedding_dim <= 0) {
            minigrad::detail::fail<ValueError>("Embedding: num_embeddings={} and embedding_dim={} must both be positive", num_embeddings,
                                               embedding_dim);
        }
        if (options.padding_idx) {
            if (*options.padding_idx < -num_embeddings || *options.padding_idx >= num_embeddings) {
                minigrad::detail::fail<ValueError>("Embedding: padding_idx={} is out of range for {} embeddings (expected -{} <= padding_idx < {})",
                                                   *options.padding_idx, num_embeddings, num_embeddings, num_embeddings);
            }
            padding_idx_ = *options.padding_idx < 0 ? *options.padding_idx + num_embeddings : *options.padding_idx;
        }
        const Shape shape{num_embeddings, embedding_dim};
        if (detail::skip_init_flag()) {
            weight = Tensor<B, T>::empty(shape);
        } else {
            std::vector<T> values(static_cast<std::size_t>(shape.numel()));
            gen.fill_normal(std::span<T>(values));
            if (padding_idx_) std::fill_n(values.begin() + *padding_idx_ * embedding_dim, embedding_dim, T(0));
            weight = Tensor<B, T>::from(values, shape);
        }
        weight.requires_grad_();
    }

    std::int64_t num_embeddings() const { return weight.size(0); }
    std::optional<std::int64_t> padding_idx() const { return padding_idx_; }
    std::int64_t embedding_dim() const { return weight.size(1); }

    // index is an integer tensor of up to 3 dims, the result is index's shape + [embedding_dim]
    template <class BX, class L>
    auto forward(const Tensor<BX, L>& index) const {
        return embedding(index, weight, padding_idx_);
    }
    template <class BX, class L>
    auto operator()(const Tensor<BX, L>& index) const {
        return forward(index);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "weight", weight);
    }

    template <class B2>
    Embedding<B2, T> to() const {
        return nn::to<B2>(*this, num_embeddings(), embedding_dim(), EmbeddingOptions{padding_idx_});
    }

  private:
    std::optional<std::int64_t> padding_idx_;
};

}  // namespace minigrad::nn
