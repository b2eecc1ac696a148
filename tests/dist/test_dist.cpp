// mg::dist on the Cpu backend over MPI. ctest runs this file's cases under
// `mpirun -np 2` (the 2-rank cases), as a single process without mpirun (a world of one), and the
// "before init" case alone in a process that never calls init() (tests/CMakeLists.txt).
//
// Exactness: W ranks each holding 1/W of every batch and averaging gradients take the same steps
// as one process on the whole batch, because the mean of the shards' mean losses is the batch's
// mean loss when the shards are equal. Each rank trains that one-process reference itself and
// compares its parameters with it.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <minigrad/dist.hpp>

#include "../helpers.hpp"

namespace {

using Cpu = mg::Cpu;

template <class T>
struct Net : mg::nn::Module<Cpu, T> {
    mg::nn::Linear<Cpu, T> fc1{6, 16}, fc2{16, 3};
    mg::nn::Tanh act;
    auto forward(const mg::Tensor<Cpu, T>& x) { return fc2(act(fc1(x))); }
    MINIGRAD_MODULE(fc1, act, fc2)
};

// The same layers as Net<float> under other member names.
struct RenamedNet : mg::nn::Module<Cpu, float> {
    mg::nn::Linear<Cpu, float> first{6, 16}, fc2{16, 3};
    auto forward(const mg::Tensor<Cpu, float>& x) { return fc2(first(x)); }
    MINIGRAD_MODULE(first, fc2)
};

// Net<float> with a wider hidden layer.
struct WideNet : mg::nn::Module<Cpu, float> {
    mg::nn::Linear<Cpu, float> fc1{6, 17}, fc2{17, 3};
    auto forward(const mg::Tensor<Cpu, float>& x) { return fc2(fc1(x)); }
    MINIGRAD_MODULE(fc1, fc2)
};

// Net<float> without its last layer.
struct ShortNet : mg::nn::Module<Cpu, float> {
    mg::nn::Linear<Cpu, float> fc1{6, 16};
    auto forward(const mg::Tensor<Cpu, float>& x) { return fc1(x); }
    MINIGRAD_MODULE(fc1)
};

void start() {
    mg::dist::init();
    mg::dist::set_timeout(30);  // a broken case ends the job in 30 s, not in the default 300
}

// 256 rows of 6 features in [-1, 1]; the label is the argmax of a fixed linear map, so the data
// can be learnt. The same rows on every rank (a fixed seed).
mg::data::Dataset synthetic_rows() {
    std::mt19937 gen(2024);
    std::uniform_real_distribution<float> uniform(-1, 1);
    mg::data::Dataset ds;
    ds.x = {256, 6, {}};
    for (int r = 0; r < 256; ++r) {
        float score[3] = {0, 0, 0};
        for (int c = 0; c < 6; ++c) {
            const float v = uniform(gen);
            ds.x.values.push_back(v);
            for (int k = 0; k < 3; ++k) score[k] += v * static_cast<float>((c + 1) * (k == c % 3 ? 1 : -1));
        }
        ds.y.push_back(static_cast<std::int32_t>(std::max_element(score, score + 3) - score));
    }
    return ds;
}

template <class T>
mg::Tensor<Cpu, T> as(const mg::Tensor<Cpu>& x) {
    if constexpr (std::is_same_v<T, float>) {
        return x;
    } else {
        const auto v = x.to_vector();
        return mg::Tensor<Cpu, T>::from(std::vector<T>(v.begin(), v.end()), x.shape());
    }
}

enum class Reduce { mean_over_ranks, none };

// `steps` steps of batches of 32 (seeded shuffle) from a model built with manual_seed(init_seed).
// options.num_shards/shard pick the rows each step sees; with Reduce::mean_over_ranks the
// gradients are averaged over the ranks before every step (and weights broadcast from rank 0 first).
template <class T, class MakeOpt>
std::map<std::string, mg::nn::HostArray<T>> train(std::uint64_t init_seed, mg::data::LoaderOptions options, Reduce reduce, int steps,
                                                  MakeOpt make_opt, std::uint64_t* allocs_after_first = nullptr) {
    mg::manual_seed(init_seed);
    Net<T> model;
    if (reduce == Reduce::mean_over_ranks) mg::dist::broadcast_parameters(model);
    const auto params = model.parameters();
    auto opt = make_opt(params);
    mg::nn::CrossEntropyLoss loss_fn;
    mg::data::DataLoader<Cpu> loader(synthetic_rows(), options);
    int step = 0;
    while (step < steps) {
        for (const auto& [x, y] : loader) {
            if (step == 1) mg::reset_counters();
            auto loss = loss_fn(model(as<T>(x)), y);
            opt.zero_grad();
            loss.backward();
            if (reduce == Reduce::mean_over_ranks) mg::dist::all_reduce_gradients(params);
            opt.step();
            if (++step == steps) break;
        }
    }
    if (allocs_after_first) *allocs_after_first = mg::counters().storage_allocs;
    return model.parameter_values();
}

// The largest |a - b| / |b| over every parameter element (|b| floored at 1e-3, so that a weight
// near zero does not turn a rounding difference into a large ratio).
template <class T>
double max_relative_difference(const std::map<std::string, mg::nn::HostArray<T>>& a, const std::map<std::string, mg::nn::HostArray<T>>& b) {
    double worst = 0;
    REQUIRE(a.size() == b.size());
    for (const auto& [name, values] : b) {
        const auto& other = a.at(name).values;
        REQUIRE(other.size() == values.values.size());
        for (std::size_t i = 0; i < other.size(); ++i) {
            const double ref = values.values[i];
            worst = std::max(worst, std::abs(static_cast<double>(other[i]) - ref) / std::max(std::abs(ref), 1e-3));
        }
    }
    return worst;
}

template <class T, class MakeOpt>
void check_matches_whole_batch(MakeOpt make_opt, double tolerance) {
    start();
    const mg::data::LoaderOptions whole{.batch_size = 32, .shuffle = true, .seed = 5};
    // Every rank draws different initial weights; broadcast_parameters makes them rank 0's, which
    // the reference draws too.
    const auto reference = train<T>(100, whole, Reduce::none, 100, make_opt);
    std::uint64_t allocs = 0;
    const auto sharded = train<T>(100 + static_cast<std::uint64_t>(mg::dist::rank()), mg::dist::shard_options(whole),
                                  Reduce::mean_over_ranks, 100, make_opt, &allocs);
    const double gap = max_relative_difference(sharded, reference);
    MESSAGE("rank ", mg::dist::rank(), " of ", mg::dist::world_size(), ": largest relative difference from one process on whole batches: ", gap);
    CHECK(gap <= tolerance);
    CHECK(allocs == 0);  // steps 2..100: the bucket is reused, nothing else is made either
    const auto initial = [&] {
        mg::manual_seed(100);
        return Net<T>().parameter_values();
    }();
    CHECK(max_relative_difference(reference, initial) > 1e-2);  // training moved the weights: the comparison means something
    if (mg::dist::world_size() > 1) {
        // The control: the same shards without averaging drift far from the reference, so the
        // match above is the all-reduce's doing.
        const auto alone = train<T>(100, mg::dist::shard_options(whole), Reduce::none, 100, make_opt);
        CHECK(max_relative_difference(alone, reference) > 1e-3);
    }
}

}  // namespace

