// The element-wise activation ops, device-generic: check the inputs, allocate the outputs, hand a
// KernelDesc to the device's Engine. csrc/cpu and csrc/cuda instantiate ActivationOps with their
// engine and register the result for their dispatch key, so checks and output layouts are
// written once.
//
// Engine::run(desc, outs, ins) computes every element of the already-allocated outputs. Outputs
// are allocated with empty_like(x) (x's dtype and, for dense x, x's strides, as
// torch.nn.functional gives) and the fake kernels in ffn_ext/_fake.py do the same.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/ScalarType.h>

#include <string_view>
#include <tuple>
#include <vector>

#include "ffn_ext/checks.h"
#include "ffn_ext/kernels.h"

namespace ffn_ext {

// Op-math dtype of a storage dtype: float for fp32/fp16/bf16, double for fp64.
inline c10::ScalarType opmath_dtype(c10::ScalarType t) {
  return t == c10::ScalarType::Double ? c10::ScalarType::Double : c10::ScalarType::Float;
}

inline KernelDesc gelu_desc(std::string_view op, std::string_view approximate, Mode mode) {
  KernelDesc d;
  d.act = parse_approximate(op, approximate) == GeluApprox::Tanh ? Activation::GeluTanh
                                                                 : Activation::GeluErf;
  d.mode = mode;
  return d;
}

inline KernelDesc swish_desc(double beta, Mode mode) {
  KernelDesc d;
  d.act = Activation::Swish;
  d.beta = beta;
  d.mode = mode;
  return d;
}

inline KernelDesc relu_desc(Mode mode) {
  KernelDesc d;
  d.act = Activation::Relu;
  d.mode = mode;
  return d;
}

inline KernelDesc swish_t_desc(SwishT k) {
  KernelDesc d;
  d.swish_t = k;
  return d;
}

template <class Engine>
struct ActivationOps {
  // ---- helpers -------------------------------------------------------------------------------
  static at::Tensor unary(std::string_view op, const KernelDesc& d, const at::Tensor& x) {
    check_float_tensor(op, "x", x);
    at::Tensor out = at::empty_like(x);
    Engine::run(d, {out}, {x});
    return out;
  }
  static at::Tensor backward(std::string_view op, const KernelDesc& d, const at::Tensor& grad,
                             const at::Tensor& x) {
    check_float_tensor(op, "x", x);
    check_like(op, "grad", grad, x);
    at::Tensor out = at::empty_like(x);
    Engine::run(d, {out}, {grad, x});
    return out;
  }
  static at::Tensor double_backward(std::string_view op, const KernelDesc& d,
                                    const at::Tensor& grad_grad, const at::Tensor& grad,
                                    const at::Tensor& x) {
    check_float_tensor(op, "x", x);
    check_like(op, "grad_grad", grad_grad, x);
    check_like(op, "grad", grad, x);
    at::Tensor out = at::empty_like(x);
    Engine::run(d, {out}, {grad_grad, grad, x});
    return out;
  }
  // beta in op-math precision, broadcast to x's shape (stride 0 where it repeats).
  static at::Tensor beta_operand(const at::Tensor& beta, const at::Tensor& x) {
    return beta.to(opmath_dtype(x.scalar_type())).expand(x.sizes());
  }
  // Runs kernel d, whose last output is beta's gradient per element (an op-math operand), and
  // returns beta's gradient (in beta's shape and dtype): that output summed over the elements that
  // share each beta. Engine::run_summed sums it inside the loop, without storing it, where the
  // engine can (the CPU's vector loops); elsewhere it is stored per element and summed here, in
  // double as the loop does (a float sum overflowed where the terms are near FLT_MAX and their
  // total is not, found in review). The per-element buffer is op-math, twice the size of bf16 x,
  // and on the 2-core VM its page faults could cost more than the kernel (1 429 against 297 us at
  // 1M fp32, 2026-11-27).
  static at::Tensor beta_gradient(const KernelDesc& d, std::vector<at::Tensor> outs,
                                  c10::ArrayRef<at::Tensor> ins, const at::Tensor& x,
                                  const at::Tensor& beta) {
    at::Tensor r = Engine::run_summed(d, outs, ins, beta.numel());
    if (r.defined()) return r.reshape(beta.sizes()).to(beta.scalar_type());
    at::Tensor per_elem = at::empty_like(x, x.options().dtype(opmath_dtype(x.scalar_type())));
    outs.push_back(per_elem);
    Engine::run(d, outs, ins);
    if (beta.dim() == 0) {
      r = per_elem.sum(at::kDouble);
    } else {
      std::vector<int64_t> dims;
      for (int64_t i = 0; i + 1 < per_elem.dim(); ++i) dims.push_back(i);
      r = dims.empty() ? per_elem.clone() : per_elem.sum(dims, /*keepdim=*/false, at::kDouble);
    }
    return r.to(beta.scalar_type());
  }

  // ---- GELU ----------------------------------------------------------------------------------
  static at::Tensor gelu(const at::Tensor& x, c10::string_view approximate) {
    return unary("gelu", gelu_desc("gelu", approximate, Mode::Fwd), x);
  }
  static at::Tensor gelu_backward(const at::Tensor& grad, const at::Tensor& x,
                                  c10::string_view approximate) {
    return backward("gelu_backward", gelu_desc("gelu_backward", approximate, Mode::Bwd), grad, x);
  }
  static at::Tensor gelu_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad,
                                         const at::Tensor& x, c10::string_view approximate) {
    return double_backward("gelu_double_backward",
                           gelu_desc("gelu_double_backward", approximate, Mode::Bwd2), grad_grad,
                           grad, x);
  }

