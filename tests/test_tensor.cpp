// Tensor creation, moving, reading, printing, and the counters that track host reads.
#include "helpers.hpp"

TEST_CASE_TEMPLATE("creation from host data, zeros, ones, full", T, float, double) {
    auto t = mg::Tensor<mg::Cpu, T>::from(std::vector<T>{1, 2, 3, 4, 5, 6}, mg::Shape{2, 3});
    CHECK(t.shape() == mg::Shape{2, 3});
    CHECK(t.numel() == 6);
    CHECK(t.to_vector() == std::vector<T>{1, 2, 3, 4, 5, 6});
    CHECK(mg::Tensor<mg::Cpu, T>::zeros({2}).to_vector() == std::vector<T>{0, 0});
    CHECK(mg::Tensor<mg::Cpu, T>::ones({2}).to_vector() == std::vector<T>{1, 1});
    CHECK(mg::Tensor<mg::Cpu, T>::full({3}, T(7)).to_vector() == std::vector<T>{7, 7, 7});
}

TEST_CASE("from() rejects a value count that does not fit the shape") {
    CHECK(error_message([] { mg::Tensor<mg::Cpu>::from(std::vector<float>{1, 2, 3}, {2, 2}); }) ==
          "Tensor::from: 3 values given for shape [2, 2], which holds 4");
}

TEST_CASE("uniform draws from the seeded generator: same seed, same values, in range") {
    mg::manual_seed(5);
    auto a = mg::Tensor<mg::Cpu>::uniform({100}, -0.5, 0.5).to_vector();
    mg::manual_seed(5);
    auto b = mg::Tensor<mg::Cpu>::uniform({100}, -0.5, 0.5).to_vector();
    CHECK(a == b);
    for (float v : a) CHECK((v >= -0.5f && v < 0.5f));
    auto c = mg::Tensor<mg::Cpu>::uniform({100}, -0.5, 0.5).to_vector();
    CHECK(a != c);
}

TEST_CASE("seeds that differ only in the high 32 bits draw different values; seeds below 2^32 draw as std::mt19937(seed)") {
    constexpr std::uint64_t high = 1ull << 32;
    mg::manual_seed(0);
    auto low_seed = mg::Tensor<mg::Cpu>::uniform({8}, 0, 1).to_vector();
    mg::manual_seed(high);
    auto high_seed = mg::Tensor<mg::Cpu>::uniform({8}, 0, 1).to_vector();
    CHECK(low_seed != high_seed);

    mg::Generator constructed(7 + high), reseeded(0);
    reseeded.seed(7 + high);
    CHECK(constructed.engine()() == reseeded.engine()());
    CHECK(mg::Generator(7 + high).engine()() != mg::Generator(7).engine()());

    // The existing goldens were drawn with the 32-bit seed given to std::mt19937 directly.
    for (std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{2024}, high - 1}) {
        mg::Generator gen(seed);
        std::mt19937 reference(static_cast<std::uint32_t>(seed));
        CHECK(gen.engine()() == reference());
        gen.seed(seed);
        reference.seed(static_cast<std::uint32_t>(seed));
        CHECK(gen.engine()() == reference());
    }
}

TEST_CASE("to<Cpu>() is a copy, detach() shares storage without history") {
    auto a = tensor({1, 2}, {2}, true);
    auto copy = a.to<mg::Cpu>();
    copy.data()[0] = 42;
    CHECK(a.to_vector()[0] == 1);
    CHECK_FALSE(copy.requires_grad());
    auto view = a.detach();
    view.data()[1] = 9;
    CHECK(a.to_vector()[1] == 9);
    CHECK_FALSE(view.requires_grad());
}

TEST_CASE("item() and to_vector() are counted host reads; item() needs one element") {
    auto a = tensor({3}, {1});
    const auto before = mg::counters().host_reads;
    CHECK(a.item() == 3);
    (void)a.to_vector();
    CHECK(mg::counters().host_reads == before + 2);
    CHECK(error_message([] { tensor({1, 2}, {2}).item(); }) == "item: the tensor has shape [2] (2 elements), expected exactly 1 element");
}

TEST_CASE("printing shows values, backend and shape") {
    CHECK(fmt::format("{}", tensor({1, 2, 3, 4}, {2, 2})) == "tensor([[1, 2],\n        [3, 4]], backend=Cpu, shape=[2, 2])");
    CHECK(fmt::format("{}", tensor({1.5, 2}, {2}, true)) == "tensor([1.5, 2], backend=Cpu, shape=[2], requires_grad)");
    CHECK(fmt::format("{}", mg::Shape{120, 4}) == "[120, 4]");
    CHECK(fmt::format("{}", mg::Tensor<mg::Cpu>{}) == "tensor(undefined)");
}

TEST_CASE("an undefined tensor says so") {
    mg::Tensor<mg::Cpu> t;
    CHECK(error_message([&] { (void)t.shape(); }).find("undefined") != std::string::npos);
    auto w = tensor({1}, {1}, true);
    CHECK_FALSE(w.grad().defined());  // no backward yet: like PyTorch's None
}

TEST_CASE("requires_grad_(false) on an op's result points to detach()") {
    auto w = tensor({1}, {1}, true);
    auto y = mg::relu(w);
    CHECK(error_message([&] { y.requires_grad_(false); }) == "requires_grad_: this tensor is the result of an op; use detach() instead");
}

TEST_CASE("the caching allocator reuses storage of the same size") {
    { auto warm = mg::Tensor<mg::Cpu>::zeros({37}); }
    const auto before = mg::counters().storage_allocs;
    for (int i = 0; i < 10; ++i) auto t = mg::Tensor<mg::Cpu>::zeros({37});
    CHECK(mg::counters().storage_allocs == before);
}

// A backend that is Cpu without one primitive: the concept must refuse it.
struct CpuWithoutGemm : mg::Cpu {
    static void gemm() = delete;  // hides Cpu::gemm(product, device)
};
struct CpuWithoutCapture : mg::Cpu {
    static void begin_capture() = delete;  // hides Cpu::begin_capture(pool, device)
};

TEST_CASE("the Backend concept (backend/concept.hpp): Cpu satisfies it; without a primitive a type does not") {
    static_assert(mg::Backend<mg::Cpu>);
    static_assert(!mg::Backend<CpuWithoutGemm>);
    static_assert(!mg::Backend<CpuWithoutCapture>);
    static_assert(!mg::Backend<int>);
    CHECK(mg::Backend<mg::Cpu>);
}
