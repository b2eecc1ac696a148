// Embedding(num_embeddings, embedding_dim) as torch.nn.Embedding: a lookup table of rows, weight
// (num, dim) initialised N(0, 1) from minigrad's generator, so one seed gives the same table on
// every backend.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "../ops/index.hpp"
#include "module.hpp"

namespace minigrad::nn {

template <class B, class T = float>
class Embedding : public Module<B, T> {
  public:
    Tensor<B, T> weight;  // (num_embeddings, embedding_dim)

    Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen = default_generator()) {
        if (num_embeddings <= 0 || embedding_dim <= 0) {
            minigrad::detail::fail<ValueError>("Embedding: num_embeddings={} and embedding_dim={} must both be positive", num_embeddings,
                                               embedding_dim);
        }
        const Shape shape{num_embeddings, embedding_dim};
        if (detail::skip_init_flag()) {
            weight = Tensor<B, T>::empty(shape);
        } else {
            std::vector<T> values(static_cast<std::size_t>(shape.numel()));
            gen.fill_normal(std::span<T>(values));
            weight = Tensor<B, T>::from(values, shape);
        }
        weight.requires_grad_();
    }

    std::int64_t num_embeddings() const { return weight.size(0); }
    std::int64_t embedding_dim() const { return weight.size(1); }

    // index is an integer tensor of up to 3 dims, the result is index's shape + [embedding_dim]
    template <class BX, class L>
    auto forward(const Tensor<BX, L>& index) const {
        return embedding(index, weight);
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
        return nn::to<B2>(*this, num_embeddings(), embedding_dim());
    }
};

}  // namespace minigrad::nn
