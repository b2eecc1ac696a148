// mg::dist: data-parallel training over processes, as PyTorch's DistributedDataParallel. Every
// rank holds the model, trains on its shard of each batch and averages gradients before the
// optimizer's step. MPI carries Cpu tensors; NCCL carries Cuda tensors (in files nvcc compiles,
// where <nccl.h> is found). Not part of <minigrad/minigrad.hpp>: only a program that includes
// this header needs MPI (link minigrad::dist). docs/distributed.md has the whole story.
//
//   mg::dist::init();
//   Model model;  mg::dist::broadcast_parameters(model);
//   mg::data::DataLoader<B> loader(train, mg::dist::shard_options({.batch_size = 64, .shuffle = true, .seed = 42}));
//   for (const auto& [x, y] : loader) {
//       auto loss = loss_fn(model(x), y);
//       opt.zero_grad(); loss.backward(); mg::dist::all_reduce_gradients(params); opt.step();
//   }
#pragma once

#include "minigrad.hpp"

#include "dist/bucket.hpp"
#include "dist/mpi.hpp"
#include "dist/shard.hpp"

#if defined(__CUDACC__) && __has_include(<nccl.h>)
#include "dist/nccl.hpp"
#endif
