// The projection-level gating op and its autograd and autocast kernels:
//
//     gated_linear(x, w1, w3, b1, b3, activation, beta) = act(x @ w1.T + b1) * (x @ w3.T + b3)
//
// (ffn_ext.swiglu, geglu, reglu and gated_linear in Python). Weights are in torch.nn.Linear's
// layout, [out_features, in_features]; x is [..., in_features].
//
// Device-generic (CompositeExplicitAutograd): the GEMMs are ATen's (cuBLAS on CUDA), the gating
// between them is ffn_ext's gating kernel, so no separate activation or multiply pass is made. The
// two projections h = [x W1ᵀ + b1 | x W3ᵀ + b3] ([M, 2d]):
//  * on CUDA, when w3 directly follows w1 in one storage (ffn_ext.nn.FeedForward keeps them so),
//    one GEMM with the [2d, in] matrix they form computes both into one packed h (fused_weights);
//  * otherwise two GEMMs: without autograd into two [M, d] tensors (gated_linear), for training
//    into the two halves of a packed h (row stride 2d; see linear_into for the bias).
// Inference keeps nothing: the peak extra memory is the projections' output (2 M d elements)
// beside the result (M d), and whatever scratch ATen's GEMM takes while it runs. Training records
// h = packed_linear(x, w1, w3, b1, b3) (saves x, w1, w3: inputs, never copied) and
// act_and_mul_packed(h) (saves h), two graph nodes, so that h is freed before the GEMMs of the
// backward allocate. Backward from the packed gradient dh = [dgate | dup] (one kernel, the gating
// op's backward):
//     dW13 = dhᵀ x           one GEMM for both weights (dw1, dw3 are its two halves)
//     db13 = sum over rows of dh
//     dx   = dh W13          one GEMM when w1, w3 are adjacent, else dgate W1 + dup W3
// Second-order gradients (create_graph=True) compose the two nodes' own: the gating op's double
// backward and the same sums in differentiable ATen ops.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "ffn_ext/checks.h"
#include "ffn_ext/gating_ops.h"  // gate_desc: the activation names
#include "ffn_ext/op_support.h"

namespace ffn_ext {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using Str = c10::string_view;
using torch::autograd::AutogradContext;
using torch::autograd::Function;
using torch::autograd::variable_list;

constexpr std::string_view kOp = "gated_linear";

bool given(const OptTensor& t) { return t.has_value() && t->defined(); }

// ---- checks (ffn_ext/_checks.py repeats them with the same texts for the fake kernels) ---------
void check_weight(std::string_view op, const char* name, const Tensor& w, const Tensor& x) {
  check_same_kind(op, name, w, "x", x);
  TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == x.size(-1), "ffn_ext.", op, ": ", name,
                    " must be [out_features, in_features] with in_features = x.shape[-1] = ",
                    std::to_string(x.size(-1)), ", got shape ", shape_str(w.sizes()),
                    " for x of shape ", shape_str(x.sizes()));
}

void check_bias(std::string_view op, const char* name, const OptTensor& b, const Tensor& x,
                int64_t d) {
  if (!given(b)) return;
  check_same_kind(op, name, *b, "x", x);
  TORCH_CHECK_VALUE(b->dim() == 1 && b->size(0) == d, "ffn_ext.", op, ": ", name,
                    " must be [out_features] = [", std::to_string(d), "], got shape ",
                    shape_str(b->sizes()));
}

// x [..., in], w1 and w3 [d, in], b1 and b3 [d] or absent.
void check_projection(std::string_view op, const Tensor& x, const Tensor& w1, const Tensor& w3,
                      const OptTensor& b1, const OptTensor& b3) {
  check_float_tensor(op, "x", x);
  TORCH_CHECK_VALUE(x.dim() >= 1, "ffn_ext.", op,
                    ": x must be [..., in_features], got a 0-dim tensor");
  check_weight(op, "w1", w1, x);
  check_weight(op, "w3", w3, x);
  TORCH_CHECK_VALUE(w3.sizes().equals(w1.sizes()), "ffn_ext.", op,
                    ": w3 must have the same shape as w1, got ", shape_str(w3.sizes()), " and ",
                    shape_str(w1.sizes()));
  TORCH_CHECK_VALUE(w1.size(0) >= 1, "ffn_ext.", op,
                    ": w1 and w3 must have at least one row (out_features >= 1), got shape ",
                    shape_str(w1.sizes()));
  check_bias(op, "b1", b1, x, w1.size(0));
  check_bias(op, "b3", b3, x, w1.size(0));
}

