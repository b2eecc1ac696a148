// scaled_dot_product_attention (ops/attention.hpp): PyTorch's values and gradients
// (tests/data/seq_goldens.safetensors, from tools/make_seq_goldens.py) in double and float, with
// the queries in one block and in blocks of one and two rows; gradients against central differences; the
// same values as the unfused ops; nn::MultiheadAttention with PyTorch's weights; every error message.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "goldens.hpp"
#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_attention {

using T2 = mg::Tensor<mg::Cpu, double>;
using Mask = mg::Tensor<mg::Cpu, bool>;

// While it lives, attention's blocks of queries have `rows` rows (0: chosen by shape).
struct SmallBlocks {
    std::int64_t saved = mg::detail::attention_block_rows();
    explicit SmallBlocks(std::int64_t rows) { mg::detail::attention_block_rows() = rows; }
    ~SmallBlocks() { mg::detail::attention_block_rows() = saved; }
    SmallBlocks(const SmallBlocks&) = delete;
    SmallBlocks& operator=(const SmallBlocks&) = delete;
};

template <class T>
void sdpa_goldens() {
    const Goldens<T> g{golden_file("seq_goldens.safetensors")};
    int seen = 0;
    for (const auto& c : golden_cases(g.file)) {
        if (c.at("op") != "sdpa") continue;
        const std::string name = c.at("name");
        CAPTURE(name);
        ++seen;
        for (std::int64_t rows : {0, 1, 2}) {  // one block (chosen by shape); blocks of one and of two rows
            CAPTURE(rows);
            const SmallBlocks blocks(rows);
            auto q = g.get(name + ".q", true), k = g.get(name + ".k", true), v = g.get(name + ".v", true);
            mg::AttentionOptions<mg::Cpu, T> options;
            options.is_causal = c.at("is_causal");
            if (!c.at("scale").is_null()) options.scale = c.at("scale").template get<double>();
            if (c.at("mask")) options.attn_mask = mg::cast<bool>(g.template get_as<std::int64_t>(name + ".mask"));
            if (c.at("bias")) options.attn_bias = g.get(name + ".bias");
            auto y = mg::scaled_dot_product_attention(q, k, v, options);
            g.check(y, name + ".y");
            mg::sum(y * g.get(name + ".dy")).backward();
            g.check(q.grad(), name + ".grad.q");
            g.check(k.grad(), name + ".grad.k");
            g.check(v.grad(), name + ".grad.v");
        }
    }
    CHECK(seen == 6);
}

TEST_CASE("scaled_dot_product_attention equals PyTorch's values and gradients, in one block and in blocks of rows, in double and float") {
    SUBCASE("double") { sdpa_goldens<double>(); }
    SUBCASE("float") { sdpa_goldens<float>(); }
}

TEST_CASE("scaled_dot_product_attention: gradients against central differences; the unfused ops' values; gradients accumulate") {
    auto q = random_tensor({2, 5, 3}, 1), k = random_tensor({2, 6, 3}, 2), v = random_tensor({2, 6, 4}, 3);
    const SmallBlocks blocks(2);
    check_gradients([&] { return weighted_sum(mg::scaled_dot_product_attention(q, k, v)); }, {q, k, v});
    auto kc = random_tensor({2, 5, 3}, 4), vc = random_tensor({2, 5, 4}, 5);
    mg::AttentionOptions<mg::Cpu, double> causal{.is_causal = true};
    check_gradients([&] { return weighted_sum(mg::scaled_dot_product_attention(q, kc, vc, causal)); }, {q, kc, vc});
    // the unfused form: softmax(q k^T / sqrt(E) masked) v
    const auto future = mg::triu(T2::ones({5, 5}), 1) > 0.5;
    const auto scores = mg::masked_fill(mg::bmm(q, mg::transpose(kc, 1, 2)) / std::sqrt(3.0), future, -INFINITY);
    const auto unfused = mg::bmm(mg::softmax(scores, -1), vc).to_vector();
    const auto fused = mg::scaled_dot_product_attention(q, kc, vc, causal).to_vector();
    REQUIRE(fused.size() == unfused.size());
    for (std::size_t i = 0; i < fused.size(); ++i) CHECK(fused[i] == doctest::Approx(unfused[i]).epsilon(1e-12));
    // a second backward adds to the gradients, as every op's does
    q.zero_grad();
    mg::sum(mg::scaled_dot_product_attention(q, kc, vc, causal)).backward();
    const auto once = q.grad().to_vector();
    mg::sum(mg::scaled_dot_product_attention(q, kc, vc, causal)).backward();
    const auto twice = q.grad().to_vector();
    for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * once[i]).epsilon(1e-12));
}

