// Must not compile: a Cpu tensor and a Cuda tensor in one op. Built only by check_compile_fail.cmake,
// which checks that the first error says what is wrong and how to fix it. A declaration stands in
// for the Cuda tensor so this compiles (up to the error) with a plain host compiler.
#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

const mg::Tensor<mg::Cuda>& gpu_tensor();

int main() {
    auto cpu = mg::Tensor<mg::Cpu>::ones({2, 2});
#if defined(MIX_MODEL)
    mg::nn::Linear<mg::Cpu> layer(2, 2);
    auto y = layer(gpu_tensor());
#elif defined(MIX_DTYPE)
    auto y = mg::matmul(cpu, mg::Tensor<mg::Cpu, double>::ones({2, 2}));
#elif defined(MIX_OPERATOR)
    auto y = cpu * gpu_tensor();
#elif defined(MIX_OPERATOR_DTYPE)
    auto y = cpu - mg::Tensor<mg::Cpu, double>::ones({2, 2});
#elif defined(MIX_LOSS_DTYPE)
    auto y = mg::mse_loss(cpu, mg::Tensor<mg::Cpu, double>::ones({2, 2}));
#else
    auto y = mg::matmul(cpu, gpu_tensor());
#endif
    (void)y;
}
