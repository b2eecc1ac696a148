// The prebuilt library's CUDA half (CMake target minigrad::cuda_prebuilt, built where nvcc is
// found), for the files nvcc compiles that link it: the CUDA list at the end of
// include/minigrad/prebuilt.hpp, the common ops on Cuda float tensors with their kernels, the
// backward pass and a compiled step's program on the GPU, compiled once. Built for the GPU
// architectures of the build it comes from (CMAKE_CUDA_ARCHITECTURES): link it only from files
// built for the same. This file compiles the entries marked 1, src/prebuilt_cuda_2.cu those marked
// 2, side by side.
#define MINIGRAD_PREBUILT_CUDA_SOURCE 1
#include <minigrad/minigrad.hpp>