  // ---- SiLU (swish with beta = 1) ------------------------------------------------------------
  static at::Tensor silu(const at::Tensor& x) { return unary("silu", swish_desc(1.0, Mode::Fwd), x); }
  static at::Tensor silu_backward(const at::Tensor& grad, const at::Tensor& x) {
    return backward("silu_backward", swish_desc(1.0, Mode::Bwd), grad, x);
  }
  static at::Tensor silu_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad,
                                         const at::Tensor& x) {
    return double_backward("silu_double_backward", swish_desc(1.0, Mode::Bwd2), grad_grad, grad, x);
  }

  // ---- Swish with a fixed beta ---------------------------------------------------------------
  static at::Tensor swish(const at::Tensor& x, double beta) {
    return unary("swish", swish_desc(beta, Mode::Fwd), x);
  }
  static at::Tensor swish_backward(const at::Tensor& grad, const at::Tensor& x, double beta) {
    return backward("swish_backward", swish_desc(beta, Mode::Bwd), grad, x);
  }
  static at::Tensor swish_double_backward(const at::Tensor& grad_grad, const at::Tensor& grad,
                                          const at::Tensor& x, double beta) {
    return double_backward("swish_double_backward", swish_desc(beta, Mode::Bwd2), grad_grad, grad,
                           x);
  }

  // ---- Swish with a tensor beta (0-dim or per channel), possibly learnable --------------------
  static at::Tensor swish_tensor(const at::Tensor& x, const at::Tensor& beta) {
    check_float_tensor("swish", "x", x);
    check_beta("swish", "beta", beta, x);
    at::Tensor out = at::empty_like(x);
    Engine::run(swish_t_desc(SwishT::TFwd), {out}, {x, beta_operand(beta, x)});
    return out;
  }
  static std::tuple<at::Tensor, at::Tensor> swish_tensor_backward(const at::Tensor& grad,
                                                                  const at::Tensor& x,
                                                                  const at::Tensor& beta,
                                                                  bool beta_requires_grad) {
    constexpr std::string_view op = "swish_backward";
    check_float_tensor(op, "x", x);
    check_like(op, "grad", grad, x);
    check_beta(op, "beta", beta, x);
    at::Tensor dx = at::empty_like(x);
    const at::Tensor b = beta_operand(beta, x);
    if (!beta_requires_grad) {
      Engine::run(swish_t_desc(SwishT::TBwd), {dx}, {grad, x, b});
      return {dx, beta.new_empty({0})};
    }
    return {dx, beta_gradient(swish_t_desc(SwishT::TBwdBeta), {dx}, {grad, x, b}, x, beta)};
  }
  // Backward of swish_backward.Tensor: given the gradients ggx (of dx) and ggb (of dbeta), returns
  // the gradients of grad, x and beta. ggb has beta's shape.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor> swish_tensor_double_backward(
      const at::Tensor& grad_grad_x, const at::Tensor& grad_grad_beta, const at::Tensor& grad,
      const at::Tensor& x, const at::Tensor& beta, bool beta_requires_grad) {
    constexpr std::string_view op = "swish_double_backward";
    check_float_tensor(op, "x", x);
    check_like(op, "grad_grad_x", grad_grad_x, x);
    check_like(op, "grad", grad, x);
    check_beta(op, "beta", beta, x);
    check_float_tensor(op, "grad_grad_beta", grad_grad_beta);
    check_same_device(op, "grad_grad_beta", grad_grad_beta, "x", x);
    check_same_shape(op, "grad_grad_beta", grad_grad_beta, "beta", beta);
    at::Tensor dg = at::empty_like(x), dx = at::empty_like(x);
    const std::vector<at::Tensor> ins = {grad_grad_x, beta_operand(grad_grad_beta, x), grad, x,
                                         beta_operand(beta, x)};
    if (!beta_requires_grad) {
      Engine::run(swish_t_desc(SwishT::TBwd2), {dg, dx}, ins);
      return {dg, dx, beta.new_empty({0})};
    }
    return {dg, dx, beta_gradient(swish_t_desc(SwishT::TBwd2Beta), {dg, dx}, ins, x, beta)};
  }

  // ---- ReLU ----------------------------------------------------------------------------------
  static at::Tensor relu(const at::Tensor& x) { return unary("relu", relu_desc(Mode::Fwd), x); }
  static at::Tensor relu_backward(const at::Tensor& grad, const at::Tensor& x) {
    return backward("relu_backward", relu_desc(Mode::Bwd), grad, x);
  }
};

// Registers every activation op of ActivationOps<Engine> on the library fragment `m`
// (a TORCH_LIBRARY_IMPL block of one dispatch key).
template <class Engine, class Lib>
void register_activation_ops(Lib& m) {
  using O = ActivationOps<Engine>;
  m.impl("gelu", &O::gelu);
  m.impl("gelu_backward", &O::gelu_backward);
  m.impl("gelu_double_backward", &O::gelu_double_backward);
  m.impl("silu", &O::silu);
  m.impl("silu_backward", &O::silu_backward);
  m.impl("silu_double_backward", &O::silu_double_backward);
  m.impl("swish", &O::swish);
  m.impl("swish_backward", &O::swish_backward);
  m.impl("swish_double_backward", &O::swish_double_backward);
  m.impl("swish.Tensor", &O::swish_tensor);
  m.impl("swish_backward.Tensor", &O::swish_tensor_backward);
  m.impl("swish_double_backward.Tensor", &O::swish_tensor_double_backward);
  m.impl("relu", &O::relu);
  m.impl("relu_backward", &O::relu_backward);
}

}  // namespace ffn_ext
