// The kernels CudaBackend launches (its own; an op's arithmetic is a functor in its ops/ file):
// one index per thread, grid-stride; a warp per row, with the warp as the row functor's team; the
// one-block sum; and the device team that runs a block functor on one block or on
// a cooperative grid. Compiled only by nvcc, as part of backend/cuda.cuh.
#pragma once

#include <cstdint>

#include <cooperative_groups.h>
#include <cub/block/block_reduce.cuh>

#include "../capture/tape.hpp"
#include "cuda_device.cuh"
#include "kernels.hpp"

namespace minigrad {

namespace detail {

// kernels: one index per thread, grid-stride so any n fits any grid. f is a kernels.hpp functor.
template <class F>
__global__ void for_each_index(std::int64_t n, F f) {
    const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

// A warp as the team of a kernels.hpp row functor: butterfly shuffles, so every lane ends with the
// same bits.
struct WarpTeam {
    template <class T>
    __device__ T max(T v) const {
        for (int offset = 16; offset > 0; offset /= 2) {
            const T other = __shfl_xor_sync(0xffffffffu, v, offset);
            v = other > v ? other : v;
        }
        return v;
    }
    template <class T>
    __device__ T sum(T v) const {
        for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
        return v;
    }
};

// a row functor over (rows, cols): one warp per row, grid-stride over rows. Every lane of a warp
// walks the same rows, so the shuffles see all 32 lanes.
template <class F>
__global__ void for_each_row_warp(std::int64_t rows, F f) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    const std::int64_t warps = static_cast<std::int64_t>(blockDim.x) * gridDim.x / 32;
    for (std::int64_t r = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < rows; r += warps)
        f.template row<32>(r, lane, WarpTeam{});
}

// x is (n), out is (1): out = scale * sum(x) (written or added). One block; each thread sums a
// strided slice, CUB reduces the block. For few elements, where one launch beats DeviceReduce's two.
template <class T, int Threads>
__global__ void sum_kernel(const T* x, std::int64_t n, T* out, T scale, bool overwrite, const T* device_scale) {
    using Reduce = cub::BlockReduce<T, Threads>;
    __shared__ typename Reduce::TempStorage temp;
    T partial = 0;
    for (std::int64_t i = threadIdx.x; i < n; i += Threads) partial += x[i];
    const T total = Reduce(temp).Sum(partial);
    if (threadIdx.x == 0) out[0] = kernels::write(out[0], device_scale ? total * scale * device_scale[0] : total * scale, overwrite);
}

// The team of a block functor (tape.hpp) on the GPU: the Threads threads of every block of the
// launch. One block (launch_block): sync() is the block's barrier. A cooperative grid
// (launch_grid): sync() is the grid's, and a sum puts each block's total in `scratch` (a 16-byte
// slot per block); then the first warp of every block adds the slots in one fixed order (a
// strided pass, then a shuffle tree), so every thread and every run gets the same value. Every
// thread of the launch must reach each sync() and sum(), as on the host.
template <int Threads>
struct DeviceTeam {
    static_assert(Threads % 32 == 0, "a grid sum's first warp must be whole");
    kernels::LabelError* label_error;
    unsigned char* scratch;  // grids only
    __device__ int thread() const { return static_cast<int>(blockIdx.x * Threads + threadIdx.x); }
    __device__ int threads() const { return static_cast<int>(gridDim.x * Threads); }
    __device__ void sync() const {
        if (gridDim.x == 1)
            __syncthreads();
        else
            cooperative_groups::this_grid().sync();
    }
    template <class T>
    __device__ T sum(T v) const {
        static_assert(sizeof(T) <= 16);
        using Reduce = cub::BlockReduce<T, Threads>;
        __shared__ typename Reduce::TempStorage temp;
        __shared__ T total;
        const T block_total = Reduce(temp).Sum(v);
        if (gridDim.x == 1) {
            if (threadIdx.x == 0) total = block_total;
            __syncthreads();
            const T out = total;
            __syncthreads();  // temp and total are free for the next sum
            return out;
        }
        if (threadIdx.x == 0) *reinterpret_cast<T*>(scratch + 16 * blockIdx.x) = block_total;
        sync();
        if (threadIdx.x < 32) {  // the first warp of each block adds the slots: lane l takes l, l + 32, ...
            T part = 0;
            for (unsigned b = threadIdx.x; b < gridDim.x; b += 32) part += *reinterpret_cast<const T*>(scratch + 16 * b);
            for (int offset = 16; offset > 0; offset /= 2) part += __shfl_down_sync(0xffffffffu, part, offset);
            if (threadIdx.x == 0) total = part;
        }
        sync();  // the slots (and temp) are free for the next sum; total is written
        return total;  // read before the next sum can write it: that write follows its grid barrier
    }
    __device__ void report_label(long long index, long long value, long long classes, const kernels::LabelSite& site) const {
        if (atomicCAS(&label_error->flag, 0, 1) == 0) {
            label_error->index = index;
            label_error->value = value;
            label_error->classes = classes;
            label_error->site = site;
        }
    }
};

// A block functor run by a team of Threads-thread blocks: one block, or a cooperative grid.
template <int Threads, class F>
__global__ void __launch_bounds__(Threads) for_team(F f, kernels::LabelError* label_error, unsigned char* scratch) {
    f.block(DeviceTeam<Threads>{label_error, scratch});
}

}  // namespace detail

}  // namespace minigrad
