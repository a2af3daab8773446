// The maths of every ffn_ext activation, torch-free, shared by the CPU and CUDA kernels.
//
// Each activation is a small struct templated on its op-math type T (float for fp32/fp16/bf16,
// double for fp64) whose member templates take a value type V: V is T itself on the GPU and in
// the CPU scalar tail, or at::vec::Vectorized<T> in the CPU vector loop. The primitives they call
// (ffn_exp, ffn_erfc, ffn_where, ...) are overloaded here for scalars and, in csrc/cpu, for
// Vectorized (found there by argument-dependent lookup), so one formula serves every path.
//
// Formulas and traps: ../shared/REFERENCE.md. The rules applied everywhere below:
//  * sigmoid never overflows (see sigmoid below); sigma(-z) is computed on its own, not as
//    1 - sigma(z), so that s * (1 - s) does not cancel.
//  * exact GELU uses Phi(x) = erfc(-x / sqrt 2) / 2, which keeps its relative accuracy for x < -5
//    where 1 + erf(x / sqrt 2) cancels.
//  * tanh-GELU uses x * sigma(2u) (= x * (1 + tanh u) / 2), which saturates instead of overflowing.
//  * a product "x * p" whose factor p has underflowed to 0 is taken as 0, so that x = +-inf gives
//    the mathematical limit (GELU(-inf) = 0, SiLU(-inf) = 0) instead of inf * 0 = NaN. NaN inputs
//    still give NaN, because NaN == 0 is false.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

// Always inlined: the vector loop must see the whole formula (GCC otherwise kept sigmoid as a call
// with its vectors passed through memory, ~10% of the AVX-512 SwiGLU loop).
#if defined(__CUDACC__) || defined(__HIPCC__)
#define FFN_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define FFN_HD inline __attribute__((always_inline))
#else
#define FFN_HD inline
#endif

