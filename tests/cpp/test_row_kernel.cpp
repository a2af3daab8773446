// The CUDA row kernel's body (csrc/cuda/row_kernel.cuh) run on the CPU: every block and every
// thread of the launch that the engine would make, one after another, over buffers laid out as
// the engine sees them (packed halves, slices of wider buffers, misaligned bases, odd d, many rows,
// a capped grid), and the bodies of the kernels of other layouts (csrc/cuda/strided_kernel.cuh:
// strided, over layouts of 1 to 4 dimensions with permuted and broadcast operands; tile, over
// transposed operands beside others, with a batch dimension and partial tiles). A counting functor
// records how often each element is computed: the test fails unless every element is computed
// exactly once, its outputs are right, and nothing else is written. Torch-free; run by ctest;
// prints "N passed, M failed".
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "row_kernel.cuh"
#include "strided_kernel.cuh"

using namespace ffn_ext::cuda;

namespace {

int passed = 0, failed = 0;

// Input 0 carries each element's id; out0 = in0 + in1 + ..., out1 = in0 - in1 (when NOUT = 2).
template <int NIN_, int NOUT_>
struct CountK {
  static constexpr int NIN = NIN_, NOUT = NOUT_;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;  // every operand stored as T
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

// strided_offsets (the strided kernel's addressing, 32-bit offsets, and the tile kernel's outer
// dimensions, 64-bit ones) against the offsets summed over every dimension's index, for layouts of
// 0 to 6 dimensions of fewer than 2^31 elements (sizes of 1 and random strides, 0 among them), every
// element of small ones and about 5000 of large ones.
template <typename Off>
void strided_offsets_every_element() {
  constexpr int NT = 3;
  std::string why;
  uint64_t seed = 12345;
  auto next = [&] { return seed = seed * 6364136223846793005ull + 1442695040888963407ull, seed >> 33; };
  const uint64_t max_stride = sizeof(Off) == 8 ? 100000 : 500;  // uint32 offsets stay below 2^31
  for (int trial = 0; trial < 400 && why.empty(); ++trial) {
    const int ndim = trial % 7;
    uint32_t sizes[8] = {};
    Divider32 div[8];
    Off strides[8][kMaxOperands] = {};
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) {
      const int64_t most = std::min<int64_t>(trial < 300 ? 5 : 70000, ((int64_t(1) << 31) - 1) / n);
      sizes[d] = static_cast<uint32_t>(1 + int64_t(next() % uint64_t(most)));
      div[d] = Divider32(sizes[d]);
      n *= sizes[d];
      for (int k = 0; k < NT; ++k) strides[d][k] = Off(next() % 4 == 0 ? 0 : next() % max_stride);
    }
    const int64_t step = n <= 5000 ? 1 : n / 4999 + 1;
    for (int64_t idx = 0; idx < n && why.empty(); idx += step) {
      Off off[NT];
      int64_t want[NT] = {}, rem = idx;
      strided_offsets<NT>(static_cast<uint32_t>(idx), ndim, sizes, div, strides, off);
      for (int d = 0; d < ndim; ++d) {
        for (int k = 0; k < NT; ++k) want[k] += (rem % sizes[d]) * int64_t(strides[d][k]);
        rem /= sizes[d];
      }
      for (int k = 0; k < NT && why.empty(); ++k)
        if (int64_t(off[k]) != want[k])
          why = "trial " + std::to_string(trial) + " (ndim " + std::to_string(ndim) + "), element " +
                std::to_string(idx) + ", operand " + std::to_string(k);
    }
  }
  std::printf("%s strided_offsets (%d-bit offsets), layouts of 0 to 6 dimensions%s%s\n", why.empty() ? "PASS" : "FAIL",
              int(8 * sizeof(Off)), why.empty() ? "" : ": ", why.c_str());
  (why.empty() ? passed : failed) += 1;
}

// Divider32 against the hardware's division: every numerator below 3000 and the largest ones,
// and random ones, for every divisor below 3000, the powers of two and their neighbours, and
// random divisors up to 2^31 - 1.
void divider32_against_division() {
  std::string why;
  uint64_t seed = 99;
  auto next = [&] { return seed = seed * 6364136223846793005ull + 1442695040888963407ull, uint32_t(seed >> 33); };
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d < 3000; ++d) divisors.push_back(d);
  for (int s = 1; s < 31; ++s)
    for (int64_t e : {-1, 0, 1}) divisors.push_back(uint32_t((int64_t(1) << s) + e));
  divisors.push_back(0x7fffffffu);
  for (int i = 0; i < 3000; ++i) divisors.push_back(1 + next() % 0x7fffffffu);
  for (uint32_t d : divisors) {
    if (d == 0 || d > 0x7fffffffu) continue;
    const Divider32 q(d);
    auto check = [&](uint32_t n) {
      if (why.empty() && q.div(n) != n / d) why = std::to_string(n) + " / " + std::to_string(d);
    };
    for (uint32_t n = 0; n < 3000; ++n) check(n);
    for (uint32_t n = 0x7fffffffu; n > 0x7fffffffu - 3000; --n) check(n);
    for (int i = 0; i < 2000; ++i) check(next() % 0x80000000u);
    for (uint32_t m : {d - 1, d, d + 1, 2 * d - 1, 2 * d}) if (m < 0x80000000u) check(m);
  }
  std::printf("%s Divider32, %zu divisors%s%s\n", why.empty() ? "PASS" : "FAIL", divisors.size(),
              why.empty() ? "" : ": wrong quotient of ", why.c_str());
  (why.empty() ? passed : failed) += 1;
}

