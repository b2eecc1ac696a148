// LossLog: records scalar losses where they live (device memory on a GPU) without a host sync, and
// hands them all back in one read at the end. This is the fix for PyTorch's per-epoch loss.item().
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <typeinfo>
#include <vector>

#include "backend/kernels.hpp"
#include "capture/state.hpp"
#include "counters.hpp"
#include "error.hpp"
#include "tensor.hpp"

namespace minigrad::kernels {

// Where a loss log writes: one slot per record, the count kept beside the data so that a replayed
// graph appends instead of overwriting.
struct LogSlots {
    float* values;
    index_t count;
    index_t capacity;
};

// src is (1); one index
template <class T>
struct RecordScalar {
    const T* src;
    LogSlots* log;
    MINIGRAD_HD void operator()(index_t) const {
        if (log->count < log->capacity) log->values[log->count] = static_cast<float>(src[0]);
        ++log->count;
    }
};

// Points a log at new (larger) storage, keeping its count; one index
struct SetLogStorage {
    LogSlots* log;
    float* values;
    index_t capacity;
    MINIGRAD_HD void operator()(index_t) const {
        log->values = values;
        log->capacity = capacity;
    }
};

// The functors a LossLog launches, for compiled steps (kernels::Functors, backend/kernels.hpp).
template <class T>
using LossLogFunctors = Functors<RecordScalar<T>, SetLogStorage>;

}  // namespace minigrad::kernels

namespace minigrad {


class LossLog : private detail::ReplayHook {
  public:
    // Room for initial_capacity values before the first growth (at least 1; at most what a
    // tensor may hold, so the byte count cannot overflow).
    explicit LossLog(std::int64_t initial_capacity = 1024) : initial_capacity_(std::max<std::int64_t>(initial_capacity, 1)) {
        if (initial_capacity_ > Shape::max_numel / 2) {
            detail::fail<ValueError>("LossLog: initial_capacity={} is more values than can be addressed (at most {})",
                                     initial_capacity, Shape::max_numel / 2);
        }
    }
    LossLog(const LossLog&) = delete;
    LossLog& operator=(const LossLog&) = delete;

    // Appends loss (a 1-element tensor) on its own backend: no host read, no sync.
    template <class B, class T>
    void record(const Tensor<B, T>& loss) {
        if (loss.numel() != 1) {
            detail::fail<ShapeError>("LossLog::record: the loss has shape {}, expected a scalar (1 element)", loss.shape());
        }
        auto& storage = storage_for<B>(loss.device());
        if (auto* capture = detail::active_capture()) {
            // Inside a capture nothing runs now: each replay appends one value.
            capture->add(this);
        } else {
            reserve_one();
        }
        B::launch(1, kernels::RecordScalar<T>{loss.data(), storage.slots}, loss.device());
    }

    std::int64_t size() const { return count_; }

    // Every recorded value, in order: one host read (and one sync on a device backend).
    std::vector<float> values() const {
        std::vector<float> out(static_cast<std::size_t>(count_));
        if (storage_ && count_ > 0) storage_->read(out.data(), count_);
        ++counters().host_reads;
        return out;
    }

    // The most recent value: one host read of one float (use it sparingly, e.g. for progress lines).
    float latest() const {
        if (count_ == 0) detail::fail<Error>("LossLog::latest: nothing has been recorded yet");
        float value = 0;
        storage_->read_at(&value, count_ - 1);
        ++counters().host_reads;
        return value;
    }

    void clear() {
        count_ = 0;
        if (storage_) storage_->reset();
    }

  private:
    struct StorageBase {
        virtual ~StorageBase() = default;
        virtual void grow(std::int64_t count, std::int64_t capacity) = 0;
        virtual void read(float* dst, std::int64_t count) const = 0;
        virtual void read_at(float* dst, std::int64_t index) const = 0;
        virtual void reset() = 0;
        kernels::LogSlots* slots = nullptr;  // backend memory
        float* values = nullptr;             // backend memory
        std::int64_t capacity = 0;
        int device = 0;
    };

    template <class B>
    struct Storage : StorageBase {
        Storage(std::int64_t cap, int dev) {
            this->device = dev;
            this->capacity = cap;
            this->values = static_cast<float*>(B::allocate_state(sizeof(float) * cap, dev));
            this->slots = static_cast<kernels::LogSlots*>(B::allocate_state(sizeof(kernels::LogSlots), dev));
            const kernels::LogSlots init{this->values, 0, cap};
            B::upload(this->slots, &init, sizeof init, dev);
        }
        ~Storage() override {
            B::deallocate(this->values, sizeof(float) * this->capacity, this->device);
            B::deallocate(this->slots, sizeof(kernels::LogSlots), this->device);
        }
        void grow(std::int64_t count, std::int64_t cap) override {
            auto* bigger = static_cast<float*>(B::allocate_state(sizeof(float) * cap, this->device));
            B::copy(bigger, this->values, sizeof(float) * count, this->device);
            B::launch(1, kernels::SetLogStorage{this->slots, bigger, cap}, this->device);
            B::deallocate(this->values, sizeof(float) * this->capacity, this->device);
            this->values = bigger;
            this->capacity = cap;
        }
        void read(float* dst, std::int64_t count) const override {
            B::download(dst, this->values, sizeof(float) * count, this->device);
        }
        void read_at(float* dst, std::int64_t index) const override {
            B::download(dst, this->values + index, sizeof(float), this->device);
        }
        void reset() override {
            const kernels::LogSlots init{this->values, 0, this->capacity};
            B::upload(this->slots, &init, sizeof init, this->device);
        }
    };

    template <class B>
    StorageBase& storage_for(int device) {
        if (!storage_) {
            storage_ = std::make_unique<Storage<B>>(initial_capacity_, device);
            backend_ = &typeid(B);
            device_ = device;
        } else if (*backend_ != typeid(B) || device_ != device) {
            detail::fail<DeviceError>("LossLog::record: this log holds losses from another backend or device; "
                                      "use one LossLog per backend and device");
        }
        return *storage_;
    }

    // Makes room for one more value, growing in stream order (no sync) when full.
    void reserve_one() {
        if (count_ == storage_->capacity) storage_->grow(count_, storage_->capacity * 2);
        ++count_;
    }
    void before_replay(std::int64_t steps) override {
        for (std::int64_t s = 0; s < steps; ++s) reserve_one();
    }

    std::int64_t initial_capacity_;
    std::int64_t count_ = 0;
    std::unique_ptr<StorageBase> storage_;
    const std::type_info* backend_ = nullptr;
    int device_ = 0;
};

}  // namespace minigrad