template <class T>
void mha_goldens() {
    const Goldens<T> g{golden_file("seq_goldens.safetensors")};
    int seen = 0;
    for (const auto& c : golden_cases(g.file)) {
        if (c.at("op") != "mha") continue;
        const std::string name = c.at("name");
        CAPTURE(name);
        ++seen;
        const bool batch_first = c.at("batch_first"), bias = c.at("bias"), self_attention = c.at("self_attention");
        mg::nn::MultiheadAttention<mg::Cpu, T> mha(8, 2, {.batch_first = batch_first, .dropout = 0.0, .bias = bias});
        auto named = load_module_goldens(g, c, mha);
        auto query = g.get(name + ".query", true);
        mg::Tensor<mg::Cpu, T> key, value, y;
        if (self_attention) {
            mg::nn::MultiheadAttentionMasks<mg::Cpu> masks{.key_padding_mask = mg::cast<bool>(g.template get_as<std::int64_t>(name + ".key_padding_mask")),
                                                           .is_causal = true};
            y = mha(query, masks);
        } else {
            key = g.get(name + ".key", true);
            value = g.get(name + ".value", true);
            y = mha(query, key, value);
        }
        g.check(y, name + ".y");
        mg::sum(y * g.get(name + ".dy")).backward();
        g.check(query.grad(), name + ".grad.query");
        if (!self_attention) {
            g.check(key.grad(), name + ".grad.key");
            g.check(value.grad(), name + ".grad.value");
        }
        for (auto& [pname, p] : named) g.check(p.grad(), name + ".grad." + pname);
    }
    CHECK(seen == 3);
}

// With v the identity, the output is the (dropped) probabilities themselves.
TEST_CASE("scaled_dot_product_attention with dropout_p: each probability dropped or scaled by 1 / (1 - p), the same mask in backward and in any blocking") {
    const std::int64_t L = 6, S = 9;
    auto q = random_tensor({2, L, 4}, 11), k = random_tensor({2, S, 4}, 12);
    std::vector<double> identity;
    for (int b = 0; b < 2; ++b)
        for (std::int64_t i = 0; i < S; ++i)
            for (std::int64_t j = 0; j < S; ++j) identity.push_back(i == j ? 1.0 : 0.0);
    const auto eye = T2::from(identity, {2, S, S});
    const auto probabilities = mg::scaled_dot_product_attention(q, k, eye).to_vector();
    mg::manual_seed(3);
    const auto dropped = mg::scaled_dot_product_attention(q, k, eye, {.dropout_p = 0.3}).to_vector();
    int zeros = 0;
    for (std::size_t i = 0; i < dropped.size(); ++i) {
        if (dropped[i] == 0) {
            ++zeros;
        } else {
            CHECK(dropped[i] == doctest::Approx(probabilities[i] / 0.7).epsilon(1e-12));
        }
    }
    CHECK(zeros > 20);  // of 108, about 32 expected
    CHECK(zeros < 50);
    {
        const SmallBlocks blocks(1);  // the mask follows the score's index, not the blocks
        mg::manual_seed(3);
        CHECK(mg::scaled_dot_product_attention(q, k, eye, {.dropout_p = 0.3}).to_vector() == dropped);
    }
    // gradients, with the same mask for every evaluation (the seed set before each), causal or not
    auto v = random_tensor({2, S, 3}, 13), kc = random_tensor({2, L, 4}, 14), vc = random_tensor({2, L, 3}, 15);
    const SmallBlocks blocks(2);
    check_gradients(
        [&] {
            mg::manual_seed(4);
            return weighted_sum(mg::scaled_dot_product_attention(q, k, v, {.dropout_p = 0.4}));
        },
        {q, k, v});
    check_gradients(
        [&] {
            mg::manual_seed(5);
            return weighted_sum(mg::scaled_dot_product_attention(q, kc, vc, {.dropout_p = 0.25, .is_causal = true}));
        },
        {q, kc, vc});
}

TEST_CASE("nn::MultiheadAttention with PyTorch's weights gives PyTorch's values and gradients: both layouts, without bias, causal with padding") {
    SUBCASE("double") { mha_goldens<double>(); }
    SUBCASE("float") { mha_goldens<float>(); }
}