namespace ffn_ext {

// ---- scalar primitives (Vectorized overloads live in csrc/cpu/activation_cpu_impl.h) ----
FFN_HD float ffn_exp(float x) { return ::expf(x); }
FFN_HD double ffn_exp(double x) { return ::exp(x); }
FFN_HD float ffn_erfc(float x) { return ::erfcf(x); }
FFN_HD double ffn_erfc(double x) { return ::erfc(x); }
FFN_HD float ffn_tanh(float x) { return ::tanhf(x); }
FFN_HD double ffn_tanh(double x) { return ::tanh(x); }
// c ? a : b, written as a function so that the vector form can be a blend.
FFN_HD float ffn_where(bool c, float a, float b) { return c ? a : b; }
FFN_HD double ffn_where(bool c, double a, double b) { return c ? a : b; }

// a * b rounded on its own, where a sum of products must round each product as separate ATen
// ops do: nvcc fuses a * b + c into one FMA by default (the CPU build compiles with
// -ffp-contract=off), which keeps the product unrounded, so that a product that overflows beside
// an infinite term gives +-inf where autograd's inf - inf gives NaN.
FFN_HD float ffn_mul_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
FFN_HD double ffn_mul_rounded(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
template <class V>
FFN_HD V ffn_mul_rounded(V a, V b) { return a * b; }  // CPU vectors: never contracted

// The ones below have generic forms in terms of those above (the CPU vector code overrides them
// with cheaper instruction sequences):
// e^x for x <= 0 (or NaN), where no overflow handling is needed;
template <class V>
FFN_HD V ffn_exp_nonpos(V x) { return ffn_exp(x); }
// z >= 0 ? a : b (b for NaN);
template <class V>
FFN_HD V ffn_where_nonneg(V z, V a, V b) { return ffn_where(z >= V(0), a, b); }
// p == 0 ? 0 : v: a product v = x * p whose factor p has underflowed to 0 is 0, even for an
// infinite x (see the rules at the top).
template <class V>
FFN_HD V ffn_unless_zero(V p, V v) { return ffn_where(p == V(0), V(0), v); }
// p == 0 ? a : b.
template <class V>
FFN_HD V ffn_where_zero(V p, V a, V b) { return ffn_where(p == V(0), a, b); }
// x > 0 ? a : b (b for NaN), and x itself where it is NaN, else 0 (ReLU's selections).
template <class V>
FFN_HD V ffn_where_pos(V x, V a, V b) { return ffn_where(x > V(0), a, b); }
template <class V>
FFN_HD V ffn_nan_or_zero(V x) { return ffn_where(x != x, x, V(0)); }
// erfc where only its own relative accuracy matters: GELU's value x Phi(x) (GeluErf::f: the GELU
// forward, and wherever the gating kernels use act(g) alone: GEGLU's forward, the gg_u act(g) term
// of its double backward; its backward takes f with f' from ffn_gelu_erf_f_d1). The GPU's FastFloat
// overrides it with a shorter fit for fp16/bf16 (fast_float.cuh); the CPU's float vectors override
// GELU's whole value instead (ffn_gelu_erf_value below). f' = Phi + x phi cancels near its root
// (x = -0.75, by a factor of ~300) and keeps ffn_erfc.
template <class V>
FFN_HD V ffn_erfc_value(V x) { return ffn_erfc(x); }
// GELU's value x Phi(x) = x erfc(-x / sqrt 2) / 2 (GeluErf::f), inv_sqrt2 = 1 / sqrt 2 in T. The
// CPU's float vectors override it with a form that needs no sign selection (activation_cpu_impl.h).
template <class V, class T>
FFN_HD V ffn_gelu_erf_value(V x, T inv_sqrt2) {
  const V p = V(T(0.5)) * ffn_erfc_value(-x * V(inv_sqrt2));  // Phi(x)
  return ffn_unless_zero(p, x * p);
}
// GELU's value and first derivative together (GeluErf::f_d1, and GeluErf::d1, which drops f):
// f = x Phi(x), d1 = Phi(x) + x phi(x), from one erfc and one exp (inv_sqrt2 = 1 / sqrt 2 and
// inv_sqrt2pi = 1 / sqrt(2 pi) in T). The CPU's float vectors and the GPU's FastFloat override it
// with ffn_gelu_erf_f_d1_erfcx (below), which takes a single base-2 exp for both.
template <class V, class T>
FFN_HD void ffn_gelu_erf_f_d1(V x, T inv_sqrt2, T inv_sqrt2pi, V& f, V& d1) {
  const V p = V(T(0.5)) * ffn_erfc(-x * V(inv_sqrt2));  // Phi(x)
  const V q = V(inv_sqrt2pi) * ffn_exp_nonpos(V(T(-0.5)) * x * x);  // phi(x)
  f = ffn_unless_zero(p, x * p);
  d1 = p + ffn_unless_zero(q, x * q);
}

// GELU's value and first derivative from one exp, in base 2, instead of the erfc form's two (the
// CPU's float vectors and the GPU's fp16/bf16 FastFloat overload ffn_gelu_erf_f_d1 with it, so one
// formula serves both and the CPU tests run its every line; float64 and the GPU's float32 keep the
// erfc form above):
//     E = e^(-x^2/2) = 2^(-c x^2),  u = erfcx(|x| / sqrt 2) = t R(t),  t = 1 / (1 + kappa |x|),
//     Phi(-|x|) = u E / 2,  f'(-|x|) = Phi(-|x|) - |x| phi(x) = E (u / 2 - |x| / sqrt(2 pi)),
//     f' = x < 0 ? f'(-|x|) : 1 - f'(-|x|),   f = max(0, x) - |x| Phi(-|x|),
// with c = log2(e) / 2 and R, kappa below. f' cancels near its root x = -0.75 (its two
// terms agree to ~1/300); the cancellation is all inside u / 2 - |x| / sqrt(2 pi), where only R and
// the rounding of t enter, and E multiplies the result, so E's error stays relative to f' itself.
// Accuracy and speed on the CPU: csrc/cpu/activation_cpu_impl.h, beside its primitives.
// The primitives, found by argument-dependent lookup for V: ffn_fma(a, b, c) = a b + c and
// ffn_fnma(a, b, c) = c - a b, each rounded once; ffn_horner(t, c); ffn_exp2_half_nonpos(y) =
// 2^y / 2 for y <= 0 (or NaN), rounded once into the subnormals; ffn_max_keep(lo, y) = max(lo, y),
// but y itself where y is NaN or both are zeros (so -0 and NaN pass through max(0, x)).
//
// erfcx(|x| / sqrt 2) = t R(t), t = 1 / (1 + kappa |x|): R a minimax fit in relative error over
// |x| in [0, 14] (degree 9, 9.0e-9), constrained to R(1) = 1 exactly in float Horner, so that
// f'(0) = 1/2 and f(x) = x / 2 for tiny x; coefficients highest degree first.
// tools/fit_gelu_erf.py derives it and checks the errors quoted here and in the CPU header.
inline constexpr float kGeluErfcxKappa = 0.28f;
inline constexpr float kGeluErfcxFit[] = {
    -2.660798840e-02f, 1.869685352e-01f,  -4.912518263e-01f, 5.608843565e-01f, -2.984832227e-01f,
    2.832254171e-01f,  1.252294630e-01f,  2.140030712e-01f,  2.225886881e-01f, 2.234435081e-01f};
// -c = -log2(e) / 2: e^(-x^2/2) = 2^(-c x^2).
inline constexpr float kMinusHalfLog2e = -0.72134752044448170368f;

// A constexpr float array's elements as an aggregate of their own: device code may not index a
// host array, but may copy its elements in a constant expression (into a struct: arrays do not
// copy). The host keeps the array itself, over which GCC unrolls a Horner loop into constant
// operands (over a struct's member it kept a loop of loads: 10 iterations a vector of GELU).
template <std::size_t N>
struct FloatConsts {
  float c[N];
};
template <std::size_t N, std::size_t... K>
FFN_HD constexpr FloatConsts<N> float_consts(const float (&a)[N], std::index_sequence<K...>) {
  return {{a[K]...}};
}
template <std::size_t N>
FFN_HD constexpr FloatConsts<N> float_consts(const float (&a)[N]) {
  return float_consts(a, std::make_index_sequence<N>{});
}

template <class V>
FFN_HD void ffn_gelu_erf_f_d1_erfcx(V x, V& f, V& d1) {
#ifdef __CUDA_ARCH__
  constexpr auto r = float_consts(kGeluErfcxFit);
  const auto& fit = r.c;
#else
  const auto& fit = kGeluErfcxFit;
#endif
  const V ax = ffn_abs(x);
  const V t = V(1.0f) / ffn_fma(ax, V(kGeluErfcxKappa), V(1.0f));
  const V u = t * ffn_horner(t, fit);  // erfcx(|x| / sqrt 2)
  const V half_e = ffn_exp2_half_nonpos((x * V(kMinusHalfLog2e)) * x);  // E / 2
  // f'(-|x|): 0 where E has underflowed (x = +-inf: u = 0 and |x| = inf would give NaN)
  const V dn = ffn_unless_zero(half_e, ffn_fma(ax, V(-0.79788456080286535588f), u) * half_e);
  d1 = ffn_where_nonneg(x, V(1.0f) - dn, dn);
  const V h = u * half_e;  // Phi(-|x|)
  const V relu = ffn_max_keep(V(0.0f), x);
  f = ffn_where_zero(h, relu, ffn_fnma(ax, h, relu));
}

// Whether a > c (c a constant), in any lane of a vector: a branch that skips work no lane needs.
FFN_HD bool ffn_any_above(float a, float c) { return a > c; }
FFN_HD bool ffn_any_above(double a, double c) { return a > c; }

FFN_HD float ffn_abs(float x) { return ::fabsf(x); }
FFN_HD double ffn_abs(double x) { return ::fabs(x); }
// fn(x) evaluated in double precision and rounded back to x's type (fn is generic in its argument).
template <class Fn>
FFN_HD float ffn_in_double(float x, Fn fn) { return static_cast<float>(fn(static_cast<double>(x))); }
template <class Fn>
FFN_HD double ffn_in_double(double x, Fn fn) { return fn(x); }

// sigma(z) from e = exp(-|z|), which never overflows: 1 / (1 + e) for z >= 0, e / (1 + e) below.
// The plain 1 / (1 + exp(-z)) overflows exp for z < -88.7 in fp32 and returns 0 where sigma is a
// subnormal that, multiplied by a large factor (tanh-GELU's x u'), is a normal float again
// (seen: tanh-GELU'(-10.2) = -2.1e-38 came out 0). NaN stays NaN (NaN >= 0 is false).
template <class V>
FFN_HD V sigmoid(V z) {
  const V e = ffn_exp_nonpos(-ffn_abs(z));
  const V r = V(1) / (V(1) + e);
  return ffn_where_nonneg(z, r, e * r);
}

// sigma(z) and sigma(-z) from the same exp and division (exp is the cost on the CPU).
template <class V>
FFN_HD void sigmoid_pair(V z, V& s, V& sn) {
  const V e = ffn_exp_nonpos(-ffn_abs(z));
  const V r = V(1) / (V(1) + e);
  const V er = e * r;
  s = ffn_where_nonneg(z, r, er);
  sn = ffn_where_nonneg(z, er, r);
}

// sigma(-z) - sigma(z) = -tanh(z / 2). The difference of sigmoid_pair's two values cancels for
// small |z| (relative error eps / |z|: 1.3e-5 at z = 1e-3 in float, 160 ulp); where it is a factor
// of a result (GLU's f'', Swish's d2f/dbeta2) tanh keeps it to an ulp. Where it is added to a
// number of order 1 (Swish's q, tanh-GELU's f'') the plain difference is as good and cheaper.
template <class V>
FFN_HD V sigmoid_diff(V z) {
  return -ffn_tanh(V(0.5f) * z);
}

// ---- the activations: value f, first derivative d1, second derivative d2, and bwd = g * f' ----

// GELU, exact: f = x * Phi(x); f' = Phi + x * phi; f'' = phi * (2 - x^2).
template <class T>
struct GeluErf {
  static constexpr T kInvSqrt2 = T(0.70710678118654752440);
  static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  template <class V>
  FFN_HD V pdf(V x) const { return V(kInvSqrt2Pi) * ffn_exp_nonpos(V(T(-0.5)) * x * x); }
  template <class V>
  FFN_HD V f(V x) const { return ffn_gelu_erf_value(x, kInvSqrt2); }
  template <class V>
  FFN_HD V d1(V x) const {  // (f_d1's f is dead code here, dropped by the compiler)
    V f, d;
    ffn_gelu_erf_f_d1(x, kInvSqrt2, kInvSqrt2Pi, f, d);
    return d;
  }
  // f and d1 together: f takes d1's Phi (the same values as f for float64, on the GPU's float32
  // and in the CPU's fp32 vectors; within the fits' errors of f's where f has a form of its own:
  // fp16/bf16 on the GPU and on the CPU). One exp, one division and a fit fewer an element in
  // GEGLU's backward.
  template <class V>
  FFN_HD void f_d1(V x, V& f, V& d1) const { ffn_gelu_erf_f_d1(x, kInvSqrt2, kInvSqrt2Pi, f, d1); }
  template <class V>
  FFN_HD V d2(V x) const {
    const V q = pdf(x);
    return ffn_unless_zero(q, q * (V(T(2)) - x * x));
  }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return g * d1(x); }
};

// GELU, tanh form: u = k (x + c x^3), t = tanh u, s = sigma(2u) = (1 + t) / 2, 1 - t^2 = 4 s s-.
//   f = x s;  f' = s + 2 x s s- u';  f'' = 4 s s- (u' + x/2 (u'' - 2 t u'^2)),
//   u' = k (1 + 3 c x^2), u'' = 6 k c x.
template <class T>
struct GeluTanh {
  static constexpr T kK = T(0.79788456080286535588);  // sqrt(2 / pi)
  static constexpr T kC = T(0.044715);
  template <class V>
  FFN_HD V two_u(V x) const { return V(T(2) * kK) * (x + V(kC) * x * x * x); }
  template <class V>
  FFN_HD V f(V x) const {
    const V s = sigmoid(two_u(x));
    return ffn_unless_zero(s, x * s);
  }
  template <class V>
  FFN_HD V d1(V x) const {
    V s, sn;
    sigmoid_pair(two_u(x), s, sn);
    const V ssn = s * sn;
    const V up = V(kK) * (V(T(1)) + V(T(3) * kC) * x * x);
    return s + ffn_unless_zero(ssn, V(T(2)) * (x * ssn) * up);
  }
  template <class V>
  FFN_HD void f_d1(V x, V& f, V& d1) const {  // f and d1 from one sigmoid_pair (as Silu's)
    V s, sn;
    sigmoid_pair(two_u(x), s, sn);
    f = ffn_unless_zero(s, x * s);
    const V ssn = s * sn;
    const V up = V(kK) * (V(T(1)) + V(T(3) * kC) * x * x);
    d1 = s + ffn_unless_zero(ssn, V(T(2)) * (x * ssn) * up);
  }
  // f'' in float is evaluated in double: its inner factor cancels by up to ~2.5x near |x| = 2, and
  // sigma's argument carries its rounding error times |2u| ~ 4 into s s-, which together reached
  // 8-9 ulp there (1.09x the fp32 error bound of REFERENCE.md, found by test_each_cpu_loop on
  // 2026-11-26). In double it is correctly rounded to float. Only f'' (double backward, not a hot
  // path) pays for it; f and f' stay within 0.6x of the bound in float.
  template <class V>
  FFN_HD V d2(V x) const {
    if constexpr (std::is_same_v<T, float>) {
      return ffn_in_double(x, [](auto xd) { return GeluTanh<double>{}.d2(xd); });
    } else {
      return d2_same(x);
    }
  }
  template <class V>
  FFN_HD V d2_same(V x) const {
    V s, sn;
    sigmoid_pair(two_u(x), s, sn);
    const V ssn = s * sn;
    const V up = V(kK) * (V(T(1)) + V(T(3) * kC) * x * x);
    const V upp = V(T(6) * kK * kC) * x;
    const V t = s - sn;
    const V inner = up + V(T(0.5)) * x * (upp - V(T(2)) * t * up * up);
    return ffn_unless_zero(ssn, V(T(4)) * ssn * inner);
  }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return g * d1(x); }
};

