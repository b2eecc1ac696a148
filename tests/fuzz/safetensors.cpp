// Fuzzes the checkpoint loader: the input is written to a file and read by load_safetensors, by
// Module::load into the Iris model and by SGD::load_state. Any exception but minigrad::Error, a
// sanitizer report, or a result that contradicts itself is a finding. The header's bytes are
// also read by minigrad's JSON reader and by nlohmann/json: a text one accepts and the other
// refuses is a finding too (but for the duplicate keys and depth that minigrad refuses on purpose).
// A mutation of the data of a seed that carries checksums (minigrad_iris.safetensors) is refused
// as corrupt, as it should be; the seeds without them (PyTorch's, sgd_state) keep the paths past
// the load covered.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include <minigrad/minigrad.hpp>
#include <minigrad/io/safetensors_read.hpp>  // the JSON reader itself
#include <nlohmann/json.hpp>

#include "../../examples/common/iris.hpp"

namespace mg = minigrad;

// The header as the file's first 8 bytes say (cut to what is there), through both readers.
static void compare_json_readers(const std::uint8_t* data, std::size_t size) {
    if (size < 8) return;
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = length << 8 | data[i];
    const std::string text(reinterpret_cast<const char*>(data) + 8, static_cast<std::size_t>(std::min<std::uint64_t>(length, size - 8)));
    bool ours = true, theirs = true;
    try {
        mg::io::json::parse(text, 64);
    } catch (const mg::io::json::ParseError& e) {
        ours = false;
        if (e.kind != mg::io::json::ParseError::Kind::Syntax) return;  // refused on purpose, valid JSON all the same
    }
    try {
        (void)nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
        theirs = false;
    }
    if (ours != theirs) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    compare_json_readers(data, size);
    static const std::string path = "/tmp/minigrad_fuzz_safetensors_" + std::to_string(::getpid()) + ".safetensors";
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        const auto file = mg::io::load_safetensors(path);
        // the checksums' keys are the format's: a load verifies them and returns the rest
        for (const auto& [key, value] : file.metadata)
            if (key.starts_with(mg::io::checksum_prefix)) __builtin_trap();
        std::size_t total = 0;
        for (const auto& t : file.tensors) {
            std::size_t numel = 1;
            for (auto d : t.shape) {
                if (d < 0) __builtin_trap();
                numel *= static_cast<std::size_t>(d);
            }
            if (t.bytes.size() != numel * mg::io::dtype_size(t.dtype)) __builtin_trap();
            total += t.bytes.size();
        }
        if (total > size) __builtin_trap();  // no tensor data can come from outside the file
    } catch (const mg::Error& e) {
        if (std::string(e.what()).size() > 4096) __builtin_trap();  // quotes stay short
    }
    try {
        auto model = mg::nn::skip_init<examples::IrisMLP<mg::Cpu>>(10);
        model.load(path);
        // A load that succeeds filled every parameter with the file's shapes.
        if (model.fc1.weight.shape() != mg::Shape{10, 4} || model.fc2.bias.shape() != mg::Shape{3}) __builtin_trap();
    } catch (const mg::Error&) {
    }
    try {
        examples::IrisMLP<mg::Cpu> model(10);
        mg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
        opt.load_state(path);
        if (!(opt.options().lr >= 0)) __builtin_trap();
    } catch (const mg::Error&) {
    }
    return 0;
}
