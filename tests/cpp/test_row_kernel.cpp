// The CUDA row kernel's body (csrc/cuda/row_kernel.cuh) run on the CPU: every block and every
// thread of the launch that the engine would make, one after another, over buffers laid out as
// the engine sees them (packed halves, slices of wider buffers, misaligned bases, odd d, many rows,
// a capped grid). A counting functor records how often each element is computed: the test fails
// unless every element of the [rows, d] region is computed exactly once, its outputs are right,
// and nothing outside the region is written. Torch-free; run by ctest; prints "N passed, M failed".
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "row_kernel.cuh"

using namespace ffn_ext::cuda;

namespace {

int passed = 0, failed = 0;

// Input 0 carries each element's id; out0 = in0 + in1 + ..., out1 = in0 - in1 (when NOUT = 2).
template <int NIN_, int NOUT_>
struct CountK {
  static constexpr int NIN = NIN_, NOUT = NOUT_;
  int* counts;
  int64_t n;
  void operator()(const float* in, float* out) const {
    const int64_t id = static_cast<int64_t>(in[0]);
    if (id >= 0 && id < n) ++counts[id];
    float s = 0;
    for (int k = 0; k < NIN; ++k) s += in[k];
    out[0] = s;
    if constexpr (NOUT > 1) out[1] = in[0] - in[1];
  }
};

// One operand: `rows` rows of `d` at element offset `base` and row stride `stride` in a buffer
// with `pad` spare elements at its end; the buffer itself is 64-byte aligned.
template <typename T>
struct Buf {
  std::vector<T> storage;
  T* data;
  int64_t base, stride;
  Buf(int64_t rows, int64_t d, int64_t base_, int64_t stride_, T fill) : base(base_), stride(stride_) {
    const int64_t len = base + (rows - 1) * stride + d + 16 + 64 / int64_t(sizeof(T));
    storage.assign(len, fill);
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    data = storage.data() + ((64 - p % 64) % 64) / sizeof(T);
  }
  T* at(int64_t r, int64_t c) { return data + base + r * stride + c; }
  T* row0() { return data + base; }
};

struct Case {
  int64_t rows, d;
  int64_t base[8];    // element offsets of the operands (outputs first)
  int64_t stride[8];  // row strides (0: d)
  int sms = 132;
  int64_t max_grid_x = kMaxGridX;
  int unroll = kUnroll;  // the kernel's UNROLL (explore_launch_bounds.cu builds 1 and 2 as well)
};

template <typename T, int NIN, int NOUT>
void run_case(const std::string& name, const Case& cs) {
  const int64_t rows = cs.rows, d = cs.d, n = rows * d;
  constexpr int NT = NIN + NOUT;
  const T sentinel = T(-3);
  std::vector<Buf<T>> bufs;
  for (int k = 0; k < NT; ++k)
    bufs.emplace_back(rows, d, cs.base[k], cs.stride[k] ? cs.stride[k] : d, sentinel);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c)
      for (int k = 0; k < NIN; ++k) *bufs[NOUT + k].at(r, c) = k == 0 ? T(r * d + c) : T((c + r) % 5 + k);