// A layout for the strided and tile kernels: `ndim` dimensions (dim 0 fastest), and for each
// operand the order in which its own buffer stores them (a permutation: order[0] is its fastest
// dimension) or, for an input, a broadcast of dimension `bcast` (stride 0 there). Buffers have
// `gap` spare elements after each fastest line, so that strides are not all products of sizes.
struct NdCase {
  std::string name;
  std::vector<int64_t> sizes;
  std::vector<std::vector<int>> order;  // per operand, outputs first
  std::vector<int> bcast;               // per operand: a dimension of stride 0, or -1
  int64_t gap = 0;
  int sms = 132;
  int64_t max_grid = kMaxGridX;
  bool want_tile = false;  // tile_plan must take it (else it must refuse)
};

template <typename T, int NIN, int NOUT>
void run_nd(const NdCase& cs, bool tile) {
  constexpr int NT = NIN + NOUT;
  const int ndim = static_cast<int>(cs.sizes.size());
  int64_t n = 1;
  for (int64_t v : cs.sizes) n *= v;
  const T sentinel = T(-3);
  // Element strides and buffers.
  std::vector<std::vector<int64_t>> st(NT, std::vector<int64_t>(ndim, 0));
  std::vector<std::vector<T>> buf(NT);
  for (int k = 0; k < NT; ++k) {
    int64_t s = 1, len = 1;
    for (size_t q = 0; q < cs.order[k].size(); ++q) {
      const int dim = cs.order[k][q];
      if (dim == cs.bcast[k]) continue;
      st[k][dim] = s;
      s *= cs.sizes[dim] + (q == 0 ? cs.gap : 0);
    }
    len = s + 8;
    buf[k].assign(len, sentinel);
  }
  auto at = [&](int k, int64_t idx) -> T& {
    int64_t off = 0, rem = idx;
    for (int d = 0; d < ndim; ++d) {
      off += (rem % cs.sizes[d]) * st[k][d];
      rem /= cs.sizes[d];
    }
    return buf[k][off];
  };
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < NIN; ++k) at(NOUT + k, i) = k == 0 ? T(i) : T(i % 5 + k);
  std::vector<int> counts(n, 0);
  const CountK<NIN, NOUT> f{counts.data(), n};
  int64_t sizes[kMaxDims] = {}, strides[kMaxDims][kMaxOperands] = {};
  for (int d = 0; d < ndim; ++d) {
    sizes[d] = cs.sizes[d];
    for (int k = 0; k < NT; ++k) strides[d][k] = st[k][d] * int64_t(sizeof(T));
  }
  std::string why, geometry;
  bool tiled = false;
  if (tile) {
    TileArgs t{};
    tiled = tile_plan(ndim, sizes, strides, NT, sizeof(T), t);
    if (tiled != cs.want_tile) why = tiled ? "tile_plan took a layout for the strided kernel" : "tile_plan refused";
    if (tiled && why.empty()) {
      for (int k = 0; k < NT; ++k) t.data[k] = reinterpret_cast<char*>(buf[k].data());
      const TileWalk w = tile_walk(t, std::min<int64_t>(int64_t(cs.sms) * 2, cs.max_grid));
      geometry = std::to_string(t.tiles_i) + " x " + std::to_string(t.tiles_j) + " x " + std::to_string(t.outer) +
                 " tiles, across " + std::to_string(t.across) + ", grid " + std::to_string(w.grid);
      std::vector<TileSmem<float>> sm(NT);
      for (int64_t bx = 0; bx < w.grid; ++bx)
        for (uint32_t tl = static_cast<uint32_t>(bx); tl < w.tiles; tl += static_cast<uint32_t>(w.grid)) {
          const TilePos<NT> p = tile_pos<NT>(t, w, tl);
          // The kernel computes the positions of a partial tile that lie outside it too (from
          // whatever shared memory holds) and stores nothing of them: here they read -1, an id
          // that CountK does not count, so that the counts stay those of the tile's elements.
          for (auto& tile : sm) std::fill(std::begin(tile), std::end(tile), -1.0f);
          for (int tid = 0; tid < kTileThreads; ++tid) tile_load<T, float, NIN, NOUT>(t, p, tid, sm.data());
          for (int tid = 0; tid < kTileThreads; ++tid) tile_compute<float, float>(tid, sm.data(), f);
          for (int tid = 0; tid < kTileThreads; ++tid) tile_store<T, float, NIN, NOUT>(t, p, tid, sm.data());
        }
    }
  }
  if (!tiled && why.empty()) {  // what the engine launches where tile_plan refuses
    StridedArgs a{};
    a.ndim = ndim;
    for (int d = 0; d < ndim; ++d) {
      a.sizes[d] = static_cast<uint32_t>(sizes[d]);
      for (int k = 0; k < NT; ++k) a.strides[d][k] = static_cast<uint32_t>(strides[d][k]);
    }
    for (int k = 0; k < NT; ++k) a.data[k] = reinterpret_cast<char*>(buf[k].data());
    strided_prepare(a);
    const StridedGeometry g = strided_geometry(n, cs.sms, cs.max_grid);
    geometry = std::to_string(g.unroll) + " a thread, grid " + std::to_string(g.grid);
    const int64_t per = int64_t(kMaxThreads) * g.unroll;
    if (g.unroll < 1 || g.unroll > kStridedUnroll || g.grid < 1 || g.grid > cs.max_grid) why = "a geometry outside its bounds";
    if (g.unroll < kStridedUnroll && (n + 2 * per - 1) / (2 * per) >= cs.sms) why = "fewer elements a thread although the GPU was filled";
    for (int64_t bx = 0; bx < g.grid && why.empty(); ++bx)
      for (int tid = 0; tid < kMaxThreads; ++tid) strided_thread<T, float, float>(a, n, g, bx, tid, f);
  }
  for (int64_t i = 0; i < n && why.empty(); ++i)
    if (counts[i] != 1) why = "element " + std::to_string(i) + " computed " + std::to_string(counts[i]) + " times";
  for (int64_t i = 0; i < n && why.empty(); ++i) {
    float s = 0;
    for (int k = 0; k < NIN; ++k) s += float(at(NOUT + k, i));
    if (float(at(0, i)) != float(T(s))) why = "wrong out0 at element " + std::to_string(i);
    if (NOUT > 1 && float(at(1, i)) != float(T(float(at(NOUT, i)) - float(at(NOUT + 1, i)))))
      why = "wrong out1 at element " + std::to_string(i);
  }
  for (int k = 0; k < NOUT && why.empty(); ++k) {
    std::vector<char> inside(buf[k].size(), 0);
    for (int64_t i = 0; i < n; ++i) inside[&at(k, i) - buf[k].data()] = 1;
    for (size_t i = 0; i < inside.size() && why.empty(); ++i)
      if (!inside[i] && buf[k][i] != sentinel) why = "wrote outside output " + std::to_string(k);
  }
  const bool ok = why.empty();
  std::printf("%s %s %s (%s)%s%s\n", ok ? "PASS" : "FAIL", tiled ? "tile" : "strided", cs.name.c_str(),
              geometry.c_str(), ok ? "" : ": ", why.c_str());
  (ok ? passed : failed) += 1;
}

