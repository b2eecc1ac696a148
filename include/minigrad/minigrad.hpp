// minigrad: a header-only tensor and reverse-mode autograd library with a compile-time backend.
// Include this one header. CpuBackend needs only a C++20 compiler and fmt; CudaBackend is added
// when the including file is compiled by nvcc.
#pragma once

#include "autograd.hpp"
#include "backend/cpu.hpp"
#include "counters.hpp"
#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/loader.hpp"
#include "data/scaler.hpp"
#include "data/split.hpp"
#include "error.hpp"
#include "capture/graph.hpp"
#include "io/safetensors.hpp"
#include "loss_log.hpp"
#include "metrics.hpp"
#include "nn/activation.hpp"
#include "nn/conv.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/flatten.hpp"
#include "nn/layer_norm.hpp"
#include "nn/linear.hpp"
#include "nn/loss.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"
#include "ops/broadcast.hpp"
#include "ops/conv.hpp"
#include "ops/dropout.hpp"
#include "ops/elementwise.hpp"
#include "ops/index.hpp"
#include "ops/layer_norm.hpp"
#include "ops/cross_entropy.hpp"
#include "ops/loss.hpp"
#include "ops/matmul.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"
#include "ops/softmax.hpp"
#include "ops/unary.hpp"
#include "optim/adam.hpp"
#include "optim/clip_grad.hpp"
#include "optim/lr_scheduler.hpp"
#include "optim/optimizer.hpp"
#include "optim/rmsprop.hpp"
#include "optim/sgd.hpp"
#include "random.hpp"
#include "shape.hpp"
#include "tensor.hpp"
#include "version.hpp"

#if defined(__CUDACC__)
#include "backend/cuda.cuh"
#ifndef MINIGRAD_HAS_CUDA
#define MINIGRAD_HAS_CUDA 1
#endif
#endif
