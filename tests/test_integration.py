"""Integration: torch.compile(fullgraph=True), CUDA graph capture and replay, mixed devices."""

import pytest
import torch

import ffn_ext
import ffn_ext.reference as R
from conftest import assert_accurate, assert_cuda_graph_replays, requires_cuda


def _fns(device):
    beta = torch.linspace(0.5, 2, 16, device=device)
    return {
        "gelu": lambda x: ffn_ext.gelu(x) * 2,
        "gelu_tanh": lambda x: ffn_ext.gelu(x, approximate="tanh") + 1,
        "silu": lambda x: ffn_ext.silu(x) * 0.5,
        "swish": lambda x: ffn_ext.swish(x, 1.5),
        "swish_tensor": lambda x: ffn_ext.swish(x, beta),
        "relu": lambda x: ffn_ext.relu(x - 0.1),
    }


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "swish", "swish_tensor", "relu"])
def test_compile_fullgraph(name, device):
    torch._dynamo.reset()
    fn = _fns(device)[name]
    x = torch.randn(8, 16, device=device, requires_grad=True)
    compiled = torch.compile(fn, fullgraph=True, backend="inductor")
    want = fn(x)
    got = compiled(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    (gw,) = torch.autograd.grad(want.sum(), x)
    (gg,) = torch.autograd.grad(compiled(x).sum(), x)
    # The incoming gradient of .sum() can arrive as an expanded (stride-0) tensor. The CPU loops
    # read it as its one value and round as for a dense gradient: bitwise. On CUDA it takes the
    # strided kernel, within the fp32 rule of REFERENCE.md of the row kernel's result.
    tol = {"rtol": 0, "atol": 0} if device == "cpu" else {"rtol": 1e-6, "atol": 1e-7}
    torch.testing.assert_close(gg, gw, **tol)


def test_compile_dynamic_shapes(device):
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: ffn_ext.gelu(x), fullgraph=True, dynamic=True)
    for n in (5, 17, 33):
        x = torch.randn(n, 3, device=device)
        torch.testing.assert_close(compiled(x), ffn_ext.gelu(x), rtol=0, atol=0)


@requires_cuda
def test_cuda_graph_capture_and_replay():
    x = torch.randn(1024, 257, device="cuda")
    beta = torch.rand(257, device="cuda")
    fns = [lambda: ffn_ext.gelu(x), lambda: ffn_ext.gelu(x, "tanh"), lambda: ffn_ext.silu(x),
           lambda: ffn_ext.swish(x, beta), lambda: ffn_ext.relu(x)]
    assert_cuda_graph_replays(fns, (x,))


@requires_cuda
def test_current_stream_is_used():
    """Every kernel family launches on the caller's current stream. On a side stream held back by a
    wait of ~50 ms, the inputs are overwritten, then the ops run: on that stream they see the new
    values. A kernel launched on the default stream instead would run at once, on the old values
    (the default stream waits for nothing), and fail the check against the float64 formulas."""
    d = 1 << 10
    x, gx, h, dy = (torch.randn(s, device="cuda") for s in ((1 << 20,), (1 << 20,), (512, 2 * d), (512, d)))
    new_x, new_h = 3 * torch.randn_like(x), 3 * torch.randn_like(h)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)  # GPU clock cycles: ~50 ms
        x.copy_(new_x)
        h.copy_(new_h)
        y = ffn_ext.gelu(x)
        dx = torch.ops.ffn_ext.gelu_backward(gx, x)
        z = ffn_ext.silu_and_mul(h)
        dh = torch.ops.ffn_ext.act_and_mul_packed_backward(dy, h, "silu", 1.0)
    side.synchronize()
    gx64, u64, dy64 = gx.double().cpu(), new_h[:, d:].double().cpu(), dy.double().cpu()
    assert_accurate(y, R.gelu, new_x)
    assert_accurate(dx, lambda t: gx64 * R.gelu_d1(t), new_x)
    assert_accurate(z, lambda t: R.silu(t) * u64, new_h[:, :d])
    assert_accurate(dh[:, :d], lambda t: dy64 * u64 * R.silu_d1(t), new_h[:, :d])
    assert_accurate(dh[:, d:], lambda t: dy64 * R.silu(t), new_h[:, :d])


@requires_cuda
def test_mixed_devices_rejected():
    x = torch.randn(4, 3, device="cuda")
    g = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"ffn_ext.gelu_backward: grad must be on the same device as x \(cuda:0\), got cpu"):
        torch.ops.ffn_ext.gelu_backward(g, x)
    with pytest.raises(RuntimeError, match=r"ffn_ext.swish: beta must be on the same device as x \(cuda:0\), got cpu"):
        ffn_ext.swish(x, torch.ones(3))


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_gpu_device_guard():
    """On a second GPU (the current device stays cuda:0) the kernels run there, right."""
    x = torch.randn(1000, device="cuda:1")
    y = ffn_ext.gelu(x)
    assert y.device == x.device
    assert_accurate(y, R.gelu, x)
