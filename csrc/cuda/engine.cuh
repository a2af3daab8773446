// The CUDA kernels of every activation and gating functor and the launch that picks between them,
// as a template over the storage dtype: run_typed<scalar_t> is instantiated once per dtype, each in
// a file of its own (kernels_<dtype>.cu), so that a parallel build compiles the four at once. The
// engine (activation_cuda.cu) dispatches to them.
//
// Two kernels serve every activation functor (csrc/include/ffn_ext/kernels.h):
//  * row_kernel (row_kernel.cuh): every operand stored in the tensor's dtype and laid out as rows
//    with unit inner stride, each operand with its own row stride. A dense tensor (contiguous, or
//    a permutation of contiguous such as a transpose, all operands alike) is one row of numel
//    elements; the halves of a packed [..., 2d] tensor, slices of a wider buffer and gate/up pairs
//    of different row strides are many rows. 16- or 8-byte vector loads where pointers and row
//    strides allow, else one element per load (same code); the launch geometry follows the shape,
//    so that a few decode rows still spread over the multiprocessors. 64-bit indices.
//  * strided_kernel: any other layout, from TensorIterator's coalesced shape and byte strides
//    (strided slices, broadcast beta, op-math operands beside fp16/bf16 ones). One element per
//    thread, 64-bit offsets.
// Every entry point takes a device guard for the output's device, launches on the current
// stream and checks the launch.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "fast_float.cuh"
#include "row_kernel.cuh"
#include "ffn_ext/engine_common.h"
#include "ffn_ext/kernels.h"

namespace ffn_ext::cuda {

template <>
struct FloatUpperHalf<c10::BFloat16> : std::true_type {};

// Defined once, in activation_cuda.cu.
int sm_count(int device);
// The cap on a grid's x extent: FFN_EXT_CUDA_GRID_WAVES=w blocks per multiprocessor when set (the
// blocks then loop over the work), so that benchmarks/ can compare that geometry with the default
// one tile per block, as PyTorch's own element-wise kernels launch; else CUDA's limit.
int64_t grid_cap(int device);
// FFN_EXT_CUDA_EXACT_LOWP=1: fp16/bf16 compute with the accurate maths of fp32 (fast_float.cuh).
bool exact_lowp();

// One launch's operands (outputs first) and where they go.
struct Launch {
  c10::ArrayRef<at::Tensor> outs, ins;
  RowLayout rl;  // valid when rows
  bool rows;     // the operands form rows with unit inner stride (row_layout or one dense row)
  cudaStream_t stream;
  int device;
};

constexpr int kThreads = kMaxThreads;  // strided_kernel's block
constexpr int kMaxDims = 25;  // TensorIterator's coalesced dimensions, as in ATen's OffsetCalculator

// Blocks of kMaxThreads threads that a multiprocessor must be able to hold at once, which caps a
// row kernel's registers at 80 (65536 / (3 * 256), in ptxas's steps of 8). These kernels are bound
// by memory, and the warps resident keep its loads in flight. Without a bound ptxas took what its
// schedule wanted, and changes in the maths moved kernels across the line: SwiGLU's bf16 backward
// took 80 registers on 02dc7d2 and 94 on 5ada78e (2 blocks a multiprocessor), and SiLU gating's
// forward + backward ran at 0.96 of copy bandwidth on an H100 (2026-11-26) and at 0.60 on an H200
// (torch 2.11, 2026-11-27; 8192 x 14336 bf16). Bounded, no fp16/bf16 gating backward kernel spills
// (sm_90, nvcc 13.0, 2026-11-28; those of exact and tanh GELU, SiLU and GLU had spilled 20-48 bytes
// of stores a thread until FastFloat lost its branch to the accurate expf, fast_float.cuh), and
// fp32's spill 8-12 bytes, which L1 holds; not yet measured on a GPU. Not bounded: the second-order
// kernels (six operands and more, up to 166 registers, not a hot path) and float64 (two registers
// a value: exact GELU's gating backward spilled 272 bytes).
template <typename scalar_t, typename F>
constexpr int row_min_blocks() {
  return sizeof(scalar_t) <= 4 && F::NIN + F::NOUT <= 5 ? 3 : 1;
}

// MIN_BLOCKS and UNROLL are parameters so that benchmarks/explore_launch_bounds.cu can launch this
// very kernel with other bounds and fewer packs a thread beside the engine's (which always takes
// the defaults; a launch with UNROLL below kUnroll takes row_geometry's max_unroll = UNROLL).
template <typename scalar_t, typename W, int VEC, typename F,
          int MIN_BLOCKS = row_min_blocks<scalar_t, F>(), int UNROLL = kUnroll>
__global__ void __launch_bounds__(kMaxThreads, MIN_BLOCKS)
    row_kernel(RowArgs args, RowGeometry g, int64_t rows, int64_t d, F f) {
  row_thread<scalar_t, at::opmath_type<scalar_t>, W, VEC, UNROLL>(args, g, rows, d, blockIdx.x,
                                                                  blockIdx.y, threadIdx.x, f);
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
    strided_offsets<NT>(idx, args.ndim, args.sizes, args.strides, off);
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

inline unsigned grid_for(int64_t work, int64_t per_block, int device) {
  const int64_t want = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, grid_cap(device))));
}

