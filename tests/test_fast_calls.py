"""The ops' fast Python entry points (csrc/python/fast_calls.cpp, ffn_ext._library.fast_calls):
the same results, autograd and errors as torch.ops.ffn_ext, and NotImplemented, having done
nothing, for every call that torch.ops must handle instead (tensor subclasses, torch function
modes, arguments of other types), which the public wrappers then send through torch.ops.

The values themselves are checked against the float64 references by test_maths.py and
test_gating.py, which call the public wrappers and so go through these entry points."""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch._subclasses.fake_tensor import FakeTensorMode

import ffn_ext
from ffn_ext._library import fast_calls

fast = fast_calls()
ops = torch.ops.ffn_ext

# name: (fast call, the same call through torch.ops, inputs' shape)
CALLS = {
    "gelu": (lambda x: fast.gelu(x, "none"), lambda x: ops.gelu(x, "none"), (4, 6)),
    "gelu_tanh": (lambda x: fast.gelu(x, "tanh"), lambda x: ops.gelu(x, "tanh"), (4, 6)),
    "silu": (lambda x: fast.silu(x), lambda x: ops.silu(x), (4, 6)),
    "relu": (lambda x: fast.relu(x), lambda x: ops.relu(x), (4, 6)),
    "swish": (lambda x: fast.swish(x, 1.5), lambda x: ops.swish(x, 1.5), (4, 6)),
    "swish_int_beta": (lambda x: fast.swish(x, 2), lambda x: ops.swish(x, 2.0), (4, 6)),
    "act_and_mul": (lambda x: fast.act_and_mul(x[:, :3], x[:, 3:], "gelu_tanh", 1.0),
                    lambda x: ops.act_and_mul(x[:, :3], x[:, 3:], "gelu_tanh", 1.0), (4, 6)),
    "act_and_mul_packed": (lambda x: fast.act_and_mul_packed(x, "silu", 1.0, None),
                           lambda x: ops.act_and_mul_packed(x, "silu", 1.0), (4, 6)),
    "act_and_mul_packed_swish": (lambda x: fast.act_and_mul_packed(x, "swish", 0.5, None),
                                 lambda x: ops.act_and_mul_packed(x, "swish", 0.5), (4, 6)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", list(CALLS))
def test_same_result_and_gradient_as_torch_ops(name, dtype, device):
    fast_call, ops_call, shape = CALLS[name]
    x = (torch.randn(shape, device=device) * 3).to(dtype)
    y = fast_call(x)
    assert y is not NotImplemented
    assert torch.equal(y, ops_call(x))
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    ya, yb = fast_call(xa), ops_call(xb)
    assert type(ya.grad_fn) is type(yb.grad_fn) and ya.grad_fn is not None
    g = torch.randn_like(ya)
    (ga,) = torch.autograd.grad(ya, xa, g)
    (gb,) = torch.autograd.grad(yb, xb, g)
    assert torch.equal(ga, gb)
    with torch.no_grad():
        assert fast_call(xa).grad_fn is None


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["silu", "gelu_tanh", "swish"])
def test_gated_linear_same_result_and_gradients_as_torch_ops(activation, bias, device):
    def args():
        torch.manual_seed(7)
        ws = [torch.randn(5, 4, device=device, dtype=torch.float64) for _ in range(2)]
        bs = [torch.randn(5, device=device, dtype=torch.float64) for _ in range(2)] if bias else [None, None]
        x = torch.randn(3, 2, 4, device=device, dtype=torch.float64)
        return [t.requires_grad_() if t is not None else None for t in (x, *ws, *bs)]

    a, b = args(), args()
    beta = 0.75 if activation == "swish" else 1.0
    ya = fast.gated_linear(*a, activation, beta)
    yb = ops.gated_linear(*b, activation, beta)
    assert ya is not NotImplemented and torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ga = torch.autograd.grad(ya, [t for t in a if t is not None], g)
    gb = torch.autograd.grad(yb, [t for t in b if t is not None], g)
    assert all(torch.equal(p, q) for p, q in zip(ga, gb))
    assert len(ga) == (5 if bias else 3)


def test_gated_linear_declines():
    x, w1, w3, b = torch.randn(2, 4), torch.randn(5, 4), torch.randn(5, 4), torch.randn(5)
    assert fast.gated_linear(x, w1, w3, b, None, "silu", 1) is not NotImplemented
    assert fast.gated_linear(x, w1, w3.as_subclass(Sub), None, None, "silu", 1.0) is NotImplemented
    assert fast.gated_linear(x, w1, w3, b.as_subclass(Sub), None, "silu", 1.0) is NotImplemented
    assert fast.gated_linear(x, w1, w3, None, [0.0] * 5, "silu", 1.0) is NotImplemented
    assert fast.gated_linear(x, w1, w3, None, None, "silu") is NotImplemented
    assert fast.gated_linear(x.numpy(), w1, w3, None, None, "silu", 1.0) is NotImplemented
    with Recorder():
        assert fast.gated_linear(x, w1, w3, None, None, "silu", 1.0) is NotImplemented


class Sub(torch.Tensor):
    pass


class Recorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if str(func).startswith("ffn_ext."):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(CALLS))
def test_declines_subclasses_and_torch_function_modes(name):
    fast_call, ops_call, shape = CALLS[name]
    x = torch.randn(shape)
    assert fast_call(x.as_subclass(Sub)) is NotImplemented
    with Recorder():
        assert fast_call(x) is NotImplemented