// Swish-beta: s = sigma(beta x), s- = sigma(-beta x).
//   f = x s;  df/dx = s + beta x s s-;  df/dbeta = x^2 s s-;
//   q = s s- (2 + beta x (s- - s));  d2f/dx2 = beta q;  d2f/dx dbeta = x q;
//   d2f/dbeta2 = x^3 s s- (s- - s).  SiLU is beta = 1.
// beta x is taken as 0 when beta == 0, so that x = +-inf with beta = 0 gives f' = 1/2, not NaN.
//
// Every term but s is a product with e = exp(-|beta x|): the smaller of s and s- is e / (1 + e),
// s s- is e / (1 + e)^2. In float, e leaves the normal range at |beta x| = 87.3 (fewer significant
// bits the further it goes, 0 beyond 103.9), and a factor x, x^2, x^3 or beta can carry the
// product back into it. With beta = 1 that factor is at most ~100: SiLU's results there are
// below 7e-38 (6 times float's smallest normal number), within 5.5e-6 relative (PyTorch's are
// 0), and SiLU (beta = 1 as a fixed number: the hot loops) keeps forming s and s- from e
// (parts_of, and f_of, dx, q below). Any other beta leaves no bound: at
// beta = 1e-10 swish(-1e12) is -3.7e-32, which came from an e with 5 significant bits, and
// d/dbeta at -1.04e12 came out 0 instead of 7.4e-22 (at beta = 1 as a tensor, the x^2 of d/dbeta
// gave 5e-4 relative error at x = -96). So other betas form everything from
// h = exp(-|beta x| / 2), which stays normal twice as far (|beta x| < 174.7 in float), and
// m = h / (1 + h^2) = sqrt(s s-) (Scaled, and the *_scaled terms): x s = ((x h) h) r for
// beta x < 0, s s- = m m, x^2 s s- = (x m)^2, each factor normal wherever the product is. Beyond
// |beta x| = 174.7 only the beta-derivatives (x^2 and x^3 times e: a tiny beta and a huge x) can
// still be normal; they take m from exp(-|beta x| / 4) (x_root_ssn). A randomized comparison with
// the float64 formulas (400 000 float inputs, |beta x| from 80 to 360, |x| from 1e-5 to 3e38)
// found every normal result within 1e-6 (3 + |beta x|), the conditioning of beta x's rounding.
// float64 tensors: the same forms, normal to |beta x| = 1416 (2832 for the beta-derivatives).
template <class T>
struct SwishMath {
  // beta x, and 0 for beta = 0 whatever x is (0 * inf would be NaN; swish is then x / 2), but NaN
  // for a NaN x (an unconditional 0 had turned NaN into finite gradients).
  template <class V>
  FFN_HD static V bx(V x, V beta) {
    return ffn_where_zero(beta, ffn_nan_or_zero(x), beta * x);
  }

