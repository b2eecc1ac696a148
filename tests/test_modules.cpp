// Layers beyond Linear: activations, Softmax, Dropout, LayerNorm, Embedding; train()/eval(); and
// Sequential holding them, moving between backends in one call.
#include <cmath>

#include "helpers.hpp"
#include "temp_dir.hpp"

using CpuD = mg::Tensor<mg::Cpu, double>;

TEST_CASE("Tanh, Sigmoid and GELU layers: their ops' values and gradients, checked by central differences") {
    auto x = random_tensor({3, 4}, 1, -2, 2);
    CHECK(mg::nn::Tanh{}(x).to_vector() == mg::tanh(x).to_vector());
    CHECK(mg::nn::Sigmoid{}(x).to_vector() == mg::sigmoid(x).to_vector());
    CHECK(mg::nn::GELU{}(x).to_vector() == mg::gelu(x).to_vector());
    check_gradients([&] { return weighted_sum(mg::nn::Tanh{}(x), 2); }, {x});
    check_gradients([&] { return weighted_sum(mg::nn::Sigmoid{}(x), 2); }, {x});
    check_gradients([&] { return weighted_sum(mg::nn::GELU{"tanh"}(x), 2); }, {x});
    CHECK(mg::nn::GELU{"tanh"}(x).to_vector() == mg::gelu(x, "tanh").to_vector());
    CHECK(mg::nn::GELU{"tanh"}(x).to_vector() != mg::nn::GELU{"none"}(x).to_vector());
    check_gradients([&] { return weighted_sum(mg::nn::GELU{}(x), 2); }, {x});
    CHECK(error_message([] { mg::nn::GELU{"erf"}; }) == "GELU: approximate='erf' is not one of 'none' (the exact erf form) and 'tanh'");
}

TEST_CASE("Softmax(-1): rows sum to 1, values as exp(x) / sum, gradient by central differences") {
    auto x = random_tensor({2, 3, 5}, 3, -3, 3);
    const auto y = mg::nn::Softmax(-1)(x).to_vector();
    const auto xv = x.to_vector();
    for (int r = 0; r < 6; ++r) {
        double total = 0;
        for (int c = 0; c < 5; ++c) total += std::exp(xv[r * 5 + c]);
        for (int c = 0; c < 5; ++c) CHECK(y[r * 5 + c] == doctest::Approx(std::exp(xv[r * 5 + c]) / total).epsilon(1e-12));
    }
    CHECK(mg::nn::Softmax(2)(x).to_vector() == y);
    check_gradients([&] { return weighted_sum(mg::nn::Softmax(-1)(x), 4); }, {x});
}

TEST_CASE("Softmax(dim) takes any dim, as torch.nn.Softmax: softmax(x, dim)'s values and gradient, negative dims from the end") {
    auto x = random_tensor({2, 3, 5}, 5, -3, 3);
    for (int dim : {0, 1, 2, -1, -2, -3}) {
        INFO("dim ", dim);
        CHECK(mg::nn::Softmax(dim)(x).to_vector() == mg::softmax(x, dim).to_vector());
        CHECK(mg::nn::Softmax(dim)(x).to_vector() == mg::softmax(x, dim < 0 ? dim + 3 : dim).to_vector());
        check_gradients([&] { return weighted_sum(mg::nn::Softmax(dim)(x), 6); }, {x});
    }
    // Along dim 0 each (j, k) column of the two [3, 5] slices sums to 1.
    const auto y = mg::nn::Softmax(0)(x).to_vector();
    for (int i = 0; i < 15; ++i) CHECK(y[i] + y[15 + i] == doctest::Approx(1).epsilon(1e-12));
    CHECK(error_message([&] { mg::nn::Softmax(3)(x); }) ==
          "softmax: argument #2 'dim' is 3, out of range for a tensor of shape [2, 3, 5] (expected a dim in [-3, 2])");
}

