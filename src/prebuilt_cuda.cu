// The prebuilt library's CUDA half (CMake target minigrad::cuda_prebuilt, built where nvcc is
// found): a compiled step's program on the GPU, compiled once for the files nvcc compiles that link
// it (the CUDA list at the end of include/minigrad/prebuilt.hpp). For the GPU architectures of the
// build it comes from (CMAKE_CUDA_ARCHITECTURES): link it only from files built for the same.
#define MINIGRAD_PREBUILT_CUDA_SOURCE
#include <minigrad/minigrad.hpp>
