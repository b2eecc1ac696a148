// DataLoader<B, Y>: mini-batches of a Dataset as tensors on backend B, an epoch per range-for.
//
//   mg::data::DataLoader<mg::Cpu> loader(train, {.batch_size = 64, .shuffle = true, .seed = 42});
//   for (int epoch = 0; epoch < 30; ++epoch)
//       for (const auto& [x, y] : loader) { ... }   // x is (rows, features), y is (rows)
//
// Y is the label type: std::int32_t takes Dataset::y (class indices), float takes Dataset::targets
// (regression). The backend is a template parameter, as for Tensor, so a batch is already where the
// model is.
//
// Order. Each begin() starts an epoch. With shuffle, epoch k's order is the (k+1)-th call of
// numpy.random.RandomState(seed).permutation(rows): one std::mt19937 seeded once, and for each
// epoch a Fisher-Yates over 0..rows-1 written out in data/split.hpp (shuffle_in_place), so the same
// seed gives the same batches with every compiler and standard library. Epoch 0 is the permutation
// train_test_split uses for that seed. Without shuffle the order is 0..rows-1.
//
// Buffers. The batch tensors a loader yields are its own and are overwritten by the next batch
// (keep one with clone()). They and the host staging buffer are made in the constructor: iterating
// allocates nothing, host or backend, in any epoch. A batch is gathered on the host and uploaded
// with one B::upload per tensor; on CUDA that is a cudaMemcpyAsync on the device's stream, ordered
// after the work already launched (which may still read the previous batch) and with no sync.
//
// A captured StepGraph reads its inputs from fixed tensors, so a graph is fed with into(x, y):
// each batch is uploaded into the given tensors before the loop body runs, outside any capture.
//
//   auto x = mg::Tensor<B>::empty({64, features}); auto y = mg::Tensor<B, std::int32_t>::empty({64});
//   mg::StepGraph<B> graph([&] { /* the step, reading x and y */ });
//   for (auto& batch : loader.into(x, y)) graph.replay();
//
// A graph needs every batch to have one shape: set drop_last (or pick a batch size that divides the
// rows). into() refuses tensors that some batch of the epoch would not fit.
//
// Shards (data-parallel training, dist/). With num_shards W > 1, batch_size is the global batch:
// every shard draws the same order (the same seed), and shard s yields the contiguous slice s of
// each global batch, rows [s*R/W, (s+1)*R/W) of a batch of R rows. Every shard then has the same
// number of batches per epoch (the collectives of a step line up), and when R divides by W the mean
// of the shards' mean-loss gradients is the whole batch's gradient. batch_size must divide by W; a
// last batch that does not is split as evenly as it goes (its shards' means are then weighted
// slightly unequally, as with PyTorch's uneven inputs), and one with fewer rows than shards is
// refused: set drop_last.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "../tensor.hpp"
#include "dataset.hpp"
#include "split.hpp"

namespace minigrad::data {

struct LoaderOptions {
    std::int64_t batch_size = 1;
    bool shuffle = false;
    std::uint32_t seed = 0;  // the std::mt19937 seed for shuffling
    bool drop_last = false;  // drop the last batch if it is smaller than batch_size
    std::int64_t num_shards = 1;  // processes sharing each batch (dist::shard_options fills these two)
    std::int64_t shard = 0;       // which slice of each batch this loader yields, 0..num_shards-1
};

template <class B, class Y = std::int32_t>
class DataLoader {
    static_assert(std::is_same_v<Y, std::int32_t> || std::is_same_v<Y, float>,
                  "minigrad: DataLoader<B, Y> yields class labels (Y = std::int32_t, from Dataset::y) or float targets "
                  "(Y = float, from Dataset::targets)");

  public:
    struct Batch {
        Tensor<B> x;     // (rows, features)
        Tensor<B, Y> y;  // (rows)
    };