  // ---- SiLU: s and s- from e = exp(-|x|) ----
  template <class V>
  struct Parts {
    V bx, s, sn, ssn;
  };
  template <class V>
  FFN_HD static Parts<V> parts_of(V bx_) {
    Parts<V> p;
    p.bx = bx_;
    sigmoid_pair(p.bx, p.s, p.sn);
    p.ssn = p.s * p.sn;
    return p;
  }
  template <class V>
  FFN_HD static V f_of(V x, V bx_) {
    const V s = sigmoid(bx_);
    return ffn_unless_zero(s, x * s);
  }
  template <class V>
  FFN_HD static V dx(const Parts<V>& p) {
    return p.s + ffn_unless_zero(p.ssn, p.bx * p.ssn);
  }
  template <class V>
  FFN_HD static V q(const Parts<V>& p) {
    return ffn_unless_zero(p.ssn, p.ssn * (V(T(2)) + p.bx * (p.sn - p.s)));
  }

  // ---- any other beta: from h = exp(-|beta x| / 2) and m = sqrt(s s-) ----
  // (m, or x_root_ssn's q, is 0 only where s s- underflows for good, beta x = +-inf included: the
  // guards below then give the limit 0 where a factor x is infinite, as the SiLU forms do.)
  template <class V>
  struct Scaled {
    V bx, s, sn, m, r;  // r = 1 / (1 + h^2), the larger of s and s-
  };
  template <class V>
  FFN_HD static Scaled<V> scaled(V x, V beta) {
    return scaled_of(bx(x, beta));
  }
  // h = exp(-|beta x| / 2) and r = 1 / (1 + h^2), the larger of s and s-.
  template <class V>
  FFN_HD static void h_and_r(V bx_, V& h, V& r) {
    h = ffn_exp_nonpos(V(T(-0.5)) * ffn_abs(bx_));
    r = V(T(1)) / (V(T(1)) + h * h);
  }
  template <class V>
  FFN_HD static Scaled<V> scaled_of(V bx_) {
    Scaled<V> p;
    p.bx = bx_;
    V h;
    h_and_r(bx_, h, p.r);
    p.m = h * p.r;
    const V hm = h * p.m;  // e / (1 + e)
    p.s = ffn_where_nonneg(bx_, p.r, hm);
    p.sn = ffn_where_nonneg(bx_, hm, p.r);
    return p;
  }
  // x s = x r for beta x >= 0 and ((x h) h) r below: one product with r for both (x s and
  // (x h) m took 14% longer in the CPU's fp32 loop).
  template <class V>
  FFN_HD static V f_of_h(V x, V bx_) {
    V h, r;
    h_and_r(bx_, h, r);
    return ffn_where_nonneg(bx_, x, ffn_unless_zero(h, (x * h) * h)) * r;
  }
  template <class V>
  FFN_HD static V dx_scaled(const Scaled<V>& p) {
    return p.s + ffn_unless_zero(p.m, (p.bx * p.m) * p.m);
  }
  // x m for the beta-derivatives (x^2 s s- = (x m)^2). m = h r keeps every bit while h is normal,
  // |beta x| < kFar (a binade short of 174.7 in float): every element of ordinary data. The x^2 and
  // x^3 of these derivatives keep a normal value beyond it where beta is tiny and x huge (to
  // |beta x| = 353 in float); such lanes form x m as ((x q) q) r from q = exp(-|beta x| / 4),
  // normal to 349. That exp is computed only where a vector (or thread) holds such a lane: always
  // computing it had cost 26% of the CPU's fp32 swish_backward.Tensor with beta's gradient
  // (1M elements, 2 threads, 2026-11-27). Each lane's form depends on its own |beta x| alone, so
  // its bits do not depend on its neighbours.
  static constexpr T kFar = std::is_same_v<T, float> ? T(173) : T(1415);
  template <class V>
  FFN_HD static V x_root_ssn(V x, const Scaled<V>& p) {
    const V xm = x * p.m;
    const V a = ffn_abs(p.bx);
    if (!ffn_any_above(a, kFar)) return xm;
    const V q = ffn_exp_nonpos(V(T(-0.25)) * a);
    return ffn_where(a > V(kFar), ffn_unless_zero(q, ((x * q) * q) * p.r), xm);
  }
  template <class V>
  FFN_HD static V dbeta_scaled(V x, const Scaled<V>& p) {
    const V t = x_root_ssn(x, p);
    return t * t;
  }
  // k q for k = beta (d2f/dx2) or x (d2f/dx dbeta): q's two factors m each take one of k and q's
  // bracket, so that neither product leaves the normal range before the result does.
  template <class V>
  FFN_HD static V kq_scaled(V k, const Scaled<V>& p) {
    return ffn_unless_zero(p.m, (k * p.m) * (p.m * (V(T(2)) + p.bx * (p.sn - p.s))));
  }
  // (sn - s = 0 exactly where beta x = 0: the term is 0 there even for an infinite x.)
  template <class V>
  FFN_HD static V dbeta2_scaled(V x, const Scaled<V>& p) {
    const V d = sigmoid_diff(p.bx);
    const V t = x_root_ssn(x, p);
    return ffn_unless_zero(t, ffn_unless_zero(d, ((t * x) * t) * d));
  }
};

