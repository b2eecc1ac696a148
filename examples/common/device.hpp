// --device for the examples: "cpu", "cuda" or "auto", resolved once, then the training function
// called with the backend as a template argument: run_on_device(name, [&]<class B>() { ... }).
#pragma once

#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <minigrad/minigrad.hpp>

namespace examples {

template <class F>
int run_on_device(std::string device, F&& train) {
#if defined(MINIGRAD_HAS_CUDA)
    if (device == "auto") device = minigrad::cuda::is_available() ? "cuda" : "cpu";
    if (device == "cuda") {
        minigrad::cuda::require_device(0);
        return train.template operator()<minigrad::Cuda>();
    }
#else
    if (device == "auto") device = "cpu";
    if (device == "cuda") {
        fmt::print(stderr,
                   "error: --device cuda: this build of the example has no CUDA backend (it was compiled without nvcc, "
                   "so only the Cpu backend exists). Rebuild on a machine with the CUDA Toolkit, or use --device cpu "
                   "(or --device auto, which picks the GPU when there is one).\n");
        return 2;
    }
#endif
    return train.template operator()<minigrad::Cpu>();
}

}  // namespace examples