    // The dataset is taken by value: move it in to avoid a copy.
    DataLoader(Dataset dataset, const LoaderOptions& options, int device = B::current_device())
        : dataset_(std::move(dataset)), options_(options), device_(device), gen_(options.seed) {
        if (options_.batch_size < 1) detail::fail<ValueError>("DataLoader: batch_size is {}, expected at least 1", options_.batch_size);
        if (options_.num_shards < 1 || options_.shard < 0 || options_.shard >= options_.num_shards) {
            detail::fail<ValueError>("DataLoader: shard {} of num_shards {}: expected num_shards >= 1 and 0 <= shard < num_shards",
                                     options_.shard, options_.num_shards);
        }
        if (options_.batch_size % options_.num_shards != 0) {
            detail::fail<ValueError>("DataLoader: batch_size {} does not divide among num_shards {}; pick a batch size that is a multiple "
                                     "of the number of processes",
                                     options_.batch_size, options_.num_shards);
        }
        dataset_.check("DataLoader");
        const std::int64_t rows = dataset_.size();
        if (rows == 0) detail::fail<ValueError>("DataLoader: the dataset has no rows");
        if (static_cast<std::int64_t>(labels().size()) != rows) {
            if constexpr (std::is_same_v<Y, float>) {
                detail::fail<ShapeError>("DataLoader: the dataset has {} rows of features but {} targets (Dataset::targets; read_csv fills "
                                         "them with label_kind = LabelKind::number; for class labels use DataLoader<B, std::int32_t>)",
                                         rows, labels().size());
            } else {
                detail::fail<ShapeError>("DataLoader: the dataset has {} rows of features but {} labels (Dataset::y; for float "
                                         "targets use DataLoader<B, float>)",
                                         rows, labels().size());
            }
        }
        full_batches_ = rows / options_.batch_size;
        tail_rows_ = options_.drop_last ? 0 : rows % options_.batch_size;
        if (full_batches_ == 0 && tail_rows_ == 0) {
            detail::fail<ValueError>("DataLoader: batch_size {} is larger than the dataset's {} rows and drop_last is set, so every "
                                     "epoch would be empty",
                                     options_.batch_size, rows);
        }
        if (tail_rows_ > 0 && tail_rows_ < options_.num_shards) {
            detail::fail<ValueError>("DataLoader: the last batch has {} rows, fewer than num_shards {}, so some shard would get none; "
                                     "set drop_last = true or pick another batch_size",
                                     tail_rows_, options_.num_shards);
        }
        const std::int64_t cols = dataset_.x.cols;
        const std::int64_t full_rows = shard_range(options_.batch_size).second, tail_shard = shard_range(tail_rows_).second;
        if (full_batches_ > 0) full_ = {Tensor<B>::empty({full_rows, cols}, device_), Tensor<B, Y>::empty({full_rows}, device_)};
        if (tail_rows_ > 0) tail_ = {Tensor<B>::empty({tail_shard, cols}, device_), Tensor<B, Y>::empty({tail_shard}, device_)};
        const std::int64_t staged = full_batches_ > 0 ? full_rows : tail_shard;
        x_host_.resize(static_cast<std::size_t>(staged * cols));
        y_host_.resize(static_cast<std::size_t>(staged));
        order_.resize(static_cast<std::size_t>(rows));
        std::iota(order_.begin(), order_.end(), 0);
    }

    // Batches per epoch.
    std::int64_t size() const { return full_batches_ + (tail_rows_ > 0 ? 1 : 0); }
    std::int64_t batch_size() const { return options_.batch_size; }
    // Epochs started so far (begin() calls).
    std::int64_t epochs() const { return epochs_; }
    const Dataset& dataset() const { return dataset_; }
    const LoaderOptions& options() const { return options_; }
    // The rows of the current epoch, in batch order.
    const std::vector<std::int64_t>& order() const { return order_; }

    class Iterator {
      public:
        const Batch& operator*() const { return *out_; }
        const Batch* operator->() const { return out_; }
        Iterator& operator++() {
            if (++index_ < loader_->size()) out_ = loader_->load(index_, target_);
            return *this;
        }
        bool operator==(const Iterator& other) const { return index_ == other.index_; }
        // The index of this batch in the epoch.
        std::int64_t index() const { return index_; }

      private:
        friend class DataLoader;
        Iterator(DataLoader* loader, std::int64_t index, Batch* target) : loader_(loader), index_(index), target_(target) {
            if (index_ < loader_->size()) out_ = loader_->load(index_, target_);
        }
        DataLoader* loader_;
        std::int64_t index_;
        Batch* target_;  // the tensors to fill (into()), or null for the loader's own
        const Batch* out_ = nullptr;
    };

    // Starts the next epoch and loads its first batch.
    Iterator begin() { return start_epoch(nullptr); }
    Iterator end() { return Iterator(this, size(), nullptr); }

    // An epoch that writes each batch into `x` and `y` (e.g. a StepGraph's captured inputs).
    class Into {
      public:
        Iterator begin() { return loader_->start_epoch(&target_); }
        Iterator end() { return loader_->end(); }