TEST_CASE("Dropout: about p of the elements dropped, the rest scaled by 1/(1-p), reproducible by seed") {
    const double p = 0.3;
    const std::int64_t n = 200000;
    auto x = mg::Tensor<mg::Cpu>::ones({n});
    mg::Generator gen(42);
    mg::nn::Dropout drop(p, gen);
    const auto y = drop(x).to_vector();
    std::int64_t dropped = 0;
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    for (float v : y) {
        if (v == 0.0f)
            ++dropped;
        else
            CHECK(v == scale);
    }
    // 3 standard deviations of a binomial(n, p) fraction is 0.003
    CHECK(std::abs(static_cast<double>(dropped) / n - p) < 0.003);
    // the next draw is a fresh mask; the same seed again gives the first one back
    CHECK(drop(x).to_vector() != y);
    gen.seed(42);
    CHECK(drop(x).to_vector() == y);
    // the functional form with the same generator state is the same
    gen.seed(42);
    CHECK(mg::dropout(x, p, true, gen).to_vector() == y);
}

TEST_CASE("Dropout: eval() is the identity, p = 0 too; train() switches back") {
    auto x = random_tensor<float>({4, 5}, 5);
    mg::nn::Dropout drop(0.5);
    CHECK(drop.is_training());
    drop.eval();
    CHECK(!drop.is_training());
    CHECK(drop(x).to_vector() == x.to_vector());
    CHECK(mg::nn::Dropout(0.0)(x).to_vector() == x.to_vector());
    drop.train();
    CHECK(drop(x).to_vector() != x.to_vector());
}

TEST_CASE("Dropout: the gradient goes through the forward pass's mask, scaled") {
    auto x = random_tensor({6, 7}, 6);
    mg::Generator gen(9);
    auto y = mg::dropout(x, 0.4, true, gen);
    mg::sum(y).backward();
    const auto yv = y.to_vector(), xv = x.to_vector(), g = x.grad().to_vector();
    int kept = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        CHECK(g[i] == (yv[i] == 0.0 ? 0.0 : 1.0 / 0.6));
        if (yv[i] != 0.0) CHECK(yv[i] == doctest::Approx(xv[i] / 0.6).epsilon(1e-15));
        kept += yv[i] != 0.0;
    }
    CHECK(kept > 0);
    CHECK(kept < 42);
    // central differences, redrawing the same mask on every evaluation
    check_gradients(
        [&] {
            gen.seed(9);
            return weighted_sum(mg::dropout(x, 0.4, true, gen), 7);
        },
        {x});
}

TEST_CASE("Dropout refuses p outside [0, 1), naming the layer and p") {
    CHECK(error_message([] { mg::nn::Dropout(-0.1); }) == "Dropout: p=-0.1 must be in [0, 1)");
    CHECK(error_message([] { mg::nn::Dropout(1.0); }) == "Dropout: p=1 must be in [0, 1)");
    CHECK(error_message([] { mg::nn::Dropout(std::nan("")); }) == "Dropout: p=nan must be a finite number");
    auto x = random_tensor({2}, 1);
    CHECK(error_message([&] { mg::dropout(x, 1.5); }) == "dropout: p=1.5 must be in [0, 1)");
}

TEST_CASE("LayerNorm: weight 1, bias 0; values as a hand computation with the biased variance and eps") {
    mg::nn::LayerNorm<mg::Cpu, double> norm(4);
    CHECK(norm.weight.to_vector() == std::vector<double>(4, 1.0));
    CHECK(norm.bias.to_vector() == std::vector<double>(4, 0.0));
    auto names = norm.named_parameters();
    REQUIRE(names.size() == 2);
    CHECK(names[0].first == "weight");
    CHECK(names[1].first == "bias");
    auto x = tensor({1, 2, 3, 4, 2, 2, 2, 6}, {2, 4});
    const auto y = norm(x).to_vector();
    const auto xv = x.to_vector();
    for (int r = 0; r < 2; ++r) {
        double mean = 0, var = 0;
        for (int c = 0; c < 4; ++c) mean += xv[r * 4 + c] / 4;
        for (int c = 0; c < 4; ++c) var += (xv[r * 4 + c] - mean) * (xv[r * 4 + c] - mean) / 4;
        for (int c = 0; c < 4; ++c) CHECK(y[r * 4 + c] == doctest::Approx((xv[r * 4 + c] - mean) / std::sqrt(var + 1e-5)).epsilon(1e-12));
    }
    // a constant row normalises to 0, not NaN: eps keeps the division finite
    auto flat = tensor({3, 3, 3}, {1, 3});
    for (double v : mg::nn::LayerNorm<mg::Cpu, double>(3)(flat).to_vector()) CHECK(v == 0.0);
}

