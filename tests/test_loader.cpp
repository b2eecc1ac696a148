// DataLoader (batches, reproducible shuffling, reusable buffers, feeding a StepGraph) and metrics.
#include <cstdlib>
#include <new>
#include <numeric>

#include "emulated_graphs.hpp"
#include "helpers.hpp"
#include "iris.hpp"

// Counts this thread's operator new calls, so a test can say "iterating allocates nothing on the host".
// (GCC's -Wmismatched-new-delete cannot see that this new and delete are a matched replacement pair.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static thread_local std::uint64_t heap_allocs = 0;
void* operator new(std::size_t bytes) {
    ++heap_allocs;
    if (void* p = std::malloc(bytes ? bytes : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

// rows x cols features where row r holds r * 10 + c, labels r % 3, targets r / 2.
static mg::data::Dataset counting_dataset(std::int64_t rows, std::int64_t cols) {
    mg::data::Dataset ds;
    ds.x = {rows, cols, {}};
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) ds.x.values.push_back(static_cast<float>(r * 10 + c));
        ds.y.push_back(static_cast<std::int32_t>(r % 3));
        ds.targets.push_back(static_cast<float>(r) / 2);
    }
    return ds;
}

// The dataset rows each batch of one epoch holds, read back from the batch tensors (row r is
// recognised by its first feature, r * 10), checking y against the row too.
template <class Loader>
static std::vector<std::int64_t> epoch_rows(Loader& loader, std::vector<std::int64_t>* batch_rows = nullptr) {
    std::vector<std::int64_t> rows;
    for (const auto& [x, y] : loader) {
        const auto xs = x.to_vector();
        const auto ys = y.to_vector();
        const auto cols = x.size(1);
        if (batch_rows) batch_rows->push_back(x.size(0));
        for (std::int64_t k = 0; k < x.size(0); ++k) {
            const auto r = static_cast<std::int64_t>(xs[static_cast<std::size_t>(k * cols)]) / 10;
            for (std::int64_t c = 0; c < cols; ++c) CHECK(xs[static_cast<std::size_t>(k * cols + c)] == static_cast<float>(r * 10 + c));
            if constexpr (std::is_same_v<typename std::decay_t<decltype(y)>::value_type, float>)
                CHECK(ys[static_cast<std::size_t>(k)] == static_cast<float>(r) / 2);
            else
                CHECK(ys[static_cast<std::size_t>(k)] == r % 3);
            rows.push_back(r);
        }
    }
    return rows;
}

static std::vector<std::int64_t> iota(std::int64_t n) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

TEST_CASE("DataLoader: batches in order, a last partial batch unless drop_last") {
    mg::data::DataLoader<mg::Cpu> loader(counting_dataset(10, 3), {.batch_size = 4});
    CHECK(loader.size() == 3);
    std::vector<std::int64_t> batch_rows;
    CHECK(epoch_rows(loader, &batch_rows) == iota(10));
    CHECK(batch_rows == std::vector<std::int64_t>{4, 4, 2});

    mg::data::DataLoader<mg::Cpu> dropping(counting_dataset(10, 3), {.batch_size = 4, .drop_last = true});
    CHECK(dropping.size() == 2);
    batch_rows.clear();
    CHECK(epoch_rows(dropping, &batch_rows) == iota(8));
    CHECK(batch_rows == std::vector<std::int64_t>{4, 4});

    mg::data::DataLoader<mg::Cpu> one(counting_dataset(5, 2), {.batch_size = 100});  // larger than the data: one batch of all
    CHECK(one.size() == 1);
    CHECK(epoch_rows(one) == iota(5));

    mg::data::DataLoader<mg::Cpu, float> regression(counting_dataset(7, 2), {.batch_size = 3});  // float targets
    CHECK(regression.size() == 3);
    CHECK(epoch_rows(regression) == iota(7));
}

TEST_CASE("DataLoader: shuffling repeats from the seed, is numpy's permutation in epoch 0 and differs per epoch") {
    const mg::data::LoaderOptions options{.batch_size = 8, .shuffle = true, .seed = 42};
    mg::data::DataLoader<mg::Cpu> a(counting_dataset(50, 2), options), b(counting_dataset(50, 2), options);
    std::vector<std::vector<std::int64_t>> epochs;
    for (int e = 0; e < 3; ++e) {
        const auto rows = epoch_rows(a);
        CHECK(rows == a.order());
        CHECK(epoch_rows(b) == rows);
        auto sorted = rows;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == iota(50));
        epochs.push_back(rows);
    }
    CHECK(a.epochs() == 3);
    CHECK(epochs[0] == mg::data::legacy_permutation(50, 42));  // train_test_split's permutation, checked against sklearn
    CHECK(epochs[1] != epochs[0]);
    CHECK(epochs[2] != epochs[1]);
    // Epoch 1 continues the generator: it is the second shuffle of one std::mt19937(42).
    std::mt19937 gen(42);
    auto order = iota(50);
    mg::data::shuffle_in_place(order, gen);
    order = iota(50);
    mg::data::shuffle_in_place(order, gen);
    CHECK(epochs[1] == order);

    mg::data::DataLoader<mg::Cpu> other(counting_dataset(50, 2), {.batch_size = 8, .shuffle = true, .seed = 7});
    CHECK(epoch_rows(other) != epochs[0]);
}

