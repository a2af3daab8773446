"""The gradients: gradcheck and gradgradcheck in float64 for every differentiable input, on every
device. Inputs avoid ReLU's kink at 0 (finite differences are meaningless there)."""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import ffn_ext

FNS = {
    "gelu": lambda x: ffn_ext.gelu(x),
    "gelu_tanh": lambda x: ffn_ext.gelu(x, approximate="tanh"),
    "silu": ffn_ext.silu,
    "swish_1.7": lambda x: ffn_ext.swish(x, 1.7),
    "swish_-0.4": lambda x: ffn_ext.swish(x, -0.4),
    "relu": ffn_ext.relu,
}


def _x(device, shape=(6, 5)):
    x = 3 * torch.randn(shape, dtype=torch.float64, device=device)
    x = torch.where(x.abs() < 0.05, x + 0.1, x)  # away from ReLU's kink
    return x.requires_grad_(True)


@pytest.mark.parametrize("name", list(FNS))
def test_gradcheck(name, device):
    assert gradcheck(FNS[name], (_x(device),))


@pytest.mark.parametrize("name", list(FNS))
def test_gradgradcheck(name, device):
    assert gradgradcheck(FNS[name], (_x(device),))


@pytest.mark.parametrize("name", list(FNS))
def test_gradcheck_strided_input(name, device):
    x = _x(device, (6, 10))[:, ::2]
    assert gradcheck(FNS[name], (x,))
    assert gradgradcheck(FNS[name], (x,))


@pytest.mark.parametrize("kind", ["scalar", "per_channel"])
def test_swish_tensor_beta_gradients(kind, device):
    x = _x(device)
    shape = () if kind == "scalar" else (x.shape[-1],)
    beta = (torch.rand(shape, dtype=torch.float64, device=device) * 3 - 1).requires_grad_(True)
    assert gradcheck(ffn_ext.swish, (x, beta))
    assert gradgradcheck(ffn_ext.swish, (x, beta))
    # beta alone, x alone
    xd, bd = x.detach(), beta.detach()
    assert gradgradcheck(lambda b: ffn_ext.swish(xd, b), (beta,))
    assert gradgradcheck(lambda t: ffn_ext.swish(t, bd), (x,))


def test_backward_ops_have_gradients(device):
    """The backward ops themselves, as a second-order user would call them."""
    x, g = _x(device), _x(device)
    ops = torch.ops.ffn_ext
    assert gradcheck(lambda g, x: ops.gelu_backward(g, x, "tanh"), (g, x))
    assert gradcheck(lambda g, x: ops.silu_backward(g, x), (g, x))
    assert gradcheck(lambda g, x: ops.swish_backward(g, x, 0.8), (g, x))
    assert gradcheck(lambda g, x: ops.relu_backward(g, x), (g, x))
    beta = torch.rand(x.shape[-1], dtype=torch.float64, device=device).requires_grad_(True)
    assert gradcheck(lambda g, x, b: ops.swish_backward.Tensor(g, x, b, True), (g, x, beta))


def test_saved_inputs_untouched(device):
    """The backward reads the saved inputs and writes fresh tensors only."""
    x = _x(device)
    x0 = x.detach().clone()
    y = ffn_ext.gelu(x)
    g = torch.randn_like(y)
    g0 = g.clone()
    (dx,) = torch.autograd.grad(y, x, g)
    assert torch.equal(x.detach(), x0) and torch.equal(g, g0)
    assert dx.data_ptr() not in (x.data_ptr(), g.data_ptr())
