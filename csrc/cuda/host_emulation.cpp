// The CUDA engine run on the CPU, for tests: with FFN_EXT_EMULATE_CUDA=1 the CPU's kernels of ReLU
// and identity (their activations and their gating: ReGLU, bilinear) and of a tensor-beta Swish go
// through the CUDA engine's choices (launch.h: the row, tile or strided kernel for the layout,
// their arguments, and their geometry for a GPU of kEmulatedSms multiprocessors), and run the very
// kernel bodies (row_kernel.cuh, strided_kernel.cuh) block by block and thread by thread. So the
// tests check that logic, and the kernels' indexing over any layout they are given, on a machine
// without a GPU. Those functors span the engine's cases: one to three inputs, one or two outputs,
// and operands stored in op-math beside fp16/bf16 ones (a tensor beta and its gradient). The other
// activations share every line of it but their maths, and are left to the CPU engine: each functor
// here is compiled into every kernel body of every dtype, and all 47 of a dtype took 133 s of
// g++ 12 -O3 (57 s at -O1; 2-core VM, 2026-11-28), these 17 took 52 s. ReLU and identity also give
// one exact answer on any path (one product rounded once, or a selection), which
// tests/test_layout_fuzz.py compares bit for bit. What only a GPU does is not here: fp16/bf16
// compute in float (the kernels' FFN_EXT_CUDA_EXACT_LOWP maths; FastFloat's intrinsics exist on
// the device only), threads that run at once, and the real limits of memory and time. One thread
// computes every element of the emulated grid in turn: for tests, never for use.
//
// Compiled into every build (it needs no CUDA) and called by the CPU engine (activation_cpu.cpp).
#include "host_emulation.h"

// row_thread loads a pack and later uses it under the same test (c < c1), which GCC does not see
// through once the body is inlined into the emulation's loops.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "launch.h"
#include "ffn_ext/dispatch.h"

namespace ffn_ext::cuda {
namespace {

// An H100's or H200's multiprocessors, so that the geometry is the one those GPUs get.
constexpr int kEmulatedSms = 132;

// The functors emulated (see the top): those of ReLU and identity, whose activation is their member
// `a`, and the tensor-beta Swish ones, which have none.
template <class F, class = void>
struct ActivationOf {
  using type = void;
};
template <class F>
struct ActivationOf<F, std::void_t<decltype(std::declval<F>().a)>> {
  using type = std::decay_t<decltype(std::declval<F>().a)>;
};
template <class A>
constexpr bool kEmulatedActivation = std::is_void_v<A>;
template <class T>
constexpr bool kEmulatedActivation<Relu<T>> = true;
template <class T>
constexpr bool kEmulatedActivation<Identity<T>> = true;

// Launches emulated so far, by kernel: row, tile, strided (the _emulated_launches op).
std::atomic<int64_t> launches[3];

struct HostDevice {
  int sms() const { return kEmulatedSms; }
  int64_t grid_cap() const { return kMaxGridX; }
  bool tiles() const { return true; }
  int strided_unroll() const { return kStridedUnroll; }

  template <typename scalar_t, typename W, int VEC, typename F>
  void row(const RowArgs& args, const RowGeometry& g, int64_t rows, int64_t d, const F& f) const {
    ++launches[0];
    for (int64_t by = 0; by < g.grid_y; ++by)
      for (int64_t bx = 0; bx < g.grid_x; ++bx)
        for (int tid = 0; tid < g.threads; ++tid)
          row_thread<scalar_t, at::opmath_type<scalar_t>, W, VEC>(args, g, rows, d, bx, by, tid, f);
  }

  template <typename scalar_t, typename W, typename F>
  void strided(const StridedArgs& args, int64_t n, const StridedGeometry& g, const F& f) const {
    ++launches[2];
    for (int64_t bx = 0; bx < g.grid; ++bx)
      for (int tid = 0; tid < kMaxThreads; ++tid)
        strided_thread<scalar_t, at::opmath_type<scalar_t>, W>(args, n, g, bx, tid, f);
  }

  // The tile kernel's bound (kTileMinBlocks), as its registers would allow on a GPU.
  template <typename scalar_t, typename W, typename F>
  int tiles_per_sm() const {
    return kTileMinBlocks;
  }

  // A block's tiles in turn, over one block's shared tiles, in the kernel's phases: every thread
  // through a phase before any thread starts the next where the kernel has a barrier (after the
  // loads, after the computing). Between a tile's stores and the next tile's loads it has none,
  // so there each thread stores its share and at once loads its share of the next tile, before the
  // next thread stores: a schedule a GPU may run. Should the next tile's loads ever write a shared
  // word that another thread's stores of this tile still have to read, the stores here read the
  // next tile's value, and the results are wrong (tests/test_layout_fuzz.py).
  template <typename scalar_t, typename W, typename F>
  void tile(const TileArgs& t, const TileWalk& w, const F& f) const {
    using opmath_t = at::opmath_type<scalar_t>;
    constexpr int NIN = F::NIN, NOUT = F::NOUT;
    ++launches[1];
    const auto sm = std::make_unique<TileSmem<opmath_t>[]>(NIN + NOUT);
    auto pos = [&](int64_t i) { return tile_pos<NIN + NOUT>(t, w, static_cast<uint32_t>(i)); };
    for (int64_t bx = 0; bx < w.grid; ++bx) {
      if (bx >= w.tiles) continue;
      TilePos<NIN + NOUT> p = pos(bx);
      for (int tid = 0; tid < kTileThreads; ++tid)
        tile_load<scalar_t, opmath_t, NIN, NOUT>(t, p, tid, sm.get());
      for (int64_t i = bx; i < w.tiles; i += w.grid) {
        for (int tid = 0; tid < kTileThreads; ++tid) tile_compute<opmath_t, W>(tid, sm.get(), f);
        const int64_t next = i + w.grid;
        const TilePos<NIN + NOUT> q = next < w.tiles ? pos(next) : p;
        for (int tid = 0; tid < kTileThreads; ++tid) {
          tile_store<scalar_t, opmath_t, NIN, NOUT>(t, p, tid, sm.get());
          if (next < w.tiles) tile_load<scalar_t, opmath_t, NIN, NOUT>(t, q, tid, sm.get());
        }
        p = q;
      }
    }
  }
};

}  // namespace

std::vector<int64_t> emulated_launches() { return {launches[0], launches[1], launches[2]}; }

bool emulate_cuda() {
  const char* s = std::getenv("FFN_EXT_EMULATE_CUDA");
  return s != nullptr && s[0] == '1';
}

bool emulated_run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins) {
  bool ran = false;
  dispatch_float(outs[0].scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    using opmath_t = at::opmath_type<scalar_t>;
    with_kernel<opmath_t>(d, [&](auto f) {
      using F = decltype(f);
      if constexpr (kEmulatedActivation<typename ActivationOf<F>::type>) {
        if (outs[0].numel() > 0)
          launch_layout<scalar_t, opmath_t>(f, plan_launch(outs, ins), HostDevice{});
        ran = true;
      }
    });
  });
  return ran;
}

}  // namespace ffn_ext::cuda
