// Input checks shared by every op. Each message names the op, the argument, what was expected and
// what arrived, and uses Python's spelling (torch.float32, [2, 3]) because that is what users read.
// ffn_ext/_fake.py repeats the same checks with the same texts for the fake (meta) kernels; the
// tests match both.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cctype>
#include <string>
#include <string_view>

namespace ffn_ext {

inline std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "torch.float32";
    case c10::ScalarType::Double: return "torch.float64";
    case c10::ScalarType::Half: return "torch.float16";
    case c10::ScalarType::BFloat16: return "torch.bfloat16";
    case c10::ScalarType::Long: return "torch.int64";
    case c10::ScalarType::Int: return "torch.int32";
    case c10::ScalarType::Short: return "torch.int16";
    case c10::ScalarType::Char: return "torch.int8";
    case c10::ScalarType::Byte: return "torch.uint8";
    case c10::ScalarType::Bool: return "torch.bool";
    case c10::ScalarType::ComplexHalf: return "torch.complex32";
    case c10::ScalarType::ComplexFloat: return "torch.complex64";
    case c10::ScalarType::ComplexDouble: return "torch.complex128";
    default: {
      // Every other dtype's Python name is ATen's in lower case (Float8_e4m3fn, UInt16, QInt8,
      // Bits8, BComplex32: torch.float8_e4m3fn, torch.uint16, ...; tests/test_errors.py checks all).
      std::string name = c10::toString(t);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return "torch." + name;
    }
  }
}

// Numbers are formatted with std::to_string, never with an ostream: an ostream's number formatting
// instantiated in this library crashed (SIGSEGV in std::codecvt) when the library was built by
// GCC 13 and ran beside an older libstdc++ (the GPU machine, 2026-11-26). Only strings are handed
// to c10::str (TORCH_CHECK's message).
inline std::string shape_str(c10::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

inline bool is_supported_float(c10::ScalarType t) {
  return t == c10::ScalarType::Float || t == c10::ScalarType::Double ||
         t == c10::ScalarType::Half || t == c10::ScalarType::BFloat16;
}

// A layout as Python prints it (torch.sparse_coo), as the Python checks' texts say it.
inline std::string layout_name(c10::Layout l) {
  switch (l) {
    case c10::kStrided: return "torch.strided";
    case c10::kSparse: return "torch.sparse_coo";
    case c10::kSparseCsr: return "torch.sparse_csr";
    case c10::kSparseCsc: return "torch.sparse_csc";
    case c10::kSparseBsr: return "torch.sparse_bsr";
    case c10::kSparseBsc: return "torch.sparse_bsc";
    case c10::kMkldnn: return "torch._mkldnn";
    case c10::kJagged: return "torch.jagged";
    default: return c10::str(l);
  }
}

// A strided (dense or not) tensor: the error of the other layouts, which the ops refuse.
inline void check_strided(std::string_view op, std::string_view arg, const at::Tensor& t) {
  TORCH_CHECK(t.layout() == c10::kStrided, "ffn_ext.", op, ": ", arg,
              " must be a strided (dense) tensor, got layout ", layout_name(t.layout()));
}

// A dense or strided floating-point tensor in one of the four supported dtypes.
inline void check_float_tensor(std::string_view op, std::string_view arg, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), "ffn_ext.", op, ": ", arg, " must be a tensor, got None");
  check_strided(op, arg, t);
  TORCH_CHECK_TYPE(is_supported_float(t.scalar_type()), "ffn_ext.", op, ": ", arg,
                   " must be a floating-point tensor (torch.float32, torch.float64, "
                   "torch.float16 or torch.bfloat16), got ",
                   dtype_name(t.scalar_type()));
}

inline void check_same_device(std::string_view op, std::string_view arg, const at::Tensor& t,
                              std::string_view ref_arg, const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), "ffn_ext.", op, ": ", arg,
              " must be on the same device as ", ref_arg, " (", ref.device(), "), got ",
              t.device());
}

inline void check_same_dtype(std::string_view op, std::string_view arg, const at::Tensor& t,
                             std::string_view ref_arg, const at::Tensor& ref) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), "ffn_ext.", op, ": ", arg,
                   " must have the same dtype as ", ref_arg, " (", dtype_name(ref.scalar_type()),
                   "), got ", dtype_name(t.scalar_type()));
}

inline void check_same_shape(std::string_view op, std::string_view arg, const at::Tensor& t,
                             std::string_view ref_arg, const at::Tensor& ref) {
  TORCH_CHECK_VALUE(t.sizes().equals(ref.sizes()), "ffn_ext.", op, ": ", arg,
                    " must have the same shape as ", ref_arg, ", got ", shape_str(t.sizes()),
                    " and ", shape_str(ref.sizes()));
}

// A float tensor on ref's device with ref's dtype (ffn_ext/_checks.py: check_same_kind).
inline void check_same_kind(std::string_view op, std::string_view arg, const at::Tensor& t,
                            std::string_view ref_arg, const at::Tensor& ref) {
  check_float_tensor(op, arg, t);
  check_same_device(op, arg, t, ref_arg, ref);
  check_same_dtype(op, arg, t, ref_arg, ref);
}

// A second tensor that pairs element-wise with ref (x by default; a gradient): float, same
// device, dtype, shape.
inline void check_like(std::string_view op, std::string_view arg, const at::Tensor& t,
                       const at::Tensor& ref, std::string_view ref_arg = "x") {
  check_same_kind(op, arg, t, ref_arg, ref);
  check_same_shape(op, arg, t, ref_arg, ref);
}

// beta of a learnable swish: 0-dim (one beta) or [x.size(-1)] (one per channel), float, x's device.
// Its dtype may differ from x's: it is used in op-math precision either way.
inline void check_beta(std::string_view op, std::string_view arg, const at::Tensor& beta,
                       const at::Tensor& x) {
  check_float_tensor(op, arg, beta);
  check_same_device(op, arg, beta, "x", x);
  const bool scalar = beta.dim() == 0;
  const bool per_channel = beta.dim() == 1 && x.dim() >= 1 && beta.size(0) == x.size(-1);
  if (scalar || per_channel) return;
  // The message is built in plain statements (no braced temporaries inside the check macro).
  const std::string expected =
      x.dim() >= 1 ? "[" + std::to_string(x.size(-1)) + "]" : std::string("(none: x is 0-dim)");
  TORCH_CHECK_VALUE(false, "ffn_ext.", op, ": ", arg, " must be 0-dim or have shape [x.shape[-1]] = ",
                    expected, ", got shape ", shape_str(beta.sizes()), " for x of shape ",
                    shape_str(x.sizes()));
}

enum class GeluApprox { None, Tanh };

inline GeluApprox parse_approximate(std::string_view op, std::string_view approximate) {
  if (approximate == "none") return GeluApprox::None;
  if (approximate == "tanh") return GeluApprox::Tanh;
  TORCH_CHECK_VALUE(false, "ffn_ext.", op, ": approximate must be one of 'none', 'tanh', got '",
                    approximate, "'");
  return GeluApprox::None;
}

}  // namespace ffn_ext
