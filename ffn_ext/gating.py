"""The gating ops y = act(gate) * up: GLU, GEGLU (erf and tanh), SwiGLU, ReGLU and bilinear.

Two layouts, neither copied:
    act_and_mul(gate, up, activation)        gate and up of one shape, any strides
    act_and_mul_packed(h, activation)        h [..., 2d]: gate = h[..., :d], up = h[..., d:]
and the names inference engines use for the packed form (vLLM, FlashInfer): silu_and_mul,
gelu_and_mul, gelu_tanh_and_mul. glu(h, dim) is torch.nn.functional.glu (first half times the
sigmoid of the second half: the opposite order).

activation: "sigmoid" (GLU), "gelu", "gelu_tanh", "silu", "swish" (with beta), "relu" (ReGLU),
"identity" (bilinear). The backward of the packed form returns one packed [..., 2d] gradient.
`out=` (packed forms) writes into a given [..., d] tensor, for inference: it does not support
autograd. torch.compile cannot trace the out= op itself (PyTorch does not functionalize a custom op
whose output aliases an input), so while compiling the wrappers run the functional op and copy its
result into out (which the compiler may fuse away).
"""

import numbers

import torch

from ._checks import check_float_tensor, check_half, check_packed, renamed
from ._library import fast_calls

__all__ = [
    "act_and_mul",
    "act_and_mul_packed",
    "silu_and_mul",
    "gelu_and_mul",
    "gelu_tanh_and_mul",
    "glu",
]

_ops = torch.ops.ffn_ext
# As in functional.py: outside torch.compile, the fast entry point first (NotImplemented: torch.ops).
_fast = fast_calls()
_compiling = torch.compiler.is_compiling


def _tensor(op, arg, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"ffn_ext.{op}: {arg} must be a tensor, got {type(t).__name__}")


def _beta(op, beta):
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"ffn_ext.{op}: beta must be a number, got {type(beta).__name__}")
    return float(beta)


def act_and_mul(gate: torch.Tensor, up: torch.Tensor, activation: str = "silu", beta: float = 1.0) -> torch.Tensor:
    """act(gate) * up for two tensors of one shape (any strides, no copies)."""
    if not _compiling():
        y = _fast.act_and_mul(gate, up, activation, beta)
        if y is not NotImplemented:
            return y
    _tensor("act_and_mul", "gate", gate)
    _tensor("act_and_mul", "up", up)
    return _ops.act_and_mul(gate, up, activation, _beta("act_and_mul", beta))


def act_and_mul_packed(h: torch.Tensor, activation: str = "silu", beta: float = 1.0, out=None) -> torch.Tensor:
    """act(h[..., :d]) * h[..., d:] for h of shape [..., 2d]; the result is [..., d]."""
    return _packed("act_and_mul_packed", h, activation, beta, out)


def silu_and_mul(h: torch.Tensor, out=None) -> torch.Tensor:
    """silu(h[..., :d]) * h[..., d:] (SwiGLU's gating; vLLM's silu_and_mul)."""
    if not _compiling():  # the decode hot path: the fast call here, not a frame below (0.04 us)
        try:
            y = _fast.act_and_mul_packed(h, "silu", 1.0, out)
        except Exception as e:  # noqa: BLE001 (renamed() raises the op's own errors renamed; the rest go on)
            renamed(e, "act_and_mul_packed", "silu_and_mul")
            raise
        if y is not NotImplemented:
            return y
    return _packed("silu_and_mul", h, "silu", 1.0, out)


def gelu_and_mul(h: torch.Tensor, approximate: str = "none", out=None) -> torch.Tensor:
    """gelu(h[..., :d], approximate) * h[..., d:] (GEGLU's gating)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"ffn_ext.gelu_and_mul: approximate must be one of 'none', 'tanh', got '{approximate}'")
    return _packed("gelu_and_mul", h, "gelu" if approximate == "none" else "gelu_tanh", 1.0, out)


def gelu_tanh_and_mul(h: torch.Tensor, out=None) -> torch.Tensor:
    """gelu(h[..., :d], approximate="tanh") * h[..., d:]."""
    return _packed("gelu_tanh_and_mul", h, "gelu_tanh", 1.0, out)


def _packed(op, h, activation, beta, out):
    """The packed op called as `op` (act_and_mul_packed, silu_and_mul, ...), whose name its errors
    carry. Outside torch.compile the fast entry point comes first (the decode hot path), and the
    op's own errors are raised again under op's name; under compile the fake kernel's name stays
    (the compiler wraps its errors in its own)."""
    if _compiling():
        return _packed_op(op, h, activation, beta, out)
    try:
        y = _fast.act_and_mul_packed(h, activation, beta, out)
        return _packed_op(op, h, activation, beta, out) if y is NotImplemented else y
    except Exception as e:  # noqa: BLE001 (renamed() raises the op's own errors renamed; the rest go on)
        renamed(e, "act_and_mul_packed", op)
        raise


def _packed_op(op, h, activation, beta, out):
    _tensor(op, "h", h)
    beta = _beta(op, beta)
    if out is None:
        return _ops.act_and_mul_packed(h, activation, beta)
    _tensor(op, "out", out)
    if _compiling():
        return _out_while_compiling(op, h, activation, beta, out)
    return _ops.act_and_mul_packed.out(h, activation, beta, out=out)


def _out_while_compiling(op, h, activation, beta, out):
    """out= under torch.compile: the functional op, then out.copy_(), which the compiler can
    functionalize. The op's own checks of h and out first, in its order (copy_ would broadcast a
    larger out). Not its memory checks: compiled, an out overlapping h is written after h is read
    whole, so it is right where eager refuses it, and an expanded out gets copy_'s own error. Nor
    the inference-tensor check: Dynamo cannot trace tensor.is_inference()."""
    check_packed(op, h)
    check_half(op, "out", out, h)
    if torch.is_grad_enabled() and (h.requires_grad or out.requires_grad):
        raise RuntimeError(f"ffn_ext.{op}: out= does not support autograd (h or out requires grad); call it without "
                           "out=, or under torch.no_grad() / torch.inference_mode()")
    return out.copy_(_ops.act_and_mul_packed(h, activation, beta))


def glu(h: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """torch.nn.functional.glu: h_a * sigmoid(h_b), with h_a, h_b the halves of h along dim."""
    check_float_tensor("glu", "h", h)  # here, or act_and_mul's error would name its gate
    if h.dim() == 0:
        raise ValueError("ffn_ext.glu: h must have at least one dimension, got a 0-dim tensor")
    if not -h.dim() <= dim < h.dim():
        raise IndexError(f"ffn_ext.glu: dim must be in [{-h.dim()}, {h.dim() - 1}] for h of {h.dim()} dimensions, got {dim}")
    n = h.shape[dim]
    if n % 2 != 0:
        raise ValueError(f"ffn_ext.glu: the size of h along dim {dim} must be even, got {n} (h of shape {list(h.shape)})")
    a, b = h.narrow(dim, 0, n // 2), h.narrow(dim, n // 2, n // 2)
    try:
        return _ops.act_and_mul(b, a, "sigmoid", 1.0)
    except Exception as e:  # noqa: BLE001 (renamed() raises the op's own errors renamed; the rest go on)
        renamed(e, "act_and_mul", "glu")  # torch.func, forward-mode AD: the checks above ran
        raise
