// The CUDA side of benchmarks/explore_launch_bounds.py (an experiment, not a suite member): the
// engine's own row kernel (csrc/cuda/engine.cuh: row_kernel, row_geometry, the functors of
// kernels.h, FastFloat for fp16/bf16) instantiated with several __launch_bounds__ minimums of
// resident blocks, and some with fewer packs a thread (UNROLL 2 instead of kUnroll = 4: half the
// registers that hold loads), so that one GPU session compares them without rebuilding the
// extension. Each variant is registered under "gate_bwd/activation/dtype/min_blocks/unroll" and
// launched on 2-D operands with unit inner stride and 16-byte packs, as the engine launches the
// packed gating layout.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <map>
#include <string>
#include <vector>

#include "engine.cuh"

namespace {

using namespace ffn_ext;
using namespace ffn_ext::cuda;
using at::Tensor;

struct Variant {
  void (*launch)(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins);
  const void* kernel;  // for cudaFuncGetAttributes and the occupancy query
};

std::map<std::string, Variant>& registry() {
  static std::map<std::string, Variant> r;
  return r;
}

template <typename scalar_t, typename F, int MINB, int UNROLL = kUnroll>
struct Bounded {
  using opmath_t = at::opmath_type<scalar_t>;
  // The engine's compute type: op-math for fp32, FastFloat for fp16/bf16 (its default maths).
  using W = std::conditional_t<std::is_same_v<scalar_t, opmath_t>, opmath_t, FastFloat>;
  static constexpr int VEC = 16 / sizeof(scalar_t);

