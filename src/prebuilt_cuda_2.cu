// The prebuilt library's CUDA half, second file (src/prebuilt_cuda.cu says what it is): the
// entries of include/minigrad/prebuilt.hpp's CUDA list marked 2, among them a compiled step's
// program on the GPU.
#define MINIGRAD_PREBUILT_CUDA_SOURCE 2
#include <minigrad/minigrad.hpp>
