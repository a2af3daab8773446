// The CPU vector loop of the element-wise activation kernels, compiled once per instruction set:
// activation_cpu.cpp includes it for the portable build (at::vec's DEFAULT, plain C++),
// activation_cpu_avx2.cpp for AVX2 + FMA (8 floats a vector) and activation_cpu_avx512.cpp for
// AVX-512 (16). The includer defines FFN_CPU_ISA, the namespace the loop lands in;
// activation_cpu.cpp picks one at run time.
//
// This header deliberately pulls in only at::vec and the torch-free maths: the AVX2 and AVX-512
// translation units are compiled with those instruction sets enabled, and everything they
// instantiate must stay inside this loop.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <c10/util/bit_cast.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>  // _mm_getcsr / _mm_setcsr (the tail guard below)
#endif

#include "ffn_ext/activations.h"  // torch-free; its fits and generic forms serve the overloads here

// Vectorized forms of the primitives that activations.h calls unqualified; argument-dependent
// lookup finds them in Vectorized's own namespace.
namespace at::vec {
inline namespace CPU_CAPABILITY {
template <class T>
inline Vectorized<T> ffn_exp(const Vectorized<T>& x) { return x.exp(); }
template <class T>
inline Vectorized<T> ffn_tanh(const Vectorized<T>& x) { return x.tanh(); }
// Generic forms of the primitives activations.h adds for speed; the float (and AVX-512 double)
// overloads below replace them.
template <class T>
inline Vectorized<T> ffn_where_nonneg(const Vectorized<T>& z, const Vectorized<T>& a,
                                      const Vectorized<T>& b) {
  return Vectorized<T>::blendv(b, a, z >= Vectorized<T>(T(0)));
}
template <class T>
inline Vectorized<T> ffn_unless_zero(const Vectorized<T>& p, const Vectorized<T>& v) {
  return Vectorized<T>::blendv(v, Vectorized<T>(T(0)), p == Vectorized<T>(T(0)));
}
template <class T>
inline Vectorized<T> ffn_where_zero(const Vectorized<T>& p, const Vectorized<T>& a,
                                    const Vectorized<T>& b) {
  return Vectorized<T>::blendv(b, a, p == Vectorized<T>(T(0)));
}
template <class T>
inline Vectorized<T> ffn_exp_nonpos(const Vectorized<T>& x) { return ffn_exp(x); }
template <class T>
inline Vectorized<T> ffn_where_pos(const Vectorized<T>& x, const Vectorized<T>& a,
                                   const Vectorized<T>& b) {
  return Vectorized<T>::blendv(b, a, x > Vectorized<T>(T(0)));
}
template <class T>
inline Vectorized<T> ffn_nan_or_zero(const Vectorized<T>& x) {
  return Vectorized<T>::blendv(Vectorized<T>(T(0)), x, x.isnan());
}
// float exp, inlined: Cody-Waite reduction x = n ln2 + r and Cephes' expf polynomial (about 1 ulp,
// the accuracy of Sleef's expf8_u10, which cannot be inlined into the loop). Results below FLT_MIN
// are rounded once into the subnormals that sigmoid relies on.
// e^r for the reduced argument r = x - n ln2, |r| <= ln2 / 2.
inline Vectorized<float> ffn_exp_reduced(const Vectorized<float>& xc, const Vectorized<float>& n) {
  using V = Vectorized<float>;
  V r = at::vec::fmadd(n, V(-0.693359375f), xc);
  r = at::vec::fmadd(n, V(2.12194440e-4f), r);
  V p(1.9875691500e-4f);
  p = at::vec::fmadd(p, r, V(1.3981999507e-3f));
  p = at::vec::fmadd(p, r, V(8.3334519073e-3f));
  p = at::vec::fmadd(p, r, V(4.1665795894e-2f));
  p = at::vec::fmadd(p, r, V(1.6666665459e-1f));
  p = at::vec::fmadd(p, r, V(5.0000001201e-1f));
  return at::vec::fmadd(p, r * r, r + V(1.0f));
}
#if defined(CPU_CAPABILITY_AVX512)
// p 2^n for an integral n in [-150, 150] (or NaN), rounded once.
inline Vectorized<float> ffn_scale_pow2(const Vectorized<float>& p, const Vectorized<float>& n) {
  return _mm512_scalef_ps(p, n);
}
// AVX-512: vscalefps multiplies by 2^n with one rounding, into the subnormals or to 0 and inf, so
// neither the split scaling nor the range fix-ups of the AVX2 form are needed. xc: x clamped to
// [-150, 150] (or NaN).
inline Vectorized<float> ffn_exp_clamped(const Vectorized<float>& xc) {
  using V = Vectorized<float>;
  const V n = (xc * V(1.44269504088896341f)).round();
  return ffn_scale_pow2(ffn_exp_reduced(xc, n), n);
}
// max(lo, y), and y itself where y is NaN or where both are zeros (vmaxps returns its second
// operand then): so -0 and NaN pass through max(0, y).
inline Vectorized<float> ffn_max_keep(const Vectorized<float>& lo, const Vectorized<float>& y) {
  return _mm512_max_ps(lo, y);
}
// at::vec's AVX-512 clamp is max then min with the operand last, which keeps NaN.
inline Vectorized<float> ffn_exp(const Vectorized<float>& x) {
  using V = Vectorized<float>;
  return ffn_exp_clamped(at::vec::clamp(x, V(-150.0f), V(150.0f)));
}
// x <= 0 (sigmoid's e^-|z|, the normal pdf): only the lower clamp, which keeps NaN.
inline Vectorized<float> ffn_exp_nonpos(const Vectorized<float>& x) {
  return ffn_exp_clamped(ffn_max_keep(Vectorized<float>(-150.0f), x));
}
// The selections below in mask registers: at::vec's comparisons return a vector of all-ones lanes,
// which GCC turns back into a mask for the blend (vcmpps, vpmovm2d, vpcmpd: 3 instructions where 1
// does; 4 of the ~30 of a SiLU vector).
inline Vectorized<float> ffn_where_nonneg(const Vectorized<float>& z, const Vectorized<float>& a,
                                          const Vectorized<float>& b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ), b, a);
}
inline Vectorized<float> ffn_unless_zero(const Vectorized<float>& p, const Vectorized<float>& v) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_NEQ_UQ), v);
}
inline Vectorized<float> ffn_where_zero(const Vectorized<float>& p, const Vectorized<float>& a,
                                        const Vectorized<float>& b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_EQ_OQ), b, a);
}
inline bool ffn_any_above(const Vectorized<float>& a, float c) {
  return _mm512_cmp_ps_mask(a, _mm512_set1_ps(c), _CMP_GT_OQ) != 0;
}
inline Vectorized<float> ffn_where_pos(const Vectorized<float>& x, const Vectorized<float>& a,
                                       const Vectorized<float>& b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), b, a);
}
inline Vectorized<float> ffn_nan_or_zero(const Vectorized<float>& x) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}
inline Vectorized<double> ffn_where_pos(const Vectorized<double>& x, const Vectorized<double>& a,
                                        const Vectorized<double>& b) {
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), b, a);
}
inline Vectorized<double> ffn_nan_or_zero(const Vectorized<double>& x) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), x);
}
inline Vectorized<double> ffn_where_nonneg(const Vectorized<double>& z,
                                           const Vectorized<double>& a,
                                           const Vectorized<double>& b) {
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(z, _mm512_setzero_pd(), _CMP_GE_OQ), b, a);
}
inline Vectorized<double> ffn_unless_zero(const Vectorized<double>& p,
                                          const Vectorized<double>& v) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(p, _mm512_setzero_pd(), _CMP_NEQ_UQ), v);
}
inline Vectorized<double> ffn_where_zero(const Vectorized<double>& p, const Vectorized<double>& a,
                                         const Vectorized<double>& b) {
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(p, _mm512_setzero_pd(), _CMP_EQ_OQ), b, a);
}
inline bool ffn_any_above(const Vectorized<double>& a, double c) {
  return _mm512_cmp_pd_mask(a, _mm512_set1_pd(c), _CMP_GT_OQ) != 0;
}
#else
// p 2^n for an integral n in [-150, 150], rounded once: 2^n is applied in two halves, each a
// normal float, so the product rounds once (n NaN: garbage, but p is NaN then too).
inline Vectorized<float> ffn_scale_pow2(const Vectorized<float>& p, const Vectorized<float>& n) {
  using V = Vectorized<float>;
  using VI = Vectorized<int32_t>;
  const VI ni = at::vec::convert_to_int_of_same_size(n);
  const VI n1 = ni >> VI(1);  // arithmetic shift: floor(n / 2)
  const VI n2 = ni - n1;
  const V s1 = at::vec::cast<float>((n1 + VI(127)) << VI(23));
  const V s2 = at::vec::cast<float>((n2 + VI(127)) << VI(23));
  return p * s1 * s2;
}
// xc: x clamped to [-104, 88.72283] (or NaN, which flows through the polynomial; its n is garbage).
inline Vectorized<float> ffn_exp_clamped(const Vectorized<float>& xc) {
  using V = Vectorized<float>;
  const V n = (xc * V(1.44269504088896341f)).round();
  return ffn_scale_pow2(ffn_exp_reduced(xc, n), n);
}
inline Vectorized<float> ffn_exp(const Vectorized<float>& x) {
  using V = Vectorized<float>;
  const V xc = at::vec::clamp(x, V(-104.0f), V(88.72283f));  // NaN: restored at the end
  V res = ffn_exp_clamped(xc);
  res = V::blendv(res, V(0.0f), x < V(-104.0f));
  res = V::blendv(res, V(std::numeric_limits<float>::infinity()), x > V(88.72283f));
  return V::blendv(res, x, x.isnan());  // the generic clamp does not keep NaN
}
#if defined(CPU_CAPABILITY_AVX2)
// max(lo, y), and y itself where y is NaN or where both are zeros (as the AVX-512 form).
inline Vectorized<float> ffn_max_keep(const Vectorized<float>& lo, const Vectorized<float>& y) {
  return _mm256_max_ps(lo, y);
}
// x <= 0: only the lower clamp (which keeps NaN), and no fix-ups: e^-104 comes out of the split
// scaling as 0.486 of the smallest subnormal, which rounds to 0.
inline Vectorized<float> ffn_exp_nonpos(const Vectorized<float>& x) {
  return ffn_exp_clamped(ffn_max_keep(Vectorized<float>(-104.0f), x));
}
#else
// max(lo, y), and y itself where y is NaN or where both are zeros (as the AVX-512 form).
inline Vectorized<float> ffn_max_keep(const Vectorized<float>& lo, const Vectorized<float>& y) {
  return Vectorized<float>::blendv(y, lo, y < lo);
}
#endif
#endif
template <class T>
inline Vectorized<T> ffn_abs(const Vectorized<T>& x) { return x.abs(); }
// Whether every lane of v is zero (zero_mask has a bit for each zero lane).
template <class T>
inline bool ffn_all_lanes_zero(const Vectorized<T>& v) {
  constexpr int W = Vectorized<T>::size();
  static_assert(W < 32, "zero_mask returns an int");
  return v.zero_mask() == (1 << W) - 1;
}
// (a comparison's lanes are all ones or all zeros)
template <class T>
inline bool ffn_any_above(const Vectorized<T>& a, T c) {
  return !ffn_all_lanes_zero(a > Vectorized<T>(c));
}
template <class T>
inline Vectorized<T> ffn_erfc(const Vectorized<T>& x) { return x.erfc(); }
// c[0] t^(N-1) + ... + c[N-1], by Horner's rule in FMAs (N: unrolled); float coefficients, in
// Vec's element type (float, or double for the tail guard's maths).
template <class Vec, std::size_t N>
inline Vec ffn_horner(const Vec& t, const float (&c)[N]) {
  using S = typename Vec::value_type;
  Vec p = Vec(S(c[0]));
  for (std::size_t k = 1; k < N; ++k) p = at::vec::fmadd(p, t, Vec(S(c[k])));
  return p;
}
// float erfc by a fit of the form erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z = |a| >= 0;
// erfc(-z) = 2 - erfc(z). c: P's coefficients, highest degree first. P(t) - z^2 = log(erfc(z) / t)
// is <= 0 up to the fit's error (0 at z = 0): exp_nonpos's range, which takes a positive argument
// of 1e-5 as well. NaN: a >= 0 is false, and 2 - NaN = NaN.
template <class Vec, std::size_t N>
inline Vec ffn_erfc_fit(const Vec& a, const float (&c)[N]) {
  using S = typename Vec::value_type;  // float, or double for the tail guard's maths (below)
  const Vec z = a.abs();
  const Vec t = Vec(S(1)) / (Vec(S(1)) + Vec(S(0.5)) * z);
  const Vec r = t * ffn_exp_nonpos(ffn_horner(t, c) - z * z);
  return ffn_where_nonneg(a, r, Vec(S(2)) - r);
}
// float erfc for the exact GELU: Sleef's erfcf8_u15 cost ~7x PyTorch's whole GELU (measured on
// this project's 2-core AVX2 machine, 2026-11-22: 1526 us vs 206 us for 1 MB). This is the
// Chebyshev fit of Numerical Recipes' erfcc, with fractional error below 1.2e-7 over the whole
// range, so it keeps erfc's relative accuracy in the tail where 1 + erf cancels. One division, one
// exp and nine FMAs. The tail guard's double lanes take it (TailDoubleVec, below), and the GPU's
// FastFloat (csrc/cuda/fast_float.cuh) evaluates the same coefficients. fp64 keeps Sleef (the fit
// is a float fit). The float vectors take neither: the exact GELU's value and derivatives have
// forms of their own that are cheaper (ffn_gelu_erf_value, ffn_gelu_erf_f_d1), so erfc of a float
// vector is deleted, and a generic formula that reached it (which would otherwise fall back to
// Sleef's erfc, ~7x slower) does not compile.
inline constexpr float kErfcFit[] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f,
                                     0.27886807f,  -0.18628806f, 0.09678418f, 0.37409196f,
                                     1.00002368f,  -1.26551223f};