// SiLU, Swish with beta = 1: SiLU's forms (see SwishMath), which also skip forming beta x (a
// multiply and the beta == 0 guard, ~8% of the bf16 SwiGLU loop on the CPU). A type of its own, not
// a flag of Swish: the flag compiled Swish's h forms into every SiLU kernel too, behind a test in
// each element's code (SwiGLU's bf16 backward row kernel: 5632 sm_90 instructions; 2856 as Silu
// alone, 1928 with f_d1 below), and into the CPU loop as a load and a branch per vector.
template <class T>
struct Silu {
  template <class V>
  FFN_HD V f(V x) const { return SwishMath<T>::f_of(x, x); }
  template <class V>
  FFN_HD V d1(V x) const { return SwishMath<T>::dx(SwishMath<T>::parts_of(x)); }
  // f and f' from one exp and one division (the gating backward needs both; see kSharesFD1). The
  // same values as f and d1: sigmoid_pair's s is sigmoid's, operation for operation.
  template <class V>
  FFN_HD void f_d1(V x, V& f, V& d1) const {
    const auto p = SwishMath<T>::parts_of(x);
    f = ffn_unless_zero(p.s, x * p.s);
    d1 = SwishMath<T>::dx(p);
  }
  template <class V>
  FFN_HD V d2(V x) const { return SwishMath<T>::q(SwishMath<T>::parts_of(x)); }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return g * d1(x); }
};

