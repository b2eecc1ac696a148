// MultiheadAttention(embed_dim, num_heads, {.batch_first, .dropout, .bias}) as
// torch.nn.MultiheadAttention: PyTorch's parameter names (in_proj_weight, in_proj_bias,
// out_proj.weight, out_proj.bias) and initialisation, so a PyTorch checkpoint loads. Each of query,
// key and value is projected by its third of in_proj, split into heads, attended with
// scaled_dot_product_attention (ops/attention.hpp), merged and projected by out_proj.
#pragma once

#include <cstdint>
#include <string>

#include "../ops/attention.hpp"
#include "../ops/mask.hpp"
#include "../ops/shape.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "module.hpp"

namespace minigrad::nn {

struct MultiheadAttentionOptions {
    bool batch_first = false;  // inputs (N, L, E) when true, PyTorch's default (L, N, E) when false
    double dropout = 0.0;      // on the attention weights, in training
    bool bias = true;
};

// PyTorch's forward arguments. attn_mask is (L, S) or (N * num_heads, L, S); as in
// torch.nn.MultiheadAttention (and unlike scaled_dot_product_attention), true means the query may
// NOT attend to that key. key_padding_mask is (N, S), true where a key is padding. is_causal hides
// the keys after each query (instead of a mask). The attention weights are not returned: PyTorch's
// need_weights=False.
template <class B>
struct MultiheadAttentionMasks {
    Tensor<B, bool> attn_mask{};
    Tensor<B, bool> key_padding_mask{};
    bool is_causal = false;
};

template <class B, class T = float>
class MultiheadAttention : public Module<B, T> {
  public:
    Tensor<B, T> in_proj_weight;  // (3 embed_dim, embed_dim): the query's rows, then the key's, then the value's
    Tensor<B, T> in_proj_bias;    // (3 embed_dim), undefined without bias
    Linear<B, T> out_proj;

    MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, MultiheadAttentionOptions options = {})
        : out_proj(check_sizes(embed_dim, num_heads, options), embed_dim, options.bias), embed_dim_(embed_dim), num_heads_(num_heads),
          options_(options) {
        in_proj_weight = Tensor<B, T>::empty(Shape{3 * embed_dim, embed_dim});
        if (options.bias) in_proj_bias = Tensor<B, T>::zeros(Shape{3 * embed_dim});
        if (!detail::skip_init_flag()) {  // PyTorch's _reset_parameters, after out_proj's own init
            init::xavier_uniform_(in_proj_weight);
            if (options.bias) init::zeros_(out_proj.bias);
        }
        in_proj_weight.requires_grad_();
        if (options.bias) in_proj_bias.requires_grad_();
    }

    std::int64_t embed_dim() const { return embed_dim_; }
    std::int64_t num_heads() const { return num_heads_; }
    const MultiheadAttentionOptions& options() const { return options_; }

