// Compiled steps (StepMode::compiled, capture/compiled.hpp): the captured step as one program of records.
// On the CPU, replay(k) runs the tape (bit for bit eager); run_program(k) runs the program a GPU
// block would run, with one host thread as the block: the GPU path's records, dispatch, block sums,
// label check, k steps per launch and dropout counters, tested without a GPU.
#include <cmath>
#include <map>

#include "helpers.hpp"
#include "iris.hpp"
#include "iris_run.hpp"
#include "charlm_model.hpp"
#include "digits_cnn_model.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_compiled {

namespace {

const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

// The largest relative difference between two runs' values (against max(|a|, 1e-3)).
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])) / std::max(std::abs(double(a[i])), 1e-3));
    return worst;
}
// Parameters: the largest difference, relative to max(|a|, 0.1) (weights near zero move by
// rounding alone).
double max_param_diff(const std::map<std::string, mg::nn::HostArray<float>>& a, const std::map<std::string, mg::nn::HostArray<float>>& b) {
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (const auto& [name, array] : a) {
        const auto& other = b.at(name).values;
        REQUIRE(other.size() == array.values.size());
        for (std::size_t i = 0; i < other.size(); ++i)
            worst = std::max(worst, std::abs(double(array.values[i]) - double(other[i])) / std::max(std::abs(double(other[i])), 0.1));
    }
    return worst;
}

// Iris (tests/iris_run.hpp) with momentum, recording its loss each step into its own log.
struct Iris : IrisRun<mg::Cpu> {
    mg::LossLog log;
    explicit Iris(const examples::IrisSplit& split) : IrisRun<mg::Cpu>(split, 0.9, 0.05) {}
    void step() { IrisRun<mg::Cpu>::step(log); }
    void eager(int steps) {
        for (int i = 0; i < steps; ++i) step();
    }
};

}  // namespace

TEST_CASE("compiled step on the CPU: Iris with momentum compiles; replay(k) matches eager bit for bit and run_program(k)'s losses within 1e-6") {
    const auto split = examples::load_iris(iris_path);
    Iris eager(split), taped(split), program(split);
    mg::StepGraph<mg::Cpu> tape_graph([&] { taped.step(); }, mg::StepMode::compiled);
    mg::StepGraph<mg::Cpu> program_graph([&] { program.step(); }, mg::StepMode::compiled);

    eager.eager(1 + 4 + 195);
    tape_graph.replay();     // eager warm-up
    tape_graph.replay(4);    // captures, then 4 steps
    tape_graph.replay(195);  // k steps in one call
    program_graph.run_program(1);
    program_graph.run_program(4);
    program_graph.run_program(195);

    REQUIRE(tape_graph.compiled());
    CHECK(tape_graph.fallback_reason().empty());
    // 11 records: the first product with its ReLU (fc1(x, relu)), the second product; the label
    // check, the rows, the mean; the cross-entropy's gradient (its seed inside); the product making
    // the hidden gradient with the ReLU's gradient (backward() fuses them); the two weight
    // gradients, each with its bias gradient; SGD; the log.
    CHECK(tape_graph.program_size() == 11);
    CHECK(tape_graph.replays() == 200);
    CHECK(program_graph.replays() == 200);

    CHECK(taped.log.values() == eager.log.values());
    CHECK(taped.model.parameter_values() == eager.model.parameter_values());

    REQUIRE(program.log.size() == 200);
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-6);
    // products summed per output (GemmElement) and sums per block, as on the GPU: rounding apart
    // (1.2e-6 measured after 200 steps)
    CHECK(max_param_diff(program.model.parameter_values(), eager.model.parameter_values()) < 1e-5);
    CHECK(program.log.values().back() < 0.5f * program.log.values().front());  // it trained
}

TEST_CASE("compiled step on the CPU: k steps in one program launch take no allocation, no host read, one launch") {
    const auto split = examples::load_iris(iris_path);
    Iris run(split);
    mg::StepGraph<mg::Cpu> graph([&] { run.step(); }, mg::StepMode::compiled);
    graph.run_program(2);  // warm-up and capture
    const auto before = mg::counters();
    graph.run_program(100);
    const auto after = mg::counters();
    CHECK(after.kernel_launches - before.kernel_launches == 1);  // the program (the log had room: its hook launched nothing)
    CHECK(after.storage_allocs == before.storage_allocs);
    CHECK(after.host_reads == before.host_reads);
    CHECK(run.log.size() == 102);
}

