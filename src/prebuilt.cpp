// The prebuilt library (CMake target minigrad::prebuilt): the parts of minigrad that every file
// would otherwise compile again, compiled once. A file built with MINIGRAD_PREBUILT defined (the
// target defines it for its users) declares these extern and links them from here: the CPU
// product kernels for float and double, the common ops on Cpu float tensors and the
// backward pass (the list in include/minigrad/prebuilt.hpp, which minigrad.hpp instantiates here),
// and the file formats' entry points (read_csv, load_safetensors, save_safetensors; config.hpp).
// This is the library's first file: the file formats, the message formatter, compile_tape (the
// definitions under MINIGRAD_DEFINE_PREBUILT) and the list's entries marked 1. src/prebuilt_2.cpp,
// its second, compiles the product kernels and the entries marked 2: two halves, side by side.
#define MINIGRAD_PREBUILT_SOURCE 1
#include <minigrad/minigrad.hpp>

