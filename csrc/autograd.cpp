// Autograd of the activation and gating ops, first and second order, registered for the Autograd
// dispatch key. It lives in C++ rather than in torch.library.register_autograd because a Python autograd
// kernel runs on every call, with or without gradients: on an H200 (2026-11-26, torch 2.11) that
// cost 15-20 us a call, two to three times the whole of PyTorch's own GELU on a 1 MB tensor.
//
// Every backward calls registered ffn_ext ops through the dispatcher, so torch.compile traces it
// and the maths stays in the kernels. The backward ops have autograd too, which is what makes
// second-order gradients (gradgradcheck, Hessian-vector products) work:
//     y  = f(x)                 dx    = f_backward(g, x)                   = g f'(x)
//     dx = f_backward(g, x)     d(g)  = f_backward(gg, x)
//                               d(x)  = f_double_backward(gg, g, x)        = gg g f''(x)
// Third-order gradients are refused with an error (the double-backward ops' own backward throws):
// without an Autograd kernel PyTorch would treat them as constants and return a silent zero.
// Nothing but the op's inputs is saved, and saved inputs are never written to.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "ffn_ext/op_support.h"

namespace ffn_ext {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Function;
using torch::autograd::variable_list;
using at::Tensor;

using Str = c10::string_view;
using Unary = Tensor(const Tensor&);
using UnaryS = Tensor(const Tensor&, Str);
using UnaryB = Tensor(const Tensor&, double);
using Binary = Tensor(const Tensor&, const Tensor&);
using BinaryS = Tensor(const Tensor&, const Tensor&, Str);
using BinaryB = Tensor(const Tensor&, const Tensor&, double);
using Ternary = Tensor(const Tensor&, const Tensor&, const Tensor&);
using TernaryS = Tensor(const Tensor&, const Tensor&, const Tensor&, Str);
using TernaryB = Tensor(const Tensor&, const Tensor&, const Tensor&, double);
using SwishT = Tensor(const Tensor&, const Tensor&);
using SwishTBwd = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, bool);
using SwishTBwd2 = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                      const Tensor&, const Tensor&, bool);

using Gate = Tensor(const Tensor&, const Tensor&, Str, double);
using GateBwd = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, Str, double);
using GateBwd2 = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                    const Tensor&, const Tensor&, Str, double);
using Packed = Tensor(const Tensor&, Str, double);
using PackedOut = Tensor&(const Tensor&, Str, double, Tensor&);
using PackedBwd = Tensor(const Tensor&, const Tensor&, Str, double);
using PackedBwd2 = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, Str,
                                              double);

[[noreturn]] void third_order(const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(false, "ffn_ext.", op,
                              ": third-order gradients are not implemented (ffn_ext's "
                              "activations are differentiable twice)");
}

// ---- GELU --------------------------------------------------------------------------------------
struct GeluFn : Function<GeluFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, Str approximate) {
    FFN_OP(fwd, "gelu", "", UnaryS);
    ctx->save_for_backward({x});
    ctx->saved_data["approximate"] = std::string(approximate);
    BelowAutograd below;
    return fwd.call(x, approximate);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "gelu_backward", "", BinaryS);
    const std::string a = ctx->saved_data["approximate"].toStringRef();
    return {bwd.call(g[0], ctx->get_saved_variables()[0], a), Tensor()};
  }
};
struct GeluBackwardFn : Function<GeluBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x, Str approximate) {
    FFN_OP(bwd, "gelu_backward", "", BinaryS);
    ctx->save_for_backward({grad, x});
    ctx->saved_data["approximate"] = std::string(approximate);
    BelowAutograd below;
    return bwd.call(grad, x, approximate);
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd, "gelu_backward", "", BinaryS);
    FFN_OP(bwd2, "gelu_double_backward", "", TernaryS);
    const auto s = ctx->get_saved_variables();
    const std::string a = ctx->saved_data["approximate"].toStringRef();
    return {ctx->needs_input_grad(0) ? bwd.call(gg[0], s[1], a) : Tensor(),
            ctx->needs_input_grad(1) ? bwd2.call(gg[0], s[0], s[1], a) : Tensor(), Tensor()};
  }
};

