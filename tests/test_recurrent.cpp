// nn::LSTM and nn::GRU (nn/recurrent.hpp) with PyTorch's weights give PyTorch's output, h_n, c_n and
// gradients (tests/data/seq_goldens.safetensors, from tools/make_seq_goldens.py) in double and
// float; PyTorch's parameter names and initialisation range; a move to<Cpu>(); every error message.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "goldens.hpp"
#include "helpers.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_recurrent {

using T2 = mg::Tensor<mg::Cpu, double>;

template <class T, class Rnn>
void check_case(const Goldens<T>& g, const nlohmann::json& c, Rnn& rnn) {
    const std::string name = c.at("name");
    auto named = load_module_goldens(g, c, rnn);
    auto x = g.get(name + ".x", true);
    mg::Tensor<mg::Cpu, T> h0, c0;
    if (c.at("with_state")) {
        h0 = g.get(name + ".h0", true);
        if (g.has(name + ".c0")) c0 = g.get(name + ".c0", true);
    }
    mg::nn::RecurrentOutput<mg::Cpu, T> out;
    if constexpr (std::is_same_v<Rnn, mg::nn::LSTM<mg::Cpu, T>>)
        out = rnn(x, h0, c0);
    else
        out = rnn(x, h0);
    g.check(out.output, name + ".y");
    g.check(out.h_n, name + ".h_n");
    auto loss = mg::sum(out.output * g.get(name + ".dy")) + mg::sum(out.h_n * g.get(name + ".dh"));
    if (out.c_n.defined()) {
        g.check(out.c_n, name + ".c_n");
        loss = loss + mg::sum(out.c_n * g.get(name + ".dc"));
    }
    loss.backward();
    g.check(x.grad(), name + ".grad.x");
    if (h0.defined()) g.check(h0.grad(), name + ".grad.h0");
    if (c0.defined()) g.check(c0.grad(), name + ".grad.c0");
    for (auto& [pname, p] : named) g.check(p.grad(), name + ".grad." + pname);
}

template <class T>
void rnn_goldens() {
    const Goldens<T> g{golden_file("seq_goldens.safetensors")};
    int seen = 0;
    for (const auto& c : golden_cases(g.file)) {
        if (c.at("op") != "rnn") continue;
        CAPTURE(c.at("name").template get<std::string>());
        ++seen;
        const mg::nn::RecurrentOptions options{.num_layers = c.at("num_layers"),
                                               .bias = c.at("bias"),
                                               .batch_first = c.at("batch_first"),
                                               .bidirectional = c.value("bidirectional", false)};
        if (c.at("kind") == "LSTM") {
            mg::nn::LSTM<mg::Cpu, T> rnn(3, 4, options);
            check_case(g, c, rnn);
        } else {
            mg::nn::GRU<mg::Cpu, T> rnn(3, 4, options);
            check_case(g, c, rnn);
        }
    }
    CHECK(seen == 6);
}

TEST_CASE("nn::LSTM and nn::GRU with PyTorch's weights: output, h_n, c_n and every gradient equal PyTorch's, in double and float") {
    SUBCASE("double") { rnn_goldens<double>(); }
    SUBCASE("float") { rnn_goldens<float>(); }
}

