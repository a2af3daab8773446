// Geometry shared by the CPU and CUDA engines: whether a launch can treat every operand as one
// flat dense array, and the TensorIterator that describes any other layout (coalesced dimensions,
// byte strides, broadcast operands with stride 0) for the strided path.
#pragma once

#include <ATen/TensorIterator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace ffn_ext {

// True when all operands share the output's dtype, sizes and strides and that layout is dense and
// non-overlapping (contiguous, or a permutation of contiguous such as a transpose): then element i
// of every operand sits at flat index i from its data pointer.
inline bool flat_layout(c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins) {
  const at::Tensor& ref = outs[0];
  if (!ref.is_non_overlapping_and_dense()) return false;
  auto same = [&](const at::Tensor& t) {
    return t.scalar_type() == ref.scalar_type() && t.sizes().equals(ref.sizes()) &&
           t.strides().equals(ref.strides());
  };
  for (const auto& t : outs) if (!same(t)) return false;
  for (const auto& t : ins) if (!same(t)) return false;
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
