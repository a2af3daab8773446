// C++ use of ffn_ext: link libffn_ext (its TORCH_LIBRARY registrations run at load) and call the
// ops through the dispatcher, checking them against the float64 formulas of REFERENCE.md written
// here with ATen ops. Run by ctest; prints "N passed, M failed".
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace {

int passed = 0, failed = 0;

void check(const std::string& what, const at::Tensor& got, const at::Tensor& want, double tol) {
  const double err = (got.to(at::kDouble) - want).abs().max().item<double>();
  const double scale = want.abs().max().item<double>() + 1.0;
  const bool ok = err <= tol * scale && got.sizes() == want.sizes();
  std::printf("%s %s: max error %.3e (tolerance %.1e)\n", ok ? "PASS" : "FAIL", what.c_str(), err, tol * scale);
  (ok ? passed : failed) += 1;
}

}  // namespace

int main() {
  auto& d = c10::Dispatcher::singleton();
  auto gelu = d.findSchemaOrThrow("ffn_ext::gelu", "").typed<at::Tensor(const at::Tensor&, c10::string_view)>();
  auto gelu_bwd = d.findSchemaOrThrow("ffn_ext::gelu_backward", "")
                      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view)>();
  auto silu = d.findSchemaOrThrow("ffn_ext::silu", "").typed<at::Tensor(const at::Tensor&)>();
  auto relu = d.findSchemaOrThrow("ffn_ext::relu", "").typed<at::Tensor(const at::Tensor&)>();
  auto swish = d.findSchemaOrThrow("ffn_ext::swish", "").typed<at::Tensor(const at::Tensor&, double)>();

  const at::Tensor x = at::linspace(-8, 8, 4001, at::kDouble);
  const at::Tensor phi_cdf = 0.5 * at::erfc(-x / std::sqrt(2.0));
  const at::Tensor phi_pdf = at::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
  check("gelu fp64", gelu.call(x, "none"), x * phi_cdf, 1e-14);
  check("gelu fp32", gelu.call(x.to(at::kFloat), "none"), x * phi_cdf, 1e-6);
  const at::Tensor u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  check("gelu tanh fp64", gelu.call(x, "tanh"), 0.5 * x * (1 + at::tanh(u)), 1e-14);
  check("gelu_backward fp64", gelu_bwd.call(at::ones_like(x), x, "none"), phi_cdf + x * phi_pdf, 1e-14);
  check("silu fp64", silu.call(x), x / (1 + at::exp(-x)), 1e-14);
  check("swish beta=2 fp64", swish.call(x, 2.0), x / (1 + at::exp(-2.0 * x)), 1e-14);
  check("relu fp64", relu.call(x), at::clamp_min(x, 0), 0.0);
  // Gating on a packed [rows, 2d] tensor: silu(h[:, :d]) * h[:, d:].
  auto packed = d.findSchemaOrThrow("ffn_ext::act_and_mul_packed", "")
                    .typed<at::Tensor(const at::Tensor&, c10::string_view, double)>();
  const at::Tensor h = at::linspace(-6, 6, 8 * 34, at::kDouble).reshape({8, 34});
  const at::Tensor hg = h.narrow(1, 0, 17), hu = h.narrow(1, 17, 17);
  check("act_and_mul_packed silu fp64", packed.call(h, "silu", 1.0), hg / (1 + at::exp(-hg)) * hu, 1e-14);
  check("act_and_mul_packed sigmoid fp32", packed.call(h.to(at::kFloat), "sigmoid", 1.0),
        hu / (1 + at::exp(-hg)), 1e-6);
  bool threw = false;
  try {
    gelu.call(x, "fast");
  } catch (const c10::Error& e) {
    threw = std::string(e.what()).find("ffn_ext.gelu: approximate must be one of 'none', 'tanh', got 'fast'") != std::string::npos;
  }
  std::printf("%s unknown approximate is refused\n", threw ? "PASS" : "FAIL");
  (threw ? passed : failed) += 1;
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