  RowArgs a{};
  for (int k = 0; k < NOUT; ++k) {
    a.out[k] = reinterpret_cast<char*>(bufs[k].row0());
    a.out_stride[k] = bufs[k].stride;
  }
  for (int k = 0; k < NIN; ++k) {
    a.in[k] = reinterpret_cast<const char*>(bufs[NOUT + k].row0());
    a.in_stride[k] = bufs[NOUT + k].stride;
  }
  std::vector<int> counts(n, 0);
  const CountK<NIN, NOUT> f{counts.data(), n};
  const int vec = row_vec<T>(a, NIN, NOUT, rows);
  RowGeometry g;
  auto emulate = [&](auto vec_tag) {
    constexpr int VEC = decltype(vec_tag)::value;
    g = row_geometry(rows, d / VEC, cs.sms, cs.max_grid_x, cs.unroll);
    auto all_threads = [&](auto unroll_tag) {
      constexpr int UNROLL = decltype(unroll_tag)::value;
      for (int64_t by = 0; by < g.grid_y; ++by)
        for (int64_t bx = 0; bx < g.grid_x; ++bx)
          for (int tid = 0; tid < g.threads; ++tid)
            row_thread<T, float, float, VEC, UNROLL>(a, g, rows, d, bx, by, tid, f);
    };
    if (cs.unroll == kUnroll) all_threads(std::integral_constant<int, kUnroll>{});
    else if (cs.unroll == 2) all_threads(std::integral_constant<int, 2>{});
    else all_threads(std::integral_constant<int, 1>{});
  };
  constexpr int full = 16 / sizeof(T);
  if (vec == full) emulate(std::integral_constant<int, full>{});
  else if (vec > 1) { if constexpr (full > 2) emulate(std::integral_constant<int, full / 2>{}); }
  else emulate(std::integral_constant<int, 1>{});

  std::string why;
  const int64_t packs = d / vec;
  auto tiles_at = [&](int64_t threads, int64_t unroll) {
    return std::max<int64_t>(1, (packs + threads * unroll - 1) / (threads * unroll));
  };
  if (g.unroll < 1 || g.unroll > cs.unroll || g.threads < kMinThreads || g.threads > kMaxThreads)
    why = "a geometry outside the kernel's bounds";
  if (g.tile_packs > int64_t(g.threads) * g.unroll) why = "a tile wider than its block covers";
  if (g.col_tiles * g.tile_packs < packs) why = "tiles do not cover the row";
  if (g.grid_y > kMaxGridY || g.grid_x > cs.max_grid_x) why = "grid past its limit";
  // The geometry rule. Threads take fewer packs only while 256-thread blocks of twice as many
  // would be fewer than the multiprocessors; blocks shrink only once threads take one pack and
  // blocks twice as large would be too few, or when half the larger block covers the row.
  if (g.unroll < cs.unroll && !(tiles_at(kMaxThreads, 2 * g.unroll) * rows < cs.sms))
    why = "threads given fewer packs although the GPU was filled";
  if (g.threads < kMaxThreads && int64_t(g.threads) * g.unroll < packs &&
      !(g.unroll == 1 && tiles_at(2 * g.threads, 1) * rows < cs.sms))
    why = "blocks shrunk although the larger ones filled the GPU and their rows";
  if (g.threads > kMinThreads && int64_t(g.threads / 2) * g.unroll >= packs)
    why = "a block larger than its row needs";
  if (g.col_tiles * rows < cs.sms && !(g.unroll == 1 && g.threads == kMinThreads))
    why = "fewer blocks than multiprocessors, with room to shrink";
  for (int64_t i = 0; i < n && why.empty(); ++i)
    if (counts[i] != 1) why = "element " + std::to_string(i) + " computed " + std::to_string(counts[i]) + " times";
  for (int64_t r = 0; r < rows && why.empty(); ++r)
    for (int64_t c = 0; c < d && why.empty(); ++c) {
      float s = 0;
      for (int k = 0; k < NIN; ++k) s += float(*bufs[NOUT + k].at(r, c));
      if (float(*bufs[0].at(r, c)) != float(T(s))) why = "wrong out0 at row " + std::to_string(r);
      if (NOUT > 1 && float(*bufs[1].at(r, c)) != float(T(float(*bufs[NOUT].at(r, c)) - float(*bufs[NOUT + 1].at(r, c)))))
        why = "wrong out1 at row " + std::to_string(r);
    }
  // Nothing outside the rows' d elements of an output is touched.
  for (int k = 0; k < NOUT && why.empty(); ++k) {
    std::vector<char> inside(bufs[k].storage.size(), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < d; ++c) inside[bufs[k].at(r, c) - bufs[k].storage.data()] = 1;
    for (size_t i = 0; i < inside.size() && why.empty(); ++i)
      if (!inside[i] && bufs[k].storage[i] != sentinel) why = "wrote outside the rows of output " + std::to_string(k);
  }
  const bool ok = why.empty();
  std::printf("%s %s%s (vec %d, %d threads of %d packs, %lld tiles of %lld packs, grid %lldx%lld)%s%s\n",
              ok ? "PASS" : "FAIL", name.c_str(),
              cs.unroll == kUnroll ? "" : (" unroll " + std::to_string(cs.unroll)).c_str(), vec,
              g.threads, g.unroll, (long long)g.col_tiles,
              (long long)g.tile_packs, (long long)g.grid_x, (long long)g.grid_y, ok ? "" : ": ",
              why.c_str());
  (ok ? passed : failed) += 1;
}