TEST_CASE("DataLoader: after the constructor, epochs allocate nothing on the backend or the host") {
    mg::data::DataLoader<mg::Cpu> loader(counting_dataset(30, 4), {.batch_size = 8, .shuffle = true, .seed = 1});
    mg::reset_counters();
    const auto heap_before = heap_allocs;
    float checksum = 0;
    for (int e = 0; e < 3; ++e)
        for (const auto& [x, y] : loader) checksum += x.data()[0] + static_cast<float>(y.data()[0]);
    CHECK(mg::counters().storage_allocs == 0);
    CHECK(heap_allocs == heap_before);
    CHECK(checksum > 0);
    // The counter itself works: a batch kept with clone() allocates.
    for (const auto& batch : loader) (void)batch.x.clone();
    CHECK(mg::counters().storage_allocs + (heap_allocs - heap_before) > 0);
}

TEST_CASE("DataLoader shards: each shard is a contiguous slice of every global batch, the same shuffle on every shard") {
    // 3 shards, batches of 6 over 22 rows: three full batches (2 rows a shard), then a last of 4 split 1, 1, 2.
    const mg::data::LoaderOptions whole{.batch_size = 6, .shuffle = true, .seed = 3};
    mg::data::DataLoader<mg::Cpu> reference(counting_dataset(22, 2), whole);
    std::vector<std::int64_t> whole_batches;
    const auto all_rows = epoch_rows(reference, &whole_batches);
    CHECK(whole_batches == std::vector<std::int64_t>{6, 6, 6, 4});

    std::vector<std::vector<std::int64_t>> shard_rows, shard_batches(3);
    for (std::int64_t s = 0; s < 3; ++s) {
        auto options = whole;
        options.num_shards = 3;
        options.shard = s;
        mg::data::DataLoader<mg::Cpu> shard(counting_dataset(22, 2), options);
        CHECK(shard.size() == reference.size());  // every shard steps as often: the collectives line up
        shard_rows.push_back(epoch_rows(shard, &shard_batches[static_cast<std::size_t>(s)]));
        CHECK(shard.order() == reference.order());
    }
    CHECK(shard_batches[0] == std::vector<std::int64_t>{2, 2, 2, 1});
    CHECK(shard_batches[1] == std::vector<std::int64_t>{2, 2, 2, 1});
    CHECK(shard_batches[2] == std::vector<std::int64_t>{2, 2, 2, 2});
    // Batch b of the whole loader is shard 0's rows of b, then shard 1's, then shard 2's.
    std::vector<std::int64_t> interleaved;
    std::vector<std::size_t> next(3, 0);
    for (std::size_t b = 0; b < whole_batches.size(); ++b)
        for (std::size_t s = 0; s < 3; ++s)
            for (std::int64_t k = 0; k < shard_batches[s][b]; ++k) interleaved.push_back(shard_rows[s][next[s]++]);
    CHECK(interleaved == all_rows);

    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(20, 2), {.batch_size = 6, .num_shards = 3, .shard = 0}); }) ==
          "DataLoader: the last batch has 2 rows, fewer than num_shards 3, so some shard would get none; set drop_last = true or pick "
          "another batch_size");
    CHECK_NOTHROW(mg::data::DataLoader<mg::Cpu>(counting_dataset(20, 2), {.batch_size = 6, .drop_last = true, .num_shards = 3, .shard = 2}));
    // A batch_size near the int64 limit over two shards: the shard's rows are computed without
    // overflow (rows * (shard + 1) was 2^63, undefined; UBSan in the asan build).
    for (std::int64_t s = 0; s < 2; ++s) {
        mg::data::DataLoader<mg::Cpu> huge(counting_dataset(20, 2), {.batch_size = std::int64_t{1} << 62, .num_shards = 2, .shard = s});
        std::vector<std::int64_t> batches;
        const auto rows = epoch_rows(huge, &batches);
        CHECK(batches == std::vector<std::int64_t>{10});
        std::vector<std::int64_t> expected(10);
        for (std::int64_t k = 0; k < 10; ++k) expected[static_cast<std::size_t>(k)] = 10 * s + k;
        CHECK(rows == expected);
    }
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(20, 2), {.batch_size = 5, .num_shards = 2, .shard = 0}); }) ==
          "DataLoader: batch_size 5 does not divide among num_shards 2; pick a batch size that is a multiple of the number of processes");
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(20, 2), {.batch_size = 4, .num_shards = 2, .shard = 2}); }) ==
          "DataLoader: shard 2 of num_shards 2: expected num_shards >= 1 and 0 <= shard < num_shards");
}

