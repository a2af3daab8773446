// The vectorised CUDA kernel body and its launch geometry, torch-free and CUDA-free so that
// tests/cpp/test_row_kernel.cpp runs the very same code on the CPU, block by block and thread by
// thread, and checks that every element of every layout is computed exactly once (the kernels of
// other layouts are in strided_kernel.cuh).
//
// The operands are `rows` rows of `d` elements, each operand with its own row stride: a dense
// tensor is one row of numel elements; the halves of a packed [..., 2d] tensor, a slice of a wider
// buffer or a gate/up pair of different row strides are many. A block covers a column tile of a
// row; a thread loads up to UNROLL packs of VEC elements (16 or 8 bytes) per operand, issued before
// the first use so that enough bytes are in flight for DRAM bandwidth, then computes and stores.
// The d % VEC elements after a row's last whole pack are done by the block of the row's last tile.
//
// Geometry (row_geometry) is chosen from the shape: at full size a block is 256 threads and one
// tile of 256 * UNROLL packs, as PyTorch's element-wise kernels launch. When that would give fewer
// blocks than the GPU has multiprocessors (decode: a few rows of a few thousand elements), each
// thread first takes fewer packs (UNROLL, 2, then 1), so that more threads share the work, and
// then blocks shrink to 128, 64, then 32 threads, so that the tiles spread over more
// multiprocessors. A block also shrinks while half of it covers a whole row (short rows would leave
// threads idle). Column tiles are balanced (tile width = ceil(packs / tiles)).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ffn_ext/activations.h"  // FFN_HD

// nvcc's `#pragma unroll` (FFN_UNROLL) and `#pragma unroll 1` (FFN_NO_UNROLL) in the kernel bodies,
// and nothing where g++ compiles them for the CPU emulation (host_emulation.cpp): there each one
// was an unknown pragma, 29 warnings a build under Python's -Wall, which `#pragma GCC diagnostic`
// cannot silence in GCC 12's C++ (GCC bug 53431).
#if defined(__CUDACC__)
#define FFN_UNROLL _Pragma("unroll")
#define FFN_NO_UNROLL _Pragma("unroll 1")
#else
#define FFN_UNROLL
#define FFN_NO_UNROLL
#endif