      private:
        friend class DataLoader;
        Into(DataLoader* loader, Batch target) : loader_(loader), target_(std::move(target)) {}
        DataLoader* loader_;
        Batch target_;
    };

    // Checks now that every batch of an epoch fits x (rows, features) and y (rows); changes nothing
    // if not. With shards, rows is this shard's share of a batch.
    Into into(const Tensor<B>& x, const Tensor<B, Y>& y) {
        const std::int64_t rows = shard_range(full_batches_ > 0 ? options_.batch_size : tail_rows_).second;
        const std::int64_t cols = dataset_.x.cols;
        if (full_batches_ > 0 && tail_rows_ > 0) {
            detail::fail<ShapeError>("DataLoader::into: the last batch has {} rows and the others {}, so not every batch fits tensors of "
                                     "one shape; a captured StepGraph needs one batch shape: set LoaderOptions::drop_last = true",
                                     tail_rows_, options_.batch_size);
        }
        if (x.shape() != Shape{rows, cols}) {
            detail::fail<ShapeError>("DataLoader::into: argument #1 'x' has shape {}, expected {} (batch_size x features)", x.shape(),
                                     Shape{rows, cols});
        }
        if (y.shape() != Shape{rows}) {
            detail::fail<ShapeError>("DataLoader::into: argument #2 'y' has shape {}, expected {}", y.shape(), Shape{rows});
        }
        if (x.device() != device_ || y.device() != device_) {
            detail::fail<DeviceError>("DataLoader::into: the tensors are on {} devices {} and {}, the loader on device {}", B::name,
                                      x.device(), y.device(), device_);
        }
        return Into(this, Batch{x, y});
    }

  private:
    const std::vector<Y>& labels() const {
        if constexpr (std::is_same_v<Y, float>)
            return dataset_.targets;
        else
            return dataset_.y;
    }

    Iterator start_epoch(Batch* target) {
        std::iota(order_.begin(), order_.end(), 0);
        if (options_.shuffle) shuffle_in_place(order_, gen_);
        ++epochs_;
        return Iterator(this, 0, target);
    }

    // Gathers batch `index` of the epoch on the host and uploads it into `target` (or the loader's
    // own tensors); returns what was filled.
    const Batch* load(std::int64_t index, Batch* target) {
        const std::int64_t batch_start = index * options_.batch_size;
        const std::int64_t batch_rows = std::min(options_.batch_size, dataset_.size() - batch_start);
        const auto [offset, rows] = shard_range(batch_rows);
        const std::int64_t start = batch_start + offset;
        Batch& out = target ? *target : (batch_rows == options_.batch_size ? full_ : tail_);
        const std::int64_t cols = dataset_.x.cols;
        const auto& y = labels();
        for (std::int64_t k = 0; k < rows; ++k) {
            const std::int64_t r = order_[static_cast<std::size_t>(start + k)];
            std::copy_n(dataset_.x.values.begin() + r * cols, cols, x_host_.begin() + k * cols);
            y_host_[static_cast<std::size_t>(k)] = y[static_cast<std::size_t>(r)];
        }
        B::upload(out.x.data(), x_host_.data(), static_cast<std::size_t>(rows * cols) * sizeof(float), device_);
        B::upload(out.y.data(), y_host_.data(), static_cast<std::size_t>(rows) * sizeof(Y), device_);
        return &out;
    }

    // This shard's slice of a batch of `rows` rows: {first row within the batch, row count}.
    std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t rows) const {
        // rows * shard / num_shards in 128 bits: rows * (shard + 1) overflows 64 bits for a
        // batch_size of 2^62 over two shards
        __extension__ using wide = __int128;
        const auto at = [&](std::int64_t s) { return static_cast<std::int64_t>(static_cast<wide>(rows) * s / options_.num_shards); };
        const std::int64_t begin = at(options_.shard), end = at(options_.shard + 1);
        return {begin, end - begin};
    }

    Dataset dataset_;
    LoaderOptions options_;
    int device_;
    std::mt19937 gen_;
    std::int64_t full_batches_ = 0, tail_rows_ = 0, epochs_ = 0;
    Batch full_, tail_;  // the loader's own batch tensors: batch_size rows, and the last batch's rows
    std::vector<float> x_host_;
    std::vector<Y> y_host_;
    std::vector<std::int64_t> order_;
};

}  // namespace minigrad::data
