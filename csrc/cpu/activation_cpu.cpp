// CPU engine of the element-wise activation and gating ops, and their registration for the CPU
// dispatch key. Dense operands take the vector loop (activation_cpu_impl.h; AVX-512 or AVX2 when
// the processor has it), split across threads with at::parallel_for; operands that are rows with
// unit inner stride (the halves of a packed tensor, slices of a wider buffer) take the same loop row
// by row; a tensor beta, in op-math precision and per channel or one value, goes with them. Any
// other layout (strided slices, transposed views beside dense ones) takes a scalar loop driven by
// TensorIterator, which is also parallel.
#define FFN_CPU_ISA base
#include "activation_cpu_impl.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "ffn_ext/activation_ops.h"
#include "ffn_ext/gating_ops.h"
#include "ffn_ext/engine_common.h"

namespace ffn_ext::cpu {

// Defined in activation_cpu_avx2.cpp, activation_cpu_avx512.cpp and activation_cpu_avx512bf16.cpp.
void flat_range_avx2(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                     void* const* out, int64_t begin, int64_t end, unsigned one);
void flat_range_avx512(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                       void* const* out, int64_t begin, int64_t end, unsigned one);
void flat_range_avx512bf16(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                           void* const* out, int64_t begin, int64_t end, unsigned one);
bool has_avx2_build();
bool has_avx512_build();
bool has_avx512bf16_build();

namespace {

using FlatFn = void (*)(const KernelDesc&, c10::ScalarType, const void* const*, void* const*,
                        int64_t, int64_t, unsigned);

struct Loop {
  FlatFn fn;
  const char* name;
};

// Whether the processor has AVX512_BF16 and the user has not turned its loop off
// (FFN_EXT_CPU_NATIVE_BF16=0, which gives the portable bf16 rounding of the AVX512 loop).
bool use_native_bf16() {
  const char* env = std::getenv("FFN_EXT_CPU_NATIVE_BF16");
  if (env != nullptr && std::string(env) == "0") return false;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

// The vector loop for float, double and fp16 (first) and for bf16 (second), chosen once.
const std::pair<Loop, Loop>& loops() {
  static const std::pair<Loop, Loop> chosen = [] {
    const std::string cap = at::get_cpu_capability();  // honours ATEN_CPU_CAPABILITY
    Loop main{&base::flat_range, "default"};
    if (cap == "AVX512" && has_avx512_build()) {
      main = {&flat_range_avx512, "avx512"};
    } else if ((cap == "AVX2" || cap == "AVX512") && has_avx2_build()) {
      main = {&flat_range_avx2, "avx2"};
    }
    Loop bf16 = main;
    if (main.fn == &flat_range_avx512 && has_avx512bf16_build() && use_native_bf16())
      bf16 = {&flat_range_avx512bf16, "avx512_bf16"};
    return std::make_pair(main, bf16);
  }();
  return chosen;
}

FlatFn flat_fn(c10::ScalarType dtype) {
  return dtype == c10::ScalarType::BFloat16 ? loops().second.fn : loops().first.fn;
}

// Elements per task: the activations cost tens of flops per element, so a task of 16K elements
// amortises the thread hand-off while still splitting 1 MB tensors across both cores.
constexpr int64_t kGrain = 16384;

template <typename scalar_t, typename F>
void strided_loop(at::TensorIterator& iter, const F& f) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT, NT = NIN + NOUT;
  iter.for_each(
      [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        for (int64_t j = 0; j < n1; ++j) {
          char* base[NT];
          for (int k = 0; k < NT; ++k) base[k] = data[k] + j * strides[NT + k];
          for (int64_t i = 0; i < n0; ++i) {
            opmath_t a[NIN], o[NOUT];
            for (int k = 0; k < NIN; ++k) {
              const char* p = base[NOUT + k] + i * strides[NOUT + k];
              a[k] = ((F::IN_OPMATH >> k) & 1u)
                         ? *reinterpret_cast<const opmath_t*>(p)
                         : static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(p));
            }
            f(a, o);
            for (int k = 0; k < NOUT; ++k) {
              char* p = base[k] + i * strides[k];
              if ((F::OUT_OPMATH >> k) & 1u)
                *reinterpret_cast<opmath_t*>(p) = o[k];
              else
                *reinterpret_cast<scalar_t*>(p) = static_cast<scalar_t>(o[k]);
            }
          }
        }
      },
      kGrain);
}

struct CpuEngine {
  static void run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins) {
    const int64_t n = outs[0].numel();
    if (n == 0) return;
    const c10::ScalarType dtype = outs[0].scalar_type();
    const size_t no = outs.size(), ni = ins.size();
    // The kernel's op-math operands (a tensor beta, its gradients): they may be stored in op-math
    // precision beside fp16/bf16 operands, and one that holds a single value (a 0-dim beta
    // expanded to x's shape) is read once, so that the vector loops serve them too.
    unsigned opmath = 0, one = 0;
    dispatch_float(dtype, [&](auto tag) {
      with_kernel<at::opmath_type<decltype(tag)>>(d, [&](auto f) {
        using F = decltype(f);
        opmath = F::OUT_OPMATH | (F::IN_OPMATH << no);
        for (size_t k = 0; k < ni; ++k) {
          if (((F::IN_OPMATH >> k) & 1u) && one_value(ins[k])) one |= 1u << k;
        }
      });
    });
    if (flat_layout(outs, ins, opmath, one)) {
      const void* in[8];
      void* out[8];
      for (size_t k = 0; k < ni; ++k) in[k] = ins[k].const_data_ptr();
      for (size_t k = 0; k < no; ++k) out[k] = outs[k].mutable_data_ptr();
      const FlatFn fn = flat_fn(dtype);
      at::parallel_for(0, n, kGrain,
                       [&](int64_t begin, int64_t end) { fn(d, dtype, in, out, begin, end, one); });
      return;
    }
    RowLayout rl;
    if (row_layout(outs, ins, rl, opmath, one)) {
      // The vector loop runs along each row (row stride 0: one row repeated, or one value).
      const char* in0[8];
      char* out0[8];
      int64_t es[8];  // element sizes, outputs first
      for (size_t k = 0; k < no; ++k) {
        out0[k] = static_cast<char*>(outs[k].mutable_data_ptr());
        es[k] = static_cast<int64_t>(outs[k].element_size());
      }
      for (size_t k = 0; k < ni; ++k) {
        in0[k] = static_cast<const char*>(ins[k].const_data_ptr());
        es[no + k] = static_cast<int64_t>(ins[k].element_size());
      }
      const FlatFn fn = flat_fn(dtype);
      const int64_t grain = std::max<int64_t>(1, kGrain / rl.d);
      at::parallel_for(0, rl.rows, grain, [&](int64_t r0, int64_t r1) {
        const void* in[8];
        void* out[8];
        for (int64_t r = r0; r < r1; ++r) {
          for (size_t k = 0; k < no; ++k) out[k] = out0[k] + r * rl.row_stride[k] * es[k];
          for (size_t k = 0; k < ni; ++k) in[k] = in0[k] + r * rl.row_stride[no + k] * es[no + k];
          fn(d, dtype, in, out, 0, rl.d, one);
        }
      });
      return;
    }
    at::TensorIterator iter = strided_iter(outs, ins);
    dispatch_float(dtype, [&](auto tag) {
      using scalar_t = decltype(tag);
      with_kernel<at::opmath_type<scalar_t>>(d, [&](auto f) {
        TORCH_INTERNAL_ASSERT(decltype(f)::NIN == (int)ins.size() &&
                              decltype(f)::NOUT == (int)outs.size());
        strided_loop<scalar_t>(iter, f);
      });
    });
  }
};

}  // namespace

// For ffn_ext.info() (the _cpu_loops op): which vector loop each dtype takes on this processor.
std::string loop_names() {
  return std::string("float32=") + loops().first.name + "\nfloat64=" + loops().first.name +
         "\nfloat16=" + loops().first.name + "\nbfloat16=" + loops().second.name + "\n";
}

}  // namespace ffn_ext::cpu

TORCH_LIBRARY_IMPL(ffn_ext, CPU, m) {
  ffn_ext::register_activation_ops<ffn_ext::cpu::CpuEngine>(m);
  ffn_ext::register_gating_ops<ffn_ext::cpu::CpuEngine>(m);
}
