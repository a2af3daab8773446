// The gating ops y = act(gate) * up (GLU, GEGLU, SwiGLU, ReGLU, bilinear), device-generic like
// activation_ops.h: check, allocate, hand a KernelDesc to the device's Engine.
//
// Two layouts, both without copies:
//  * two tensors gate and up of one shape, any strides (act_and_mul*);
//  * one packed tensor h [..., 2d] with gate = h[..., :d] and up = h[..., d:] (act_and_mul_packed*),
//    whose gradient comes back as one packed [..., 2d] tensor, so that the projection's backward
//    upstream is a single GEMM.
// The halves of a packed tensor are views (row stride 2d or more); the engines take them through
// their row or strided paths.
#pragma once

#include <ATen/MemoryOverlap.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/ScalarType.h>
#include <c10/core/TensorImpl.h>
#include <c10/util/SmallVector.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "ffn_ext/checks.h"
#include "ffn_ext/kernels.h"

namespace ffn_ext {

// The activation names of the gating ops, in the order the error message lists them.
inline KernelDesc gate_desc(std::string_view op, std::string_view activation, double beta, Gate g) {
  KernelDesc d;
  d.gate = g;
  if (activation == "sigmoid") {
    d.act = Activation::Sigmoid;
  } else if (activation == "gelu") {
    d.act = Activation::GeluErf;
  } else if (activation == "gelu_tanh") {
    d.act = Activation::GeluTanh;
  } else if (activation == "silu") {
    d.act = Activation::Swish;
    d.beta = 1.0;
  } else if (activation == "swish") {
    d.act = Activation::Swish;
    d.beta = beta;
  } else if (activation == "relu") {
    d.act = Activation::Relu;
  } else if (activation == "identity") {
    d.act = Activation::Identity;
  } else {
    TORCH_CHECK_VALUE(false, "ffn_ext.", op,
                      ": activation must be one of 'sigmoid', 'gelu', 'gelu_tanh', 'silu', "
                      "'swish', 'relu', 'identity', got '",
                      std::string(activation), "'");
  }
  TORCH_CHECK_VALUE(activation == "swish" || beta == 1.0, "ffn_ext.", op,
                    ": beta is used only with activation='swish', got beta=", std::to_string(beta),
                    " with activation='", std::string(activation), "'");
  return d;
}

// gate and up of one gating op: float, one device, one dtype, one shape.
inline void check_gate_up(std::string_view op, const at::Tensor& gate, const at::Tensor& up) {
  check_float_tensor(op, "gate", gate);
  check_like(op, "up", up, gate, "gate");
}

// A packed [..., 2d] tensor: at least 1-dim, an even last dimension of at least 2.
inline int64_t check_packed(std::string_view op, const at::Tensor& h) {
  check_float_tensor(op, "h", h);
  TORCH_CHECK_VALUE(h.dim() >= 1, "ffn_ext.", op,
                    ": h must have a last dimension [..., 2d] to split into gate and up, got a "
                    "0-dim tensor");
  const int64_t n2 = h.size(-1);
  TORCH_CHECK_VALUE(n2 % 2 == 0 && n2 >= 2, "ffn_ext.", op,
                    ": the last dimension of h must be even and at least 2 ([..., 2d]: gate = "
                    "h[..., :d], up = h[..., d:]), got ",
                    std::to_string(n2), " (h of shape ", shape_str(h.sizes()), ")");
  return n2 / 2;
}

inline std::vector<int64_t> half_last(c10::IntArrayRef s) {
  std::vector<int64_t> v(s.begin(), s.end());
  v.back() /= 2;
  return v;
}

// A tensor shaped like h's halves ([..., d]) for a gradient or an output argument.
inline void check_half(std::string_view op, std::string_view arg, const at::Tensor& t,
                       const at::Tensor& h) {
  check_same_kind(op, arg, t, "h", h);
  const auto want = half_last(h.sizes());
  TORCH_CHECK_VALUE(t.sizes().equals(want), "ffn_ext.", op, ": ", arg,
                    " must have shape h.shape[:-1] + [h.shape[-1] / 2] = ", shape_str(want),
                    ", got ", shape_str(t.sizes()));
}

// t as `rows` rows of its last dimension, `stride` elements apart: when its last dimension is
// unit-strided and the others collapse into one.
inline bool as_rows(const at::Tensor& t, int64_t& rows, int64_t& stride) {
  if (t.stride(-1) != 1 && t.size(-1) > 1) return false;
  rows = 1;
  stride = 0;
  for (int64_t i = t.dim() - 2; i >= 0; --i) {
    if (t.size(i) == 1) continue;
    if (rows > 1 && t.stride(i) != stride * rows) return false;
    if (rows == 1) stride = t.stride(i);
    rows *= t.size(i);
  }
  return true;
}

// floor(a / b) for b > 0.
inline int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// Whether t may have two elements at one memory location. ATen answers Yes for a zero stride and
// No for dense tensors, TooHard otherwise (any view that is not dense, such as y[:, j:k] or rows
// closer together than their length). For those: with its dimensions ordered by stride, t cannot
// overlap itself if each stride steps past everything the smaller ones span. Exact for rows of a
// common stride; conservative (may refuse) for interleaved dimensions, which views of one tensor
// do not produce.
inline bool may_overlap_itself(const at::Tensor& t) {
  const at::MemOverlap o = at::has_internal_overlap(t);
  if (o != at::MemOverlap::TooHard) return o == at::MemOverlap::Yes;
  c10::SmallVector<std::pair<int64_t, int64_t>, 8> dims;  // (stride, size) of sizes > 1
  for (int64_t i = 0; i < t.dim(); ++i)
    if (t.size(i) > 1) dims.emplace_back(t.stride(i), t.size(i));
  std::sort(dims.begin(), dims.end());
  int64_t span = 0;  // the largest offset the dimensions before reach
  for (const auto& [stride, size] : dims) {
    if (stride <= span) return true;
    span += (size - 1) * stride;
  }
  return false;
}

// Whether out (h's halves' shape and h's dtype) may write an element that h reads, after ATen's
// overlap test found them sharing memory or could not tell (TooHard: one of them not dense).
// Exact for rows of a common stride (slices of one buffer); for other layouts, any intersection of
// the two address ranges counts. out = h's gate or up half itself (h's strides and one of the
// halves' offsets) is no overlap when h does not overlap itself: each element is read before its
// own location is written, by the same thread.
inline bool out_may_overlap(const at::Tensor& out, const at::Tensor& h) {
  // (TooHard is also ATen's answer for tensors of different storages, before it compares them.)
  if (out.numel() == 0 || h.numel() == 0 || !out.storage().is_alias_of(h.storage())) return false;
  auto extent = [](const at::Tensor& t) {
    int64_t e = 1;
    for (int64_t i = 0; i < t.dim(); ++i) e += (t.size(i) - 1) * t.stride(i);
    return e;
  };
  const int64_t o0 = out.storage_offset(), h0 = h.storage_offset();  // elements of one dtype
  if (o0 + extent(out) <= h0 || h0 + extent(h) <= o0) return false;
  if (out.strides().equals(h.strides()) &&
      (o0 == h0 || o0 == h0 + out.size(-1) * h.stride(-1)) && !may_overlap_itself(h))
    return false;  // a half of h, whatever h's layout
  int64_t ro, so, rh, sh;
  if (!as_rows(out, ro, so) || !as_rows(h, rh, sh) || ro != rh || (ro > 1 && so != sh)) return true;
  // Row r of out overlaps row r - k of h iff -d < delta + k S < 2d, for |k| < rows.
  const int64_t d = out.size(-1), delta = o0 - h0, s = ro > 1 ? so : 1, kmax = ro - 1;
  const int64_t lo = std::max(-kmax, floor_div(-d - delta, s) + 1);
  const int64_t hi = std::min(kmax, -floor_div(delta - 2 * d, s) - 1);
  if (lo > hi) return false;
  return !(lo == 0 && hi == 0 && (delta == 0 || delta == d));
}

// out= must not write one location twice (an expanded tensor, or overlapping rows: ATen's own
// out= check lets the latter through) or write where h is read: refused,
// with the op's name, before any kernel runs. (PyTorch's own out= functions let an overlap they
// cannot prove through, where out = h[:, 1:d+1] gave errors up to 0.245, and refuse h's own gate
// half as out when both are dense but not when h has several rows of a wider buffer.)
inline void check_out_memory(std::string_view op, const at::Tensor& out, const at::Tensor& h) {
  TORCH_CHECK(!may_overlap_itself(out), "ffn_ext.", op,
              ": out has elements that share one memory location (strides ",
              shape_str(out.strides()), " for shape ", shape_str(out.sizes()),
              ": an expanded tensor, or rows closer together than their length); pass a tensor ",
              "with a location of its own for each element");
  const at::MemOverlapStatus st = at::get_overlap_status(out, h);
  TORCH_CHECK(st == at::MemOverlapStatus::No ||
                  (st != at::MemOverlapStatus::Full && !out_may_overlap(out, h)),
              "ffn_ext.", op, ": out shares memory with h, which is read while out is written ",
              "(out: shape ", shape_str(out.sizes()), ", strides ", shape_str(out.strides()),
              ", offset ", std::to_string(out.storage_offset()), "; h: shape ",
              shape_str(h.sizes()), ", strides ", shape_str(h.strides()), ", offset ",
              std::to_string(h.storage_offset()), "); pass an out that does not overlap h, or ",
              "h's gate or up half itself");
}

// An inference tensor (made under torch.inference_mode()) is written only in inference mode, as
// PyTorch refuses for its own out= functions. Checked here, before the kernel writes out: the
// autograd kernel's version bump raised PyTorch's error after the write, and with h an inference
// tensor too no autograd kernel runs, and nothing refused it.
inline void check_out_inference(std::string_view op, const at::Tensor& out) {
  TORCH_CHECK(!out.is_inference() || c10::InferenceMode::is_enabled(), "ffn_ext.", op,
              ": out is an inference tensor (made under torch.inference_mode()), which can be "
              "written only under torch.inference_mode(); call the op there, or pass out.clone()");
}

// h[..., offset : offset + d]: a view built as ATen's as_strided builds one (a VIEW TensorImpl on
// h's storage), for the engines' operands. h.narrow costs three dispatcher calls (narrow, slice,
// as_strided): act_and_mul_packed took 1.59 us a call with them, 1.01 us with these views, on a
// 2-core x86 host (CPU tensor of 16 elements, so the kernel's work was nothing; torch 2.14.1,
// 2026-11-26). The view carries no autograd metadata and never leaves the op.
inline at::Tensor last_dim_slice(const at::Tensor& h, int64_t offset, int64_t d) {
  at::Tensor v = at::detail::make_tensor<c10::TensorImpl>(
      c10::TensorImpl::VIEW, c10::Storage(h.storage()), h.key_set(), h.dtype());
  c10::SmallVector<int64_t, 8> sizes(h.sizes().begin(), h.sizes().end());
  sizes.back() = d;
  v.unsafeGetTensorImpl()->set_sizes_and_strides(sizes, h.strides());
  v.unsafeGetTensorImpl()->set_storage_offset(h.storage_offset() + offset * h.stride(-1));
  return v;
}

template <class Engine>
struct GatingOps {
  // ---- two tensors ----------------------------------------------------------------------------
  static at::Tensor act_and_mul(const at::Tensor& gate, const at::Tensor& up,
                                c10::string_view activation, double beta) {
    constexpr std::string_view op = "act_and_mul";
    check_gate_up(op, gate, up);
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GFwd);
    at::Tensor out = at::empty_like(gate);
    Engine::run(d, {out}, {gate, up});
    return out;
  }
  static std::tuple<at::Tensor, at::Tensor> act_and_mul_backward(const at::Tensor& grad,
                                                                 const at::Tensor& gate,
                                                                 const at::Tensor& up,
                                                                 c10::string_view activation,
                                                                 double beta) {
    constexpr std::string_view op = "act_and_mul_backward";
    check_gate_up(op, gate, up);
    check_like(op, "grad", grad, gate, "gate");
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GBwd);
    at::Tensor dg = at::empty_like(gate), du = at::empty_like(up);
    Engine::run(d, {dg, du}, {grad, gate, up});
    return {dg, du};
  }
  static std::tuple<at::Tensor, at::Tensor, at::Tensor> act_and_mul_double_backward(
      const at::Tensor& gg_gate, const at::Tensor& gg_up, const at::Tensor& grad,
      const at::Tensor& gate, const at::Tensor& up, c10::string_view activation, double beta) {
    constexpr std::string_view op = "act_and_mul_double_backward";
    check_gate_up(op, gate, up);
    for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"grad", &grad},
                                  {"grad_grad_gate", &gg_gate},
                                  {"grad_grad_up", &gg_up}}) {
      check_like(op, name, *t, gate, "gate");
    }
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GBwd2);
    at::Tensor d_grad = at::empty_like(grad), d_gate = at::empty_like(gate),
               d_up = at::empty_like(up);
    Engine::run(d, {d_grad, d_gate, d_up}, {gg_gate, gg_up, grad, gate, up});
    return {d_grad, d_gate, d_up};
  }

  // ---- packed [..., 2d] -----------------------------------------------------------------------
  static void packed_forward_into(const at::Tensor& h, const at::Tensor& out, const KernelDesc& d,
                                  int64_t half) {
    Engine::run(d, {out}, {last_dim_slice(h, 0, half), last_dim_slice(h, half, half)});
  }
  static at::Tensor act_and_mul_packed(const at::Tensor& h, c10::string_view activation,
                                       double beta) {
    constexpr std::string_view op = "act_and_mul_packed";
    const int64_t half = check_packed(op, h);
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GFwd);
    at::Tensor out = at::empty(half_last(h.sizes()), h.options());
    packed_forward_into(h, out, d, half);
    return out;
  }
  static at::Tensor& act_and_mul_packed_out(const at::Tensor& h, c10::string_view activation,
                                            double beta, at::Tensor& out) {
    constexpr std::string_view op = "act_and_mul_packed";
    const int64_t half = check_packed(op, h);
    check_half(op, "out", out, h);
    check_out_memory(op, out, h);
    check_out_inference(op, out);
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GFwd);
    packed_forward_into(h, out, d, half);
    return out;
  }
  static at::Tensor act_and_mul_packed_backward(const at::Tensor& grad, const at::Tensor& h,
                                                c10::string_view activation, double beta) {
    constexpr std::string_view op = "act_and_mul_packed_backward";
    const int64_t half = check_packed(op, h);
    check_half(op, "grad", grad, h);
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GBwd);
    at::Tensor dh = at::empty(h.sizes(), h.options());  // contiguous: one GEMM operand upstream
    Engine::run(d, {last_dim_slice(dh, 0, half), last_dim_slice(dh, half, half)},
                {grad, last_dim_slice(h, 0, half), last_dim_slice(h, half, half)});
    return dh;
  }
  static std::tuple<at::Tensor, at::Tensor> act_and_mul_packed_double_backward(
      const at::Tensor& gg_h, const at::Tensor& grad, const at::Tensor& h,
      c10::string_view activation, double beta) {
    constexpr std::string_view op = "act_and_mul_packed_double_backward";
    const int64_t half = check_packed(op, h);
    check_half(op, "grad", grad, h);
    check_like(op, "grad_grad_h", gg_h, h, "h");
    const KernelDesc d = gate_desc(op, activation, beta, Gate::GBwd2);
    at::Tensor d_grad = at::empty(grad.sizes(), grad.options());
    at::Tensor d_h = at::empty(h.sizes(), h.options());
    Engine::run(d, {d_grad, last_dim_slice(d_h, 0, half), last_dim_slice(d_h, half, half)},
                {last_dim_slice(gg_h, 0, half), last_dim_slice(gg_h, half, half), grad,
                 last_dim_slice(h, 0, half), last_dim_slice(h, half, half)});
    return {d_grad, d_h};
  }
};

template <class Engine, class Lib>
void register_gating_ops(Lib& m) {
  using O = GatingOps<Engine>;
  m.impl("act_and_mul", &O::act_and_mul);
  m.impl("act_and_mul_backward", &O::act_and_mul_backward);
  m.impl("act_and_mul_double_backward", &O::act_and_mul_double_backward);
  m.impl("act_and_mul_packed", &O::act_and_mul_packed);
  m.impl("act_and_mul_packed.out", &O::act_and_mul_packed_out);
  m.impl("act_and_mul_packed_backward", &O::act_and_mul_packed_backward);
  m.impl("act_and_mul_packed_double_backward", &O::act_and_mul_packed_double_backward);
}

}  // namespace ffn_ext