void check_gated_linear(const Tensor& x, const Tensor& w1, const Tensor& w3, const OptTensor& b1,
                        const OptTensor& b3, Str act, double beta) {
  check_projection(kOp, x, w1, w3, b1, b3);
  gate_desc(kOp, act, beta, Gate::GFwd);  // the activation, before any GEMM runs
}

// x as the [M, in] matrix of its rows (M = 0 or in = 0 allowed).
Tensor rows_of(const Tensor& x) {
  const int64_t in = x.size(-1);
  int64_t m = 1;
  for (int64_t i = 0; i + 1 < x.dim(); ++i) m *= x.size(i);
  return x.reshape({m, in});
}

// ---- the packed projection h = [x W1ᵀ + b1 | x W3ᵀ + b3] ---------------------------------------
// b follows a in one storage, both contiguous: the two as one tensor of twice a's leading size.
Tensor adjacent(const Tensor& a, const Tensor& b) {
  if (!a.is_contiguous() || !b.is_contiguous() || a.numel() == 0) return {};
  if (!a.storage().is_alias_of(b.storage()) ||
      b.storage_offset() != a.storage_offset() + a.numel())
    return {};
  std::vector<int64_t> size(a.sizes().begin(), a.sizes().end());
  size[0] *= 2;
  return a.as_strided(size, c10::contiguous_strides(size));
}

Tensor packed_bias(const OptTensor& b1, const OptTensor& b3, int64_t d) {
  if (!given(b1) && !given(b3)) return {};
  if (given(b1) && given(b3)) {
    Tensor b13 = adjacent(*b1, *b3);
    if (b13.defined()) return b13;
  }
  const Tensor ref = given(b1) ? *b1 : *b3;
  return at::cat({given(b1) ? *b1 : at::zeros({d}, ref.options()),
                  given(b3) ? *b3 : at::zeros({d}, ref.options())});
}

// w1 and w3 as one [2d, in] matrix, when they are adjacent and the device gains from one GEMM.
// On CPU it does not: one [2048 x 1024] x [1024 x 7168] fp32 GEMM took 178-180 ms against 156-164
// ms for the two [.. x 3584] halves (2-core AVX-512 EPYC, torch 2.14.1, 2026-11-26), so CPU
// always runs two. On CUDA one cuBLAS call replaces two (one launch less at decode sizes).
//
// FFN_EXT_CPU_AS_CUDA=1 makes the CPU take the CUDA choices here and in gated_linear (one packed h,
// one GEMM for adjacent weights), so that tests/ can check those paths where no GPU is present.
// Read on every call (a getenv), so that a test can set it for a while.
bool cpu_as_cuda() {
  const char* s = std::getenv("FFN_EXT_CPU_AS_CUDA");
  return s != nullptr && s[0] == '1';
}

Tensor fused_weights(const Tensor& w1, const Tensor& w3) {
  return w1.is_cuda() || cpu_as_cuda() ? adjacent(w1, w3) : Tensor();
}