TEST_CASE("layer_norm: gradients of input, weight and bias by central differences, 3-D input") {
    auto x = random_tensor({2, 3, 5}, 11, -2, 2);
    auto w = random_tensor({5}, 12, 0.5, 1.5);
    auto b = random_tensor({5}, 13);
    check_gradients([&] { return weighted_sum(mg::layer_norm(x, w, b), 14); }, {x, w, b}, 1e-6, 1e-5);
    mg::nn::LayerNorm<mg::Cpu, double> norm(5);
    check_gradients([&] { return weighted_sum(norm(x), 15); }, {x, norm.weight, norm.bias}, 1e-6, 1e-5);
}

TEST_CASE("LayerNorm refuses an input whose last dimension is not normalized_shape") {
    mg::nn::LayerNorm<mg::Cpu> norm(4);
    auto x = mg::Tensor<mg::Cpu>::zeros({2, 3});
    CHECK(error_message([&] { norm(x); }) ==
          "layer_norm: argument #2 'weight' has shape [4], expected [3] (the last dimension of argument #1 'input', shape [2, 3])");
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(0); }) == "LayerNorm: normalized_shape=0 must be positive");
}

TEST_CASE("LayerNorm and layer_norm refuse an eps that is 0, negative, NaN, or that rounds to 0 or infinity in their type") {
    // 1e-50 is a positive double but 0 as a float: a constant row would normalise to 0/0 = NaN.
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(4, 1e-50); }) == "LayerNorm: eps=1e-50 underflows to 0 as float, the type it computes in");
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(4, 1e39); }) ==
          "LayerNorm: eps=1e+39 does not fit float, the type it computes in (at most 3.4028235e+38)");
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(4, 0); }) == "LayerNorm: eps=0 must be > 0");
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(4, -1e-5); }) == "LayerNorm: eps=-1e-05 must be > 0");
    CHECK(error_message([] { mg::nn::LayerNorm<mg::Cpu>(4, std::nan("")); }) == "LayerNorm: eps=nan must be a finite number");
    // as a double, 1e-50 is a real eps: a constant row normalises to 0 (the bias), not NaN
    mg::nn::LayerNorm<mg::Cpu, double> wide(4, 1e-50);
    CHECK(wide(mg::Tensor<mg::Cpu, double>::full({1, 4}, 3.0)).to_vector() == std::vector<double>(4, 0.0));
    // a subnormal float eps is kept, and still finite
    mg::nn::LayerNorm<mg::Cpu> tiny(4, 1e-40);
    for (float v : tiny(mg::Tensor<mg::Cpu>::full({1, 4}, 3.0f)).to_vector()) CHECK(v == 0.0f);
    auto x = mg::Tensor<mg::Cpu>::ones({2, 4});
    auto w = mg::Tensor<mg::Cpu>::ones({4}), b = mg::Tensor<mg::Cpu>::zeros({4});
    CHECK(error_message([&] { mg::layer_norm(x, w, b, 1e-50); }) == "layer_norm: eps=1e-50 underflows to 0 as float, the type it computes in");
}

TEST_CASE("Embedding: rows gathered for an index of any shape up to 3 dims, N(0, 1) init") {
    mg::manual_seed(3);
    mg::nn::Embedding<mg::Cpu> table(1000, 20);
    const auto w = table.weight.to_vector();
    double mean = 0, square = 0;
    for (float v : w) mean += v / w.size();
    for (float v : w) square += (v - mean) * (v - mean) / w.size();
    CHECK(std::abs(mean) < 0.02);  // 20000 draws: the standard error of the mean is 0.007
    CHECK(std::abs(square - 1.0) < 0.04);
    mg::manual_seed(3);
    CHECK(mg::nn::Embedding<mg::Cpu>(1000, 20).weight.to_vector() == w);

    auto index = mg::Tensor<mg::Cpu, std::int64_t>::from({3, 0, 999, 3, 7, 1}, {1, 2, 3});
    auto y = table(index);
    CHECK(y.shape() == mg::Shape{1, 2, 3, 20});
    const auto yv = y.to_vector();
    const std::int64_t rows[] = {3, 0, 999, 3, 7, 1};
    for (int k = 0; k < 6; ++k)
        for (int j = 0; j < 20; ++j) CHECK(yv[k * 20 + j] == w[rows[k] * 20 + j]);
    auto one = mg::Tensor<mg::Cpu, std::int32_t>::from({5}, {});
    CHECK(table(one).shape() == mg::Shape{20});
}