// The engine's layouts, for storage type T (float ids are exact below 2^24, int16 ids below 2^15).
template <typename T>
void layouts(const char* tname, int64_t max_n) {
  auto nm = [&](const std::string& s) { return std::string(tname) + " " + s; };
  for (int64_t d : {1, 2, 3, 5, 8, 24, 1368, 3420}) {
    for (int64_t rows : {1, 2, 7, 64, 200}) {
      if (rows * d > max_n) continue;
      const std::string sh = std::to_string(rows) + "x" + std::to_string(d);
      // dense: one row of rows * d (what the engine does with a contiguous tensor)
      run_case<T, 2, 1>(nm("dense fwd " + sh), Case{1, rows * d, {}, {}});
      // packed forward: out [rows, d]; gate = h[:, :d], up = h[:, d:] (row stride 2d)
      run_case<T, 2, 1>(nm("packed fwd " + sh), Case{rows, d, {0, 0, d}, {d, 2 * d, 2 * d}});
      // packed backward: dh halves out, grad and h halves in; also with the fewer packs a thread
      // of explore_launch_bounds.cu's variants
      for (int unroll : {kUnroll, 2, 1}) {
        Case c{rows, d, {0, d, 0, 0, d}, {2 * d, 2 * d, d, 2 * d, 2 * d}};
        c.unroll = unroll;
        run_case<T, 3, 2>(nm("packed bwd " + sh), c);
      }
      // rows sliced out of a wider buffer (stride 2d + 3), bases off by one element
      run_case<T, 2, 1>(nm("slice fwd " + sh), Case{rows, d, {1, 1, d + 1}, {d + 3, 2 * d + 3, 2 * d + 3}});
    }
  }
  // decode shapes: few rows of a wide d, and the geometry's shrinking blocks
  for (int64_t rows : {1, 8, 64}) {
    const int64_t d = 14336;
    if (rows * d > max_n) continue;
    run_case<T, 2, 1>(nm("decode packed fwd " + std::to_string(rows) + "x14336"),
                      Case{rows, d, {0, 0, d}, {d, 2 * d, 2 * d}});
    run_case<T, 3, 2>(nm("decode packed bwd " + std::to_string(rows) + "x14336"),
                      Case{rows, d, {0, d, 0, 0, d}, {2 * d, 2 * d, d, 2 * d, 2 * d}});
  }
  // a capped grid (FFN_EXT_CUDA_GRID_WAVES): blocks loop over the tiles
  run_case<T, 2, 1>(nm("capped grid dense"), Case{1, std::min<int64_t>(max_n, 30000), {}, {}, 4, 3});
  if (9 * 1368 <= max_n)
    run_case<T, 2, 1>(nm("capped grid packed"), Case{9, 1368, {0, 0, 1368}, {1368, 2736, 2736}, 4, 2});
}

// A stand-in for c10::BFloat16, with its layout: the upper 16 bits of a float (rounded to nearest
// even), so that the row kernel converts its packs word by word (pack_element).
struct Bf16 {
  uint16_t x;
  Bf16() = default;
  template <typename N>
  explicit Bf16(N v) {
    const float f = static_cast<float>(v);
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    x = static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  }
  explicit operator float() const {
    const uint32_t b = uint32_t(x) << 16;
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  }
  friend bool operator!=(Bf16 a, Bf16 b) { return a.x != b.x; }
};

}  // namespace

