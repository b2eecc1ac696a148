// A 2-rank job in which rank 1 fails a step, for tests/dist/expect_failure.sh: the job must end
// (not hang) with a non-zero status and say why.
//   dist_failure exit   rank 1 ends with std::_Exit(1) before the all-reduce (a crash)
//   dist_failure stall  rank 1 stops calling collectives and sleeps (a hung peer): rank 0's
//                       all-reduce hits dist's timeout (2 s here) and aborts the job
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <minigrad/dist.hpp>

namespace mg = minigrad;

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "exit" && mode != "stall") {
        fmt::print(stderr, "usage: dist_failure exit|stall\n");
        return 2;
    }
    mg::dist::init();
    mg::dist::set_timeout(2);
    mg::manual_seed(1);
    auto model = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(4, 8), mg::nn::Tanh{}, mg::nn::Linear<mg::Cpu>(8, 2));
    mg::dist::broadcast_parameters(model);
    const auto x = mg::Tensor<mg::Cpu>::uniform({8, 4}, -1, 1);
    const auto y = mg::Tensor<mg::Cpu, std::int32_t>::from({0, 1, 1, 0, 1, 0, 0, 1});
    mg::nn::CrossEntropyLoss loss_fn;
    loss_fn(model(x), y).backward();
    if (mg::dist::rank() == 1) {
        if (mode == "exit") std::_Exit(1);
        std::this_thread::sleep_for(std::chrono::hours(1));
    }
    mg::dist::all_reduce_gradients(model);
    fmt::print("rank {}: the all-reduce completed, which it must not have\n", mg::dist::rank());
    return 0;
}
