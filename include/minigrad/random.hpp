// minigrad's seeded generator. Random tensors are drawn on the host and then copied to their
// backend, so one seed gives bit-identical initial weights on every backend.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <span>

namespace minigrad {

class Generator {
  public:
    explicit Generator(std::uint64_t seed = 0) : engine_(static_cast<std::uint32_t>(seed)) {}
    Generator(const Generator& other) : engine_(other.state()) {}
    Generator& operator=(const Generator& other) {
        if (this != &other) {
            const std::mt19937 copy = other.state();
            std::lock_guard lock(mutex_);
            engine_ = copy;
        }
        return *this;
    }

    void seed(std::uint64_t seed) {
        std::lock_guard lock(mutex_);
        engine_.seed(static_cast<std::uint32_t>(seed));
    }

    // Fills `out` with uniform draws in [lo, hi), in order, under one lock: threads that share a
    // generator each get a whole run of the sequence per fill (which runs, depends on timing).
    template <class T>
    void fill_uniform(std::span<T> out, double lo, double hi) {
        std::lock_guard lock(mutex_);
        for (auto& v : out) v = static_cast<T>(draw(lo, hi));
    }

    // One draw in [lo, hi). Not locked: for a generator that one thread uses at a time.
    double uniform(double lo, double hi) { return draw(lo, hi); }

    std::mt19937& engine() { return engine_; }

  private:
    // The bit-level recipe is fixed here (not std::uniform_real_distribution, whose output
    // differs between standard libraries) so results match across compilers.
    double draw(double lo, double hi) {
        const std::uint64_t a = engine_() >> 5, b = engine_() >> 6;  // 27 + 26 = 53 random bits
        const double unit = (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) *
                            (1.0 / 9007199254740992.0);
        return lo + (hi - lo) * unit;
    }
    std::mt19937 state() const {
        std::lock_guard lock(mutex_);
        return engine_;
    }

    std::mt19937 engine_;
    mutable std::mutex mutex_;  // held per fill_uniform(), not per draw
};

// Shared by every thread (as PyTorch's default generator): fill_uniform() locks it per tensor.
// For runs that must repeat bit for bit while other threads also draw, give each its own Generator.
inline Generator& default_generator() {
    static Generator g{0};
    return g;
}

// As torch.manual_seed: reseeds, for every thread, the generator that initialisation and
// uniform() use by default.
inline void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace minigrad
