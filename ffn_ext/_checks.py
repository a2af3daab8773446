"""Input checks of the fake (meta) kernels, mirroring csrc/include/ffn_ext/checks.h text for text.

The compiled kernels raise the same errors before launching; tests/test_errors.py matches both.
"""

import torch

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def shape_str(shape):
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def check_float_tensor(op, arg, t):
    if t is None:
        raise RuntimeError(f"ffn_ext.{op}: {arg} must be a tensor, got None")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"ffn_ext.{op}: {arg} must be a tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise RuntimeError(f"ffn_ext.{op}: {arg} must be a strided (dense) tensor, got layout {t.layout}")
    if t.dtype not in _FLOATS:
        raise TypeError(
            f"ffn_ext.{op}: {arg} must be a floating-point tensor (torch.float32, torch.float64, "
            f"torch.float16 or torch.bfloat16), got {t.dtype}"
        )


def _dev(d):
    # C++ prints devices as "cpu", "cuda:0", "meta".
    return str(d)


def check_same_device(op, arg, t, ref_arg, ref):
    if t.device != ref.device:
        raise RuntimeError(
            f"ffn_ext.{op}: {arg} must be on the same device as {ref_arg} ({_dev(ref.device)}), "
            f"got {_dev(t.device)}"
        )


def check_like(op, arg, t, x):
    check_float_tensor(op, arg, t)
    check_same_device(op, arg, t, "x", x)
    if t.dtype != x.dtype:
        raise TypeError(f"ffn_ext.{op}: {arg} must have the same dtype as x ({x.dtype}), got {t.dtype}")
    check_same_shape(op, arg, t, "x", x)


def check_same_shape(op, arg, t, ref_arg, ref):
    if t.shape != ref.shape:
        raise ValueError(
            f"ffn_ext.{op}: {arg} must have the same shape as {ref_arg}, got "
            f"{shape_str(t.shape)} and {shape_str(ref.shape)}"
        )


def check_beta(op, arg, beta, x):
    check_float_tensor(op, arg, beta)
    check_same_device(op, arg, beta, "x", x)
    scalar = beta.dim() == 0
    per_channel = beta.dim() == 1 and x.dim() >= 1 and beta.shape[0] == x.shape[-1]
    if not (scalar or per_channel):
        want = shape_str([x.shape[-1]]) if x.dim() >= 1 else "(none: x is 0-dim)"
        raise ValueError(
            f"ffn_ext.{op}: {arg} must be 0-dim or have shape [x.shape[-1]] = {want}, got shape "
            f"{shape_str(beta.shape)} for x of shape {shape_str(x.shape)}"
        )


APPROXIMATE = ("none", "tanh")


def check_approximate(op, approximate):
    if approximate not in APPROXIMATE:
        raise ValueError(f"ffn_ext.{op}: approximate must be one of 'none', 'tanh', got '{approximate}'")
