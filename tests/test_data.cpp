// CSV loading, the scikit-learn-compatible split, and the scaler.
#include <filesystem>
#include <fstream>

#include "helpers.hpp"

#ifndef MINIGRAD_DATA_DIR
#error "MINIGRAD_DATA_DIR must name the folder holding iris.csv"
#endif

static const std::string iris_path = std::string(MINIGRAD_DATA_DIR) + "/iris.csv";

static std::string write_csv(const std::string& name, const std::string& text) {
    const auto path = (std::filesystem::temp_directory_path() / ("minigrad_test_" + std::to_string(::getpid()) + "_" + name)).string();
    std::ofstream(path) << text;
    return path;
}

TEST_CASE("read_csv: iris has 150 rows, 4 features and 3 classes in order of appearance") {
    auto iris = mg::data::read_csv(iris_path, {.label = "species"});
    CHECK(iris.size() == 150);
    CHECK(iris.x.cols == 4);
    CHECK(iris.feature_names == std::vector<std::string>{"sepal_length", "sepal_width", "petal_length", "petal_width"});
    CHECK(iris.class_names == std::vector<std::string>{"setosa", "versicolor", "virginica"});
    CHECK(iris.x.at(0, 0) == 5.1f);
    CHECK(iris.y[0] == 0);
    CHECK(iris.y[149] == 2);
}

TEST_CASE("train_test_split gives scikit-learn's rows for seed 42, test_size 0.2") {
    auto [train, test] = mg::data::split_indices(150, {.test_size = 0.2, .seed = 42});
    const std::vector<std::int64_t> expected = {73, 18, 118, 78, 76, 31, 64, 141, 68, 82, 110, 12, 36, 9, 19,
                                                56, 104, 69, 55, 132, 29, 127, 26, 128, 131, 145, 108, 143, 45, 30};
    CHECK(test == expected);
    CHECK(train.size() == 120);
    std::vector<bool> seen(150);
    for (auto i : train) seen[static_cast<std::size_t>(i)] = true;
    for (auto i : test) {
        CHECK_FALSE(seen[static_cast<std::size_t>(i)]);
        seen[static_cast<std::size_t>(i)] = true;
    }
    CHECK(std::count(seen.begin(), seen.end(), true) == 150);

    auto iris = mg::data::read_csv(iris_path, {.label = "species"});
    auto [train_set, test_set] = mg::data::train_test_split(iris, {.test_size = 0.2, .seed = 42});
    CHECK(test_set.size() == 30);
    CHECK(test_set.x.at(0, 0) == iris.x.at(73, 0));
    CHECK(test_set.y[1] == iris.y[18]);
}

TEST_CASE("train_test_split rejects sizes that leave a side empty") {
    CHECK(error_message([] { mg::data::split_indices(10, {.test_size = 1.5}); }) == "train_test_split: test_size=1.5 must be in (0, 1)");
    CHECK(error_message([] { mg::data::split_indices(1, {.test_size = 0.5}); }) ==
          "train_test_split: test_size=0.5 of 1 rows leaves 1 test and 0 train rows; both must be at least 1");
}

TEST_CASE("MinMaxScaler maps the training range to [0, 1] and applies it to new rows") {
    mg::data::Matrix train{3, 2, {0, 10, 5, 10, 10, 10}};
    mg::data::MinMaxScaler scaler;
    auto scaled = scaler.fit_transform(train);
    CHECK(scaled.values == std::vector<float>{0, 0, 0.5f, 0, 1, 0});  // constant column: scale 1, as sklearn
    mg::data::Matrix test{1, 2, {20, 12}};
    CHECK(scaler.transform(test).values == std::vector<float>{2, 2});
    CHECK(error_message([&] { scaler.transform(mg::data::Matrix{1, 3, {1, 2, 3}}); }) ==
          "MinMaxScaler::transform: the matrix has 3 columns, the scaler was fit on 2");
}

TEST_CASE("read_csv errors say file:line:column and what was wrong") {
    CHECK(error_message([] { mg::data::read_csv("/nonexistent/iris.csv"); }) == "read_csv: cannot open '/nonexistent/iris.csv': No such file or directory");
    const auto empty = write_csv("empty.csv", "");
    CHECK(error_message([&] { mg::data::read_csv(empty); }) == fmt::format("read_csv: '{}' is empty: expected a header row", empty));
    const auto header_only = write_csv("header.csv", "a,b,label\n");
    CHECK(error_message([&] { mg::data::read_csv(header_only); }) == fmt::format("read_csv: '{}' has a header but no data rows", header_only));
    const auto ragged = write_csv("ragged.csv", "a,b,label\n1,2,x\n3,y\n");
    CHECK(error_message([&] { mg::data::read_csv(ragged); }) == fmt::format("read_csv: {}:3: expected 3 fields as in the header, found 2", ragged));
    const auto text = write_csv("text.csv", "a,b,label\n1,2,x\n3,abc,y\n");
    CHECK(error_message([&] { mg::data::read_csv(text); }) == fmt::format("read_csv: {}:3:3: 'abc' in column 'b' is not a number", text));
    const auto nan = write_csv("nan.csv", "a,b,label\n1,nan,x\n");
    CHECK(error_message([&] { mg::data::read_csv(nan); }) ==
          fmt::format("read_csv: {}:2:3: 'nan' in column 'b' is not a finite number (NaN/Inf are not allowed in the data)", nan));
    const auto inf = write_csv("inf.csv", "a,b,label\n1e39,2,x\n");
    CHECK(error_message([&] { mg::data::read_csv(inf); }).find("'1e39' in column 'a' is not a finite number") != std::string::npos);
    CHECK(error_message([&] { mg::data::read_csv(iris_path, {.label = "kind"}); }) ==
          fmt::format("read_csv: '{}' has no label column 'kind'; its columns are: sepal_length, sepal_width, petal_length, petal_width, species",
                      iris_path));
    for (const auto& p : {empty, header_only, ragged, text, nan, inf}) std::filesystem::remove(p);
}

TEST_CASE("read_csv accepts CRLF line ends, blank lines and spaces around fields") {
    const auto path = write_csv("crlf.csv", "a, b ,label\r\n1, 2 ,cat\r\n\r\n3,4,dog\r\n");
    auto ds = mg::data::read_csv(path);
    CHECK(ds.size() == 2);
    CHECK(ds.feature_names == std::vector<std::string>{"a", "b"});
    CHECK(ds.x.values == std::vector<float>{1, 2, 3, 4});
    CHECK(ds.y == std::vector<std::int32_t>{0, 1});
    std::filesystem::remove(path);
}