TEST_CASE("nn::MultiheadAttention: PyTorch's initialisation, a move to<Cpu>(), and its errors") {
    mg::manual_seed(3);
    mg::nn::MultiheadAttention<mg::Cpu> mha(8, 2);
    const auto w = mha.in_proj_weight.to_vector();
    const double bound = std::sqrt(6.0 / (8 + 24));  // xavier_uniform_ over (24, 8)
    CHECK(*std::max_element(w.begin(), w.end()) <= bound);
    CHECK(*std::min_element(w.begin(), w.end()) >= -bound);
    CHECK(mha.in_proj_bias.to_vector() == std::vector<float>(24, 0.0f));
    CHECK(mha.out_proj.bias.to_vector() == std::vector<float>(8, 0.0f));
    const auto moved = mha.to<mg::Cpu>();
    CHECK(moved.in_proj_weight.to_vector() == w);
    CHECK(error_message([] { mg::nn::MultiheadAttention<mg::Cpu>(10, 3); }) == "MultiheadAttention: embed_dim=10 is not divisible by num_heads=3");
    CHECK(error_message([] { mg::nn::MultiheadAttention<mg::Cpu>(8, 0); }) == "MultiheadAttention: embed_dim=8 and num_heads=0 must both be positive");
    const auto x = mg::Tensor<mg::Cpu>::zeros({4, 2, 8});
    CHECK(error_message([&] { mha(mg::Tensor<mg::Cpu>::zeros({4, 2, 6})); }) ==
          "MultiheadAttention: argument #1 'query' has shape [4, 2, 6], expected [L, N, E] with embed_dim 8");
    CHECK(error_message([&] { mha(x, {.attn_mask = Mask::zeros({4, 3})}); }) ==
          "MultiheadAttention: attn_mask has shape [4, 3], expected [4, 4] or [4, 4, 4] (L, S; or N * num_heads, L, S)");
    CHECK(error_message([&] { mha(x, {.key_padding_mask = Mask::zeros({4, 2})}); }) ==
          "MultiheadAttention: key_padding_mask has shape [4, 2], expected [2, 4] (N, S)");
    // dropout on the attention weights in training only: eval() gives the layer without it
    mg::manual_seed(9);
    mg::nn::MultiheadAttention<mg::Cpu> dropping(8, 2, {.dropout = 0.5});
    mg::manual_seed(9);
    mg::nn::MultiheadAttention<mg::Cpu> plain(8, 2);
    const auto xr = random_tensor<float>({4, 2, 8}, 21);
    const auto trained = dropping(xr).to_vector(), without = plain(xr).to_vector();
    CHECK(trained != without);
    dropping.eval();
    CHECK(dropping(xr).to_vector() == without);
}

TEST_CASE("scaled_dot_product_attention: every error names the op, the argument and both sides") {
    const auto q = T2::zeros({2, 5, 4}), k = T2::zeros({2, 6, 4}), v = T2::zeros({2, 6, 3});
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, T2::zeros({2, 6, 3}), v); }) ==
          "scaled_dot_product_attention: argument #2 'key' has shape [2, 6, 3], expected [..., S, 4] with the leading dims of argument #1 'query' of "
          "shape [2, 5, 4]");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, T2::zeros({2, 5, 3})); }) ==
          "scaled_dot_product_attention: argument #3 'value' has shape [2, 5, 3], expected [..., 6, Ev] with the leading dims of argument #1 'query' of "
          "shape [2, 5, 4]");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, T2::zeros({3, 6, 4}), v); }).starts_with("scaled_dot_product_attention: argument #2 'key' has shape [3, 6, 4]"));
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.attn_mask = Mask::zeros({5, 5})}); }) ==
          "scaled_dot_product_attention: options 'attn_mask' has shape [5, 5], which does not broadcast to the scores' shape [2, 5, 6] (query [2, 5, "
          "4], key [2, 6, 4])");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.attn_bias = T2::zeros({1, 2, 5, 6})}); }).starts_with(
        "scaled_dot_product_attention: options 'attn_bias' has shape [1, 2, 5, 6], which does not broadcast"));
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.attn_mask = Mask::zeros({3, 5, 6})}); }) ==
          "scaled_dot_product_attention: options 'attn_mask' has shape [3, 5, 6], which does not broadcast to the scores' shape [2, 5, 6] (query [2, 5, "
          "4], key [2, 6, 4])");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.attn_mask = Mask::zeros({5, 6}), .is_causal = true}); }) ==
          "scaled_dot_product_attention: is_causal=true and an explicit attn_mask or attn_bias cannot be given together (as PyTorch)");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.dropout_p = 1.0}); }) ==
          "scaled_dot_product_attention: dropout_p=1 must be in [0, 1)");
    auto bias = T2::zeros({5, 6});
    bias.requires_grad_();
    CHECK(error_message([&] { mg::scaled_dot_product_attention(q, k, v, {.attn_bias = bias}); }) ==
          "scaled_dot_product_attention: options 'attn_bias' requires grad, and its gradient is not computed; pass attn_bias.detach()");
    CHECK(error_message([&] { mg::scaled_dot_product_attention(T2::zeros({4}), k, v); }) ==
          "scaled_dot_product_attention: argument #1 'query' has shape [4], expected at least 2 dims [..., L, E]");
}

}  // namespace test_attention
