// The unit tests' runner: doctest, plus a check that every functor the tests saw the CPU backend
// launch in a float step is one a compiled step can run. Each ops/ and optim/ file lists the
// functors it launches, and capture/compiled.hpp joins the lists (CompiledFunctors): a functor an op
// launches but its file does not list, or a file whose list is not joined, fails this run, naming
// the functor. Float steps with labels and indices of 32 or 64 bits are what a compiled step takes;
// a functor of another type (double, int, bool, unsigned labels) is not audited.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <minigrad/minigrad.hpp>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <map>
#include <string>
#include <typeindex>
#include <vector>

namespace {

std::mutex seen_mutex;
std::map<std::type_index, const std::type_info*>& seen() {
    static std::map<std::type_index, const std::type_info*> types;
    return types;
}
void observe(const std::type_info& type) {
    const std::scoped_lock lock(seen_mutex);
    seen().emplace(type, &type);
}

// The words of a demangled type name: "minigrad::kernels::Fill<float>" -> minigrad, kernels, Fill, float.
std::vector<std::string> words(const std::string& name) {
    std::vector<std::string> out;
    std::string word;
    for (const char c : name + ' ') {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
            word += c;
        } else if (!word.empty()) {
            out.push_back(word);
            word.clear();
        }
    }
    return out;
}

// Whether a compiled step must be able to run this functor: one of the library's, of a float step
// (float, with int or long labels) or of no value type at all (a counter's update).
bool audited(const std::string& name) {
    if (!name.starts_with("minigrad::kernels::") || name.starts_with("minigrad::kernels::TapeProgram<")) return false;
    const auto w = words(name);
    const auto has = [&](const char* word) { return std::find(w.begin(), w.end(), word) != w.end(); };
    for (const char* other : {"double", "short", "char", "bool", "signed", "unsigned", "__int128", "__half", "__nv_bfloat16"})
        if (has(other)) return false;
    return has("float") || (!has("int") && !has("long"));
}

// Prints the functors a compiled step cannot run; returns how many.
int audit_launches() {
    int missing = 0, checked = 0;
    for (const auto& [index, type] : seen()) {
        const std::string name = minigrad::detail::type_name(*type);
        if (!audited(name)) continue;
        ++checked;
        if (minigrad::detail::compiled_tag(*type, minigrad::CompiledFunctors{}) < 0) {
            fmt::print(stderr, "launch audit: the tests launched {}, which no functor list that CompiledFunctors joins holds\n", name);
            ++missing;
        }
    }
    fmt::print("launch audit: {} functor types of float steps launched, {} of them missing from CompiledFunctors\n", checked, missing);
    return missing;
}

}  // namespace

int main(int argc, char** argv) {
    minigrad::detail::launch_observer = observe;
    doctest::Context context(argc, argv);
    const int result = context.run();
    minigrad::detail::launch_observer = nullptr;
    if (context.shouldExit() || seen().empty()) return result;
    return audit_launches() > 0 ? 1 : result;
}
