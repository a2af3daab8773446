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
// Which kernel a layout takes, with which arguments and geometry, is launch.h's, over the
// CudaDevice below, which launches on the current stream and checks each launch; the engine
// (activation_cuda.cu) takes a device guard for the output's device.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>
#include <type_traits>

#include "fast_float.cuh"
#include "launch.h"

namespace ffn_ext::cuda {

// Per-device figures are cached for devices 0 to kDeviceCache - 1 (atomics: threads, one per
// device, may ask at once); devices past them ask every time.
constexpr int kDeviceCache = 64;

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

// launch.h's Device for a GPU: the current stream of `device`, whose multiprocessors it asks once.
struct CudaDevice {
  cudaStream_t stream;
  int device;

  int sms() const { return sm_count(device); }
  int64_t grid_cap() const { return cuda::grid_cap(device); }
  bool tiles() const { return tiles_enabled(); }
  int strided_unroll() const { return cuda::strided_unroll(); }

  template <typename scalar_t, typename W, int VEC, typename F>
  void row(const RowArgs& args, const RowGeometry& g, int64_t rows, int64_t d, const F& f) const {
    const dim3 grid(static_cast<unsigned>(g.grid_x), static_cast<unsigned>(g.grid_y));
    row_kernel<scalar_t, W, VEC><<<grid, g.threads, 0, stream>>>(args, g, rows, d, f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename scalar_t, typename W, typename F>
  void strided(const StridedArgs& args, int64_t n, const StridedGeometry& g, const F& f) const {
    strided_kernel<scalar_t, W><<<static_cast<unsigned>(g.grid), kMaxThreads, 0, stream>>>(args, n, g, f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  // Asked once per kernel and device, as sm_count is: the answer follows the device's
  // architecture (registers and shared memory a multiprocessor has, the SASS it runs), so a host
  // with two kinds of GPU must not take one's figure for the other. A grid size, not a condition of
  // correctness. The engine's device guard makes `device` the current device, which the query asks.
  template <typename scalar_t, typename W, typename F>
  int tiles_per_sm() const {
    static std::atomic<int> cache[kDeviceCache];
    const bool cached = device >= 0 && device < kDeviceCache;
    int blocks = cached ? cache[device].load(std::memory_order_relaxed) : 0;
    if (blocks == 0) {
      C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, tile_kernel<scalar_t, W, F>,
                                                                   kTileThreads, 0));
      blocks = std::max(blocks, 1);
      if (cached) cache[device].store(blocks, std::memory_order_relaxed);
    }
    return blocks;
  }

  template <typename scalar_t, typename W, typename F>
  void tile(const TileArgs& t, const TileWalk& w, const F& f) const {
    tile_kernel<scalar_t, W><<<static_cast<unsigned>(w.grid), kTileThreads, 0, stream>>>(t, w, f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

// The kernel of functor d for storage dtype scalar_t (launch.h), computing fp16/bf16 in FastFloat
// unless FFN_EXT_CUDA_EXACT_LOWP is set.
template <typename scalar_t>
void run_typed(const KernelDesc& d, const Launch& l, const CudaDevice& dev) {
  using opmath_t = at::opmath_type<scalar_t>;
  with_kernel<opmath_t>(d, [&](auto f) {
    if constexpr (std::is_same_v<scalar_t, opmath_t>) {
      launch_layout<scalar_t, opmath_t>(f, l, dev);
    } else if (exact_lowp()) {
      launch_layout<scalar_t, opmath_t>(f, l, dev);
    } else {
      launch_layout<scalar_t, FastFloat>(f, l, dev);
    }
  });
}

// Instantiated in kernels_<dtype>.cu, nowhere else.
extern template void run_typed<double>(const KernelDesc&, const Launch&, const CudaDevice&);
extern template void run_typed<float>(const KernelDesc&, const Launch&, const CudaDevice&);
extern template void run_typed<c10::Half>(const KernelDesc&, const Launch&, const CudaDevice&);
extern template void run_typed<c10::BFloat16>(const KernelDesc&, const Launch&, const CudaDevice&);

}  // namespace ffn_ext::cuda