TEST_CASE("DataLoader: bad settings and bad datasets are clear errors") {
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(4, 2), {.batch_size = 0}); }) ==
          "DataLoader: batch_size is 0, expected at least 1");
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(4, 2), {.batch_size = -3}); }) ==
          "DataLoader: batch_size is -3, expected at least 1");
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(4, 2), {.batch_size = 5, .drop_last = true}); }) ==
          "DataLoader: batch_size 5 is larger than the dataset's 4 rows and drop_last is set, so every epoch would be empty");
    CHECK(error_message([] { mg::data::DataLoader<mg::Cpu>(counting_dataset(0, 3), {.batch_size = 2}); }) ==
          "DataLoader: the dataset has no rows");
    auto short_labels = counting_dataset(4, 2);
    short_labels.y.pop_back();
    CHECK(error_message([&] { mg::data::DataLoader<mg::Cpu>(short_labels, {.batch_size = 2}); }) ==
          "DataLoader: the dataset has 4 rows of features but 3 labels");
    auto no_labels = counting_dataset(4, 2);
    no_labels.y.clear();
    CHECK(error_message([&] { mg::data::DataLoader<mg::Cpu>(no_labels, {.batch_size = 2}); }) ==
          "DataLoader: the dataset has 4 rows of features but 0 labels (Dataset::y; for float targets use DataLoader<B, float>)");
    auto no_targets = counting_dataset(4, 2);
    no_targets.targets.clear();
    CHECK(error_message([&] { mg::data::DataLoader<mg::Cpu, float>(no_targets, {.batch_size = 2}); }) ==
          "DataLoader: the dataset has 4 rows of features but 0 targets (Dataset::targets; read_csv fills them with label_kind = "
          "LabelKind::number; for class labels use DataLoader<B, std::int32_t>)");
    auto bad_matrix = counting_dataset(4, 2);
    bad_matrix.x.values.pop_back();
    CHECK(error_message([&] { mg::data::DataLoader<mg::Cpu>(bad_matrix, {.batch_size = 2}); }) ==
          "DataLoader: the matrix says 4 rows x 2 columns but holds 7 values");
}

