// The one dtype switch of the engines: calls fn(scalar_t{}) for the four supported dtypes. Light
// (c10 only) so that the AVX2 translation unit can use it. Dtypes are checked with a user-facing
// message before any engine runs; reaching the default here is a bug.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

namespace ffn_ext {

template <class Fn>
inline void dispatch_float(c10::ScalarType t, Fn&& fn) {
  switch (t) {
    case c10::ScalarType::Float: return fn(float{});
    case c10::ScalarType::Double: return fn(double{});
    case c10::ScalarType::Half: return fn(c10::Half{});
    case c10::ScalarType::BFloat16: return fn(c10::BFloat16{});
    default: TORCH_INTERNAL_ASSERT(false, "ffn_ext: unchecked dtype ", t, " reached a kernel");
  }
}

}  // namespace ffn_ext
