// CPU engine of the element-wise activation and gating ops, and their registration for the CPU
// dispatch key. Dense operands take the vector loop (activation_cpu_impl.h; AVX-512 or AVX2 when
// the processor has it), split across threads with at::parallel_for; operands that are rows with
// unit inner stride (the halves of a packed tensor, slices of a wider buffer) take the same loop row
// by row; a tensor beta, in op-math precision and per channel or one value, goes with them, and so
// does an operand that is one value expanded (the gradient of y.sum()). Any other layout (strided
// slices, transposed views beside dense ones) is walked by TensorIterator, in parallel, in small
// tiles gathered into dense buffers for the same vector loop (strided_runs).
#define FFN_CPU_ISA base
#include "activation_cpu_impl.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../cuda/host_emulation.h"
#include "ffn_ext/activation_ops.h"
#include "ffn_ext/gating_ops.h"
#include "ffn_ext/engine_common.h"

namespace ffn_ext::cpu {

// Defined in activation_cpu_avx2.cpp, activation_cpu_avx512.cpp and activation_cpu_avx512bf16.cpp.
void flat_range_avx2(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                     void* const* out, int64_t begin, int64_t end, unsigned one, OpmathOut sum);
void flat_range_avx512(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                       void* const* out, int64_t begin, int64_t end, unsigned one, OpmathOut sum);
void flat_range_avx512bf16(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                           void* const* out, int64_t begin, int64_t end, unsigned one,
                           OpmathOut sum);
bool has_avx2_build();
bool has_avx512_build();
bool has_avx512bf16_build();
void transpose_tile_avx2(const void* src, int64_t lds, void* dst, int64_t ldd, int64_t m, int64_t n,
                         int64_t es);
void transpose_tile_avx512(const void* src, int64_t lds, void* dst, int64_t ldd, int64_t m,
                           int64_t n, int64_t es);

namespace {

using FlatFn = void (*)(const KernelDesc&, c10::ScalarType, const void* const*, void* const*,
                        int64_t, int64_t, unsigned, OpmathOut);

// transpose_tile (activation_cpu_impl.h) of one instruction set.
using TransposeFn = void (*)(const void*, int64_t, void*, int64_t, int64_t, int64_t, int64_t);

struct Loop {
  FlatFn fn;
  TransposeFn transpose;
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
    Loop main{&base::flat_range, &base::transpose_tile, "default"};
    if (cap == "AVX512" && has_avx512_build()) {
      main = {&flat_range_avx512, &transpose_tile_avx512, "avx512"};
    } else if ((cap == "AVX2" || cap == "AVX512") && has_avx2_build()) {
      main = {&flat_range_avx2, &transpose_tile_avx2, "avx2"};
    }
    Loop bf16 = main;
    if (main.fn == &flat_range_avx512 && has_avx512bf16_build() && use_native_bf16())
      bf16 = {&flat_range_avx512bf16, main.transpose, "avx512_bf16"};
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

// The operand masks of kernel d's launch (bit k: output k, then input k - no; `no` outputs
// given). opmath: stored in op-math precision, possibly beside fp16/bf16 operands (a tensor beta,
// its gradient). one: op-math inputs that hold a single value (a 0-dim beta expanded to x's
// shape), which the loop reads once. bcast: storage inputs that hold a single value (the gradient
// of y.sum(), a 0-dim tensor expanded), which a task reads from a buffer of copies (Span). Inputs
// of `one` and `bcast` pass the layout checks whatever their strides, so that the vector loops
// serve them too.
struct Masks {
  unsigned opmath = 0, one = 0, bcast = 0;
};
Masks operand_masks(const KernelDesc& d, c10::ScalarType dtype, size_t no,
                    c10::ArrayRef<at::Tensor> ins) {
  Masks m;
  dispatch_float(dtype, [&](auto tag) {
    with_kernel<at::opmath_type<decltype(tag)>>(d, [&](auto f) {
      using F = decltype(f);
      m.opmath = (F::OUT_OPMATH & ((1u << no) - 1u)) | (F::IN_OPMATH << no);
      for (size_t k = 0; k < ins.size(); ++k) {
        if (!one_value(ins[k])) continue;
        if ((F::IN_OPMATH >> k) & 1u)
          m.one |= 1u << k;
        else if (ins[k].numel() > 1)
          m.bcast |= 1u << k;
      }
    });
  });
  return m;
}

// Elements per call of the vector loop: a longer run (a task's range, a long row) is cut into
// spans of kSpan, so that an input holding one storage value (Launch::bcast) needs a buffer of
// kSpan copies only, and so that a summed output adds its partial sums in the same order whether
// or not an input is broadcast.
constexpr int64_t kSpan = kGrain;

// One launch on the vector loops: the operands' pointers and how far each moves per element (0
// for the inputs of Masks::one and ::bcast). A summed output (run_summed's, the slot after the
// given outputs) moves by 0 (All: one accumulator) or by one double (PerChannel).
struct Launch {
  const KernelDesc& d;
  c10::ScalarType dtype;
  FlatFn fn;
  unsigned one = 0, bcast = 0;
  OpmathOut sum = OpmathOut::Store;
  size_t no = 0, ni = 0;  // outputs including a summed one, inputs
  const void* in[8] = {};
  void* out[8] = {};
  int64_t in_es[8] = {}, out_es[8] = {};      // element sizes
  int64_t in_step[8] = {}, out_step[8] = {};  // bytes per element along a run

