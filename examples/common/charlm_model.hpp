// The character-level GPT of examples/charlm, shared with the code that measures it
// (bench/seq_bench.cpp --what gpt) and the tests. Its members carry the names of the same
// torch.nn.Module in bench/torch_charlm.py, so each side loads the other's state_dict:
//
//   idx (N, T) -> wte(idx) + wpe.weight[:T]                                 (N, T, n_embd)
//              -> n_layer blocks: x + attn(ln_1(x)), causal; x + proj(gelu(fc(ln_2(x))))
//              -> ln_f -> lm_head (no bias)                                 (N, T, vocab)
//
// attn is nn::MultiheadAttention (batch_first), so its weights are PyTorch's in_proj_weight,
// in_proj_bias, out_proj.weight and out_proj.bias; the blocks are a std::vector, named as
// torch.nn.ModuleList names them ("blocks.0.ln_1.weight").
#pragma once

#include <cstdint>
#include <vector>

#include <minigrad/minigrad.hpp>

namespace examples::charlm {

struct GptConfig {
    std::int64_t vocab_size = 27;
    std::int64_t block_size = 16;  // the longest context
    std::int64_t n_layer = 4;
    std::int64_t n_head = 4;
    std::int64_t n_embd = 128;
};

template <class B, class T = float>
struct Block : minigrad::nn::Module<B, T> {
    minigrad::nn::LayerNorm<B, T> ln_1;
    minigrad::nn::MultiheadAttention<B, T> attn;
    minigrad::nn::LayerNorm<B, T> ln_2;
    minigrad::nn::Linear<B, T> fc;
    minigrad::nn::Linear<B, T> proj;
    MINIGRAD_MODULE(ln_1, attn, ln_2, fc, proj)

    Block(std::int64_t n_embd, std::int64_t n_head)
        : ln_1(n_embd), attn(n_embd, n_head, {.batch_first = true}), ln_2(n_embd), fc(n_embd, 4 * n_embd), proj(4 * n_embd, n_embd) {}

    minigrad::Tensor<B, T> forward(const minigrad::Tensor<B, T>& x) {
        auto h = x + attn(ln_1(x), {.is_causal = true});
        return h + proj(fc(ln_2(h), minigrad::nn::GELU()));
    }
};

template <class B, class T = float>
struct Gpt : minigrad::nn::Module<B, T> {
    GptConfig config;
    minigrad::nn::Embedding<B, T> wte;
    minigrad::nn::Embedding<B, T> wpe;
    std::vector<Block<B, T>> blocks;
    minigrad::nn::LayerNorm<B, T> ln_f;
    minigrad::nn::Linear<B, T> lm_head;
    MINIGRAD_MODULE(wte, wpe, blocks, ln_f, lm_head)

    // constructed (and so initialised, from the default generator) in PyTorch's order
    explicit Gpt(const GptConfig& c = {})
        : config(c), wte(c.vocab_size, c.n_embd), wpe(c.block_size, c.n_embd), blocks(make_blocks(c)), ln_f(c.n_embd),
          lm_head(c.n_embd, c.vocab_size, false) {}

    // idx (N, T) of token indices, T <= block_size; the result is (N, T, vocab_size) logits
    template <class L>
    minigrad::Tensor<B, T> forward(const minigrad::Tensor<B, L>& idx) {
        namespace mg = minigrad;
        if (idx.ndim() != 2 || idx.size(1) > config.block_size) {
            mg::detail::fail<mg::ShapeError>("Gpt: idx has shape {}; expected (N, T) with T <= block_size={}", idx.shape(), config.block_size);
        }
        // wpe(arange(T)) is wpe's first T rows: a view, not a lookup
        auto x = wte(idx) + minigrad::narrow(wpe.weight, 0, 0, idx.size(1));
        for (auto& block : blocks) x = block(x);
        return lm_head(ln_f(x));
    }

    // The parameters AdamW decays (the matrices: embeddings, products' weights) and those it does
    // not (biases, LayerNorm's weights), as nanoGPT's groups.
    std::vector<minigrad::optim::ParamGroup<B, T>> param_groups(double weight_decay) const {
        minigrad::optim::ParamGroup<B, T> decay{.weight_decay = weight_decay}, no_decay{.weight_decay = 0.0};
        for (auto& [name, p] : this->named_parameters()) (p.ndim() >= 2 ? decay : no_decay).params.push_back(p);
        return {decay, no_decay};
    }

    // The mean cross-entropy of predicting y (N, T) from x (N, T): the training objective.
    template <class L>
    minigrad::Tensor<B, T> loss(const minigrad::Tensor<B, L>& x, const minigrad::Tensor<B, L>& y) {
        return minigrad::cross_entropy((*this)(x).reshape({-1, config.vocab_size}), y.reshape({-1}));
    }

  private:
    static std::vector<Block<B, T>> make_blocks(const GptConfig& c) {
        std::vector<Block<B, T>> out;
        out.reserve(static_cast<std::size_t>(c.n_layer));
        for (std::int64_t i = 0; i < c.n_layer; ++i) out.emplace_back(c.n_embd, c.n_head);
        return out;
    }
};

}  // namespace examples::charlm