TEST_CASE("embedding: a repeated index adds its gradients, checked by central differences") {
    auto weight = random_tensor({5, 3}, 21);
    auto index = mg::Tensor<mg::Cpu, std::int32_t>::from({4, 1, 4, 4, 0, 1}, {3, 2});
    check_gradients([&] { return weighted_sum(mg::embedding(index, weight), 22); }, {weight});
    // accumulated into an existing gradient too
    weight.impl().grad_is_zero = true;
    mg::sum(mg::embedding(index, weight)).backward();
    mg::sum(mg::embedding(index, weight)).backward();
    const auto g = weight.grad().to_vector();
    const double counts[] = {1, 2, 0, 0, 3};
    for (int r = 0; r < 5; ++r)
        for (int j = 0; j < 3; ++j) CHECK(g[r * 3 + j] == 2 * counts[r]);
}

TEST_CASE("embedding refuses an index out of range at once, naming it") {
    mg::nn::Embedding<mg::Cpu> table(5, 2);
    auto bad = mg::Tensor<mg::Cpu, std::int64_t>::from({1, 5, 2}, {3});
    CHECK(error_message([&] { table(bad); }) ==
          "embedding: argument #1 'input' has index 5 at position 1, expected an index in [0, 5)");
    auto negative = mg::Tensor<mg::Cpu, std::int32_t>::from({-1}, {1});
    CHECK(error_message([&] { table(negative); }) ==
          "embedding: argument #1 'input' has index -1 at position 0, expected an index in [0, 5)");
    CHECK(error_message([] { mg::nn::Embedding<mg::Cpu>(0, 2); }) == "Embedding: num_embeddings=0 and embedding_dim=2 must both be positive");
}

static auto make_stack() {
    return mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(4, 8), mg::nn::Tanh{}, mg::nn::Dropout(0.25), mg::nn::LayerNorm<mg::Cpu>(8),
                              mg::nn::GELU{}, mg::nn::Linear<mg::Cpu>(8, 3), mg::nn::Softmax(-1));
}

TEST_CASE("Sequential of Linear, Tanh, Dropout, LayerNorm, GELU, Softmax: PyTorch's names, one training step") {
    mg::manual_seed(1);
    auto model = make_stack();
    auto named = model.named_parameters();
    REQUIRE(named.size() == 6);
    CHECK(named[0].first == "0.weight");
    CHECK(named[1].first == "0.bias");
    CHECK(named[2].first == "3.weight");
    CHECK(named[3].first == "3.bias");
    CHECK(named[4].first == "5.weight");
    CHECK(named[5].first == "5.bias");
    auto x = mg::Tensor<mg::Cpu>::uniform({16, 4}, -1, 1);
    auto target = mg::Tensor<mg::Cpu>::uniform({16, 3}, 0, 1);
    mg::optim::SGD<mg::Cpu, float> sgd(model.parameters(), {.lr = 0.5});
    const auto before = model.parameter_values();
    auto loss = mg::mean((model(x) - target) * (model(x) - target));
    model.zero_grad();
    loss.backward();
    sgd.step();
    const auto after = model.parameter_values();
    for (auto& [name, values] : before) CHECK_MESSAGE(after.at(name) != values, name);
}