Vectorized<float> ffn_erfc(const Vectorized<float>& a) = delete;
// FitVec<B, Kind>: a vector whose operations all forward to those of B (a Vectorized), except
// those of the exact GELU's fits, which Kind names (erfc's for TailDoubleVec, GELU's value for
// LowpFloatVec). Two of them:
//  * LowpFloatVec, the float vector that the loop computes in for fp16 and bf16 tensors, as
//    FastFloat is on the GPU (csrc/cuda/fast_float.cuh). Their results are rounded to 11 or 8
//    significant bits, so the accuracy of the float32 maths beyond that is paid for and thrown
//    away: ffn_gelu_erf_value (GELU's forward value) takes shorter fits (below). The derivatives
//    take fp32's fits (ffn_gelu_erf_f_d1): f' = Phi + x phi cancels by ~300x near x = -0.75, which
//    had turned a short erfc fit's 8.5e-6 into 4 fp16 ulp (test_gating, fp16 GEGLU backward). fp32
//    tensors never use it.
//  * TailDoubleVec, the double vector of the tail guard's lanes (below flat_loop's helpers): both
//    erfc functions take the full float fit, evaluated in double. Its 1.2e-7 is what the float
//    maths has elsewhere; Sleef's double erfc (fp64 tensors) made a vector of GELU's tail cost
//    ~420 cycles, 2.6x the fit's.
template <class B, class Kind>
struct FitVec {
  B v;
  FitVec() = default;
  // Explicit, both: with an implicit conversion from B, a forwarder below whose Vectorized
  // overload is not yet declared would call itself (ffn_where did, found in review).
  explicit FitVec(const B& x) : v(x) {}
  explicit FitVec(typename B::value_type c) : v(c) {}
};
struct LowpGeluFits {};
struct FullErfcFit {};
using LowpFloatVec = FitVec<Vectorized<float>, LowpGeluFits>;
using TailDoubleVec = FitVec<Vectorized<double>, FullErfcFit>;
#define FFN_FIT_BINARY(op)                                                                   \
  template <class B, class K>                                                                \
  inline FitVec<B, K> operator op(const FitVec<B, K>& a, const FitVec<B, K>& b) {            \
    return FitVec<B, K>(a.v op b.v);                                                         \
  }
FFN_FIT_BINARY(+)
FFN_FIT_BINARY(-)
FFN_FIT_BINARY(*)
FFN_FIT_BINARY(/)
FFN_FIT_BINARY(==)
FFN_FIT_BINARY(!=)
FFN_FIT_BINARY(<)
FFN_FIT_BINARY(>)
FFN_FIT_BINARY(<=)
FFN_FIT_BINARY(>=)
#undef FFN_FIT_BINARY
#define FFN_FIT_UNARY(name, expr)                                                            \
  template <class B, class K>                                                                \
  inline FitVec<B, K> name(const FitVec<B, K>& x) {                                          \
    return FitVec<B, K>(expr);                                                               \
  }
FFN_FIT_UNARY(operator-, x.v.neg())
FFN_FIT_UNARY(ffn_exp, ffn_exp(x.v))
FFN_FIT_UNARY(ffn_exp_nonpos, ffn_exp_nonpos(x.v))
FFN_FIT_UNARY(ffn_tanh, ffn_tanh(x.v))
FFN_FIT_UNARY(ffn_abs, x.v.abs())
FFN_FIT_UNARY(ffn_nan_or_zero, ffn_nan_or_zero(x.v))
#undef FFN_FIT_UNARY
#define FFN_FIT_TERNARY(name, expr)                                                          \
  template <class B, class K>                                                                \
  inline FitVec<B, K> name(const FitVec<B, K>& x, const FitVec<B, K>& a,                     \
                           const FitVec<B, K>& b) {                                          \
    return FitVec<B, K>(expr);                                                               \
  }
// (blendv itself for ffn_where: the Vectorized form is declared only further down.)
FFN_FIT_TERNARY(ffn_where, B::blendv(b.v, a.v, x.v))
FFN_FIT_TERNARY(ffn_where_nonneg, ffn_where_nonneg(x.v, a.v, b.v))
FFN_FIT_TERNARY(ffn_where_zero, ffn_where_zero(x.v, a.v, b.v))
FFN_FIT_TERNARY(ffn_where_pos, ffn_where_pos(x.v, a.v, b.v))
#undef FFN_FIT_TERNARY
template <class B, class K>
inline FitVec<B, K> ffn_unless_zero(const FitVec<B, K>& p, const FitVec<B, K>& v) {
  return FitVec<B, K>(ffn_unless_zero(p.v, v.v));
}
template <class B, class K>
inline bool ffn_any_above(const FitVec<B, K>& a, typename B::value_type c) {
  return ffn_any_above(a.v, c);
}
LowpFloatVec ffn_erfc(const LowpFloatVec& x) = delete;  // as the float vector's (above)
inline TailDoubleVec ffn_erfc(const TailDoubleVec& x) {
  return TailDoubleVec(ffn_erfc_fit(x.v, kErfcFit));
}
inline TailDoubleVec ffn_erfc_value(const TailDoubleVec& x) { return ffn_erfc(x); }

