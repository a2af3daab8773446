"""Projection-level gated feed-forward ops, weights in torch.nn.Linear's layout ([out, in]):

    swiglu(x, w1, w3, b1=None, b3=None)            silu(x @ w1.T + b1) * (x @ w3.T + b3)
    geglu(x, w1, w3, b1=None, b3=None, approximate="none")
    reglu(x, w1, w3, b1=None, b3=None)             relu(...) * (...)
    gated_linear(x, w1, w3, b1=None, b3=None, activation="sigmoid", beta=1.0)
                                                   GLU by default; "identity" is the bilinear form
    ffn(x, w1, w2, w3=None, b1=None, b2=None, b3=None, activation="silu")
                                                   the whole block: gated with w3, classic without

x is [..., in_features]. The GEMMs are ATen's (cuBLAS on CUDA); the gating between them is
ffn_ext's fused kernel, reading the two projections once and writing the result once. On CUDA,
when w3 directly follows w1 in memory (ffn_ext.nn.FeedForward allocates them so), one GEMM computes
both projections (on CPU two GEMMs measured faster). Autograd reaches x, both weights and both
biases (second order too); the backward forms the packed gradient [dgate | dup] in one kernel and
takes both weight gradients from one GEMM.

Memory without autograd (torch.no_grad / inference_mode): beside the result ([..., d]), the call
holds only the two projections (2 M d elements, M = x.numel() / in_features: one packed [M, 2d]
tensor where one GEMM computes both, else two [M, d] ones) and frees them before returning;
nothing is kept. ATen's GEMM may take scratch of its own while it runs, before the result is
allocated (on CPU oneDNN's buffers, which grow with the thread count), so the peak is the
projections plus the larger of the result and that scratch. Measured by
tests/test_projection.py::test_inference_peak_memory on CPU and CUDA: for M = 512, in = 1024,
d = 2048, bf16, the projections are 4.0 MiB and the result 2.0 MiB; the call's peak is 6.0 MiB on
CPU with 2 threads (GEMM scratch 0.25 MiB) and 6.07 MiB with 16 (scratch 2.07 MiB, H100 host,
torch 2.11), and it returns holding only the result.

Memory with autograd: the forward saves h (2 M d elements; x, the weights and biases by
reference), where eager PyTorch saves 3 M d (x W1ᵀ, its silu, x W3ᵀ). The backward makes the
packed dh (2 M d), frees h, then allocates the gradients it returns and frees dh. For M = 512,
in = 1024, d = 2048 fp32 on CPU: held after the forward (result included) 12 MiB against eager's
16; peak of one forward+backward 30 MiB against eager's 28 (eager frees its saved tensors one at a
time as its backward goes). tests/test_projection.py::test_training_memory checks the accounting;
benchmarks/ reports both figures for every shape.

torch.autocast casts x, the weights and the biases as it casts torch.nn.functional.linear's.
"""

import torch
import torch.nn.functional as F

from . import functional as _F
from ._checks import check_approximate, check_down, check_projection, renamed
from ._library import fast_calls
from .gating import _beta

__all__ = ["swiglu", "geglu", "reglu", "gated_linear", "ffn"]

_ops = torch.ops.ffn_ext
# As in functional.py: outside torch.compile, the fast entry point first (NotImplemented: torch.ops).
_fast = fast_calls()
_compiling = torch.compiler.is_compiling


def _autocast_dtype(x):
    """Under torch.autocast (on x's device), the dtype it casts to: its casts come before the op's
    checks, so mixed floating dtypes are fine there, as for F.linear. None otherwise."""
    if isinstance(x, torch.Tensor) and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return None


def gated_linear_op(x, w1, w3, b1, b3, activation, beta):
    """torch.ops.ffn_ext.gated_linear, through its fast entry point outside torch.compile."""
    if not _compiling():
        y = _fast.gated_linear(x, w1, w3, b1, b3, activation, beta)
        if y is not NotImplemented:
            return y
    return _ops.gated_linear(x, w1, w3, b1, b3, activation, _beta("gated_linear", beta))


def _gated(op, x, w1, w3, b1, b3, activation, beta=1.0):
    # The C++ op checks every argument before any GEMM runs, so valid calls go to it directly; the
    # Python checks (4.4 us a call, more than the op's own dispatch; CPU, 2026-11-26) run only when
    # it refuses, to raise the error under the public name (ffn_ext.swiglu, not gated_linear).
    try:
        return gated_linear_op(x, w1, w3, b1, b3, activation, beta)
    except (RuntimeError, ValueError, TypeError) as e:
        _public_error(lambda cast: check_projection(op, x, w1, w3, b1, b3, activation, beta, cast), x)
        renamed(e, "gated_linear", op)
        raise


def _public_error(check, x):
    """After an op refused its arguments: check(cast) raises the error under the public name when
    it finds one (cast: _autocast_dtype)."""
    try:
        check(_autocast_dtype(x))
    except (ValueError, TypeError, RuntimeError) as public:
        raise public from None  # the public error alone, not chained to the op's


