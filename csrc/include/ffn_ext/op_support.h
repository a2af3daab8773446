// What the autograd and composite kernels share (csrc/autograd.cpp, csrc/projection.cpp): typed
// dispatcher handles of ffn_ext's own ops, the guard that calls an op's kernel below autograd, and
// whether a call records gradients.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>

#include <optional>

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

}  // namespace ffn_ext
