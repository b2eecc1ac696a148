// End to end: the Iris model trains to a loss bound, a steady-state step allocates nothing and
// reads nothing on the host, and the loss log and step graph do what they say.
#include "helpers.hpp"
#include "iris.hpp"
#include "recipe_run.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_training {

static const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

template <class B>
using IrisMLP = examples::IrisMLP<B>;

struct IrisData {
    mg::Tensor<mg::Cpu> x;
    mg::Tensor<mg::Cpu, std::int32_t> y;
};

static IrisData iris_train() {
    const auto split = examples::load_iris(iris_path);
    return {mg::Tensor<mg::Cpu>::from(split.x_train), mg::Tensor<mg::Cpu, std::int32_t>::from(split.y_train)};
}

TEST_CASE("Iris: 3000 epochs of SGD bring the loss under 0.4, recorded without host reads") {
    auto data = iris_train();
    mg::manual_seed(42);
    IrisMLP<mg::Cpu> model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01});
    mg::LossLog log;
    const auto reads_before = mg::counters().host_reads;
    for (int epoch = 0; epoch < 3000; ++epoch) {
        auto loss = loss_fn(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        if ((epoch + 1) % 100 == 0) log.record(loss);
    }
    CHECK(mg::counters().host_reads == reads_before);
    const auto losses = log.values();
    REQUIRE(losses.size() == 30);
    CHECK(losses.front() > 0.9f);  // starts near log(3)
    CHECK(losses.back() < 0.4f);
    for (std::size_t i = 1; i < losses.size(); ++i) CHECK(losses[i] < losses[i - 1]);  // full-batch GD on this problem descends
}

