// minigrad's seeded generator. Random tensors are drawn on the host and then copied to their
// backend, so one seed gives bit-identical initial weights on every backend.
#pragma once

#include <cstdint>
#include <random>

namespace minigrad {

class Generator {
  public:
    explicit Generator(std::uint64_t seed = 0) : engine_(static_cast<std::uint32_t>(seed)) {}

    void seed(std::uint64_t seed) { engine_.seed(static_cast<std::uint32_t>(seed)); }

    // Uniform in [lo, hi). The bit-level recipe is fixed here (not std::uniform_real_distribution,
    // whose output differs between standard libraries) so results match across compilers.
    double uniform(double lo, double hi) {
        const std::uint64_t a = engine_() >> 5, b = engine_() >> 6;  // 27 + 26 = 53 random bits
        const double unit = (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) *
                            (1.0 / 9007199254740992.0);
        return lo + (hi - lo) * unit;
    }

    std::mt19937& engine() { return engine_; }

  private:
    std::mt19937 engine_;
};

inline Generator& default_generator() {
    static Generator g{0};
    return g;
}

// As torch.manual_seed: reseeds the generator that initialisation and uniform() use by default.
inline void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace minigrad
