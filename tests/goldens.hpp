// PyTorch's reference values stored in a safetensors file (tests/data/, written by tools/make_*_goldens.py):
// each stored float64 tensor read as a test's element type, and a test's result checked against one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

inline mg::Shape shape_of(const std::vector<std::int64_t>& dims) { return mg::Shape(std::span<const std::int64_t>(dims)); }

// The file tests/data/<name>, read once.
inline const mg::io::SafetensorsFile& golden_file(const std::string& name) {
    static std::map<std::string, mg::io::SafetensorsFile> files;
    auto found = files.find(name);
    if (found == files.end()) found = files.emplace(name, mg::io::load_safetensors(std::filesystem::path(MINIGRAD_TEST_DATA_DIR) / name)).first;
    return found->second;
}

// The case list a golden file carries in its metadata ("cases", JSON).
inline nlohmann::json golden_cases(const mg::io::SafetensorsFile& file) { return nlohmann::json::parse(file.metadata.at("cases")); }

template <class T>
struct Goldens {
    const mg::io::SafetensorsFile& file;
    // the stored tensor (float64 or int64) as U
    template <class U>
    mg::Tensor<mg::Cpu, U> get_as(const std::string& name) const {
        const auto* t = file.find(name);
        REQUIRE_MESSAGE(t != nullptr, name);
        std::vector<U> values;
        if (t->dtype == mg::io::Dtype::I64) {
            const auto stored = t->values<std::int64_t>();
            values.assign(stored.begin(), stored.end());
        } else {
            const auto stored = t->values<double>();
            values.assign(stored.begin(), stored.end());
        }
        return mg::Tensor<mg::Cpu, U>::from(values, shape_of(t->shape));
    }
    // the stored tensor as T, with a gradient where asked
    mg::Tensor<mg::Cpu, T> get(const std::string& name, bool requires_grad = false) const {
        auto out = get_as<T>(name);
        if (requires_grad) out.requires_grad_();
        return out;
    }
    bool has(const std::string& name) const { return file.find(name) != nullptr; }
    // got equals the stored tensor: 1e-9 in double, 2e-5 relative to the tensor's scale in float
    template <class U>
    void check(const mg::Tensor<mg::Cpu, U>& got, const std::string& name) const {
        CAPTURE(name);
        const auto* t = file.find(name);
        REQUIRE(t != nullptr);
        REQUIRE(got.shape() == shape_of(t->shape));
        std::vector<double> expected;
        if (t->dtype == mg::io::Dtype::I64) {
            const auto stored = t->values<std::int64_t>();
            expected.assign(stored.begin(), stored.end());
        } else {
            expected = t->values<double>();
        }
        double scale = 1;
        for (double v : expected) scale = std::max(scale, std::abs(v));
        const double tol = std::is_same_v<U, float> ? 2e-5 : 1e-9;
        const auto values = got.to_vector();
        int bad = 0;
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (std::abs(static_cast<double>(values[i]) - expected[i]) > tol * scale) {
                if (bad++ < 3) CHECK_MESSAGE(false, name, "[", i, "] = ", static_cast<double>(values[i]), ", PyTorch's ", expected[i]);
            }
        }
        CHECK(bad == 0);
    }
};

// Copies each of module's parameters from "<name>.<its name>" (a PyTorch module's weights, stored
// under PyTorch's names), checks that the names are case c's "params" (PyTorch's, in its order), and
// returns the parameters, whose gradients the test then checks.
template <class T, class M>
auto load_module_goldens(const Goldens<T>& g, const nlohmann::json& c, M& module) {
    const std::string name = c.at("name");
    auto named = module.named_parameters();
    std::vector<std::string> names;
    {
        mg::NoGradGuard no_grad;
        for (auto& [pname, p] : named) {
            names.push_back(pname);
            p.copy_(g.get(name + "." + pname));
        }
    }
    CHECK(names == c.at("params").template get<std::vector<std::string>>());
    return named;
}
