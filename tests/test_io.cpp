// safetensors: round trips, every refusal with its message, checksums that catch every flipped
// bit, atomic saves, Module save/load, SGD state for an exact resume, and files PyTorch wrote
// (tests/data, made by tools/make_safetensors_fixtures.py).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <tuple>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <minigrad/io/safetensors_read.hpp>  // SafetensorsReader and the JSON reader, which a prebuilt build does not parse
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "iris.hpp"
#include "temp_dir.hpp"

// a namespace per file: the unity build compiles several test files as one translation unit
namespace test_io {

namespace fs = std::filesystem;
namespace io = mg::io;
using IrisMLP = examples::IrisMLP<mg::Cpu>;

namespace {

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
// Flips one bit of a file in place (a second flip restores it). No truncating rewrite: ext4
// flushes a file rewritten so to disk, which made a rewrite per flip take milliseconds.
void flip_bit(const fs::path& path, std::size_t byte, int bit) {
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    char c = 0;
    file.seekg(static_cast<std::streamoff>(byte));
    file.get(c);
    c = static_cast<char>(c ^ (1 << bit));
    file.seekp(static_cast<std::streamoff>(byte));
    file.put(c);
}
// A safetensors file by hand: the header's length, the header, then `data`.
std::string raw_file(const std::string& header, const std::string& data = "") {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return out + header + data;
}
std::string load_error(const fs::path& path) {
    return error_message([&] { io::load_safetensors(path); });
}

template <class T>
io::TensorData tensor_data(std::string name, std::vector<std::int64_t> shape, std::vector<T> values) {
    return io::TensorData::from<T>(std::move(name), std::move(shape), values);
}

// A file's header as nlohmann/json reads it, and where its data section starts.
std::pair<nlohmann::json, std::size_t> header_of(const std::string& file) {
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = length << 8 | static_cast<unsigned char>(file[static_cast<std::size_t>(i)]);
    return {nlohmann::json::parse(file.substr(8, length)), 8 + length};
}
// Where tensor `name`'s bytes lie in the file, as its header says: [begin, end).
std::pair<std::size_t, std::size_t> file_range(const nlohmann::json& header, std::size_t data_start, const std::string& name) {
    const auto& offsets = header.at(name).at("data_offsets");
    return {data_start + offsets.at(0).get<std::size_t>(), data_start + offsets.at(1).get<std::size_t>()};
}
// The checksum a header stores for tensor `name`.
std::string stored_crc32(const nlohmann::json& header, const std::string& name) {
    return header.at("__metadata__").at("minigrad.crc32." + name).get<std::string>();
}

// CRC-32 a bit at a time, as its definition reads: the check on io::crc32's tables.
std::uint32_t crc32_bitwise(std::string_view bytes) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (const unsigned char c : bytes) {
        crc ^= c;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}
std::string crc32_text(std::string_view bytes) { return fmt::format("{:08x}", crc32_bitwise(bytes)); }

template <class T>
struct SmallMLP : mg::nn::Module<mg::Cpu, T> {
    mg::nn::Linear<mg::Cpu, T> fc1{4, 6}, fc2{6, 3};
    mg::nn::ReLU relu;
    auto forward(const mg::Tensor<mg::Cpu, T>& x) { return fc2(relu(fc1(x))); }
    MINIGRAD_MODULE(fc1, fc2)
};

}  // namespace

TEST_CASE("save_safetensors and load_safetensors round-trip every dtype, shape and metadata exactly") {
    TempDir dir;
    const auto path = dir / "all.safetensors";
    const std::vector<io::TensorData> tensors = {
        tensor_data<float>("f32", {2, 3}, {1.5f, -2, 3e-38f, 0, -0.0f, 7}),
        tensor_data<double>("f64", {1}, {0.1}),
        tensor_data<std::int32_t>("i32", {}, {-7}),
        tensor_data<std::int64_t>("i64", {2}, {INT64_MIN, INT64_MAX}),
        tensor_data<float>("empty", {0, 5}, {}),
    };
    io::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "ünïcode"}});
    const auto file = io::load_safetensors(path);
    REQUIRE(file.tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {  // in the order written
        CHECK(file.tensors[i].name == tensors[i].name);
        CHECK(file.tensors[i].dtype == tensors[i].dtype);
        CHECK(file.tensors[i].shape == tensors[i].shape);
        CHECK(file.tensors[i].bytes == tensors[i].bytes);
    }
    CHECK(file.metadata == io::Metadata{{"format", "pt"}, {"note", "ünïcode"}});
    CHECK(file.find("i64")->values<std::int64_t>() == std::vector<std::int64_t>{INT64_MIN, INT64_MAX});
    CHECK(error_message([&] { file.find("i64")->values<float>(); }) == "TensorData::values: 'i64' is I64, asked for F32");
    // The data starts 8-aligned, as the reference writer pads its header.
    const auto bytes = read_bytes(path);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    CHECK((8 + header) % 8 == 0);
    CHECK(dir.files() == std::vector<std::string>{"all.safetensors"});  // no temporary left

    SUBCASE("the reader can read one chosen tensor after the header") {
        io::SafetensorsReader reader(path);
        REQUIRE(reader.entries().size() == 5);
        CHECK(reader.metadata().at("format") == "pt");
        CHECK(reader.read(*reader.find("f64")).values<double>() == std::vector<double>{0.1});
        CHECK(reader.find("nope") == nullptr);
    }
}

