// The bodies of the CUDA kernels for layouts that are not rows (engine.cuh), torch-free and
// CUDA-free as row_kernel.cuh is, so that tests/cpp/test_row_kernel.cpp runs the very same code
// on the CPU, block by block and thread by thread.
//
//  * strided: any layout, from TensorIterator's coalesced shape and byte strides. Each thread takes
//    up to kStridedUnroll elements a block's width apart, loads all of them, then computes and
//    stores, so that several loads are in flight per thread (one element a thread before; ATen's
//    own kernel for such layouts takes 2 or 4). The engine launches it on layouts whose element
//    indices and byte offsets fit 31 bits (TensorIterator's with_32bit_indexing splits the larger
//    ones), so an index is split into coordinates by 32-bit division by invariant integers
//    (multiply-high, add, shift; Granlund and Montgomery 1994, as ATen's IntDivider), not by the
//    64-bit division and remainder that nvcc compiles to a 32-bit fast path of about 20
//    instructions and a call.
//  * tile: a layout where some operands run along a dimension j other than the fastest, dim 0 (a
//    transposed gate beside a contiguous up: TensorIterator orders the dimensions by the output's
//    strides, so such an operand's elements along dim 0 lie a whole row apart). The strided kernel
//    reads such an operand one element per 32-byte sector, with no reuse within a block. The tile
//    kernel takes 32 x 32 tiles of dims 0 and j: every operand passes through a shared tile, read
//    and written in memory by warps running along its own unit-stride dimension, so that every
//    warp's access is contiguous, and computed from the shared tiles (a 33-word row stride, so
//    that neither direction conflicts on a bank). Blocks stay resident and loop over the tiles.
#pragma once

#include <algorithm>
#include <cstdint>

#include "row_kernel.cuh"

