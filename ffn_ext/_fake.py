"""Fake (meta) kernels: output metadata for torch.compile, export and FakeTensor.

Each repeats its op's input checks (ffn_ext/_checks.py) and allocates like the C++ op layer
(csrc/include/ffn_ext/activation_ops.h): empty_like(x), which keeps x's dtype and dense layout.
"""

import math

import torch

from ._checks import check_approximate, check_beta, check_float_tensor, check_like, check_same_device, check_same_kind
from ._checks import check_activation, check_gate_up, check_half, check_out_inference, check_packed
from ._checks import check_projection, check_same_shape, half_shape, shape_str

lib = "ffn_ext::"


def _unary(op):
    def fake(x, *args):
        check_float_tensor(op, "x", x)
        return torch.empty_like(x)

    return fake


def _backward(op):
    def fake(grad, x, *args):
        check_float_tensor(op, "x", x)
        check_like(op, "grad", grad, x)
        return torch.empty_like(x)

    return fake


def _double_backward(op):
    def fake(grad_grad, grad, x, *args):
        check_float_tensor(op, "x", x)
        check_like(op, "grad_grad", grad_grad, x)
        check_like(op, "grad", grad, x)
        return torch.empty_like(x)

    return fake


def _with_approximate(op, inner, approx_pos):
    def fake(*args):
        approximate = args[approx_pos] if len(args) > approx_pos else "none"
        check_approximate(op, approximate)
        return inner(*args)

    return fake


torch.library.register_fake(lib + "gelu")(_with_approximate("gelu", _unary("gelu"), 1))
torch.library.register_fake(lib + "gelu_backward")(
    _with_approximate("gelu_backward", _backward("gelu_backward"), 2)
)
torch.library.register_fake(lib + "gelu_double_backward")(
    _with_approximate("gelu_double_backward", _double_backward("gelu_double_backward"), 3)
)
for _name in ("silu", "swish", "relu"):
    torch.library.register_fake(lib + _name)(_unary(_name))
for _name in ("silu_backward", "swish_backward", "relu_backward"):
    torch.library.register_fake(lib + _name)(_backward(_name))
for _name in ("silu_double_backward", "swish_double_backward"):
    torch.library.register_fake(lib + _name)(_double_backward(_name))


@torch.library.register_fake(lib + "swish.Tensor")
def _swish_tensor(x, beta):
    check_float_tensor("swish", "x", x)
    check_beta("swish", "beta", beta, x)
    return torch.empty_like(x)


@torch.library.register_fake(lib + "swish_backward.Tensor")
def _swish_tensor_backward(grad, x, beta, beta_requires_grad):
    op = "swish_backward"
    check_float_tensor(op, "x", x)
    check_like(op, "grad", grad, x)
    check_beta(op, "beta", beta, x)
    grad_beta = torch.empty_like(beta) if beta_requires_grad else beta.new_empty(0)
    return torch.empty_like(x), grad_beta


@torch.library.register_fake(lib + "swish_double_backward.Tensor")
def _swish_tensor_double_backward(grad_grad_x, grad_grad_beta, grad, x, beta, beta_requires_grad):
    op = "swish_double_backward"
    check_float_tensor(op, "x", x)
    check_like(op, "grad_grad_x", grad_grad_x, x)
    check_like(op, "grad", grad, x)
    check_beta(op, "beta", beta, x)
    check_float_tensor(op, "grad_grad_beta", grad_grad_beta)
    check_same_device(op, "grad_grad_beta", grad_grad_beta, "x", x)
    check_same_shape(op, "grad_grad_beta", grad_grad_beta, "beta", beta)
    grad_beta = torch.empty_like(beta) if beta_requires_grad else beta.new_empty(0)
    return torch.empty_like(x), torch.empty_like(x), grad_beta


# ---- gating ops -------------------------------------------------------------------------------
@torch.library.register_fake(lib + "act_and_mul")
def _act_and_mul(gate, up, activation="silu", beta=1.0):
    check_gate_up("act_and_mul", gate, up)
    check_activation("act_and_mul", activation, beta)
    return torch.empty_like(gate)