// Swish with a fixed beta (a number) other than 1 (kernels.h's with_kernel gives beta = 1 to Silu).
template <class T>
struct Swish {
  T beta;
  template <class V>
  FFN_HD V f(V x) const { return SwishMath<T>::f_of_h(x, SwishMath<T>::bx(x, V(beta))); }
  template <class V>
  FFN_HD V d1(V x) const { return SwishMath<T>::dx_scaled(SwishMath<T>::scaled(x, V(beta))); }
  template <class V>
  FFN_HD V d2(V x) const {
    return SwishMath<T>::kq_scaled(V(beta), SwishMath<T>::scaled(x, V(beta)));
  }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return g * d1(x); }
};

// Sigmoid (the GLU gate): f = s, f' = s s-, f'' = s s- (s- - s), with s- = sigma(-x) computed on
// its own (1 - s would cancel for x >> 0) and s- - s as sigmoid_diff (it would cancel for x ~ 0).
template <class T>
struct Sigmoid {
  template <class V>
  FFN_HD V f(V x) const { return sigmoid(x); }
  template <class V>
  FFN_HD V d1(V x) const {
    V s, sn;
    sigmoid_pair(x, s, sn);
    return s * sn;
  }
  template <class V>
  FFN_HD void f_d1(V x, V& f, V& d1) const {  // f and d1 from one sigmoid_pair (as Silu's)
    V sn;
    sigmoid_pair(x, f, sn);
    d1 = f * sn;
  }
  template <class V>
  FFN_HD V d2(V x) const {
    V s, sn;
    sigmoid_pair(x, s, sn);
    return (s * sn) * sigmoid_diff(x);
  }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return g * d1(x); }
};