// ---- SiLU --------------------------------------------------------------------------------------
struct SiluFn : Function<SiluFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    FFN_OP(fwd, "silu", "", Unary);
    ctx->save_for_backward({x});
    BelowAutograd below;
    return fwd.call(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "silu_backward", "", Binary);
    return {bwd.call(g[0], ctx->get_saved_variables()[0])};
  }
};
struct SiluBackwardFn : Function<SiluBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x) {
    FFN_OP(bwd, "silu_backward", "", Binary);
    ctx->save_for_backward({grad, x});
    BelowAutograd below;
    return bwd.call(grad, x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd, "silu_backward", "", Binary);
    FFN_OP(bwd2, "silu_double_backward", "", Ternary);
    const auto s = ctx->get_saved_variables();
    return {ctx->needs_input_grad(0) ? bwd.call(gg[0], s[1]) : Tensor(),
            ctx->needs_input_grad(1) ? bwd2.call(gg[0], s[0], s[1]) : Tensor()};
  }
};

// ---- Swish with a fixed beta ---------------------------------------------------------------------
struct SwishFn : Function<SwishFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double beta) {
    FFN_OP(fwd, "swish", "", UnaryB);
    ctx->save_for_backward({x});
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    return fwd.call(x, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "swish_backward", "", BinaryB);
    return {bwd.call(g[0], ctx->get_saved_variables()[0], ctx->saved_data["beta"].toDouble()),
            Tensor()};
  }
};
struct SwishBackwardFn : Function<SwishBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x, double beta) {
    FFN_OP(bwd, "swish_backward", "", BinaryB);
    ctx->save_for_backward({grad, x});
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    return bwd.call(grad, x, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd, "swish_backward", "", BinaryB);
    FFN_OP(bwd2, "swish_double_backward", "", TernaryB);
    const auto s = ctx->get_saved_variables();
    const double beta = ctx->saved_data["beta"].toDouble();
    return {ctx->needs_input_grad(0) ? bwd.call(gg[0], s[1], beta) : Tensor(),
            ctx->needs_input_grad(1) ? bwd2.call(gg[0], s[0], s[1], beta) : Tensor(), Tensor()};
  }
};

// ---- Swish with a tensor beta (learnable) -------------------------------------------------------
struct SwishTFn : Function<SwishTFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& beta) {
    FFN_OP(fwd, "swish", "Tensor", SwishT);
    ctx->save_for_backward({x, beta});
    BelowAutograd below;
    return fwd.call(x, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "swish_backward", "Tensor", SwishTBwd);
    const auto s = ctx->get_saved_variables();
    const bool need_beta = ctx->needs_input_grad(1);
    auto [dx, dbeta] = bwd.call(g[0], s[0], s[1], need_beta);
    return {dx, need_beta ? dbeta : Tensor()};
  }
};
struct SwishTBackwardFn : Function<SwishTBackwardFn> {
  static variable_list forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x,
                               const Tensor& beta, bool beta_requires_grad) {
    FFN_OP(bwd, "swish_backward", "Tensor", SwishTBwd);
    ctx->save_for_backward({grad, x, beta});
    ctx->saved_data["beta_requires_grad"] = beta_requires_grad;
    BelowAutograd below;
    auto [dx, dbeta] = bwd.call(grad, x, beta, beta_requires_grad);
    return {dx, dbeta};
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd2, "swish_double_backward", "Tensor", SwishTBwd2);
    const auto s = ctx->get_saved_variables();
    const Tensor& grad = s[0];
    const Tensor& x = s[1];
    const Tensor& beta = s[2];
    const Tensor ggx = gg[0].defined() ? gg[0] : at::zeros_like(x);
    // grad_beta was not computed (an empty tensor) or not used: it contributes nothing.
    const bool beta_out_used = ctx->saved_data["beta_requires_grad"].toBool() && gg[1].defined();
    const Tensor ggb = beta_out_used ? gg[1] : at::zeros_like(beta);
    const bool need_beta = ctx->needs_input_grad(2);
    auto [d_grad, d_x, d_beta] = bwd2.call(ggx, ggb, grad, x, beta, need_beta);
    return {ctx->needs_input_grad(0) ? d_grad : Tensor(), ctx->needs_input_grad(1) ? d_x : Tensor(),
            need_beta ? d_beta : Tensor(), Tensor()};
  }
};

