// Geometry shared by the CPU and CUDA engines: whether a launch can treat every operand as one
// flat dense array, and the TensorIterator that describes any other layout (coalesced dimensions,
// byte strides, broadcast operands with stride 0) for the strided path.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace ffn_ext {

// Operand k of a launch (outputs first, then inputs) is stored in the output's dtype, or, where bit
// k of `opmath` is set, may be stored in its op-math type instead (a tensor beta and its gradient
// beside fp16/bf16 activations; see kernels.h). The CUDA engine passes no bits: its row kernel
// takes one dtype.
inline bool operand_dtype_ok(const at::Tensor& t, const at::Tensor& ref, unsigned opmath, int k) {
  return t.scalar_type() == ref.scalar_type() ||
         (((opmath >> k) & 1u) && t.scalar_type() == at::toOpMathType(ref.scalar_type()));
}

// Whether every element of t is the same one value: each dimension that repeats has stride 0 (a
// 0-dim beta, or the gradient of y.sum(), expanded to x's shape). The CPU engine reads such an
// operand as that one value (csrc/cpu/activation_cpu.cpp, operand_masks).
inline bool one_value(const at::Tensor& t) {
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (t.size(i) > 1 && t.stride(i) != 0) return false;
  }
  return true;
}

// True when all operands share the output's dtype (see operand_dtype_ok), sizes and strides and that
// layout is dense and non-overlapping (contiguous, or a permutation of contiguous such as a
// transpose): then element i of every operand sits at flat index i from its data pointer. Inputs
// whose bit is set in `one` hold one value (one_value) and need only share the sizes.
inline bool flat_layout(c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                        unsigned opmath = 0, unsigned one = 0) {
  const at::Tensor& ref = outs[0];
  if (!ref.is_non_overlapping_and_dense()) return false;
  int k = 0;
  auto same = [&](const at::Tensor& t, bool one) {
    return operand_dtype_ok(t, ref, opmath, k++) && t.sizes().equals(ref.sizes()) &&
           (one || t.strides().equals(ref.strides()));
  };
  for (const auto& t : outs) if (!same(t, false)) return false;
  for (size_t i = 0; i < ins.size(); ++i) if (!same(ins[i], (one >> i) & 1u)) return false;
  return true;
}

// Row layout: every operand, its leading dimensions merged, is [rows, d] with unit stride along d
// and a row stride of its own (elements). That is what the halves of a packed [..., 2d] tensor, a
// slice of a wider buffer and most gating operands are: the engines run their dense vector loop
// along each row instead of the element-at-a-time strided path.
struct RowLayout {
  int64_t rows = 0, d = 0;
  int64_t row_stride[8] = {};  // outputs first, then inputs
};

// opmath and one as for flat_layout: an input that holds one value gets row stride 0 and is read
// once by the loop.
inline bool row_layout(c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                       RowLayout& rl, unsigned opmath = 0, unsigned one = 0) {
  const at::Tensor& ref = outs[0];
  if (ref.dim() < 1 || outs.size() + ins.size() > 8) return false;
  rl.d = ref.size(-1);
  if (rl.d == 0) return false;
  rl.rows = ref.numel() / rl.d;
  const int no = static_cast<int>(outs.size());
  int k = 0;
  auto operand = [&](const at::Tensor& t) {
    if (!operand_dtype_ok(t, ref, opmath, k) || !t.sizes().equals(ref.sizes())) return false;
    if (k >= no && ((one >> (k - no)) & 1u)) {
      rl.row_stride[k++] = 0;
      return true;
    }
    if (rl.d > 1 && t.stride(-1) != 1) return false;
    // Leading dimensions of size > 1, innermost first, must nest: stride = inner stride * inner size.
    int64_t inner_stride = -1, inner_size = 1;
    for (int64_t i = t.dim() - 2; i >= 0; --i) {
      if (t.size(i) == 1) continue;
      if (inner_stride < 0) {
        rl.row_stride[k] = t.stride(i);
      } else if (t.stride(i) != inner_stride * inner_size) {
        return false;
      }
      inner_stride = t.stride(i);
      inner_size = t.size(i);
    }
    if (inner_stride < 0) rl.row_stride[k] = rl.d;  // a single row
    ++k;
    return true;
  };
  for (const auto& t : outs) if (!operand(t)) return false;
  for (const auto& t : ins) if (!operand(t)) return false;
  return true;
}

// Any layout: outputs first, then inputs, as TensorIterator orders its operands. Dtypes may differ
// (op-math operands); shapes already agree, so nothing is broadcast or resized here.
inline at::TensorIterator strided_iter(c10::ArrayRef<at::Tensor> outs,
                                       c10::ArrayRef<at::Tensor> ins) {
  at::TensorIteratorConfig config;
  config.check_all_same_dtype(false).resize_outputs(false);
  for (const auto& t : outs) config.add_output(t);
  for (const auto& t : ins) config.add_const_input(t);
  return config.build();
}

}  // namespace ffn_ext