TEST_CASE("load_safetensors refuses a malformed file with a message naming the file and the entry") {
    TempDir dir;
    const auto path = dir / "bad.safetensors";
    const std::string p = path.string();
    auto refused = [&](const std::string& bytes) {
        write_bytes(path, bytes);
        return load_error(path);
    };
    const std::string f32_2 = R"("dtype":"F32","shape":[2])";
    const std::string eight(8, 'x');

    CHECK(refused("abc") == fmt::format("load_safetensors: '{}' is truncated: 3 bytes, but the header length alone takes 8", p));
    CHECK(refused(raw_file("{}").substr(0, 9)) ==
          fmt::format("load_safetensors: '{}' is truncated: the header length is 2 bytes, but only 1 follow it", p));
    CHECK(refused(raw_file("{")) ==
          fmt::format("load_safetensors: '{}' has a header that is not valid JSON: 'at byte 1: expected a string key'", p));
    CHECK(refused(raw_file("{\"a\xff\":{}}")) ==
          fmt::format("load_safetensors: '{}' has a header that is not valid JSON: 'at byte 3: a string is not valid UTF-8'", p));
    CHECK(refused(raw_file("{\"a\":1} x")).ends_with("'at byte 8: unexpected text after the value'"));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}})")).ends_with("'at byte 29: a number has a leading zero'"));
    CHECK(refused(raw_file(R"({"a":"\ud800"})")).ends_with("'at byte 12: a high surrogate without a low one'"));
    SUBCASE("a huge bad token does not make a huge message") {
        const auto message = refused(raw_file("{\"" + std::string(1'000'000, 'k')));  // an unterminated 1 MB key
        CHECK(message.size() < 600);
        CHECK(message.ends_with("'at byte 1000002: unexpected end of input in a string'"));
    }
    CHECK(refused(raw_file("[1, 2]")) == fmt::format("load_safetensors: '{}' has a malformed header: it is not a JSON object", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[[[1]]],"data_offsets":[0,4]}})")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: it nests deeper than a safetensors header does", p));
    CHECK(refused(raw_file(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0,8]},"w":{)" + f32_2 + R"(,"data_offsets":[0,8]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: the key 'w' appears twice (a duplicate tensor name)", p));
    CHECK(refused(raw_file(R"({"w":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: the key 'dtype' appears twice", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 + R"(,"data_offsets":[4,12]}})", eight + "abcd")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'b' (bytes [4, 12)) overlaps tensor 'a' (bytes [0, 8))", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 + R"(,"data_offsets":[12,20]}})", eight + "abcd" + eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: bytes [8, 12) of the data section belong to no tensor", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]}})", eight + "tail")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: bytes [8, 12) of the data section belong to no tensor", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,12]}})", eight + "abcd")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has 12 bytes of data, but shape [2] of F32 needs 8", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]}})", "abcd")) ==
          fmt::format("load_safetensors: '{}' is truncated: tensor 'a' has data_offsets [0, 8], but the data section has 4 bytes", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[8,0]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has data_offsets [8, 0], which end before they begin", p));
    CHECK(refused(raw_file(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has data_offsets '[0]', expected two non-negative integers", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab")) ==
          fmt::format("load_safetensors: '{}' stores tensor 'a' as dtype 'F8_E4M3', which minigrad does not read (it reads F32, F64, F16, BF16, "
                      "I32, I64)", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,4]}})", "abcd")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has a dtype that is not a string", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has shape '[-2]', whose entries must be non-negative integers", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has shape '[2.0]', whose entries must be non-negative integers", p));
    // 2^32 * 2^32 elements wrap to 0 in 64 bits; with zero offsets a wrapped count would pass.
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has shape '[4294967296,4294967296]', whose element count overflows", p));
    // a zero dim first: the other dims' product still may not overflow
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has shape '[0,4294967296,4294967296]', whose element count overflows", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has shape '[2305843009213693952]', whose byte count overflows", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has the unknown key 'extra' (expected dtype, shape, data_offsets)", p));
    CHECK(refused(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eight)) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' has no 'shape'", p));
    CHECK(refused(raw_file(R"({"a":[1]})")) == fmt::format("load_safetensors: '{}' has a malformed header: tensor 'a' is not an object", p));
    CHECK(refused(raw_file(R"({"__metadata__":{"format":1}})")) ==
          fmt::format("load_safetensors: '{}' has a malformed header: metadata 'format' is not a string", p));
    CHECK(refused(raw_file(R"({"__metadata__":[]})")) == fmt::format("load_safetensors: '{}' has a malformed header: '__metadata__' is not an object", p));

    SUBCASE("a 10 MB name is quoted cut short, not whole") {
        const std::string name(10'000'000, 'n');
        const auto message = refused(raw_file(R"({")" + name + R"(":{"dtype":"X","shape":[],"data_offsets":[0,0]}})"));
        CHECK(message == fmt::format("load_safetensors: '{}' stores tensor '{}...' (10000000 bytes) as dtype 'X', which minigrad does not read "
                                     "(it reads F32, F64, F16, BF16, I32, I64)", p, std::string(64, 'n')));
    }
    SUBCASE("a header over the 100 MB cap is refused before it is read (a sparse file)") {
        std::string length(8, '\0');
        const std::uint64_t header = 150'000'000;
        std::memcpy(length.data(), &header, 8);
        write_bytes(path, length);
        fs::resize_file(path, 200'000'000);
        CHECK(load_error(path) == fmt::format("load_safetensors: '{}' has a header of 150000000 bytes, more than the limit of 100000000", p));
    }
}

TEST_CASE("the header's JSON agrees with nlohmann/json: the writer's bytes, the reader's verdicts") {
    TempDir dir;
    const auto path = dir / "names.safetensors";
    // names and metadata that need escapes: quotes, backslashes, control characters, UTF-8
    const std::vector<std::string> names{"plain", "quote\"d", "back\\slash", "new\nline", "tab\t", std::string("nul\0x", 5),
                                         "\x01\x1f\x7f", "caf\xc3\xa9", "\xf0\x9f\x98\x80 emoji", "__metadata", "Zeta", "_"};
    std::vector<io::TensorData> tensors;
    const std::vector<float> one{1.0f};
    for (const auto& name : names) tensors.push_back(io::TensorData::from<float>(name, {1}, one));
    const io::Metadata metadata{{"k\"ey", "va\\lue\n"}, {"\xc3\xa9", "\x02"}, {"format", "pt"}};
    io::save_safetensors(path, tensors, metadata);
    const std::string bytes = read_bytes(path);
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = length << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    std::string header = bytes.substr(8, length);
    header.erase(header.find_last_not_of(' ') + 1);  // the padding to 8 bytes
    CHECK(nlohmann::json::parse(header).dump() == header);  // nlohmann's compact dump, keys sorted: the same bytes
    const auto loaded = io::load_safetensors(path);
    CHECK(loaded.metadata == metadata);
    REQUIRE(loaded.tensors.size() == names.size());
    for (const auto& name : names) CHECK(loaded.find(name) != nullptr);
    // not UTF-8: refused, naming what
    CHECK(error_message([&] { io::save_safetensors(dir / "bad.safetensors", {io::TensorData::from<float>("a\xff", {1}, one)}); })
              .find("cannot encode the header: the tensor name 'a") != std::string::npos);

    // The reader accepts what nlohmann accepts, within a safetensors header's nesting, and reads
    // the same strings and numbers.
    const std::vector<std::string> texts{
        R"({})", R"( {"a" : [ 1 , 2 ] } )", R"({"a":"\u00e9\ud83d\ude00\/\b\f\n\r\t"})", R"({"a":[18446744073709551615]})",
        R"({"a":[18446744073709551616]})", R"({"a":[-9223372036854775808, -0, 1e5, 1.5E-3, 0.0]})", R"({"a":true,"b":false,"c":null})",
        "{\"a\":\"caf\xc3\xa9\"}", R"([1,[2,[3]]])", R"("text")", R"(7)", std::string("{\"a\":1} \0\0", 10),
        std::string("{\"a\":1}\0 x", 10), R"({"a":[1e-400, 1.7e308, 0.00000001e315, 100000000000000000000e288]})",
        // refused by both
        R"({"a":01})", R"({"a":1.})", R"({"a":.5})", R"({"a":1e})", R"({"a":-})", R"({"a":+1})", R"({"a":[1,]})", R"({"a":1,})",
        R"({'a':1})", R"({"a":"\x"})", R"({"a":"\u12"})", R"({"a":"\udc00"})", R"({"a":"\ud800x"})", "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", R"({"a":tru})", R"({"a":1} 2)", R"({"a")", "", std::string("{\"a\":1\0}", 8),
        std::string("{\"a\0\":1}", 8), R"({"a":1.8e308})", R"({"a":-1e309})", R"({"a":333E3333})",
    };
    for (const auto& text : texts) {
        INFO("text: ", text);
        bool theirs = true, ours = true;
        nlohmann::json expected;
        try {
            expected = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception&) {
            theirs = false;
        }
        io::json::Value value;
        try {
            value = io::json::parse(text, 3);
        } catch (const io::json::ParseError&) {
            ours = false;
        }
        CHECK(ours == theirs);
        if (ours && theirs && value.is_object()) {
            for (const auto& [key, member] : value.members) {
                REQUIRE(expected.contains(key));
                if (member.is_string()) CHECK(expected[key].get<std::string>() == member.text);
                if (member.is_array())
                    for (std::size_t i = 0; i < member.items.size(); ++i)
                        if (member.items[i].is_unsigned()) CHECK(expected[key][i].is_number_unsigned());
            }
        }
    }
    CHECK(io::json::dump(io::json::parse(R"({"a":[1,-2,2.50],"b":"x\"y"})", 3)) == R"({"a":[1,-2,2.50],"b":"x\"y"})");
}

TEST_CASE("load_safetensors refuses what is not a regular file before reading it") {
    TempDir dir;
    CHECK(load_error(dir.path) == fmt::format("load_safetensors: '{}' is not a regular file (a directory)", dir.path.string()));
    CHECK(load_error("/dev/zero") == "load_safetensors: '/dev/zero' is not a regular file (a character device)");
    CHECK(load_error(dir / "missing") == fmt::format("load_safetensors: '{}' cannot open it: No such file or directory", (dir / "missing").string()));
}

TEST_CASE("loading from a FIFO that nobody writes to is refused at once, not waited on") {
    TempDir dir;
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Were the open to block, this writer would unblock it after 3 s, and the time shows it.
    std::thread unblock([&] {
        std::this_thread::sleep_for(std::chrono::seconds(3));
        const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) ::close(fd);
    });
    const auto start = std::chrono::steady_clock::now();
    CHECK(load_error(fifo) == fmt::format("load_safetensors: '{}' is not a regular file (a FIFO)", fifo.string()));
    mg::manual_seed(1);
    IrisMLP model;
    CHECK(error_message([&] { model.load(fifo); }) == fmt::format("load_safetensors: '{}' is not a regular file (a FIFO)", fifo.string()));
    mg::optim::SGD opt(model.parameters(), {.lr = 0.1});
    CHECK(error_message([&] { opt.load_state(fifo); }) == fmt::format("load_safetensors: '{}' is not a regular file (a FIFO)", fifo.string()));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    unblock.join();
}

