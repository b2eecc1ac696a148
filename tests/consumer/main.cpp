// A user's program: builds against an installed, add_subdirectory'd or FetchContent'd minigrad.
#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

#if defined(__CUDACC__)
// Compiled and linked, never called (no GPU needed): a compiled training step on the GPU, whose
// program a file linking minigrad::cuda_prebuilt takes from that library.
void gpu_compiled_step() {
    mg::nn::Linear<mg::Cuda> layer(2, 2);
    auto x = mg::Tensor<mg::Cuda>::zeros({4, 2});
    auto y = mg::Tensor<mg::Cuda, std::int32_t>::zeros({4});
    mg::optim::SGD opt(layer.parameters(), {.lr = 0.5});
    mg::StepGraph<mg::Cuda> step(
        [&] {
            opt.zero_grad();
            mg::cross_entropy(layer(x), y).backward();
            opt.step();
        },
        mg::StepMode::compiled);
    step.replay(10);
}
#endif

int main() {
    mg::manual_seed(1);
    mg::nn::Linear<mg::Cpu> layer(2, 2);
    auto x = mg::Tensor<mg::Cpu>::from({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2});
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::from({0, 1});
    mg::optim::SGD opt(layer.parameters(), {.lr = 0.5});
    float first = 0, last = 0;
    for (int i = 0; i < 50; ++i) {
        auto loss = mg::cross_entropy(layer(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        (i == 0 ? first : last) = loss.item();
    }
    fmt::print("minigrad {}: loss {:.4f} -> {:.4f}\n", mg::version, first, last);
    return last < first ? 0 : 1;
}