TEST_CASE("dist before init: every entry point is a clear minigrad::Error") {
    REQUIRE_FALSE(mg::dist::is_initialized());
    Net<float> model;
    const std::string tail = ": mg::dist::init() has not been called (or finalize() already ran); call mg::dist::init() once at the start of "
                             "main, before any other mg::dist function";
    CHECK(error_message([&] { mg::dist::all_reduce_gradients(model); }) == "all_reduce_gradients" + tail);
    CHECK(error_message([&] { mg::dist::all_reduce_gradients(model.parameters()); }) == "all_reduce_gradients" + tail);
    CHECK(error_message([&] { mg::dist::broadcast_parameters(model); }) == "broadcast_parameters" + tail);
    CHECK(error_message([] { (void)mg::dist::rank(); }) == "dist::rank" + tail);
    CHECK(error_message([] { mg::dist::barrier(); }) == "dist::barrier" + tail);
    CHECK(error_message([] { (void)mg::dist::shard_options({.batch_size = 8}); }) == "dist::shard_options" + tail);
    CHECK(error_message([] { mg::dist::set_timeout(0); }) == "dist::set_timeout: the timeout is 0 s, expected a positive, finite number of seconds");
}

TEST_CASE("dist: SGD with momentum on W ranks, each with 1/W of every batch, matches one process on the whole batch") {
    check_matches_whole_batch<double>([](const auto& params) { return mg::optim::SGD(params, {.lr = 0.1, .momentum = 0.9}); }, 1e-6);
}

TEST_CASE("dist: Adam on W ranks, each with 1/W of every batch, matches one process on the whole batch") {
    check_matches_whole_batch<double>([](const auto& params) { return mg::optim::Adam(params, {.lr = 1e-2}); }, 1e-6);
}

TEST_CASE("dist: in float, the sharded run stays within float rounding of the whole-batch run") {
    check_matches_whole_batch<float>([](const auto& params) { return mg::optim::SGD(params, {.lr = 0.1, .momentum = 0.9}); }, 1e-4);
}