TEST_CASE("save_safetensors refuses a shape that does not match the bytes, and duplicate names") {
    TempDir dir;
    const auto path = dir / "out.safetensors";
    const std::string p = path.string();
    CHECK(error_message([&] { io::save_safetensors(path, {tensor_data<float>("w", {2, 3}, {1, 2, 3, 4, 5})}); }) ==
          fmt::format("save_safetensors: '{}': tensor 'w' has shape [2, 3] of F32, which needs 24 bytes, but 20 were given", p));
    CHECK(error_message([&] { io::save_safetensors(path, {tensor_data<float>("w", {-1}, {})}); }) ==
          fmt::format("save_safetensors: '{}': tensor 'w' has an invalid shape [-1]", p));
    CHECK(error_message([&] { io::save_safetensors(path, {tensor_data<float>("w", {1}, {1}), tensor_data<double>("w", {1}, {2})}); }) ==
          fmt::format("save_safetensors: '{}': the tensor name 'w' appears twice", p));
    CHECK(error_message([&] { io::save_safetensors(path, {tensor_data<float>("__metadata__", {1}, {1})}); }) ==
          fmt::format("save_safetensors: '{}': a tensor cannot be named '__metadata__'", p));
    CHECK(dir.files().empty());
}

TEST_CASE("save_safetensors is atomic: failures name the path and leave no temporary behind") {
    TempDir dir;
    const std::vector<io::TensorData> tensors = {tensor_data<float>("w", {2}, {1, 2})};
    SUBCASE("a missing folder") {
        const auto path = dir / "no/such/file.safetensors";
        CHECK(error_message([&] { io::save_safetensors(path, tensors); }) ==
              fmt::format("save_safetensors: cannot create a temporary file for '{}': No such file or directory", path.string()));
    }
    SUBCASE("the target is a folder: refused before anything is written") {
        fs::create_directory(dir / "folder");
        CHECK(error_message([&] { io::save_safetensors(dir / "folder", tensors); }) ==
              fmt::format("save_safetensors: cannot save to '{}': it is a directory, not a regular file", (dir / "folder").string()));
        // "folder/" once failed as "Not a directory".
        const auto slash = (dir / "folder").string() + "/";
        CHECK(error_message([&] { io::save_safetensors(slash, tensors); }) ==
              fmt::format("save_safetensors: cannot save to '{}': the path ends in '/' (or is empty): it names a folder, not a file", slash));
        CHECK(dir.files() == std::vector<std::string>{"folder"});
        CHECK(fs::is_empty(dir / "folder"));
    }
    SUBCASE("a failed save keeps the old file whole") {
        const auto path = dir / "keep.safetensors";
        io::save_safetensors(path, tensors);
        const auto before = read_bytes(path);
        CHECK_THROWS_AS(io::save_safetensors(path, {tensor_data<float>("w", {3}, {1})}), mg::IoError);
        CHECK(read_bytes(path) == before);
    }
    SUBCASE("two threads saving to one path do not collide") {
        const auto path = dir / "shared.safetensors";
        auto save_many = [&](float value) {
            for (int i = 0; i < 20; ++i) io::save_safetensors(path, {tensor_data<float>("w", {2}, {value, value})});
        };
        std::thread a(save_many, 1.0f), b(save_many, 2.0f);
        a.join();
        b.join();
        const auto w = io::load_safetensors(path).find("w")->values<float>();
        CHECK(w[0] == w[1]);
        CHECK(dir.files() == std::vector<std::string>{"shared.safetensors"});
    }
}

TEST_CASE("save_safetensors refuses a target that is not a regular file, rather than replacing it") {
    TempDir dir;
    const std::vector<io::TensorData> tensors = {tensor_data<float>("w", {2}, {1, 2})};
    auto save_error = [&](const fs::path& path) { return error_message([&] { io::save_safetensors(path, tensors); }); };
    // A rename over a FIFO (or /dev/null, as root) would replace it with a regular file.
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(save_error(fifo) == fmt::format("save_safetensors: cannot save to '{}': it is a FIFO, not a regular file", fifo.string()));
    CHECK(fs::is_fifo(fifo));
    mg::manual_seed(2);
    IrisMLP model;
    CHECK(error_message([&] { model.save(fifo); }) ==
          fmt::format("save_safetensors: cannot save to '{}': it is a FIFO, not a regular file", fifo.string()));
    mg::optim::SGD opt(model.parameters(), {.lr = 0.1});
    CHECK(error_message([&] { opt.save_state(fifo); }) ==
          fmt::format("save_safetensors: cannot save to '{}': it is a FIFO, not a regular file", fifo.string()));
    // Through a link: the link's final target decides.
    fs::create_symlink("/dev/null", dir / "null");
    CHECK(save_error(dir / "null") ==
          fmt::format("save_safetensors: cannot save to '{}' (a symbolic link to '/dev/null'): it is a character device, not a regular file",
                      (dir / "null").string()));
    CHECK(fs::is_symlink(dir / "null"));
    fs::create_symlink("loop", dir / "loop");
    CHECK(save_error(dir / "loop") ==
          fmt::format("save_safetensors: cannot save to '{}': Too many levels of symbolic links", (dir / "loop").string()));
    CHECK(dir.files() == std::vector<std::string>{"fifo", "loop", "null"});
}