namespace ffn_ext::cuda {

constexpr int kMaxThreads = 256;
constexpr int kMinThreads = 32;
constexpr int kUnroll = 4;
constexpr int kMaxOperands = 8;
constexpr int64_t kMaxGridY = 65535;              // CUDA's limit on gridDim.y
constexpr int64_t kMaxGridX = (int64_t(1) << 31) - 1;  // and on gridDim.x

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Storage types whose bits are the upper half of the float of the same value (bfloat16); the engine
// specialises it for c10::BFloat16, tests/cpp for a stand-in. See pack_element.
template <typename T>
struct FloatUpperHalf : std::false_type {};

// Element e of pack p, in op-math. A pair of FloatUpperHalf elements shares one 32-bit word, and
// each converts from it in one instruction: element 2i is the word shifted up 16 bits, element
// 2i + 1 the word with its lower 16 bits cleared. Converted element by element instead (as
// c10::BFloat16's operator float does), nvcc first moves every odd element into a register of its
// own, right after the loads: the bf16 row kernels took 1.5-1.7x the registers of their fp16 twins
// (SwiGLU forward 100 against 59, GELU backward 98 against 64; sm_90, nvcc 13.0), and so half the
// resident threads, and ran at 0.82-0.86 of copy bandwidth where fp16 ran at 0.93-0.99 (H100,
// torch 2.11, 2026-11-26).
template <typename opmath_t, typename scalar_t, int VEC>
FFN_HD opmath_t pack_element(const Pack<scalar_t, VEC>& p, int e) {
  if constexpr (FloatUpperHalf<scalar_t>::value && VEC % 2 == 0 && std::is_same_v<opmath_t, float>) {
    static_assert(sizeof(scalar_t) == 2);
    uint32_t w;
    std::memcpy(&w, &p.v[e & ~1], sizeof w);
    const uint32_t bits = (e & 1) ? (w & 0xffff0000u) : (w << 16);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  } else {
    return static_cast<opmath_t>(p.v[e]);
  }
}

struct RowArgs {
  const char* in[kMaxOperands];  // base pointers (row 0, column 0)
  char* out[kMaxOperands];
  int64_t in_stride[kMaxOperands];  // row strides, in elements
  int64_t out_stride[kMaxOperands];
};

struct RowGeometry {
  int threads = kMaxThreads;  // per block
  int unroll = kUnroll;       // packs per thread, at most
  int64_t col_tiles = 1;      // tiles per row; the grid's x extent is min(col_tiles, grid_x)
  int64_t tile_packs = 0;     // packs per tile, at most threads * unroll
  int64_t grid_x = 1;         // blocks along x; they loop over the tiles with this stride
  int64_t grid_y = 1;         // blocks along y; they loop over the rows with this stride
};

// `rows` rows of `packs` whole packs each, on a GPU of `sms` multiprocessors. `max_grid_x` caps the
// x extent (FFN_EXT_CUDA_GRID_WAVES); by default it is CUDA's limit. `max_unroll` is the kernel's
// UNROLL (row_thread), the most packs a thread takes: the engine's kernels take kUnroll, and
// benchmarks/explore_launch_bounds.cu builds variants with fewer.
//
// Why fewer packs per thread before smaller blocks: a thread computes its packs one after another,
// so at decode sizes, where all the threads fit on the GPU at once, the kernel's time is a DRAM
// round trip plus the longest thread's arithmetic. With 32-thread blocks of 4 packs each (the rule
// before), SwiGLU's forward at 1 x 14336 bf16 ran 14 blocks of one warp, each thread 32 elements,
// and took 4.2 us, its backward 9.1 us, where PyTorch's silu and mul took 1.9 and 1.6 us with 14
// blocks of 128 threads of 8 elements each (H100, torch 2.11, 2026-11-26, torch.profiler).
inline RowGeometry row_geometry(int64_t rows, int64_t packs, int sms,
                                int64_t max_grid_x = kMaxGridX, int max_unroll = kUnroll) {
  RowGeometry g;
  g.unroll = max_unroll;
  auto tiles = [&] {
    const int64_t per = int64_t(g.threads) * g.unroll;
    return std::max<int64_t>(1, (packs + per - 1) / per);
  };
  while (tiles() * rows < sms) {
    if (g.unroll > 1) {
      g.unroll /= 2;
    } else if (g.threads > kMinThreads) {
      g.threads /= 2;
    } else {
      break;
    }
  }
  while (g.threads > kMinThreads && int64_t(g.threads / 2) * g.unroll >= packs) g.threads /= 2;
  g.col_tiles = tiles();
  g.tile_packs = (packs + g.col_tiles - 1) / g.col_tiles;
  g.grid_x = std::max<int64_t>(1, std::min(g.col_tiles, max_grid_x));
  g.grid_y = std::max<int64_t>(1, std::min(rows, kMaxGridY));
  return g;
}

// Rows shorter than kMinRowPacks packs would leave most of even a 32-thread block idle (one block
// per row); the engine gives such layouts (many rows of a few elements) to its strided kernel.
constexpr int64_t kMinRowPacks = 16;
inline bool rows_suit_row_kernel(int64_t rows, int64_t packs) { return rows == 1 || packs >= kMinRowPacks; }

// The share of thread `tid` of block (bx, by) in a launch of geometry g. W is the type the functor
// computes in (op-math, or FastFloat for fp16/bf16), opmath_t the type storage values convert
// through. Every operand is stored as scalar_t; VEC divides each row stride (when rows > 1), and
// every base pointer is aligned to VEC * sizeof(scalar_t) bytes. UNROLL: the packs a thread loads
// before its first computes, at least g.unroll (row_geometry's max_unroll).
template <typename scalar_t, typename opmath_t, typename W, int VEC, int UNROLL = kUnroll,
          typename F>
FFN_HD void row_thread(const RowArgs& a, const RowGeometry& g, int64_t rows, int64_t d, int64_t bx,
                       int64_t by, int tid, const F& f) {
  using P = Pack<scalar_t, VEC>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT;
  constexpr int64_t es = sizeof(scalar_t);
  const int64_t packs = d / VEC;
  for (int64_t r = by; r < rows; r += g.grid_y) {
    const char* in[NIN];
    char* out[NOUT];
FFN_UNROLL
    for (int k = 0; k < NIN; ++k) in[k] = a.in[k] + r * a.in_stride[k] * es;
FFN_UNROLL
    for (int k = 0; k < NOUT; ++k) out[k] = a.out[k] + r * a.out_stride[k] * es;
    for (int64_t t = bx; t < g.col_tiles; t += g.grid_x) {
      const int64_t c0 = t * g.tile_packs;
      const int64_t c1 = c0 + g.tile_packs < packs ? c0 + g.tile_packs : packs;
      P v[UNROLL][NIN];
FFN_UNROLL
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t c = c0 + tid + int64_t(u) * g.threads;
        if (c < c1) {
FFN_UNROLL
          for (int k = 0; k < NIN; ++k) v[u][k] = reinterpret_cast<const P*>(in[k])[c];
        }
      }
FFN_UNROLL
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t c = c0 + tid + int64_t(u) * g.threads;
        if (c < c1) {
          P o[NOUT];
FFN_UNROLL
          for (int e = 0; e < VEC; ++e) {
            W x[NIN], y[NOUT];
FFN_UNROLL
            for (int k = 0; k < NIN; ++k) x[k] = W(pack_element<opmath_t>(v[u][k], e));
            f(x, y);
FFN_UNROLL
            for (int k = 0; k < NOUT; ++k)
              o[k].v[e] = static_cast<scalar_t>(static_cast<opmath_t>(y[k]));
          }
FFN_UNROLL
          for (int k = 0; k < NOUT; ++k) reinterpret_cast<P*>(out[k])[c] = o[k];
        }
      }
      // The last d % VEC elements of the row, which do not fill a pack.
      if (VEC > 1 && t == g.col_tiles - 1) {
        for (int64_t i = packs * VEC + tid; i < d; i += g.threads) {
          W x[NIN], y[NOUT];
FFN_UNROLL
          for (int k = 0; k < NIN; ++k)
            x[k] = W(static_cast<opmath_t>(reinterpret_cast<const scalar_t*>(in[k])[i]));
          f(x, y);
FFN_UNROLL
          for (int k = 0; k < NOUT; ++k)
            reinterpret_cast<scalar_t*>(out[k])[i] = static_cast<scalar_t>(static_cast<opmath_t>(y[k]));
        }
      }
    }
  }
}

// The widest pack (16, then 8 bytes, then one element) that every operand's base pointer and row
// stride allow. `rows` > 1 is when strides matter.
template <typename scalar_t>
int row_vec(const RowArgs& a, int nin, int nout, int64_t rows) {
  auto fits = [&](int vec) {
    const uintptr_t mask = uintptr_t(vec) * sizeof(scalar_t) - 1;
    for (int k = 0; k < nin; ++k) {
      if ((reinterpret_cast<uintptr_t>(a.in[k]) & mask) != 0) return false;
      if (rows > 1 && a.in_stride[k] % vec != 0) return false;
    }
    for (int k = 0; k < nout; ++k) {
      if ((reinterpret_cast<uintptr_t>(a.out[k]) & mask) != 0) return false;
      if (rows > 1 && a.out_stride[k] % vec != 0) return false;
    }
    return true;
  };
  constexpr int full = 16 / sizeof(scalar_t);
  if (full > 1 && fits(full)) return full;
  if (full > 2 && fits(full / 2)) return full / 2;
  return 1;
}

}  // namespace ffn_ext::cuda