// ---- ReLU --------------------------------------------------------------------------------------
struct ReluFn : Function<ReluFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    FFN_OP(fwd, "relu", "", Unary);
    ctx->save_for_backward({x});
    BelowAutograd below;
    return fwd.call(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "relu_backward", "", Binary);
    return {bwd.call(g[0], ctx->get_saved_variables()[0])};
  }
};
struct ReluBackwardFn : Function<ReluBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& x) {
    FFN_OP(bwd, "relu_backward", "", Binary);
    ctx->save_for_backward({x});
    BelowAutograd below;
    return bwd.call(grad, x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd, "relu_backward", "", Binary);
    // relu'' = 0: the x-gradient of relu_backward is zero, said by an undefined tensor.
    return {ctx->needs_input_grad(0) ? bwd.call(gg[0], ctx->get_saved_variables()[0]) : Tensor(),
            Tensor()};
  }
};

// ---- Gating, two tensors: y = act(gate) * up ---------------------------------------------------
struct ActAndMulFn : Function<ActAndMulFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& gate, const Tensor& up, Str act,
                        double beta) {
    FFN_OP(fwd, "act_and_mul", "", Gate);
    ctx->save_for_backward({gate, up});
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    return fwd.call(gate, up, act, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "act_and_mul_backward", "", GateBwd);
    const auto s = ctx->get_saved_variables();
    auto [dg, du] = bwd.call(g[0], s[0], s[1], ctx->saved_data["act"].toStringRef(),
                             ctx->saved_data["beta"].toDouble());
    return {dg, du, Tensor(), Tensor()};
  }
};
struct ActAndMulBackwardFn : Function<ActAndMulBackwardFn> {
  static variable_list forward(AutogradContext* ctx, const Tensor& grad, const Tensor& gate,
                               const Tensor& up, Str act, double beta) {
    FFN_OP(bwd, "act_and_mul_backward", "", GateBwd);
    ctx->save_for_backward({grad, gate, up});
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    auto [dg, du] = bwd.call(grad, gate, up, act, beta);
    return {dg, du};
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd2, "act_and_mul_double_backward", "", GateBwd2);
    const auto s = ctx->get_saved_variables();
    // An output whose gradient was not needed contributes nothing.
    const Tensor ggg = gg[0].defined() ? gg[0] : at::zeros_like(s[1]);
    const Tensor ggu = gg[1].defined() ? gg[1] : at::zeros_like(s[2]);
    auto [d_grad, d_gate, d_up] = bwd2.call(ggg, ggu, s[0], s[1], s[2],
                                            ctx->saved_data["act"].toStringRef(),
                                            ctx->saved_data["beta"].toDouble());
    return {ctx->needs_input_grad(0) ? d_grad : Tensor(),
            ctx->needs_input_grad(1) ? d_gate : Tensor(),
            ctx->needs_input_grad(2) ? d_up : Tensor(), Tensor(), Tensor()};
  }
};

