// An optimizer's state file (safetensors, written by save_state) as load_state reads it, with the
// checks every optimizer makes of it: which optimizer wrote it, its numbers and flags, and the
// shapes of the parameters it was saved for.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../io/safetensors.hpp"
#include "../tensor.hpp"

namespace minigrad::optim::detail {

// The parameters' shapes as a JSON list ([[10,4],[10]]), as save_state records them.
template <class B, class T>
std::string param_shapes_json(const std::vector<Tensor<B, T>>& params) {
    std::string text(1, '[');
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (i) text += ',';
        text += minigrad::detail::bracketed(params[i].shape(), ",");
    }
    return text += ']';
}

// `who` names the caller ("Adam::load_state: 'path'") in every message.
struct StateFile {
    io::SafetensorsFile file;
    std::filesystem::path path;
    std::string optimizer, who;

    StateFile(const std::filesystem::path& file_path, std::string optimizer_name)
        : file(io::load_safetensors(file_path)),
          path(file_path),
          optimizer(std::move(optimizer_name)),
          who(minigrad::detail::format("{}::load_state: {}", optimizer, io::detail::quote_path(path))) {
        if (meta("optimizer") != optimizer) {
            fail(minigrad::detail::format("holds the state of optimizer {}, not {}", io::detail::quote(meta("optimizer")), optimizer));
        }
    }
    [[noreturn]] void fail(const std::string& why) const { minigrad::detail::fail<IoError>("{} {}", who, why); }
    const std::string& meta(const std::string& key) const {
        auto it = file.metadata.find(key);
        if (it == file.metadata.end()) fail(minigrad::detail::format("has no metadata '{}': it is not an {} state file", key, optimizer));
        return it->second;
    }
    // A number as save_state printed it; the optimizer checks its range after.
    double number(const std::string& key) const {
        const auto& text = meta(key);
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
            fail(minigrad::detail::format("has {} = {}, expected a finite number", key, io::detail::quote(text)));
        }
        return value;
    }
    bool flag(const std::string& key) const {
        const auto& text = meta(key);
        if (text != "true" && text != "false") fail(minigrad::detail::format("has {} = {}, expected true or false", key, io::detail::quote(text)));
        return text == "true";
    }
    // The file must be for parameters of these shapes, in this order.
    template <class B, class T>
    void check_param_shapes(const std::vector<Tensor<B, T>>& params) const {
        const auto expected = param_shapes_json(params);
        if (meta("param_shapes") != expected) {
            fail(minigrad::detail::format("is for parameters of shapes {}, this optimizer's are {}",
                             io::detail::quote(meta("param_shapes"), io::detail::max_quoted_path),
                             io::detail::quote(expected, io::detail::max_quoted_path)));
        }
    }
};

}  // namespace minigrad::optim::detail