TEST_CASE("compiled step on the CPU: dropout and Adam; each of k steps in one launch draws the mask an eager step draws") {
    const auto x = mg::Tensor<mg::Cpu>::uniform({16, 8}, -1, 1);
    const auto y = mg::Tensor<mg::Cpu, std::int64_t>::from(std::vector<std::int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    struct Run {
        mg::nn::Sequential<mg::nn::Linear<mg::Cpu>, mg::nn::ReLU, mg::nn::Dropout, mg::nn::Linear<mg::Cpu>> model;
        mg::optim::Adam<mg::Cpu, float> opt;
        mg::Generator gen{11};
        mg::LossLog log;
        Run()
            : model((mg::manual_seed(5), mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(8, 32), mg::nn::ReLU{}, mg::nn::Dropout(0.5),
                                                              mg::nn::Linear<mg::Cpu>(32, 4)))),
              opt(model.parameters(), {.lr = 1e-2}) {}
    };
    mg::nn::CrossEntropyLoss loss_fn;
    auto step = [&](Run& r) {
        auto h = r.model.layer<1>()(r.model.layer<0>()(x));
        auto d1 = mg::dropout(h, 0.5, true, r.gen);
        auto d2 = mg::dropout(d1, 0.25, true, r.gen);  // two dropouts on one generator: draws interleave per step
        auto loss = loss_fn(r.model.layer<3>()(d2), y);
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager, taped, program;
    mg::StepGraph<mg::Cpu> tape([&] { step(taped); }, mg::StepMode::graph);
    mg::StepGraph<mg::Cpu> graph([&] { step(program); }, mg::StepMode::compiled);
    for (int i = 0; i < 30; ++i) step(eager);
    tape.replay(2);
    tape.replay(28);
    graph.run_program(1);
    graph.run_program(1);
    graph.run_program(28);
    CHECK(taped.log.values() == eager.log.values());  // the tape, k steps per call: bit for bit
    CHECK(taped.model.parameter_values() == eager.model.parameter_values());
    REQUIRE(graph.compiled());
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-5);
    CHECK(max_param_diff(program.model.parameter_values(), eager.model.parameter_values()) < 1e-5);
    CHECK(program.gen.reserve(1).offset == eager.gen.reserve(1).offset);
}