TEST_CASE("save_safetensors writes through a symbolic link to the file it names, and keeps the link") {
    TempDir dir;
    fs::create_directories(dir / "real");
    io::save_safetensors(dir / "real/model.st", {tensor_data<float>("w", {1}, {1})});
    fs::create_symlink("real/model.st", dir / "link.st");  // relative to the link's folder
    fs::create_symlink(dir / "link.st", dir / "link2.st");  // a chain, absolute
    io::save_safetensors(dir / "link2.st", {tensor_data<float>("w", {1}, {2})});
    CHECK(fs::is_symlink(dir / "link.st"));
    CHECK(fs::is_symlink(dir / "link2.st"));
    CHECK(io::load_safetensors(dir / "real/model.st").find("w")->values<float>() == std::vector<float>{2});
    CHECK(dir.files() == std::vector<std::string>{"link.st", "link2.st", "real"});
    // A dangling link: its target is created, as a shell's `>` creates it.
    fs::create_symlink("real/new.st", dir / "dangling.st");
    io::save_safetensors(dir / "dangling.st", {tensor_data<float>("w", {1}, {3})});
    CHECK(fs::is_symlink(dir / "dangling.st"));
    CHECK(io::load_safetensors(dir / "real/new.st").find("w")->values<float>() == std::vector<float>{3});
    fs::remove(dir / "dangling.st");
    fs::remove(dir / "real/new.st");
    CHECK(fs::directory_iterator(dir / "real")->path().filename() == "model.st");  // no temporary left there
}

TEST_CASE("save_safetensors saves to any legal file name, and quotes a long path cut short") {
    TempDir dir;
    // The temporary's name once held the whole target name, so a 255-byte one was "too long".
    const std::string longest(255, 'a');
    io::save_safetensors(dir / longest, {tensor_data<float>("w", {1}, {4})});
    CHECK(io::load_safetensors(dir / longest).find("w")->values<float>() == std::vector<float>{4});
    CHECK(dir.files() == std::vector<std::string>{longest});

    const auto missing = dir / std::string(250, 'b') / "model.safetensors";  // in a folder that does not exist
    const auto p = missing.string();
    CHECK(error_message([&] { io::save_safetensors(missing, {tensor_data<float>("w", {1}, {4})}); }) ==
          fmt::format("save_safetensors: cannot create a temporary file for '{}...' ({} bytes): No such file or directory", p.substr(0, 200), p.size()));
    CHECK(load_error(missing) == fmt::format("load_safetensors: '{}...' ({} bytes) cannot open it: No such file or directory", p.substr(0, 200), p.size()));
}

TEST_CASE_TEMPLATE("Module save/load round-trips every parameter exactly", T, float, double) {
    TempDir dir;
    const auto path = dir / "model.safetensors";
    mg::manual_seed(3);
    SmallMLP<T> saved;
    saved.save(path);
    const auto file = io::load_safetensors(path);
    REQUIRE(file.tensors.size() == 4);
    CHECK(file.tensors[0].name == "fc1.weight");  // PyTorch's state_dict names, in its order
    CHECK(file.tensors[0].dtype == io::dtype_of<T>());
    CHECK(file.tensors[0].shape == std::vector<std::int64_t>{6, 4});
    CHECK(file.metadata.at("format") == "pt");
    mg::manual_seed(4);
    SmallMLP<T> loaded;
    CHECK(loaded.parameter_values() != saved.parameter_values());
    loaded.load(path);
    CHECK(loaded.parameter_values() == saved.parameter_values());
}

TEST_CASE("Module::load converts F64 <-> F32 as load_state_dict does") {
    TempDir dir;
    mg::manual_seed(5);
    SmallMLP<double> wide;
    wide.save(dir / "f64.safetensors");
    SmallMLP<float> narrow;
    narrow.load(dir / "f64.safetensors");
    const auto w64 = wide.fc1.weight.to_vector();
    const auto w32 = narrow.fc1.weight.to_vector();
    for (std::size_t i = 0; i < w64.size(); ++i) CHECK(w32[i] == static_cast<float>(w64[i]));
    narrow.save(dir / "f32.safetensors");
    SmallMLP<double> back;
    back.load(dir / "f32.safetensors");
    const auto b32 = narrow.fc2.bias.to_vector();
    CHECK(back.fc2.bias.to_vector() == std::vector<double>(b32.begin(), b32.end()));
}

TEST_CASE("F16 and BF16 tensors convert to float and double exactly, specials and subnormals included") {
    TempDir dir;
    // bits: 1, -2, 65504 (the largest half), 2^-24 (the smallest subnormal), 2^-14 (the smallest
    // normal), a subnormal 3 * 2^-24, -0, inf, NaN
    const std::vector<std::uint16_t> half{0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x0003, 0x8000, 0x7C00, 0x7E00};
    const std::vector<double> half_values{1, -2, 65504, std::ldexp(1.0, -24), std::ldexp(1.0, -14), 3 * std::ldexp(1.0, -24), -0.0, INFINITY, NAN};
    // bfloat16 is a float's top half: 1, -2.5, 3.0e38-ish (0x7F7F), a subnormal, inf
    const std::vector<std::uint16_t> bf16{0x3F80, 0xC020, 0x7F7F, 0x0001, 0x7F80};
    const std::vector<double> bf16_values{1, -2.5, static_cast<double>(std::bit_cast<float>(0x7F7F0000u)), static_cast<double>(std::bit_cast<float>(0x00010000u)),
                                          INFINITY};
    auto file_of = [&](const std::vector<std::uint16_t>& bits, io::Dtype dtype) {
        io::TensorData t{"x", dtype, {static_cast<std::int64_t>(bits.size())}, std::vector<std::byte>(bits.size() * 2)};
        std::memcpy(t.bytes.data(), bits.data(), t.bytes.size());
        return t;
    };
    for (const auto& [bits, expected, dtype] : {std::tuple{half, half_values, io::Dtype::F16}, std::tuple{bf16, bf16_values, io::Dtype::BF16}}) {
        CAPTURE(io::dtype_name(dtype));
        const auto path = dir / "h.safetensors";
        io::save_safetensors(path, {file_of(bits, dtype)});
        const auto loaded = io::load_safetensors(path);
        REQUIRE(loaded.tensors.at(0).dtype == dtype);
        const auto d = io::to_floating<double>(loaded.tensors.at(0), "test", path);
        const auto f = io::to_floating<float>(loaded.tensors.at(0), "test", path);
        REQUIRE(d.size() == expected.size());
        for (std::size_t i = 0; i < d.size(); ++i) {
            CAPTURE(i);
            if (std::isnan(expected[i])) {
                CHECK(std::isnan(d[i]));
                CHECK(std::isnan(f[i]));
            } else {
                CHECK(d[i] == expected[i]);
                CHECK(static_cast<double>(f[i]) == expected[i]);
                CHECK(std::signbit(d[i]) == std::signbit(expected[i]));
            }
        }
    }
}