// Each case forward-like (one output, two inputs: run_nd<T, 2, 1>) and backward-like (two outputs,
// three inputs, in the orders bwd_order gives; the last input broadcast as the forward's second).
template <typename T, typename Orders>
void run_fwd_bwd(std::vector<NdCase> cases, const char* tname, int64_t max_n, bool tile, Orders bwd_order) {
  for (auto c : cases) {
    int64_t n = 1;
    for (int64_t v : c.sizes) n *= v;
    if (n > max_n) continue;
    c.name = std::string(tname) + " " + c.name;
    run_nd<T, 2, 1>(c, tile);
    NdCase b = c;
    b.order = bwd_order(c);
    b.bcast = {-1, -1, -1, -1, c.bcast[2]};
    run_nd<T, 3, 2>(b, tile);
  }
}

// Layouts of the strided kernel: interleaved halves (one dimension of stride 2), rows of a few
// elements, permuted 3- and 4-dimensional operands, broadcast inputs, a capped grid, few elements
// (fewer per thread).
template <typename T>
void strided_layouts(const char* tname, int64_t max_n) {
  std::vector<NdCase> cases = {
      {"1-dim, 5 elements", {5}, {{0}, {0}, {0}}, {-1, -1, -1}},
      {"1-dim, 3000 elements", {3000}, {{0}, {0}, {0}}, {-1, -1, -1}, 0, 2},
      {"70000 x 4 rows (gap 4)", {4, 70000}, {{0, 1}, {0, 1}, {0, 1}}, {-1, -1, -1}, 4},
      {"3-dim, one input permuted", {7, 9, 5}, {{0, 1, 2}, {2, 0, 1}, {0, 1, 2}}, {-1, -1, -1}, 1, 1},
      {"4-dim, all permuted", {3, 4, 5, 6}, {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}}, {-1, -1, -1}, 2, 1},
      {"broadcast input", {33, 17}, {{0, 1}, {0, 1}, {0, 1}}, {-1, -1, 1}, 0, 1},
      {"capped grid", {257, 40}, {{0, 1}, {1, 0}, {0, 1}}, {-1, -1, -1}, 3, 2, 3},
      {"few elements, one block", {100, 3}, {{0, 1}, {1, 0}, {0, 1}}, {-1, -1, -1}, 0, 132},
      {"few elements a thread", {1000, 50}, {{0, 1}, {1, 0}, {0, 1}}, {-1, -1, -1}, 0, 132},
      {"two elements a thread", {1000, 100}, {{0, 1}, {1, 0}, {0, 1}}, {-1, -1, -1}, 0, 132},
      {"3-dim, reversed", {37, 41, 3}, {{0, 1, 2}, {2, 1, 0}, {0, 1, 2}}, {-1, -1, -1}, 1, 2},
  };
  // backward-like: two outputs, three inputs (the outputs in the first output's order)
  run_fwd_bwd<T>(cases, tname, max_n, false, [](const NdCase& c) {
    return std::vector<std::vector<int>>{c.order[0], c.order[0], c.order[0], c.order[1], c.order[2]};
  });
}