  Launch(const KernelDesc& d_, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
         unsigned one_, unsigned bcast_)
      : d(d_), dtype(outs[0].scalar_type()), fn(flat_fn(dtype)), one(one_), bcast(bcast_),
        no(outs.size()), ni(ins.size()) {
    for (size_t k = 0; k < no; ++k) {
      out[k] = outs[k].mutable_data_ptr();
      out_es[k] = out_step[k] = static_cast<int64_t>(outs[k].element_size());
    }
    for (size_t k = 0; k < ni; ++k) {
      in[k] = ins[k].const_data_ptr();
      in_es[k] = static_cast<int64_t>(ins[k].element_size());
      in_step[k] = ((one | bcast) >> k) & 1u ? 0 : in_es[k];
    }
  }
  // Adds the summed output slot: an accumulator (All) or an array of doubles (PerChannel).
  void sum_into(double* dst, OpmathOut mode) {
    sum = mode;
    out[no] = dst;
    out_es[no] = sizeof(double);
    out_step[no] = mode == OpmathOut::PerChannel ? sizeof(double) : 0;
    ++no;
  }
  // Pointers of row r of a row layout (row strides in elements; a one-value input's is 0).
  void row(const RowLayout& rl, int64_t r, const void** in_r, void** out_r) const {
    for (size_t k = 0; k < no; ++k) {
      const bool summed = sum != OpmathOut::Store && k + 1 == no;
      out_r[k] = summed ? out[k] : static_cast<char*>(out[k]) + r * rl.row_stride[k] * out_es[k];
    }
    for (size_t k = 0; k < ni; ++k)
      in_r[k] = static_cast<const char*>(in[k]) + r * rl.row_stride[no_given() + k] * in_es[k];
  }
  size_t no_given() const { return sum != OpmathOut::Store ? no - 1 : no; }
};

// Fills dst with n copies of the sizeof(T) bytes at v.
template <typename T>
void fill_copies(char* dst, const void* v, int64_t n) {
  T value;
  std::memcpy(&value, v, sizeof(T));
  std::fill_n(reinterpret_cast<T*>(dst), n, value);
}

// A task's runs of the vector loop: runs of at most `max_len` elements from the given pointers, in
// spans of kSpan, with the broadcast inputs read from this task's buffers of copies.
class Span {
 public:
  Span(const Launch& l, int64_t max_len) : l_(l) {
    if (l.bcast == 0) return;
    const int64_t len = std::min(kSpan, max_len);
    int64_t bytes = 0;
    for (size_t k = 0; k < l.ni; ++k) bytes += ((l.bcast >> k) & 1u) ? len * l.in_es[k] : 0;
    buf_.reset(new char[bytes]);
    char* b = buf_.get();
    for (size_t k = 0; k < l.ni; ++k) {
      if (!((l.bcast >> k) & 1u)) continue;
      copies_[k] = b;
      switch (l.in_es[k]) {
        case 2: fill_copies<uint16_t>(b, l.in[k], len); break;
        case 4: fill_copies<uint32_t>(b, l.in[k], len); break;
        case 8: fill_copies<uint64_t>(b, l.in[k], len); break;
        default: TORCH_INTERNAL_ASSERT(false, "ffn_ext: an element of ", l.in_es[k], " bytes");
      }
      b += len * l.in_es[k];
    }
  }
  void run(const void* const* in, void* const* out, int64_t len) const {
    const void* in_s[8];
    void* out_s[8];
    for (int64_t s = 0; s < len; s += kSpan) {
      for (size_t k = 0; k < l_.ni; ++k) {
        in_s[k] = ((l_.bcast >> k) & 1u) ? copies_[k]
                                         : static_cast<const char*>(in[k]) + s * l_.in_step[k];
      }
      for (size_t k = 0; k < l_.no; ++k) out_s[k] = static_cast<char*>(out[k]) + s * l_.out_step[k];
      l_.fn(l_.d, l_.dtype, in_s, out_s, 0, std::min(kSpan, len - s), l_.one, l_.sum);
    }
  }
  // Elements [begin, end) of a flat layout.
  void run_flat(int64_t begin, int64_t end) const {
    const void* in_b[8];
    void* out_b[8];
    for (size_t k = 0; k < l_.ni; ++k)
      in_b[k] = static_cast<const char*>(l_.in[k]) + begin * l_.in_step[k];
    for (size_t k = 0; k < l_.no; ++k)
      out_b[k] = static_cast<char*>(l_.out[k]) + begin * l_.out_step[k];
    run(in_b, out_b, end - begin);
  }
  void run_row(const RowLayout& rl, int64_t r) const {
    const void* in_r[8];
    void* out_r[8];
    l_.row(rl, r, in_r, out_r);
    run(in_r, out_r, rl.d);
  }

