// The CPU vector loop built for AVX-512 (F, BW, DQ, VL + FMA: 16 floats a vector, the set that
// PyTorch's own AVX512 kernels use), chosen at run time by activation_cpu.cpp when
// at::get_cpu_capability() says AVX512. Enabled by pragma, as in activation_cpu_avx2.cpp.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
// The standard library before the pragma: see activation_cpu_avx2.cpp (GCC bug 109753).
#include <bits/stdc++.h>
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
#include "isa_macros_avx512.h"
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#define FFN_CPU_ISA avx512
#include "activation_cpu_impl.h"
#define FFN_CPU_BUILT true
#else
#define FFN_CPU_BUILT false
#endif
#define FFN_CPU_ENTRY flat_range_avx512
#define FFN_CPU_HAS has_avx512_build
#define FFN_CPU_TRANSPOSE transpose_tile_avx512
#include "activation_cpu_entry.h"
