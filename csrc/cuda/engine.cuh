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
//  * tile_kernel (strided_kernel.cuh): layouts where some operands run along another dimension
//    than the rest (a transposed gate beside a contiguous up, and the gradients of such a pair),
//    in 32 x 32 tiles through shared memory, so that every operand is read and written contiguously.
//    Operands of one dtype, five at most (every forward and first-order backward).
//  * strided_kernel (strided_kernel.cuh): any other layout, from TensorIterator's coalesced shape and
//    byte strides (strided slices, interleaved halves, broadcast beta, op-math operands beside
//    fp16/bf16 ones). Up to 4 elements a thread, loaded before the first is computed; 32-bit
//    coordinates, on parts of fewer than 2^31 elements (TensorIterator's split).
// Layouts of more than 25 dimensions that do not merge are launched in slices (launch_strided).
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
#include <vector>
#include <type_traits>

#include "fast_float.cuh"
#include "row_kernel.cuh"
#include "strided_kernel.cuh"
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
// FFN_EXT_CUDA_TILES=0: no tile kernel (its layouts take the strided one); FFN_EXT_CUDA_STRIDED_UNROLL:
// the most elements a strided kernel's thread takes. Benchmarks' knobs, defined in activation_cuda.cu.
bool tiles_enabled();
int strided_unroll();

// One launch's operands (outputs first) and where they go.
struct Launch {
  c10::ArrayRef<at::Tensor> outs, ins;
  RowLayout rl;  // valid when rows
  bool rows;     // the operands form rows with unit inner stride (row_layout or one dense row)
  cudaStream_t stream;
  int device;
};

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

