// The CPU vector loop built for AVX2 + FMA (8 floats a vector), chosen at run time by
// activation_cpu.cpp when the processor has AVX2 (at::get_cpu_capability(), which also honours
// ATEN_CPU_CAPABILITY). The instruction set is enabled by pragma rather than by a per-file
// compiler flag so that setup.py and CMake build one identical source list with one set of flags;
// at::vec needs CPU_CAPABILITY* defined before it is included.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
// The whole C++ standard library is included before the pragma, for the default target: from
// GCC 13 to 14.1, libstdc++'s always_inline members (std::allocator's destructor) otherwise fail
// to inline into implicitly defined functions with "target specific option mismatch" (GCC bug
// 109753; seen with GCC 13 on the GPU machine, 2026-11-26).
#include <bits/stdc++.h>
#pragma GCC target("avx2,fma,f16c")
#include "isa_macros.h"
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#define FFN_CPU_ISA avx2
#include "activation_cpu_impl.h"
#define FFN_CPU_BUILT true
#else
#define FFN_CPU_BUILT false
#endif
#define FFN_CPU_ENTRY flat_range_avx2
#define FFN_CPU_HAS has_avx2_build
#define FFN_CPU_TRANSPOSE transpose_tile_avx2
#include "activation_cpu_entry.h"