template <>
struct ffn_ext::cuda::FloatUpperHalf<Bf16> : std::true_type {};

namespace {

// pack_element against the element's own conversion, bit for bit, for every 16-bit pattern (NaNs,
// infinities and subnormals included) at every position of a pack of VEC.
template <int VEC>
void pack_element_every_pattern() {
  std::string why;
  for (uint32_t bits = 0; bits < 65536 && why.empty(); ++bits)
    for (int at = 0; at < VEC && why.empty(); ++at) {
      Pack<Bf16, VEC> p;
      for (int e = 0; e < VEC; ++e) p.v[e].x = static_cast<uint16_t>(e == at ? bits : 0x3f80u + 7u * e);
      for (int e = 0; e < VEC && why.empty(); ++e) {
        const float got = pack_element<float>(p, e), want = static_cast<float>(p.v[e]);
        if (std::memcmp(&got, &want, sizeof got) != 0)
          why = "element " + std::to_string(e) + " of a pack with bits " + std::to_string(bits) +
                " at " + std::to_string(at);
      }
    }
  std::printf("%s bf16 pack_element, every pattern (vec %d)%s%s\n", why.empty() ? "PASS" : "FAIL", VEC,
              why.empty() ? "" : ": ", why.c_str());
  (why.empty() ? passed : failed) += 1;
}

// strided_offsets (the strided kernel's addressing) against the offsets summed over every
// dimension's index, for layouts of 0 to 6 dimensions (sizes of 1 and random strides, 0 among
// them), every element of small ones and about 5000 of large ones.
void strided_offsets_every_element() {
  constexpr int NT = 3;
  std::string why;
  uint64_t seed = 12345;
  auto next = [&] { return seed = seed * 6364136223846793005ull + 1442695040888963407ull, seed >> 33; };
  for (int trial = 0; trial < 400 && why.empty(); ++trial) {
    const int ndim = trial % 7;
    int64_t sizes[8] = {}, strides[8][kMaxOperands] = {}, n = 1;
    for (int d = 0; d < ndim; ++d) {
      sizes[d] = trial < 300 ? 1 + int64_t(next() % 5) : 1 + int64_t(next() % 70000);
      n *= sizes[d];
      for (int k = 0; k < NT; ++k) strides[d][k] = int64_t(next() % 4 == 0 ? 0 : next() % 100000);
    }
    const int64_t step = n <= 5000 ? 1 : n / 4999 + 1;
    for (int64_t idx = 0; idx < n && why.empty(); idx += step) {
      int64_t off[NT], want[NT] = {}, rem = idx;
      strided_offsets<NT>(idx, ndim, sizes, strides, off);
      for (int d = 0; d < ndim; ++d) {
        for (int k = 0; k < NT; ++k) want[k] += (rem % sizes[d]) * strides[d][k];
        rem /= sizes[d];
      }
      for (int k = 0; k < NT && why.empty(); ++k)
        if (off[k] != want[k])
          why = "trial " + std::to_string(trial) + " (ndim " + std::to_string(ndim) + "), element " +
                std::to_string(idx) + ", operand " + std::to_string(k);
    }
  }
  std::printf("%s strided_offsets, layouts of 0 to 6 dimensions%s%s\n", why.empty() ? "PASS" : "FAIL",
              why.empty() ? "" : ": ", why.c_str());
  (why.empty() ? passed : failed) += 1;
}

}  // namespace

int main() {
  layouts<float>("fp32", 1 << 22);
  layouts<double>("fp64", 1 << 22);
  layouts<int16_t>("16-bit", 32000);
  // bf16 ids are exact up to 256; its packs convert word by word (pack_element)
  layouts<Bf16>("bf16", 256);
  pack_element_every_pattern<8>();
  pack_element_every_pattern<4>();
  pack_element_every_pattern<2>();
  strided_offsets_every_element();
  // more rows than a grid's y extent takes: blocks loop over the rows
  run_case<float, 2, 1>("fp32 rows past gridDim.y", Case{70000, 1, {0, 0, 1}, {1, 2, 2}});
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