// s 2^y for y <= 0 (clamped at -150; NaN stays NaN) and s = +-1/2: 2^y = 2^n (1 + f P(f)),
// n = round(y), f = y - n (exact), with P's coefficients e (kExp2Fit6 or kExp2Fit4, below) times s
// (exact), and 2^n applied with one rounding (ffn_scale_pow2).
template <std::size_t NE>
inline Vectorized<float> ffn_exp2_nonpos_times(const Vectorized<float>& y, float s,
                                               const float (&e)[NE]) {
  using V = Vectorized<float>;
  const V yc = ffn_max_keep(V(-150.0f), y);
  const V n = yc.round();
  const V f = yc - n;
  V r = V(s * e[0]);
  for (std::size_t k = 1; k < NE; ++k) r = at::vec::fmadd(r, f, V(s * e[k]));
  return ffn_scale_pow2(at::vec::fmadd(r, f, V(s)), n);
}
using ffn_ext::kMinusHalfLog2e;  // -log2(e) / 2: e^(-x^2/2) = 2^(-c x^2)

// 2^f = 1 + f (e[0] f^(NE-1) + ... + e[NE-1]) on [-1/2, 1/2]: minimax in relative error, degree 6
// (7.9e-8 evaluated in float) and 4 (2.8e-6).
inline constexpr float kExp2Fit6[] = {1.535336196e-04f, 1.339887502e-03f, 9.618436918e-03f,
                                      5.550332367e-02f, 2.402264774e-01f, 6.931471825e-01f};
inline constexpr float kExp2Fit4[] = {9.582852945e-03f, 5.590642616e-02f, 2.402409911e-01f,
                                      6.931241751e-01f};

// GELU's value and first derivative together in the float vectors (GeluErf::f_d1 and d1: the GELU
// backward, GEGLU's backward; and f alone, for fp32 tensors, ffn_gelu_erf_value below), from one
// exp in base 2 instead of the erfc form's two exps: activations.h's ffn_gelu_erf_f_d1_erfcx (the
// formula, and R's fit and kappa), which the GPU's fp16/bf16 maths takes too, on the
// primitives below; E takes kExp2Fit6 for every dtype. Against the float64 reference on 3.5M inputs
// (float emulation of these steps), the largest error of f' as a fraction of the fp32 test bound
// (1e-6 of |f'| + |x f''|) per range of |x| [0,0.5) [0.5,1) [1,3) [3,6) [6,9) [9,12.5): 0.39 0.24
// 0.28 0.065 0.062 0.057 (the erfc form: 0.42 0.32 0.43 0.089 0.035 0.031); the relative error of
// f: 4.5e-7 4.7e-7 7.3e-7 2.1e-6 3.5e-6 7.9e-6 (the erfc form: up to 1.8e-5). The derivatives of
// fp16 / bf16 tensors take the same fits. Of every input, f' is correctly rounded for all bf16 and
// all fp16 but 14, one ulp each (the erfc form: all fp16 but 6; PyTorch's own: 162 bf16 and 150
// fp16 off). tools/fit_gelu_erf.py derives R and reproduces these figures. Measured on a 2-core
// Sapphire Rapids, torch 2.14.1, 2026-11-28, alternating processes: the GELU backward takes
// 0.35-0.58x the erfc form's time (fp32 and bf16, 64K elements to 16 MB, 1 and 2 threads), so that
// it runs at 1.28-2.01x the speed of PyTorch's eager gelu_backward (was 0.67-1.03x); GEGLU's bf16
// forward + backward at 2048 x 4096 takes 0.54-0.89x the time (fp32's, bound by memory, 1.0x).
// Counted in instructions, the exp saved predicted ~0.7x: the rest is likely the critical path,
// where the erfc form's exp waited for the division and the fit, and E's exp2 here runs beside them
// (no counters on this VM). benchmarks/results/gelu-cpu-2026-11-28-backward.md.
// The primitives: E / 2 from kExp2Fit6 with one rounding into the subnormals, and the FMAs by name
// (ffn_horner, ffn_max_keep and the selections are above).
inline Vectorized<float> ffn_exp2_half_nonpos(const Vectorized<float>& y) {
  return ffn_exp2_nonpos_times(y, 0.5f, kExp2Fit6);
}
inline Vectorized<float> ffn_fma(const Vectorized<float>& a, const Vectorized<float>& b,
                                 const Vectorized<float>& c) {
  return at::vec::fmadd(a, b, c);
}
inline Vectorized<float> ffn_fnma(const Vectorized<float>& a, const Vectorized<float>& b,
                                  const Vectorized<float>& c) {
  return at::vec::fnmadd(a, b, c);
}
inline void ffn_gelu_erf_f_d1(const Vectorized<float>& x, float, float, Vectorized<float>& f,
                              Vectorized<float>& d1) {
  ffn_ext::ffn_gelu_erf_f_d1_erfcx(x, f, d1);
}
inline void ffn_gelu_erf_f_d1(const LowpFloatVec& x, float a, float b, LowpFloatVec& f,
                              LowpFloatVec& d1) {
  ffn_gelu_erf_f_d1(x.v, a, b, f.v, d1.v);
}

// fp32 tensors: f_d1's f, the same fits and bits as the backward's (the compiler drops f'). Its
// chains are parallel: E's exp2 needs only x, and the division and R run beside it, where the form
// of ffn_gelu_erf_fit (below) feeds Q(t) into the exponent, so that its division, Q and exp2 run
// one after the other (that the fp32 loop was bound by this latency is what the gain suggests;
// there are no counters on this VM). Sapphire Rapids, torch 2.14.1, 2026-11-28, 1 thread, six
// alternating pairs: 0.76-0.91x the time of that form with a degree-9 Q at 64K and 1M elements, so
// that it runs at 0.85-1.14x PyTorch's eager GELU's speed (was 0.71-0.95x);
// benchmarks/results/gelu-cpu-2026-11-28-backward.md. The fp16/bf16 loop ran no faster with these
// fits in place of its shorter ones (0.98-1.11x the time, three pairs) and keeps them.
// Largest relative error per range of |x| [0,0.5) [0.5,1) [1,3) [3,6) [6,9) [9,12.5): 4.5e-7
// 4.7e-7 7.3e-7 2.1e-6 3.5e-6 7.9e-6 (Q's form with a degree-9 fit: 4.3e-7 4.4e-7 6.9e-7 2.0e-6
// 3.5e-6 7.8e-6).
inline Vectorized<float> ffn_gelu_erf_value(const Vectorized<float>& x, float) {
  Vectorized<float> f, d1;
  ffn_gelu_erf_f_d1(x, 0.0f, 0.0f, f, d1);
  return f;
}