// out = x2d wᵀ + b, out [M, d] possibly a half of the packed h (row stride 2d).
// With a bias, a strided out on CUDA goes through a contiguous result and a copy. Into a strided
// out ATen's addmm_out copies the bias in and runs cuBLAS with beta = 1, and the fp16/bf16
// projections came out as if x wᵀ had been rounded to the dtype before the bias was added: in 40
// of the 42 fp16/bf16 cases of tests/test_projection.py::test_values with separate weights and a
// bias, errors beyond one rounding of each projection (bf16 up to 5.6e-2, fp16 up to 6.6e-3, on
// outputs of order 1), always in the output columns where x wᵀ and the bias cancel (H100, torch
// 2.11, 2026-11-26). A contiguous out takes cuBLASLt's bias epilogue, rounded once, as F.linear
// does. Without a bias (beta = 0) the strided out was as accurate as eager. Only packed_linear's
// separate-weight case (training) gets here with a strided out and a bias; inference takes two
// [M, d] tensors.
void linear_into(Tensor out, const Tensor& x2d, const Tensor& w, const Tensor& b) {
  if (!b.defined())
    at::mm_out(out, x2d, w.t());
  else if (!out.is_contiguous() && (out.is_cuda() || cpu_as_cuda()))
    out.copy_(at::addmm(b, x2d, w.t()));
  else
    at::addmm_out(out, b, x2d, w.t());
}

Tensor packed_projection(const Tensor& x2d, const Tensor& w1, const Tensor& w3,
                         const OptTensor& b1, const OptTensor& b3) {
  const int64_t d = w1.size(0);
  Tensor h = at::empty({x2d.size(0), 2 * d}, x2d.options());
  if (Tensor w13 = fused_weights(w1, w3); w13.defined()) {
    linear_into(h, x2d, w13, packed_bias(b1, b3, d));
  } else {
    linear_into(h.narrow(1, 0, d), x2d, w1, given(b1) ? *b1 : Tensor());
    linear_into(h.narrow(1, d, d), x2d, w3, given(b3) ? *b3 : Tensor());
  }
  return h;
}

std::vector<int64_t> out_shape(const Tensor& x, int64_t d) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s.back() = d;
  return s;
}

std::vector<c10::SymInt> out_shape_symint(const Tensor& x, const c10::SymInt& d) {
  std::vector<c10::SymInt> s(x.sym_sizes().begin(), x.sym_sizes().end());
  s.back() = d;
  return s;
}

using GatedLinearSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                              const OptTensor&, Str, double);

Tensor packed_gating(const Tensor& h, Str act, double beta) {
  FFN_OP(op, "act_and_mul_packed", "", Tensor(const Tensor&, Str, double));
  return op.call(h, act, beta);
}

Tensor gating(const Tensor& gate, const Tensor& up, Str act, double beta) {
  FFN_OP(op, "act_and_mul", "", Tensor(const Tensor&, const Tensor&, Str, double));
  return op.call(gate, up, act, beta);
}

// ---- kernels (CompositeExplicitAutograd: any device with GEMMs and ffn_ext's gating) ----------

// Without autograd (nothing needs h afterwards). A packed h only where one GEMM computes both
// projections (adjacent weights on CUDA); otherwise the two projections go to two [M, d] tensors,
// each a contiguous GEMM result as F.linear's (with a bias, cuBLASLt's epilogue: see
// linear_into), and the two-tensor gating kernel. On CPU that is always the case: glibc serves
// allocations above its mmap threshold (32 MB at most) with fresh pages on every call, and the
// first touch of a packed [2048, 7168] fp32 h cost 14-15 ms of a 174-183 ms call (2-core EPYC,
// 2026-11-26), where two [2048, 3584] halves are reused from the heap as eager's are (159-161 ms,
// eager 160-164). CUDA's caching allocator has no such cost.
Tensor gated_linear(const Tensor& x, const Tensor& w1, const Tensor& w3, const OptTensor& b1,
                    const OptTensor& b3, Str act, double beta) {
  check_gated_linear(x, w1, w3, b1, b3, act, beta);
  // Below ADInplaceOrView, as the autograd kernel calls this one under no_grad: under
  // inference_mode this kernel is reached directly, and the views it takes of x and the weights
  // (normal tensors) went through ADInplaceOrView's view tracking, 0.4-0.9 us a call on a 2-core
  // x86 host (1 x 16 fp32). Nothing here needs it: autograd is the autograd kernel's, and no view
  // this function takes of an input is returned.
  BelowAutograd below;
  const Tensor x2d = rows_of(x);
  const int64_t d = w1.size(0);
  if (fused_weights(w1, w3).defined())
    return packed_gating(packed_projection(x2d, w1, w3, b1, b3), act, beta).view(out_shape(x, d));
  const Tensor g = at::empty({x2d.size(0), d}, x.options()), u = at::empty_like(g);
  linear_into(g, x2d, w1, given(b1) ? *b1 : Tensor());
  linear_into(u, x2d, w3, given(b3) ? *b3 : Tensor());
  return gating(g, u, act, beta).view(out_shape(x, d));
}

