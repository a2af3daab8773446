// FastFloat's division (csrc/cuda/fast_float.cuh: rcp.approx.ftz written out) against the CUDA
// intrinsic it replaces, bit for bit, over every input that can reach it (its exp is __expf
// itself, and its exp2 exp2f itself: nothing to compare):
//   1 / d:    the erfc fit's divisor d = 1 + z / 2 for all 2^31 non-negative patterns z (NaN and
//             infinity included; every float in [1, 2], sigmoid's divisors, is among them),
//             against __fdividef(1, d);
//   a / d:    FastFloat's operator/ for numerators of every kind (signed zeros, subnormals, 1, large,
//             infinite, NaN) over all divisors in [1, 2], against __fdividef(a, d);
//   1 / d:    the exact GELU's d = 1 + kappa |x| (ffn_gelu_erf_f_d1_erfcx: an FMA), as the first.
// Two NaNs count as equal (any payload). Run by tests/test_fast_float.py; prints the counts and the
// first mismatches, "N mismatches" last, and exits 1 when N > 0. Standalone: no torch.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "fast_float.cuh"

using ffn_ext::cuda::FastFloat;

namespace {

constexpr int kKinds = 3;
constexpr int kKeep = 4;  // mismatches recorded per kind
__device__ unsigned long long g_count[kKinds];
__device__ unsigned long long g_checked[kKinds];
__device__ float g_first[kKinds][kKeep][3];  // (input, ffn_ext's result, the intrinsic's)

__device__ bool same(float a, float b) {
  return __float_as_uint(a) == __float_as_uint(b) || (a != a && b != b);
}

__device__ void record(int kind, float in, float got, float want) {
  const unsigned long long n = atomicAdd(&g_count[kind], 1ull);
  if (n < kKeep) {
    g_first[kind][n][0] = in;
    g_first[kind][n][1] = got;
    g_first[kind][n][2] = want;
  }
}

__global__ void check_erfc_divisor() {
  unsigned long long checked = 0;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (uint64_t(1) << 31);
       i += uint64_t(gridDim.x) * blockDim.x) {
    const float z = __uint_as_float(uint32_t(i));
    const float d = 1.0f + 0.5f * z;
    const float got = (FastFloat(1.0f) / FastFloat(d)).v;
    const float want = __fdividef(1.0f, d);
    if (!same(got, want)) record(0, d, got, want);
    ++checked;
  }
  atomicAdd(&g_checked[0], checked);
}

__global__ void check_gelu_divisor() {
  unsigned long long checked = 0;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (uint64_t(1) << 31);
       i += uint64_t(gridDim.x) * blockDim.x) {
    const float z = __uint_as_float(uint32_t(i));
    const float d = fmaf(z, ffn_ext::kGeluErfcxKappa, 1.0f);
    const float got = (FastFloat(1.0f) / FastFloat(d)).v;
    const float want = __fdividef(1.0f, d);
    if (!same(got, want)) record(2, d, got, want);
    ++checked;
  }
  atomicAdd(&g_checked[2], checked);
}

__global__ void check_division(const float* numerators, int n) {
  // Divisors: every float in [1, 2], 2^23 + 1 of them.
  constexpr uint32_t lo = 0x3f800000u, count = (1u << 23) + 1;
  unsigned long long checked = 0;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < uint64_t(count) * n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const float a = numerators[i / count];
    const float d = __uint_as_float(lo + uint32_t(i % count));
    const float got = (FastFloat(a) / FastFloat(d)).v;
    const float want = __fdividef(a, d);
    if (!same(got, want)) record(1, a, got, want);
    ++checked;
  }
  atomicAdd(&g_checked[1], checked);
}

bool ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) std::printf("CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  return e == cudaSuccess;
}

}  // namespace

int main() {
  const float numerators[] = {0.0f,     -0.0f,    1e-45f,  -1e-45f, 1e-40f, 1.17549435e-38f,
                              1e-30f,   0.5f,     1.0f,    -1.0f,   3.7f,   -123.456f,
                              1e30f,    3.4e38f,  -3.4e38f, __builtin_huge_valf(),
                              -__builtin_huge_valf(), __builtin_nanf("")};
  const int n = sizeof(numerators) / sizeof(numerators[0]);
  float* dn = nullptr;
  if (!ok(cudaMalloc(&dn, sizeof numerators), "cudaMalloc") ||
      !ok(cudaMemcpy(dn, numerators, sizeof numerators, cudaMemcpyHostToDevice), "cudaMemcpy"))
    return 2;
  check_erfc_divisor<<<4096, 256>>>();
  check_division<<<4096, 256>>>(dn, n);
  check_gelu_divisor<<<4096, 256>>>();
  if (!ok(cudaGetLastError(), "launch") || !ok(cudaDeviceSynchronize(), "the checks")) return 2;
  unsigned long long count[kKinds], checked[kKinds];
  float first[kKinds][kKeep][3];
  if (!ok(cudaMemcpyFromSymbol(count, g_count, sizeof count), "count") ||
      !ok(cudaMemcpyFromSymbol(checked, g_checked, sizeof checked), "checked") ||
      !ok(cudaMemcpyFromSymbol(first, g_first, sizeof first), "first"))
    return 2;
  const char* names[kKinds] = {"1 / (1 + z/2)", "a / d, d in [1, 2]", "1 / (1 + kappa z)"};
  const unsigned long long expect[kKinds] = {1ull << 31, ((1ull << 23) + 1) * n, 1ull << 31};
  unsigned long long total = 0;
  bool complete = true;
  for (int k = 0; k < kKinds; ++k) {
    std::printf("%s: %llu inputs checked, %llu mismatches\n", names[k], checked[k], count[k]);
    for (unsigned long long j = 0; j < count[k] && j < kKeep; ++j)
      std::printf("  input %.9g: ffn_ext %.9g, intrinsic %.9g\n", first[k][j][0], first[k][j][1],
                  first[k][j][2]);
    total += count[k];
    complete = complete && checked[k] == expect[k];
  }
  if (!complete) std::printf("not every input was checked\n");
  std::printf("%llu mismatches\n", total);
  return total == 0 && complete ? 0 : 1;
}