TEST_CASE("DataLoader::into fills given tensors, and refuses tensors some batch would not fit, changing nothing") {
    const mg::data::LoaderOptions options{.batch_size = 4, .shuffle = true, .seed = 3};
    mg::data::DataLoader<mg::Cpu> loader(counting_dataset(10, 3), options);
    auto x = mg::Tensor<mg::Cpu>::empty({4, 3});
    auto y = mg::Tensor<mg::Cpu, std::int32_t>::empty({4});
    CHECK(error_message([&] { (void)loader.into(x, y); }) ==
          "DataLoader::into: the last batch has 2 rows and the others 4, so not every batch fits tensors of one shape; a captured "
          "StepGraph needs one batch shape: set LoaderOptions::drop_last = true");
    CHECK(loader.epochs() == 0);

    auto dropping_options = options;
    dropping_options.drop_last = true;
    mg::data::DataLoader<mg::Cpu> dropping(counting_dataset(10, 3), dropping_options), reference(counting_dataset(10, 3), dropping_options);
    auto wide = mg::Tensor<mg::Cpu>::empty({4, 5});
    CHECK(error_message([&] { (void)dropping.into(wide, y); }) ==
          "DataLoader::into: argument #1 'x' has shape [4, 5], expected [4, 3] (batch_size x features)");
    auto long_y = mg::Tensor<mg::Cpu, std::int32_t>::empty({8});
    CHECK(error_message([&] { (void)dropping.into(x, long_y); }) == "DataLoader::into: argument #2 'y' has shape [8], expected [4]");
    CHECK(dropping.epochs() == 0);

    // The failed calls drew nothing: the epoch matches a fresh loader's, batch for batch, in the given tensors.
    const auto expected = epoch_rows(reference);
    std::vector<std::int64_t> rows;
    std::int64_t batches = 0;
    for (const auto& batch : dropping.into(x, y)) {
        CHECK(batch.x.data() == x.data());
        const auto xs = x.to_vector();
        for (std::int64_t k = 0; k < 4; ++k) rows.push_back(static_cast<std::int64_t>(xs[static_cast<std::size_t>(k * 3)]) / 10);
        ++batches;
    }
    CHECK(batches == 2);
    CHECK(rows == expected);
}

