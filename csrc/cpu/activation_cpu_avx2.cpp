// The CPU vector loop built for AVX2 + FMA (8 floats a vector, Sleef's exp and erfc), chosen at run
// time by activation_cpu.cpp when the processor has AVX2 (at::get_cpu_capability(), which also
// honours ATEN_CPU_CAPABILITY). The instruction set is enabled here by pragma rather than by a
// per-file compiler flag so that setup.py and CMake build one identical source list with one set
// of flags; at::vec needs CPU_CAPABILITY* defined before it is included.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC target("avx2,fma,f16c")
// g++ does not define the instruction-set macros for a target pragma; the headers below (sleef.h,
// at::vec) choose their AVX2 declarations by them.
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
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#define FFN_CPU_ISA avx2
#include "activation_cpu_impl.h"

namespace ffn_ext::cpu {
// Exported under a plain name so that activation_cpu.cpp needs no AVX2 headers.
void flat_range_avx2(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                     void* const* out, int64_t begin, int64_t end) {
  avx2::flat_range(d, dtype, in, out, begin, end);
}
bool has_avx2_build() { return true; }
}  // namespace ffn_ext::cpu
#else
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include "ffn_ext/kernels.h"
namespace ffn_ext::cpu {
void flat_range_avx2(const KernelDesc&, c10::ScalarType, const void* const*, void* const*, int64_t,
                     int64_t) {
  TORCH_INTERNAL_ASSERT(false, "ffn_ext: built without the AVX2 CPU loop");
}
bool has_avx2_build() { return false; }
}  // namespace ffn_ext::cpu
#endif
