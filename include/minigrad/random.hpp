// minigrad's seeded generator. Random tensors are drawn on the host and then copied to their
// backend, so one seed gives bit-identical initial weights on every backend. Randomness drawn on a
// device (dropout masks) is counter-based instead: a kernel hashes (seed, offset + index), and the
// generator only hands out offsets (reserve()), so it never waits for the device and both backends
// draw the same mask.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>
#include <random>
#include <span>

namespace minigrad {

class Generator {
  public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seeded_engine(seed)), seed_(seed) {}
    Generator(const Generator& other) { copy_from(other); }
    Generator& operator=(const Generator& other) {
        if (this != &other) copy_from(other);
        return *this;
    }

    void seed(std::uint64_t seed) {
        std::lock_guard lock(mutex_);
        engine_ = seeded_engine(seed);
        seed_ = seed;
        offset_ = 0;
    }

    // For a counter-based draw of `count` values (kernels hash (seed, offset + i), i < count): the
    // seed and the first offset, which then moves past them, so the next draw gets fresh values.
    struct Counter {
        std::uint64_t seed, offset;
    };
    Counter reserve(std::uint64_t count) {
        std::lock_guard lock(mutex_);
        const Counter out{seed_, offset_};
        offset_ += count;
        return out;
    }

    // Standard normal draws (Box-Muller on this generator's uniform draws), in order, under one lock.
    template <class T>
    void fill_normal(std::span<T> out) {
        std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < out.size(); i += 2) {
            const double radius = std::sqrt(-2.0 * std::log(1.0 - draw(0, 1)));  // 1 - u is in (0, 1]
            const double angle = 6.283185307179586 * draw(0, 1);
            out[i] = static_cast<T>(radius * std::cos(angle));
            if (i + 1 < out.size()) out[i + 1] = static_cast<T>(radius * std::sin(angle));
        }
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
    // std::mt19937 takes a 32-bit seed. A seed that fits is given to it as it is, so every such seed
    // draws what it always has (the goldens depend on it); a wider one goes through a seed_seq of
    // both words, so seeds that differ only in the high word draw different streams.
    static std::mt19937 seeded_engine(std::uint64_t seed) {
        const auto low = static_cast<std::uint32_t>(seed), high = static_cast<std::uint32_t>(seed >> 32);
        if (high == 0) return std::mt19937(low);
        std::seed_seq words{low, high};
        return std::mt19937(words);
    }

    // The bit-level recipe is fixed here (not std::uniform_real_distribution, whose output
    // differs between standard libraries) so results match across compilers.
    double draw(double lo, double hi) {
        const std::uint64_t a = engine_() >> 5, b = engine_() >> 6;  // 27 + 26 = 53 random bits
        const double unit = (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) *
                            (1.0 / 9007199254740992.0);
        return lo + (hi - lo) * unit;
    }
    void copy_from(const Generator& other) {
        std::mt19937 engine;
        std::uint64_t seed, offset;
        {
            std::lock_guard lock(other.mutex_);
            engine = other.engine_;
            seed = other.seed_;
            offset = other.offset_;
        }
        std::lock_guard lock(mutex_);
        engine_ = engine;
        seed_ = seed;
        offset_ = offset;
    }

    std::mt19937 engine_;
    std::uint64_t seed_ = 0, offset_ = 0;  // the counter-based draws' state
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