TEST_CASE("after the first step a training step allocates no tensor storage") {
    auto data = iris_train();
    IrisMLP<mg::Cpu> model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.01, .momentum = 0.9});
    mg::LossLog log(64);
    auto step = [&] {
        auto loss = loss_fn(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    step();
    const auto allocs = mg::counters().storage_allocs;
    for (int i = 0; i < 50; ++i) step();
    CHECK(mg::counters().storage_allocs == allocs);
}

// State made during the first step (a loss log's storage, momentum and Adam buffers) once took
// blocks that step had just freed, so step 2 allocated (the GPU suite saw one cudaMalloc after
// step 1: 44 == 43). Each optimizer, a log recording every step, counted from the end of step 1.
TEST_CASE_TEMPLATE("no optimizer or loss log makes step 2 allocate", Opt, mg::optim::SGD<mg::Cpu, float>, mg::optim::Adam<mg::Cpu, float>,
                   mg::optim::RMSprop<mg::Cpu, float>) {
    for (const double momentum : {0.0, 0.9}) {
        mg::manual_seed(3);
        auto x = mg::Tensor<mg::Cpu>::uniform({120, 4}, -1.0, 1.0);
        std::vector<std::int32_t> labels(120);
        for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
        auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
        IrisMLP<mg::Cpu> model;
        mg::nn::CrossEntropyLoss loss_fn;
        Opt opt = [&] {
            if constexpr (std::is_same_v<Opt, mg::optim::SGD<mg::Cpu, float>>)
                return Opt(model.parameters(), {.lr = 0.01, .momentum = momentum});
            else
                return Opt(model.parameters(), {.lr = 0.01});
        }();
        mg::LossLog log(256);
        std::vector<std::int64_t> allocs;
        for (int i = 0; i < 4; ++i) {
            const auto before = mg::counters().storage_allocs;
            auto loss = loss_fn(model(x), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            log.record(loss);
            allocs.push_back(mg::counters().storage_allocs - before);
        }
        CAPTURE(momentum);
        CHECK(allocs[1] == 0);
        CHECK(allocs[2] == 0);
        CHECK(allocs[3] == 0);
    }
}

TEST_CASE("LossLog grows past its capacity and keeps every value in order") {
    mg::LossLog log(2);
    for (int i = 0; i < 9; ++i) log.record(mg::Tensor<mg::Cpu>::full({}, static_cast<float>(i)));
    CHECK(log.size() == 9);
    CHECK(log.latest() == 8);
    CHECK(log.values() == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(error_message([&] { log.record(mg::Tensor<mg::Cpu>::zeros({2})); }) == "LossLog::record: the loss has shape [2], expected a scalar (1 element)");
    log.clear();
    CHECK(log.values().empty());
    log.record(mg::Tensor<mg::Cpu>::full({}, 5.0f));
    CHECK(log.values() == std::vector<float>{5});
}

TEST_CASE("StepGraph on the CPU: replays of the captured tape match eager steps bit for bit, and the loss log follows") {
    auto data = iris_train();
    mg::manual_seed(42);
    IrisMLP<mg::Cpu> eager_model;
    mg::manual_seed(42);
    IrisMLP<mg::Cpu> graph_model;
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD eager_opt(eager_model.parameters(), {.lr = 0.01});
    mg::optim::SGD graph_opt(graph_model.parameters(), {.lr = 0.01});
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<mg::Cpu> graph([&] {
        auto loss = loss_fn(graph_model(data.x), data.y);
        graph_opt.zero_grad();
        loss.backward();
        graph_opt.step();
        graph_log.record(loss);
    });
    for (int i = 0; i < 20; ++i) {
        auto loss = loss_fn(eager_model(data.x), data.y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
        graph.replay();
    }
    CHECK(graph.uses_graph());
    CHECK(graph.replays() == 20);
    // A replay runs the step's kernels and nothing else: as many launches as an eager step, no
    // storage taken from the system, no host read.
    const auto before = mg::counters();
    graph.replay();
    const auto mid = mg::counters();
    {
        auto loss = loss_fn(eager_model(data.x), data.y);
        eager_opt.zero_grad();
        loss.backward();
        eager_opt.step();
        eager_log.record(loss);
    }
    const auto after = mg::counters();
    CHECK(mid.kernel_launches - before.kernel_launches == after.kernel_launches - mid.kernel_launches);
    CHECK(mid.storage_allocs == before.storage_allocs);
    CHECK(mid.host_reads == before.host_reads);
    CHECK(graph_log.values() == eager_log.values());
    CHECK(graph_model.parameter_values() == eager_model.parameter_values());
}

TEST_CASE("StepGraph on the CPU: dropout draws a fresh mask per replay, the masks eager steps draw, with Adam") {
    const auto x = mg::Tensor<mg::Cpu>::uniform({16, 8}, -1, 1);
    const auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    auto make = [] {
        mg::manual_seed(5);
        return mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(8, 32), mg::nn::ReLU{}, mg::nn::Dropout(0.5), mg::nn::Linear<mg::Cpu>(32, 4));
    };
    auto eager_model = make();
    auto graph_model = make();
    mg::optim::Adam eager_opt(eager_model.parameters(), {.lr = 1e-2});
    mg::optim::Adam graph_opt(graph_model.parameters(), {.lr = 1e-2});
    mg::nn::CrossEntropyLoss loss_fn;
    mg::Generator eager_gen(11), graph_gen(11);  // each model's dropout draws from its own, equal, generator
    auto step = [&](auto& model, auto& opt, mg::Generator& gen, mg::LossLog& log) {
        { auto scratch = mg::Tensor<mg::Cpu>::full({4}, 3.0f); }  // a small block freed before the dropout, in the graph's pool
        auto h = model.template layer<1>()(model.template layer<0>()(x));
        auto loss = loss_fn(model.template layer<3>()(mg::dropout(h, 0.5, true, gen)), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    };
    mg::LossLog eager_log, graph_log;
    mg::StepGraph<mg::Cpu> graph([&] { step(graph_model, graph_opt, graph_gen, graph_log); });
    for (int i = 0; i < 12; ++i) {
        step(eager_model, eager_opt, eager_gen, eager_log);
        graph.replay();
    }
    REQUIRE(graph.uses_graph());
    const auto losses = graph_log.values();
    CHECK(losses == eager_log.values());
    CHECK(graph_model.parameter_values() == eager_model.parameter_values());
    // Had the mask been fixed at capture, replays 2.. would share one: the generators still agree.
    CHECK(graph_gen.reserve(1).offset == eager_gen.reserve(1).offset);
}

TEST_CASE("StepGraph on the CPU: a host read or an upload inside the captured step is refused, and an index check runs at every replay") {
    auto w = mg::Tensor<mg::Cpu>::uniform({5, 3}, -1, 1);
    auto idx = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 4, 2});
    mg::LossLog log;
    {
        mg::StepGraph<mg::Cpu> graph([&] { (void)mg::sum(w).item(); });
        graph.replay();  // the eager warm-up may read
        CHECK(error_message([&] { graph.replay(); }) ==
              "StepGraph: reading a tensor on the host is not possible inside a captured step: nothing has run yet. Record values "
              "with LossLog::record() and read them after replay()");
    }
    {
        mg::StepGraph<mg::Cpu> graph([&] { idx.copy_(mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{1, 1, 1})); });
        graph.replay();
        CHECK(error_message([&] { graph.replay(); }).starts_with("StepGraph: copying host memory into a tensor is not possible"));
    }
    idx = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 4, 2});
    mg::StepGraph<mg::Cpu> graph([&] { log.record(mg::sum(mg::index_select(w, 0, idx))); });
    graph.replay();
    graph.replay();  // captured
    idx.data()[1] = 7;  // a new batch of indices, one out of range: the replay checks it
    CHECK(error_message([&] { graph.replay(); }) ==
          "index_select: argument #3 'index' has index 7 at position 1, expected an index in [0, 5)");
    // The tape stopped part way: the graph says so rather than replaying from a half-updated state.
    idx.data()[1] = 4;
    CHECK(error_message([&] { graph.replay(); }).starts_with("StepGraph: an earlier replay failed part way"));
    // Random draws are host work a replay would not redo: refused inside the capture.
    mg::StepGraph<mg::Cpu> draws([&] { log.record(mg::sum(mg::Tensor<mg::Cpu>::uniform({3}, 0, 1))); });
    draws.replay();
    CHECK(error_message([&] { draws.replay(); }).starts_with("Tensor::uniform: drawing random values is not possible inside a captured step"));
}

TEST_CASE("the digits recipe: after the first epoch, no storage allocation and no host read per epoch, tail batch and dropout included") {
    const auto run = digits_recipe_epochs<mg::Cpu>(4);
    for (std::size_t e = 1; e < run.after_epoch.size(); ++e) {
        CAPTURE(e);
        CHECK(run.after_epoch[e].storage_allocs == run.after_epoch[0].storage_allocs);
        CHECK(run.after_epoch[e].host_reads == run.after_epoch[0].host_reads);
        CHECK(run.after_epoch[e].host_syncs == run.after_epoch[0].host_syncs);
        CHECK(run.after_epoch[e].kernel_launches > run.after_epoch[e - 1].kernel_launches);  // the epochs did run
    }
    REQUIRE(run.losses.size() == 4);
    CHECK(run.losses.back() < run.losses.front());
}

}  // namespace test_training
