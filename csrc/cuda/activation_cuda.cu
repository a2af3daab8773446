// CUDA engine of the element-wise activation and gating ops, and their registration for the CUDA
// dispatch key. (Gating operands that are not one dense layout, such as the halves of a packed
// tensor, take the strided kernel for now: a row kernel with a decode-sized launch geometry is to
// come with GPU measurements.)
//
// Two kernels serve every activation functor (csrc/include/ffn_ext/kernels.h):
//  * flat_kernel: all operands dense with one layout. Each thread moves 16 bytes per operand per
//    load (VEC elements) when every pointer is 16-byte aligned, else one element (VEC = 1, same
//    code); UNROLL loads per operand are issued before the first use so that enough bytes are in
//    flight to reach DRAM bandwidth. 64-bit indices; one tile (kThreads * kUnroll packs) per block.
//  * strided_kernel: any other layout, from TensorIterator's coalesced shape and byte strides
//    (slices, broadcast beta, op-math operands beside fp16/bf16 ones). One element per thread,
//    64-bit offsets.
// Every entry point takes a device guard for the output's device, launches on the current
// stream and checks the launch.
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "fast_float.cuh"
#include "ffn_ext/activation_ops.h"
#include "ffn_ext/gating_ops.h"
#include "ffn_ext/dispatch.h"
#include "ffn_ext/engine_common.h"

namespace ffn_ext::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;
constexpr int kMaxOperands = 8;
constexpr int kMaxDims = 25;  // TensorIterator's coalesced dimensions, as in ATen's OffsetCalculator

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

struct FlatArgs {
  const void* in[kMaxOperands];  // each [n], dense, the output's layout
  void* out[kMaxOperands];       // each [n]
};

// W: the type the functor computes in (op-math, or FastFloat for fp16/bf16; fast_float.cuh).
template <typename scalar_t, typename W, int VEC, typename F>
__global__ void __launch_bounds__(kThreads)
    flat_kernel(FlatArgs args, int64_t n, F f) {
  using opmath_t = at::opmath_type<scalar_t>;
  using P = Pack<scalar_t, VEC>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT;
  const int64_t npack = n / VEC;
  const int64_t tile = int64_t(kThreads) * kUnroll;
  for (int64_t base = int64_t(blockIdx.x) * tile; base < npack; base += int64_t(gridDim.x) * tile) {
    P a[kUnroll][NIN];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + threadIdx.x + int64_t(u) * kThreads;
      if (i < npack) {
#pragma unroll
        for (int k = 0; k < NIN; ++k) a[u][k] = static_cast<const P*>(args.in[k])[i];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + threadIdx.x + int64_t(u) * kThreads;
      if (i < npack) {
        P o[NOUT];
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
          W x[NIN], y[NOUT];
#pragma unroll
          for (int k = 0; k < NIN; ++k) x[k] = W(static_cast<opmath_t>(a[u][k].v[e]));
          f(x, y);
#pragma unroll
          for (int k = 0; k < NOUT; ++k) o[k].v[e] = static_cast<scalar_t>(static_cast<opmath_t>(y[k]));
        }
#pragma unroll
        for (int k = 0; k < NOUT; ++k) static_cast<P*>(args.out[k])[i] = o[k];
      }
    }
  }
  // The last n % VEC elements, which do not fill a pack.
  if (VEC > 1 && blockIdx.x == 0) {
    for (int64_t i = npack * VEC + threadIdx.x; i < n; i += kThreads) {
      W x[NIN], y[NOUT];
#pragma unroll
      for (int k = 0; k < NIN; ++k) x[k] = W(static_cast<opmath_t>(static_cast<const scalar_t*>(args.in[k])[i]));
      f(x, y);
#pragma unroll
      for (int k = 0; k < NOUT; ++k)
        static_cast<scalar_t*>(args.out[k])[i] = static_cast<scalar_t>(static_cast<opmath_t>(y[k]));
    }
  }
}

struct StridedArgs {
  char* data[kMaxOperands];                 // outputs first, then inputs
  int64_t sizes[kMaxDims];                  // dim 0 fastest-varying
  int64_t strides[kMaxDims][kMaxOperands];  // bytes
  int ndim;
};

template <typename scalar_t, typename W, typename F>
__global__ void __launch_bounds__(kThreads)
    strided_kernel(StridedArgs args, int64_t n, F f) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT, NT = NIN + NOUT;
  for (int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x; idx < n;
       idx += int64_t(gridDim.x) * kThreads) {
    int64_t off[NT];
#pragma unroll
    for (int k = 0; k < NT; ++k) off[k] = 0;
    int64_t rem = idx;
    for (int d = 0; d < args.ndim; ++d) {
      const int64_t c = rem % args.sizes[d];
      rem /= args.sizes[d];
#pragma unroll
      for (int k = 0; k < NT; ++k) off[k] += c * args.strides[d][k];
    }
    W x[NIN], y[NOUT];
#pragma unroll
    for (int k = 0; k < NIN; ++k) {
      const char* p = args.data[NOUT + k] + off[NOUT + k];
      x[k] = W(((F::IN_OPMATH >> k) & 1u)
                   ? *reinterpret_cast<const opmath_t*>(p)
                   : static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(p)));
    }
    f(x, y);