 private:
  const Launch& l_;
  std::unique_ptr<char[]> buf_;
  const char* copies_[8] = {};
};

// Bytes of each operand's buffer on the strided path. A tile holds kTileBytes / (the largest
// element size of the launch) elements: 256 doubles, 512 floats, 1024 halves; its buffers (up to 8
// operands, 16 KB) live on the stack and stay in L1.
constexpr int64_t kTileBytes = 2048;
// The largest side of a tile that an operand runs across (transpose_tile's bound for 2-byte
// elements): 32 x 32 halves, 32 x 16 floats, 32 x 8 doubles. Against 16 x 32 floats, 32 x 16 took
// 0.84x and 1.02x the time of SwiGLU gating's forward with a transposed gate (1024 x 2048 and
// 2048 x 1024), and 0.75x and 0.97x that of its backward with transposed gate and up (2-core
// AVX-512 Xeon, 2026-11-27); 64 x 8 and 8 x 64 took 1.24x and 1.65x (1024 x 2048).
constexpr int64_t kAcrossSide = 32;
// How many tiles ahead the lines of an operand that runs across a tile are prefetched. 1, 2 and 4
// measured within 15% of each other; none took 1.0-1.3x the time of 2 (SwiGLU gating's forward with
// a transposed gate, 1024 x 2048 and 2048 x 1024, fp32 and bf16; 2-core AVX-512 Xeon, 2026-11-27).
constexpr int64_t kPrefetchTiles = 2;

// A tile of a x b elements of sizeof(T) bytes (element (i, j) at `at` + i si + j sj) into a dense
// buffer (element (i, j) at j a + i; kGather) or back, in the order that follows the memory: along
// i where |si| <= |sj| (a run with si = sizeof(T) is one memcpy), else along j.
template <typename T, bool kGather>
void tile_copy(char* buf, char* at, int64_t si, int64_t sj, int64_t a, int64_t b) {
  T* d = reinterpret_cast<T*>(buf);
  auto one = [&](int64_t i, int64_t j) {
    char* p = at + i * si + j * sj;
    if constexpr (kGather)
      std::memcpy(d + j * a + i, p, sizeof(T));
    else
      std::memcpy(p, d + j * a + i, sizeof(T));
  };
  if (b == 1 || (a > 1 && std::abs(si) <= std::abs(sj))) {
    for (int64_t j = 0; j < b; ++j) {
      if (si == static_cast<int64_t>(sizeof(T))) {
        // 16 elements per constant-size memcpy, which the compiler inlines as vector moves (a
        // call of libc's memcpy per run of a tile took 15% of a transposed operand's time).
        char* run = at + j * sj;
        char* q = reinterpret_cast<char*>(d + j * a);
        int64_t i = 0;
        for (; i + 16 <= a; i += 16) {
          if constexpr (kGather)
            std::memcpy(q + i * sizeof(T), run + i * sizeof(T), 16 * sizeof(T));
          else
            std::memcpy(run + i * sizeof(T), q + i * sizeof(T), 16 * sizeof(T));
        }
        for (; i < a; ++i) one(i, j);
      } else {
        for (int64_t i = 0; i < a; ++i) one(i, j);
      }
    }
  } else {
    for (int64_t i = 0; i < a; ++i)
      for (int64_t j = 0; j < b; ++j) one(i, j);
  }
}

// Whether an operand of strides (si, sj) runs along the outer dimension j of a tile: contiguous
// along j, where the tile's buffer is along i (a transposed view beside dense ones).
bool runs_across(int64_t si, int64_t sj, int64_t es) {
  return sj == es && std::abs(si) > es && si % es == 0;
}

// tile_copy for elements of es bytes. An operand that runs across the tile is transposed in
// registers (transpose_tile of the chosen instruction set, `tr`).
template <bool kGather>
void tile_copy(TransposeFn tr, char* buf, char* at, int64_t si, int64_t sj, int64_t a, int64_t b,
               int64_t es) {
  if (b > 1 && runs_across(si, sj, es)) {
    if constexpr (kGather)
      tr(at, si / es, buf, a, a, b, es);
    else
      tr(buf, a, at, si / es, b, a, es);
    return;
  }
  switch (es) {
    case 2: return tile_copy<uint16_t, kGather>(buf, at, si, sj, a, b);
    case 4: return tile_copy<uint32_t, kGather>(buf, at, si, sj, a, b);
    case 8: return tile_copy<uint64_t, kGather>(buf, at, si, sj, a, b);
    default: TORCH_INTERNAL_ASSERT(false, "ffn_ext: an element of ", es, " bytes");
  }
}

// Any other layout (strided slices such as h[..., ::2] beside h[..., 1::2], a transposed operand
// beside dense ones, broadcasts): TensorIterator's 2-d blocks (coalesced dimensions, byte strides,
// in parallel), each walked in tiles that go through the vector loop of the dense layouts. An
// operand that is dense over a tile is passed as it is; any other is gathered into a dense buffer
// first (an input) or scattered from one after (an output). So every layout gets the vector maths,
// the results of a dense call bit for bit, and the tail guard with them. The tiles:
//  * where every operand is strided along the inner dimension i at most as much as along the outer
//    one j: whole runs of i (rows of up to a tile's elements, or as many short rows as fit);
//  * where an operand runs along j (a transposed view beside dense ones): kAcrossSide elements
//    along i and the rest of a tile along j, so that every operand reads whole cache lines. The
//    operand that runs across is transposed in registers (transpose_tile), and its lines
//    kPrefetchTiles tiles ahead are prefetched: each tile reads one line from each of its rows (a
//    page apart in a large view), which no hardware prefetcher follows. Against the scalar gather
//    of 16 x 16 tiles before, 2026-11-27: benchmarks/results/layouts-cpu-2026-11-27-transposed.md.
// Until 2026-11-27 a scalar loop served these layouts (libm's scalar maths, no tail guard):
// SwiGLU gating on the interleaved halves h[:, ::2], h[:, 1::2] of a 1024 x 4096 buffer ran at
// 0.46-0.73x PyTorch eager (fp32, bf16), now 2.3-3.3x; benchmarks/results/layouts-cpu-2026-11-27.md.
void strided_runs(const Launch& l, at::TensorIterator& iter) {
  const int no = static_cast<int>(l.no), nt = static_cast<int>(l.no + l.ni);
  TORCH_INTERNAL_ASSERT(iter.ntensors() == nt && nt <= 8 && l.sum == OpmathOut::Store);
  int64_t es[8], max_es = 1;
  for (int k = 0; k < nt; ++k) {
    es[k] = k < no ? l.out_es[k] : l.in_es[k - no];
    max_es = std::max(max_es, es[k]);
  }
  const int64_t cap = kTileBytes / max_es;  // elements per tile
  const TransposeFn tr = loops().first.transpose;
  iter.for_each(
      [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        const int64_t* outer = strides + nt;
        bool across = false;  // some operand runs along the outer dimension
        for (int k = 0; k < nt && n1 > 1; ++k)
          across |= outer[k] != 0 && std::abs(outer[k]) < std::abs(strides[k]);
        const int64_t ti = std::min(n0, across ? kAcrossSide : cap);
        const int64_t tj = std::min(n1, across ? std::min(kAcrossSide, cap / ti) : cap / ti);
        alignas(64) char buf[8][kTileBytes];
        const void* in[8];
        void* out[8];
        bool direct[8];
        char* at[8];
        for (int64_t j0 = 0; j0 < n1; j0 += tj) {
          const int64_t b = std::min(tj, n1 - j0);
          for (int64_t i0 = 0; i0 < n0; i0 += ti) {
            const int64_t a = std::min(ti, n0 - i0);
            if (across && i0 + kPrefetchTiles * ti < n0) {
              const int64_t pi = i0 + kPrefetchTiles * ti, pa = std::min(ti, n0 - pi);
              for (int k = 0; k < nt; ++k) {
                if (!runs_across(strides[k], outer[k], es[k])) continue;
                const char* q = data[k] + pi * strides[k] + j0 * outer[k];
                for (int64_t i = 0; i < pa; ++i)
                  for (int64_t off = 0; off < b * es[k]; off += 64)
                    __builtin_prefetch(q + i * strides[k] + off);
              }
            }
            for (int k = 0; k < nt; ++k) {
              at[k] = data[k] + i0 * strides[k] + j0 * outer[k];
              direct[k] = strides[k] == es[k] && (b == 1 || (a == n0 && outer[k] == n0 * es[k]));
              if (!direct[k] && k >= no)
                tile_copy<true>(tr, buf[k], at[k], strides[k], outer[k], a, b, es[k]);
              void* ptr = direct[k] ? static_cast<void*>(at[k]) : buf[k];
              if (k < no) out[k] = ptr; else in[k - no] = ptr;
            }
            l.fn(l.d, l.dtype, in, out, 0, a * b, 0, OpmathOut::Store);
            for (int k = 0; k < no; ++k) {
              if (!direct[k]) tile_copy<false>(tr, buf[k], at[k], strides[k], outer[k], a, b, es[k]);
            }
          }
        }
      },
      kGrain);
}

struct CpuEngine {
  static void run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins) {
    if (cuda::emulate_cuda() && cuda::emulated_run(d, outs, ins)) return;
    const int64_t n = outs[0].numel();
    if (n == 0) return;
    const c10::ScalarType dtype = outs[0].scalar_type();
    const Masks m = operand_masks(d, dtype, outs.size(), ins);
    const Launch l(d, outs, ins, m.one, m.bcast);
    if (flat_layout(outs, ins, m.opmath, m.one | m.bcast)) {
      at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
        Span(l, end - begin).run_flat(begin, end);
      });
      return;
    }
    RowLayout rl;
    if (row_layout(outs, ins, rl, m.opmath, m.one | m.bcast)) {
      // The vector loop runs along each row.
      const int64_t grain = std::max<int64_t>(1, kGrain / rl.d);
      at::parallel_for(0, rl.rows, grain, [&](int64_t r0, int64_t r1) {
        const Span span(l, rl.d);
        for (int64_t r = r0; r < r1; ++r) span.run_row(rl, r);
      });
      return;
    }
    at::TensorIterator iter = strided_iter(outs, ins);
    strided_runs(Launch(d, outs, ins, 0, 0), iter);
  }