// ---- Gating, packed: h [..., 2d] -> act(h[..., :d]) * h[..., d:] -------------------------------
struct ActAndMulPackedFn : Function<ActAndMulPackedFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& h, Str act, double beta) {
    FFN_OP(fwd, "act_and_mul_packed", "", Packed);
    ctx->save_for_backward({h});
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    return fwd.call(h, act, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    FFN_OP(bwd, "act_and_mul_packed_backward", "", PackedBwd);
    return {bwd.call(g[0], ctx->get_saved_variables()[0], ctx->saved_data["act"].toStringRef(),
                     ctx->saved_data["beta"].toDouble()),
            Tensor(), Tensor()};
  }
};
struct ActAndMulPackedBackwardFn : Function<ActAndMulPackedBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad, const Tensor& h, Str act,
                        double beta) {
    FFN_OP(bwd, "act_and_mul_packed_backward", "", PackedBwd);
    ctx->save_for_backward({grad, h});
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["beta"] = beta;
    BelowAutograd below;
    return bwd.call(grad, h, act, beta);
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    FFN_OP(bwd2, "act_and_mul_packed_double_backward", "", PackedBwd2);
    const auto s = ctx->get_saved_variables();
    auto [d_grad, d_h] = bwd2.call(gg[0], s[0], s[1], ctx->saved_data["act"].toStringRef(),
                                   ctx->saved_data["beta"].toDouble());
    return {ctx->needs_input_grad(0) ? d_grad : Tensor(),
            ctx->needs_input_grad(1) ? d_h : Tensor(), Tensor(), Tensor()};
  }
};

// ---- Third order: refused loudly --------------------------------------------------------------
variable_list as_list(const Tensor& t) { return {t}; }
variable_list as_list(const std::tuple<Tensor, Tensor>& t) {
  return {std::get<0>(t), std::get<1>(t)};
}
variable_list as_list(const std::tuple<Tensor, Tensor, Tensor>& t) {
  return {std::get<0>(t), std::get<1>(t), std::get<2>(t)};
}

// The double-backward ops: their forward runs the kernel; their backward throws.
#define FFN_DOUBLE_BACKWARD_FN(Name, str)                                        \
  struct Name : Function<Name> {                                                 \
    template <class Op, class... Args>                                           \
    static variable_list forward(AutogradContext*, const Op* op, Args... args) { \
      BelowAutograd below;                                                       \
      return as_list(op->call(args...));                                         \
    }                                                                            \
    static variable_list backward(AutogradContext*, variable_list) {             \
      third_order(str);                                                          \
    }                                                                            \
  };

FFN_DOUBLE_BACKWARD_FN(GeluDoubleBackwardFn, "gelu_double_backward")
FFN_DOUBLE_BACKWARD_FN(SiluDoubleBackwardFn, "silu_double_backward")
FFN_DOUBLE_BACKWARD_FN(SwishDoubleBackwardFn, "swish_double_backward")
FFN_DOUBLE_BACKWARD_FN(ActAndMulDoubleBackwardFn, "act_and_mul_double_backward")
FFN_DOUBLE_BACKWARD_FN(ActAndMulPackedDoubleBackwardFn, "act_and_mul_packed_double_backward")

// ---- the Autograd kernels ----------------------------------------------------------------------
// With no gradient to record (grad mode off, or no input requiring grad) the kernel is called
// directly: Function::apply allocates a graph node on every call, ~0.9 us of the ~2.8 us a small
// ffn_ext.relu cost from Python on this project's CPU machine (2026-11-26).
#define FFN_DIRECT_IF_NO_GRAD(name, overload, Sig, tensors, ...) \
  if (any_forward_grad tensors) refuse_forward_ad(name);         \
  if (!records_grad tensors) {                                   \
    FFN_OP(direct_, name, overload, Sig);                        \
    BelowAutograd below_;                                        \
    return direct_.call(__VA_ARGS__);                            \
  }                                                              \
  refuse_functorch(name);