#pragma unroll
    for (int k = 0; k < NOUT; ++k) {
      char* p = args.data[k] + off[k];
      const opmath_t v = static_cast<opmath_t>(y[k]);
      if ((F::OUT_OPMATH >> k) & 1u)
        *reinterpret_cast<opmath_t*>(p) = v;
      else
        *reinterpret_cast<scalar_t*>(p) = static_cast<scalar_t>(v);
    }
  }
}

int sm_count(int device) {
  static int cache[64] = {0};
  int& v = cache[device & 63];
  if (v == 0) C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device));
  return v;
}

// Blocks for `work` units of `per_block` each: by default one tile per block, as PyTorch's own
// element-wise kernels launch (the grid-stride loops then run once; they remain for grids past
// CUDA's limit). FFN_EXT_CUDA_GRID_WAVES=w caps the grid at w blocks per multiprocessor instead,
// so that benchmarks/ can compare the two geometries in one run; read once per process.
int64_t grid_cap(int device) {
  static const int64_t waves = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_GRID_WAVES");
    return s ? std::max<int64_t>(0, std::atoll(s)) : int64_t(0);
  }();
  return waves > 0 ? waves * sm_count(device) : int64_t(std::numeric_limits<int32_t>::max());
}

unsigned grid_for(int64_t work, int64_t per_block, int device) {
  const int64_t want = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, grid_cap(device))));
}

// FFN_EXT_CUDA_EXACT_LOWP=1: fp16/bf16 compute with the accurate maths of fp32 (fast_float.cuh).
bool exact_lowp() {
  static const bool v = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_EXACT_LOWP");
    return s != nullptr && s[0] != '\0' && s[0] != '0';
  }();
  return v;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename scalar_t, typename W, typename F>
void launch_flat(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                 int64_t n, cudaStream_t stream, int device) {
  FlatArgs args{};
  bool aligned = true;
  for (size_t k = 0; k < ins.size(); ++k) {
    args.in[k] = ins[k].const_data_ptr();
    aligned = aligned && aligned16(args.in[k]);
  }
  for (size_t k = 0; k < outs.size(); ++k) {
    args.out[k] = outs[k].mutable_data_ptr();
    aligned = aligned && aligned16(args.out[k]);
  }
  constexpr int VEC = 16 / sizeof(scalar_t);
  if (aligned) {
    const unsigned grid = grid_for(n / VEC, int64_t(kThreads) * kUnroll, device);
    flat_kernel<scalar_t, W, VEC><<<grid, kThreads, 0, stream>>>(args, n, f);
  } else {
    const unsigned grid = grid_for(n, int64_t(kThreads) * kUnroll, device);
    flat_kernel<scalar_t, W, 1><<<grid, kThreads, 0, stream>>>(args, n, f);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, typename W, typename F>
void launch_strided(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                    int64_t n, cudaStream_t stream, int device) {
  at::TensorIterator iter = strided_iter(outs, ins);
  TORCH_CHECK(iter.ndim() <= kMaxDims, "ffn_ext: a layout with ", std::to_string(iter.ndim()),
              " dimensions that cannot be merged is not supported (at most ", std::to_string(kMaxDims),
              "); call .contiguous() on the input first");
  StridedArgs args{};
  args.ndim = iter.ndim();
  const int nt = iter.ntensors();
  for (int k = 0; k < nt; ++k) args.data[k] = static_cast<char*>(iter.data_ptr(k));
  for (int d = 0; d < args.ndim; ++d) {
    args.sizes[d] = iter.shape()[d];
    for (int k = 0; k < nt; ++k) args.strides[d][k] = iter.strides(k)[d];
  }
  const unsigned grid = grid_for(n, kThreads, device);
  strided_kernel<scalar_t, W><<<grid, kThreads, 0, stream>>>(args, n, f);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

struct CudaEngine {
  static void run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins) {
    const int64_t n = outs[0].numel();
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(outs[0].device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(outs[0].device().index());
    const int device = outs[0].device().index();
    const bool flat = flat_layout(outs, ins);
    dispatch_float(outs[0].scalar_type(), [&](auto tag) {
      using scalar_t = decltype(tag);
      using opmath_t = at::opmath_type<scalar_t>;
      with_kernel<opmath_t>(d, [&](auto f) {
        using F = decltype(f);
        TORCH_INTERNAL_ASSERT(F::NIN == (int)ins.size() && F::NOUT == (int)outs.size());
        auto go = [&](auto w_tag) {
          using W = decltype(w_tag);
          if constexpr ((F::IN_OPMATH == 0 && F::OUT_OPMATH == 0) ||
                        std::is_same_v<scalar_t, opmath_t>) {
            if (flat) return launch_flat<scalar_t, W>(f, outs, ins, n, stream, device);
          }
          launch_strided<scalar_t, W>(f, outs, ins, n, stream, device);
        };
        if constexpr (std::is_same_v<scalar_t, opmath_t>) {
          go(opmath_t{});
        } else if (exact_lowp()) {
          go(opmath_t{});
        } else {
          go(FastFloat{});
        }
      });
    });
  }
};

}  // namespace
}  // namespace ffn_ext::cuda

TORCH_LIBRARY_IMPL(ffn_ext, CUDA, m) {
  ffn_ext::register_activation_ops<ffn_ext::cuda::CudaEngine>(m);
  ffn_ext::register_gating_ops<ffn_ext::cuda::CudaEngine>(m);
}