@pytest.mark.parametrize("activation, beta", [("silu", 1.0), ("gelu", 1.0), ("swish", 0.5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_out_same_result_as_torch_ops(activation, beta, dtype, device):
    h = (torch.randn(3, 2, 10, device=device) * 3).to(dtype)
    a, b = torch.full((3, 2, 5), float("nan"), device=device, dtype=dtype), torch.empty(3, 2, 5, device=device, dtype=dtype)
    version = a._version
    assert fast.act_and_mul_packed(h, activation, beta, a) is a  # out itself, as torch.ops returns it
    assert ops.act_and_mul_packed.out(h, activation, beta, out=b) is b
    assert torch.equal(a, b) and torch.equal(a, ops.act_and_mul_packed(h, activation, beta))
    assert a._version > version  # written in place: views and autograd see the change
    # Strided out (a slice of a wider buffer) and an odd, unaligned width.
    wide = torch.zeros(3, 2, 9, device=device, dtype=dtype)
    h = (torch.randn(3, 2, 6, device=device) * 3).to(dtype)
    fast.act_and_mul_packed(h, activation, beta, wide[..., 1:4])
    assert torch.equal(wide[..., 1:4], ops.act_and_mul_packed(h, activation, beta))
    assert not wide[..., :1].any() and not wide[..., 4:].any()


def test_out_declines():
    h, out = torch.randn(4, 6), torch.empty(4, 3)
    assert fast.act_and_mul_packed(h, "silu", 1.0, out.as_subclass(Sub)) is NotImplemented
    assert fast.act_and_mul_packed(h.as_subclass(Sub), "silu", 1.0, out) is NotImplemented
    assert fast.act_and_mul_packed(h, "silu", 1.0, [0.0] * 12) is NotImplemented
    assert fast.act_and_mul_packed(h, "silu", 1.0, out, out) is NotImplemented
    with Recorder():
        assert fast.act_and_mul_packed(h, "silu", 1.0, out) is NotImplemented
    with FakeTensorMode() as mode:
        y = ffn_ext.silu_and_mul(mode.from_tensor(h), out=mode.from_tensor(out))
    assert tuple(y.shape) == (4, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: fast.gelu(x, None),
        lambda x: fast.gelu(x),
        lambda x: fast.gelu(x.numpy(), "none"),
        lambda x: fast.silu(x, x),
        lambda x: fast.silu(1.0),
        lambda x: fast.swish(x, True),  # a bool is not a number here (as for ffn_ext.swish)
        lambda x: fast.swish(x, np.float64(1.5)),  # other numbers go through torch.ops' float()
        lambda x: fast.swish(x, torch.tensor(1.5)),  # the Tensor overload
        lambda x: fast.swish(x, 10**400),  # no double holds it
        lambda x: fast.act_and_mul(x, [1.0], "silu", 1.0),
        lambda x: fast.act_and_mul(x, x, b"silu", 1.0),
        lambda x: fast.act_and_mul_packed(x, "silu", None),
        lambda x: fast.act_and_mul_packed(x, "silu", "1.0", None),
    ],
)
def test_declines_other_arguments(call):
    x = torch.randn(4, 6)
    assert call(x) is NotImplemented


def test_wrappers_fall_back_to_torch_ops():
    x, w = torch.randn(4, 6), torch.randn(3, 6)
    block = ffn_ext.nn.FeedForward(6, 3)
    with Recorder() as rec:
        ffn_ext.silu_and_mul(x)
        ffn_ext.act_and_mul_packed(x, "gelu")
        ffn_ext.gelu_tanh_and_mul(x)
        ffn_ext.silu_and_mul(x, out=torch.empty(4, 3))
        ffn_ext.act_and_mul_packed(x, "relu", out=torch.empty(4, 3))
        ffn_ext.gelu_tanh_and_mul(x, out=torch.empty(4, 3))
        ffn_ext.act_and_mul(x[:, :3], x[:, 3:])
        ffn_ext.gelu(x)
        ffn_ext.silu(x)
        ffn_ext.swish(x, 2.0)
        ffn_ext.relu(x)
        ffn_ext.swiglu(x, w, w)
        ffn_ext.ffn(x, w, w.t(), w)
        block(x)
    assert rec.seen == ["ffn_ext.act_and_mul_packed"] * 3 + ["ffn_ext.act_and_mul_packed.out"] * 3 + [
        "ffn_ext.act_and_mul", "ffn_ext.gelu", "ffn_ext.silu", "ffn_ext.swish", "ffn_ext.relu"] + [
        "ffn_ext.gated_linear"] * 3
    # A subclass goes through torch.ops too, and keeps its __torch_function__ (its type survives).
    assert type(ffn_ext.silu_and_mul(x.as_subclass(Sub))) is Sub
    assert type(ffn_ext.silu(x.as_subclass(Sub))) is Sub
    assert type(ffn_ext.swiglu(x.as_subclass(Sub), w, w)) is Sub
    # Fake tensors (a subclass) get the fake kernel's shape.
    with FakeTensorMode() as mode:
        y = ffn_ext.silu_and_mul(mode.from_tensor(torch.randn(3, 8)))
    assert tuple(y.shape) == (3, 4)


@pytest.mark.parametrize(
    "fast_call, ops_call",
    [
        (lambda: fast.act_and_mul_packed(torch.randn(2, 3), "silu", 1.0, None),
         lambda: ops.act_and_mul_packed(torch.randn(2, 3), "silu", 1.0)),
        (lambda: fast.act_and_mul_packed(torch.randn(2, 4), "swishy", 1.0, None),
         lambda: ops.act_and_mul_packed(torch.randn(2, 4), "swishy", 1.0)),
        (lambda: fast.act_and_mul(torch.randn(2, 4), torch.randn(2, 5), "silu", 1.0),
         lambda: ops.act_and_mul(torch.randn(2, 4), torch.randn(2, 5), "silu", 1.0)),
        (lambda: fast.gelu(torch.randn(3), "tanhh"), lambda: ops.gelu(torch.randn(3), "tanhh")),
        (lambda: fast.gated_linear(torch.randn(2, 4), torch.randn(5, 4), torch.randn(5, 3), None, None, "silu", 1.0),
         lambda: ops.gated_linear(torch.randn(2, 4), torch.randn(5, 4), torch.randn(5, 3), None, None, "silu", 1.0)),
        (lambda: fast.silu(torch.ones(3, dtype=torch.int32)), lambda: ops.silu(torch.ones(3, dtype=torch.int32))),
        (lambda: fast.act_and_mul_packed(torch.randn(2, 4), "silu", 1.0, torch.empty(2, 3)),
         lambda: ops.act_and_mul_packed.out(torch.randn(2, 4), "silu", 1.0, out=torch.empty(2, 3))),
        (lambda: fast.act_and_mul_packed(torch.randn(2, 4), "silu", 1.0, torch.empty(2, 2, dtype=torch.float64)),
         lambda: ops.act_and_mul_packed.out(torch.randn(2, 4), "silu", 1.0, out=torch.empty(2, 2, dtype=torch.float64))),
        (lambda: fast.act_and_mul_packed(torch.randn(2, 4, requires_grad=True), "silu", 1.0, torch.empty(2, 2)),
         lambda: ops.act_and_mul_packed.out(torch.randn(2, 4, requires_grad=True), "silu", 1.0, out=torch.empty(2, 2))),
        (lambda: (lambda h: fast.act_and_mul_packed(h, "silu", 1.0, h[:, 1:3]))(torch.randn(1, 4)),
         lambda: (lambda h: ops.act_and_mul_packed.out(h, "silu", 1.0, out=h[:, 1:3]))(torch.randn(1, 4))),
    ],
)
def test_errors_as_torch_ops(fast_call, ops_call):
    with pytest.raises(Exception) as via_ops:
        ops_call()
    with pytest.raises(type(via_ops.value)) as via_fast:
        fast_call()
    assert str(via_fast.value) == str(via_ops.value)
    assert str(via_fast.value).startswith("ffn_ext.")


def test_no_reference_leaks():
    """The entry points borrow their arguments (a reference taken and not given back would keep
    every input of every call alive) and return the one reference to their result, on the
    taken path, the declined path and the error path alike."""
    import gc
    import sys
    import weakref

    x, w = torch.randn(4, 6), torch.randn(3, 6)
    name = "".join(["si", "lu"])  # a string of its own (the literal "silu" is shared, interned)
    bad, out = torch.randn(2, 3), torch.empty(4, 3)
    args = (x, w, name, bad, out)
    before = [sys.getrefcount(o) for o in args]
    for _ in range(100):
        fast.act_and_mul_packed(x, name, 1.0, None)
        fast.act_and_mul(x, x, name, 1.0)
        fast.gated_linear(x, w, w, None, None, name, 1.0)
        fast.silu(x)
        fast.gelu(x, "tanh")
        fast.swish(x, 2)
        assert fast.act_and_mul_packed(x, name, 1.0, out) is out
        assert fast.silu(x.as_subclass(Sub)) is NotImplemented
        assert fast.act_and_mul(x, [1.0], name, 1.0) is NotImplemented
        with pytest.raises(ValueError, match="must be even"):
            fast.act_and_mul_packed(bad, name, 1.0, None)
    gc.collect()
    assert [sys.getrefcount(o) for o in args] == before
    y = fast.act_and_mul_packed(x, name, 1.0, None)
    assert sys.getrefcount(y) == 2  # y and getrefcount's argument
    ref = weakref.ref(y)
    del y
    assert ref() is None
