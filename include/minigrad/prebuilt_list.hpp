// The op list of include/minigrad/prebuilt.hpp, for one backend. prebuilt.hpp reads it inside
// namespace minigrad once for Cpu and, in a file nvcc compiles, once for Cuda, with MINIGRAD_PB
// the backend and MINIGRAD_PREBUILT_OP(file, declaration) what an entry becomes there: an explicit
// instantiation in the library file the entry names (1 or 2), an `extern template` declaration in
// a file that links the library, nothing in a header-only build. No include guard: it is read
// once per backend.
#if !defined(MINIGRAD_PB) || !defined(MINIGRAD_PREBUILT_OP)
#error "prebuilt_list.hpp is read by prebuilt.hpp only"
#endif
#define MINIGRAD_PB_F Tensor<MINIGRAD_PB, float>
#define MINIGRAD_PB_I32 Tensor<MINIGRAD_PB, std::int32_t>
#define MINIGRAD_PB_I64 Tensor<MINIGRAD_PB, std::int64_t>

// Only functions whose return type is written out: an explicit instantiation declaration does not
// keep a file from compiling a function whose type is deduced (`auto`), nor an inline one.
#define MINIGRAD_PREBUILT_ONE_TENSOR(op) MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F op<MINIGRAD_PB, float>(const MINIGRAD_PB_F&))
MINIGRAD_PREBUILT_ONE_TENSOR(relu)
MINIGRAD_PREBUILT_ONE_TENSOR(sigmoid)
MINIGRAD_PREBUILT_ONE_TENSOR(tanh)
MINIGRAD_PREBUILT_ONE_TENSOR(exp)
MINIGRAD_PREBUILT_ONE_TENSOR(log)
MINIGRAD_PREBUILT_ONE_TENSOR(neg)
MINIGRAD_PREBUILT_ONE_TENSOR(sqrt)
MINIGRAD_PREBUILT_ONE_TENSOR(abs)
MINIGRAD_PREBUILT_ONE_TENSOR(sum)
MINIGRAD_PREBUILT_ONE_TENSOR(mean)
#undef MINIGRAD_PREBUILT_ONE_TENSOR
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F gelu<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, std::string_view))

#define MINIGRAD_PREBUILT_BINARY(op) \
    MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F op<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&)) \
    MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F op<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, float))
MINIGRAD_PREBUILT_BINARY(add)
MINIGRAD_PREBUILT_BINARY(sub)
MINIGRAD_PREBUILT_BINARY(mul)
MINIGRAD_PREBUILT_BINARY(div)
#undef MINIGRAD_PREBUILT_BINARY

MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F matmul<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F linear<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, const MINIGRAD_PB_F&))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F sum<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, std::int64_t, bool))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F mean<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, std::int64_t, bool))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F softmax<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, std::int64_t))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F log_softmax<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, std::int64_t))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F dropout<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, double, bool, Generator&))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F mse_loss<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, Reduction))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F cross_entropy<MINIGRAD_PB, float, std::int32_t>(const MINIGRAD_PB_F&, const MINIGRAD_PB_I32&, const CrossEntropyOptions&))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F cross_entropy<MINIGRAD_PB, float, std::int64_t>(const MINIGRAD_PB_F&, const MINIGRAD_PB_I64&, const CrossEntropyOptions&))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F conv2d<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, Conv2dOptions))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F max_pool2d<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, Size2, Size2, Size2))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F layer_norm<MINIGRAD_PB, float>(const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, const MINIGRAD_PB_F&, double))
MINIGRAD_PREBUILT_OP(2, MINIGRAD_PB_F embedding<MINIGRAD_PB, std::int64_t, float>(const MINIGRAD_PB_I64&, const MINIGRAD_PB_F&, std::optional<std::int64_t>))
// cross_entropy of (N, C, d...) logits: its permute and reshape (0.8 s of the README example's 5.7 s
// when it was the one entry)
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F detail::cross_entropy_over_dims<MINIGRAD_PB, float, std::int32_t>(const MINIGRAD_PB_F&, const MINIGRAD_PB_I32&, const CrossEntropyOptions&))
MINIGRAD_PREBUILT_OP(1, MINIGRAD_PB_F detail::cross_entropy_over_dims<MINIGRAD_PB, float, std::int64_t>(const MINIGRAD_PB_F&, const MINIGRAD_PB_I64&, const CrossEntropyOptions&))
MINIGRAD_PREBUILT_OP(1, void detail::run_backward<MINIGRAD_PB, float>(const std::shared_ptr<detail::TensorImpl<MINIGRAD_PB, float>>&))

#undef MINIGRAD_PB_F
#undef MINIGRAD_PB_I32
#undef MINIGRAD_PB_I64
