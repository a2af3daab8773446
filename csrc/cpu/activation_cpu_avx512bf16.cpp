// The AVX-512 CPU loop for bf16 on processors that also have AVX512_BF16 (Cooper Lake, Sapphire
// Rapids, Zen 4 and later): the same loop as activation_cpu_avx512.cpp, except that it rounds its
// float results to bf16 with one vcvtne2ps2bf16 per 32 values instead of at::vec's portable
// rounding (about 16 instructions; see store_from_float in activation_cpu_impl.h). Only the bf16
// loop is built here: the other dtypes gain nothing from the instruction. activation_cpu.cpp
// chooses it at run time when at::get_cpu_capability() says AVX512 and the processor reports
// avx512bf16.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
// The standard library before the pragma: see activation_cpu_avx2.cpp (GCC bug 109753).
#include <bits/stdc++.h>
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c")
#include "isa_macros_avx512.h"
// at::vec's AVX-512 code, in an inline namespace of its own: the AVX512 build's inline functions
// must not be merged by the linker with these, which may use AVX512_BF16.
#define CPU_CAPABILITY AVX512_BF16
#define CPU_CAPABILITY_AVX512
#define FFN_CPU_ISA avx512bf16
#define FFN_CPU_NATIVE_BF16
#define FFN_CPU_BF16_ONLY
#include "activation_cpu_impl.h"
#define FFN_CPU_BUILT true
#else
#define FFN_CPU_BUILT false
#endif
#define FFN_CPU_ENTRY flat_range_avx512bf16
#define FFN_CPU_HAS has_avx512bf16_build
#include "activation_cpu_entry.h"