// Layouts of the tile kernel: an input (and in the backward an output) transposed beside the
// others, in 2 and 3 dimensions (a batch outside the tile or between its dims), partial tiles, the
// shortest sides it takes, a broadcast operand within a tile, a capped grid; and layouts it must
// refuse (every operand along dim 0, a side below kTileMinSide).
template <typename T>
void tile_layouts(const char* tname, int64_t max_n) {
  const std::vector<int> ij = {0, 1}, ji = {1, 0};
  std::vector<NdCase> cases;
  for (auto [i, j] : {std::pair<int64_t, int64_t>{32, 32}, {37, 70}, {70, 37}, {8, 8}, {9, 300}, {300, 9}, {1, 64}})
    cases.push_back({std::to_string(i) + " x " + std::to_string(j) + " gate_t", {i, j}, {ij, ji, ij}, {-1, -1, -1},
                     0, 132, kMaxGridX, i >= kTileMinSide && j >= kTileMinSide});
  cases.push_back({"40 x 50 up_t, gap 3", {40, 50}, {ij, ij, ji}, {-1, -1, -1}, 3, 132, kMaxGridX, true});
  cases.push_back({"batch outside: 33 x 34 x 3", {33, 34, 3}, {{0, 1, 2}, {1, 0, 2}, {0, 1, 2}}, {-1, -1, -1}, 1, 132,
                   kMaxGridX, true});
  cases.push_back({"batch between: 33 x 3 x 34", {33, 3, 34}, {{0, 1, 2}, {2, 1, 0}, {0, 1, 2}}, {-1, -1, -1}, 0, 132,
                   kMaxGridX, true});
  cases.push_back({"broadcast up over j", {40, 45}, {ij, ji, ij}, {-1, -1, 1}, 0, 132, kMaxGridX, true});
  cases.push_back({"two outer dims: 20 x 3 x 40 x 2", {20, 3, 40, 2}, {{0, 1, 2, 3}, {2, 0, 1, 3}, {0, 1, 2, 3}},
                   {-1, -1, -1}, 1, 132, kMaxGridX, true});
  cases.push_back({"capped grid", {200, 90}, {ij, ji, ij}, {-1, -1, -1}, 0, 132, 5, true});
  cases.push_back({"all along dim 0", {40, 45}, {ij, ij, ij}, {-1, -1, -1}, 2, 132, kMaxGridX, false});
  // the backward of the same pair: dy along the output, the gradients as their inputs
  run_fwd_bwd<T>(cases, tname, max_n, true, [](const NdCase& c) {
    return std::vector<std::vector<int>>{c.order[1], c.order[2], c.order[0], c.order[1], c.order[2]};
  });
}

