// The CUDA engine run on the CPU, for tests (host_emulation.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <vector>

#include "ffn_ext/kernels.h"  // KernelDesc

namespace ffn_ext::cuda {

// FFN_EXT_EMULATE_CUDA=1 (read on every call, so that a test can set it for a while).
bool emulate_cuda();
// How many launches of the row, tile and strided kernels the emulation has run in this process.
std::vector<int64_t> emulated_launches();
// Engine::run's contract (activation_ops.h), through the CUDA engine's launch logic and kernels,
// for the functors emulated (host_emulation.cpp); false, computing nothing, for the others.
bool emulated_run(const KernelDesc& d, c10::ArrayRef<at::Tensor> outs,
                  c10::ArrayRef<at::Tensor> ins);

}  // namespace ffn_ext::cuda
