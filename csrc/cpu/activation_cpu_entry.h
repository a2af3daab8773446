// The exported entries of one instruction-set build of the CPU loop, under plain names so that
// activation_cpu.cpp needs none of that instruction set's headers. The includer defines
// FFN_CPU_ENTRY / FFN_CPU_HAS (the names), FFN_CPU_BUILT (whether this compiler could build the
// loop) and, when it could, FFN_CPU_ISA (the namespace holding it). FFN_CPU_TRANSPOSE, where
// defined, names the build's block transposition (transpose_tile) as well. FFN_CPU_BF16_ONLY: the
// build holds the bf16 loop alone, and the entry refuses any other dtype.
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cstdint>

#include "ffn_ext/kernels.h"

namespace ffn_ext::cpu {
void FFN_CPU_ENTRY(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                   void* const* out, int64_t begin, int64_t end, unsigned one, OpmathOut sum) {
#if FFN_CPU_BUILT
#if defined(FFN_CPU_BF16_ONLY)
  TORCH_INTERNAL_ASSERT(dtype == c10::ScalarType::BFloat16, "ffn_ext: ", dtype,
                        " sent to the bf16-only CPU loop");
  FFN_CPU_ISA::flat_range_of<c10::BFloat16>(d, in, out, begin, end, one, sum);
#else
  FFN_CPU_ISA::flat_range(d, dtype, in, out, begin, end, one, sum);
#endif
#else
  (void)d, (void)dtype, (void)in, (void)out, (void)begin, (void)end, (void)one, (void)sum;
  TORCH_INTERNAL_ASSERT(false, "ffn_ext: this CPU loop was not built by this compiler");
#endif
}
bool FFN_CPU_HAS() { return FFN_CPU_BUILT; }
#if defined(FFN_CPU_TRANSPOSE)
void FFN_CPU_TRANSPOSE(const void* src, int64_t lds, void* dst, int64_t ldd, int64_t m, int64_t n,
                       int64_t es) {
#if FFN_CPU_BUILT
  FFN_CPU_ISA::transpose_tile(src, lds, dst, ldd, m, n, es);
#else
  (void)src, (void)lds, (void)dst, (void)ldd, (void)m, (void)n, (void)es;
  TORCH_INTERNAL_ASSERT(false, "ffn_ext: this CPU loop was not built by this compiler");
#endif
}
#endif
}  // namespace ffn_ext::cpu