TEST_CASE("Module::load refuses a file that is not exactly this model and changes nothing") {
    TempDir dir;
    const auto path = dir / "m.safetensors";
    const std::string p = path.string();
    mg::manual_seed(6);
    SmallMLP<float> model;
    const auto original = model.parameter_values();
    auto tensors_of = [&](const SmallMLP<float>& m) {
        std::vector<io::TensorData> out;
        for (auto& [name, v] : m.parameter_values()) out.push_back(tensor_data<float>(name, {v.shape.begin(), v.shape.end()}, v.values));
        return out;
    };
    mg::manual_seed(7);
    SmallMLP<float> other;
    auto tensors = tensors_of(other);

    SUBCASE("a missing parameter") {
        tensors.erase(tensors.begin());  // fc1.bias (parameter_values is sorted by name)
        io::save_safetensors(path, tensors);
        CHECK(error_message([&] { model.load(path); }) == fmt::format("load: '{}' has no tensor 'fc1.bias' (shape [6]) for this model", p));
    }
    SUBCASE("an unknown parameter") {
        tensors.push_back(tensor_data<float>("fc3.weight", {1}, {1}));
        io::save_safetensors(path, tensors);
        CHECK(error_message([&] { model.load(path); }) == fmt::format("load: '{}' stores 'fc3.weight', which is not a parameter or buffer of this model", p));
    }
    SUBCASE("a transposed weight: same element count, other shape") {
        for (auto& t : tensors)
            if (t.name == "fc1.weight") t.shape = {4, 6};
        io::save_safetensors(path, tensors);
        CHECK(error_message([&] { model.load(path); }) == fmt::format("load: '{}' stores 'fc1.weight' with shape [4, 6], this model's is [6, 4]", p));
    }
    SUBCASE("an integer dtype") {
        for (auto& t : tensors)
            if (t.name == "fc2.bias") t = tensor_data<std::int32_t>("fc2.bias", {3}, {1, 2, 3});
        io::save_safetensors(path, tensors);
        CHECK(error_message([&] { model.load(path); }) == fmt::format("load: '{}' stores 'fc2.bias' as I32; expected floating point (F32, F64, F16 or BF16)", p));
    }
    SUBCASE("a file cut short") {
        other.save(path);
        auto bytes = read_bytes(path);
        write_bytes(path, bytes.substr(0, bytes.size() - 1));
        CHECK(error_message([&] { model.load(path); }).find("is truncated: tensor 'fc2.bias'") != std::string::npos);
    }
    CHECK(model.parameter_values() == original);
}

namespace {
// A few epochs of full-batch training on fixed data; returns nothing, moves the model and optimizer.
template <class M, class Optimizer>
void train(M& model, Optimizer& opt, int steps) {
    mg::Generator gen(9);
    const auto x = mg::Tensor<mg::Cpu>::uniform({16, 4}, 0, 1, gen);
    std::vector<std::int32_t> labels;
    for (int i = 0; i < 16; ++i) labels.push_back(i % 3);
    const auto y = mg::Tensor<mg::Cpu, std::int32_t>::from(labels);
    for (int i = 0; i < steps; ++i) {
        auto loss = mg::cross_entropy(model(x), y);
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
}
}  // namespace

TEST_CASE("SGD save_state/load_state: N steps + save + load into fresh objects + N steps == 2N steps, bit for bit") {
    TempDir dir;
    for (const auto options : {mg::optim::SgdOptions{.lr = 0.1, .momentum = 0.9},
                               mg::optim::SgdOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.01, .nesterov = true},
                               mg::optim::SgdOptions{.lr = 0.1, .momentum = 0.5, .dampening = 0.3}}) {
        CAPTURE(options.nesterov);
        constexpr int n = 7;
        mg::manual_seed(12);
        IrisMLP straight;
        mg::optim::SGD straight_opt(straight.parameters(), options);
        train(straight, straight_opt, n);
        straight_opt.set_lr(options.lr / 2);  // a schedule's change must survive the resume too
        train(straight, straight_opt, n);

        mg::manual_seed(12);
        IrisMLP first;
        mg::optim::SGD first_opt(first.parameters(), options);
        train(first, first_opt, n);
        first_opt.set_lr(options.lr / 2);
        first.save(dir / "model.safetensors");
        first_opt.save_state(dir / "sgd.safetensors");

        mg::manual_seed(99);
        IrisMLP resumed;
        mg::optim::SGD resumed_opt(resumed.parameters(), options);
        resumed.load(dir / "model.safetensors");
        resumed_opt.load_state(dir / "sgd.safetensors");
        CHECK(resumed_opt.options().lr == options.lr / 2);
        train(resumed, resumed_opt, n);
        CHECK(resumed.parameter_values() == straight.parameter_values());
    }
}

TEST_CASE("SGD state file: names as PyTorch's state_dict; which buffers exist is restored") {
    TempDir dir;
    mg::manual_seed(13);
    IrisMLP model;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    opt.save_state(dir / "before.safetensors");  // no step yet: no buffer exists
    const auto before = io::load_safetensors(dir / "before.safetensors");
    CHECK(before.tensors.empty());
    CHECK(before.metadata.at("lr") == "0.1");
    CHECK(before.metadata.at("nesterov") == "false");
    CHECK(before.metadata.at("param_shapes") == "[[10,4],[10],[3,10],[3]]");
    train(model, opt, 1);
    opt.save_state(dir / "after.safetensors");
    const auto after = io::load_safetensors(dir / "after.safetensors");
    REQUIRE(after.tensors.size() == 4);
    CHECK(after.tensors[0].name == "state.0.momentum_buffer");
    CHECK(after.tensors[3].name == "state.3.momentum_buffer");

    // An optimizer with buffers that loads a state without them must start them afresh (buf = g),
    // exactly as the one that saved it would.
    mg::manual_seed(14);
    IrisMLP a, b;
    b.load_parameters(a.parameter_values());
    mg::optim::SGD opt_a(a.parameters(), {.lr = 0.1, .momentum = 0.9});
    mg::optim::SGD opt_b(b.parameters(), {.lr = 0.1, .momentum = 0.9});
    train(b, opt_b, 3);
    b.load_parameters(a.parameter_values());
    opt_b.load_state(dir / "before.safetensors");
    train(a, opt_a, 2);
    train(b, opt_b, 2);
    CHECK(a.parameter_values() == b.parameter_values());
}

