// Reading safetensors (the format: safetensors.hpp): SafetensorsReader, and load_safetensors's
// definition. Included by safetensors.hpp where the file-format entry points are compiled (a
// header-only build, or src/prebuilt.cpp); a file that links minigrad::prebuilt and wants the
// reader itself (a test of the header checks) includes this header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.hpp"
#include "safetensors.hpp"

namespace minigrad::io {

// Reads a safetensors file: the constructor reads and checks the header against the file's size
// (and its checksums' keys); read() then reads one entry's bytes and verifies its checksum. Every
// error is an IoError naming the file and the entry.
class SafetensorsReader {
  public:
    struct Entry {
        std::string name;
        Dtype dtype;
        std::vector<std::int64_t> shape;
        std::uint64_t begin, end;            // within the data section
        std::optional<std::uint32_t> crc32;  // the checksum the file stores for it, if any
    };

    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, maybe forever, before
    // fstat could refuse it. A regular file ignores the flag; it is cleared all the same.
    explicit SafetensorsReader(const std::filesystem::path& path)
        : path_(path.string()), file_(::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
        if (file_.fd < 0) fail("cannot open it: {}", std::strerror(errno));
        struct stat st {};
        if (::fstat(file_.fd, &st) != 0) fail("cannot stat it: {}", std::strerror(errno));
        if (!S_ISREG(st.st_mode)) fail("is not a regular file ({})", detail::file_kind(st.st_mode));
        const int flags = ::fcntl(file_.fd, F_GETFL);
        if (flags < 0 || ::fcntl(file_.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) fail("cannot be read: {}", std::strerror(errno));
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (size < 8) fail("is truncated: {} bytes, but the header length alone takes 8", size);
        unsigned char length_bytes[8];
        read_at(length_bytes, 8, 0, "the header length");
        std::uint64_t header_bytes = 0;
        for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
        if (header_bytes > size - 8) fail("is truncated: the header length is {} bytes, but only {} follow it", header_bytes, size - 8);
        if (header_bytes > detail::max_header_bytes) fail("has a header of {} bytes, more than the limit of {}", header_bytes, detail::max_header_bytes);
        data_start_ = 8 + header_bytes;
        data_bytes_ = size - data_start_;
        std::string header(header_bytes, '\0');
        read_at(header.data(), header.size(), 8, "the header");
        parse(header);
    }

    const std::string& path() const { return path_; }
    const std::vector<Entry>& entries() const { return entries_; }  // in the order of their data
    const Metadata& metadata() const { return metadata_; }  // without the checksums' keys
    const Entry* find(std::string_view name) const {
        for (const auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }

    TensorData read(const Entry& e) const {
        TensorData t{e.name, e.dtype, e.shape, std::vector<std::byte>(e.end - e.begin)};
        read_at(t.bytes.data(), t.bytes.size(), data_start_ + e.begin, "the data of " + detail::quote(e.name));
        if (e.crc32) {
            const std::uint32_t actual = io::crc32(t.bytes.data(), t.bytes.size());
            if (actual != *e.crc32) {
                fail("is corrupt: tensor {} fails its checksum (stored crc32 {:08x}, its data has {:08x})", detail::quote(e.name), *e.crc32, actual);
            }
        }
        return t;
    }
    SafetensorsFile read_all() const {
        SafetensorsFile out{{}, metadata_};
        for (const auto& e : entries_) out.tensors.push_back(read(e));
        return out;
    }

  private:
    template <class... Args>
    [[noreturn]] void fail(minigrad::detail::FailFormat<Args...> format, Args&&... args) const {
        minigrad::detail::fail<IoError>("load_safetensors: {} {}", detail::quote_path(path_), minigrad::detail::format(format, std::forward<Args>(args)...));
    }

    void read_at(void* dst, std::size_t n, std::uint64_t offset, const std::string& what) const {
        auto* out = static_cast<char*>(dst);
        for (std::size_t done = 0; done < n;) {
            const auto got = ::pread(file_.fd, out + done, n - done, static_cast<off_t>(offset + done));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) fail("cannot be read ({}): {}", what, std::strerror(errno));
            if (got == 0) fail("is truncated: {} ends at byte {}, the file now ends at {}", what, offset + n, offset + done);
            done += static_cast<std::size_t>(got);
        }
    }

    void parse(const std::string& header) {
        json::Value root;
        try {
            root = json::parse(header, 3);  // header, entry, shape: no safetensors header nests deeper
        } catch (const json::ParseError& e) {
            if (e.kind == json::ParseError::Kind::TooDeep) fail("has a malformed header: it nests deeper than a safetensors header does");
            if (e.kind == json::ParseError::Kind::DuplicateKey) {
                fail("has a malformed header: the key {} appears twice{}", detail::quote(e.key), e.depth == 1 ? " (a duplicate tensor name)" : "");
            }
            fail("has a header that is not valid JSON: {}", detail::quote(e.message, 4 * detail::max_quoted));
        }
        if (!root.is_object()) fail("has a malformed header: it is not a JSON object");
        Metadata checksums;  // tensor name -> its checksum's text
        for (const auto& [name, value] : root.members) {
            if (name == "__metadata__") {
                if (!value.is_object()) fail("has a malformed header: '__metadata__' is not an object");
                for (const auto& [key, text] : value.members) {
                    if (!text.is_string()) fail("has a malformed header: metadata {} is not a string", detail::quote(key));
                    if (key.starts_with(checksum_prefix)) checksums[key.substr(checksum_prefix.size())] = text.text;
                    else metadata_[key] = text.text;
                }
                continue;
            }
            entries_.push_back(parse_entry(name, value));
        }
        check_layout();
        attach_checksums(checksums);
    }

    // Gives each entry its stored checksum. A file has one for every tensor or for none: with a
    // checksum missing, a bit flipped in its key's prefix would turn it into plain metadata and
    // leave its tensor unchecked.
    void attach_checksums(Metadata& checksums) {
        if (checksums.empty()) return;
        for (auto& e : entries_) {
            const auto it = checksums.find(e.name);
            if (it == checksums.end()) {
                fail("has a malformed header: tensor {} has no checksum, though other tensors have one", detail::quote(e.name));
            }
            const std::string_view text = it->second;
            std::uint32_t value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
            if (text.size() != 8 || ec != std::errc() || end != text.data() + text.size()) {
                fail("has a malformed header: the checksum of tensor {} is {}, expected a CRC-32 as 8 hex digits", detail::quote(e.name), detail::quote(text));
            }
            e.crc32 = value;
            checksums.erase(it);
        }
        if (!checksums.empty()) {
            const std::string key = std::string(checksum_prefix) + checksums.begin()->first;
            fail("has a malformed header: metadata {} is the checksum of a tensor the file does not hold", detail::quote(key));
        }
    }

    Entry parse_entry(const std::string& name, const json::Value& value) const {
        const auto who = "tensor " + detail::quote(name);
        if (!value.is_object()) fail("has a malformed header: {} is not an object", who);
        for (const auto& [key, v] : value.members) {
            if (key != "dtype" && key != "shape" && key != "data_offsets") {
                fail("has a malformed header: {} has the unknown key {} (expected dtype, shape, data_offsets)", who, detail::quote(key));
            }
        }
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!value.find(key)) fail("has a malformed header: {} has no '{}'", who, key);
        }
        Entry e{name, Dtype::F32, {}, 0, 0, std::nullopt};
        const auto& dtype = *value.find("dtype");
        if (!dtype.is_string()) fail("has a malformed header: {} has a dtype that is not a string", who);
        const auto& dname = dtype.text;
        bool known = false;
        for (Dtype d : {Dtype::F32, Dtype::F64, Dtype::I32, Dtype::I64, Dtype::F16, Dtype::BF16}) {
            if (dname == dtype_name(d)) e.dtype = d, known = true;
        }
        if (!known) fail("stores {} as dtype {}, which minigrad does not read (it reads F32, F64, F16, BF16, I32, I64)", who, detail::quote(dname));