Tensor gelu(const Tensor& x, Str a) {
  FFN_DIRECT_IF_NO_GRAD("gelu", "", UnaryS, (x), x, a);
  return GeluFn::apply(x, a);
}
Tensor gelu_backward(const Tensor& g, const Tensor& x, Str a) {
  FFN_DIRECT_IF_NO_GRAD("gelu_backward", "", BinaryS, (g, x), g, x, a);
  return GeluBackwardFn::apply(g, x, a);
}
Tensor gelu_double_backward(const Tensor& gg, const Tensor& g, const Tensor& x, Str a) {
  FFN_OP(k, "gelu_double_backward", "", TernaryS);
  refuse_functorch("gelu_double_backward");
  return GeluDoubleBackwardFn::apply(&k, gg, g, x, a)[0];
}
Tensor silu(const Tensor& x) {
  FFN_DIRECT_IF_NO_GRAD("silu", "", Unary, (x), x);
  return SiluFn::apply(x);
}
Tensor silu_backward(const Tensor& g, const Tensor& x) {
  FFN_DIRECT_IF_NO_GRAD("silu_backward", "", Binary, (g, x), g, x);
  return SiluBackwardFn::apply(g, x);
}
Tensor silu_double_backward(const Tensor& gg, const Tensor& g, const Tensor& x) {
  FFN_OP(k, "silu_double_backward", "", Ternary);
  refuse_functorch("silu_double_backward");
  return SiluDoubleBackwardFn::apply(&k, gg, g, x)[0];
}
Tensor swish(const Tensor& x, double beta) {
  FFN_DIRECT_IF_NO_GRAD("swish", "", UnaryB, (x), x, beta);
  return SwishFn::apply(x, beta);
}
Tensor swish_backward(const Tensor& g, const Tensor& x, double beta) {
  FFN_DIRECT_IF_NO_GRAD("swish_backward", "", BinaryB, (g, x), g, x, beta);
  return SwishBackwardFn::apply(g, x, beta);
}
Tensor swish_double_backward(const Tensor& gg, const Tensor& g, const Tensor& x, double beta) {
  FFN_OP(k, "swish_double_backward", "", TernaryB);
  refuse_functorch("swish_double_backward");
  return SwishDoubleBackwardFn::apply(&k, gg, g, x, beta)[0];
}
Tensor swish_tensor(const Tensor& x, const Tensor& beta) {
  FFN_DIRECT_IF_NO_GRAD("swish", "Tensor", SwishT, (x, beta), x, beta);
  return SwishTFn::apply(x, beta);
}
std::tuple<Tensor, Tensor> swish_tensor_backward(const Tensor& g, const Tensor& x,
                                                 const Tensor& beta, bool beta_requires_grad) {
  refuse_functorch("swish_backward");
  auto r = SwishTBackwardFn::apply(g, x, beta, beta_requires_grad);
  return {r[0], r[1]};
}
std::tuple<Tensor, Tensor, Tensor> swish_tensor_double_backward(const Tensor& ggx,
                                                                const Tensor& ggb, const Tensor& g,
                                                                const Tensor& x,
                                                                const Tensor& beta, bool need) {
  FFN_OP(k, "swish_double_backward", "Tensor", SwishTBwd2);
  refuse_functorch("swish_double_backward");
  auto r = SwishDoubleBackwardFn::apply(&k, ggx, ggb, g, x, beta, need);
  return {r[0], r[1], r[2]};
}
Tensor act_and_mul(const Tensor& gate, const Tensor& up, Str act, double beta) {
  FFN_DIRECT_IF_NO_GRAD("act_and_mul", "", Gate, (gate, up), gate, up, act, beta);
  return ActAndMulFn::apply(gate, up, act, beta);
}
std::tuple<Tensor, Tensor> act_and_mul_backward(const Tensor& g, const Tensor& gate,
                                                const Tensor& up, Str act, double beta) {
  FFN_DIRECT_IF_NO_GRAD("act_and_mul_backward", "", GateBwd, (g, gate, up), g, gate, up, act, beta);
  auto r = ActAndMulBackwardFn::apply(g, gate, up, act, beta);
  return {r[0], r[1]};
}
std::tuple<Tensor, Tensor, Tensor> act_and_mul_double_backward(const Tensor& ggg,
                                                               const Tensor& ggu, const Tensor& g,
                                                               const Tensor& gate,
                                                               const Tensor& up, Str act,
                                                               double beta) {
  FFN_OP(k, "act_and_mul_double_backward", "", GateBwd2);
  refuse_functorch("act_and_mul_double_backward");
  auto r = ActAndMulDoubleBackwardFn::apply(&k, ggg, ggu, g, gate, up, act, beta);
  return {r[0], r[1], r[2]};
}
Tensor act_and_mul_packed(const Tensor& h, Str act, double beta) {
  FFN_DIRECT_IF_NO_GRAD("act_and_mul_packed", "", Packed, (h), h, act, beta);
  return ActAndMulPackedFn::apply(h, act, beta);
}
// out= is for inference: no autograd (as for PyTorch's own out= functions). The version counter of
// out is bumped, since out is written in place.
Tensor& act_and_mul_packed_out(const Tensor& h, Str act, double beta, Tensor& out) {
  FFN_OP(k, "act_and_mul_packed", "out", PackedOut);
  if (any_forward_grad(h, out)) refuse_forward_ad("act_and_mul_packed");
  TORCH_CHECK(!records_grad(h, out),
              "ffn_ext.act_and_mul_packed: out= does not support autograd (h or out requires "
              "grad); call it without out=, or under torch.no_grad() / torch.inference_mode()");
  {
    BelowAutograd below;
    k.call(h, act, beta, out);
  }
  torch::autograd::impl::bump_version(out);
  return out;
}
Tensor act_and_mul_packed_backward(const Tensor& g, const Tensor& h, Str act, double beta) {
  FFN_DIRECT_IF_NO_GRAD("act_and_mul_packed_backward", "", PackedBwd, (g, h), g, h, act, beta);
  return ActAndMulPackedBackwardFn::apply(g, h, act, beta);
}
std::tuple<Tensor, Tensor> act_and_mul_packed_double_backward(const Tensor& ggh, const Tensor& g,
                                                              const Tensor& h, Str act,
                                                              double beta) {
  FFN_OP(k, "act_and_mul_packed_double_backward", "", PackedBwd2);
  refuse_functorch("act_and_mul_packed_double_backward");
  auto r = ActAndMulPackedDoubleBackwardFn::apply(&k, ggh, g, h, act, beta);
  return {r[0], r[1]};
}
Tensor relu(const Tensor& x) {
  FFN_DIRECT_IF_NO_GRAD("relu", "", Unary, (x), x);
  return ReluFn::apply(x);
}
Tensor relu_backward(const Tensor& g, const Tensor& x) {
  FFN_DIRECT_IF_NO_GRAD("relu_backward", "", Binary, (g, x), g, x);
  return ReluBackwardFn::apply(g, x);
}

}  // namespace
}  // namespace ffn_ext

