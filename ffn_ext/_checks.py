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


def check_same_kind(op, arg, t, ref_arg, ref):
    """t is a float tensor on ref's device with ref's dtype."""
    check_float_tensor(op, arg, t)
    check_same_device(op, arg, t, ref_arg, ref)
    if t.dtype != ref.dtype:
        raise TypeError(f"ffn_ext.{op}: {arg} must have the same dtype as {ref_arg} ({ref.dtype}), got {t.dtype}")


def check_like(op, arg, t, ref, ref_arg="x"):
    """t pairs element-wise with ref (a gradient): float, ref's device, dtype and shape."""
    check_same_kind(op, arg, t, ref_arg, ref)
    check_same_shape(op, arg, t, ref_arg, ref)


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


# ---- gating ops (csrc/include/ffn_ext/gating_ops.h) ---------------------------------------------
ACTIVATIONS = ("sigmoid", "gelu", "gelu_tanh", "silu", "swish", "relu", "identity")


def check_activation(op, activation, beta):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"ffn_ext.{op}: activation must be one of 'sigmoid', 'gelu', 'gelu_tanh', 'silu', "
            f"'swish', 'relu', 'identity', got '{activation}'"
        )
    if activation != "swish" and beta != 1.0:
        raise ValueError(
            f"ffn_ext.{op}: beta is used only with activation='swish', got beta={float(beta):.6f} "
            f"with activation='{activation}'"
        )


def check_gate_up(op, gate, up):
    check_float_tensor(op, "gate", gate)
    check_like(op, "up", up, gate, "gate")


def check_packed(op, h):
    check_float_tensor(op, "h", h)
    if h.dim() < 1:
        raise ValueError(
            f"ffn_ext.{op}: h must have a last dimension [..., 2d] to split into gate and up, got a 0-dim tensor"
        )
    n2 = h.shape[-1]
    if n2 % 2 != 0 or n2 < 2:
        raise ValueError(
            f"ffn_ext.{op}: the last dimension of h must be even and at least 2 ([..., 2d]: gate = "
            f"h[..., :d], up = h[..., d:]), got {n2} (h of shape {shape_str(h.shape)})"
        )
    return n2 // 2


def check_out_inference(op, out):
    """An inference tensor is written only under torch.inference_mode() (as the C++ op's
    check_out_inference)."""
    if out.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"ffn_ext.{op}: out is an inference tensor (made under torch.inference_mode()), which can be "
            "written only under torch.inference_mode(); call the op there, or pass out.clone()"
        )


def half_shape(h):
    return (*h.shape[:-1], h.shape[-1] // 2)


def check_half(op, arg, t, h):
    check_same_kind(op, arg, t, "h", h)
    want = half_shape(h)
    if tuple(t.shape) != want:
        raise ValueError(
            f"ffn_ext.{op}: {arg} must have shape h.shape[:-1] + [h.shape[-1] / 2] = {shape_str(want)}, "
            f"got {shape_str(t.shape)}"
        )


# ---- projection ops (csrc/projection.cpp) -------------------------------------------------------
# cast: under torch.autocast, the dtype it casts float32/float16/bfloat16 arguments to (it leaves
# float64 alone), since its casts come before the op; the dtypes must agree after them, as for
# F.linear. None: no autocast, the dtypes must agree as given.
_CAST = (torch.float32, torch.float16, torch.bfloat16)


def _check_kind(op, name, t, x, cast):
    if cast is None:
        check_same_kind(op, name, t, "x", x)
        return
    check_float_tensor(op, name, t)
    check_same_device(op, name, t, "x", x)
    tc, xc = (cast if a.dtype in _CAST else a.dtype for a in (t, x))
    if tc != xc:
        raise TypeError(
            f"ffn_ext.{op}: {name} must have the same dtype as x after autocast's casts (x: {x.dtype} -> {xc}), "
            f"got {t.dtype} -> {tc}"
        )


def _check_weight(op, name, w, x, cast=None):
    _check_kind(op, name, w, x, cast)
    if w.dim() != 2 or w.shape[1] != x.shape[-1]:
        raise ValueError(
            f"ffn_ext.{op}: {name} must be [out_features, in_features] with in_features = x.shape[-1] = "
            f"{x.shape[-1]}, got shape {shape_str(w.shape)} for x of shape {shape_str(x.shape)}"
        )


def _check_bias(op, name, b, x, d, cast=None):
    if b is None:
        return
    _check_kind(op, name, b, x, cast)
    if b.dim() != 1 or b.shape[0] != d:
        raise ValueError(f"ffn_ext.{op}: {name} must be [out_features] = [{d}], got shape {shape_str(b.shape)}")


def check_projection(op, x, w1, w3, b1, b3, activation=None, beta=1.0, cast=None):
    """x [..., in], w1 and w3 [d, in] (w3 None: the ungated block's single projection), b1 and b3
    [d] or None, then the activation unless None; cast: see _check_kind. Returns d."""
    check_float_tensor(op, "x", x)
    if x.dim() < 1:
        raise ValueError(f"ffn_ext.{op}: x must be [..., in_features], got a 0-dim tensor")
    _check_weight(op, "w1", w1, x, cast)
    if w3 is not None:
        _check_weight(op, "w3", w3, x, cast)
        if w3.shape != w1.shape:
            raise ValueError(
                f"ffn_ext.{op}: w3 must have the same shape as w1, got {shape_str(w3.shape)} and {shape_str(w1.shape)}"
            )
    if w1.shape[0] < 1:
        which = "w1" if w3 is None else "w1 and w3"
        raise ValueError(
            f"ffn_ext.{op}: {which} must have at least one row (out_features >= 1), got shape {shape_str(w1.shape)}"
        )
    _check_bias(op, "b1", b1, x, w1.shape[0], cast)
    _check_bias(op, "b3", b3, x, w1.shape[0], cast)
    if activation is not None:
        check_activation(op, activation, beta)
    return w1.shape[0]


def check_down(op, w2, b2, x, d, cast=None):
    """The block's down projection: w2 [out_features, d], b2 [out_features] or None."""
    _check_kind(op, "w2", w2, x, cast)
    if w2.dim() != 2 or w2.shape[1] != d:
        raise ValueError(
            f"ffn_ext.{op}: w2 must be [out_features, d] with d = w1.shape[0] = {d}, got shape {shape_str(w2.shape)}"
        )
    if b2 is not None:
        _check_kind(op, "b2", b2, x, cast)
        if b2.dim() != 1 or b2.shape[0] != w2.shape[0]:
            raise ValueError(f"ffn_ext.{op}: b2 must be [out_features] = [{w2.shape[0]}], got shape {shape_str(b2.shape)}")


def renamed(e, internal, op):
    """An error that the internal op raised, raised again under the public name that the user
    called: "ffn_ext.swiglu: ..." for "ffn_ext.gated_linear: ...", "ffn_ext.silu_and_mul: ..." for
    "ffn_ext.act_and_mul_packed: ...", of the same type and alone (not chained to the op's). Other
    errors are left to the caller's `raise`."""
    prefix = f"ffn_ext.{internal}: "
    text = str(e)
    if op != internal and text.startswith(prefix) and type(e) in (RuntimeError, ValueError, TypeError, NotImplementedError):
        raise type(e)(f"ffn_ext.{op}: " + text[len(prefix):]) from None
