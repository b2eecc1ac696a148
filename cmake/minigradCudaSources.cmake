# minigrad_cuda_sources(target source...): compiles the given C++ sources of `target` with nvcc, so
# that they can use mg::Cuda, and links the CUDA runtime and cuBLAS (large matrix products). Installed with the package: a consumer
# gets it from find_package(minigrad), add_subdirectory or FetchContent. The project must have
# enabled the CUDA language (project(app LANGUAGES CXX CUDA) or enable_language(CUDA)).
function(minigrad_cuda_sources target)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "minigrad_cuda_sources(${target}): the CUDA language is not enabled; "
                        "add CUDA to project(... LANGUAGES CXX CUDA) or call enable_language(CUDA) first")
  endif()
  if(NOT TARGET CUDA::cudart)
    find_package(CUDAToolkit REQUIRED)
  endif()
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CUDA)
  target_compile_definitions(${target} PRIVATE MINIGRAD_HAS_CUDA=1)
  # -std=c++20 by hand: CMake 3.25 does not know nvcc 13's C++20 flag for CUDA_STANDARD.
  # 20208: "long double is treated as double in device code", raised by fmt/std headers that no
  # kernel uses.
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --extended-lambda --expt-relaxed-constexpr -diag-suppress=20208>)
  target_link_libraries(${target} PRIVATE CUDA::cudart CUDA::cublas)
endfunction()