TEST_CASE("captured step on the CPU: MultiheadAttention with dropout draws, at every replayed step, the mask an eager step draws") {
    const auto x = mg::Tensor<mg::Cpu>::uniform({4, 5, 8}, -1, 1);
    struct Run {
        mg::nn::MultiheadAttention<mg::Cpu> mha;
        mg::optim::Adam<mg::Cpu, float> opt;
        mg::LossLog log;
        Run() : mha((mg::manual_seed(5), mg::nn::MultiheadAttention<mg::Cpu>(8, 2, {.batch_first = true, .dropout = 0.3}))), opt(mha.parameters()) {}
    };
    auto step = [&](Run& r) {
        const auto y = r.mha(x, {.is_causal = true});
        auto loss = mg::mean(y * y);
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager, taped;
    mg::StepGraph<mg::Cpu> tape([&] { step(taped); }, mg::StepMode::graph);
    mg::manual_seed(21);
    for (int i = 0; i < 6; ++i) step(eager);
    mg::manual_seed(21);
    tape.replay(2);
    tape.replay(4);
    CHECK(taped.log.values() == eager.log.values());
    CHECK(taped.mha.parameter_values() == eager.mha.parameter_values());
    const auto losses = eager.log.values();
    CHECK(losses[0] != losses[1]);
}

// A Linear, an activation, a Linear. As a Sequential the ops launch the activation in the first
// product's launch and its gradient in the second's (GemmThen records); written as act(fc1(x)),
// compile_tape folds the forward pair itself; with the activation's result also read by a mean,
// backward() leaves the gradient apart and compile_tape folds that pair. Every way, the compiled
// set must hold the records for every activation of kernels::EpilogueRules.
enum class Form { sequential, unfused, second_reader };
template <class Act>
void check_activation_compiles(Act act, Form form) {
    const auto x = mg::Tensor<mg::Cpu>::uniform({24, 6}, -1, 1);
    const auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>(24, 1));
    struct Run {
        mg::nn::Sequential<mg::nn::Linear<mg::Cpu>, Act, mg::nn::Linear<mg::Cpu>> model;
        mg::optim::SGD<mg::Cpu, float> opt;
        mg::LossLog log;
        explicit Run(Act a)
            : model((mg::manual_seed(9), mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(6, 8), a, mg::nn::Linear<mg::Cpu>(8, 3)))),
              opt(model.parameters(), {.lr = 0.1}) {}
    };
    mg::nn::CrossEntropyLoss loss_fn;
    auto step = [&](Run& r) {
        mg::Tensor<mg::Cpu> loss;
        if (form == Form::sequential) {
            loss = loss_fn(r.model(x), y);
        } else {
            auto h = act(r.model.template layer<0>()(x));
            loss = loss_fn(r.model.template layer<2>()(h), y);
            if (form == Form::second_reader) loss = loss + mg::mean(h);
        }
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager(act), taped(act), program(act);
    mg::StepGraph<mg::Cpu> tape([&] { step(taped); }, mg::StepMode::compiled);
    mg::StepGraph<mg::Cpu> graph([&] { step(program); }, mg::StepMode::compiled);
    for (int i = 0; i < 10; ++i) step(eager);
    tape.replay(10);
    graph.run_program(10);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    // 11, as Iris's: the first product with the activation, the second product; the loss's label
    // check, rows and mean, its gradient; the second product's weight and bias gradients; its input
    // gradient with the activation's gradient; the first's weight and bias gradients; SGD; the log.
    // Unfused, the tape has 12 records and compile_tape folds the forward pair. With the second
    // reader it has 19, the mean's and the sum of the two losses' among them, and compile_tape
    // folds both pairs (17 then; without the folds this check fails).
    CHECK(graph.program_size() == (form == Form::second_reader ? 17 : 11));
    CHECK(taped.log.values() == eager.log.values());
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-5);
    CHECK(max_param_diff(program.model.parameter_values(), eager.model.parameter_values()) < 1e-5);
}

TEST_CASE("compile_tape folds an activation into its product only where the activation writes memory the product does not read") {
    // A temporary product input freed before the activation allocates its output can hand that
    // block back: then the fused record would write y[i] while other threads still read a.
    std::vector<float> a(6 * 4, 0.5f), b(4 * 5, 0.25f), c(6 * 5), y(6 * 5);
    const auto product = [&](float* a_data) { return mg::kernels::GemmElement<float>{a_data, b.data(), nullptr, c.data(), 6, 5, 4, false, false, true}; };
    using Relu = mg::kernels::UnaryForward<float, mg::kernels::Relu<float>>;
    const auto compile = [&](float* activation_out) {
        mg::detail::RecordTape tape;
        tape.add(30, 4, product(a.data()));
        tape.add(30, 1, Relu{c.data(), activation_out, {}});
        return mg::detail::compile_tape(tape);
    };
    CHECK(compile(y.data()).ops.size() == 1);  // apart memory: one GemmThen record
    CHECK(compile(a.data()).ops.size() == 2);  // the activation writes the product's a: left apart
    CHECK(compile(a.data() + 20).ops.size() == 2);  // a partial overlap too
    CHECK(compile(b.data()).ops.size() == 2);
    // the backward pair: dx over b
    using ReluBack = mg::kernels::UnaryBackward<float, mg::kernels::Relu<float>>;
    mg::detail::RecordTape tape;
    tape.add(30, 4, product(a.data()));
    tape.add(30, 1, ReluBack{y.data(), y.data(), c.data(), b.data(), {}, true});
    CHECK(mg::detail::compile_tape(tape).ops.size() == 2);
}

TEST_CASE("compiled step on the CPU: each activation a product takes as its epilogue compiles, forward and backward, fused by the ops or by compile_tape") {
    for (Form form : {Form::sequential, Form::unfused, Form::second_reader}) {
        CAPTURE(static_cast<int>(form));
        check_activation_compiles(mg::nn::ReLU{}, form);
        check_activation_compiles(mg::nn::Tanh{}, form);
        check_activation_compiles(mg::nn::Sigmoid{}, form);
        check_activation_compiles(mg::nn::GELU{}, form);
        check_activation_compiles(mg::nn::GELU{"tanh"}, form);
    }
}

