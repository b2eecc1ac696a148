// Threads: two threads each training their own model at once get, bit for bit, what each gets
// alone; grad mode, counters and the Cpu allocator's cache are per thread; the shared default
// generator hands out whole fills. Built also under ThreadSanitizer (minigrad_tsan_tests), where a
// race fails the run. Results are gathered in the threads and checked on the main thread. A
// compiled program on a team of host threads (the CPU's stand-in for a GPU's cooperative grid) is
// here for the same reason: a missing barrier between its records is a race TSan reports.
#include <algorithm>
#include <latch>
#include <map>
#include <thread>

#include "helpers.hpp"
#include "iris.hpp"
#include "iris_run.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_threads {

namespace {

const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

struct IrisData {  // shared read-only by every run: nothing records grad through it
    mg::Tensor<mg::Cpu> x;
    mg::Tensor<mg::Cpu, std::int32_t> y;
};

IrisData iris_train() {
    const auto split = examples::load_iris(iris_path);
    return {mg::Tensor<mg::Cpu>::from(split.x_train), mg::Tensor<mg::Cpu, std::int32_t>::from(split.y_train)};
}

struct RunSpec {
    std::uint64_t seed;
    std::int64_t hidden;
    double momentum;
    int steps;
};

struct RunResult {
    std::map<std::string, mg::nn::HostArray<float>> parameters;
    std::vector<float> losses;
    mg::Counters counts;  // this thread's, over the whole run
};

// One training run from model construction on; meant to start on a fresh thread.
RunResult train(const IrisData& data, const RunSpec& spec) {
    const auto before = mg::counters();
    mg::Generator gen(spec.seed);
    examples::IrisMLP<mg::Cpu> model(spec.hidden, gen);
    mg::nn::CrossEntropyLoss loss_fn;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = spec.momentum});
    mg::LossLog log;
    for (int step = 0; step < spec.steps; ++step) {
        auto loss = loss_fn(model(data.x), data.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
    RunResult result{model.parameter_values(), log.values(), mg::counters()};
    auto& c = result.counts;
    c.host_reads -= before.host_reads;
    c.kernel_launches -= before.kernel_launches;
    c.storage_allocs -= before.storage_allocs;
    c.storage_frees -= before.storage_frees;
    return result;
}

RunResult train_alone(const IrisData& data, const RunSpec& spec) {
    RunResult result;
    std::thread([&] { result = train(data, spec); }).join();
    return result;
}

// The largest relative difference between two runs' values (against max(|a|, floor)).
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b, double floor) {
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])) / std::max(std::abs(double(a[i])), floor));
    return worst;
}

}  // namespace

TEST_CASE("a compiled program run by a team of host threads (a GPU's cooperative grid, on the CPU) trains Iris as eager steps do") {
    const auto split = examples::load_iris(iris_path);
    AllOnGrid on_grid;
    IrisRun<mg::Cpu> eager(split, 0.9, 0.05), program(split, 0.9, 0.05);
    mg::LossLog eager_log, program_log;
    mg::StepGraph<mg::Cpu> graph([&] { program.step(program_log); }, mg::StepMode::compiled);
    for (int i = 0; i < 100; ++i) eager.step(eager_log);
    graph.run_program(1);  // eager warm-up
    graph.run_program(4);  // capture, then 4 steps
    const auto before = mg::counters();
    graph.run_program(95);
    CHECK(mg::counters().kernel_launches - before.kernel_launches == 1);

    REQUIRE(graph.program_on_grid());
    CHECK(graph.program_size() == 11);
    REQUIRE(program_log.size() == 100);
    // the sums of a team of 4 add 4 partial sums: rounding apart from eager
    CHECK(max_rel_diff(program_log.values(), eager_log.values(), 1e-3) < 1e-6);
    const auto want = eager.model.parameter_values();
    for (const auto& [name, array] : program.model.parameter_values()) {
        INFO(name);
        CHECK(max_rel_diff(array.values, want.at(name).values, 0.1) < 1e-5);
    }

    // a bad label in a new batch: one of the team's threads finds it, the launch reports it
    program.y.data()[7] = 3;
    CHECK(error_message([&] { graph.run_program(); }) ==
          "cross_entropy: argument #2 'target' has class 3 at index 7, expected a class in [0, 3)");
}