def swiglu(x, w1, w3, b1=None, b3=None):
    """silu(x @ w1.T + b1) * (x @ w3.T + b3): LLaMA's, Mistral's, Qwen's feed-forward gating."""
    return _gated("swiglu", x, w1, w3, b1, b3, "silu")


def geglu(x, w1, w3, b1=None, b3=None, approximate="none"):
    """gelu(x @ w1.T + b1, approximate) * (x @ w3.T + b3): T5 v1.1, Gemma (tanh form), GLM."""
    check_approximate("geglu", approximate)
    return _gated("geglu", x, w1, w3, b1, b3, "gelu" if approximate == "none" else "gelu_tanh")


def reglu(x, w1, w3, b1=None, b3=None):
    """relu(x @ w1.T + b1) * (x @ w3.T + b3)."""
    return _gated("reglu", x, w1, w3, b1, b3, "relu")


def gated_linear(x, w1, w3, b1=None, b3=None, activation="sigmoid", beta=1.0):
    """act(x @ w1.T + b1) * (x @ w3.T + b3); activation as for ffn_ext.act_and_mul: "sigmoid"
    (GLU, the default), "gelu", "gelu_tanh", "silu", "swish" (with beta), "relu", "identity"
    (bilinear)."""
    return _gated("gated_linear", x, w1, w3, b1, b3, activation, beta)


_MEMORY = """

    Without autograd (torch.no_grad, torch.inference_mode) nothing is kept: beside the result, the
    call holds only the two projections (2 M d elements, M = x.numel() / in_features) and frees them
    before returning; ATen's GEMM may take scratch of its own while it runs. Measured for M = 512,
    in = 1024, d = 2048, bf16: projections 4.0 MiB, result 2.0 MiB, peak 6.0 MiB (CPU, 2 threads).
    With autograd the forward saves the packed projections (2 M d) where eager PyTorch saves 3 M d.
    The module docstring (ffn_ext.projection) has the details."""
for _f in (swiglu, geglu, reglu, gated_linear):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ += _MEMORY


# The activations of the classic (ungated) block.
_UNGATED = {
    "silu": _F.silu,
    "gelu": _F.gelu,
    "gelu_tanh": lambda t: _F.gelu(t, approximate="tanh"),
    "relu": _F.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda t: t,
}


def ffn(x, w1, w2, w3=None, b1=None, b2=None, b3=None, activation="silu"):
    """The feed-forward block. With w3: (act(x W1ᵀ + b1) ⊗ (x W3ᵀ + b3)) W2ᵀ + b2 (SwiGLU for
    activation="silu"); without: act(x W1ᵀ + b1) W2ᵀ + b2. w2 is [out_features, d]. Every argument
    is checked before the first GEMM runs (under torch.autocast too)."""
    op = "ffn"
    if w3 is None:
        if b3 is not None:
            raise ValueError("ffn_ext.ffn: b3 is the bias of w3, which is None (the block is ungated)")
        check_ungated(op, activation)
        cast = _autocast_dtype(x)
        d = check_projection(op, x, w1, None, b1, None, None, 1.0, cast)
        check_down(op, w2, b2, x, d, cast)
        return F.linear(_ungated_activation(op, activation, F.linear(x, w1, b1)), w2, b2)
    # Gated: the op checks x, w1, w3 and the biases before its GEMMs, and _gated raises its errors
    # under this name, so only w2 and b2 are checked here (before anything runs); the full Python
    # checks run only when those fail, so that the first wrong argument is the one named. They took
    # 3.5 us of a 13.8 us call, where eager's whole block took 8.3 (CPU, 16 x 8 weights,
    # 2026-11-26).
    try:
        check_down(op, w2, b2, x, w1.shape[0], _autocast_dtype(x))
    except Exception:
        _public_error(lambda cast: check_projection(op, x, w1, w3, b1, b3, activation, 1.0, cast), x)
        raise
    return F.linear(_gated(op, x, w1, w3, b1, b3, activation), w2, b2)


def _ungated_activation(op, activation, t):
    """act(t) in the ungated block; the errors its ffn_ext op raises for other reasons than its
    argument (torch.func, forward-mode AD) come under op's name."""
    try:
        return _UNGATED[activation](t)
    except Exception as e:  # noqa: BLE001 (renamed() raises the op's own errors renamed; the rest go on)
        renamed(e, {"gelu_tanh": "gelu"}.get(activation, activation), op)
        raise


def check_ungated(op, activation):
    if activation == "swish":
        raise ValueError(f"ffn_ext.{op}: activation='swish' needs a beta; use 'silu', or ffn_ext.swish directly")
    if activation not in _UNGATED:
        names = ", ".join(f"'{k}'" for k in _UNGATED)
        raise ValueError(f"ffn_ext.{op}: activation must be one of {names} for the ungated block, got '{activation}'")


def ungated_projection(op, x, w1, b1, activation):
    """act(x W1ᵀ + b1), the ungated block's first half (activation checked by check_ungated); a
    refused argument raises under op's name."""
    try:
        return _ungated_activation(op, activation, F.linear(x, w1, b1))
    except (RuntimeError, ValueError, TypeError):
        _public_error(lambda cast: check_projection(op, x, w1, None, b1, None, None, 1.0, cast), x)
        raise
