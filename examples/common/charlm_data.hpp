// The data of examples/charlm, made the same way by its PyTorch twin (bench/torch_charlm.py), so that
// both train on the same split and the same batches:
// - the words: a word list (Debian's wamerican, /usr/share/dict/words), lowercased, those of the
//   letters a-z only, sorted and without repeats;
// - the split: shuffled (Fisher-Yates) with SplitMix64 seeded with the split seed; the first tenth
//   is the validation set, the rest the training set;
// - the tokens: '.' is 0 and 'a'..'z' are 1..26; a set is one stream, '.' then each word followed
//   by '.', so that the model learns where words start and end;
// - a training batch: `batch` windows of block_size + 1 tokens at offsets drawn with SplitMix64
//   (the batch seed), x the first block_size tokens and y the next ones;
// - the validation loss: the mean over the stream's non-overlapping windows.
// SplitMix64 (Steele, Lea and Flood) is a few lines in any language, which is why it is used here and
// not minigrad's Generator.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <minigrad/minigrad.hpp>

namespace examples::charlm {

inline constexpr std::int64_t vocab_size = 27;  // '.' and a..z

struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return next() % n; }  // the bias (n / 2^64) is far below a float's
};

inline char token_char(std::int64_t token) { return token == 0 ? '.' : static_cast<char>('a' + token - 1); }

struct Words {
    std::vector<std::string> train, val;
};

inline Words read_words(const std::string& path, std::uint64_t split_seed) {
    std::ifstream in(path);
    if (!in) {
        minigrad::detail::fail<minigrad::IoError>("cannot open the word list '{}' (Debian's wamerican package installs /usr/share/dict/words)", path);
    }
    std::vector<std::string> words;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        bool letters = !line.empty();
        for (char& c : line) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            letters = letters && c >= 'a' && c <= 'z';
        }
        if (letters) words.push_back(line);
    }
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    if (words.size() < 20) minigrad::detail::fail<minigrad::ValueError>("'{}' holds {} words of the letters a-z; at least 20 are needed", path, words.size());
    SplitMix64 rng{split_seed};
    for (std::size_t i = words.size() - 1; i > 0; --i) std::swap(words[i], words[rng.below(i + 1)]);
    const auto n_val = static_cast<std::ptrdiff_t>(words.size() / 10);
    return {{words.begin() + n_val, words.end()}, {words.begin(), words.begin() + n_val}};
}

inline std::vector<std::int32_t> encode(const std::vector<std::string>& words) {
    std::vector<std::int32_t> stream{0};
    for (const auto& w : words) {
        for (char c : w) stream.push_back(c - 'a' + 1);
        stream.push_back(0);
    }
    return stream;
}

// Training batches at random offsets: fill() writes x and y, each (batch, block) row-major.
class Batches {
  public:
    Batches(const std::vector<std::int32_t>& stream, std::int64_t block, std::uint64_t seed) : stream_(stream), block_(block), rng_{seed} {}
    void fill(std::int64_t batch, std::vector<std::int32_t>& x, std::vector<std::int32_t>& y) {
        x.resize(static_cast<std::size_t>(batch * block_));
        y.resize(x.size());
        const auto offsets = static_cast<std::uint64_t>(stream_.size()) - static_cast<std::uint64_t>(block_);
        for (std::int64_t b = 0; b < batch; ++b) {
            const auto at = static_cast<std::size_t>(rng_.below(offsets));
            std::copy_n(stream_.begin() + static_cast<std::ptrdiff_t>(at), block_, x.begin() + b * block_);
            std::copy_n(stream_.begin() + static_cast<std::ptrdiff_t>(at) + 1, block_, y.begin() + b * block_);
        }
    }

  private:
    const std::vector<std::int32_t>& stream_;
    std::int64_t block_;
    SplitMix64 rng_;
};

// The non-overlapping windows of a stream: x and y, each (windows, block).
struct Windows {
    std::vector<std::int32_t> x, y;
    std::int64_t count = 0;
};
inline Windows windows(const std::vector<std::int32_t>& stream, std::int64_t block) {
    Windows w;
    for (std::size_t at = 0; at + static_cast<std::size_t>(block) + 1 <= stream.size(); at += static_cast<std::size_t>(block)) {
        w.x.insert(w.x.end(), stream.begin() + static_cast<std::ptrdiff_t>(at), stream.begin() + static_cast<std::ptrdiff_t>(at) + block);
        w.y.insert(w.y.end(), stream.begin() + static_cast<std::ptrdiff_t>(at) + 1, stream.begin() + static_cast<std::ptrdiff_t>(at) + block + 1);
        ++w.count;
    }
    return w;
}

}  // namespace examples::charlm
