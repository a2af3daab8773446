"""The element-wise activations. Formulas: README.md ("What each op computes")."""

import numbers

import torch

from ._library import fast_calls

__all__ = ["gelu", "silu", "swish", "relu"]

_ops = torch.ops.ffn_ext
# Outside torch.compile each op is first offered to its fast entry point (_library.fast_calls),
# which returns NotImplemented for what torch.ops must handle (subclasses, torch function modes,
# arguments of other types); torch.compile traces torch.ops.
_fast = fast_calls()
_compiling = torch.compiler.is_compiling


def _tensor(op, x):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"ffn_ext.{op}: x must be a tensor, got {type(x).__name__}")


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """GELU: x * Phi(x) (approximate="none"), or x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    (approximate="tanh"), as torch.nn.functional.gelu. Exact in the negative tail (erfc form) and
    GELU(-inf) = 0."""
    if not _compiling():
        y = _fast.gelu(x, approximate)
        if y is not NotImplemented:
            return y
    _tensor("gelu", x)
    return _ops.gelu(x, approximate)


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU: x * sigmoid(x), as torch.nn.functional.silu; SiLU(-inf) = 0."""
    if not _compiling():
        y = _fast.silu(x)
        if y is not NotImplemented:
            return y
    _tensor("silu", x)
    return _ops.silu(x)


def swish(x: torch.Tensor, beta=1.0) -> torch.Tensor:
    """Swish-beta: x * sigmoid(beta * x).

    beta is a number, or a tensor that is 0-dim or holds one value per channel of x's last
    dimension (shape [x.shape[-1]]); a tensor beta may require grad (its gradient is summed over
    the elements that share it). A tensor beta is used in float32 (float64 for float64 x) whatever
    its dtype; the output has x's dtype.
    """
    if not _compiling():
        y = _fast.swish(x, beta)
        if y is not NotImplemented:
            return y
    _tensor("swish", x)
    if isinstance(beta, torch.Tensor):
        return _ops.swish.Tensor(x, beta)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"ffn_ext.swish: beta must be a number or a tensor, got {type(beta).__name__}")
    return _ops.swish(x, float(beta))


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU: max(x, 0), as torch.nn.functional.relu (NaN propagates, also through the backward)."""
    if not _compiling():
        y = _fast.relu(x)
        if y is not NotImplemented:
            return y
    _tensor("relu", x)
    return _ops.relu(x)