// h = [x W1ᵀ + b1 | x W3ᵀ + b3], [M, 2d]: what gated_linear's autograd kernel gates with
// act_and_mul_packed, so that the engine frees h (saved by the gating node) before the GEMMs of
// the projection's backward run.
constexpr std::string_view kPacked = "packed_linear";

Tensor packed_linear(const Tensor& x, const Tensor& w1, const Tensor& w3, const OptTensor& b1,
                     const OptTensor& b3) {
  check_projection(kPacked, x, w1, w3, b1, b3);
  return packed_projection(rows_of(x), w1, w3, b1, b3);
}

// (grad_x, grad_w13, grad_b13) from grad_h = [dgate | dup] ([M, 2d]); output_mask: (x, weights,
// biases). grad_w13 = [grad_w1; grad_w3] ([2d, in]) and grad_b13 = [grad_b1 | grad_b3] ([2d]) are
// single tensors, since the outputs of an op may not alias one another; the autograd kernel hands
// out their halves. A gradient not asked for is an empty tensor. The biases, if given, are checked,
// nothing more: grad_b13 is the column sums of grad_h whenever it is asked for (the autograd kernel
// passes none and asks for it when a bias needs its gradient).
//     dW13 = dhᵀ x     one GEMM for both weights
//     dx   = dh W13    one GEMM when w1, w3 are adjacent (on CUDA), else dgate W1 + dup W3
using Grads3 = std::tuple<Tensor, Tensor, Tensor>;

Grads3 packed_linear_backward(const Tensor& dh, const Tensor& x, const Tensor& w1,
                              const Tensor& w3, const OptTensor& b1, const OptTensor& b3,
                              std::array<bool, 3> mask) {
  constexpr std::string_view op = "packed_linear_backward";
  check_projection(op, x, w1, w3, b1, b3);
  const int64_t d = w1.size(0);
  const Tensor x2d = rows_of(x);
  const std::vector<int64_t> hs = {x2d.size(0), 2 * d};
  check_same_kind(op, "grad_h", dh, "x", x);
  TORCH_CHECK_VALUE(dh.sizes().equals(hs), "ffn_ext.", op, ": grad_h must have shape ",
                    shape_str(hs), ", got ", shape_str(dh.sizes()));
  // Each output its own empty tensor: outputs of one op may not alias one another.
  Tensor dx = x.new_empty({0}), dw13 = x.new_empty({0}), db13 = x.new_empty({0});
  if (mask[0]) {
    if (Tensor w13 = fused_weights(w1, w3); w13.defined()) {
      dx = at::mm(dh, w13);
    } else {
      dx = at::mm(dh.narrow(1, 0, d), w1);
      dx.addmm_(dh.narrow(1, d, d), w3);
    }
    dx = dx.view(x.sizes());
  }
  if (mask[1]) dw13 = at::mm(dh.t(), x2d);  // [2d, in]
  if (mask[2]) db13 = dh.sum(0);
  return {dx, dw13, db13};
}

// ---- autograd ------------------------------------------------------------------------------------
// gated_linear records two graph nodes: packed_linear's (saves x, w1, w3: inputs, never copied) and
// act_and_mul_packed's (saves h). The engine frees h once the gating node has made dh, before the
// projection's GEMMs allocate dx and dW13, so a backward's peak is the packed dh and the gradients,
// not h besides (tests/test_projection.py::test_training_memory). h stays a saved tensor of the
// gating node, so saved-tensor hooks (torch.utils.checkpoint, save_on_cpu) see it. The second
// order composes the two nodes' own.

using PackedSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                         const OptTensor&);

