// Every schema of the ffn_ext operator library, one line each. Kernels register beside their code
// (csrc/cpu, csrc/cuda), autograd in csrc/autograd.cpp, fake kernels in ffn_ext/_fake.py.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ffn_ext/build_info.h"
#include "ffn_ext/checks.h"

namespace ffn_ext::cpu {
std::string loop_names();  // csrc/cpu/activation_cpu.cpp
}  // namespace ffn_ext::cpu
namespace ffn_ext::cuda {
std::vector<int64_t> emulated_launches();  // csrc/cuda/host_emulation.cpp
}  // namespace ffn_ext::cuda

namespace {
// Build facts for ffn_ext.info() and the C++ test: compiled against which torch, with CUDA or not.
std::string build_info() { return ffn_ext::build_info_string(); }

// The names ("gelu", "swish.Tensor") of the ops with tensor arguments, as def() defines them.
std::vector<std::string>& tensor_ops() {
  static std::vector<std::string> names;
  return names;
}

void def(torch::Library& m, const char* schema) {
  m.def(schema);
  const std::string s(schema);
  tensor_ops().push_back(s.substr(0, s.find('(')));
}

// The kernel of every tensor op for the sparse, MKL-DNN, quantized and nested backends: the error of
// check_float_tensor (checks.h) for the first such argument, naming the op, where the dispatcher
// would say only that the op has no kernel for that backend. Quantized and nested tensors have a
// strided layout: a quantized one gets the dtype error (torch.qint8), a nested one its own.
void refuse_layout(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto& args = op.schema().arguments();
  const auto values = torch::jit::last(*stack, args.size());
  std::string name = op.schema().name();
  name = name.substr(name.find("::") + 2);
  for (size_t i = 0; i < args.size(); ++i) {
    if (!values[i].isTensor()) continue;
    const at::Tensor& t = values[i].toTensor();
    TORCH_CHECK(!t.is_nested(), "ffn_ext.", name, ": ", args[i].name(),
                " must be a strided (dense) tensor, got a nested tensor");
    ffn_ext::check_strided(name, args[i].name(), t);
    if (t.is_quantized()) ffn_ext::check_float_tensor(name, args[i].name(), t);
  }
  TORCH_CHECK(false, "ffn_ext.", name, ": the tensor arguments must be strided (dense) tensors");
}
}  // namespace

