// A DataLoader's options for this rank: the same seeded order on every rank, and rank r of W takes
// the contiguous slice r of each global batch (data/loader.hpp, "Shards"). batch_size stays the
// global batch, so a run on 1 rank and on W ranks steps over the same batches.
//
//   mg::data::DataLoader<B> loader(train, mg::dist::shard_options({.batch_size = 64, .shuffle = true, .seed = 42}));
#pragma once

#include "../data/loader.hpp"
#include "mpi.hpp"

namespace minigrad::dist {

inline data::LoaderOptions shard_options(data::LoaderOptions options) {
    const auto& s = detail::require_init("dist::shard_options");
    options.num_shards = s.world_size;
    options.shard = s.rank;
    return options;
}

}  // namespace minigrad::dist