TORCH_LIBRARY_IMPL(ffn_ext, Autograd, m) {
  m.impl("gelu", &ffn_ext::gelu);
  m.impl("gelu_backward", &ffn_ext::gelu_backward);
  m.impl("gelu_double_backward", &ffn_ext::gelu_double_backward);
  m.impl("silu", &ffn_ext::silu);
  m.impl("silu_backward", &ffn_ext::silu_backward);
  m.impl("silu_double_backward", &ffn_ext::silu_double_backward);
  m.impl("swish", &ffn_ext::swish);
  m.impl("swish_backward", &ffn_ext::swish_backward);
  m.impl("swish_double_backward", &ffn_ext::swish_double_backward);
  m.impl("swish.Tensor", &ffn_ext::swish_tensor);
  m.impl("swish_backward.Tensor", &ffn_ext::swish_tensor_backward);
  m.impl("swish_double_backward.Tensor", &ffn_ext::swish_tensor_double_backward);
  m.impl("relu", &ffn_ext::relu);
  m.impl("relu_backward", &ffn_ext::relu_backward);
  m.impl("act_and_mul", &ffn_ext::act_and_mul);
  m.impl("act_and_mul_backward", &ffn_ext::act_and_mul_backward);
  m.impl("act_and_mul_double_backward", &ffn_ext::act_and_mul_double_backward);
  m.impl("act_and_mul_packed", &ffn_ext::act_and_mul_packed);
  m.impl("act_and_mul_packed.out", &ffn_ext::act_and_mul_packed_out);
  m.impl("act_and_mul_packed_backward", &ffn_ext::act_and_mul_packed_backward);
  m.impl("act_and_mul_packed_double_backward", &ffn_ext::act_and_mul_packed_double_backward);
}