TORCH_LIBRARY(ffn_ext, m) {
  // GELU, x * Phi(x) ("none") or x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 ("tanh").
  def(m, "gelu(Tensor x, str approximate='none') -> Tensor");
  // grad * gelu'(x).
  def(m, "gelu_backward(Tensor grad, Tensor x, str approximate='none') -> Tensor");
  // grad_grad * grad * gelu''(x): the x-gradient of gelu_backward.
  def(m, "gelu_double_backward(Tensor grad_grad, Tensor grad, Tensor x, str approximate='none') -> Tensor");
  // SiLU, x * sigmoid(x).
  def(m, "silu(Tensor x) -> Tensor");
  def(m, "silu_backward(Tensor grad, Tensor x) -> Tensor");
  def(m, "silu_double_backward(Tensor grad_grad, Tensor grad, Tensor x) -> Tensor");
  // Swish-beta with a fixed beta, x * sigmoid(beta x).
  def(m, "swish(Tensor x, float beta=1.0) -> Tensor");
  def(m, "swish_backward(Tensor grad, Tensor x, float beta) -> Tensor");
  def(m, "swish_double_backward(Tensor grad_grad, Tensor grad, Tensor x, float beta) -> Tensor");
  // Swish-beta with a tensor beta: 0-dim, or one value per channel of x's last dimension.
  def(m, "swish.Tensor(Tensor x, Tensor beta) -> Tensor");
  // (grad_x, grad_beta); grad_beta is empty when beta_requires_grad is false.
  def(m, "swish_backward.Tensor(Tensor grad, Tensor x, Tensor beta, bool beta_requires_grad) -> (Tensor, Tensor)");
  // Gradients of (grad, x, beta) of swish_backward.Tensor, given those of its (grad_x, grad_beta).
  def(m, "swish_double_backward.Tensor(Tensor grad_grad_x, Tensor grad_grad_beta, Tensor grad, Tensor x, Tensor beta, bool beta_requires_grad) -> (Tensor, Tensor, Tensor)");
  // ReLU, max(x, 0).
  def(m, "relu(Tensor x) -> Tensor");
  def(m, "relu_backward(Tensor grad, Tensor x) -> Tensor");
  // Gating, y = act(gate) * up; activation one of 'sigmoid' (GLU), 'gelu', 'gelu_tanh', 'silu',
  // 'swish' (with beta), 'relu' (ReGLU), 'identity' (bilinear). Two tensors of one shape:
  def(m, "act_and_mul(Tensor gate, Tensor up, str activation='silu', float beta=1.0) -> Tensor");
  // (grad_gate, grad_up) = (grad * up * act'(gate), grad * act(gate)).
  def(m, "act_and_mul_backward(Tensor grad, Tensor gate, Tensor up, str activation, float beta) -> (Tensor, Tensor)");
  // Gradients of (grad, gate, up) of act_and_mul_backward, given those of (grad_gate, grad_up).
  def(m, "act_and_mul_double_backward(Tensor grad_grad_gate, Tensor grad_grad_up, Tensor grad, Tensor gate, Tensor up, str activation, float beta) -> (Tensor, Tensor, Tensor)");
  // Packed h [..., 2d]: gate = h[..., :d], up = h[..., d:]; the result is [..., d].
  def(m, "act_and_mul_packed(Tensor h, str activation='silu', float beta=1.0) -> Tensor");
  def(m, "act_and_mul_packed.out(Tensor h, str activation='silu', float beta=1.0, *, Tensor(a!) out) -> Tensor(a!)");
  // The packed gradient [..., 2d] = [grad_gate | grad_up].
  def(m, "act_and_mul_packed_backward(Tensor grad, Tensor h, str activation, float beta) -> Tensor");
  // Gradients of (grad, h) of act_and_mul_packed_backward, given the packed one of its output.
  def(m, "act_and_mul_packed_double_backward(Tensor grad_grad_h, Tensor grad, Tensor h, str activation, float beta) -> (Tensor, Tensor)");
  // Projection-level gating: act(x @ w1.T + b1) * (x @ w3.T + b3), weights [out, in] as in
  // torch.nn.Linear, x [..., in]; the activation names of the gating ops (csrc/projection.cpp).
  def(m, "gated_linear(Tensor x, Tensor w1, Tensor w3, Tensor? b1=None, Tensor? b3=None, str activation='sigmoid', float beta=1.0) -> Tensor");
  // h = [x w1.T + b1 | x w3.T + b3] of shape [M, 2d] (M = x.numel() / in): the projections that
  // gated_linear's autograd kernel gates with act_and_mul_packed.
  def(m, "packed_linear(Tensor x, Tensor w1, Tensor w3, Tensor? b1, Tensor? b3) -> Tensor");
  // Gradients from grad_h = [dgate | dup] ([M, 2d]): (grad_x, grad_w13 = [grad_w1; grad_w3] of
  // shape [2d, in], grad_b13 = [grad_b1 | grad_b3] of shape [2d]); output_mask = (x, weights,
  // biases). One not asked for is an empty tensor. (The biases, if given, are only checked.)
  def(m, "packed_linear_backward(Tensor grad_h, Tensor x, Tensor w1, Tensor w3, Tensor? b1, Tensor? b3, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  // Build facts as "key=value" lines (no tensors: not an operator of the maths).
  m.def("_build_info() -> str", &build_info);
  // Which CPU vector loop each dtype takes on this processor ("dtype=loop" lines).
  m.def("_cpu_loops() -> str", &ffn_ext::cpu::loop_names);
  // Launches of the CUDA row, tile and strided kernels emulated on the CPU so far
  // (FFN_EXT_EMULATE_CUDA=1, csrc/cuda/host_emulation.cpp), for the tests.
  m.def("_emulated_launches() -> int[]", &ffn_ext::cuda::emulated_launches);
}

// After TORCH_LIBRARY above (one translation unit: static initialisation in this order).
#define FFN_EXT_REFUSE_LAYOUT(KEY)                                                  \
  TORCH_LIBRARY_IMPL(ffn_ext, KEY, m) {                                             \
    for (const std::string& name : tensor_ops())                                    \
      m.impl(name.c_str(), torch::CppFunction::makeFromBoxedFunction<&refuse_layout>()); \
  }
FFN_EXT_REFUSE_LAYOUT(SparseCPU)
FFN_EXT_REFUSE_LAYOUT(SparseCUDA)
FFN_EXT_REFUSE_LAYOUT(SparseCsrCPU)
FFN_EXT_REFUSE_LAYOUT(SparseCsrCUDA)
FFN_EXT_REFUSE_LAYOUT(MkldnnCPU)
FFN_EXT_REFUSE_LAYOUT(QuantizedCPU)
FFN_EXT_REFUSE_LAYOUT(QuantizedCUDA)
FFN_EXT_REFUSE_LAYOUT(NestedTensorCPU)
FFN_EXT_REFUSE_LAYOUT(NestedTensorCUDA)