// Iris, scaled, for a classification step fed by a loader.
template <class B>
struct IrisBatches {
    examples::IrisMLP<B> model;
    mg::optim::SGD<B, float> opt;
    mg::nn::CrossEntropyLoss loss_fn;
    explicit IrisBatches(mg::Generator& gen) : model(10, gen), opt(model.parameters(), {.lr = 0.1, .momentum = 0.9}) {}
    void step(const mg::Tensor<B>& x, const mg::Tensor<B, std::int32_t>& y, mg::LossLog& log) {
        auto loss = loss_fn(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        log.record(loss);
    }
};

static mg::data::Dataset scaled_iris() {
    auto iris = mg::data::read_csv(std::string(MINIGRAD_DATA_DIR) + "/iris.csv", {.label = "species"});
    mg::data::MinMaxScaler scaler;
    iris.x = scaler.fit_transform(iris.x);
    return iris;
}

TEST_CASE("DataLoader feeds a captured StepGraph: the same losses and weights as eager steps over the same batches") {
    const mg::data::LoaderOptions options{.batch_size = 32, .shuffle = true, .seed = 5, .drop_last = true};
    mg::Generator eager_gen(42), graph_gen(42);
    IrisBatches<mg::Cpu> eager(eager_gen);
    IrisBatches<EmulatedGraphs> graphed(graph_gen);
    mg::data::DataLoader<mg::Cpu> eager_loader(scaled_iris(), options);
    mg::data::DataLoader<EmulatedGraphs> graph_loader(scaled_iris(), options);
    mg::LossLog eager_log, graph_log;

    auto x = mg::Tensor<EmulatedGraphs>::empty({32, 4});
    auto y = mg::Tensor<EmulatedGraphs, std::int32_t>::empty({32});
    mg::StepGraph<EmulatedGraphs> graph([&] { graphed.step(x, y, graph_log); });
    for (int epoch = 0; epoch < 5; ++epoch) {
        for (const auto& [bx, by] : eager_loader) eager.step(bx, by, eager_log);
        for (const auto& batch : graph_loader.into(x, y)) (void)batch, graph.replay();
    }
    CHECK(graph.uses_graph());
    CHECK(graph.replays() == 5 * 4);
    CHECK(eager_log.size() == 20);
    const auto losses = eager_log.values();
    CHECK(graph_log.values() == losses);
    CHECK(losses.front() != losses.back());  // the batches did change between replays
    CHECK(graphed.model.parameter_values() == eager.model.parameter_values());

    // Loading a batch inside the captured step is refused: the copy must be made before replay().
    mg::StepGraph<EmulatedGraphs> loading([&] {
        for (const auto& batch : graph_loader.into(x, y)) (void)batch;
        graphed.step(x, y, graph_log);
    });
    loading.replay();
    CHECK(error_message([&] { loading.replay(); }) == "EmulatedGraphs: copying host memory in (its source may be gone when the graph replays) inside a captured step");
}

TEST_CASE("metrics on host vectors: accuracy, confusion_matrix, mse, mae") {
    const std::vector<std::int32_t> pred = {0, 2, 1, 1, 0}, target = {0, 1, 1, 2, 0};
    CHECK(mg::metrics::accuracy(pred, target) == doctest::Approx(3.0 / 5));
    const auto cm = mg::metrics::confusion_matrix(pred, target, 3);
    CHECK(cm.classes == 3);
    // Each row sums to that class's count in target, each column to its count in pred.
    for (std::int32_t t = 0; t < 3; ++t) {
        std::int64_t row = 0, column = 0;
        for (std::int32_t p = 0; p < 3; ++p) row += cm.at(t, p), column += cm.at(p, t);
        CHECK(row == std::count(target.begin(), target.end(), t));
        CHECK(column == std::count(pred.begin(), pred.end(), t));
    }
    CHECK(cm.at(0, 0) == 2);
    CHECK(cm.at(1, 2) == 1);  // true 1 predicted 2
    CHECK(cm.at(2, 1) == 1);
    CHECK(cm.at(1, 1) == 1);

    const std::vector<float> p = {1, 2, 4}, t = {1, 4, 1};
    CHECK(mg::metrics::mse(p, t) == doctest::Approx((0.0 + 4 + 9) / 3));
    CHECK(mg::metrics::mae(p, t) == doctest::Approx((0.0 + 2 + 3) / 3));

    CHECK(error_message([&] { mg::metrics::accuracy(pred, std::vector<std::int32_t>{0}); }) == "accuracy: 'pred' has 5 values but 'target' has 1");
    CHECK(error_message([] { mg::metrics::accuracy(std::vector<std::int32_t>{}, std::vector<std::int32_t>{}); }) ==
          "accuracy: 'pred' and 'target' are empty; there is nothing to score");
    CHECK(error_message([&] { mg::metrics::mse(p, std::vector<float>{1, 2}); }) == "mse: 'pred' has 3 values but 'target' has 2");
    CHECK(error_message([&] { mg::metrics::mae(std::vector<float>{}, std::vector<float>{}); }) ==
          "mae: 'pred' and 'target' are empty; there is nothing to score");
    CHECK(error_message([&] { mg::metrics::confusion_matrix(pred, target, 2); }) ==
          "confusion_matrix: pred[1] is class 2, expected a class in [0, 2)");
    CHECK(error_message([&] { mg::metrics::confusion_matrix(std::vector<std::int32_t>{0}, std::vector<std::int32_t>{-1}, 2); }) ==
          "confusion_matrix: target[0] is class -1, expected a class in [0, 2)");
    CHECK(error_message([&] { mg::metrics::confusion_matrix(pred, target, 0); }) == "confusion_matrix: classes is 0, expected 1..4096");
}

TEST_CASE("metrics on tensors agree with the host versions and read the host once") {
    mg::Generator gen(11);
    auto logits = mg::Tensor<mg::Cpu>::uniform({40, 5}, -1, 1, gen);
    std::vector<std::int32_t> target(40), argmax(40);
    const auto values = logits.to_vector();
    for (std::size_t r = 0; r < 40; ++r) {
        argmax[r] = static_cast<std::int32_t>(std::max_element(values.begin() + r * 5, values.begin() + r * 5 + 5) - (values.begin() + r * 5));
        target[r] = static_cast<std::int32_t>((r * 7) % 5);
    }
    auto target_t = mg::Tensor<mg::Cpu, std::int32_t>::from(target);
    mg::reset_counters();
    const double acc = mg::metrics::accuracy(logits, target_t);
    CHECK(mg::counters().host_reads == 1);
    CHECK(acc == mg::metrics::accuracy(argmax, target));
    CHECK(acc > 0);

    auto pred = mg::Tensor<mg::Cpu>::uniform({6, 7}, -2, 2, gen), truth = mg::Tensor<mg::Cpu>::uniform({6, 7}, -2, 2, gen);
    const auto pv = pred.to_vector(), tv = truth.to_vector();
    mg::reset_counters();
    CHECK(mg::metrics::mse(pred, truth) == doctest::Approx(mg::metrics::mse(pv, tv)).epsilon(1e-12));
    CHECK(mg::metrics::mae(pred, truth) == doctest::Approx(mg::metrics::mae(pv, tv)).epsilon(1e-12));
    CHECK(mg::counters().host_reads == 2);

    CHECK(error_message([&] { mg::metrics::accuracy(logits, mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{1, 2})); }) ==
          "accuracy: argument #2 'target' has shape [2], expected [40] (a class per row of 'logits', shape [40, 5])");
    // A target outside [0, classes) is refused as cross_entropy refuses it, not counted as a miss
    // (this returned 0.3333 for the identity's rows).
    const auto eye = mg::Tensor<mg::Cpu>::from(std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1}).reshape({3, 3});
    CHECK(error_message([&] { mg::metrics::accuracy(eye, mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 5, -1})); }) ==
          "accuracy: argument #2 'target' has class 5 at index 1, expected a class in [0, 3)");
    CHECK(error_message([&] { mg::metrics::accuracy(eye, mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 1, -1})); }) ==
          "accuracy: argument #2 'target' has class -1 at index 2, expected a class in [0, 3)");
    CHECK(mg::metrics::accuracy(eye, mg::Tensor<mg::Cpu, std::int32_t>::from(std::vector<std::int32_t>{0, 1, 1})) == doctest::Approx(2.0 / 3));
    CHECK(error_message([&] { mg::metrics::accuracy(mg::Tensor<mg::Cpu>::from(std::vector<float>{1, 2}), target_t); }) ==
          "accuracy: argument #1 'logits' has shape [2], expected [rows, classes]");
    CHECK(error_message([&] { mg::metrics::mse(pred, mg::Tensor<mg::Cpu>::zeros({7, 6})); }) ==
          "mse: argument #2 'target' has shape [7, 6], expected the shape of argument #1 'pred', [6, 7]");
    CHECK(error_message([&] { mg::metrics::mae(mg::Tensor<mg::Cpu>::zeros({0}), mg::Tensor<mg::Cpu>::zeros({0})); }) ==
          "mae: 'pred' and 'target' are empty (shape [0]); there is nothing to score");
}