TEST_CASE("compiled step: index_select and embedding compile (their index check is a block functor), and a bad index is refused") {
    auto rows = mg::Tensor<mg::Cpu, std::int64_t>::from(std::vector<std::int64_t>{5, 0, 5, 2}, {2, 2});
    const auto cols = mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{2, 0});
    struct Run {
        mg::Tensor<mg::Cpu> table = (mg::manual_seed(4), mg::Tensor<mg::Cpu>::uniform({6, 3}, -1, 1).requires_grad_());
        mg::optim::SGD<mg::Cpu, float> opt{std::vector{table}, {.lr = 0.1}};
        mg::LossLog log;
    };
    auto step = [&](Run& r) {
        auto y = mg::index_select(mg::embedding(rows, r.table), 2, cols);  // (2, 2, 2)
        auto loss = mg::sum(mg::mul(y, y));
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager, program;
    mg::StepGraph<mg::Cpu> graph([&] { step(program); }, mg::StepMode::compiled);
    for (int i = 0; i < 4; ++i) step(eager);
    graph.run_program(4);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-5);
    CHECK(max_rel_diff(program.table.to_vector(), eager.table.to_vector()) < 1e-5);
    // an index past the table, written into the captured index tensor: the program's check refuses it
    rows.data()[1] = 9;
    CHECK(error_message([&] { graph.run_program(1); }) == "embedding: argument #1 'input' has index 9 at position 1, expected an index in [0, 6)");
}

TEST_CASE("compiled step: a step that cannot be one program says why, and still replays as a graph") {
    SUBCASE("host work in the step") {
        // host work: what an MPI all-reduce records (dist/mpi.hpp); here a host task of its own
        auto w = mg::Tensor<mg::Cpu>::uniform({5, 3}, -1, 1);
        int host_runs = 0;
        mg::LossLog log;
        mg::StepGraph<mg::Cpu> graph(
            [&] {
                mg::Cpu::host_work([&host_runs] { ++host_runs; }, 0);
                log.record(mg::sum(w));
            },
            mg::StepMode::compiled);
        graph.replay(3);
        INFO(graph.fallback_reason());
        CHECK_FALSE(graph.compiled());
        CHECK(graph.fallback_reason().starts_with("it runs work on the host inside the step"));
        CHECK(log.size() == 3);
        CHECK(error_message([&] { graph.run_program(); }).starts_with("StepGraph::run_program: the step could not be compiled: it runs work on the host"));
        CHECK(log.size() == 3);  // the refused call reserved nothing in the log
        CHECK(host_runs == 3);
    }
    SUBCASE("a double step: the compiled set is float") {
        auto w = mg::Tensor<mg::Cpu, double>::uniform({4, 3}, -1, 1);
        w.requires_grad_();
        mg::LossLog log;
        mg::StepGraph<mg::Cpu> graph([&] { log.record(mg::sum(mg::relu(w))); }, mg::StepMode::compiled);
        graph.replay(2);
        INFO(graph.fallback_reason());
        CHECK_FALSE(graph.compiled());
        CHECK(graph.fallback_reason().find("not among the functors a compiled step can run") != std::string::npos);
        CHECK(graph.fallback_reason().find("double") != std::string::npos);
    }
}

TEST_CASE("compiled step on the CPU: a record above compiled_block_max_work puts the program on a grid, which trains as eager steps do") {
    CHECK(mg::compiled_block_max_work() == std::int64_t{1} << 16);
    CHECK(error_message([] { mg::set_compiled_block_max_work(-1); }) ==
          "set_compiled_block_max_work: -1 is negative, expected a record's work >= 0");
    // a product of 128 x 96 x 96 = 1179648 multiply-adds, above one block's 2^16
    const auto x = mg::Tensor<mg::Cpu>::uniform({128, 96}, -1, 1);
    struct Run {
        mg::Tensor<mg::Cpu> w = initial();
        mg::optim::SGD<mg::Cpu, float> opt{{w}, {.lr = 0.1, .momentum = 0.9}};
        mg::LossLog log;
        static mg::Tensor<mg::Cpu> initial() {
            mg::Generator gen(3);
            auto w = mg::Tensor<mg::Cpu>::uniform({96, 96}, -0.1, 0.1, gen);
            w.requires_grad_();
            return w;
        }
    };
    auto step = [&](Run& r) {
        auto loss = mg::mean(mg::relu(mg::matmul(x, r.w)));
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager, program;
    mg::StepGraph<mg::Cpu> graph([&] { step(program); }, mg::StepMode::compiled);
    for (int i = 0; i < 6; ++i) step(eager);
    graph.run_program(2);  // warm-up, capture, one step
    const auto before = mg::counters();
    graph.run_program(4);
    CHECK(mg::counters().kernel_launches - before.kernel_launches == 1);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    CHECK(graph.program_on_grid());
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-5);
    CHECK(max_rel_diff(program.w.to_vector(), eager.w.to_vector()) < 1e-5);
    CHECK(program.log.values().back() < program.log.values().front());  // it trained
}

