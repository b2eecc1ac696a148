# pkg-config files for builds without CMake, installed beside the CMake package:
#   minigrad.pc           the headers, with the flags this configuration's minigrad::minigrad carries
#                         (C++20, fmt, OpenBLAS and OpenMP where found)
#   minigrad-prebuilt.pc  minigrad.pc and libminigrad_prebuilt.a, as minigrad::prebuilt
# In ${libdir}/pkgconfig, not share/pkgconfig: they name a static library and flags of this
# configuration. Their prefix is found from where the file lies (${pcfiledir}), so an install
# moved, or made with `cmake --install --prefix` (which does not configure again), stays right.
# They describe a host compiler's build; a file that uses mg::Cuda needs nvcc and CMake's
# minigrad_cuda_sources(). mg::dist (MPI) is not described.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MINIGRAD_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")  # an absolute libdir is not under the prefix
else()
  file(RELATIVE_PATH _minigrad_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" _minigrad_pc_up "${_minigrad_pc_up}")
  set(MINIGRAD_PC_PREFIX "\${pcfiledir}/${_minigrad_pc_up}")
endif()
foreach(_minigrad_dir INCLUDEDIR LIBDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_minigrad_dir}}")
    set(MINIGRAD_PC_${_minigrad_dir} "${CMAKE_INSTALL_${_minigrad_dir}}")
  else()
    set(MINIGRAD_PC_${_minigrad_dir} "\${prefix}/${CMAKE_INSTALL_${_minigrad_dir}}")
  endif()
endforeach()

# What minigrad::minigrad links (CMakeLists.txt, cmake/MinigradCpu.cmake), as flags.
set(MINIGRAD_PC_REQUIRES "fmt")
set(MINIGRAD_PC_CFLAGS "")
set(MINIGRAD_PC_LIBS " -pthread")
if(MINIGRAD_HAS_BLAS)
  string(APPEND MINIGRAD_PC_CFLAGS " -DMINIGRAD_HAS_BLAS=1 -DMINIGRAD_HAS_OPENBLAS=1")
  # OpenBLAS's own openblas.pc where pkg-config finds it (Debian's libopenblas-dev has one);
  # otherwise the header folder and library CMake found.
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(MINIGRAD_PC_OPENBLAS QUIET openblas)
  endif()
  if(MINIGRAD_PC_OPENBLAS_FOUND)
    string(APPEND MINIGRAD_PC_REQUIRES " openblas")
  else()
    string(APPEND MINIGRAD_PC_CFLAGS " -I${MINIGRAD_CBLAS_INCLUDE_DIR}")
    foreach(_minigrad_lib IN LISTS BLAS_LIBRARIES)
      string(APPEND MINIGRAD_PC_LIBS " ${_minigrad_lib}")
    endforeach()
  endif()
endif()
if(MINIGRAD_HAS_OPENMP)
  string(APPEND MINIGRAD_PC_CFLAGS " ${OpenMP_CXX_FLAGS}")
  string(APPEND MINIGRAD_PC_LIBS " ${OpenMP_CXX_FLAGS}")
endif()
# libminigrad_prebuilt.a built with sanitizers needs their runtime wherever it is linked
set(MINIGRAD_PC_PREBUILT_LIBS "")
if(MINIGRAD_SANITIZE)
  set(MINIGRAD_PC_PREBUILT_LIBS " -fsanitize=address,undefined")
elseif(MINIGRAD_TSAN)
  set(MINIGRAD_PC_PREBUILT_LIBS " -fsanitize=thread")
endif()

configure_file(cmake/minigrad.pc.in ${CMAKE_CURRENT_BINARY_DIR}/minigrad.pc @ONLY)
configure_file(cmake/minigrad-prebuilt.pc.in ${CMAKE_CURRENT_BINARY_DIR}/minigrad-prebuilt.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/minigrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# In a consumer's build (add_subdirectory, FetchContent) the prebuilt library is built only if
# linked, and installed only if built; its .pc file is installed where it always is.
if(PROJECT_IS_TOP_LEVEL)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/minigrad-prebuilt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
