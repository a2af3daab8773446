// CUDA engine of the element-wise activation and gating ops, and their registration for the CUDA
// dispatch key. The kernels and their launch are in engine.cuh, compiled once per dtype in
// kernels_<dtype>.cu; this file picks the layout and the dtype.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "engine.cuh"
#include "ffn_ext/activation_ops.h"
#include "ffn_ext/dispatch.h"
#include "ffn_ext/gating_ops.h"

namespace ffn_ext::cuda {

// Cached per device (kDeviceCache, engine.cuh).
int sm_count(int device) {
  static std::atomic<int> cache[kDeviceCache];
  const bool cached = device >= 0 && device < kDeviceCache;
  int n = cached ? cache[device].load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    if (cached) cache[device].store(n, std::memory_order_relaxed);
  }
  return n;
}

// FFN_EXT_CUDA_GRID_WAVES (benchmarks): the grid capped at that many blocks per multiprocessor,
// and never past gridDim.x's limit.
int64_t grid_cap(int device) {
  static const int64_t waves = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_GRID_WAVES");
    return s ? std::clamp<int64_t>(std::atoll(s), 0, int64_t(1) << 20) : int64_t(0);
  }();
  return waves > 0 ? std::min(kMaxGridX, waves * sm_count(device)) : kMaxGridX;
}

// FFN_EXT_CUDA_TILES=0 and FFN_EXT_CUDA_STRIDED_UNROLL=n (benchmarks): the layouts of the tile
// kernel go to the strided kernel, and the strided kernel's threads take at most n elements (1, 2
// or kStridedUnroll), so that one build can be timed against the kernels it replaced.
bool tiles_enabled() {
  static const bool v = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_TILES");
    return s == nullptr || s[0] != '0';
  }();
  return v;
}

int strided_unroll() {
  static const int v = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_STRIDED_UNROLL");
    const int n = s ? std::atoi(s) : kStridedUnroll;
    return n >= kStridedUnroll ? kStridedUnroll : n >= 2 ? 2 : 1;
  }();
  return v;
}

bool exact_lowp() {
  static const bool v = [] {
    const char* s = std::getenv("FFN_EXT_CUDA_EXACT_LOWP");
    return s != nullptr && s[0] != '\0' && s[0] != '0';
  }();
  return v;
}

namespace {

struct CudaEngine {
  static void run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins) {
    const int64_t n = outs[0].numel();
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(outs[0].device());
    const int device = outs[0].device().index();
    const CudaDevice dev{c10::cuda::getCurrentCUDAStream(device), device};
    const Launch l = plan_launch(outs, ins);
    dispatch_float(outs[0].scalar_type(), [&](auto tag) { run_typed<decltype(tag)>(d, l, dev); });
  }
  // The row kernel has no in-loop sum of a tensor beta's gradient yet (ActivationOps::beta_gradient
  // then stores it per element and sums it with ATen).
  static at::Tensor run_summed(const KernelDesc&, c10::ArrayRef<at::Tensor>,
                               c10::ArrayRef<at::Tensor>, int64_t) {
    return at::Tensor();
  }
};

}  // namespace
}  // namespace ffn_ext::cuda

TORCH_LIBRARY_IMPL(ffn_ext, CUDA, m) {
  ffn_ext::register_activation_ops<ffn_ext::cuda::CudaEngine>(m);
  ffn_ext::register_gating_ops<ffn_ext::cuda::CudaEngine>(m);
}