TEST_CASE("SGD::load_state refuses a state of other parameters, and changes nothing") {
    TempDir dir;
    const auto path = dir / "sgd.safetensors";
    const std::string p = path.string();
    mg::manual_seed(15);
    IrisMLP model;
    mg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    train(model, opt, 1);
    IrisMLP wider(12);
    mg::optim::SGD wider_opt(wider.parameters(), {.lr = 0.1, .momentum = 0.9});
    train(wider, wider_opt, 1);
    mg::optim::SGD fewer(std::vector{model.fc1.weight}, {.lr = 0.1, .momentum = 0.9});

    wider_opt.save_state(path);
    CHECK(error_message([&] { opt.load_state(path); }) ==
          fmt::format("SGD::load_state: '{}' is for parameters of shapes '[[12,4],[12],[3,12],[3]]', this optimizer's are '[[10,4],[10],[3,10],[3]]'", p));
    fewer.save_state(path);
    CHECK(error_message([&] { opt.load_state(path); }) ==
          fmt::format("SGD::load_state: '{}' is for parameters of shapes '[[10,4]]', this optimizer's are '[[10,4],[10],[3,10],[3]]'", p));
    model.save(path);
    CHECK(error_message([&] { opt.load_state(path); }) == fmt::format("SGD::load_state: '{}' has no metadata 'optimizer': it is not an SGD state file", p));

    opt.save_state(dir / "good.safetensors");
    auto file = io::load_safetensors(dir / "good.safetensors");
    auto rewrite = [&](auto change) {
        auto copy = file;
        change(copy);
        io::save_safetensors(path, copy.tensors, copy.metadata);
        return error_message([&] { opt.load_state(path); });
    };
    CHECK(rewrite([](io::SafetensorsFile& f) { f.tensors[1].shape = {5, 2}; }) ==
          fmt::format("SGD::load_state: '{}' stores 'state.1.momentum_buffer' with shape [5, 2], parameter #1 has [10]", p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.tensors[1].name = "state.7.momentum_buffer"; }) ==
          fmt::format("SGD::load_state: '{}' stores 'state.7.momentum_buffer', which is no state of this optimizer's 4 parameters "
                      "(kept per parameter: momentum_buffer)",
                      p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["lr"] = "nan"; }) ==
          fmt::format("SGD::load_state: '{}' has lr = 'nan', expected a finite number", p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["momentum"] = "0.9x"; }) ==
          fmt::format("SGD::load_state: '{}' has momentum = '0.9x', expected a finite number", p));
    // Past the number, the constructor's own checks, with the constructor's messages.
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["lr"] = "-1"; }) == fmt::format("SGD::load_state: '{}': lr=-1 must be >= 0", p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["lr"] = "1e39"; }) ==
          fmt::format("SGD::load_state: '{}': lr=1e+39 does not fit float, the type it computes in (at most 3.4028235e+38)", p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["dampening"] = "0.5", f.metadata["nesterov"] = "true"; }) ==
          fmt::format("SGD::load_state: '{}': nesterov needs momentum > 0 and dampening = 0 (got momentum=0.9, dampening=0.5)", p));
    CHECK(rewrite([](io::SafetensorsFile& f) { f.metadata["nesterov"] = "yes"; }) ==
          fmt::format("SGD::load_state: '{}' has nesterov = 'yes', expected true or false", p));

    // Nothing changed: the optimizer still steps as one that never saw those files.
    mg::manual_seed(16);
    IrisMLP twin;
    twin.load_parameters(model.parameter_values());
    mg::optim::SGD twin_opt(twin.parameters(), {.lr = 0.1, .momentum = 0.9});
    twin_opt.load_state(dir / "good.safetensors");
    train(model, opt, 2);
    train(twin, twin_opt, 2);
    CHECK(opt.options().lr == 0.1);
    CHECK(model.parameter_values() == twin.parameter_values());
}

TEST_CASE("SGD::load_state takes every setting the constructor takes, bit for bit") {
    TempDir dir;
    const auto path = dir / "sgd.safetensors";
    mg::manual_seed(17);
    IrisMLP model;
    // Negative dampening and lr 1e35 (finite as a float) were refused as "expected a finite number >= 0".
    const mg::optim::SgdOptions odd{.lr = 1e35, .momentum = 0.9, .dampening = -0.5};
    mg::optim::SGD saver(model.parameters(), odd);
    saver.save_state(path);
    mg::optim::SGD loader(model.parameters(), {.lr = 0.1});
    loader.load_state(path);
    CHECK(loader.options().lr == 1e35);
    CHECK(loader.options().dampening == -0.5);

    // Values whose shortest text is long: each reads back to the same double.
    SmallMLP<double> wide;
    const mg::optim::SgdOptions awkward{.lr = 0.1 + 0.2, .momentum = 1e-300, .dampening = -1.0 / 3, .weight_decay = 5e-324};
    mg::optim::SGD<mg::Cpu, double> wide_saver(wide.parameters(), awkward);
    wide_saver.save_state(path);
    CHECK(io::load_safetensors(path).metadata.at("lr") == "0.30000000000000004");
    mg::optim::SGD<mg::Cpu, double> wide_loader(wide.parameters(), {.lr = 0.1});
    wide_loader.load_state(path);
    CHECK(wide_loader.options().lr == awkward.lr);
    CHECK(wide_loader.options().momentum == awkward.momentum);
    CHECK(wide_loader.options().dampening == awkward.dampening);
    CHECK(wide_loader.options().weight_decay == awkward.weight_decay);
}

TEST_CASE("io::crc32 is zlib's CRC-32 at every length and alignment") {
    const std::string check = "123456789";
    CHECK(io::crc32(check.data(), check.size()) == 0xCBF43926u);  // the catalogue's check value for CRC-32
    CHECK(crc32_bitwise(check) == 0xCBF43926u);
    CHECK(io::crc32(nullptr, 0) == 0u);
    std::string bytes;
    for (int i = 0; i < 80; ++i) bytes += static_cast<char>((i * 37 + 11) & 0xFF);
    for (std::size_t start = 0; start < 8; ++start) {  // the eight-byte steps from every alignment, and the tail
        for (std::size_t size = 0; start + size <= bytes.size(); ++size) {
            const std::string_view part = std::string_view(bytes).substr(start, size);
            INFO("start ", start, " size ", size);
            REQUIRE(io::crc32(part.data(), part.size()) == crc32_bitwise(part));
        }
    }
    // `crc` continues a checksum: two pieces give the checksum of the whole
    CHECK(io::crc32(bytes.data() + 29, bytes.size() - 29, io::crc32(bytes.data(), 29)) == io::crc32(bytes.data(), bytes.size()));
}

