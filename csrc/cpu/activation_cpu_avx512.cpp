// The CPU vector loop built for AVX-512 (F, BW, DQ, VL + FMA: 16 floats a vector, the set that
// PyTorch's own AVX512 kernels use), chosen at run time by activation_cpu.cpp when
// at::get_cpu_capability() says AVX512. Enabled by pragma, as in activation_cpu_avx2.cpp.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
// The whole C++ standard library is included before the pragma, for the default target: from
// GCC 13 to 14.1, libstdc++'s always_inline members (std::allocator's destructor) otherwise fail
// to inline into implicitly defined functions with "target specific option mismatch" (GCC bug
// 109753; seen with GCC 13 on the GPU machine, 2026-11-26).
#include <bits/stdc++.h>
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
#ifndef __AVX512F__
#define __AVX512F__ 1
#endif
#ifndef __AVX512BW__
#define __AVX512BW__ 1
#endif
#ifndef __AVX512DQ__
#define __AVX512DQ__ 1
#endif
#ifndef __AVX512VL__
#define __AVX512VL__ 1
#endif
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
#include "activation_cpu_entry.h"