const auto& packed_linear_backward_op() {
  FFN_OP(op, "packed_linear_backward", "",
         Grads3(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                const OptTensor&, std::array<bool, 3>));
  return op;
}

// Forward arguments: x, w1, w3, b1?, b3?. An absent bias is not an input of the graph node, so
// needs_input_grad counts it out.
struct PackedLinearFn : Function<PackedLinearFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w1, const Tensor& w3,
                        const OptTensor& b1, const OptTensor& b3) {
    Tensor h;
    {
      BelowAutograd below;
      FFN_OP(op, "packed_linear", "", PackedSig);
      h = op.call(x, w1, w3, b1, b3);
    }
    // The biases' presence only (h's gradient gives theirs): saving them would make an in-place
    // change of a bias after the forward an error at the backward, which F.linear allows.
    ctx->save_for_backward({x, w1, w3});
    ctx->saved_data["b1"] = given(b1);
    ctx->saved_data["b3"] = given(b3);
    return h;
  }

  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto s = ctx->get_saved_variables();
    const Tensor &x = s[0], &w1 = s[1], &w3 = s[2];
    const bool has_b1 = ctx->saved_data["b1"].toBool(), has_b3 = ctx->saved_data["b3"].toBool();
    auto needs = [&](int arg) {  // arg: 0..4 = x, w1, w3, b1, b3
      if ((arg == 3 && !has_b1) || (arg == 4 && !has_b3)) return false;
      return ctx->needs_input_grad(arg == 4 && !has_b1 ? 3 : arg);
    };
    const bool nx = needs(0), nw = needs(1) || needs(2), nb = needs(3) || needs(4);
    // Symbolic sizes: torch.compile traces this backward too.
    const c10::SymInt d = w1.sym_size(0);
    const Tensor& dh = g[0];
    Tensor dx, dw13, db13;
    if (at::GradMode::is_enabled()) {
      // create_graph: the same sums in differentiable ATen ops (two GEMMs for dx: a view spanning
      // both weights is not differentiable with respect to each).
      c10::SymInt m = 1;  // rows, explicitly: a -1 cannot be inferred when in_features is 0
      for (int64_t i = 0; i + 1 < x.dim(); ++i) m *= x.sym_size(i);
      const Tensor x2d = x.reshape_symint({m, x.sym_size(-1)});
      if (nx)
        dx = (dh.narrow_symint(1, 0, d).mm(w1) + dh.narrow_symint(1, d, d).mm(w3))
                 .view_symint(x.sym_sizes());
      if (nw) dw13 = dh.t().mm(x2d);
      if (nb) db13 = dh.sum(0);
    } else {
      BelowAutograd below;
      std::tie(dx, dw13, db13) =
          packed_linear_backward_op().call(dh, x, w1, w3, std::nullopt, std::nullopt, {nx, nw, nb});
    }
    auto keep = [&](int i, const Tensor& t) { return needs(i) ? t : Tensor(); };
    auto half = [&](bool asked, const Tensor& t, int k) {
      return asked ? t.narrow_symint(0, d * k, d) : Tensor();
    };
    return {keep(0, dx), keep(1, half(nw, dw13, 0)), keep(2, half(nw, dw13, 1)),
            keep(3, half(nb, db13, 0)), keep(4, half(nb, db13, 1))};
  }
};

Tensor packed_linear_autograd(const Tensor& x, const Tensor& w1, const Tensor& w3,
                              const OptTensor& b1, const OptTensor& b3) {
  if (any_forward_grad(x, w1, w3, b1, b3)) refuse_forward_ad(kPacked);
  if (!records_grad(x, w1, w3, b1, b3)) {
    FFN_OP(op, "packed_linear", "", PackedSig);
    BelowAutograd below;
    return op.call(x, w1, w3, b1, b3);
  }
  refuse_functorch(kPacked);
  return PackedLinearFn::apply(x, w1, w3, given(b1) ? b1 : std::nullopt,
                               given(b3) ? b3 : std::nullopt);
}

