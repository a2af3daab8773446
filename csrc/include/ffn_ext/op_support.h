// What the autograd and composite kernels share (csrc/autograd.cpp, csrc/projection.cpp): typed
// dispatcher handles of ffn_ext's own ops, the guard that calls an op's kernel below autograd, and
// whether a call records gradients.
#pragma once

#include <ATen/FuncTorchTLS.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>

#include <optional>
#include <string_view>

// A typed handle of ffn_ext::<name>.<overload>, looked up once per call site.
#define FFN_OP(var, name, overload, Sig)                                                   \
  static const auto var = c10::Dispatcher::singleton()                                     \
                              .findSchemaOrThrow("ffn_ext::" name, overload)                \
                              .typed<Sig>()

namespace ffn_ext {

// The op's kernel below autograd (what every forward runs).
struct BelowAutograd {
  at::AutoDispatchBelowADInplaceOrView guard;
};

inline bool requires_grad(const at::Tensor& t) { return t.requires_grad(); }
inline bool requires_grad(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() && t->requires_grad();
}

// Grad mode is on and some argument (a tensor, or an optional one) requires grad.
template <class... Ts>
bool records_grad(const Ts&... ts) {
  return c10::GradMode::is_enabled() && (... || requires_grad(ts));
}

// Forward-mode AD: a dual tensor (torch.autograd.forward_ad, torch.func.jvp) carries a tangent at
// level 0. The ops have no jvp: without this check a dual input that does not require grad took
// the no-grad path and came back without a tangent (torch.func.jvp gave zeros).
inline bool has_forward_grad(const at::Tensor& t) { return t.defined() && t._fw_grad(0).defined(); }
inline bool has_forward_grad(const std::optional<at::Tensor>& t) {
  return t.has_value() && has_forward_grad(*t);
}
template <class... Ts>
bool any_forward_grad(const Ts&... ts) {
  return (... || has_forward_grad(ts));
}
[[noreturn]] inline void refuse_forward_ad(std::string_view op) {
  TORCH_CHECK(false, "ffn_ext.", op, ": forward-mode AD (dual tensors, torch.func.jvp) is not ",
              "implemented; use reverse mode (backward(), torch.autograd.grad)");
}

// torch.func's differentiating transforms (grad, vjp, jacrev, hessian) cannot run a C++ autograd
// Function, which is what records the ops' gradients: PyTorch refuses one under them ("cannot use
// C++ torch::autograd::Function with functorch transforms"), naming neither the op nor what works.
// Called where a call is about to record gradients. vmap runs (vmap's fallback, one op call per
// batch element), and autograd through vmap's result works.
inline void refuse_functorch(std::string_view op) {
  const auto& tls = at::functorch::functorchTLSAccessor();
  if (!tls) return;
  try {
    tls->checkSupportsCppAutogradFunction();
  } catch (const c10::Error&) {
    TORCH_CHECK(false, "ffn_ext.", op, ": torch.func.grad, vjp, jacrev and hessian are not ",
                "supported: the op's gradients are a C++ autograd Function, which torch.func ",
                "cannot transform; use torch.autograd.grad or backward() (torch.func.vmap works, ",
                "and autograd through its result)");
  }
}

}  // namespace ffn_ext