TEST_CASE("compiled step on the CPU: a trained leaf, a cross-entropy over 4096 rows plus a mean, two tensors in SGD compile to a grid program that matches eager") {
    // the CPU twin of the GPU suite's many-block grid case: that every record of this step is in
    // the compiled set is checked here, without a GPU
    const auto logits0 = mg::Tensor<mg::Cpu>::uniform({4096, 10}, -2, 2).to_vector();
    const auto x = mg::Tensor<mg::Cpu>::uniform({128, 96}, -1, 1);
    const auto w0 = mg::Tensor<mg::Cpu>::uniform({96, 96}, -0.1, 0.1).to_vector();
    std::vector<std::int32_t> labels(4096);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i * 7 % 10);
    const auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    struct Run {
        mg::Tensor<mg::Cpu> logits, w;
        mg::optim::SGD<mg::Cpu, float> opt;
        mg::LossLog log;
        Run(const std::vector<float>& l, const std::vector<float>& w_)
            : logits(mg::Tensor<mg::Cpu>::from(l, {4096, 10})), w(mg::Tensor<mg::Cpu>::from(w_, {96, 96})),
              opt({logits.requires_grad_(), w.requires_grad_()}, {.lr = 0.5, .momentum = 0.9}) {}
    };
    mg::nn::CrossEntropyLoss loss_fn;
    auto step = [&](Run& r) {
        auto loss = loss_fn(r.logits, y) + mg::mean(mg::relu(mg::matmul(x, r.w)));
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
        r.log.record(loss);
    };
    Run eager(logits0, w0), program(logits0, w0);
    mg::StepGraph<mg::Cpu> graph([&] { step(program); }, mg::StepMode::compiled);
    for (int i = 0; i < 20; ++i) step(eager);
    graph.run_program(2);
    graph.run_program(18);
    INFO(graph.fallback_reason());
    REQUIRE(graph.compiled());
    CHECK(graph.program_on_grid());
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-5);
    CHECK(max_rel_diff(program.logits.to_vector(), eager.logits.to_vector()) < 1e-5);
}

TEST_CASE("compiled step on the CPU: a bad label in a new batch is found by the program's label check") {
    const auto split = examples::load_iris(iris_path);
    Iris run(split);
    mg::StepGraph<mg::Cpu> graph([&] { run.step(); }, mg::StepMode::compiled);
    graph.run_program(2);
    run.y.data()[7] = 3;
    CHECK(error_message([&] { graph.run_program(); }) ==
          "cross_entropy: argument #2 'target' has class 3 at index 7, expected a class in [0, 3)");
    CHECK(error_message([&] { graph.run_program(); }).starts_with("StepGraph: an earlier replay failed part way"));
}

TEST_CASE("StepGraph deduces its backend as the README spells it, mg::StepGraph(step, mg::StepMode::compiled): Cpu in a host-compiled file") {
    const auto split = examples::load_iris(iris_path);
    Iris eager(split), deduced(split);
    auto step = [&] { deduced.step(); };
    auto graph = mg::StepGraph(step, mg::StepMode::compiled);
    static_assert(std::is_same_v<decltype(graph), mg::StepGraph<mg::Cpu>>);
    static_assert(std::is_same_v<decltype(mg::StepGraph(step)), mg::StepGraph<mg::Cpu>>);
    static_assert(std::is_same_v<decltype(mg::StepGraph(step, false)), mg::StepGraph<mg::Cpu>>);
    static_assert(std::is_same_v<decltype(mg::StepGraph(step, mg::StepMode::graph, 0)), mg::StepGraph<mg::Cpu>>);
    static_assert(std::is_same_v<decltype(mg::StepGraph(std::function<void()>(step))), mg::StepGraph<mg::Cpu>>);
    eager.eager(5);
    graph.replay();   // eager warm-up
    graph.replay(4);  // captures, then 4 steps
    CHECK(graph.compiled());
    CHECK(deduced.log.values() == eager.log.values());
}