// GELU's value x Phi(x) for fp16 / bf16 tensors (GeluErf::f: the GELU forward and GEGLU's act(g)),
// written so that it needs no sign selection, one product fewer, and exp in base 2:
//     x Phi(x) = max(0, x) - |x| h,   h = Phi(-|x|) = erfc(z) / 2,   z = |x| / sqrt 2
// (x >= 0: x (1 - h); x < 0: x h), with h = t 2^(Q(t) - c x^2) / 2, t = 1 / (1 + kappa |x|),
// c = log2(e) / 2, so that Q(t) = log2(erfcx(z) / t): a Lawson minimax fit in t over |x| in
// [0, 14] constrained to Q(1) = 0, its last coefficient then set so that the float Horner sum is
// exactly 0 at t = 1. So h = 1/2 for tiny x, whose GELU is then exactly x / 2, correctly rounded
// where that is a tie (without such a constraint 129 subnormal bf16 inputs had rounded the wrong
// way, 2026-11-26). The relative error of h is the fit's and exp2's plus the rounding of c x,
// 2^-24 c ln(2) x^2 = 2^-25 x^2: half of what rounding z to float gives the erfc form. 2^y (y <= 0,
// clamped at -150) is a polynomial on [-1/2, 1/2] and ffn_scale_pow2 (vscalefps: into the
// subnormals with one rounding); its coefficients times -1/2 (exact) give -h, which the last FMA
// takes. max(0, x) keeps -0 and NaN; where h underflows to 0 (x = +-inf, |x| > 14.4) the result is
// max(0, x) itself, not inf * 0. (A portable build, whose fmadd rounds twice, gives positive
// subnormal x one subnormal step off x / 2; as does the fp32 form above.)
// The erfc form had made the exact GELU forward 1.2-1.9x the time of PyTorch's eager GELU (whose
// erf, Abramowitz-Stegun 7.1.26, is accurate only absolutely). This form (with a degree-9 Q for
// fp32 tensors then), 2-core Sapphire Rapids, torch 2.14.1, 2026-11-28, 1 thread, alternating
// processes: 0.69-0.82x the erfc form's time (fp32 and bf16, 64K and 1M elements), so that it ran
// at 0.80-1.22x eager's speed (was 0.61-0.86x); GEGLU's bf16 forward at 2048 x 4096, 2 threads:
// 1.33-1.49x torch.compile's speed (was 0.94-0.98x). benchmarks/results/gelu-cpu-2026-11-28.md.
template <std::size_t NQ, std::size_t NE>
inline Vectorized<float> ffn_gelu_erf_fit(const Vectorized<float>& x, float kappa,
                                          const float (&q)[NQ], const float (&e)[NE]) {
  using V = Vectorized<float>;
  const V ax = x.abs();
  const V t = V(1.0f) / at::vec::fmadd(ax, V(kappa), V(1.0f));
  const V y = at::vec::fmadd(x * V(kMinusHalfLog2e), x, ffn_horner(t, q));
  const V nh = t * ffn_exp2_nonpos_times(y, -0.5f, e);  // -h
  const V relu = ffn_max_keep(V(0.0f), x);
  return ffn_where_zero(nh, relu, at::vec::fmadd(ax, nh, relu));
}
// fp16 / bf16 tensors (LowpFloatVec), whose results keep 11 or 8 bits: Q of degree 6 and exp2 of
// degree 4. Largest relative error per range of |x| [0,1) [1,3) [3,6) [6,9) [9,12.5): 4.4e-6
// 4.6e-6 5.0e-6 7.2e-6 9.7e-6 (the degree-5 erfc fit the erfc form took for them: 9.3e-6 9.7e-6
// 1.1e-5 1.1e-5 2.4e-5). Of every input, correctly rounded: all bf16 and all fp16 but 27 (the erfc
// form: all but 3 and 118), whose references lie within the float32 maths' error of a rounding
// midpoint and which are one ulp off (PyTorch's own: 849 and 458; tests/test_maths.py,
// gelu_lowp_error).
inline LowpFloatVec ffn_gelu_erf_value(const LowpFloatVec& x, float) {
  static constexpr float q[] = {3.913205266e-01f, -1.344034076e+00f, 1.325354815e+00f,
                                -3.733255565e-01f, 7.978386283e-01f, 1.415968299e+00f,
                                -2.213122606e+00f};
  return LowpFloatVec(ffn_gelu_erf_fit(x.v, 0.27f, q, kExp2Fit4));
}

// fn evaluated in double precision lane by lane (two double vectors per float vector), then
// rounded back to float; see ffn_in_double in activations.h.
template <class Fn>
inline Vectorized<float> ffn_in_double(const Vectorized<float>& x, Fn fn) {
  using Vf = Vectorized<float>;
  using Vd = Vectorized<double>;
  constexpr int W = Vf::size(), H = Vd::size();
  static_assert(W == 2 * H, "a float vector holds twice as many lanes as a double vector");
  float xf[W], yf[W];
  double xd[W], yd[W];
  x.store(xf);
  for (int i = 0; i < W; ++i) xd[i] = xf[i];
  fn(Vd::loadu(xd)).store(yd);
  fn(Vd::loadu(xd + H)).store(yd + H);
  for (int i = 0; i < W; ++i) yf[i] = static_cast<float>(yd[i]);
  return Vf::loadu(yf);
}
template <class Fn>
inline Vectorized<double> ffn_in_double(const Vectorized<double>& x, Fn fn) {
  return fn(x);
}
template <class Fn, class B, class K>
inline FitVec<B, K> ffn_in_double(const FitVec<B, K>& x, Fn fn) {
  return FitVec<B, K>(ffn_in_double(x.v, fn));
}
// v's lanes as doubles: lanes [0, W/2) and [W/2, W) of a float vector (W lanes).
inline std::pair<Vectorized<double>, Vectorized<double>> ffn_to_double(const Vectorized<float>& v) {
#if defined(CPU_CAPABILITY_AVX512)
  const __m512 x = v;
  return {_mm512_cvtps_pd(_mm512_castps512_ps256(x)),
          _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1))};
#elif defined(CPU_CAPABILITY_AVX2)
  const __m256 x = v;
  return {_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))};
#else
  constexpr int W = Vectorized<float>::size(), H = Vectorized<double>::size();
  float f[W];
  double d[W];
  v.store(f);
  for (int i = 0; i < W; ++i) d[i] = f[i];
  return {Vectorized<double>::loadu(d), Vectorized<double>::loadu(d + H)};
#endif
}
// mask ? a : b, with mask all-ones or all-zeros per lane (a comparison's result).
template <class T>
inline Vectorized<T> ffn_where(const Vectorized<T>& mask, const Vectorized<T>& a,
                               const Vectorized<T>& b) {
  return Vectorized<T>::blendv(b, a, mask);
}
}  // namespace CPU_CAPABILITY
}  // namespace at::vec

#include "ffn_ext/dispatch.h"
#include "ffn_ext/kernels.h"

namespace ffn_ext::cpu::FFN_CPU_ISA {

// Rounds two float vectors (lanes 0..W-1 and W..2W-1) to one vector of fp16 / bf16 and stores it.
template <typename scalar_t>
inline void store_from_float(const at::vec::Vectorized<float>& lo,
                             const at::vec::Vectorized<float>& hi, scalar_t* p) {
#if defined(FFN_CPU_NATIVE_BF16)
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    // vcvtne2ps2bf16 rounds to nearest even, as the portable conversion does, but it ignores
    // MXCSR and flushes subnormal floats to zero (and bf16 has float's exponent range, so those are
    // bf16 subnormals, not zeros). Those lanes (fpclass 0x20: denormal) take the portable
    // conversion's; every other lane keeps the instruction's, NaNs included (the portable one makes
    // every NaN 0xffff), so an element's bits do not depend on its neighbours' results.
    const __m512i fast = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    const __mmask32 sub = static_cast<__mmask32>(_mm512_fpclass_ps_mask(lo, 0x20)) |
                          (static_cast<__mmask32>(_mm512_fpclass_ps_mask(hi, 0x20)) << 16);
    if (__builtin_expect(sub == 0, 1)) {
      _mm512_storeu_si512(p, fast);
    } else {
      const __m512i portable = at::vec::convert_from_float<scalar_t>(lo, hi);
      _mm512_storeu_si512(p, _mm512_mask_mov_epi16(fast, sub, portable));
    }
    return;
  }
#endif
  at::vec::convert_from_float<scalar_t>(lo, hi).store(p);
}

// An op-math output (OpmathOut All or PerChannel) summed in double instead of stored: the loop
// hands it the result vectors in order, two at a time (add2: elements [at, at + 2W), the second
// vector's first; the last pair may be partial), with how many of each one's lanes are elements
// (the rest are masked off). PerChannel adds element i to dst[i]. All adds each pair in op-math
// precision, lane by lane, and that into double lanes; finish() adds those, in order, to *dst. The
// pair's float addition rounds once (an error of at most 2^-24 of |a| + |b|, below the few ulp
// each term carries from its own products; a pair whose float sum is not finite is added term by
// term in double, see add2) and halves the conversions to double: they had cost
// 19% of the fp32 swish_backward.Tensor with beta's gradient (1 thread, 2026-11-27; pairing
// recovered 12%). The order depends only on the range the loop is given, so a sum is the same
// whatever the number of threads; and the fp16/bf16 loop hands over the same pairs of float
// vectors (a storage vector's two halves) as the float loop does for float operands of the same
// values, so their sums are equal too.
template <OpmathOut kSum, typename opmath_t>
struct OpmathSum {
  using Vec = at::vec::Vectorized<opmath_t>;
  using Vd = at::vec::Vectorized<double>;
  static constexpr int W = Vec::size(), H = Vd::size();
  double* dst = nullptr;
  Vd lo = Vd(0.0), hi = Vd(0.0);  // All: lanes [0, H) and, for float, [H, W)

  void add2(Vec a, Vec b, int64_t at, int na = W, int nb = W) {
    if constexpr (kSum == OpmathOut::All) {
      if (na < W) a = Vec::set(Vec(opmath_t(0)), a, na);
      if (nb < W) b = Vec::set(Vec(opmath_t(0)), b, nb);
      const Vec s = a + b;
      // s - s is 0 exactly in the lanes where s is finite. A pair whose sum is not (two finite
      // terms whose float sum overflows, found in review: 2 x 3e38 gave inf, and a cancelling
      // sum NaN; or a term that is itself inf or NaN) is added term by term in double instead.
      if (at::vec::ffn_all_lanes_zero(s - s)) {
        add(s, at);
      } else {
        add(a, at);
        add(b, at);
      }
    } else {
      add(a, at, na);
      if (nb > 0) add(b, at + W, nb);
    }
  }

 private:
  void add(Vec v, int64_t at, int n = W) {
    if (n < W) v = Vec::set(Vec(opmath_t(0)), v, n);
    if constexpr (std::is_same_v<opmath_t, double>) {
      if constexpr (kSum == OpmathOut::All) {
        lo = lo + v;
      } else {
        double* p = dst + at;
        ((n == W ? Vd::loadu(p) : Vd::loadu(p, n)) + v).store(p, n);
      }
    } else {
      const auto [a, b] = at::vec::ffn_to_double(v);
      if constexpr (kSum == OpmathOut::All) {
        lo = lo + a;
        hi = hi + b;
      } else {
        double* p = dst + at;
        if (n == W) {
          (Vd::loadu(p) + a).store(p);
          (Vd::loadu(p + H) + b).store(p + H);
        } else {
          (Vd::loadu(p, std::min(n, H)) + a).store(p, std::min(n, H));
          if (n > H) (Vd::loadu(p + H, n - H) + b).store(p + H, n - H);
        }
      }
    }
  }