  static void launch(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins) {
    TORCH_CHECK(int(outs.size()) == F::NOUT && int(ins.size()) == F::NIN, "operand counts");
    RowArgs args{};
    const Tensor& ref = outs[0];
    const int64_t rows = ref.size(0), d = ref.size(1);
    auto check = [&](const Tensor& t) {
      TORCH_CHECK(t.is_cuda() && t.dim() == 2 && t.size(0) == rows && t.size(1) == d &&
                      t.stride(1) == 1 && t.scalar_type() == c10::CppTypeToScalarType<scalar_t>::value,
                  "every operand must be a [rows, d] CUDA tensor of the variant's dtype with unit inner stride");
    };
    for (int k = 0; k < F::NOUT; ++k) {
      check(outs[k]);
      args.out[k] = static_cast<char*>(outs[k].data_ptr());
      args.out_stride[k] = outs[k].stride(0);
    }
    for (int k = 0; k < F::NIN; ++k) {
      check(ins[k]);
      args.in[k] = static_cast<const char*>(ins[k].data_ptr());
      args.in_stride[k] = ins[k].stride(0);
    }
    TORCH_CHECK(row_vec<scalar_t>(args, F::NIN, F::NOUT, rows) == VEC && d % VEC == 0,
                "the operands must allow 16-byte packs (aligned bases, row strides and d)");
    const c10::cuda::CUDAGuard guard(ref.device());
    const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const RowGeometry g = row_geometry(rows, d / VEC, sms, kMaxGridX, UNROLL);
    const dim3 grid(static_cast<unsigned>(g.grid_x), static_cast<unsigned>(g.grid_y));
    row_kernel<scalar_t, W, VEC, F, MINB, UNROLL>
        <<<grid, g.threads, 0, at::cuda::getCurrentCUDAStream()>>>(args, g, rows, d, F{});
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  static void add(const std::string& kind, const std::string& act, const std::string& dtype) {
    registry()[kind + "/" + act + "/" + dtype + "/" + std::to_string(MINB) + "/" +
               std::to_string(UNROLL)] = {
        &launch, reinterpret_cast<const void*>(&row_kernel<scalar_t, W, VEC, F, MINB, UNROLL>)};
  }
};

template <typename scalar_t, typename F, int... MINB>
void add(const char* kind, const char* act, const char* dtype) {
  (Bounded<scalar_t, F, MINB>::add(kind, act, dtype), ...);
}
// The same minimums with 2 packs a thread.
template <typename scalar_t, typename F, int... MINB>
void add_unroll2(const char* kind, const char* act, const char* dtype) {
  (Bounded<scalar_t, F, MINB, 2>::add(kind, act, dtype), ...);
}

// The functors are built for op-math float, as with_kernel<float> builds them for fp32, fp16 and
// bf16 tensors. Minimum 1: no bound (ptxas takes the registers its schedule wants: 96-107 for these
// backward kernels in fp16/bf16 at 774bba5, 2 blocks a multiprocessor); 3: the engine's bound at
// dd226f2 (row_min_blocks: at most 80 registers, no spill since 774bba5); 4 (64 registers) for
// SiLU. A minimum of 2 gave the same registers as none for every kernel here (sm_90, nvcc 13.0), so
// it is not built. Kernels that fit 80 registers unbounded are left out (the forwards, the activations'
// backward: 56-79 registers at e57e7bf).
template <typename scalar_t>
void add_gating_backward(const char* dt) {
  add<scalar_t, GateBwdK<GeluErf<float>>, 1, 3>("gate_bwd", "gelu", dt);
  add<scalar_t, GateBwdK<GeluTanh<float>>, 1, 3>("gate_bwd", "gelu_tanh", dt);
  add<scalar_t, GateBwdK<Sigmoid<float>>, 1, 3>("gate_bwd", "sigmoid", dt);
  add<scalar_t, GateBwdK<Relu<float>>, 1, 3>("gate_bwd", "relu", dt);
  add<scalar_t, GateBwdK<Identity<float>>, 1, 3>("gate_bwd", "identity", dt);
}

// UNROLL 2: a thread's 3 input packs of 16 bytes take 24 registers where 4 packs take 48. Built when
// the bf16 SiLU backward spilled at 80 registers with 4 (28 bytes of spill stores; c76ea19); since
// 774bba5 it spills nothing there (sm_90, nvcc 13.0, 2026-11-28), so the question is whether fewer
// packs a thread cost anything: 256 threads of 2 packs a tile still keep 96 bytes a thread in
// flight (at 3 blocks a multiprocessor, 72 KB: Little's law asks ~25-35 KB of an H100/H200
// multiprocessor).
void register_all() {
  if (!registry().empty()) return;
  using BF16 = c10::BFloat16;
  add<BF16, GateBwdK<Silu<float>>, 1, 3, 4>("gate_bwd", "silu", "bf16");
  add_unroll2<BF16, GateBwdK<Silu<float>>, 1, 3, 4>("gate_bwd", "silu", "bf16");
  add_unroll2<BF16, GateBwdK<GeluErf<float>>, 3>("gate_bwd", "gelu", "bf16");
  add_gating_backward<BF16>("bf16");
  add<c10::Half, GateBwdK<Silu<float>>, 1, 3>("gate_bwd", "silu", "fp16");
  add_unroll2<c10::Half, GateBwdK<Silu<float>>, 3>("gate_bwd", "silu", "fp16");
  add<float, GateBwdK<Silu<float>>, 1, 3>("gate_bwd", "silu", "fp32");
  add<float, GateBwdK<GeluErf<float>>, 1, 3>("gate_bwd", "gelu", "fp32");
}

const Variant& find(const std::string& key) {
  register_all();
  auto it = registry().find(key);
  TORCH_CHECK(it != registry().end(), "no variant ", key);
  return it->second;
}

// The keys, one a line.
std::string variants() {
  register_all();
  std::string keys;
  for (const auto& kv : registry()) keys += kv.first + "\n";
  return keys;
}

void launch(c10::string_view key, at::TensorList outs, at::TensorList ins) {
  find(std::string(key)).launch(outs.vec(), ins.vec());
}

// (registers, local (spill) bytes a thread, blocks of 256 threads a multiprocessor holds).
std::vector<int64_t> attributes(c10::string_view key) {
  const Variant& v = find(std::string(key));
  cudaFuncAttributes a{};
  C10_CUDA_CHECK(cudaFuncGetAttributes(&a, v.kernel));
  int blocks = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, v.kernel, kMaxThreads, 0));
  return {a.numRegs, int64_t(a.localSizeBytes), blocks};
}

}  // namespace

TORCH_LIBRARY(ffn_ext_bounds, m) {
  m.def("variants() -> str", &variants);
  m.def("launch(str key, Tensor(a!)[] outs, Tensor[] ins) -> ()", &launch);
  m.def("attributes(str key) -> int[]", &attributes);
}
