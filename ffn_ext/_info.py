"""ffn_ext.info(): what was built and what is running."""

import torch

from ._library import build_info, cpu_loops

OPS = (
    "gelu", "gelu_backward", "gelu_double_backward",
    "silu", "silu_backward", "silu_double_backward",
    "swish", "swish_backward", "swish_double_backward",
    "relu", "relu_backward",
    "act_and_mul", "act_and_mul_backward", "act_and_mul_double_backward",
    "act_and_mul_packed", "act_and_mul_packed.out", "act_and_mul_packed_backward",
    "act_and_mul_packed_double_backward",
    "gated_linear", "packed_linear", "packed_linear_backward",
)  # fmt: skip
# Device-generic ops (CompositeExplicitAutograd: ATen's GEMMs around the gating kernels): they run
# on a device where the packed gating op has a kernel.
COMPOSITE = {"gated_linear", "packed_linear", "packed_linear_backward"}


def _has_kernel(op, key):
    if op in COMPOSITE:
        return _has_kernel("act_and_mul_packed", key) and torch._C._dispatch_has_kernel_for_dispatch_key(
            "ffn_ext::" + op, "CompositeExplicitAutograd")
    return torch._C._dispatch_has_kernel_for_dispatch_key("ffn_ext::" + op, key)


def info() -> dict:
    """Build and runtime facts: versions, whether the CUDA kernels were compiled, the CUDA
    architectures, the CPU vector loop of each dtype, and which ops have CPU and CUDA kernels."""
    b = build_info()
    cuda_ops = [op for op in OPS if _has_kernel(op, "CUDA")]
    return {
        "ffn_ext_version": "0.1.0",
        "built_with_torch": b.get("torch_version"),
        "built_with_cuda": b.get("with_cuda") == "1",
        "build_cuda_version": b.get("cuda_version") or None,
        "cuda_archs": [a for a in (b.get("cuda_archs") or "").replace(",", ";").split(";") if a],
        "torch_version": torch.__version__,
        "torch_cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_loops": cpu_loops(),
        "ops": {op: {"cpu": _has_kernel(op, "CPU"), "cuda": _has_kernel(op, "CUDA")} for op in OPS},
        "cuda_kernels_compiled": len(cuda_ops) == len(OPS),
    }
