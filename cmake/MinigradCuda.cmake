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

include(${CMAKE_CURRENT_LIST_DIR}/minigradCudaSources.cmake)
