# Finds CUDA for the parts of minigrad's own build that use it (examples, GPU tests, benchmarks).
# The library target itself needs nothing: CudaBackend appears only in files nvcc compiles.
set(MINIGRAD_HAS_CUDA OFF)
if(NOT MINIGRAD_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Hopper (H100/H200) by default; builds with no GPU present.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(MINIGRAD_HAS_CUDA ON)
    find_package(CUDAToolkit REQUIRED)
  elseif(MINIGRAD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MINIGRAD_CUDA=ON but no CUDA compiler was found (install the CUDA Toolkit or set CUDACXX)")
  else()
    message(STATUS "minigrad: no CUDA compiler found; building the Cpu backend only")
  endif()
endif()

# Compiles `source` (a .cpp shared with the Cpu build) with nvcc and links the CUDA runtime.
function(minigrad_cuda_sources target)
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CUDA)
  target_compile_definitions(${target} PRIVATE MINIGRAD_HAS_CUDA=1)
  # -std=c++20 by hand: CMake 3.25 does not know nvcc 13's C++20 flag for CUDA_STANDARD.
  # 20208: "long double is treated as double in device code", raised by fmt/std headers that no
  # kernel uses.
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --extended-lambda --expt-relaxed-constexpr -diag-suppress=20208>)
  target_link_libraries(${target} PRIVATE CUDA::cudart)
endfunction()