TEST_CASE("CrossEntropyBlock on a team of host threads: its two sums in a row equal one thread's, and the lowest bad label is reported") {
    using CE = mg::kernels::CrossEntropyForward<float, std::int32_t>;
    using Block = mg::kernels::CrossEntropyBlock<float, std::int32_t>;
    const std::int64_t rows = 301, cols = 4;
    const auto logits = mg::Tensor<mg::Cpu>::uniform({rows, cols}, -3, 3);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
    for (std::size_t r = 0; r < labels.size(); ++r) labels[r] = r % 5 == 2 ? -100 : static_cast<std::int32_t>(r % 4);  // some ignored
    struct Buffers {
        mg::Tensor<mg::Cpu> grad = mg::Tensor<mg::Cpu>::zeros({301, 4}), inv_count = mg::Tensor<mg::Cpu>::zeros({1}),
                            row_loss = mg::Tensor<mg::Cpu>::zeros({301}), out = mg::Tensor<mg::Cpu>::zeros({1});
        Block block(const mg::Tensor<mg::Cpu>& x, const mg::Tensor<mg::Cpu, std::int32_t>& t) {
            return {CE{x.data(), t.data(), row_loss.data(), grad.data(), 4, -100, 0.0f}, 301, out.data(), inv_count.data(), mg::detail::target_site<std::int32_t>("cross_entropy")};
        }
    } one, team;
    const auto target = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    mg::Cpu::launch_block(one.block(logits, target), 0);
    CHECK(mg::Cpu::launch_grid(team.block(logits, target), 4, 0));
    // the mean's count (a second sum right after the first) is exact; the loss sums 4 partials
    CHECK(team.inv_count.to_vector() == one.inv_count.to_vector());
    CHECK(team.out.to_vector()[0] == doctest::Approx(one.out.to_vector()[0]).epsilon(1e-6));
    CHECK(team.row_loss.to_vector() == one.row_loss.to_vector());
    CHECK(team.grad.to_vector() == one.grad.to_vector());  // each row by one thread, as on one

    // bad labels at 250, 9 and 130: whichever thread finds one first, the lowest is reported
    labels[250] = 7;
    labels[9] = 5;
    labels[130] = -3;
    const auto bad = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    for (int run = 0; run < 5; ++run) {
        CHECK(error_message([&] { mg::Cpu::launch_grid(team.block(logits, bad), 4, 0); }) ==
              "cross_entropy: argument #2 'target' has class 5 at index 9, expected a class in [0, 4)");
    }
}

TEST_CASE("two threads training their own Iris models at once match, bit for bit, the same runs alone") {
    const auto data = iris_train();
    const RunSpec spec_a{.seed = 1, .hidden = 10, .momentum = 0.0, .steps = 300};
    const RunSpec spec_b{.seed = 2, .hidden = 7, .momentum = 0.9, .steps = 300};
    const RunResult alone_a = train_alone(data, spec_a), alone_b = train_alone(data, spec_b);

    RunResult together_a, together_b;
    std::latch start(2);
    std::thread thread_a([&] {
        start.arrive_and_wait();
        together_a = train(data, spec_a);
    });
    std::thread thread_b([&] {
        start.arrive_and_wait();
        together_b = train(data, spec_b);
    });
    thread_a.join();
    thread_b.join();

    REQUIRE(alone_a.losses.size() == 300);
    CHECK(alone_a.losses.back() < alone_a.losses.front());  // it trained
    CHECK(alone_a.parameters != alone_b.parameters);        // the two runs differ from each other
    CHECK(together_a.parameters == alone_a.parameters);
    CHECK(together_a.losses == alone_a.losses);
    CHECK(together_b.parameters == alone_b.parameters);
    CHECK(together_b.losses == alone_b.losses);
    // Each thread counts its own work only, so the counts do not depend on what ran beside it.
    for (auto [together, alone] : {std::pair{&together_a, &alone_a}, std::pair{&together_b, &alone_b}}) {
        CHECK(together->counts.kernel_launches == alone->counts.kernel_launches);
        CHECK(together->counts.storage_allocs == alone->counts.storage_allocs);
        CHECK(together->counts.host_reads == alone->counts.host_reads);
    }
    CHECK(alone_a.counts.host_reads == 4 + 1);  // one per parameter and one for values(); none per step
}