TEST_CASE("every single flipped bit of a saved file's data is refused, naming the tensor and both checksums") {
    TempDir dir;
    const auto path = dir / "small.safetensors";
    const std::string p = path.string();
    std::vector<float> f32(20);
    std::vector<double> f64(6);
    for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = 0.25f * static_cast<float>(i) - 2;
    for (std::size_t i = 0; i < f64.size(); ++i) f64[i] = 1.0 / static_cast<double>(i + 3);
    const std::vector<io::TensorData> tensors = {
        tensor_data<float>("fc1.weight", {4, 5}, f32),
        tensor_data<double>("fc1.bias", {6}, f64),
        tensor_data<std::int32_t>("counts", {5}, {0, -1, 7, INT32_MAX, INT32_MIN}),
        tensor_data<std::int64_t>("steps", {3}, {3, -3, INT64_MAX}),
        tensor_data<float>("empty", {0}, {}),
    };
    io::save_safetensors(path, tensors, {{"format", "pt"}});
    const std::string good = read_bytes(path);
    const auto [header, data_start] = header_of(good);
    // The header holds each tensor's CRC-32, as the bitwise definition computes it, beside the
    // caller's metadata; a load returns the caller's metadata alone.
    CHECK(header["__metadata__"].size() == tensors.size() + 1);
    CHECK(header["__metadata__"]["format"] == "pt");
    for (const auto& t : tensors) {
        INFO(t.name);
        const std::string bytes(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
        CHECK(header["__metadata__"]["minigrad.crc32." + t.name] == crc32_text(bytes));
    }
    CHECK(io::load_safetensors(path).metadata == io::Metadata{{"format", "pt"}});
    REQUIRE(good.size() - data_start == 80 + 48 + 20 + 24);

    std::size_t flips = 0, wrong = 0;
    std::string first_wrong;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;
        const auto [begin, end] = file_range(header, data_start, name);
        const std::string stored = stored_crc32(header, name);
        for (std::size_t byte = begin; byte < end; ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                std::string bad = good;
                bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
                flip_bit(path, byte, bit);
                const auto expected = fmt::format("load_safetensors: '{}' is corrupt: tensor '{}' fails its checksum (stored crc32 {}, its data has {})", p,
                                                  name, stored, crc32_text(std::string_view(bad).substr(begin, end - begin)));
                std::string got = "(loaded)";
                try {
                    io::load_safetensors(path);
                } catch (const mg::IoError& e) {
                    got = e.what();
                }
                flip_bit(path, byte, bit);
                ++flips;
                if (got != expected && wrong++ == 0) first_wrong = fmt::format("byte {} bit {}: {}\nexpected: {}", byte, bit, got, expected);
            }
        }
    }
    CHECK(flips == 8 * (good.size() - data_start));  // every bit of the data section
    CHECK(read_bytes(path) == good);
    INFO(first_wrong);
    CHECK(wrong == 0);

    // Each tensor is checked as it is read: the reader still reads the others of a damaged file.
    std::string bad = good;
    bad[data_start] = static_cast<char>(bad[data_start] ^ 0x10);  // fc1.weight's first byte (its data comes first)
    write_bytes(path, bad);
    io::SafetensorsReader reader(path);
    CHECK(reader.find("fc1.weight")->crc32 == io::crc32(tensors[0].bytes.data(), tensors[0].bytes.size()));
    CHECK(reader.read(*reader.find("steps")).values<std::int64_t>() == std::vector<std::int64_t>{3, -3, INT64_MAX});
    CHECK(error_message([&] { reader.read(*reader.find("fc1.weight")); }).starts_with(fmt::format("load_safetensors: '{}' is corrupt: tensor 'fc1.weight'", p)));
}

TEST_CASE("a model whose file has a flipped bit is refused by Module::load, and changes nothing") {
    TempDir dir;
    const auto path = dir / "model.safetensors";
    mg::manual_seed(21);
    SmallMLP<float> saved;
    saved.save(path);
    std::string bytes = read_bytes(path);
    const auto [header, data_start] = header_of(bytes);
    const std::size_t at = file_range(header, data_start, "fc2.bias").first + 5;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x40);  // an exponent bit of fc2.bias[1]: a big change, silent without the checksum
    write_bytes(path, bytes);
    mg::manual_seed(22);
    SmallMLP<float> model;
    const auto before = model.parameter_values();
    CHECK(error_message([&] { model.load(path); })
              .starts_with(fmt::format("load_safetensors: '{}' is corrupt: tensor 'fc2.bias' fails its checksum (stored crc32 {}", path.string(),
                                       stored_crc32(header, "fc2.bias"))));
    CHECK(model.parameter_values() == before);
}

TEST_CASE("a file without checksums (as PyTorch writes) loads; checksum keys that are malformed or name no tensor are refused") {
    // PyTorch's file: its metadata has no checksums, and nothing is checked
    io::SafetensorsReader torch(fs::path(MINIGRAD_TEST_DATA_DIR) / "torch_iris.safetensors");
    CHECK(torch.metadata() == io::Metadata{{"format", "pt"}});
    REQUIRE(torch.entries().size() == 4);
    for (const auto& e : torch.entries()) CHECK_FALSE(e.crc32.has_value());
    CHECK(torch.read_all().tensors.size() == 4);

    TempDir dir;
    const auto path = dir / "hand.safetensors";
    const std::string p = path.string();
    auto load = [&](const std::string& metadata, const std::string& data) {
        const std::string a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
        const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
        write_bytes(path, raw_file("{" + a + "," + b + (metadata.empty() ? "" : R"(,"__metadata__":{)" + metadata + "}") + "}", data));
        std::string message = "(loaded)";
        try {
            io::load_safetensors(path);
        } catch (const mg::IoError& e) {
            message = e.what();
        }
        return message;
    };
    const std::string data = "abcdefgh";
    const std::string crc_a = crc32_text("abcd"), crc_b = crc32_text("efgh");
    const auto key = [](const std::string& name, const std::string& value) { return fmt::format(R"("minigrad.crc32.{}":"{}")", name, value); };
    CHECK(load("", data) == "(loaded)");
    CHECK(load(R"("format":"pt")", data) == "(loaded)");
    CHECK(load(key("a", crc_a) + "," + key("b", crc_b), data) == "(loaded)");
    CHECK(load(key("a", crc_a) + "," + key("b", crc_b), "abcdefgi") ==
          fmt::format("load_safetensors: '{}' is corrupt: tensor 'b' fails its checksum (stored crc32 {}, its data has {})", p, crc_b, crc32_text("efgi")));
    std::string upper = crc_b;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(load(key("a", crc_a) + "," + key("b", upper), data) == "(loaded)");  // hex digits in either case
    for (const std::string& malformed : {std::string("1234567"), std::string("123456789"), std::string("0x123456"), std::string("-1234567"),
                                        std::string("1234567g"), std::string(" 1234567"), std::string("")}) {
        CHECK(load(key("a", crc_a) + "," + key("b", malformed), data) ==
              fmt::format("load_safetensors: '{}' has a malformed header: the checksum of tensor 'b' is '{}', expected a CRC-32 as 8 hex digits", p, malformed));
    }
    CHECK(load(key("a", crc_a) + "," + key("b", crc_b) + "," + key("c", crc_b), data) ==
          fmt::format("load_safetensors: '{}' has a malformed header: metadata 'minigrad.crc32.c' is the checksum of a tensor the file does not hold", p));
    // one tensor with a checksum and one without: a key whose prefix a flipped bit changed
    CHECK(load(key("a", crc_a) + "," + R"("minigrad.crc33.b":")" + crc_b + "\"", data) ==
          fmt::format("load_safetensors: '{}' has a malformed header: tensor 'b' has no checksum, though other tensors have one", p));
    CHECK(load(R"("minigrad.crc32.a":7,)" + key("b", crc_b), data) ==
          fmt::format("load_safetensors: '{}' has a malformed header: metadata 'minigrad.crc32.a' is not a string", p));
}

