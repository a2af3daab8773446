// The element-wise kernels of the activation ops, as functors over op-math values, and the one list
// that maps a KernelDesc (built by the op layer) to a functor type. Torch-free: the CPU and CUDA
// engines instantiate the same functors, so the two devices cannot disagree about which formula an
// op runs.
//
// A functor declares its operands: NIN inputs and NOUT outputs. Operand i is stored in the tensor's
// own dtype ("storage", scalar_t) unless bit i of IN_OPMATH / OUT_OPMATH is set, in which case it is
// stored in the op-math type (float or double): that is how a learnable beta (kept in op-math, see
// activation_ops.h) and its per-element gradient travel beside fp16/bf16 activations.
// operator() takes the loaded op-math values and writes the results; V is a scalar or a
// Vectorized (CPU vector loop, used only when every operand is a storage operand).
#pragma once

#include <cstdint>

#include "ffn_ext/activations.h"

namespace ffn_ext {

enum class Activation : int { GeluErf = 0, GeluTanh = 1, Swish = 2, Relu = 3, Sigmoid = 4, Identity = 5 };
// Fwd: y = f(x).  Bwd: dx = g f'(x).  Bwd2: the x-gradient of Bwd, gg g f''(x).
enum class Mode : int { Fwd = 0, Bwd = 1, Bwd2 = 2 };
// Learnable-beta swish (beta a tensor, broadcast over x):
//   TFwd:      (x, beta) -> y
//   TBwd:      (g, x, beta) -> dx                         TBwdBeta: ... -> dx, dbeta per element
//   TBwd2:     (ggx, ggb, g, x, beta) -> d_g, d_x          TBwd2Beta: ... -> d_g, d_x, d_beta per element
enum class SwishT : int { None = 0, TFwd, TBwd, TBwdBeta, TBwd2, TBwd2Beta };
// Gating y = act(g) * u (GLU family):
//   GFwd:  (g, u) -> y
//   GBwd:  (dy, g, u) -> dg = dy u act'(g), du = dy act(g)
//   GBwd2: (gg_g, gg_u, dy, g, u) -> the gradients of (dy, g, u) given those (gg_g, gg_u) of
//          (dg, du): d_dy = gg_g u act' + gg_u act,  d_g = dy (gg_g u act'' + gg_u act'),
//          d_u = gg_g dy act'.
enum class Gate : int { None = 0, GFwd, GBwd, GBwd2 };

struct KernelDesc {
  Activation act = Activation::GeluErf;
  Mode mode = Mode::Fwd;
  SwishT swish_t = SwishT::None;  // when not None, act/mode are ignored
  Gate gate = Gate::None;         // when not None, mode is ignored (act is the gate's activation)
  double beta = 1.0;              // fixed beta of Activation::Swish; converted to op-math once
};

// What an engine's loop does with a kernel's op-math output (a tensor beta's gradient, always the
// last output): Store it per element, or sum it in double (All adds each pair of vectors in op-math
// precision first: OpmathSum, csrc/cpu/activation_cpu_impl.h) into the one value its pointer names
// (All: a 0-dim or one-element beta) or into element j of the array it names, j the element's
// index along the last dimension (PerChannel: a beta of shape [d]). Only the CPU loop sums (see
// ActivationOps::beta_gradient); the CUDA engine stores.
enum class OpmathOut : int { Store = 0, All = 1, PerChannel = 2 };

template <class A>
struct FwdK {
  static constexpr int NIN = 1, NOUT = 1;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const { out[0] = a.f(in[0]); }  // in: x
};

template <class A>
struct BwdK {
  static constexpr int NIN = 2, NOUT = 1;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const { out[0] = a.bwd(in[0], in[1]); }  // g, x
};

template <class A>
struct Bwd2K {
  static constexpr int NIN = 3, NOUT = 1;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {  // gg, g, x
    out[0] = in[0] * in[1] * a.d2(in[2]);
  }
};

// A tensor beta takes the forms of "any other beta" (SwishMath::Scaled), whatever its value.
template <class T>
struct SwishTFwdK {
  static constexpr int NIN = 2, NOUT = 1;
  static constexpr unsigned IN_OPMATH = 0b10, OUT_OPMATH = 0;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {  // x, beta
    out[0] = SwishMath<T>::f_of_h(in[0], SwishMath<T>::bx(in[0], in[1]));
  }
};

template <class T, bool WITH_BETA>
struct SwishTBwdK {
  static constexpr int NIN = 3, NOUT = WITH_BETA ? 2 : 1;
  static constexpr unsigned IN_OPMATH = 0b100, OUT_OPMATH = WITH_BETA ? 0b10 : 0;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {  // g, x, beta -> dx [, dbeta]
    const auto p = SwishMath<T>::scaled(in[1], in[2]);
    out[0] = in[0] * SwishMath<T>::dx_scaled(p);
    if constexpr (WITH_BETA) out[1] = in[0] * SwishMath<T>::dbeta_scaled(in[1], p);
  }
};

template <class T, bool WITH_BETA>
struct SwishTBwd2K {
  static constexpr int NIN = 5, NOUT = WITH_BETA ? 3 : 2;
  static constexpr unsigned IN_OPMATH = 0b10010, OUT_OPMATH = WITH_BETA ? 0b100 : 0;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {
    // ggx, ggb (broadcast), g, x, beta -> d_g, d_x [, d_beta]
    const V ggx = in[0], ggb = in[1], g = in[2], x = in[3], beta = in[4];
    const auto p = SwishMath<T>::scaled(x, beta);
    // Each product of a sum rounded on its own, as on the CPU (GateBwd2K).
    out[0] = ffn_mul_rounded(ggx, SwishMath<T>::dx_scaled(p)) +
             ffn_mul_rounded(ggb, SwishMath<T>::dbeta_scaled(x, p));
    const V xq = SwishMath<T>::kq_scaled(x, p);  // -> 0 as x -> +-inf (inf * 0 would be NaN)
    out[1] = g * (ffn_mul_rounded(ggx, SwishMath<T>::kq_scaled(beta, p)) +
                  ffn_mul_rounded(ggb, xq));
    if constexpr (WITH_BETA)
      out[2] = g * (ffn_mul_rounded(ggx, xq) +
                    ffn_mul_rounded(ggb, SwishMath<T>::dbeta2_scaled(x, p)));
  }
};

template <class A>
struct GateFwdK {
  static constexpr int NIN = 2, NOUT = 1;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const { out[0] = a.f(in[0]) * in[1]; }  // g, u
};

// Activations whose f and f' share their exp and division (a member f_d1 gives both, the same
// values as f and d1 but for exact GELU's f in fp16/bf16: see GeluErf::f_d1): the gating backward,
// which needs both, takes them from it. Computed apart, SiLU's took two exps and two divisions an
// element on the GPU, where nvcc did not merge them (sm_90 SASS of the bf16 kernel: 198 MUFU
// instructions, the forward's 99; 99 with f_d1). GCC did merge them (CPU times the same).
template <class A>
inline constexpr bool kSharesFD1 = false;
template <class T>
inline constexpr bool kSharesFD1<Silu<T>> = true;
template <class T>
inline constexpr bool kSharesFD1<Sigmoid<T>> = true;
template <class T>
inline constexpr bool kSharesFD1<GeluTanh<T>> = true;
template <class T>
inline constexpr bool kSharesFD1<GeluErf<T>> = true;

template <class A>
struct GateBwdK {
  static constexpr int NIN = 3, NOUT = 2;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {  // dy, g, u -> dg, du
    if constexpr (kSharesFD1<A>) {  // bwd(g, x) is g * d1(x) for each of them
      V f, d1;
      a.f_d1(in[1], f, d1);
      out[0] = (in[0] * in[2]) * d1;
      out[1] = in[0] * f;
    } else {
      out[0] = a.bwd(in[0] * in[2], in[1]);
      out[1] = in[0] * a.f(in[1]);
    }
  }
};

// ReLU's and Identity's f'' is 0 wherever it exists: the gating double backward takes autograd's
// graph of relu(g) * u and g * u for them (selections by f', as their backward makes), not products
// with f' or f'' = 0, so that an infinite factor gives 0 where the derivative is 0 (inf * 0 would
// be NaN). (ReLU alone has no double-backward op: relu_backward's derivative in x is 0.)
template <class A>
inline constexpr bool kZeroD2 = false;
template <class T>
inline constexpr bool kZeroD2<Relu<T>> = true;
template <class T>
inline constexpr bool kZeroD2<Identity<T>> = true;

template <class A>
struct GateBwd2K {
  static constexpr int NIN = 5, NOUT = 3;
  static constexpr unsigned IN_OPMATH = 0, OUT_OPMATH = 0;
  A a;
  template <class V>
  FFN_HD void operator()(const V* in, V* out) const {  // gg_g, gg_u, dy, g, u -> d_dy, d_g, d_u
    const V ggg = in[0], ggu = in[1], dy = in[2], g = in[3], u = in[4];
    const V f = a.f(g);
    if constexpr (kZeroD2<A>) {
      // d_g has no f'' term (it is 0 whatever ggg and u are); their NaN still gives NaN, and so
      // does dy's where the selection drops ggu dy. d_dy's two products are rounded apart, as
      // autograd's are: NaN where one overflows beside an infinite other of the opposite sign, on
      // the GPU (whose FMA would keep one unrounded) as on the CPU.
      const V sg = a.bwd(ggg, g);  // ggg f'(g)
      out[0] = ffn_mul_rounded(sg, u) + ffn_mul_rounded(ggu, f);
      out[1] = a.bwd(ggu * dy, g) + ffn_nan_or_zero(ggg) + ffn_nan_or_zero(u) + ffn_nan_or_zero(dy);
      out[2] = sg * dy;
    } else {
      // Each product of a sum rounded on its own, as on the CPU (see the branch above).
      const V d1 = a.d1(g), gu = ggg * u;
      out[0] = ffn_mul_rounded(gu, d1) + ffn_mul_rounded(ggu, f);
      out[1] = dy * (ffn_mul_rounded(gu, a.d2(g)) + ffn_mul_rounded(ggu, d1));
      out[2] = ggg * dy * d1;
    }
  }
};

// Calls fn(functor) with the functor that `d` names, built for op-math type T. This switch is the
// only place that lists the kernels; a device engine calls it once per launch, after its dtype
// dispatch, so that scalar parameters are converted to T once on the host.
template <class T, class Fn>
inline void with_kernel(const KernelDesc& d, Fn&& fn) {
  switch (d.swish_t) {
    case SwishT::TFwd: return fn(SwishTFwdK<T>{});
    case SwishT::TBwd: return fn(SwishTBwdK<T, false>{});
    case SwishT::TBwdBeta: return fn(SwishTBwdK<T, true>{});
    case SwishT::TBwd2: return fn(SwishTBwd2K<T, false>{});
    case SwishT::TBwd2Beta: return fn(SwishTBwd2K<T, true>{});
    case SwishT::None: break;
  }
  auto by_mode = [&](auto act) {
    using A = decltype(act);
    switch (d.gate) {
      case Gate::GFwd: return fn(GateFwdK<A>{act});
      case Gate::GBwd: return fn(GateBwdK<A>{act});
      case Gate::GBwd2: return fn(GateBwd2K<A>{act});
      case Gate::None: break;
    }
    switch (d.mode) {
      case Mode::Fwd: return fn(FwdK<A>{act});
      case Mode::Bwd: return fn(BwdK<A>{act});
      case Mode::Bwd2: return fn(Bwd2K<A>{act});
    }
  };
  switch (d.act) {
    case Activation::GeluErf: return by_mode(GeluErf<T>{});
    case Activation::GeluTanh: return by_mode(GeluTanh<T>{});
    case Activation::Swish:
      if (d.beta == 1.0) return by_mode(Silu<T>{});
      return by_mode(Swish<T>{static_cast<T>(d.beta)});
    case Activation::Relu: return by_mode(Relu<T>{});
    case Activation::Sigmoid: return by_mode(Sigmoid<T>{});
    case Activation::Identity: return by_mode(Identity<T>{});
  }
}

}  // namespace ffn_ext