// Operands in rl's row layout (outputs first, then inputs), all stored as scalar_t. Returns false,
// launching nothing, for rows too short for the row kernel (rows_suit_row_kernel).
template <typename scalar_t, typename W, typename F>
bool launch_rows(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                 const RowLayout& rl, cudaStream_t stream, int device) {
  RowArgs args{};
  const size_t no = outs.size();
  for (size_t k = 0; k < no; ++k) {
    args.out[k] = static_cast<char*>(outs[k].mutable_data_ptr());
    args.out_stride[k] = rl.row_stride[k];
  }
  for (size_t k = 0; k < ins.size(); ++k) {
    args.in[k] = static_cast<const char*>(ins[k].const_data_ptr());
    args.in_stride[k] = rl.row_stride[no + k];
  }
  const int vec = row_vec<scalar_t>(args, F::NIN, F::NOUT, rl.rows);
  if (!rows_suit_row_kernel(rl.rows, rl.d / vec)) return false;
  auto go = [&](auto vec_tag) {
    constexpr int VEC = decltype(vec_tag)::value;
    const RowGeometry g = row_geometry(rl.rows, rl.d / VEC, sm_count(device), grid_cap(device));
    const dim3 grid(static_cast<unsigned>(g.grid_x), static_cast<unsigned>(g.grid_y));
    row_kernel<scalar_t, W, VEC><<<grid, g.threads, 0, stream>>>(args, g, rl.rows, rl.d, f);
  };
  constexpr int full = 16 / sizeof(scalar_t);
  if (vec == full) {
    go(std::integral_constant<int, full>{});
  } else if (vec > 1) {
    if constexpr (full > 2) go(std::integral_constant<int, full / 2>{});
  } else {
    go(std::integral_constant<int, 1>{});
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
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

// The kernel of functor d for storage dtype scalar_t: the row kernel where the layout allows,
// else the strided one.
template <typename scalar_t>
void run_typed(const KernelDesc& d, const Launch& l) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t n = l.outs[0].numel();
  with_kernel<opmath_t>(d, [&](auto f) {
    using F = decltype(f);
    TORCH_INTERNAL_ASSERT(F::NIN == (int)l.ins.size() && F::NOUT == (int)l.outs.size());
    auto go = [&](auto w_tag) {
      using W = decltype(w_tag);
      if constexpr ((F::IN_OPMATH == 0 && F::OUT_OPMATH == 0) ||
                    std::is_same_v<scalar_t, opmath_t>) {
        if (l.rows && launch_rows<scalar_t, W>(f, l.outs, l.ins, l.rl, l.stream, l.device)) return;
      }
      launch_strided<scalar_t, W>(f, l.outs, l.ins, n, l.stream, l.device);
    };
    if constexpr (std::is_same_v<scalar_t, opmath_t>) {
      go(opmath_t{});
    } else if (exact_lowp()) {
      go(opmath_t{});
    } else {
      go(FastFloat{});
    }
  });
}

// Instantiated in kernels_<dtype>.cu, nowhere else.
extern template void run_typed<double>(const KernelDesc&, const Launch&);
extern template void run_typed<float>(const KernelDesc&, const Launch&);
extern template void run_typed<c10::Half>(const KernelDesc&, const Launch&);
extern template void run_typed<c10::BFloat16>(const KernelDesc&, const Launch&);

}  // namespace ffn_ext::cuda