TEST_CASE("dist: with one rank, broadcast and all-reduce change nothing") {
    start();
    if (mg::dist::world_size() != 1) return;
    mg::manual_seed(3);
    Net<float> model;
    const auto before = model.parameter_values();
    mg::dist::broadcast_parameters(model);
    CHECK(model.parameter_values() == before);
    auto x = mg::Tensor<Cpu>::uniform({4, 6}, -1, 1);
    mg::nn::CrossEntropyLoss loss_fn;
    loss_fn(model(x), mg::Tensor<Cpu, std::int32_t>::from({0, 1, 2, 1})).backward();
    std::vector<std::vector<float>> grads;
    for (const auto& p : model.parameters()) grads.push_back(p.grad().to_vector());
    mg::dist::all_reduce_gradients(model);
    std::size_t i = 0;
    for (const auto& p : model.parameters()) CHECK(p.grad().to_vector() == grads[i++]);
    CHECK(mg::dist::rank() == 0);
    mg::dist::barrier();
}

TEST_CASE("dist: ranks whose models differ fail together, naming the first difference") {
    start();
    if (mg::dist::world_size() < 2) return;
    const bool other = mg::dist::rank() == 1;
    const std::string same = "; every rank must build the same model";
    SUBCASE("a parameter's name") {
        Net<float> net;
        RenamedNet renamed;
        const auto message = error_message([&] { other ? mg::dist::all_reduce_gradients(renamed) : mg::dist::all_reduce_gradients(net); });
        CHECK(message == "all_reduce_gradients: parameter #0 differs between ranks: rank 0 has 'fc1.weight' [16, 6] float on Cpu, rank 1 has "
                         "'first.weight' [16, 6] float on Cpu" + same);
    }
    SUBCASE("a parameter's shape") {
        Net<float> net;
        WideNet wide;
        const auto message = error_message([&] { other ? mg::dist::broadcast_parameters(wide) : mg::dist::broadcast_parameters(net); });
        CHECK(message == "broadcast_parameters: parameter #0 differs between ranks: rank 0 has 'fc1.weight' [16, 6] float on Cpu, rank 1 has "
                         "'fc1.weight' [17, 6] float on Cpu" + same);
    }
    SUBCASE("the number of parameters") {
        Net<float> net;
        ShortNet short_net;
        const auto message = error_message([&] { other ? mg::dist::broadcast_parameters(short_net) : mg::dist::broadcast_parameters(net); });
        CHECK(message == "broadcast_parameters: rank 1 has 2 parameters, rank 0 has 4; parameter #2 is 'fc2.weight' [3, 16] float on Cpu on rank 0 "
                         "and missing on rank 1" + same);
    }
    SUBCASE("a broadcast root that is not a rank") {
        Net<float> net;
        const int world = mg::dist::world_size();
        CHECK(error_message([&] { mg::dist::broadcast_parameters(net, world); }) ==
              fmt::format("broadcast_parameters: root {} is not a rank of this job (world size {}, ranks 0..{})", world, world, world - 1));
    }
    mg::dist::barrier();  // every rank is still in step: the errors left no collective half done
}

TEST_CASE("dist: a captured StepGraph with the all-reduce inside matches eager steps bit for bit") {
    start();
    const auto options = mg::dist::shard_options({.batch_size = 32, .shuffle = true, .seed = 5, .drop_last = true});
    const std::int64_t rows = 32 / mg::dist::world_size();
    auto run = [&](bool use_graph) {
        mg::manual_seed(100);
        Net<float> model;
        mg::dist::broadcast_parameters(model);
        const auto params = model.parameters();
        mg::optim::SGD opt(params, {.lr = 0.1, .momentum = 0.9});
        mg::nn::CrossEntropyLoss loss_fn;
        mg::data::DataLoader<Cpu> loader(synthetic_rows(), options);
        auto x = mg::Tensor<Cpu>::empty({rows, 6});
        auto y = mg::Tensor<Cpu, std::int32_t>::empty({rows});
        mg::LossLog log;
        mg::StepGraph<Cpu> graph(
            [&] {
                auto loss = loss_fn(model(x), y);
                opt.zero_grad();
                loss.backward();
                mg::dist::all_reduce_gradients(params);
                opt.step();
                log.record(loss);
            },
            use_graph);
        for (int epoch = 0; epoch < 3; ++epoch)
            for (const auto& batch : loader.into(x, y)) {
                (void)batch;
                graph.replay();
            }
        CHECK(graph.uses_graph() == use_graph);
        return std::make_pair(log.values(), model.parameter_values());
    };
    const auto eager = run(false);
    const auto graphed = run(true);
    CHECK(eager.first.size() == 24);
    CHECK(graphed.first == eager.first);
    CHECK(graphed.second == eager.second);
}