// Identity (the bilinear gate): f = x, f' = 1, f'' = 0 (as autograd differentiates g * u).
template <class T>
struct Identity {
  template <class V>
  FFN_HD V f(V x) const { return x; }
  template <class V>
  FFN_HD V d1(V) const { return V(T(1)); }
  template <class V>
  FFN_HD V d2(V) const { return V(T(0)); }
  template <class V>
  FFN_HD V bwd(V g, V) const { return g; }
};

// ReLU: f = max(x, 0), f' = 1 if x > 0 else 0 (PyTorch's choice at 0), f'' = 0.
// NaN propagates through f and through the backward (PyTorch's threshold_backward passes the
// gradient through at NaN instead; REFERENCE.md asks for NaN in, NaN out). The backward selects
// rather than multiplies, so that an infinite gradient at x <= 0 gives 0, not inf * 0.
template <class T>
struct Relu {
  template <class V>
  FFN_HD V f(V x) const { return ffn_where_pos(x, x, ffn_nan_or_zero(x)); }
  template <class V>
  FFN_HD V d1(V x) const { return ffn_where_pos(x, V(T(1)), ffn_nan_or_zero(x)); }
  template <class V>
  FFN_HD V d2(V x) const { return ffn_nan_or_zero(x); }
  template <class V>
  FFN_HD V bwd(V g, V x) const { return ffn_where_pos(x, g, ffn_nan_or_zero(x)); }
};

}  // namespace ffn_ext
