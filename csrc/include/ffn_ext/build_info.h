// Facts fixed at build time, passed in as compile definitions by setup.py and CMakeLists.txt
// (each has a fallback so that a bare compile still works). ffn_ext.info() and the import-time
// version check read them through the ffn_ext::_build_info op.
#pragma once

#include <string>

#ifndef FFN_EXT_TORCH_VERSION
#define FFN_EXT_TORCH_VERSION "unknown"
#endif
#ifndef FFN_EXT_CUDA_ARCHS
#define FFN_EXT_CUDA_ARCHS ""
#endif
#ifndef FFN_EXT_BUILD_CUDA_VERSION
#define FFN_EXT_BUILD_CUDA_VERSION ""
#endif

namespace ffn_ext {

inline std::string build_info_string() {
  std::string s;
  s += "torch_version=" FFN_EXT_TORCH_VERSION "\n";
#ifdef FFN_EXT_WITH_CUDA
  s += "with_cuda=1\n";
#else
  s += "with_cuda=0\n";
#endif
  s += "cuda_version=" FFN_EXT_BUILD_CUDA_VERSION "\n";
  s += "cuda_archs=" FFN_EXT_CUDA_ARCHS "\n";
  return s;
}

}  // namespace ffn_ext