TEST_CASE("StepGraph: replay(k) and run_program(k) refuse k < 1; run_program needs compiled mode") {
    mg::LossLog log;
    auto w = mg::Tensor<mg::Cpu>::full({3}, 1.0f);
    mg::StepGraph<mg::Cpu> graph([&] { log.record(mg::sum(w)); });
    CHECK(error_message([&] { graph.replay(0); }) == "StepGraph::replay: k=0 steps asked, expected at least 1");
    CHECK(error_message([&] { graph.run_program(2); }) == "StepGraph::run_program: the graph is not in StepMode::compiled");
    graph.replay(3);
    CHECK(log.size() == 3);
}

TEST_CASE("CrossEntropyBlock, the one-launch forward a GPU takes for small losses, equals the check, rows and mean it replaces") {
    using CE = mg::kernels::CrossEntropyForward<float, std::int64_t>;
    const std::int64_t rows = 37, cols = 5;
    const auto logits = mg::Tensor<mg::Cpu>::uniform({rows, cols}, -3, 3);
    std::vector<std::int64_t> labels(rows);
    for (std::int64_t r = 0; r < rows; ++r) labels[static_cast<std::size_t>(r)] = r % 7 == 3 ? -100 : r % cols;  // some ignored
    const auto target = mg::Tensor<mg::Cpu, std::int64_t>::from(labels);
    struct Buffers {
        mg::Tensor<mg::Cpu> grad = mg::Tensor<mg::Cpu>::zeros({37, 5}), inv_count = mg::Tensor<mg::Cpu>::zeros({1}),
                            row_loss = mg::Tensor<mg::Cpu>::zeros({37}), out = mg::Tensor<mg::Cpu>::zeros({1});
        CE forward(const mg::Tensor<mg::Cpu>& x, const mg::Tensor<mg::Cpu, std::int64_t>& t) {
            return {x.data(), t.data(), row_loss.data(), grad.data(), 5, -100, 0.0f};
        }
    } fused, apart;
    mg::Cpu::launch_block(mg::kernels::CrossEntropyBlock<float, std::int64_t>{fused.forward(logits, target), rows, fused.out.data(),
                                                                               fused.inv_count.data(), mg::detail::target_site<std::int64_t>("cross_entropy")},
                          0);
    float* scale = apart.inv_count.data();
    mg::Cpu::launch_block(mg::kernels::LabelCheck<std::int64_t, float>{target.data(), rows, cols, -100, true, scale, mg::detail::target_site<std::int64_t>("cross_entropy")}, 0);
    mg::Cpu::launch(rows, apart.forward(logits, target), 0);
    mg::Cpu::launch_block(mg::kernels::BlockSum<float>{apart.row_loss.data(), rows, apart.out.data(), 1.0f, true, scale}, 0);
    CHECK(fused.out.to_vector() == apart.out.to_vector());
    CHECK(fused.inv_count.to_vector() == apart.inv_count.to_vector());
    // the gradients within rounding: Cpu::launch runs its loop compiled for AVX2+FMA where the CPU has it
    const auto fg = fused.grad.to_vector(), ag = apart.grad.to_vector();
    for (std::size_t i = 0; i < fg.size(); ++i) CHECK(fg[i] == doctest::Approx(ag[i]).epsilon(1e-6));
    CHECK(fused.row_loss.to_vector() == apart.row_loss.to_vector());
    CHECK(fused.out.to_vector()[0] == doctest::Approx(mg::cross_entropy(logits, target).item()).epsilon(1e-6));

    labels[4] = 9;
    const auto bad = mg::Tensor<mg::Cpu, std::int64_t>::from(labels);
    CHECK(error_message([&] {
              mg::Cpu::launch_block(mg::kernels::CrossEntropyBlock<float, std::int64_t>{fused.forward(logits, bad), rows, fused.out.data(),
                                                                                         nullptr, mg::detail::target_site<std::int64_t>("cross_entropy")},
                                    0);
          }) == "cross_entropy: argument #2 'target' has class 9 at index 4, expected a class in [0, 5)");
}