TEST_CASE("NoGradGuard in one thread leaves grad mode on in another") {
    std::latch guard_on(1), main_checked(1);
    bool other_enabled = true, other_recorded = true;
    std::thread other([&] {
        mg::NoGradGuard no_grad;
        guard_on.count_down();
        main_checked.wait();
        auto x = tensor<double>({1, 2}, {2}, true);
        other_enabled = mg::is_grad_enabled();
        other_recorded = (x + x).requires_grad();
    });
    guard_on.wait();
    const bool main_enabled = mg::is_grad_enabled();
    auto x = tensor<double>({1, 2}, {2}, true);
    const bool main_recorded = (x + x).requires_grad();
    main_checked.count_down();
    other.join();
    CHECK(main_enabled);
    CHECK(main_recorded);
    CHECK_FALSE(other_enabled);
    CHECK_FALSE(other_recorded);
    CHECK(mg::is_grad_enabled());
}

TEST_CASE("counters are per thread, and a block freed by another thread joins that thread's cache") {
    constexpr std::int64_t odd_size = 98765;  // a block size no other test uses
    const auto main_before = mg::counters();
    mg::Counters worker_counts;
    mg::Tensor<mg::Cpu> handed_over;
    std::thread([&] {
        handed_over = mg::Tensor<mg::Cpu>::zeros({odd_size});
        worker_counts = mg::counters();
    }).join();
    CHECK(worker_counts.storage_allocs == 1);
    CHECK(worker_counts.kernel_launches == 1);  // the fill
    CHECK(mg::counters().storage_allocs == main_before.storage_allocs);  // the worker's work is not counted here
    CHECK(mg::counters().kernel_launches == main_before.kernel_launches);

    const float* block = handed_over.data();
    handed_over = {};  // freed on the main thread: joins the main thread's cache
    auto reused = mg::Tensor<mg::Cpu>::empty({odd_size});
    CHECK(reused.data() == block);
    CHECK(mg::counters().storage_allocs == main_before.storage_allocs);

    // Another thread's cache does not have it: that thread asks the system.
    std::uint64_t fresh_allocs = 0;
    std::thread([&] {
        auto t = mg::Tensor<mg::Cpu>::empty({odd_size});
        fresh_allocs = mg::counters().storage_allocs;
    }).join();
    CHECK(fresh_allocs == 1);
}

TEST_CASE("threads sharing the default generator each get whole runs of its sequence") {
    constexpr int fills = 50, fill_size = 64;
    mg::manual_seed(7);
    std::vector<std::vector<float>> expected;
    for (int i = 0; i < 2 * fills; ++i)
        expected.push_back(mg::Tensor<mg::Cpu>::uniform({fill_size}, -1, 1).to_vector());

    mg::manual_seed(7);
    std::vector<std::vector<float>> drawn[2];
    std::latch start(2);
    auto draw = [&](int which) {
        start.arrive_and_wait();
        for (int i = 0; i < fills; ++i)
            drawn[which].push_back(mg::Tensor<mg::Cpu>::uniform({fill_size}, -1, 1).to_vector());
    };
    std::thread first(draw, 0), second(draw, 1);
    first.join();
    second.join();

    std::vector<std::vector<float>> all = drawn[0];
    all.insert(all.end(), drawn[1].begin(), drawn[1].end());
    std::sort(all.begin(), all.end());
    std::sort(expected.begin(), expected.end());
    CHECK(all == expected);
}

}  // namespace test_threads
