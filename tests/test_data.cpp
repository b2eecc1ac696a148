// CSV loading, the scikit-learn-compatible split, and the scaler.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

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

TEST_CASE("Dataset::check_classes: every row's label a class of the model, named by row where one is not") {
    auto iris = mg::data::read_csv(iris_path, {.label = "species"});
    CHECK_NOTHROW(iris.check_classes(3, "iris"));
    CHECK(error_message([&] { iris.check_classes(2, "iris"); }) == "iris: row 100 has class 2, expected a class in [0, 2) (the model has 2 outputs)");
    iris.y[7] = -1;
    CHECK(error_message([&] { iris.check_classes(3, "iris"); }) == "iris: row 7 has class -1, expected a class in [0, 3) (the model has 3 outputs)");
    iris.y.clear();
    CHECK(error_message([&] { iris.check_classes(3, "iris"); }) == "iris: the dataset has no class labels (Dataset::y is empty)");
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
    const auto inf = write_csv("inf.csv", "a,b,label\n1,inf,x\n");
    CHECK(error_message([&] { mg::data::read_csv(inf); }) ==
          fmt::format("read_csv: {}:2:3: 'inf' in column 'b' is not a finite number (NaN/Inf are not allowed in the data)", inf));
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

// CSV text read from a string, named "<string>" in messages.
static mg::data::Dataset read_text(const std::string& text, const mg::data::CsvOptions& options = {}) {
    std::istringstream in(text);
    return mg::data::read_csv(in, options, "<string>");
}

TEST_CASE("read_csv refuses a header that names a column twice, the label included") {
    CHECK(error_message([] { read_text("a,label,label\n1,x,y\n"); }) ==
          "read_csv: <string>:1: the header names column 'label' twice: columns 2 and 3");
    CHECK(error_message([] { read_text("a,b,a,label\n1,2,3,x\n"); }) == "read_csv: <string>:1: the header names column 'a' twice: columns 1 and 3");
    CHECK(error_message([] { read_text("a,,label\n1,2,x\n"); }) == "read_csv: <string>:1:3: column 2 of the header has no name");
    CHECK(error_message([] { read_text("a,b,label,\n1,2,x,\n"); }) == "read_csv: <string>:1:11: column 4 of the header has no name");
    CHECK(error_message([] { read_text("label\nx\n"); }) == "read_csv: '<string>' has only the label column 'label': no feature columns");
}

TEST_CASE("read_csv refuses a directory, a binary file and runaway lines instead of reading them") {
    const auto dir = std::filesystem::temp_directory_path().string();
    CHECK(error_message([&] { mg::data::read_csv(dir); }) == fmt::format("read_csv: '{}' is a directory, expected a CSV file", dir));
    CHECK(error_message([] { mg::data::read_csv("/dev/zero"); }) == "read_csv: '/dev/zero' is a device, expected a CSV file (a regular file or a pipe)");
    CHECK(error_message([] { read_text(std::string("a,label\n1,x\n2", 13) + std::string(1, '\0') + ",y\n"); }) ==
          "read_csv: <string>:3:2: NUL byte: this is a binary file, not CSV text");
    CHECK(error_message([] { read_text("a,b,label\n1,2,x\n", {.max_line_bytes = 8}); }) ==
          "read_csv: <string>:1: the line is longer than 8 bytes (CsvOptions::max_line_bytes); is this a CSV file?");
    const auto long_line = write_csv("long.csv", "a,label\n" + std::string(2u << 20, '1') + ",x\n");
    CHECK(error_message([&] { mg::data::read_csv(long_line); }) ==
          fmt::format("read_csv: {}:2: the line is longer than 1048576 bytes (CsvOptions::max_line_bytes); is this a CSV file?", long_line));
    std::filesystem::remove(long_line);
    CHECK(error_message([] { read_text("a,label\n1,x\n", {.max_line_bytes = 0}); }) == "read_csv: CsvOptions::max_line_bytes must be at least 1");
    CHECK(error_message([] { read_text("a,label\n1,x\n", {.delimiter = '"'}); }) ==
          "read_csv: CsvOptions::delimiter '\"' cannot be a quote, a line end or NUL");
}

TEST_CASE("read_csv reads a FIFO as a stream once its writer comes") {
    const auto fifo = (std::filesystem::temp_directory_path() / ("minigrad_test_" + std::to_string(::getpid()) + "_fifo")).string();
    std::filesystem::remove(fifo);
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::thread writer([&] { std::ofstream(fifo) << "a,label\n1,x\n2,y\n"; });
    const auto ds = mg::data::read_csv(fifo);
    writer.join();
    CHECK(ds.x.values == std::vector<float>{1, 2});
    CHECK(ds.class_names == std::vector<std::string>{"x", "y"});
    std::filesystem::remove(fifo);
}

TEST_CASE("read_csv strips a UTF-8 byte order mark and accepts CR-only line ends") {
    auto ds = read_text("\xEF\xBB\xBF" "a,label\r1,x\r2,y\r");
    CHECK(ds.feature_names == std::vector<std::string>{"a"});
    CHECK(ds.x.values == std::vector<float>{1, 2});
    CHECK(ds.class_names == std::vector<std::string>{"x", "y"});
}

TEST_CASE("read_csv reads '+5.1', reads underflow as zero, and refuses what a float cannot hold") {
    auto ds = read_text("a,b,c,label\n+5.1,1e-400,-1e-400,x\n1e-50,-3.4e38,0.5,y\n");
    CHECK(ds.x.values[0] == 5.1f);
    CHECK(ds.x.values[1] == 0.0f);
    CHECK(ds.x.values[2] == 0.0f);
    CHECK(std::signbit(ds.x.values[2]));
    CHECK(ds.x.values[3] == 0.0f);
    CHECK(ds.x.values[4] == -3.4e38f);
    CHECK(error_message([] { read_text("a,label\n1e400,x\n"); }) ==
          "read_csv: <string>:2:1: '1e400' in column 'a' is out of float range (largest magnitude 3.4028235e+38)");
    CHECK(error_message([] { read_text("a,label\n-1e39,x\n"); }) ==
          "read_csv: <string>:2:1: '-1e39' in column 'a' is out of float range (largest magnitude 3.4028235e+38)");
    // Just past float's largest value: shown with 6 digits, the limit looked larger than this.
    CHECK(error_message([] { read_text("a,label\n3.4028236e38,x\n"); }) ==
          "read_csv: <string>:2:1: '3.4028236e38' in column 'a' is out of float range (largest magnitude 3.4028235e+38)");
    CHECK(error_message([] { read_text("a,label\n0.000001e400,x\n"); }) ==
          "read_csv: <string>:2:1: '0.000001e400' in column 'a' is out of float range (largest magnitude 3.4028235e+38)");
    CHECK(error_message([] { read_text("a,label\n++5,x\n"); }) == "read_csv: <string>:2:1: '++5' in column 'a' is not a number");
    CHECK(error_message([] { read_text("a,label\n+-5,x\n"); }) == "read_csv: <string>:2:1: '+-5' in column 'a' is not a number");
    CHECK(error_message([] { read_text("a,label\n-nan,x\n"); }) ==
          "read_csv: <string>:2:1: '-nan' in column 'a' is not a finite number (NaN/Inf are not allowed in the data)");
    CHECK(error_message([] { read_text("a,label\n+infinity,x\n"); }) ==
          "read_csv: <string>:2:1: '+infinity' in column 'a' is not a finite number (NaN/Inf are not allowed in the data)");
}

TEST_CASE("read_csv quotes at most 40 bytes of a field in a message, with its size") {
    const std::string huge(10'000'000, '7');
    CHECK(error_message([&] { read_text("a,label\n" + huge + "x,y\n", {.max_line_bytes = 20'000'000}); }) ==
          "read_csv: <string>:2:1: '" + std::string(40, '7') + "'... (10000001 bytes) in column 'a' is not a number");
    CHECK(error_message([] { read_text("a,label\n1\x01\x1b,x\n"); }) == "read_csv: <string>:2:1: '1\\x01\\x1b' in column 'a' is not a number");
    // A cut never splits a UTF-8 character: 39 bytes, then a 2-byte character across byte 40.
    CHECK(error_message([] { read_text("a,label\n" + std::string(39, 'z') + "\xC3\xA9zz,x\n"); }) ==
          "read_csv: <string>:2:1: '" + std::string(39, 'z') + "'... (43 bytes) in column 'a' is not a number");
    CHECK(error_message([] { read_text("a,b,label\n1,2,x\n", {.label = std::string(100, 'L')}); }) ==
          "read_csv: '<string>' has no label column '" + std::string(40, 'L') + "'... (100 bytes); its columns are: a, b, label");
}

TEST_CASE("read_csv: empty fields, an empty label, ragged and trailing delimiters are clear errors") {
    CHECK(error_message([] { read_text("a,b,label\n1,,x\n"); }) == "read_csv: <string>:2:3: the field in column 'b' is empty, expected a number");
    CHECK(error_message([] { read_text("a,b,label\n1,2, \n"); }) == "read_csv: <string>:2:5: the label in column 'label' is empty");
    CHECK(error_message([] { read_text("a,b,label\n1,2,x,\n"); }) == "read_csv: <string>:2: expected 3 fields as in the header, found 4");
    CHECK(error_message([] { read_text("a,b,label\n\n \t\n"); }) == "read_csv: '<string>' has a header but no data rows");
    CHECK(error_message([] { read_text(" \n\t\n"); }) == "read_csv: '<string>' is empty: expected a header row");
}

TEST_CASE("read_csv reads quoted fields: delimiters and doubled quotes inside, spaces kept") {
    auto ds = read_text("\"a\",\"b,c\",label\n\"1\", \"2\" ,\"say \"\"hi\"\", x\"\n3,4,plain\n");
    CHECK(ds.feature_names == std::vector<std::string>{"a", "b,c"});
    CHECK(ds.x.values == std::vector<float>{1, 2, 3, 4});
    CHECK(ds.class_names == std::vector<std::string>{"say \"hi\", x", "plain"});
    // Listed in a message, a name holding the delimiter or a quote is quoted, or "b,c" reads as two.
    CHECK(error_message([] { read_text("a,\"b,c\",\"d\"\"e\",label\n1,2,3,x\n", {.label = "kind"}); }) ==
          "read_csv: '<string>' has no label column 'kind'; its columns are: a, \"b,c\", \"d\"\"e\", label");
    CHECK(error_message([] { read_text("a,label\n1,\"x\n"); }) ==
          "read_csv: <string>:2:3: the quoted field that starts here has no closing quote (a quoted field must end on the line where it starts)");
    CHECK(error_message([] { read_text("a,label\n1,\"x\"y\n"); }) ==
          "read_csv: <string>:2:6: unexpected text after the closing quote of the field at column 3; expected ',' or the end of the line");
    auto tabs = read_text("a\tlabel\n 1\tx y\n", {.delimiter = '\t'});
    CHECK(tabs.x.values == std::vector<float>{1});
    CHECK(tabs.class_names == std::vector<std::string>{"x y"});
}

TEST_CASE("read_csv label_kind: integer class indices into y, float targets into targets") {
    auto ints = read_text("a,label\n1,3\n2,+0\n3,2.0\n4,16777217\n", {.label_kind = mg::data::LabelKind::integer});
    CHECK(ints.y == std::vector<std::int32_t>{3, 0, 2, 16777217});  // exact past float's 2^24
    CHECK(ints.class_names.empty());
    CHECK(ints.targets.empty());
    auto numbers = read_text("a,target\n1,-2.5\n2,1e3\n", {.label = "target", .label_kind = mg::data::LabelKind::number});
    CHECK(numbers.targets == std::vector<float>{-2.5f, 1000.0f});
    CHECK(numbers.y.empty());
    CHECK(numbers.x.values == std::vector<float>{1, 2});
    // A regression set splits with its targets.
    auto [train, test] = mg::data::train_test_split(numbers, {.test_size = 0.5, .seed = 1});
    CHECK(train.targets.size() == 1);
    CHECK(test.targets.size() == 1);
    CHECK(train.targets[0] + test.targets[0] == -2.5f + 1000.0f);
    CHECK(train.x.values[0] == (train.targets[0] == -2.5f ? 1.0f : 2.0f));
}

TEST_CASE("read_csv label_kind: bad integer classes and bad targets are clear errors") {
    const mg::data::CsvOptions integer{.label_kind = mg::data::LabelKind::integer};
    CHECK(error_message([&] { read_text("a,label\n1,1.5\n", integer); }) ==
          "read_csv: <string>:2:3: '1.5' in label column 'label' is not an integer class index (LabelKind::integer)");
    CHECK(error_message([&] { read_text("a,label\n1,cat\n", integer); }) ==
          "read_csv: <string>:2:3: 'cat' in label column 'label' is not an integer class index (LabelKind::integer)");
    CHECK(error_message([&] { read_text("a,label\n1,nan\n", integer); }) ==
          "read_csv: <string>:2:3: 'nan' in label column 'label' is not an integer class index (LabelKind::integer)");
    CHECK(error_message([&] { read_text("a,label\n1,-1\n", integer); }) ==
          "read_csv: <string>:2:3: '-1' in label column 'label' is a negative class; class indices start at 0");
    CHECK(error_message([&] { read_text("a,label\n1,2147483648\n", integer); }) ==
          "read_csv: <string>:2:3: '2147483648' in label column 'label' is larger than the largest class index 2147483647");
    CHECK(error_message([&] { read_text("a,label\n1,1e400\n", integer); }) ==
          "read_csv: <string>:2:3: '1e400' in label column 'label' is larger than the largest class index 2147483647");
    CHECK(error_message([&] { read_text("a,label\n1, \n", integer); }) == "read_csv: <string>:2:3: the label in column 'label' is empty");
    const mg::data::CsvOptions number{.label_kind = mg::data::LabelKind::number};
    CHECK(error_message([&] { read_text("a,label\n1,inf\n", number); }) ==
          "read_csv: <string>:2:3: 'inf' in column 'label' is not a finite number (NaN/Inf are not allowed in the data)");
    CHECK(error_message([&] { read_text("a,label\n1,x\n", number); }) == "read_csv: <string>:2:3: 'x' in column 'label' is not a number");
    CHECK(error_message([&] { read_text("a,label\n1,1\n", {.label_kind = static_cast<mg::data::LabelKind>(7)}); }) ==
          "read_csv: CsvOptions::label_kind 7 is not classes, integer or number");
}

TEST_CASE("StandardScaler: mean 0 and population std 1 per column, a constant column gets scale 1") {
    mg::data::Matrix train{4, 3, {1, 5, 10, 2, 5, 20, 3, 5, 30, 6, 5, 40}};
    mg::data::StandardScaler scaler;
    const auto scaled = scaler.fit_transform(train);
    for (std::int64_t c = 0; c < 3; ++c) {
        double mean = 0, squares = 0;
        for (std::int64_t r = 0; r < 4; ++r) mean += scaled.at(r, c) / 4.0;
        for (std::int64_t r = 0; r < 4; ++r) squares += (scaled.at(r, c) - mean) * (scaled.at(r, c) - mean) / 4.0;
        CHECK(mean == doctest::Approx(0).scale(1.0));
        CHECK(squares == doctest::Approx(c == 1 ? 0.0 : 1.0));  // column 1 is constant: only centred
    }
    // Column 0: mean 3, population std sqrt(3.5) (ddof 0; with ddof 1 it would be sqrt(14/3)).
    CHECK(scaled.at(3, 0) == doctest::Approx(3 / std::sqrt(3.5)));
    CHECK(scaled.at(0, 1) == 0.0f);
    CHECK(scaler.transform(mg::data::Matrix{1, 3, {3, 6, 25}}).values == std::vector<float>{0, 1, 0});

    // A failed fit changes nothing; errors name the scaler.
    CHECK(error_message([&] { scaler.fit(mg::data::Matrix{2, 3, {1, 2, 3, 4, std::numeric_limits<float>::infinity(), 6}}); }) ==
          "StandardScaler::fit: row 1 column 1 is inf, expected a finite number");
    CHECK(error_message([&] { scaler.fit(mg::data::Matrix{0, 3, {}}); }) == "StandardScaler::fit: the matrix has no rows");
    CHECK(error_message([&] { scaler.fit(mg::data::Matrix{2, 3, {1}}); }) == "StandardScaler::fit: the matrix says 2 rows x 3 columns but holds 1 values");
    CHECK(scaler.transform(mg::data::Matrix{1, 3, {3, 6, 25}}).values == std::vector<float>{0, 1, 0});
    CHECK(error_message([&] { (void)scaler.transform(mg::data::Matrix{1, 2, {1, 2}}); }) ==
          "StandardScaler::transform: the matrix has 2 columns, the scaler was fit on 3");
    CHECK(error_message([] { (void)mg::data::StandardScaler().transform(mg::data::Matrix{1, 1, {1}}); }) ==
          "StandardScaler::transform: call fit() first");
}