TEST_CASE("save_safetensors keeps the caller's metadata and refuses a key in the checksums' reserved prefix") {
    TempDir dir;
    const auto path = dir / "meta.safetensors";
    const std::vector<io::TensorData> tensors = {tensor_data<float>("w", {2}, {1, 2})};
    CHECK(error_message([&] { io::save_safetensors(path, tensors, {{"format", "pt"}, {"minigrad.crc32.w", "00000000"}}); }) ==
          fmt::format("save_safetensors: '{}': the metadata key 'minigrad.crc32.w' starts with 'minigrad.crc32.', which minigrad keeps for its checksums",
                      path.string()));
    CHECK(error_message([&] { io::save_safetensors(path, tensors, {{"minigrad.crc32.", "x"}}); }).find("which minigrad keeps for its checksums") !=
          std::string::npos);
    CHECK(dir.files().empty());
    // keys that only look alike are the caller's
    const io::Metadata metadata{{"minigrad.crc32", "a"}, {"minigrad.crc64.w", "b"}, {"Minigrad.crc32.w", "c"}, {"format", "pt"}};
    io::save_safetensors(path, tensors, metadata);
    CHECK(io::load_safetensors(path).metadata == metadata);
    CHECK(header_of(read_bytes(path)).first["__metadata__"].size() == metadata.size() + 1);
}

TEST_CASE("optimizer state files carry checksums: a flipped bit in any state tensor is refused, and the optimizer is unchanged") {
    TempDir dir;
    const auto path = dir / "state.safetensors";
    const std::string p = path.string();
    mg::manual_seed(23);
    IrisMLP model;
    mg::optim::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    train(model, sgd, 2);
    mg::optim::Adam<mg::Cpu, float> adam(model.parameters(), {.lr = 0.01});
    train(model, adam, 2);
    auto check_state_file = [&](auto& opt, const std::string& optimizer) {
        CAPTURE(optimizer);
        opt.save_state(path);
        const std::string good = read_bytes(path);
        const auto [header, data_start] = header_of(good);
        std::size_t tensors = 0;
        for (const auto& [name, entry] : header.items()) {
            if (name == "__metadata__") continue;
            ++tensors;
            CAPTURE(name);
            const auto [begin, end] = file_range(header, data_start, name);
            for (const std::size_t at : {begin, (begin + end) / 2, end - 1}) {
                std::string bad = good;
                bad[at] = static_cast<char>(bad[at] ^ (1 << (at % 8)));
                flip_bit(path, at, static_cast<int>(at % 8));
                mg::optim::SGD<mg::Cpu, float> fresh_sgd(model.parameters(), {.lr = 0.5, .momentum = 0.9});
                mg::optim::Adam<mg::Cpu, float> fresh_adam(model.parameters(), {.lr = 0.5});
                const auto message = optimizer == "SGD" ? error_message([&] { fresh_sgd.load_state(path); })
                                                        : error_message([&] { fresh_adam.load_state(path); });
                CHECK(message == fmt::format("load_safetensors: '{}' is corrupt: tensor '{}' fails its checksum (stored crc32 {}, its data has {})", p, name,
                                             stored_crc32(header, name),
                                             crc32_text(std::string_view(bad).substr(begin, end - begin))));
                CHECK((optimizer == "SGD" ? fresh_sgd.options().lr : fresh_adam.get_lr()) == 0.5);
                flip_bit(path, at, static_cast<int>(at % 8));
            }
        }
        CHECK(read_bytes(path) == good);
        return tensors;
    };
    CHECK(check_state_file(sgd, "SGD") == 4);    // state.<i>.momentum_buffer
    CHECK(check_state_file(adam, "Adam") == 12);  // state.<i>.step (I64), exp_avg, exp_avg_sq
    mg::optim::Adam<mg::Cpu, float> fresh(model.parameters(), {.lr = 0.5});
    fresh.load_state(path);  // the file as saved loads
    CHECK(fresh.step_count(0) == 2);
}

// ---- PyTorch interop: files under tests/data, made by tools/make_safetensors_fixtures.py ----

namespace {
const fs::path test_data = MINIGRAD_TEST_DATA_DIR;

void check_close(const std::vector<float>& got, const std::vector<float>& expected) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("logit ", i, ": ", got[i], " vs ", expected[i]);
        CHECK(std::abs(got[i] - expected[i]) <= 1e-6f * std::max(1.0f, std::abs(expected[i])));
    }
}

// The model whose file minigrad checks in: fixed seed, default hidden width.
IrisMLP fixture_model() {
    mg::manual_seed(2024);
    return IrisMLP();
}
}  // namespace

TEST_CASE("a model PyTorch saved with safetensors.torch.save_file loads and predicts as PyTorch did") {
    IrisMLP model;
    model.load(test_data / "torch_iris.safetensors");
    const auto recorded = io::load_safetensors(test_data / "torch_iris_logits.safetensors");
    const auto input = recorded.find("input");
    REQUIRE(input);
    const auto x = mg::Tensor<mg::Cpu>::from(input->values<float>(), {input->shape[0], input->shape[1]});
    check_close(model(x).to_vector(), recorded.find("logits")->values<float>());
}

TEST_CASE("minigrad's save of the fixed model is tests/data/minigrad_iris.safetensors byte for byte") {
    // MINIGRAD_WRITE_FIXTURES=1 rewrites the files (then run tools/make_safetensors_fixtures.py
    // --check, which loads them into PyTorch).
    const auto model = fixture_model();
    const auto x = io::load_safetensors(test_data / "torch_iris_logits.safetensors").find("input")->values<float>();
    const auto input = mg::Tensor<mg::Cpu>::from(x, {static_cast<std::int64_t>(x.size() / 4), 4});
    const auto logits = const_cast<IrisMLP&>(model)(input).to_vector();
    if (const char* write = std::getenv("MINIGRAD_WRITE_FIXTURES"); write && std::string(write) == "1") {
        model.save(test_data / "minigrad_iris.safetensors");
        io::save_safetensors(test_data / "minigrad_iris_logits.safetensors",
                             {tensor_data<float>("input", {input.shape()[0], 4}, x), tensor_data<float>("logits", {input.shape()[0], 3}, logits)});
    }
    TempDir dir;
    model.save(dir / "now.safetensors");
    CHECK(read_bytes(dir / "now.safetensors") == read_bytes(test_data / "minigrad_iris.safetensors"));
    // The logits PyTorch is checked against are this model's.
    const auto recorded = io::load_safetensors(test_data / "minigrad_iris_logits.safetensors");
    CHECK(recorded.find("input")->values<float>() == x);
    check_close(logits, recorded.find("logits")->values<float>());
}

}  // namespace test_io