// The digits CNN (conv, BatchNorm with its running statistics and counter, ReLU, max pooling,
// dropout, Linear) with Adam on one fixed batch of 64 images, recording its loss each step.
struct Cnn {
    examples::DigitsCnn<mg::Cpu> model;
    mg::optim::Adam<mg::Cpu, float> opt;
    mg::LossLog log;
    Cnn() : model((mg::manual_seed(8), examples::DigitsCnn<mg::Cpu>())), opt(model.parameters(), {.lr = 1e-2}) {}
    void step(const mg::Tensor<mg::Cpu>& x, const mg::Tensor<mg::Cpu, std::int64_t>& y) {
        auto loss = mg::cross_entropy(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
};

TEST_CASE("compiled step on the CPU: a CNN with BatchNorm and dropout compiles; replay(k) matches eager bit for bit, buffers included; no allocation") {
    mg::Generator data(21);
    const auto x = mg::Tensor<mg::Cpu>::uniform({64, 64}, 0, 1, data);
    std::vector<std::int64_t> labels(64);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i * 7 % 10);
    const auto y = mg::Tensor<mg::Cpu, std::int64_t>::from(labels);
    Cnn eager, taped, program;
    // each run draws its dropout masks from the default generator: every run starts from the same state
    mg::manual_seed(30);
    for (int i = 0; i < 12; ++i) eager.step(x, y);
    mg::manual_seed(30);
    mg::StepGraph<mg::Cpu> graph([&] { taped.step(x, y); }, mg::StepMode::compiled);
    graph.replay(2);  // warm-up and capture
    const auto before = mg::counters();
    graph.replay(10);
    const auto after = mg::counters();
    REQUIRE(graph.compiled());
    CHECK(graph.fallback_reason().empty());
    CHECK(after.storage_allocs == before.storage_allocs);
    CHECK(after.host_reads == before.host_reads);
    CHECK(taped.log.values() == eager.log.values());
    CHECK(taped.model.parameter_values() == eager.model.parameter_values());
    CHECK(taped.model.bn2.running_var.to_vector() == eager.model.bn2.running_var.to_vector());
    CHECK(taped.model.bn1.num_batches_tracked.item() == 12);

    // the program a GPU block would run (one host thread as the block): the same training, to rounding
    mg::manual_seed(30);
    mg::StepGraph<mg::Cpu> program_graph([&] { program.step(x, y); }, mg::StepMode::compiled);
    program_graph.run_program(2);
    program_graph.run_program(10);
    CHECK(program.model.bn1.num_batches_tracked.item() == 12);
    REQUIRE(program.log.size() == 12);
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-4);
    CHECK(eager.log.values().back() < 0.5f * eager.log.values().front());  // it trained
}