    // query (L, N, E), key and value (S, N, E), or (N, L, E) and (N, S, E) with batch_first; the
    // result has query's shape.
    Tensor<B, T> forward(const Tensor<B, T>& query, const Tensor<B, T>& key, const Tensor<B, T>& value,
                         const MultiheadAttentionMasks<B>& masks = {}) const {
        constexpr const char* op = "MultiheadAttention";
        const auto check_input = [&](const Tensor<B, T>& t, int arg, const char* name) {
            minigrad::detail::check_defined(op, t, arg, name);
            if (t.ndim() != 3 || t.size(2) != embed_dim_) {
                minigrad::detail::fail<ShapeError>("{}: argument #{} '{}' has shape {}, expected {} with embed_dim {}", op, arg, name, t.shape(),
                                                   options_.batch_first ? "[N, L, E]" : "[L, N, E]", embed_dim_);
            }
        };
        check_input(query, 1, "query");
        check_input(key, 2, "key");
        check_input(value, 3, "value");
        // to (N, L, E)
        const auto batch_major = [&](const Tensor<B, T>& t) { return options_.batch_first ? t : transpose(t, 0, 1); };
        const auto q_in = batch_major(query), k_in = batch_major(key), v_in = batch_major(value);
        const std::int64_t n = q_in.size(0), l = q_in.size(1), s = k_in.size(1);
        if (k_in.size(0) != n || v_in.size(0) != n || v_in.size(1) != s) {
            minigrad::detail::fail<ShapeError>("{}: argument #2 'key' has shape {} and argument #3 'value' shape {}; with argument #1 'query' of shape {} "
                                               "they must share the batch size, and key and value the length",
                                               op, key.shape(), value.shape(), query.shape());
        }
        const std::int64_t e = embed_dim_, h = num_heads_, d = e / h;
        // each input's projection, split into heads: (N, H, len, D)
        const auto heads = [&](const Tensor<B, T>& x, std::int64_t part) {
            const auto w = narrow(in_proj_weight, 0, part * e, e);
            const auto projected = in_proj_bias.defined() ? linear(x, w, narrow(in_proj_bias, 0, part * e, e)) : linear(x, w);
            return permute(projected.reshape({x.size(0), x.size(1), h, d}), {0, 2, 1, 3});
        };
        AttentionOptions<B, T> attention;
        attention.is_causal = masks.is_causal;
        attention.dropout_p = this->is_training() ? options_.dropout : 0.0;  // as PyTorch's: only in training
        Tensor<B, bool> hidden;  // true where a query may not see a key, broadcast to (N, H, L, S)
        if (masks.attn_mask.defined()) {
            const auto& m = masks.attn_mask;
            if (m.ndim() == 2 && m.size(0) == l && m.size(1) == s) {
                hidden = m;
            } else if (m.ndim() == 3 && m.size(0) == n * h && m.size(1) == l && m.size(2) == s) {
                hidden = m.reshape({n, h, l, s});
            } else {
                minigrad::detail::fail<ShapeError>("{}: attn_mask has shape {}, expected [{}, {}] or [{}, {}, {}] (L, S; or N * num_heads, L, S)", op,
                                                   m.shape(), l, s, n * h, l, s);
            }
        }
        if (masks.key_padding_mask.defined()) {
            const auto& m = masks.key_padding_mask;
            if (m.ndim() != 2 || m.size(0) != n || m.size(1) != s) {
                minigrad::detail::fail<ShapeError>("{}: key_padding_mask has shape {}, expected [{}, {}] (N, S)", op, m.shape(), n, s);
            }
            const auto padding = m.reshape({n, 1, 1, s});
            hidden = hidden.defined() ? logical_or(hidden, padding) : padding;
        }
        if (hidden.defined()) {
            if (masks.is_causal) {  // PyTorch takes is_causal as a hint beside a mask; here the causal mask joins it
                hidden = logical_or(hidden, triu(Tensor<B, T>::ones(Shape{l, s}, query.device()), 1) > T(0.5));
                attention.is_causal = false;
            }
            attention.attn_mask = logical_not(hidden);
        }
        const auto attended = scaled_dot_product_attention(heads(q_in, 0), heads(k_in, 1), heads(v_in, 2), attention);  // (N, H, L, D)
        const auto merged = permute(attended, {0, 2, 1, 3}).reshape({n, l, e});
        const auto out = out_proj(merged);
        return options_.batch_first ? out : transpose(out, 0, 1);
    }
    // self-attention: query, key and value the same tensor
    Tensor<B, T> operator()(const Tensor<B, T>& x, const MultiheadAttentionMasks<B>& masks = {}) const { return forward(x, x, x, masks); }
    Tensor<B, T> operator()(const Tensor<B, T>& query, const Tensor<B, T>& key, const Tensor<B, T>& value,
                            const MultiheadAttentionMasks<B>& masks = {}) const {
        return forward(query, key, value, masks);
    }

    void visit_parameters(ParameterVisitor& visitor, const std::string& prefix) override {
        detail::visit_members(visitor, prefix, "in_proj_weight, in_proj_bias, out_proj", in_proj_weight, in_proj_bias, out_proj);
    }
    void visit_modules(ModuleVisitor& visitor, const std::string& prefix) override {
        visitor.module(prefix, this->training_);
        detail::visit_members(visitor, prefix, "out_proj", out_proj);
    }

    template <class B2>
    MultiheadAttention<B2, T> to() const {
        return nn::to<B2>(*this, embed_dim_, num_heads_, options_);
    }

  private:
    // embed_dim, checked (out_proj is built from it before the body runs)
    static std::int64_t check_sizes(std::int64_t embed_dim, std::int64_t num_heads, const MultiheadAttentionOptions& options) {
        if (embed_dim <= 0 || num_heads <= 0) {
            minigrad::detail::fail<ValueError>("MultiheadAttention: embed_dim={} and num_heads={} must both be positive", embed_dim, num_heads);
        }
        if (embed_dim % num_heads != 0) {
            minigrad::detail::fail<ValueError>("MultiheadAttention: embed_dim={} is not divisible by num_heads={}", embed_dim, num_heads);
        }
        if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
            minigrad::detail::fail<ValueError>("MultiheadAttention: dropout={} must be in [0, 1)", options.dropout);
        }
        return embed_dim;
    }

    std::int64_t embed_dim_, num_heads_;
    MultiheadAttentionOptions options_;
};

}  // namespace minigrad::nn