Tensor gated_linear_autograd(const Tensor& x, const Tensor& w1, const Tensor& w3,
                             const OptTensor& b1, const OptTensor& b3, Str act, double beta) {
  if (any_forward_grad(x, w1, w3, b1, b3)) refuse_forward_ad(kOp);
  if (!records_grad(x, w1, w3, b1, b3)) {
    FFN_OP(op, "gated_linear", "", GatedLinearSig);
    BelowAutograd below;
    return op.call(x, w1, w3, b1, b3, act, beta);
  }
  refuse_functorch(kOp);
  // gated_linear's errors before any GEMM runs. Under torch.compile with dynamic shapes the sizes
  // are symbolic and cannot be read here: the activation is checked (it needs no tensor), and the
  // shapes by packed_linear's fake kernel.
  auto symbolic = [](const Tensor& t) {
    return t.defined() && t.unsafeGetTensorImpl()->has_symbolic_sizes_strides();
  };
  if (symbolic(x) || symbolic(w1) || symbolic(w3) || (given(b1) && symbolic(*b1)) ||
      (given(b3) && symbolic(*b3)))
    gate_desc(kOp, act, beta, Gate::GFwd);
  else
    check_gated_linear(x, w1, w3, b1, b3, act, beta);
  FFN_OP(op, "packed_linear", "", PackedSig);
  const Tensor h = op.call(x, w1, w3, b1, b3);  // through autograd: both nodes are recorded
  return packed_gating(h, act, beta).view_symint(out_shape_symint(x, w1.sym_size(0)));
}

// The backward op's only caller is packed_linear's autograd (its second order is composite).
Grads3 packed_linear_backward_autograd(const Tensor& dh, const Tensor& x, const Tensor& w1,
                                       const Tensor& w3, const OptTensor& b1,
                                       const OptTensor& b3, std::array<bool, 3> mask) {
  TORCH_CHECK(!records_grad(dh, x, w1, w3, b1, b3),
              "ffn_ext.packed_linear_backward is internal to ffn_ext.gated_linear's autograd and "
              "has no gradient of its own; differentiate ffn_ext.gated_linear");
  BelowAutograd below;
  return packed_linear_backward_op().call(dh, x, w1, w3, b1, b3, mask);
}

// ---- autocast: as torch.nn.functional.linear (lower-precision floating point) -----------------
template <c10::DeviceType DT>
Tensor gated_linear_autocast(const Tensor& x, const Tensor& w1, const Tensor& w3,
                             const OptTensor& b1, const OptTensor& b3, Str act, double beta) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(at::autocast::get_autocast_dispatch_key_from_device_type(DT));
  const at::ScalarType to = at::autocast::get_lower_precision_fp_from_device_type(DT);
  FFN_OP(op, "gated_linear", "", GatedLinearSig);
  using at::autocast::cached_cast;
  return op.call(cached_cast(to, x, DT), cached_cast(to, w1, DT), cached_cast(to, w3, DT),
                 cached_cast(to, b1, DT), cached_cast(to, b3, DT), act, beta);
}

}  // namespace
}  // namespace ffn_ext

TORCH_LIBRARY_IMPL(ffn_ext, CompositeExplicitAutograd, m) {
  m.impl("gated_linear", &ffn_ext::gated_linear);
  m.impl("packed_linear", &ffn_ext::packed_linear);
  m.impl("packed_linear_backward", &ffn_ext::packed_linear_backward);
}

TORCH_LIBRARY_IMPL(ffn_ext, Autograd, m) {
  m.impl("gated_linear", &ffn_ext::gated_linear_autograd);
  m.impl("packed_linear", &ffn_ext::packed_linear_autograd);
  m.impl("packed_linear_backward", &ffn_ext::packed_linear_backward_autograd);
}

TORCH_LIBRARY_IMPL(ffn_ext, AutocastCPU, m) {
  m.impl("gated_linear", &ffn_ext::gated_linear_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(ffn_ext, AutocastCUDA, m) {
  m.impl("gated_linear", &ffn_ext::gated_linear_autocast<c10::DeviceType::CUDA>);
}