namespace ffn_ext::cuda {

constexpr int kMaxDims = 25;  // TensorIterator's coalesced dimensions, as in ATen's OffsetCalculator
constexpr int kStridedUnroll = 4;

FFN_HD uint32_t mul_hi_u32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((uint64_t(a) * b) >> 32);
#endif
}

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31. With s = ceil(log2 d) and m = 2^32 + magic =
// floor(2^(32+s) / d) + 1, m d = 2^(32+s) + e with 0 < e <= d <= 2^s, so n m / 2^(32+s) exceeds n / d
// by n e / (d 2^(32+s)) < 1 / d for n < 2^32: its floor, (mulhi(n, magic) + n) >> s, is n / d's.
// The sum mulhi + n (at most 2n) fits 32 bits for n < 2^31; magic < 2^32 for every such d.
struct Divider32 {
  uint32_t magic = 1, shift = 0;
  Divider32() = default;
  explicit Divider32(uint32_t d) {
    while (shift < 31 && (uint32_t(1) << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  FFN_HD uint32_t div(uint32_t n) const { return (mul_hi_u32(n, magic) + n) >> shift; }
};

// A strided launch's layout: fewer than 2^31 elements, and every byte offset below 2^31.
struct StridedArgs {
  char* data[kMaxOperands];                  // outputs first, then inputs
  uint32_t sizes[kMaxDims];                  // dim 0 fastest-varying
  uint32_t strides[kMaxDims][kMaxOperands];  // bytes
  Divider32 div[kMaxDims];                   // by sizes[d]
  int ndim;
};

// Fills a's divisors (sizes and ndim set).
inline void strided_prepare(StridedArgs& a) {
  for (int d = 0; d < a.ndim; ++d) a.div[d] = Divider32(std::max<uint32_t>(1, a.sizes[d]));
}

// off[k] = the byte offset in operand k (of NT) of element idx, 0 <= idx < the product of
// sizes[0 .. ndim) < 2^31, of a layout of ndim coalesced dimensions (dim 0 fastest-varying;
// strides[d][k] in bytes, as Off; div[d] divides by sizes[d]). The outermost dimension's index is
// what is left of idx, so a layout that coalesces to one dimension (the interleaved halves
// h[..., ::2] and h[..., 1::2]) takes no division. Off is uint32_t in a strided launch (offsets
// below 2^31), int64_t for the tile kernel's outer dimensions (once a tile, any stride).
template <int NT, typename Off>
FFN_HD void strided_offsets(uint32_t idx, int ndim, const uint32_t* sizes, const Divider32* div,
                            const Off (*strides)[kMaxOperands], Off* off) {
FFN_UNROLL
  for (int k = 0; k < NT; ++k) off[k] = 0;
  uint32_t rem = idx;
FFN_NO_UNROLL
  for (int d = 0; d + 1 < ndim; ++d) {
    const uint32_t q = div[d].div(rem);
    const Off c = rem - q * sizes[d];
    rem = q;
FFN_UNROLL
    for (int k = 0; k < NT; ++k) off[k] += c * strides[d][k];
  }
  if (ndim > 0) {
FFN_UNROLL
    for (int k = 0; k < NT; ++k) off[k] += Off(rem) * strides[ndim - 1][k];
  }
}

// A strided launch of n elements: blocks of kMaxThreads threads, each thread `unroll` elements
// (at most max_unroll, itself at most kStridedUnroll), so a block covers kMaxThreads * unroll;
// `grid` blocks loop over them. Threads take fewer elements while the blocks would be fewer than
// the multiprocessors (as row_geometry does), so that small launches still spread over the GPU.
struct StridedGeometry {
  int unroll = kStridedUnroll;
  int64_t grid = 1;
};

inline StridedGeometry strided_geometry(int64_t n, int sms, int64_t max_grid = kMaxGridX,
                                        int max_unroll = kStridedUnroll) {
  StridedGeometry g;
  g.unroll = std::clamp(max_unroll, 1, kStridedUnroll);
  auto blocks = [&] {
    const int64_t per = int64_t(kMaxThreads) * g.unroll;
    return std::max<int64_t>(1, (n + per - 1) / per);
  };
  while (g.unroll > 1 && blocks() < sms) g.unroll /= 2;
  g.grid = std::min(blocks(), max_grid);
  return g;
}

// The share of thread `tid` of block `bx` in a strided launch of n elements and geometry g.
// Operand k is stored as scalar_t, or as opmath_t where bit k of F::IN_OPMATH / F::OUT_OPMATH is set
// (a tensor beta and its gradient beside fp16/bf16 operands).
template <typename scalar_t, typename opmath_t, typename W, typename F>
FFN_HD void strided_thread(const StridedArgs& a, int64_t n, const StridedGeometry& g, int64_t bx,
                           int tid, const F& f) {
  constexpr int NIN = F::NIN, NOUT = F::NOUT, NT = NIN + NOUT, U = kStridedUnroll;
  const int64_t per_block = int64_t(kMaxThreads) * g.unroll;
  for (int64_t b0 = bx * per_block; b0 < n; b0 += g.grid * per_block) {
    uint32_t off[U][NT];
    W x[U][NIN];
FFN_UNROLL
    for (int u = 0; u < U; ++u) {
      const int64_t idx = b0 + tid + int64_t(u) * kMaxThreads;
      if (u < g.unroll && idx < n) {
        strided_offsets<NT>(static_cast<uint32_t>(idx), a.ndim, a.sizes, a.div, a.strides, off[u]);
FFN_UNROLL
        for (int k = 0; k < NIN; ++k) {
          const char* p = a.data[NOUT + k] + off[u][NOUT + k];
          x[u][k] = W(((F::IN_OPMATH >> k) & 1u)
                          ? *reinterpret_cast<const opmath_t*>(p)
                          : static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(p)));
        }
      }
    }
FFN_UNROLL
    for (int u = 0; u < U; ++u) {
      const int64_t idx = b0 + tid + int64_t(u) * kMaxThreads;
      if (u < g.unroll && idx < n) {
        W y[NOUT];
        f(x[u], y);
FFN_UNROLL
        for (int k = 0; k < NOUT; ++k) {
          char* p = a.data[k] + off[u][k];
          const opmath_t v = static_cast<opmath_t>(y[k]);
          if ((F::OUT_OPMATH >> k) & 1u)
            *reinterpret_cast<opmath_t*>(p) = v;
          else
            *reinterpret_cast<scalar_t*>(p) = static_cast<scalar_t>(v);
        }
      }
    }
  }
}

// ---- the tile kernel -----------------------------------------------------------------------------

constexpr int kTile = 32;                           // a tile is kTile x kTile elements of dims i, j
constexpr int kTileThreads = 256;                   // a block: kTile x kTileRows threads
constexpr int kTileRows = kTileThreads / kTile;     // which cover 8 lines of a tile at once
constexpr int kTilePasses = kTile / kTileRows;      // and so 4 elements each
constexpr int kTileLine = kTile + 1;                // a shared tile's row stride, in values
constexpr int kTileMaxOperands = 5;                 // a gating backward's
constexpr int64_t kTileMinSide = 8;                 // shorter dims i or j: the strided kernel
// Offsets within a tile are 32-bit (TileLane): a thread's farthest element of an operand lies
// (kTile - 1) (si + sj) bytes from the tile's origin, which must stay below 2^31, so si + sj below
// 69 MB. A bound of 2^31 / kTile on each stride alone was not: an input that overlaps itself (an
// as_strided view of strides 60 and 60 MB) put the farthest element 3.7 GB away. (In a view that
// does not, one stride is at least the other times its extent, and that bound sufficed.)
constexpr int64_t kTileMaxSpan = (int64_t(1) << 31) / (kTile - 1);

// A layout of tiles: dims i (TensorIterator's dim 0) and j, and the other dimensions outside them.
// Every operand is stored as one type of `es` bytes.
struct TileArgs {
  char* data[kMaxOperands];  // outputs first, then inputs
  int32_t si[kMaxOperands];  // byte strides along i (si + sj below kTileMaxSpan)
  int32_t sj[kMaxOperands];  // and along j
  unsigned across = 0;       // bit k: operand k runs along j (stride es there, not along i)
  // Thread (tx, ty)'s accesses of operand k (tile_lane): bytes tx cx + ty cy + u step from the
  // tile's origin in memory, and values tx scx + ty scy + u sstep into its shared tile.
  int32_t cx[kMaxOperands], cy[kMaxOperands], step[kMaxOperands];
  int32_t scx[kMaxOperands], scy[kMaxOperands], sstep[kMaxOperands];
  int64_t size_i = 0, size_j = 0, tiles_i = 0, tiles_j = 0;
  int64_t outer = 1;                          // elements of the other dimensions
  int ndim_o = 0;                             // the other dimensions, fastest first
  uint32_t sizes_o[kMaxDims];                 // (their product is below 2^31: tile numbers are)
  Divider32 div_o[kMaxDims];                  // by sizes_o[d]
  int64_t strides_o[kMaxDims][kMaxOperands];  // bytes
};

// Whether a coalesced layout of nt operands (ndim dims, dim 0 fastest, byte strides) suits the tile
// kernel, and if so its TileArgs (data pointers left to the caller): the first dim j > 0 along which
// some operand has unit stride while it does not along dim 0, both dims at least kTileMinSide long,
// every stride along them non-negative, each operand's two summing to less than kTileMaxSpan, and
// fewer than 2^31 tiles.
inline bool tile_plan(int ndim, const int64_t* sizes, const int64_t (*strides)[kMaxOperands], int nt,
                      int64_t es, TileArgs& t) {
  if (ndim < 2 || nt > kTileMaxOperands || sizes[0] < kTileMinSide) return false;
  for (int j = 1; j < ndim; ++j) {
    if (sizes[j] < kTileMinSide) continue;
    unsigned across = 0;
    for (int k = 0; k < nt; ++k)
      if (strides[0][k] != es && strides[j][k] == es) across |= 1u << k;
    if (across == 0) continue;
    for (int k = 0; k < nt; ++k)
      if (strides[0][k] < 0 || strides[j][k] < 0 || strides[0][k] + strides[j][k] >= kTileMaxSpan)
        return false;
    t.across = across;
    t.size_i = sizes[0];
    t.size_j = sizes[j];
    t.tiles_i = (sizes[0] + kTile - 1) / kTile;
    t.tiles_j = (sizes[j] + kTile - 1) / kTile;
    t.outer = 1;
    t.ndim_o = 0;
    for (int k = 0; k < nt; ++k) {
      t.si[k] = static_cast<int32_t>(strides[0][k]);
      t.sj[k] = static_cast<int32_t>(strides[j][k]);
      // Along i: thread (tx, ty) at (tx, ty + kTileRows u); along j: at (ty + kTileRows u, tx).
      const bool along_j = (across >> k) & 1u;
      t.cx[k] = along_j ? t.sj[k] : t.si[k];
      t.cy[k] = along_j ? t.si[k] : t.sj[k];
      t.step[k] = kTileRows * t.cy[k];
      t.scx[k] = along_j ? 1 : kTileLine;
      t.scy[k] = along_j ? kTileLine : 1;
      t.sstep[k] = kTileRows * t.scy[k];
    }
    for (int d = 1; d < ndim; ++d) {
      if (d == j) continue;
      t.outer *= sizes[d];
      if (t.outer >= (int64_t(1) << 31)) return false;  // (and so would the tile numbers)
      t.sizes_o[t.ndim_o] = static_cast<uint32_t>(sizes[d]);
      t.div_o[t.ndim_o] = Divider32(t.sizes_o[t.ndim_o]);
      for (int k = 0; k < nt; ++k) t.strides_o[t.ndim_o][k] = strides[d][k];
      ++t.ndim_o;
    }
    return t.tiles_i * t.tiles_j * t.outer < (int64_t(1) << 31);  // tile numbers fit 31 bits
  }
  return false;
}

// The launch: a grid of at most `blocks` blocks (the engine: as many as the GPU holds at once),
// each looping over the tiles with the grid's stride, so that a thread's set-up serves many tiles.
// Tile t is (ti, tj) = (t % tiles_i, (t / tiles_i) % tiles_j) at the other dimensions' index
// t / (tiles_i tiles_j), by Divider32. The kernel is bounded to kTileMinBlocks blocks a
// multiprocessor, 128 registers a thread (the bf16 gating backward takes 108; sm_90, nvcc 13.0):
// bounded to 4 blocks (64 registers), ptxas recomputed every lane's offsets for each tile, and its
// loop took 1.6 times the instructions.
constexpr int kTileMinBlocks = 2;

struct TileWalk {
  int64_t grid = 1;
  uint32_t tiles = 0;
  Divider32 by_i, by_j;
  uint32_t tiles_i = 1, tiles_j = 1;
};

inline TileWalk tile_walk(const TileArgs& t, int64_t blocks) {
  TileWalk w;
  w.tiles_i = static_cast<uint32_t>(t.tiles_i);
  w.tiles_j = static_cast<uint32_t>(t.tiles_j);
  w.tiles = static_cast<uint32_t>(t.tiles_i * t.tiles_j * t.outer);
  w.by_i = Divider32(w.tiles_i);
  w.by_j = Divider32(w.tiles_j);
  w.grid = std::max<int64_t>(1, std::min<int64_t>(w.tiles, blocks));
  return w;
}

// Tile number `tile`: the address of its element (0, 0) in each operand, and its extents.
template <int NT>
struct TilePos {
  char* origin[NT];
  int ni, nj;
};

template <int NT>
FFN_HD TilePos<NT> tile_pos(const TileArgs& a, const TileWalk& w, uint32_t tile) {
  const uint32_t rest = w.by_i.div(tile), ti = tile - rest * w.tiles_i;
  const uint32_t outer = w.by_j.div(rest), tj = rest - outer * w.tiles_j;
  TilePos<NT> p;
  int64_t off[NT];
  strided_offsets<NT>(outer, a.ndim_o, a.sizes_o, a.div_o, a.strides_o, off);
FFN_UNROLL
  for (int k = 0; k < NT; ++k)
    p.origin[k] = a.data[k] + off[k] + int64_t(ti) * kTile * a.si[k] + int64_t(tj) * kTile * a.sj[k];
  p.ni = static_cast<int>(std::min<int64_t>(kTile, a.size_i - int64_t(ti) * kTile));
  p.nj = static_cast<int>(std::min<int64_t>(kTile, a.size_j - int64_t(tj) * kTile));
  return p;
}

// A shared tile: kTile x kTileLine values in op-math (4- or 8-byte words; the odd row stride puts
// both a row and a column read by a warp on 32 banks), element (i, j) at i kTileLine + j. Every
// operand has one: the kernel stages all of them, so that the code is the same whichever operands
// run along j (TileArgs::across, known only at the launch).
template <typename opmath_t>
using TileSmem = opmath_t[kTile * kTileLine];

// Thread tid is (tx, ty) = (tid % kTile, tid / kTile). It computes the elements (i, j) =
// (tx, ty + kTileRows u), u < kTilePasses, and reads and writes an operand's elements in memory at
// (tx, ty + kTileRows u) if the operand runs along i, at (ty + kTileRows u, tx) if along j: either
// way consecutive threads touch consecutive elements. TileLane: where in memory (`off` + u `step`
// bytes from the tile's origin) and where in the shared tile (`soff` + u `sstep`) the thread's u-th
// access of operand k lies (from TileArgs' coefficients, so that no branch picks the formula).
struct TileLane {
  int32_t off, step, soff, sstep;
};

FFN_HD TileLane tile_lane(const TileArgs& a, int k, int tx, int ty) {
  return {tx * a.cx[k] + ty * a.cy[k], a.step[k], tx * a.scx[k] + ty * a.scy[k], a.sstep[k]};
}

// Bit u: whether the thread's u-th access of an operand along j (or along i) lies in a tile of
// ni x nj elements.
FFN_HD uint32_t tile_mask(bool along_j, int ni, int nj, int tx, int ty) {
  const int fixed_n = along_j ? nj : ni, moving_n = along_j ? ni : nj;
  if (tx >= fixed_n || ty >= moving_n) return 0;
  const int count = (moving_n - ty + kTileRows - 1) / kTileRows;
  return count >= kTilePasses ? (1u << kTilePasses) - 1 : (1u << count) - 1;
}

// The three phases of a tile, separated by __syncthreads() in the kernel (and run for every thread
// of a block in turn on the CPU).
// 1. Loads every input into its shared tile. All of a thread's loads are issued before the first is
// stored, so that it has kTilePasses loads of each input in flight.
template <typename scalar_t, typename opmath_t, int NIN, int NOUT>
FFN_HD void tile_load(const TileArgs& a, const TilePos<NIN + NOUT>& p, int tid, TileSmem<opmath_t>* sm) {
  const int tx = tid % kTile, ty = tid / kTile;
  const uint32_t mask_i = tile_mask(false, p.ni, p.nj, tx, ty), mask_j = tile_mask(true, p.ni, p.nj, tx, ty);
  TileLane l[NIN];
  uint32_t mask[NIN];
  scalar_t v[NIN][kTilePasses];
FFN_UNROLL
  for (int k = 0; k < NIN; ++k) {
    l[k] = tile_lane(a, NOUT + k, tx, ty);
    mask[k] = ((a.across >> (NOUT + k)) & 1u) ? mask_j : mask_i;
FFN_UNROLL
    for (int u = 0; u < kTilePasses; ++u)
      if ((mask[k] >> u) & 1u) v[k][u] = *reinterpret_cast<const scalar_t*>(p.origin[NOUT + k] + l[k].off + u * l[k].step);
  }
FFN_UNROLL
  for (int k = 0; k < NIN; ++k)
FFN_UNROLL
    for (int u = 0; u < kTilePasses; ++u)
      if ((mask[k] >> u) & 1u) sm[NOUT + k][l[k].soff + u * l[k].sstep] = static_cast<opmath_t>(v[k][u]);
}

// 2. Computes the thread's elements from the shared tiles into the outputs' shared tiles. Positions
// outside a partial tile are computed too, from whatever their shared words hold, and never stored:
// a test per element would cost more than the few partial tiles' spare work.
template <typename opmath_t, typename W, typename F>
FFN_HD void tile_compute(int tid, TileSmem<opmath_t>* sm, const F& f) {
  constexpr int NIN = F::NIN, NOUT = F::NOUT;
  const int tx = tid % kTile, ty = tid / kTile;
FFN_UNROLL
  for (int u = 0; u < kTilePasses; ++u) {
    const int at = tx * kTileLine + ty + kTileRows * u;
    W x[NIN], y[NOUT];
FFN_UNROLL
    for (int k = 0; k < NIN; ++k) x[k] = W(sm[NOUT + k][at]);
    f(x, y);
FFN_UNROLL
    for (int k = 0; k < NOUT; ++k) sm[k][at] = static_cast<opmath_t>(y[k]);
  }
}

// 3. Stores the outputs from their shared tiles.
template <typename scalar_t, typename opmath_t, int NIN, int NOUT>
FFN_HD void tile_store(const TileArgs& a, const TilePos<NIN + NOUT>& p, int tid, TileSmem<opmath_t>* sm) {
  const int tx = tid % kTile, ty = tid / kTile;
  const uint32_t mask_i = tile_mask(false, p.ni, p.nj, tx, ty), mask_j = tile_mask(true, p.ni, p.nj, tx, ty);
FFN_UNROLL
  for (int k = 0; k < NOUT; ++k) {
    const TileLane l = tile_lane(a, k, tx, ty);
    const uint32_t mask = ((a.across >> k) & 1u) ? mask_j : mask_i;
FFN_UNROLL
    for (int u = 0; u < kTilePasses; ++u)
      if ((mask >> u) & 1u)
        *reinterpret_cast<scalar_t*>(p.origin[k] + l.off + u * l.step) =
            static_cast<scalar_t>(sm[k][l.soff + u * l.sstep]);
  }
}

}  // namespace ffn_ext::cuda