@torch.library.register_fake(lib + "act_and_mul_backward")
def _act_and_mul_backward(grad, gate, up, activation, beta):
    op = "act_and_mul_backward"
    check_gate_up(op, gate, up)
    check_like(op, "grad", grad, gate, "gate")
    check_activation(op, activation, beta)
    return torch.empty_like(gate), torch.empty_like(up)


@torch.library.register_fake(lib + "act_and_mul_double_backward")
def _act_and_mul_double_backward(grad_grad_gate, grad_grad_up, grad, gate, up, activation, beta):
    op = "act_and_mul_double_backward"
    check_gate_up(op, gate, up)
    for name, t in (("grad", grad), ("grad_grad_gate", grad_grad_gate), ("grad_grad_up", grad_grad_up)):
        check_like(op, name, t, gate, "gate")
    check_activation(op, activation, beta)
    return torch.empty_like(grad), torch.empty_like(gate), torch.empty_like(up)


@torch.library.register_fake(lib + "act_and_mul_packed")
def _act_and_mul_packed(h, activation="silu", beta=1.0):
    check_packed("act_and_mul_packed", h)
    check_activation("act_and_mul_packed", activation, beta)
    return h.new_empty(half_shape(h))


@torch.library.register_fake(lib + "act_and_mul_packed.out")
def _act_and_mul_packed_out(h, activation="silu", beta=1.0, *, out):
    check_packed("act_and_mul_packed", h)
    check_half("act_and_mul_packed", "out", out, h)
    check_out_inference("act_and_mul_packed", out)
    check_activation("act_and_mul_packed", activation, beta)
    return out


@torch.library.register_fake(lib + "act_and_mul_packed_backward")
def _act_and_mul_packed_backward(grad, h, activation, beta):
    op = "act_and_mul_packed_backward"
    check_packed(op, h)
    check_half(op, "grad", grad, h)
    check_activation(op, activation, beta)
    return h.new_empty(h.shape)


@torch.library.register_fake(lib + "act_and_mul_packed_double_backward")
def _act_and_mul_packed_double_backward(grad_grad_h, grad, h, activation, beta):
    op = "act_and_mul_packed_double_backward"
    check_packed(op, h)
    check_half(op, "grad", grad, h)
    check_like(op, "grad_grad_h", grad_grad_h, h, "h")
    check_activation(op, activation, beta)
    return grad.new_empty(grad.shape), h.new_empty(h.shape)


# ---- projection ops ---------------------------------------------------------------------------
def _out_shape(x, d):
    return (*x.shape[:-1], d)


def _rows(x):
    """x's rows, M = the product of its leading sizes, as a symbolic expression under dynamic
    shapes (torch.Size.numel() specialised them: one graph per token count)."""
    return math.prod(x.shape[:-1])


@torch.library.register_fake(lib + "gated_linear")
def _gated_linear(x, w1, w3, b1=None, b3=None, activation="sigmoid", beta=1.0):
    d = check_projection("gated_linear", x, w1, w3, b1, b3, activation, beta)
    return x.new_empty(_out_shape(x, d))


@torch.library.register_fake(lib + "packed_linear")
def _packed_linear(x, w1, w3, b1, b3):
    d = check_projection("packed_linear", x, w1, w3, b1, b3)
    return x.new_empty((_rows(x), 2 * d))


@torch.library.register_fake(lib + "packed_linear_backward")
def _packed_linear_backward(grad_h, x, w1, w3, b1, b3, output_mask):
    op = "packed_linear_backward"
    d = check_projection(op, x, w1, w3, b1, b3)
    m = _rows(x)
    check_same_kind(op, "grad_h", grad_h, "x", x)
    if tuple(grad_h.shape) != (m, 2 * d):
        raise ValueError(f"ffn_ext.{op}: grad_h must have shape {shape_str((m, 2 * d))}, got {shape_str(grad_h.shape)}")
    # A gradient not asked for is an empty tensor of its own, as the C++ op returns: outputs of one
    # op may not alias one another.
    dx = x.new_empty(x.shape if output_mask[0] else 0)
    dw13 = w1.new_empty((2 * d, w1.shape[1])) if output_mask[1] else x.new_empty(0)
    db13 = x.new_empty(2 * d if output_mask[2] else 0)
    return dx, dw13, db13
