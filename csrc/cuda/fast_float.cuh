// FastFloat: the float that the CUDA kernels compute in for float16 and bfloat16 tensors.
//
// Those results are rounded to 8 (bf16) or 11 (fp16) significant bits, so the last bits of an
// accurate expf, erfcf and IEEE division are lost; they cost about half of the instruction budget
// of a bandwidth-bound bf16 kernel on an H100/H200 (~30 instructions per element at copy speed;
// measured 0.50 of copy bandwidth for bf16 GELU and 0.78 for SiLU with the accurate maths,
// H200, torch 2.11, 2026-11-26). FastFloat routes the activations' primitives to the hardware
// approximations instead:
//   exp:  __expf (ex2.approx of x log2(e), 2 + 1.17 |x| ulp), whose range fix (ex2 of half the
//         argument, squared, where 2^arg < 2^-126) rounds subnormal results once instead of
//         flushing them: a large factor can turn them normal again (x * sigma(x) for x in
//         (-103, -87) is a normal bf16 number);
//   a / b: __fdividef's rcp.approx times a (2 ulp; every divisor here is at least 1);
//   erfc: the Chebyshev fit of the CPU path (fractional error < 1.2e-7, csrc/cpu) on top of the
//         two above, instead of erfcf; for GELU's value alone, a shorter fit (ffn_erfc_value).
// Their error, ~1e-6 relative for arguments of order 1 and up to ~1.3e-5 where exp's argument
// nears -90 (below, results are float subnormals and keep fewer bits however computed), is at most
// 1/300 of a bf16 ulp and 1/40 of an fp16 ulp. float32 and float64 tensors never
// use it. FFN_EXT_CUDA_EXACT_LOWP=1 turns it off (accurate maths for every dtype), which is how
// tests/ and benchmarks/ compare the two.
#pragma once

#include <cuda_runtime.h>

#include "ffn_ext/activations.h"

namespace ffn_ext::cuda {

struct FastFloat {
  float v;
  FastFloat() = default;
  __host__ __device__ constexpr FastFloat(float x) : v(x) {}  // NOLINT: implicit, like float
  __device__ explicit operator float() const { return v; }
};

// rcp.approx in its .ftz form: __fdividef compiles to it, but this library is compiled without
// -ftz (float32 keeps IEEE subnormals), and there the intrinsic wraps it in a compare and two
// predicated multiplies that scale a divisor below 2^-126 in and out. Every divisor here is
// 1 + a number in [0, 1] (sigmoid's), 1 + z / 2 (the erfc fit's) or 1 + kappa |x| (the exact
// GELU's one-exp form), at least 1. On normal operands .ftz changes nothing (PTX ISA), so this
// gives the very bits of __fdividef, only without the scaling; a divisor above 2^126, whose
// reciprocal .ftz flushes to 0, is where __fdividef returns 0 too. tests/test_fast_float.py
// compares the bits over every divisor that reaches it (on a GPU; not yet run on one).
//
// exp keeps __expf, range fix and all. Its .ftz form (ex2.approx.ftz of x log2(e)) flushes results
// below 2^-126, so it had taken the accurate expf below x = -80, behind a branch; sm_90 SASS (nvcc
// 13.0, 2026-11-28), the bf16 row kernels at 8 elements a pack (32 a thread), branch form (with the
// accurate expf stubbed out: its hot path) -> __expf: SiLU gating backward 1596 (1188) -> 1224
// instructions, spill stores 28 -> 0 bytes at the bound's 80 registers; tanh-GELU's 1888 (1491) ->
// 1526, 40 -> 0; GLU's 1359 (957) -> 997, 20 -> 0; SwiGLU's forward 1143 (663) -> 701; SiLU's
// forward 957 (625) -> 591. The range fix's 3 instructions an exp take about what the branch's
// did (BSSY, BRA, BSYNC, outside the stubbed count), and the cold code held registers: the gain is
// the spills and the simpler code, not instruction issue. (The .ftz forms had replaced both
// intrinsics on 2026-11-27 at 16-28% fewer instructions, a count that held the cold code too.)
__device__ __forceinline__ float rcp_approx_ftz(float y) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
  return r;
}