 public:
  void finish() {
    if constexpr (kSum == OpmathOut::All) {
      double l[2 * H];
      lo.store(l);
      hi.store(l + H);
      double s = 0;
      for (int j = 0; j < 2 * H; ++j) s += l[j];
      *dst += s;
    }
  }
};

// ---- the underflow tail: lanes whose exp would leave float's normal range -----------------------
// An x86 processor runs a float or double instruction whose operand or result is subnormal, or
// whose result underflows to 0, in microcode unless MXCSR flushes them (FTZ/DAZ), which this
// library must not do: subnormal results are results (REFERENCE.md, tests/test_maths.py). Each
// such instruction cost ~250 cycles here, where a vector of SiLU takes ~25: inputs all in the tail
// below made the fp32 and bf16 forwards and backwards 5-27x slower than on ordinary inputs (SiLU
// 12-18x, Swish 18-27x, exact GELU 6-10x, tanh-GELU 5-7x, the gating ops alike; Xeon with AVX-512,
// 2 threads, torch 2.14.1, 2026-11-27; torch.set_flush_denormal(True) restored the normal times,
// which named the cause). PyTorch's own forms saturate before they get there (1 + erf(x) cancels
// to 0, exp(-x) overflows to inf) and lose those results' accuracy instead.
// The exp-based activations reach that range only past a fixed |x| (below). A vector holding such
// a lane (a "tail" lane) runs the usual float maths with that lane's argument replaced by 0, and
// the tail lanes again in double precision, where nothing in their maths is subnormal (flushing
// the doubles changes no float result: a double below 2^-1022 times any product of float operands
// still rounds to a float 0), then rounded once to float. So a lane's result depends on its own
// operands alone, never on its neighbours, as the loop requires (flat_loop); the other lanes keep
// their bits, and the tail lanes are the double maths rounded once: correctly rounded for the
// sigmoid family, where the float maths had rounded subnormal intermediates several times
// (tests/test_cpu_tail.py). The double functors are those of fp64 tensors (but exact GELU's erfc,
// see TailDoubleVec). All-tail inputs now cost 3.3-4.9x ordinary ones (benchmarks/bench_tail.py,
// same machine and date; its report also has 0.1% outliers, where this costs about what it
// saves). Not on other processors (no such penalty). The strided layouts get it too: their path
// gathers tiles of them for this loop (activation_cpu.cpp, strided_runs).
#if defined(__x86_64__) || defined(_M_X64)
#define FFN_CPU_TAIL_GUARD 1
#else
#define FFN_CPU_TAIL_GUARD 0
#endif

// A tail lane is one where some exp argument of the activation's maths falls below -kTailExpArg
// (results from 1.8e-35, 1500 times float's smallest normal number, so that their products with
// the other factors of the formulas, from ~1e-3 up, stay normal).
//   SiLU, sigmoid: exp(-|x|), |x| > 80;  Swish: exp(-|beta x| / 2) and its square, |beta x| > 80;
//   tanh-GELU: sigma(2u), |2u| > 80 from |x| > 9.67 (2u = 1.5958 (x + 0.044715 x^3)): 9.6;
//   exact GELU: exp(-x^2 / 2) and the erfc fit's exp(P(t) - x^2 / 2) >= exp(-79.2), |x| <= 12.5.
// ReLU and identity have no exp and no tail (kTailLimit 0). (A NaN argument goes with the tail
// lanes: tail_lanes.)
constexpr float kTailExpArg = 80.0f;
template <class A>
inline constexpr float kTailLimit = 0.0f;
template <class T>
inline constexpr float kTailLimit<Silu<T>> = kTailExpArg;
template <class T>
inline constexpr float kTailLimit<Sigmoid<T>> = kTailExpArg;
template <class T>
inline constexpr float kTailLimit<Swish<T>> = kTailExpArg;  // on |beta x|: see tail_limit_of
template <class T>
inline constexpr float kTailLimit<GeluTanh<T>> = 9.6f;
template <class T>
inline constexpr float kTailLimit<GeluErf<T>> = 12.5f;
// The limit on |x| for activation a.
template <class A>
inline float tail_limit_of(const A&) { return kTailLimit<A>; }
// Swish: on |x|, kTailExpArg / |beta|; beta = 0 (swish is x / 2) or NaN (every result NaN, no
// subnormal on the way): inf, no tail.
template <class T>
inline float tail_limit_of(const Swish<T>& s) {
  const float l = kTailExpArg / std::fabs(static_cast<float>(s.beta));
  return std::isnan(l) ? std::numeric_limits<float>::infinity() : l;
}

// The activation in double (Swish keeps the float beta that the float maths used).
template <template <class> class A>
A<double> to_double(const A<float>&) { return {}; }
inline Swish<double> to_double(const Swish<float>& s) { return {static_cast<double>(s.beta)}; }

// Per kernel: whether it has a tail, which input is the activation's argument (kArg, the one
// replaced by 0), the limit on |arg(in)|, the same kernel in double, and whether the loop can scan
// the argument operand ahead (kScan: it is an operand; a tensor beta's argument is beta x).
template <class K>
struct Tail {
  static constexpr bool kHas = false, kScan = false;
  static constexpr int kBetaArg = -1;
};
template <template <class> class K, class A, int kArgIndex>
struct ActKernelTail {
  static constexpr bool kHas = kTailLimit<A> > 0.0f, kScan = kHas;
  static constexpr int kBetaArg = -1;
  static constexpr int kArg = kArgIndex;
  static float limit(const K<A>& k) { return tail_limit_of(k.a); }
  template <class V>
  static V arg(const V* in) { return in[kArg]; }
  static auto dbl(const K<A>& k) { return K<decltype(to_double(k.a))>{to_double(k.a)}; }
};
template <class A>
struct Tail<FwdK<A>> : ActKernelTail<FwdK, A, 0> {};  // x
template <class A>
struct Tail<BwdK<A>> : ActKernelTail<BwdK, A, 1> {};  // g, x
template <class A>
struct Tail<Bwd2K<A>> : ActKernelTail<Bwd2K, A, 2> {};  // gg, g, x
template <class A>
struct Tail<GateFwdK<A>> : ActKernelTail<GateFwdK, A, 0> {};  // g, u
template <class A>
struct Tail<GateBwdK<A>> : ActKernelTail<GateBwdK, A, 1> {};  // dy, g, u
template <class A>
struct Tail<GateBwd2K<A>> : ActKernelTail<GateBwd2K, A, 3> {};  // gg_g, gg_u, dy, g, u
// A tensor beta: the argument is beta x, from the operands x (kArg) and beta (kBeta).
template <int kX, int kBeta>
struct SwishTTail {
  static constexpr bool kHas = true, kScan = false;  // beta x is no operand (but see flat_loop)
  static constexpr int kArg = kX, kBetaArg = kBeta;
  template <class F>
  static float limit(const F&) { return kTailExpArg; }
  template <class V>
  static V arg(const V* in) { return in[kX] * in[kBeta]; }
};
template <class T>
struct Tail<SwishTFwdK<T>> : SwishTTail<0, 1> {  // x, beta
  static SwishTFwdK<double> dbl(const SwishTFwdK<T>&) { return {}; }
};
template <class T, bool B>
struct Tail<SwishTBwdK<T, B>> : SwishTTail<1, 2> {  // g, x, beta
  static SwishTBwdK<double, B> dbl(const SwishTBwdK<T, B>&) { return {}; }
};
template <class T, bool B>
struct Tail<SwishTBwd2K<T, B>> : SwishTTail<3, 4> {  // ggx, ggb, g, x, beta
  static SwishTBwd2K<double, B> dbl(const SwishTBwd2K<T, B>&) { return {}; }
};

// The loop's float vectors: Vectorized<float> (float32) and LowpFloatVec (fp16/bf16).
inline const at::vec::Vectorized<float>& float_vec(const at::vec::Vectorized<float>& v) {
  return v;
}
inline const at::vec::Vectorized<float>& float_vec(const at::vec::LowpFloatVec& v) {
  return v.v;
}
template <class V>
inline V from_float_vec(const at::vec::Vectorized<float>& v) { return V(v); }

// Whether kernel F gets the tail guard in a loop over vectors V (float maths only: fp64 tensors
// reach double's subnormals only past |x| ~ 700, and the guard's own maths is double).
template <class F, class V>
inline constexpr bool kTailGuard =
    FFN_CPU_TAIL_GUARD && Tail<F>::kHas &&
    (std::is_same_v<V, at::vec::Vectorized<float>> || std::is_same_v<V, at::vec::LowpFloatVec>);

// The limit on |arg| for kernel F (+inf where there is no guard: the loop never compares then).
template <class F>
inline float tail_limit(const F& f) {
  if constexpr (Tail<F>::kHas) {
    return Tail<F>::limit(f);
  } else {
    return std::numeric_limits<float>::infinity();
  }
}