// tile_plan on strides alone: it takes a transposed operand beside a dense one, and refuses when an
// operand's two strides along the tile's dims sum to kTileMaxSpan (its offsets within a tile are
// 32-bit: the farthest lies (kTile - 1) times that sum away) or more operands than
// kTileMaxOperands take part.
void tile_plan_limits() {
  std::string why;
  const int64_t sizes[2] = {40, 50};
  // Operand 2's strides along i and j are (first, big); the others' are (4, 40 * 4) and (50 * 4, 4).
  auto plan = [&](int64_t big, int nt, int64_t first = 4) {
    int64_t st[kMaxDims][kMaxOperands] = {};
    for (int k = 0; k < nt; ++k) {
      st[0][k] = k == 1 ? 50 * 4 : k == 2 ? first : 4;
      st[1][k] = k == 1 ? 4 : k == 2 ? big : 40 * 4;
    }
    TileArgs t{};
    return tile_plan(2, sizes, st, nt, 4, t);
  };
  if (!plan(40 * 4, 3)) why = "refused a transposed input";
  if (!plan(kTileMaxSpan - 8, 3)) why = "refused strides summing to just below kTileMaxSpan";
  if (plan(kTileMaxSpan - 4, 3)) why = "took strides summing to kTileMaxSpan";
  // two strides each of which alone fits: their sum does not (the check was per stride)
  if (plan(kTileMaxSpan / 2 + 4, 3, kTileMaxSpan / 2)) why = "took two strides summing past kTileMaxSpan";
  if (!plan(kTileMaxSpan / 2 - 4, 3, kTileMaxSpan / 2 - 4)) why = "refused two strides summing below it";
  if (plan(40 * 4, kTileMaxOperands + 1)) why = "took more than kTileMaxOperands operands";
  std::printf("%s tile_plan's limits%s%s\n", why.empty() ? "PASS" : "FAIL", why.empty() ? "" : ": ", why.c_str());
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
  strided_offsets_every_element<uint32_t>();
  strided_offsets_every_element<int64_t>();
  divider32_against_division();
  strided_layouts<float>("fp32", 1 << 22);
  strided_layouts<double>("fp64", 1 << 22);
  strided_layouts<int16_t>("16-bit", 32000);
  tile_plan_limits();
  tile_layouts<float>("fp32", 1 << 22);
  tile_layouts<double>("fp64", 1 << 22);
  tile_layouts<int16_t>("16-bit", 32000);
  // more rows than a grid's y extent takes: blocks loop over the rows
  run_case<float, 2, 1>("fp32 rows past gridDim.y", Case{70000, 1, {0, 0, 1}, {1, 2, 2}});
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
