"""The registration: torch.library.opcheck on every op (schema, fake kernel, autograd
registration, dispatcher round-trips), with and without requires_grad."""

import pytest
import torch

import ffn_ext  # noqa: F401

ops = torch.ops.ffn_ext


def _cases(device, requires_grad):
    def t(*shape, dtype=torch.float32):
        return torch.randn(*shape, dtype=dtype, device=device).requires_grad_(requires_grad)

    x, g, gg = t(4, 7), t(4, 7), t(4, 7)
    beta_c = torch.rand(7, device=device).requires_grad_(requires_grad)
    beta_0 = torch.tensor(0.9, device=device).requires_grad_(requires_grad)
    return [
        (ops.gelu.default, (x,), {}),
        (ops.gelu.default, (t(3, 5, dtype=torch.bfloat16),), {"approximate": "tanh"}),
        (ops.gelu_backward.default, (g, x), {"approximate": "none"}),
        (ops.gelu_backward.default, (g, x, "tanh"), {}),
        (ops.gelu_double_backward.default, (gg, g, x, "tanh"), {}),
        (ops.silu.default, (t(2, 3, 5, dtype=torch.float16),), {}),
        (ops.silu_backward.default, (g, x), {}),
        (ops.silu_double_backward.default, (gg, g, x), {}),
        (ops.swish.default, (x, 1.3), {}),
        (ops.swish_backward.default, (g, x, 1.3), {}),
        (ops.swish_double_backward.default, (gg, g, x, -0.5), {}),
        (ops.swish.Tensor, (x, beta_c), {}),
        (ops.swish.Tensor, (x, beta_0), {}),
        (ops.swish_backward.Tensor, (g, x, beta_c, True), {}),
        (ops.swish_backward.Tensor, (g, x, beta_0, False), {}),
        (ops.swish_double_backward.Tensor, (gg, beta_c.detach().clone().requires_grad_(requires_grad), g, x, beta_c, True), {}),
        (ops.relu.default, (x,), {}),
        (ops.relu_backward.default, (g, x), {}),
        (ops.gelu.default, (t(0, 3),), {}),
        (ops.gelu.default, (t(6, 4).t(),), {}),
        # gating
        (ops.act_and_mul.default, (x, g, "gelu", 1.0), {}),
        (ops.act_and_mul.default, (x, g), {"activation": "swish", "beta": 1.5}),
        (ops.act_and_mul_backward.default, (gg, x, g, "silu", 1.0), {}),
        (ops.act_and_mul_double_backward.default, (gg, gg, g, x, g, "gelu_tanh", 1.0), {}),
        (ops.act_and_mul_packed.default, (t(3, 16), "sigmoid", 1.0), {}),
        (ops.act_and_mul_packed.default, (t(2, 3, 10)[..., 1:9], "silu", 1.0), {}),
        (ops.act_and_mul_packed.out, (t(3, 16).detach(), "silu", 1.0), {"out": torch.empty(3, 8, device=device)}),
        (ops.act_and_mul_packed_backward.default, (t(3, 8), t(3, 16), "relu", 1.0), {}),
        (ops.act_and_mul_packed_double_backward.default, (t(3, 16), t(3, 8), t(3, 16), "identity", 1.0), {}),
        # projection
        (ops.gated_linear.default, (x, t(6, 7), t(6, 7), t(6), None, "silu", 1.0), {}),
        (ops.gated_linear.default, (t(2, 3, 7), t(6, 7), t(6, 7)), {"b3": t(6), "activation": "gelu"}),
        (ops.packed_linear.default, (x, t(6, 7), t(6, 7), None, t(6)), {}),
        (ops.packed_linear_backward.default, (t(4, 12).detach(), x.detach(), t(6, 7).detach(), t(6, 7).detach(), t(6).detach(),
                                              None, [True, True, True]), {}),
    ]


THIRD_ORDER = ("gelu_double_backward", "silu_double_backward", "swish_double_backward",
               "act_and_mul_double_backward", "act_and_mul_packed_double_backward")
# out= takes no autograd (refused with requires_grad; tests/test_gating.py checks the message).
# packed_linear_backward is internal to gated_linear's autograd (refused with requires_grad).
NO_AUTOGRAD = ("act_and_mul_packed.out", "packed_linear_backward.default")


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(device, requires_grad):
    for op, args, kwargs in _cases(device, requires_grad):
        if requires_grad and op._opname in THIRD_ORDER:
            # Their backward (a third derivative) raises by design: checked in test_third_order.
            continue
        if requires_grad and f"{op._opname}.{op._overloadname}" in NO_AUTOGRAD:
            continue
        if op._overloadname == "out":
            # PyTorch cannot functionalize a custom op whose output aliases an input (the out=
            # convention, Tensor(a!) -> Tensor(a!)), so AOT dispatch is not checked for it: out= is
            # for eager inference, and torch.compile users call the functional overload.
            torch.library.opcheck(op, args, kwargs, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
            continue
        torch.library.opcheck(op, args, kwargs)


def test_third_order_is_refused(device):
    x = torch.randn(5, dtype=torch.float64, device=device, requires_grad=True)
    y = ffn_ext.gelu(x)
    (g1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="ffn_ext.gelu_double_backward: third-order gradients are not implemented"):
        torch.autograd.grad(g2.sum(), x)


def test_every_op_is_covered():
    covered = {str(op).split(".")[-2] if op._overloadname != "default" else str(op).split(".")[-2]
               for op, _, _ in _cases("cpu", False)}
    schemas = {s.name.split("::")[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("ffn_ext::")}
    schemas -= {"_build_info", "_cpu_loops", "_emulated_launches"}  # no tensors: introspection, not maths
    assert schemas <= covered, schemas - covered