// The loop scans blocks of kTailBlock elements of the argument ahead (span_may_have_tail) and
// runs the guard only in the blocks that may hold a tail lane; the others run the loop as it was,
// instruction for instruction. Guarding every vector put its bounds check (4 instructions) on
// every vector: 10-20% of the fp32 SiLU and GELU loops in L1 (64K elements, 1 thread). The scan
// takes ~2.5 instructions a vector of 16 floats (~1.3 for fp16 / bf16) against the ~29 of SiLU's
// forward; its cost in time was within this VM's +-10% noise (1M elements, fp32 and bf16, SiLU,
// GELU, SwiGLU). 256: with 0.1% of the elements in the tail, 77% of the blocks still hold none.
constexpr int64_t kTailBlock = 256;
template <class F, typename scalar_t>
inline constexpr bool kTailScan = Tail<F>::kScan && !std::is_same_v<scalar_t, double>;

// The bits of the largest scalar_t no greater than limit (> 0, or +inf): |x| > limit is possible
// only where |x|'s bits (the sign cleared) are above them as unsigned integers, NaN's too.
template <typename scalar_t>
inline uint32_t tail_scan_bits(float limit) {
  if constexpr (sizeof(scalar_t) == 2) {
    const scalar_t h = static_cast<scalar_t>(limit);  // to nearest: one step down if above
    return static_cast<uint32_t>(h.x) - (static_cast<float>(h) > limit ? 1u : 0u);
  } else {
    return c10::bit_cast<uint32_t>(limit);  // (double: unused, no guard)
  }
}

// Whether some element of p[0, n) may be a tail lane, NaN included (false: certainly none): the
// largest |x| as bits (the sign cleared), compared as unsigned integers with the bound's, two
// instructions a vector. (vrangeps would take one for float, but it drops a NaN operand, and a
// block holding a NaN must take the guard: tail_lanes.)
template <typename scalar_t>
inline bool span_may_have_tail(const scalar_t* p, int64_t n, uint32_t bits) {
  static_assert(sizeof(scalar_t) == 4 || sizeof(scalar_t) == 2, "float, half or bfloat16");
  constexpr bool k32 = sizeof(scalar_t) == 4;
  int64_t j = 0;
  bool above = false;
#if defined(CPU_CAPABILITY_AVX512)
  constexpr int64_t L = 64 / sizeof(scalar_t);
  const __m512i abs = k32 ? _mm512_set1_epi32(0x7fffffff) : _mm512_set1_epi16(0x7fff);
  auto max = [](__m512i a, __m512i b) {
    return k32 ? _mm512_max_epu32(a, b) : _mm512_max_epu16(a, b);
  };
  auto load = [&](int64_t at) { return _mm512_and_si512(_mm512_loadu_si512(p + at), abs); };
  __m512i m0 = _mm512_setzero_si512(), m1 = m0;
  for (; j + 2 * L <= n; j += 2 * L) {
    m0 = max(m0, load(j));
    m1 = max(m1, load(j + L));
  }
  m0 = max(m0, m1);
  above = k32 ? _mm512_cmpgt_epu32_mask(m0, _mm512_set1_epi32(static_cast<int>(bits))) != 0
              : _mm512_cmpgt_epu16_mask(m0, _mm512_set1_epi16(static_cast<short>(bits))) != 0;
#elif defined(CPU_CAPABILITY_AVX2)
  constexpr int64_t L = 32 / sizeof(scalar_t);
  const __m256i abs = k32 ? _mm256_set1_epi32(0x7fffffff) : _mm256_set1_epi16(0x7fff);
  auto max = [](__m256i a, __m256i b) {
    return k32 ? _mm256_max_epu32(a, b) : _mm256_max_epu16(a, b);
  };
  auto load = [&](int64_t at) {
    return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + at)), abs);
  };
  __m256i m0 = _mm256_setzero_si256(), m1 = m0;
  for (; j + 2 * L <= n; j += 2 * L) {
    m0 = max(m0, load(j));
    m1 = max(m1, load(j + L));
  }
  // (no unsigned comparison in AVX2: a lane is above t where max(lane, t) differs from t)
  const __m256i t = k32 ? _mm256_set1_epi32(static_cast<int>(bits))
                        : _mm256_set1_epi16(static_cast<short>(bits));
  const __m256i mt = max(max(m0, m1), t);
  above = _mm256_movemask_epi8(k32 ? _mm256_cmpeq_epi32(mt, t) : _mm256_cmpeq_epi16(mt, t)) != -1;
#endif
  using U = std::conditional_t<k32, uint32_t, uint16_t>;
  constexpr U kAbs = k32 ? U(0x7fffffffu) : U(0x7fffu);
  for (; j < n && !above; ++j) above = (c10::bit_cast<U>(p[j]) & kAbs) > bits;
  return above;
}

// Bit i set: lane i of a is a tail lane: |a| > limit, or NaN. A NaN argument takes the double
// maths too, so that its result's NaN bits (sign, payload) come from one copy of the maths wherever
// the lane stands: the copies of f inlined into the loop's blocks are compiled apart, and one
// multiplied its NaN operands in the other order (GEGLU's bf16 forward of -NaN gave +NaN in a row
// of 256 and -NaN alone, tests/test_maths.py::test_gelu_lowp_every_input).
inline unsigned tail_lanes(const at::vec::Vectorized<float>& a, float limit) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_cmp_ps_mask(_mm512_abs_ps(a), _mm512_set1_ps(limit), _CMP_NLE_UQ);
#elif defined(CPU_CAPABILITY_AVX2)
  const __m256 abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
  const __m256 above = _mm256_cmp_ps(abs, _mm256_set1_ps(limit), _CMP_NLE_UQ);
  return static_cast<unsigned>(_mm256_movemask_ps(above));
#else
  constexpr int W = at::vec::Vectorized<float>::size();
  float v[W];
  a.store(v);
  unsigned bits = 0;
  for (int i = 0; i < W; ++i) bits |= (std::fabs(v[i]) <= limit ? 0u : 1u) << i;
  return bits;
#endif
}

// Lanes of b where bit i of bits is set, of a elsewhere.
inline at::vec::Vectorized<float> select_lanes(unsigned bits, const at::vec::Vectorized<float>& a,
                                               const at::vec::Vectorized<float>& b) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_mask_blend_ps(static_cast<__mmask16>(bits), a, b);
#else
  constexpr int W = at::vec::Vectorized<float>::size();
  float va[W], vb[W];
  a.store(va);
  b.store(vb);
  for (int i = 0; i < W; ++i) {
    if ((bits >> i) & 1u) va[i] = vb[i];
  }
  return at::vec::Vectorized<float>::loadu(va);
#endif
}

#if FFN_CPU_TAIL_GUARD
// Two double vectors (lanes [0, W/2) and [W/2, W)) rounded to one float vector, in the current
// rounding and flushing mode.
inline at::vec::Vectorized<float> ffn_from_double(const at::vec::Vectorized<double>& lo,
                                                  const at::vec::Vectorized<double>& hi) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
#else
  constexpr int W = at::vec::Vectorized<float>::size(), H = at::vec::Vectorized<double>::size();
  double d[W];
  float f[W];
  lo.store(d);
  hi.store(d + H);
  for (int i = 0; i < W; ++i) f[i] = static_cast<float>(d[i]);
  return at::vec::Vectorized<float>::loadu(f);
#endif
}

// The caller's MXCSR, read at a loop call's first tail vector and written back after each one's
// double maths. Read once: stmxcsr waits for every floating-point instruction in flight (its
// exception flags), and reading it per vector took 2/3 of the tail path's time (1M x -1e4, SiLU).
// The flags raised in between are not kept (nothing in PyTorch reads them).
struct TailCsr {
  unsigned value = 0;
  bool read = false;
  unsigned get() {
    if (!read) {
      value = _mm_getcsr();
      read = true;
    }
    return value;
  }
};