        const auto& shape = *value.find("shape");
        if (!shape.is_array()) fail("has a malformed header: {} has a shape that is not an array", who);
        // The non-zero dims' product must fit, wherever a zero dim sits (as Shape's rule): a zero
        // would hide [0, 2^40, 2^40]'s overflow from a running product.
        std::uint64_t numel = 1;
        bool empty = false;
        for (const auto& d : shape.items) {
            if (!d.is_unsigned()) fail("has a malformed header: {} has shape {}, whose entries must be non-negative integers", who, detail::quote(json::dump(shape)));
            const auto dim = d.number;
            empty = empty || dim == 0;
            if (dim > static_cast<std::uint64_t>(INT64_MAX) || (dim != 0 && __builtin_mul_overflow(numel, dim, &numel))) {
                fail("has a malformed header: {} has shape {}, whose element count overflows", who, detail::quote(json::dump(shape)));
            }
            e.shape.push_back(static_cast<std::int64_t>(dim));
        }
        if (empty) numel = 0;
        std::uint64_t expected_bytes = 0;
        if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &expected_bytes)) {
            fail("has a malformed header: {} has shape {}, whose byte count overflows", who, detail::quote(json::dump(shape)));
        }

        const auto& offsets = *value.find("data_offsets");
        if (!offsets.is_array() || offsets.items.size() != 2 || !offsets.items[0].is_unsigned() || !offsets.items[1].is_unsigned()) {
            fail("has a malformed header: {} has data_offsets {}, expected two non-negative integers", who, detail::quote(json::dump(offsets)));
        }
        e.begin = offsets.items[0].number;
        e.end = offsets.items[1].number;
        if (e.begin > e.end) fail("has a malformed header: {} has data_offsets [{}, {}], which end before they begin", who, e.begin, e.end);
        if (e.end > data_bytes_) fail("is truncated: {} has data_offsets [{}, {}], but the data section has {} bytes", who, e.begin, e.end, data_bytes_);
        if (e.end - e.begin != expected_bytes) {
            fail("has a malformed header: {} has {} bytes of data, but shape {} of {} needs {}", who, e.end - e.begin,
                 detail::shape_text(e.shape), dtype_name(e.dtype), expected_bytes);
        }
        return e;
    }

    // The entries, in order of their data, must tile the data section: no overlap, no hole.
    void check_layout() {
        std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
        std::uint64_t covered = 0;
        const Entry* previous = nullptr;
        for (const auto& e : entries_) {
            if (e.begin < covered) {
                fail("has a malformed header: tensor {} (bytes [{}, {})) overlaps tensor {} (bytes [{}, {}))", detail::quote(e.name), e.begin, e.end,
                     detail::quote(previous->name), previous->begin, previous->end);
            }
            if (e.begin > covered) fail("has a malformed header: bytes [{}, {}) of the data section belong to no tensor", covered, e.begin);
            covered = e.end;
            previous = &e;
        }
        if (covered != data_bytes_) fail("has a malformed header: bytes [{}, {}) of the data section belong to no tensor", covered, data_bytes_);
    }

    std::string path_;
    detail::Fd file_;
    std::uint64_t data_start_ = 0, data_bytes_ = 0;
    std::vector<Entry> entries_;
    Metadata metadata_;
};

#if MINIGRAD_DEFINE_PREBUILT  // (config.hpp: with minigrad::prebuilt, the library's copy is called)
MINIGRAD_PREBUILT_INLINE SafetensorsFile load_safetensors(const std::filesystem::path& path) { return SafetensorsReader(path).read_all(); }
#endif

}  // namespace minigrad::io
