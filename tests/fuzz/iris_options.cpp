// Fuzzes the Iris example's flag parsing: the input, split at NUL bytes, is argv after "iris".
// Parsing must end in options that pass every check, or an exit code, never a crash or an
// exception; a non-zero exit must say why on the error stream.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../../examples/iris/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::string> args{"iris"};
    std::string current;
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            args.push_back(current);
            current.clear();
        } else {
            current += static_cast<char>(data[i]);
        }
    }
    if (size > 0) args.push_back(current);
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());

    std::ostringstream out, err;
    const auto parsed = examples::parse_options(static_cast<int>(argv.size()), argv.data(), out, err);
    if (parsed.options) {
        const auto& o = *parsed.options;
        if (o.epochs < 1 || o.epochs > examples::max_epochs || o.hidden < 1 || o.hidden > examples::max_hidden || o.log_every < 1 ||
            o.print_every < 0 || (o.print_every > 0 && o.print_every % o.log_every != 0) || !(o.lr > 0) ||
            !std::isfinite(static_cast<float>(o.lr)) || static_cast<float>(o.lr) == 0 || o.out.empty() || o.data.empty())
            __builtin_trap();
    } else if (parsed.exit_code != 0 && err.str().rfind("error: ", 0) != 0) {
        __builtin_trap();
    }
    return 0;
}
