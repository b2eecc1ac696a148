// minigrad's side of the PyTorch interop test (tests/torch_interop.py runs it):
//   safetensors_interop dump FILE    reads FILE with io::load_safetensors and prints what it read
//   safetensors_interop write FILE   writes a fixed set of tensors, every dtype minigrad stores, to
//                                    FILE with io::save_safetensors and prints what it wrote
//   safetensors_interop cnn MODEL INPUT   loads MODEL (a state_dict PyTorch saved) into the digits
//                                    CNN (examples/common/digits_cnn_model.hpp), in eval mode, and
//                                    prints its float logits for INPUT's tensor "x" as tensor "logits"
// Printed as lines that Python compares bit for bit with its own reading or writing:
//   tensor <name, UTF-8 bytes in hex> <dtype> <shape, comma-separated, '-' for []> <data in hex, '-' when empty>
//   metadata <key in hex> <value in hex>
// Hex, so that any name or value (spaces, newlines, UTF-8) survives the trip unchanged. A file
// minigrad refuses ends with "error: <message>" on stderr and exit status 1.
#include <bit>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <minigrad/minigrad.hpp>

#include "../examples/common/digits_cnn_model.hpp"

namespace io = minigrad::io;

namespace {

std::string hex(const void* data, std::size_t size) {
    if (size == 0) return "-";
    std::string out;
    out.reserve(2 * size);
    for (std::size_t i = 0; i < size; ++i) out += fmt::format("{:02x}", static_cast<const unsigned char*>(data)[i]);
    return out;
}
std::string hex(std::string_view text) { return hex(text.data(), text.size()); }

void print(const io::SafetensorsFile& file) {
    for (const auto& t : file.tensors) {
        const std::string shape = t.shape.empty() ? "-" : minigrad::detail::join(t.shape, ",");
        fmt::print("tensor {} {} {} {}\n", hex(t.name), io::dtype_name(t.dtype), shape, hex(t.bytes.data(), t.bytes.size()));
    }
    for (const auto& [key, value] : file.metadata) fmt::print("metadata {} {}\n", hex(key), hex(value));
}

// SplitMix64: the same bits on every platform, so the written file is the same on every run.
struct Bits {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = state += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // n values of T made of random bits: for floats these include NaNs with payloads (quiet and
    // signalling), infinities, subnormals and negative zero's neighbours, none of which a copy may change.
    template <class T>
    std::vector<T> values(std::size_t n) {
        using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        std::vector<T> out(n);
        for (auto& v : out) v = std::bit_cast<T>(static_cast<U>(next()));
        return out;
    }
};

template <class T>
io::TensorData tensor(std::string name, std::vector<std::int64_t> shape, const std::vector<T>& values) {
    return io::TensorData::from<T>(std::move(name), std::move(shape), std::span<const T>(values));
}

// What `write` saves: each dtype's edge values, random bits in several shapes, a scalar, empty
// tensors, and names as PyTorch's state_dict spells them and as it might not (spaces, UTF-8).
io::SafetensorsFile written() {
    using F = std::numeric_limits<float>;
    using D = std::numeric_limits<double>;
    Bits bits{23};
    io::SafetensorsFile file;
    auto& t = file.tensors;
    t.push_back(tensor<float>("f32.edges", {10}, {0.0f, -0.0f, F::infinity(), -F::infinity(), F::quiet_NaN(),
                                                  std::bit_cast<float>(0xFFC12345u), std::bit_cast<float>(0x7F800001u),
                                                  F::denorm_min(), F::max(), F::lowest()}));
    t.push_back(tensor<double>("f64.edges", {2, 4}, {0.0, -0.0, D::infinity(), -D::infinity(), D::quiet_NaN(),
                                                     std::bit_cast<double>(0x7FF0000000000001ull), D::denorm_min(), D::max()}));
    t.push_back(tensor<std::int32_t>("i32.edges", {5}, {std::numeric_limits<std::int32_t>::min(), -1, 0, 1,
                                                         std::numeric_limits<std::int32_t>::max()}));
    t.push_back(tensor<std::int64_t>("i64.edges", {5}, {std::numeric_limits<std::int64_t>::min(), -1, 0, 1,
                                                         std::numeric_limits<std::int64_t>::max()}));
    t.push_back(tensor("fc1.weight", {10, 4}, bits.values<float>(40)));
    t.push_back(tensor("f32.bits", {2, 3, 4}, bits.values<float>(24)));
    t.push_back(tensor("f64.bits", {3, 5}, bits.values<double>(15)));
    t.push_back(tensor("i32.bits", {7}, bits.values<std::int32_t>(7)));
    t.push_back(tensor("i64.bits", {2, 2, 2}, bits.values<std::int64_t>(8)));
    t.push_back(tensor<double>("scalar", {}, {2.5}));
    t.push_back(tensor<std::int64_t>("bn.num_batches_tracked", {}, {7}));
    t.push_back(tensor<float>("empty", {0}, {}));
    t.push_back(tensor<std::int32_t>("empty.rows", {0, 3}, {}));
    t.push_back(tensor<float>("a name with spaces/and:punctuation", {1}, {1.0f}));
    t.push_back(tensor<float>("ünïcödé.权重", {2}, {-1.5f, 3.25f}));
    file.metadata = {{"format", "pt"}, {"written by", "minigrad tests/safetensors_interop.cpp ✓"}};
    return file;
}

// The CNN's eval-mode logits for the input file's "x", from weights and buffers loaded strictly.
io::SafetensorsFile cnn_logits(const char* model_path, const char* input_path) {
    namespace mg = minigrad;
    auto model = mg::nn::skip_init<examples::DigitsCnn<mg::Cpu>>();
    model.load(model_path);
    model.eval();
    const auto input = io::load_safetensors(input_path);
    const auto* x = input.find("x");
    if (!x) mg::detail::fail<mg::IoError>("cnn: {} has no tensor 'x'", input_path);
    const auto values = io::to_floating<float>(*x, "cnn", input_path);
    mg::NoGradGuard no_grad;
    const auto logits = model(mg::Tensor<mg::Cpu>::from(values, mg::Shape(std::span<const std::int64_t>(x->shape)))).to_vector();
    io::SafetensorsFile out;
    out.tensors.push_back(io::TensorData::from<float>("logits", {static_cast<std::int64_t>(logits.size()) / 10, 10}, logits));
    return out;
}

int usage() {
    std::fputs("usage: safetensors_interop dump FILE | write FILE | cnn MODEL INPUT\n", stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const std::string_view mode = argv[1];
    try {
        if (mode == "cnn" && argc == 4) {
            print(cnn_logits(argv[2], argv[3]));
        } else if (argc != 3) {
            return usage();
        } else if (mode == "dump") {
            print(io::load_safetensors(argv[2]));
        } else if (mode == "write") {
            const auto file = written();
            io::save_safetensors(argv[2], file.tensors, file.metadata);
            print(file);
        } else {
            return usage();
        }
    } catch (const minigrad::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
