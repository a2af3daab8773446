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

// Element by element: |got - want| <= tol * scale, scale |want| unless given (the size of the
// terms of a sum that cancels, or a condition number times |want|). A bound on the largest
// error against the largest value would let a tail such as GELU's for x < -5, which is below
// 1e-7 there, be entirely wrong.
void check(const std::string& what, const at::Tensor& got, const at::Tensor& want, double tol,
           at::Tensor scale = {}) {
  if (!scale.defined()) scale = want.abs();
  const bool same = got.sizes() == want.sizes();
  const at::Tensor err = (got.to(at::kDouble) - want).abs();
  const double worst = same ? (err / (tol * scale).clamp_min(1e-300)).max().item<double>() : INFINITY;
  const bool ok = same && (err <= tol * scale).all().item<bool>();
  std::printf("%s %s: largest error %.3g of its tolerance (%.1e relative)\n", ok ? "PASS" : "FAIL",
              what.c_str(), tol > 0 ? worst : err.max().item<double>(), tol);
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
  auto cdf = [](const at::Tensor& t) { return 0.5 * at::erfc(-t / std::sqrt(2.0)); };
  auto pdf = [](const at::Tensor& t) { return at::exp(-0.5 * t * t) / std::sqrt(2.0 * M_PI); };
  // GELU's tail is ill-conditioned: a relative change of x moves GELU(x) by up to |x f'(x) / f(x)|
  // times as much (about x^2), and the float rounding of x / sqrt 2 (or u) inside differs between
  // any two ways of writing it. Each is checked against |f| + |x f'| (conftest.py's sensitivity).
  auto sensitivity = [](const at::Tensor& t, const at::Tensor& f, const at::Tensor& df) {
    return f.abs() + (t * df).abs();
  };
  check("gelu fp64", gelu.call(x, "none"), x * cdf(x), 1e-14, sensitivity(x, x * cdf(x), cdf(x) + x * pdf(x)));
  // float32: the reference at the rounded inputs
  const at::Tensor xf = x.to(at::kFloat), xf64 = xf.to(at::kDouble);
  check("gelu fp32", gelu.call(xf, "none"), xf64 * cdf(xf64), 1e-6,
        sensitivity(xf64, xf64 * cdf(xf64), cdf(xf64) + xf64 * pdf(xf64)));
  // tanh form: 0.5 x (1 + tanh u) = x sigma(2u), which does not cancel for x << 0
  const at::Tensor u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  const at::Tensor du = std::sqrt(2.0 / M_PI) * (1 + 3 * 0.044715 * x * x);
  const at::Tensor s2u = at::sigmoid(2.0 * u);
  check("gelu tanh fp64", gelu.call(x, "tanh"), x * s2u, 1e-14,
        sensitivity(x, x * s2u, s2u + 2.0 * x * s2u * at::sigmoid(-2.0 * u) * du));
  // Phi + x phi cancels near its root (x = -0.75): against the size of the two terms
  check("gelu_backward fp64", gelu_bwd.call(at::ones_like(x), x, "none"), cdf(x) + x * pdf(x), 1e-14,
        cdf(x) + (x * pdf(x)).abs());
  check("silu fp64", silu.call(x), x / (1 + at::exp(-x)), 1e-14);
  check("swish beta=2 fp64", swish.call(x, 2.0), x / (1 + at::exp(-2.0 * x)), 1e-14);
  check("relu fp64", relu.call(x), at::clamp_min(x, 0), 0.0);
  // Gating on a packed [rows, 2d] tensor: silu(h[:, :d]) * h[:, d:].
  auto packed = d.findSchemaOrThrow("ffn_ext::act_and_mul_packed", "")
                    .typed<at::Tensor(const at::Tensor&, c10::string_view, double)>();
  const at::Tensor h = at::linspace(-6, 6, 8 * 34, at::kDouble).reshape({8, 34});
  const at::Tensor hg = h.narrow(1, 0, 17), hu = h.narrow(1, 17, 17);
  check("act_and_mul_packed silu fp64", packed.call(h, "silu", 1.0), hg / (1 + at::exp(-hg)) * hu, 1e-14);
  const at::Tensor hf = h.to(at::kFloat), hf64 = hf.to(at::kDouble);
  const at::Tensor hfg = hf64.narrow(1, 0, 17), hfu = hf64.narrow(1, 17, 17);
  // sigmoid's relative condition number is |g| sigma(-g) <= |g|
  check("act_and_mul_packed sigmoid fp32", packed.call(hf, "sigmoid", 1.0), hfu / (1 + at::exp(-hfg)), 1e-6,
        (hfu / (1 + at::exp(-hfg))).abs() * (1 + hfg.abs()));
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