  // Runs kernel d, whose last output is op-math (a tensor beta's gradient per element), with that
  // output summed inside the vector loop over the elements that share each beta, so that it is
  // never stored: outs holds the kernel's other outputs. Returns the `channels` sums in double (1:
  // a beta of one element; x's last size: a per-channel beta), or an undefined tensor where the
  // layout takes the strided path, for which the caller stores the gradient per element and sums
  // it. The order of the additions is fixed by the shape (spans of kSpan elements, chunks of
  // kGrain elements or blocks of rows), and for a per-channel beta over many rows also by
  // at::get_num_threads(), which sets how many partial rows of sums there are; as with at::sum, a
  // result is reproducible for a given number of threads.
  static at::Tensor run_summed(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                               c10::ArrayRef<at::Tensor> ins, int64_t channels) {
    if (cuda::emulate_cuda()) return at::Tensor();  // as the CUDA engine: no in-loop sums
    const at::Tensor& ref = outs[0];
    const Masks m = operand_masks(d, ref.scalar_type(), outs.size(), ins);
    at::Tensor sums = at::zeros({channels}, ref.options().dtype(at::kDouble));
    double* const sp = sums.mutable_data_ptr<double>();
    const int64_t n = ref.numel();
    if (n == 0) return sums;
    const OpmathOut mode = channels == 1 ? OpmathOut::All : OpmathOut::PerChannel;
    Launch l(d, outs, ins, m.one, m.bcast);
    // Partial sums, added in order at the end: one per chunk (All) or a row of `channels` per part
    // of the rows (PerChannel).
    std::vector<double> part;
    auto add_parts = [&](int64_t parts) {
      for (int64_t c = 0; c < channels; ++c) {
        double s = 0;
        for (int64_t b = 0; b < parts; ++b) s += part[b * channels + c];
        sp[c] = s;
      }
    };
    // A per-channel beta sums flat only where element i is channel i (x's leading sizes are 1): a
    // per-channel beta that is one value expanded passes the flat check beside any dense x, and
    // takes the rows below.
    if (flat_layout(outs, ins, m.opmath, m.one | m.bcast) &&
        (mode == OpmathOut::All || n == channels)) {
      if (mode == OpmathOut::PerChannel) {
        l.sum_into(sp, mode);
        at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
          Span(l, end - begin).run_flat(begin, end);
        });
        return sums;
      }
      static_assert(kGrain == kSpan, "a chunk's sum is one run of the loop");
      const int64_t chunks = (n + kGrain - 1) / kGrain;
      part.assign(chunks, 0.0);
      l.sum_into(part.data(), mode);
      at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
        Launch lc = l;  // this task's accumulator pointer
        const Span span(lc, std::min(n, kGrain));
        for (int64_t c = c0; c < c1; ++c) {
          lc.out[lc.no - 1] = &part[c];
          span.run_flat(c * kGrain, std::min(n, (c + 1) * kGrain));
        }
      });
      add_parts(chunks);
      return sums;
    }
    RowLayout rl;
    if (!row_layout(outs, ins, rl, m.opmath, m.one | m.bcast)) return at::Tensor();
    TORCH_INTERNAL_ASSERT(mode == OpmathOut::All || rl.d == channels,
                          "ffn_ext: a per-channel beta of another length than the rows");
    const int64_t grain = std::max<int64_t>(1, kGrain / rl.d);
    const int64_t blocks = (rl.rows + grain - 1) / grain;
    // All: one partial sum per block of `grain` rows. PerChannel: one row of partial sums per
    // thread's share of the rows (a row per block would cost blocks x d doubles).
    const int64_t parts =
        mode == OpmathOut::All ? blocks : std::min<int64_t>(blocks, at::get_num_threads());
    const int64_t rows_per_part = (rl.rows + parts - 1) / parts;
    part.assign(parts * channels, 0.0);
    l.sum_into(part.data(), mode);
    at::parallel_for(0, parts, 1, [&](int64_t b0, int64_t b1) {
      Launch lb = l;  // this task's partial sums
      const Span span(lb, rl.d);
      for (int64_t b = b0; b < b1; ++b) {
        lb.out[lb.no - 1] = &part[b * channels];
        const int64_t r1 = std::min(rl.rows, (b + 1) * rows_per_part);
        for (int64_t r = b * rows_per_part; r < r1; ++r) span.run_row(rl, r);
      }
    });
    add_parts(parts);
    return sums;
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