TEST_CASE("nn::LSTM and nn::GRU: initialised in +-1/sqrt(hidden_size), moved by to<Cpu>(), and their errors") {
    mg::manual_seed(4);
    mg::nn::LSTM<mg::Cpu> lstm(3, 16, {.num_layers = 2});
    CHECK(lstm.named_parameters().size() == 8);
    for (const auto& [pname, p] : lstm.named_parameters()) {
        const auto v = p.to_vector();
        CHECK_MESSAGE(*std::max_element(v.begin(), v.end()) <= 0.25f, pname);
        CHECK_MESSAGE(*std::min_element(v.begin(), v.end()) >= -0.25f, pname);
    }
    CHECK(lstm.weight_ih[1].shape() == mg::Shape{64, 16});
    const auto moved = lstm.to<mg::Cpu>();
    CHECK(moved.weight_hh[1].to_vector() == lstm.weight_hh[1].to_vector());
    const auto x = mg::Tensor<mg::Cpu>::zeros({5, 2, 3});
    CHECK(lstm(x).output.shape() == mg::Shape{5, 2, 16});
    CHECK(error_message([&] { lstm(mg::Tensor<mg::Cpu>::zeros({5, 2, 4})); }) ==
          "LSTM: argument #1 'input' has shape [5, 2, 4], expected [L, N, H_in] with input_size 3");
    CHECK(error_message([&] { lstm(x, mg::Tensor<mg::Cpu>::zeros({1, 2, 16})); }) ==
          "LSTM: h0 has shape [1, 2, 16], expected [2, 2, 16] (num_layers, N, hidden_size)");
    CHECK(error_message([] { mg::nn::GRU<mg::Cpu>(3, 0); }) == "GRU: input_size=3, hidden_size=0 and num_layers=1 must all be positive");
    CHECK(error_message([] { mg::nn::GRU<mg::Cpu>(3, 4, {.dropout = 1.0}); }) == "GRU: dropout=1 must be in [0, 1)");
    mg::nn::GRU<mg::Cpu> bi(3, 4, {.num_layers = 2, .bidirectional = true});
    CHECK(bi.named_parameters().size() == 16);  // weight_ih_l0, ..., bias_hh_l1_reverse
    CHECK(bi.weight_ih[2].shape() == mg::Shape{12, 8});  // layer 1 reads both directions of layer 0
    const auto both = bi(x);
    CHECK(both.output.shape() == mg::Shape{5, 2, 8});
    CHECK(both.h_n.shape() == mg::Shape{4, 2, 4});
    CHECK(error_message([&] { bi(x, mg::Tensor<mg::Cpu>::zeros({2, 2, 4})); }) ==
          "GRU: h0 has shape [2, 2, 4], expected [4, 2, 4] (2 * num_layers, N, hidden_size)");
}

TEST_CASE("the fused LSTM cell: values as the separate ops give them, gradients against central differences, the h half of hc_prev untouched") {
    auto gates = random_tensor({3, 8}, 41, -2, 2), hc_prev = random_tensor({3, 4}, 42);
    const auto hc = mg::detail::lstm_cell(gates, hc_prev);
    const auto i = mg::sigmoid(mg::narrow(gates, 1, 0, 2)), f = mg::sigmoid(mg::narrow(gates, 1, 2, 2));
    const auto g = mg::tanh(mg::narrow(gates, 1, 4, 2)), o = mg::sigmoid(mg::narrow(gates, 1, 6, 2));
    const auto c = f * mg::narrow(hc_prev, 1, 2, 2) + i * g;
    const auto expected = mg::cat(std::vector<T2>{o * mg::tanh(c), c}, 1).to_vector();
    const auto got = hc.to_vector();
    for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == doctest::Approx(expected[k]).epsilon(1e-14));
    check_gradients([&] { return weighted_sum(mg::detail::lstm_cell(gates, hc_prev)); }, {gates, hc_prev});
    hc_prev.zero_grad();
    mg::sum(mg::detail::lstm_cell(gates, hc_prev)).backward();
    const auto d = hc_prev.grad().to_vector();
    CHECK(d[0] == 0);  // row 0's h half: the cell does not read it
    CHECK(d[1] == 0);
    CHECK(d[2] != 0);
    CHECK(error_message([&] { mg::detail::lstm_cell(gates, T2::zeros({3, 3})); }) ==
          "lstm_cell: argument #1 'gates' has shape [3, 8] and argument #2 'hc_prev' shape [3, 3]; expected [N, 4 H] and [N, 2 H]");
}

TEST_CASE("nn::LSTM dropout: on each layer's output but the last, in training only") {
    const auto x = random_tensor<float>({5, 2, 3}, 31);
    const auto make = [](double p, std::int64_t layers) {
        mg::manual_seed(8);
        return mg::nn::LSTM<mg::Cpu>(3, 6, {.num_layers = layers, .dropout = p});
    };
    auto dropping = make(0.5, 2), plain = make(0.0, 2);
    const auto without = plain(x).output.to_vector();
    CHECK(dropping(x).output.to_vector() != without);
    dropping.eval();
    CHECK(dropping(x).output.to_vector() == without);
    auto one = make(0.5, 1), one_plain = make(0.0, 1);  // one layer: nothing between layers to drop
    CHECK(one(x).output.to_vector() == one_plain(x).output.to_vector());
}

}  // namespace test_recurrent