// A vector with tail lanes (bits): see above. Out of line, so that the common path stays as it
// was.
template <class F, class V>
__attribute__((noinline, cold)) void tail_call(const F& f, TailCsr& mxcsr,
                                               const V* in, V* out, unsigned bits) {
  using Vf = at::vec::Vectorized<float>;
  using Vd = at::vec::Vectorized<double>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT, W = Vf::size(), H = Vd::size();
  static_assert(W == 2 * H, "a float vector holds twice as many lanes as a double vector");
  const bool all = bits == (1u << W) - 1u;
  // 1. The float maths, the tail lanes' argument at 0 (every formula is defined there).
  if (!all) {
    V safe[NIN];
    for (int k = 0; k < NIN; ++k) safe[k] = in[k];
    constexpr int arg = Tail<F>::kArg;
    safe[arg] = from_float_vec<V>(select_lanes(bits, float_vec(in[arg]), Vf(0.0f)));
    f(safe, out);
  }
  // 2. Every lane in double, widened before DAZ is set (a float subnormal operand is a normal
  //    double and must stay one). The doubles go through memory and the barriers keep the double
  //    arithmetic between the MXCSR writes: its loads after the first, its stores before the
  //    second (a register value could otherwise move across them).
  alignas(64) double xd[NIN][W], yd[NOUT][W];
  for (int k = 0; k < NIN; ++k) {
    const auto [lo, hi] = at::vec::ffn_to_double(float_vec(in[k]));
    lo.store(xd[k]);
    hi.store(xd[k] + H);
  }
  const auto g = Tail<F>::dbl(f);
  const unsigned csr = mxcsr.get();
  _mm_setcsr(csr | 0x8040u);  // FTZ (bit 15) and DAZ (bit 6)
  asm volatile("" ::: "memory");
  for (int h = 0; h < W; h += H) {
    using Vt = at::vec::TailDoubleVec;
    Vt a[NIN], o[NOUT];
    for (int k = 0; k < NIN; ++k) a[k] = Vt(Vd::loadu(xd[k] + h));
    g(a, o);
    for (int k = 0; k < NOUT; ++k) o[k].v.store(yd[k] + h);
  }
  asm volatile("" ::: "memory");
  _mm_setcsr(csr);
  // 3. The tail lanes' results, rounded once to float in the caller's mode again (IEEE: into the
  //    subnormals; or flushed, where the caller set torch.set_flush_denormal). A NaN result of a
  //    NaN argument is that argument, quieted: which NaN operand a NaN result carries depends on
  //    the order in which a compiled copy of the maths took its operands, and the two halves of
  //    the double maths differed there (-NaN gave +NaN in lanes 8-15 of GELU's, -NaN in 0-7).
  alignas(64) float xa[W];
  float_vec(Tail<F>::arg(in)).store(xa);
  bool nan_arg = false;
  for (int i = 0; i < W; ++i) nan_arg |= std::isnan(xa[i]);
  for (int k = 0; k < NOUT; ++k) {
    const Vf y = ffn_from_double(Vd::loadu(yd[k]), Vd::loadu(yd[k] + H));
    out[k] = from_float_vec<V>(all ? y : select_lanes(bits, float_vec(out[k]), y));
    if (!nan_arg) continue;
    alignas(64) float yk[W];
    float_vec(out[k]).store(yk);
    for (int i = 0; i < W; ++i) {
      if (std::isnan(xa[i]) && std::isnan(yk[i]))
        yk[i] = c10::bit_cast<float>(c10::bit_cast<uint32_t>(xa[i]) | 0x00400000u);
    }
    out[k] = from_float_vec<V>(Vf::loadu(yk));
  }
}
#endif

// f(in, out), with the tail guard where F has one (limit: tail_limit(f), hoisted by the loop).
#if FFN_CPU_TAIL_GUARD
template <class F, class V>
inline void call_guarded(const F& f, float limit, TailCsr& mxcsr, const V* in, V* out) {
  if constexpr (kTailGuard<F, V>) {
    const unsigned bits = tail_lanes(float_vec(Tail<F>::arg(in)), limit);
    if (__builtin_expect(bits != 0, 0)) return tail_call(f, mxcsr, in, out, bits);
  }
  f(in, out);
}
#else
struct TailCsr {};
template <class F, class V>
inline void call_guarded(const F& f, float, TailCsr&, const V* in, V* out) {
  f(in, out);
}
#endif

// Elements [begin, end) of a flat kernel: every operand is a dense array with the same layout, so
// element i of each is at index i; it is stored as scalar_t, or in op-math precision where F says
// so (a tensor beta and its gradient beside fp16/bf16; for float and double the two are one type).
// With kOneValue (the kernels that have op-math operands: a tensor beta), an input whose bit is set
// in `one` is a single value, read once and broadcast (a 0-dim beta; its pointer is to that value).
// With kSum other than Store, the op-math outputs (a tensor beta's gradient) are summed into the
// doubles their pointers name (OpmathSum), for the elements of [begin, end).
// The last, partial vector is computed as a whole one with zeros in the lanes past end (every
// formula is defined at 0), rather than by a scalar loop: each element then gets the same maths
// wherever it stands, so a result does not depend on the length of the tensor or on where a slice
// starts (the scalar float maths, ::erfcf and ::expf, round differently from the vector fits: 115
// of the fp16 exact-GELU results did, found in review). Layouts that take the strided path
// (csrc/cpu/activation_cpu.cpp, strided_runs) run this loop on gathered tiles: same bits.
template <typename scalar_t, bool kOneValue, OpmathOut kSum, typename F>
void flat_loop(const F& f, const void* const* in_v, void* const* out_v, int64_t begin,
               int64_t end, unsigned one) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int NIN = F::NIN, NOUT = F::NOUT;
  const scalar_t* in[NIN];
  scalar_t* out[NOUT];
  for (int k = 0; k < NIN; ++k) in[k] = static_cast<const scalar_t*>(in_v[k]);
  for (int k = 0; k < NOUT; ++k) out[k] = static_cast<scalar_t*>(out_v[k]);
  auto in_opmath = [](int k) { return ((F::IN_OPMATH >> k) & 1u) != 0; };
  auto out_opmath = [](int k) { return ((F::OUT_OPMATH >> k) & 1u) != 0; };
  bool is_one[NIN];
  opmath_t value[NIN];
  for (int k = 0; k < NIN; ++k) {
    is_one[k] = kOneValue && ((one >> k) & 1u);
    value[k] = !is_one[k]   ? opmath_t(0)
               : in_opmath(k) ? *static_cast<const opmath_t*>(in_v[k])
                              : static_cast<opmath_t>(*in[k]);
  }
  // With kSum, the op-math outputs are summed (OpmathSum), not stored.
  constexpr bool kSums = kSum != OpmathOut::Store;
  OpmathSum<kSum, opmath_t> sum[NOUT];
  if constexpr (kSums) {
    for (int k = 0; k < NOUT; ++k) sum[k].dst = static_cast<double*>(out_v[k]);
  }
  auto summed = [&](int k) { return kSums && out_opmath(k); };

  const float limit = tail_limit(f);
  TailCsr mxcsr;
  auto fg = [&](const auto* x, auto* o) { call_guarded(f, limit, mxcsr, x, o); };
  // Whether elements [a, b) of the activation's argument may hold a tail lane. A tensor beta's
  // argument is beta x: where beta is one finite value b, x is scanned against 80 / |b| (shrunk by
  // 2^-20, since x b is rounded; at most FLT_MAX, so that an infinite x is always found); a beta
  // per element or per channel, or an infinite or NaN one, leaves every vector guarded.
  bool scan = kTailScan<F, scalar_t>;
  uint32_t scan_bits = tail_scan_bits<scalar_t>(limit);
  if constexpr (Tail<F>::kBetaArg >= 0 && !std::is_same_v<scalar_t, double>) {
    constexpr int kb = Tail<F>::kBetaArg;
    const float b = std::fabs(static_cast<float>(value[kb]));
    if (is_one[kb] && std::isfinite(b)) {
      const float x_limit =
          std::min(kTailExpArg / b * (1.0f - 0x1p-20f), std::numeric_limits<float>::max());
      scan = true;
      scan_bits = tail_scan_bits<scalar_t>(x_limit);
    }
  }
  auto tail_scan = [&](int64_t a, int64_t b) {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      return !scan || span_may_have_tail(in[Tail<F>::kArg] + a, b - a, scan_bits);
    } else {
      return true;
    }
  };

  int64_t i = begin;
  // The main loop over whole steps (a pair of float vectors, or one fp16/bf16 storage vector):
  // body(call) runs the step at i with `call` as the maths. Under the tail guard, in blocks of
  // kTailBlock: one whose argument holds no tail lane (tail_scan) runs f itself.
  auto main_loop = [&](auto guarded, int64_t step, auto&& body) {
    if constexpr (decltype(guarded)::value) {
      while (i + step <= end) {
        const int64_t stop = i + std::min<int64_t>(kTailBlock, (end - i) / step * step);
        if (!tail_scan(i, stop)) {
          for (; i < stop; i += step) body(f);
        } else {
          for (; i < stop; i += step) body(fg);
        }
      }
    } else {
      for (; i + step <= end; i += step) body(f);
    }
  };
  if constexpr (std::is_same_v<scalar_t, opmath_t>) {
    using Vec = at::vec::Vectorized<scalar_t>;
    constexpr int64_t W = Vec::size();
    auto load = [&](int k, int64_t at) {
      return kOneValue && is_one[k] ? Vec(value[k]) : Vec::loadu(in[k] + at);
    };
    // Two independent vectors per iteration: the formulas are long dependency chains (a division,
    // a 10-term Horner fit, exp), and interleaving two of them keeps the FMA pipes busy.
    auto pair = [&](auto&& call) {
      Vec a[NIN], b[NIN], oa[NOUT], ob[NOUT];
      for (int k = 0; k < NIN; ++k) {
        a[k] = load(k, i);
        b[k] = load(k, i + W);
      }
      call(a, oa);
      call(b, ob);
      for (int k = 0; k < NOUT; ++k) {
        if (summed(k)) {
          sum[k].add2(oa[k], ob[k], i);
        } else {
          oa[k].store(out[k] + i);
          ob[k].store(out[k] + i + W);
        }
      }
    };
    main_loop(std::bool_constant<kTailGuard<F, Vec>>{}, 2 * W, pair);
    // Fewer than 2W elements are left: a whole vector (first of the last pair, held back for the
    // sums) and then the last, partial vector, zero lanes beyond end (see above flat_loop).
    const int64_t pair_at = i;
    Vec first[NOUT];
    int n_first = 0;
    if (i + W <= end) {
      Vec a[NIN];
      for (int k = 0; k < NIN; ++k) a[k] = load(k, i);
      fg(a, first);
      for (int k = 0; k < NOUT; ++k) {
        if (!summed(k)) first[k].store(out[k] + i);
      }
      n_first = W;
      i += W;
    }
    const int n = static_cast<int>(end - i);
    Vec o[NOUT];
    for (int k = 0; k < NOUT; ++k) o[k] = Vec(opmath_t(0));
    if (n > 0) {
      Vec a[NIN];
      for (int k = 0; k < NIN; ++k) a[k] = kOneValue && is_one[k] ? Vec(value[k]) : Vec::loadu(in[k] + i, n);
      fg(a, o);
      for (int k = 0; k < NOUT; ++k) {
        if (!summed(k)) o[k].store(out[k] + i, n);
      }
    }
    for (int k = 0; k < NOUT; ++k) {
      if (!summed(k) || n_first + n == 0) continue;
      if (n_first)
        sum[k].add2(first[k], o[k], pair_at, n_first, n);
      else  // a pair of the partial vector and none
        sum[k].add2(o[k], o[k], pair_at, n, 0);
    }
  } else {
    // fp16 / bf16: load one storage vector, widen to two float vectors (computed in as
    // LowpFloatVec), narrow once on store. An op-math operand is two float vectors as it is.
    using Vs = at::vec::Vectorized<scalar_t>;
    using Vf = at::vec::Vectorized<float>;
    using Vl = at::vec::LowpFloatVec;
    constexpr int W = Vs::size(), H = Vf::size();
    static_assert(W == 2 * H, "a 16-bit vector holds twice as many lanes as a float vector");
    // Operand k's elements [at, at + n), n <= W, as two float vectors (zeros past n).
    auto load = [&](int k, int64_t at, int n, Vl& lo, Vl& hi) {
      if (kOneValue && is_one[k]) {
        lo = hi = Vl(Vf(value[k]));
      } else if (in_opmath(k)) {
        const float* p = static_cast<const float*>(in_v[k]) + at;
        lo = Vl(n == W ? Vf::loadu(p) : Vf::loadu(p, std::min(n, H)));
        hi = Vl(n == W ? Vf::loadu(p + H) : Vf::loadu(p + H, std::max(n - H, 0)));
      } else {
        auto [a, b] = at::vec::convert_to_float<scalar_t>(n == W ? Vs::loadu(in[k] + at)
                                                                 : Vs::loadu(in[k] + at, n));
        lo = Vl(a);
        hi = Vl(b);
      }
    };
    auto whole = [&](auto&& call) {
      Vl lo[NIN], hi[NIN], olo[NOUT], ohi[NOUT];
      for (int k = 0; k < NIN; ++k) load(k, i, W, lo[k], hi[k]);
      call(lo, olo);
      call(hi, ohi);
      for (int k = 0; k < NOUT; ++k) {
        if (summed(k)) {
          sum[k].add2(olo[k].v, ohi[k].v, i);
        } else if (out_opmath(k)) {
          float* p = static_cast<float*>(out_v[k]) + i;
          olo[k].v.store(p);
          ohi[k].v.store(p + H);
        } else {
          store_from_float(olo[k].v, ohi[k].v, out[k] + i);
        }
      }
    };
    main_loop(std::bool_constant<kTailGuard<F, Vl>>{}, W, whole);
    if (i < end) {  // the last, partial vector, as above
      const int n = static_cast<int>(end - i);
      Vl lo[NIN], hi[NIN], olo[NOUT], ohi[NOUT];
      for (int k = 0; k < NIN; ++k) load(k, i, n, lo[k], hi[k]);
      fg(lo, olo);
      fg(hi, ohi);
      scalar_t part[W];
      for (int k = 0; k < NOUT; ++k) {
        if (summed(k)) {
          sum[k].add2(olo[k].v, ohi[k].v, i, std::min(n, H), std::max(n - H, 0));
        } else if (out_opmath(k)) {
          float* p = static_cast<float*>(out_v[k]) + i;
          olo[k].v.store(p, std::min(n, H));
          if (n > H) ohi[k].v.store(p + H, n - H);
        } else {
          store_from_float(olo[k].v, ohi[k].v, part);
          std::copy(part, part + n, out[k] + i);
        }
      }
    }
  }
  if constexpr (kSums) {
    for (int k = 0; k < NOUT; ++k) {
      if (out_opmath(k)) sum[k].finish();
    }
  }
}