// A convolution large enough to run over image chunks (ops/conv.hpp, conv_chunk_images: 9 chunks
// of one image here), with BatchNorm and SGD with momentum.
struct ChunkedConv {
    mg::nn::Conv2d<mg::Cpu> conv;
    mg::nn::BatchNorm2d<mg::Cpu> bn{8};
    mg::optim::SGD<mg::Cpu, float> opt;
    mg::LossLog log;
    ChunkedConv()
        : conv((mg::manual_seed(11), mg::nn::Conv2d<mg::Cpu>(16, 8, 3, {.padding = 1}))),
          opt({conv.weight, conv.bias, bn.weight, bn.bias}, {.lr = 0.05, .momentum = 0.9}) {}
    void step(const mg::Tensor<mg::Cpu>& x, const mg::Tensor<mg::Cpu>& target) {
        auto loss = mg::mse_loss(bn(conv(x)), target);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
};

TEST_CASE("captured and compiled steps on the CPU: a convolution over image chunks replays as eager runs it, bit for bit; no allocation") {
    mg::Generator data(23);
    const auto x = mg::Tensor<mg::Cpu>::uniform({9, 16, 24, 24}, -1, 1, data);
    const auto target = mg::Tensor<mg::Cpu>::uniform({9, 8, 24, 24}, -1, 1, data);
    const auto g = mg::detail::conv_geometry("conv2d", 2, x, mg::Tensor<mg::Cpu>::zeros({8, 16, 3, 3}), mg::Tensor<mg::Cpu>{}, 1, 1, 1, 1);
    REQUIRE(mg::detail::conv_chunk_images<mg::Cpu, float>(g) == 1);
    ChunkedConv eager, taped, compiled;
    for (int i = 0; i < 5; ++i) eager.step(x, target);
    for (const auto mode : {mg::StepMode::graph, mg::StepMode::compiled}) {
        ChunkedConv& run = mode == mg::StepMode::graph ? taped : compiled;
        mg::StepGraph<mg::Cpu> graph([&] { run.step(x, target); }, mode);
        graph.replay(2);
        const auto before = mg::counters();
        graph.replay(3);
        const auto after = mg::counters();
        CHECK(after.storage_allocs == before.storage_allocs);
        CHECK(run.log.values() == eager.log.values());
        CHECK(run.conv.weight.to_vector() == eager.conv.weight.to_vector());
        CHECK(run.bn.running_var.to_vector() == eager.bn.running_var.to_vector());
    }
    CHECK(eager.log.values().back() < eager.log.values().front());  // it trained
}

// examples/charlm's GPT, smaller (2 blocks, 2 heads, n_embd 32, context 8): embeddings, LayerNorm,
// causal MultiheadAttention (its head split and merge, scaled_dot_product_attention), the GELU MLP,
// cross-entropy over (N T, vocab), clipping and AdamW with two parameter groups.
struct SmallGpt {
    examples::charlm::Gpt<mg::Cpu> model;
    mg::optim::AdamW<mg::Cpu, float> opt;
    std::vector<mg::Tensor<mg::Cpu>> params;
    mg::LossLog log;
    static examples::charlm::GptConfig config() { return {.vocab_size = 27, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 32}; }
    SmallGpt() : model((mg::manual_seed(9), examples::charlm::Gpt<mg::Cpu>(config()))), opt(model.param_groups(0.1), {.lr = 3e-3}), params(model.parameters()) {}
    void step(const mg::Tensor<mg::Cpu, std::int32_t>& x, const mg::Tensor<mg::Cpu, std::int32_t>& y) {
        auto loss = model.loss(x, y);
        opt.zero_grad();
        loss.backward();
        mg::optim::clip_grad_norm_(params, 1.0);
        opt.step();
        log.record(loss);
    }
};

TEST_CASE("compiled step on the CPU: charlm's GPT compiles; replay(k) matches eager bit for bit; no allocation, no host read") {
    std::vector<std::int32_t> xs(16 * 8), ys(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        xs[i] = static_cast<std::int32_t>(i * 5 % 27);
        ys[i] = static_cast<std::int32_t>((i * 5 + 3) % 27);
    }
    const auto x = mg::Tensor<mg::Cpu, std::int32_t>::from(xs, {16, 8}), y = mg::Tensor<mg::Cpu, std::int32_t>::from(ys, {16, 8});
    SmallGpt eager, taped, program;
    for (int i = 0; i < 12; ++i) eager.step(x, y);
    mg::StepGraph<mg::Cpu> graph([&] { taped.step(x, y); }, mg::StepMode::compiled);
    graph.replay(2);  // warm-up and capture
    const auto before = mg::counters();
    graph.replay(10);
    const auto after = mg::counters();
    REQUIRE(graph.compiled());
    CHECK(graph.fallback_reason().empty());
    CHECK(after.storage_allocs == before.storage_allocs);
    CHECK(after.host_reads == before.host_reads);
    CHECK(taped.log.values() == eager.log.values());
    CHECK(taped.model.parameter_values() == eager.model.parameter_values());

    // the program a GPU block would run: the same training, to rounding
    mg::StepGraph<mg::Cpu> program_graph([&] { program.step(x, y); }, mg::StepMode::compiled);
    program_graph.run_program(2);
    program_graph.run_program(10);
    REQUIRE(program.log.size() == 12);
    CHECK(max_rel_diff(program.log.values(), eager.log.values()) < 1e-4);
    CHECK(eager.log.values().back() < 0.8f * eager.log.values().front());  // it trained
}

}  // namespace test_compiled