TEST_CASE("train()/eval() reach every layer; to<Cpu>() keeps values and modes with no arguments") {
    mg::manual_seed(2);
    auto model = make_stack();
    CHECK(model.is_training());
    CHECK(model.layer<2>().is_training());
    CHECK(model.layer<0>().is_training());
    model.eval();
    CHECK(!model.is_training());
    CHECK(!model.layer<2>().is_training());
    CHECK(!model.layer<3>().is_training());
    auto x = mg::Tensor<mg::Cpu>::uniform({5, 4}, -1, 1);
    const auto out = model(x).to_vector();
    CHECK(model(x).to_vector() == out);  // no dropout in eval mode

    auto copy = model.to<mg::Cpu>();
    CHECK(copy.parameter_values() == model.parameter_values());
    CHECK(!copy.is_training());
    CHECK(!copy.layer<2>().is_training());
    CHECK(copy.layer<2>().p() == 0.25);
    CHECK(copy(x).to_vector() == out);
    copy.layer<0>().bias.data()[0] = 100;  // a copy, not a view
    CHECK(model.layer<0>().bias.to_vector()[0] != 100);

    // one layer's mode differing from the model's is kept too
    model.train();
    model.layer<2>().eval();
    auto mixed = model.to<mg::Cpu>();
    CHECK(mixed.is_training());
    CHECK(mixed.layer<0>().is_training());
    CHECK(!mixed.layer<2>().is_training());

    // the built-in modules alone
    mg::nn::Embedding<mg::Cpu> table(6, 3);
    table.eval();
    auto table2 = table.to<mg::Cpu>();
    CHECK(table2.weight.to_vector() == table.weight.to_vector());
    CHECK(!table2.is_training());
    mg::nn::LayerNorm<mg::Cpu, double> norm(3, 1e-3);
    auto norm2 = norm.to<mg::Cpu>();
    CHECK(norm2.eps() == 1e-3);
    CHECK(norm2.normalized_shape() == 3);
}

// A model of the user's: Dropout listed in MINIGRAD_MODULE is switched by the model's eval().
template <class B>
struct Block : mg::nn::Module<B> {
    mg::nn::Linear<B> fc{3, 3};
    mg::nn::Dropout drop{0.5};
    mg::nn::Sequential<mg::nn::Linear<B>, mg::nn::ReLU> inner{mg::nn::Linear<B>(3, 2), mg::nn::ReLU{}};
    template <class X>
    auto forward(const X& x) {
        return inner(drop(fc(x)));
    }
    MINIGRAD_MODULE(fc, drop, inner)
};

TEST_CASE("MINIGRAD_MODULE: eval() reaches listed Dropout and nested Sequential; to<Cpu>() carries modes") {
    Block<mg::Cpu> block;
    block.eval();
    CHECK(!block.drop.is_training());
    CHECK(!block.inner.is_training());
    CHECK(!block.inner.layer<0>().is_training());
    auto names = block.named_parameters();
    REQUIRE(names.size() == 4);
    CHECK(names[2].first == "inner.0.weight");
    block.drop.train();
    auto copy = block.to<mg::Cpu>();
    CHECK(copy.drop.is_training());
    CHECK(!copy.is_training());
    CHECK(!copy.inner.layer<0>().is_training());
    CHECK(copy.parameter_values() == block.parameter_values());
}

// A std::vector member is a torch.nn.ModuleList: its elements are named "<member>.<i>", and
// train()/eval(), save()/load() and to<B2>() reach them.
template <class B>
struct Stack : mg::nn::Module<B, double> {
    std::vector<mg::nn::Linear<B, double>> layers;
    std::vector<mg::nn::Dropout> drops;
    MINIGRAD_MODULE(layers, drops)
    Stack() {
        for (int i = 0; i < 3; ++i) layers.emplace_back(4, 4);
        drops.emplace_back(0.5);
    }
    mg::Tensor<B, double> forward(const mg::Tensor<B, double>& x) {
        auto h = x;
        for (auto& l : layers) h = mg::tanh(l(h));
        return drops[0](h);
    }
};

TEST_CASE("A std::vector of layers is a ModuleList: numbered names, modes, save and load, another backend") {
    Stack<mg::Cpu> stack;
    std::vector<std::string> names;
    for (auto& [name, p] : stack.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight",
                                            "layers.2.bias"});
    stack.eval();
    CHECK(!stack.drops[0].is_training());
    const auto x = random_tensor({2, 4}, 5, -1, 1);
    const auto y = stack(x).to_vector();
    const TempDir dir;
    stack.save(dir.path / "stack.safetensors");
    auto loaded = mg::nn::skip_init<Stack<mg::Cpu>>();
    loaded.load(dir.path / "stack.safetensors");
    loaded.eval();
    CHECK(loaded(x).to_vector() == y);
    const auto copy = stack.template to<mg::Cpu>();
    CHECK(!copy.drops[0].is_training());
    CHECK(copy.parameter_values() == stack.parameter_values());
}