// Runs kernel `d` on elements [begin, end) of flat operands (see flat_loop; `one`: the inputs that
// hold one value, only ever the op-math operands of a tensor beta's kernels; `sum`: what becomes of
// their op-math output).
template <typename scalar_t>
inline void flat_range_of(const KernelDesc& d, const void* const* in, void* const* out,
                          int64_t begin, int64_t end, unsigned one, OpmathOut sum) {
  using opmath_t = at::opmath_type<scalar_t>;
  with_kernel<opmath_t>(d, [&](auto f) {
    using F = decltype(f);
    if constexpr (F::IN_OPMATH != 0 || F::OUT_OPMATH != 0) {
      TORCH_INTERNAL_ASSERT((one & ~F::IN_OPMATH) == 0, "ffn_ext: a broadcast storage operand");
      if constexpr (F::OUT_OPMATH != 0) {
        using O = OpmathOut;
        if (sum == O::All) return flat_loop<scalar_t, true, O::All>(f, in, out, begin, end, one);
        if (sum == O::PerChannel)
          return flat_loop<scalar_t, true, O::PerChannel>(f, in, out, begin, end, one);
      }
      TORCH_INTERNAL_ASSERT(sum == OpmathOut::Store,
                            "ffn_ext: a sum asked of a kernel without op-math outputs");
      flat_loop<scalar_t, true, OpmathOut::Store>(f, in, out, begin, end, one);
    } else {
      TORCH_INTERNAL_ASSERT(one == 0 && sum == OpmathOut::Store,
                            "ffn_ext: a broadcast operand or a sum sent to the flat CPU loop");
      flat_loop<scalar_t, false, OpmathOut::Store>(f, in, out, begin, end, 0);
    }
  });
}

// Entry point of this instruction set: flat_range_of for the operands' dtype.
inline void flat_range(const KernelDesc& d, c10::ScalarType dtype, const void* const* in,
                       void* const* out, int64_t begin, int64_t end, unsigned one, OpmathOut sum) {
  dispatch_float(dtype, [&](auto tag) {
    flat_range_of<decltype(tag)>(d, in, out, begin, end, one, sum);
  });
}

// Block transposition for the strided path (strided_runs in activation_cpu.cpp): the m x n block
// of es-byte elements at src (element (i, j) at src[i * lds + j], in elements) into dst (element
// (i, j) at dst[j * ldd + i]), which gathers an operand that runs along the outer dimension of a
// tile (a transposed view beside dense ones) into the tile's dense buffer, or scatters it back.
// at::vec's register transposes where it has them: 4-byte elements in blocks of 16 x 16 on AVX-512
// and 8 x 8 on AVX2, 2-byte elements up to 32 x 32 on AVX-512 (m, n <= 32 here). They move bits
// only (loads, stores, shuffles), so any element type of that size, NaN payloads included, goes
// through them. Against the element-by-element loop, on SwiGLU gating's forward with a transposed
// gate beside a dense up (1024 x 2048; 2-core AVX-512 Xeon, 2026-11-27): 4.5 -> 3.4 ms in fp32,
// 2.5 -> 1.4 ms in bf16 (before prefetching, strided_runs).
template <typename T>
inline void transpose_elements(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t m,
                               int64_t n) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) dst[j * ldd + i] = src[i * lds + j];
}
inline void transpose_tile(const void* src, int64_t lds, void* dst, int64_t ldd, int64_t m,
                            int64_t n, int64_t es) {
  switch (es) {
    case 2: {
#if defined(CPU_CAPABILITY_AVX512)
      TORCH_INTERNAL_ASSERT(m <= 32 && n <= 32);
      using B = c10::BFloat16;  // bits only
      return at::vec::transpose_mxn<B>(static_cast<const B*>(src), lds, static_cast<B*>(dst), ldd,
                                       static_cast<int>(m), static_cast<int>(n));
#else
      using U = uint16_t;
      return transpose_elements(static_cast<const U*>(src), lds, static_cast<U*>(dst), ldd, m, n);
#endif
    }
    case 4: {
      const float* s = static_cast<const float*>(src);
      float* d = static_cast<float*>(dst);
#if defined(CPU_CAPABILITY_AVX512)
      return at::vec::transpose_mxn<float>(s, lds, d, ldd, static_cast<int>(m),
                                           static_cast<int>(n));
#else
      int64_t i = 0;
#if defined(CPU_CAPABILITY_AVX2)
      for (; i + 8 <= m; i += 8) {
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
          at::vec::transpose_mxn<float, 8, 8>(s + i * lds + j, lds, d + j * ldd + i, ldd);
        transpose_elements(s + i * lds + j, lds, d + j * ldd + i, ldd, 8, n - j);
      }
#endif
      return transpose_elements(s + i * lds, lds, d + i, ldd, m - i, n);
#endif
    }
    case 8: {
      using U = uint64_t;
      return transpose_elements(static_cast<const U*>(src), lds, static_cast<U*>(dst), ldd, m, n);
    }
    default: TORCH_INTERNAL_ASSERT(false, "ffn_ext: an element of ", es, " bytes");
  }
}

}  // namespace ffn_ext::cpu::FFN_CPU_ISA