// clang-format off
__device__ __forceinline__ FastFloat operator+(FastFloat a, FastFloat b) { return a.v + b.v; }
__device__ __forceinline__ FastFloat operator-(FastFloat a, FastFloat b) { return a.v - b.v; }
__device__ __forceinline__ FastFloat operator*(FastFloat a, FastFloat b) { return a.v * b.v; }
__device__ __forceinline__ FastFloat operator/(FastFloat a, FastFloat b) { return rcp_approx_ftz(b.v) * a.v; }
__device__ __forceinline__ FastFloat operator-(FastFloat a) { return -a.v; }
__device__ __forceinline__ bool operator==(FastFloat a, FastFloat b) { return a.v == b.v; }
__device__ __forceinline__ bool operator!=(FastFloat a, FastFloat b) { return a.v != b.v; }
__device__ __forceinline__ bool operator<(FastFloat a, FastFloat b) { return a.v < b.v; }
__device__ __forceinline__ bool operator>(FastFloat a, FastFloat b) { return a.v > b.v; }
__device__ __forceinline__ bool operator<=(FastFloat a, FastFloat b) { return a.v <= b.v; }
__device__ __forceinline__ bool operator>=(FastFloat a, FastFloat b) { return a.v >= b.v; }
// clang-format on

// Found by argument-dependent lookup from the activations' generic code.
__device__ __forceinline__ FastFloat ffn_exp(FastFloat x) { return __expf(x.v); }
__device__ __forceinline__ FastFloat ffn_mul_rounded(FastFloat a, FastFloat b) {
  return __fmul_rn(a.v, b.v);
}
__device__ __forceinline__ FastFloat ffn_abs(FastFloat x) { return ::fabsf(x.v); }
__device__ __forceinline__ bool ffn_any_above(FastFloat a, float c) { return a.v > c; }
// (Only the second derivatives call it: not a hot path, so the accurate tanhf.)
__device__ __forceinline__ FastFloat ffn_tanh(FastFloat x) { return ::tanhf(x.v); }
__device__ __forceinline__ FastFloat ffn_where(bool c, FastFloat a, FastFloat b) {
  return c ? a : b;
}
// c[0] t^(N-1) + ... + c[N-1], by Horner's rule in FMAs.
template <int N>
__device__ __forceinline__ FastFloat ffn_horner(FastFloat t, const float (&c)[N]) {
  float p = c[0];
#pragma unroll
  for (int k = 1; k < N; ++k) p = fmaf(p, t.v, c[k]);
  return p;
}
// erfc(a) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z = |a|; erfc(-z) = 2 - erfc(z). c: P's
// coefficients, highest degree first (the fits of csrc/cpu/activation_cpu_impl.h's ffn_erfc_fit).
template <int N>
__device__ __forceinline__ FastFloat ffn_erfc_fit(FastFloat a, const float (&c)[N]) {
  const float z = ::fabsf(a.v);
  const float t = rcp_approx_ftz(1.0f + 0.5f * z);  // __fdividef(1, ...): the same bits
  const float p = ffn_horner(FastFloat(t), c).v;
  const float r = t * ffn_exp(FastFloat(p - z * z)).v;
  return a.v >= 0.0f ? r : 2.0f - r;  // NaN: a >= 0 is false, 2 - NaN = NaN
}
// The CPU's fp32 fit (fractional error < 1.2e-7).
__device__ __forceinline__ FastFloat ffn_erfc(FastFloat a) {
  constexpr float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                         -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  return ffn_erfc_fit(a, c);
}
// erfc for GELU's value alone (ffn_erfc_value, see activations.h): a degree-7 fit, fractional
// error < 9.3e-7 (constrained to erfc(0) = 1 exactly, as the CPU's degree-5 fit is, so that tiny x
// give exactly x / 2). Degree 7, not the CPU's 5 (9.2e-6): the error here already holds __expf's
// (2 + 1.17 |arg|) ulp, 1.2e-5 at arg = -88 (x = -13.3), and the float rounding of -x / sqrt 2,
// which exp(-z^2) turns into up to 1e-5 there (as in every path); the tests allow that model and
// no more (tests/test_maths.py, gelu_lowp_error). Two FMAs fewer than ffn_erfc for the exact GELU
// and GEGLU forwards, which were compute-bound in bf16/fp16 (0.89 of copy bandwidth at 1 GB, where
// tanh-GELU and SiLU reach 0.98-1.0; H100, 2026-11-26). Not yet measured on a GPU.
__device__ __forceinline__ FastFloat ffn_erfc_value(FastFloat a) {
  constexpr float c[] = {-0.18341668f, 0.734444797f, -0.973618388f, 0.326785207f,
                         -0.0287575051f, 0.391094446f, 0.998963892f, -1.26549578f};
  return ffn_erfc_fit(a, c);
}
// GELU's value and first derivative together (GeluErf::f_d1 and d1: the GELU and GEGLU backwards):
// the CPU float vectors' one-exp form, activations.h's ffn_gelu_erf_f_d1_erfcx, on the primitives
// below, where the erfc form took two exps, their two range branches and a fit more. Its error,
// beyond the CPU's (whose f' is correctly rounded for all bf16 and all fp16 but 14 of the inputs),
// is ex2.approx's 2 ulp on E and rcp.approx's 1 ulp on t: tools/fit_gelu_erf.py's check emulates
// both. sm_90 SASS (nvcc 13.0, 2026-11-28), the bf16 row kernels at 8 elements a pack (32 a
// thread), against the erfc form: GEGLU's backward 2502 -> 1566 instructions, 3 -> 2 MUFU an
// element, spill stores 48 -> 0 bytes at the bound's 80 registers; the GELU backward 2147 -> 1183,
// 80 -> 72 registers (fp16 alike). Those counts include the erfc form's cold code, ffn_exp's
// accurate expf below -80 behind a branch; with it stubbed out, the erfc form's hot path takes 1769
// and 1415 instructions, plus each exp's branch (BSSY, BRA, BSYNC). Predicted, not yet measured:
// GEGLU's bf16 forward + backward at 8192 x 14336 at least at tanh-GELU's 0.74 of the byte floor,
// where it ran at 0.63 (H200, torch 2.11, 2026-11-27).
__device__ __forceinline__ FastFloat ffn_fma(FastFloat a, FastFloat b, FastFloat c) {
  return ::fmaf(a.v, b.v, c.v);
}
__device__ __forceinline__ FastFloat ffn_fnma(FastFloat a, FastFloat b, FastFloat c) {
  return ::fmaf(-a.v, b.v, c.v);
}
// 2^y / 2 for y <= 0 (or NaN): exp2f, MUFU.EX2 (ex2.approx, 2 ulp) with __expf's range fix (ffn_exp
// above): below 2^-126 it squares ex2(y / 2), rounding once into the subnormals. A large factor
// can make such a product normal again (GELU's f' at x = -13.3 is -2.1e-38, a normal float and
// bf16 number, with E a subnormal). y - 1 is exact.
__device__ __forceinline__ FastFloat ffn_exp2_half_nonpos(FastFloat y) {
  return ::exp2f(y.v - 1.0f);
}
// max(lo, y), and y itself where y is NaN or both are zeros (the CPU's form).
__device__ __forceinline__ FastFloat ffn_max_keep(FastFloat lo, FastFloat y) {
  return y.v < lo.v ? lo : y;
}
__device__ __forceinline__ void ffn_gelu_erf_f_d1(FastFloat x, float, float, FastFloat& f,
                                                  FastFloat& d1) {
  ffn_gelu_erf_f_d1_erfcx(x, f, d1);
}
template <class Fn>
__device__ __forceinline__ FastFloat ffn_in_double(FastFloat x, Fn fn) {
  return static_cast<float>(fn(static_cast<double>(x.v)));
}

}  // namespace ffn_ext::cuda
