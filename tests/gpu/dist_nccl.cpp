// mg::dist's NCCL transport on Cuda tensors: run as `mpirun -np 2 dist_nccl` on a node with a GPU
// per rank. Each rank makes gradients equal to (rank + 1) through backward, all-reduces them, and
// checks the mean (W + 1) / 2 everywhere; then checks that broadcast_parameters gave every rank
// rank 0's weights. Reports skipped (77) where there are fewer GPUs than ranks, which is every
// machine this project has had: compiled by CI, never run so far.
#include <cstdio>
#include <vector>

#include <fmt/format.h>
#include <minigrad/dist.hpp>

namespace mg = minigrad;

int main() {
    mg::dist::init();
    const int world = mg::dist::world_size(), rank = mg::dist::rank();
    if (mg::cuda::device_count() < mg::dist::local_size()) {
        if (rank == 0) fmt::print("skipped: {} CUDA devices for {} ranks on this node (NCCL needs one each)\n", mg::cuda::device_count(), mg::dist::local_size());
        return 77;
    }
    mg::cuda::set_device(mg::dist::local_rank());
    mg::manual_seed(static_cast<std::uint64_t>(10 + rank));  // different weights on every rank until the broadcast
    auto model = mg::nn::Sequential(mg::nn::Linear<mg::Cuda>(4, 8), mg::nn::Linear<mg::Cuda>(8, 2));
    mg::dist::broadcast_parameters(model);
    mg::manual_seed(10);
    auto rank0 = mg::nn::Sequential(mg::nn::Linear<mg::Cpu>(4, 8), mg::nn::Linear<mg::Cpu>(8, 2));
    int failures = 0;
    if (model.parameter_values() != rank0.parameter_values()) {
        fmt::print(stderr, "rank {}: broadcast_parameters did not give rank 0's weights\n", rank);
        ++failures;
    }
    // sum(y) * (rank + 1) over y = model(ones): the last bias's gradient is rank + 1 per element.
    auto x = mg::Tensor<mg::Cuda>::ones({1, 4});
    (mg::sum(model(x)) * static_cast<float>(rank + 1)).backward();
    mg::dist::all_reduce_gradients(model);
    float expected = static_cast<float>(world + 1) / 2;
    for (float g : model.parameters().back().grad().to_vector()) {
        if (g != expected) {
            fmt::print(stderr, "rank {}: the all-reduced bias gradient is {}, expected {}\n", rank, g, expected);
            ++failures;
            break;
        }
    }
    // The transport itself, which all_reduce_gradients skips on one rank (the mean over one rank is
    // its own gradient): NCCL's all-reduce on minigrad's stream, eagerly and inside a captured step,
    // so that a 1-rank run on one GPU (scripts/gpu-check.sh) exercises it against the values it started from.
    const int device = mg::cuda::current_device();
    auto bucket = mg::Tensor<mg::Cuda>::full({1000}, static_cast<float>(rank + 1));
    mg::dist::detail::Transport<mg::Cuda>::all_reduce_mean(bucket.data(), bucket.numel(), device, "dist_nccl");
    const auto check_bucket = [&](const char* how) {
        for (float v : bucket.to_vector()) {
            if (v != expected) {
                fmt::print(stderr, "rank {}: the {} all-reduce of the bucket gave {}, expected {}\n", rank, how, v, expected);
                ++failures;
                return;
            }
        }
    };
    check_bucket("eager");
    {
        // Each step adds 1 and averages: after the eager warm-up, the capture's launch and one more
        // replay, expected + 3 (a graph that never launched would leave expected + 1).
        mg::StepGraph<mg::Cuda> graph([&] {
            bucket.add_(1.0f);
            mg::dist::detail::Transport<mg::Cuda>::all_reduce_mean(bucket.data(), bucket.numel(), device, "dist_nccl");
        });
        for (int i = 0; i < 3; ++i) graph.replay();  // eager, captured, replayed
        expected += 3;
        check_bucket("captured");
    }
    if (failures == 0) fmt::print("rank {} of {}: NCCL broadcast and all-reduce agree, eagerly and in a captured step\n", rank, world);
    return failures == 0 ? 0 : 1;
}