// Whether every operand of functor F is stored as scalar_t (no op-math operand beside fp16/bf16
// ones): what the row and tile kernels take.
template <typename scalar_t, typename F>
constexpr bool one_dtype() {
  return (F::IN_OPMATH == 0 && F::OUT_OPMATH == 0) || std::is_same_v<scalar_t, at::opmath_type<scalar_t>>;
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

template <typename scalar_t, typename W, typename F>
__global__ void __launch_bounds__(kMaxThreads)
    strided_kernel(StridedArgs args, int64_t n, StridedGeometry g, F f) {
  strided_thread<scalar_t, at::opmath_type<scalar_t>, W>(args, n, g, blockIdx.x, threadIdx.x, f);
}

template <typename scalar_t, typename W, typename F>
__global__ void __launch_bounds__(kTileThreads, kTileMinBlocks) tile_kernel(TileArgs args, TileWalk w, F f) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT;
  __shared__ TileSmem<opmath_t> sm[NIN + NOUT];
  // Two barriers a tile. A third after the stores is not needed: the next tile's loads write the
  // inputs' shared tiles, last read before the second barrier, and its computing writes the
  // outputs' ones only after its first barrier, which every thread reaches after its stores.
  for (uint32_t t = blockIdx.x; t < w.tiles; t += gridDim.x) {
    const TilePos<NIN + NOUT> p = tile_pos<NIN + NOUT>(args, w, t);
    tile_load<scalar_t, opmath_t, NIN, NOUT>(args, p, threadIdx.x, sm);
    __syncthreads();
    tile_compute<opmath_t, W>(threadIdx.x, sm, f);
    __syncthreads();
    tile_store<scalar_t, opmath_t, NIN, NOUT>(args, p, threadIdx.x, sm);
  }
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

// A layout of fewer than 2^31 elements and byte offsets below 2^31 (iter.can_use_32bit_indexing()).
template <typename scalar_t, typename W, typename F>
void launch_strided32(const F& f, const at::TensorIterator& iter, cudaStream_t stream, int device) {
  StridedArgs args{};
  args.ndim = iter.ndim();
  const int nt = iter.ntensors();
  for (int k = 0; k < nt; ++k) args.data[k] = static_cast<char*>(iter.data_ptr(k));
  for (int d = 0; d < args.ndim; ++d) {
    args.sizes[d] = static_cast<uint32_t>(iter.shape()[d]);
    for (int k = 0; k < nt; ++k) args.strides[d][k] = static_cast<uint32_t>(iter.strides(k)[d]);
  }
  strided_prepare(args);
  const int64_t n = iter.numel();
  const StridedGeometry g = strided_geometry(n, sm_count(device), grid_cap(device), strided_unroll());
  strided_kernel<scalar_t, W><<<static_cast<unsigned>(g.grid), kMaxThreads, 0, stream>>>(args, n, g, f);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Any layout: the tile kernel where some operands run along another dimension than the rest
// (tile_plan) and the functor's operands allow it, else the strided kernel, on parts of at most
// 2^31 elements and offsets (ATen's split, as its own element-wise kernels launch).
template <typename scalar_t, typename W, typename F>
void launch_strided(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                    cudaStream_t stream, int device) {
  at::TensorIterator iter = strided_iter(outs, ins);
  if (iter.ndim() > kMaxDims) {
    // More dimensions that do not merge than the kernels' offsets hold: 26 or more of size 2 or
    // more, so at least 2^26 elements. ATen's own CUDA kernels, copies included, refuse such
    // layouts ("tensor has too many (>25) dims"), so this cannot go through a dense copy. Instead
    // the output's smallest dimension (of size 2 or more) is walked, one launch a slice, until
    // the slices' layouts fit. A broadcast input takes index 0 where it has size 1, and is whole
    // where it lacks the dimension (broadcasting aligns dimensions from the last).
    const at::Tensor& o = outs[0];
    int64_t dim = -1;
    for (int64_t k = 0; k < o.dim(); ++k) {
      if (o.size(k) > 1 && (dim < 0 || o.size(k) < o.size(dim))) dim = k;
    }
    TORCH_INTERNAL_ASSERT(dim >= 0);  // dimensions of size 1 merge with any other
    for (int64_t i = 0; i < o.size(dim); ++i) {
      std::vector<at::Tensor> outs_i, ins_i;
      for (const auto& t : outs) outs_i.push_back(t.select(dim, i));
      for (const auto& t : ins) {
        const int64_t k = dim - (o.dim() - t.dim());
        ins_i.push_back(k < 0 ? t : t.select(k, t.size(k) > 1 ? i : 0));
      }
      launch_strided<scalar_t, W>(f, outs_i, ins_i, stream, device);
    }
    return;
  }
  if constexpr (one_dtype<scalar_t, F>() && F::NIN + F::NOUT <= kTileMaxOperands) {
    const int ndim = iter.ndim(), nt = iter.ntensors();
    int64_t sizes[kMaxDims], strides[kMaxDims][kMaxOperands];
    for (int d = 0; d < ndim; ++d) {
      sizes[d] = iter.shape()[d];
      for (int k = 0; k < nt; ++k) strides[d][k] = iter.strides(k)[d];
    }
    TileArgs t{};
    if (tiles_enabled() && tile_plan(ndim, sizes, strides, nt, sizeof(scalar_t), t)) {
      for (int k = 0; k < nt; ++k) t.data[k] = static_cast<char*>(iter.data_ptr(k));
      // As many blocks as the GPU holds at once (their number a multiprocessor, asked once per kernel,
      // of the first device that runs it: a grid size, not a condition of correctness).
      static const int per_sm = [] {
        int blocks = 0;
        C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, tile_kernel<scalar_t, W, F>,
                                                                     kTileThreads, 0));
        return std::max(blocks, 1);
      }();
      const TileWalk w = tile_walk(t, std::min<int64_t>(int64_t(sm_count(device)) * per_sm, grid_cap(device)));
      tile_kernel<scalar_t, W><<<static_cast<unsigned>(w.grid), kTileThreads, 0, stream>>>(t, w, f);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
  }
  if (iter.can_use_32bit_indexing()) {
    launch_strided32<scalar_t, W>(f, iter, stream, device);
  } else {
    for (const auto& part : iter.with_32bit_indexing()) launch_strided32<scalar_t, W>(f, part, stream, device);
  }
}

// The kernel of functor d for storage dtype scalar_t: the row kernel where the layout allows,
// else the tile or the strided one (launch_strided).
template <typename scalar_t>
void run_typed(const KernelDesc& d, const Launch& l) {
  using opmath_t = at::opmath_type<scalar_t>;
  with_kernel<opmath_t>(d, [&](auto f) {
    using F = decltype(f);
    TORCH_INTERNAL_ASSERT(F::NIN == (int)l.ins.size() && F::NOUT == (int)l.outs.size());
    auto go = [&](auto w_tag) {
      using W = decltype(w_tag);
      if constexpr (one_dtype<scalar_t, F>()) {
        if (l.rows && launch_rows<scalar_t, W>(f, l.outs, l.ins, l.rl, l.stream, l.device)) return;
      }
      launch_strided<scalar_t, W>(f, l.outs, l.ins, l.stream, l.device);
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
