// Prints what the PyTorch lesson's device cell prints (torch.cuda.is_available(), device_count(),
// current_device(), get_device_name(), version.cuda, cudnn), minigrad's way. Safe on a machine
// with no GPU or no driver: it says so and exits 0.
#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

namespace mg = minigrad;

int main() {
    fmt::print("minigrad {}\n", mg::version);
#if defined(MINIGRAD_HAS_CUDA)
    const bool available = mg::cuda::is_available();
    fmt::print("CUDA available: {}\n", available ? "yes" : "no");
    fmt::print("CUDA runtime version (compiled against): {}\n", mg::cuda::compiled_version());
    fmt::print("CUDA driver version: {}\n", mg::cuda::driver_version());
    if (!available) {
        fmt::print("CUDA is not available: {}\n", mg::cuda::unavailable_reason());
    } else {
        fmt::print("Device count: {}\n", mg::cuda::device_count());
        fmt::print("Current device index: {}\n", mg::cuda::current_device());
        for (int i = 0; i < mg::cuda::device_count(); ++i) {
            const auto [major, minor] = mg::cuda::compute_capability(i);
            const auto mem = mg::cuda::memory_info(i);
            fmt::print("Device {}: {} (compute capability {}.{}, {:.1f} GiB free of {:.1f} GiB)\n", i, mg::cuda::device_name(i), major,
                       minor, mem.free_bytes / 1073741824.0, mem.total_bytes / 1073741824.0);
        }
    }
#else
    fmt::print("CUDA available: no\n");
    fmt::print("CUDA is not available: this build has no CUDA backend (it was compiled without nvcc)\n");
#endif
    fmt::print("cuDNN: not used (minigrad's kernels are its own, on Thrust/CUB)\n");
    return 0;
}
