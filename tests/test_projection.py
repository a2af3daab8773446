"""Projection-level ops (swiglu, geglu, reglu, gated_linear, ffn) and the nn modules: values
against the float64 formulas of REFERENCE.md, gradients of every input (gradcheck, gradgradcheck),
registration (opcheck), compile and export, autocast, presets, memory, and the error texts."""

import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import ffn_ext
import ffn_ext.reference as R
from ffn_ext._memory import cuda_memory_stats, memory_of
from conftest import DEVICES, FLOAT_DTYPES, HAS_CUDA, LOWP, own_swish, profile_ops, requires_cuda, ulp

ops = torch.ops.ffn_ext
BETA = 1.3

# activation of the gating op -> (float64 f, float64 f', PyTorch's own f in any dtype)
ACTS = {
    "silu": (R.silu, R.silu_d1, F.silu),
    "gelu": (R.gelu, R.gelu_d1, F.gelu),
    "gelu_tanh": (R.gelu_tanh, R.gelu_tanh_d1, lambda t: F.gelu(t, approximate="tanh")),
    "relu": (R.relu, R.relu_d1, F.relu),
    "sigmoid": (R.sigmoid, lambda t: R.sigmoid(t) * R.sigmoid(-t), torch.sigmoid),
    "identity": (lambda t: t, lambda t: torch.ones_like(t), lambda t: t),
    "swish": (lambda t: R.swish(t, BETA), lambda t: R.swish_dx(t, BETA), lambda t: own_swish(t, BETA)),
}

# the public functions and the activation each one means
CALLS = {
    "swiglu": (lambda x, w1, w3, b1, b3: ffn_ext.swiglu(x, w1, w3, b1, b3), "silu"),
    "geglu": (lambda x, w1, w3, b1, b3: ffn_ext.geglu(x, w1, w3, b1, b3), "gelu"),
    "geglu_tanh": (lambda x, w1, w3, b1, b3: ffn_ext.geglu(x, w1, w3, b1, b3, approximate="tanh"), "gelu_tanh"),
    "reglu": (lambda x, w1, w3, b1, b3: ffn_ext.reglu(x, w1, w3, b1, b3), "relu"),
    "glu": (lambda x, w1, w3, b1, b3: ffn_ext.gated_linear(x, w1, w3, b1, b3), "sigmoid"),
    "bilinear": (lambda x, w1, w3, b1, b3: ffn_ext.gated_linear(x, w1, w3, b1, b3, "identity"), "identity"),
    "swish": (lambda x, w1, w3, b1, b3: ffn_ext.gated_linear(x, w1, w3, b1, b3, "swish", BETA), "swish"),
}


def _weights(d, k, dtype, device, adjacent=False, bias="both", requires_grad=False):
    """w1, w3 [d, k] (adjacent: views of one [2d, k] tensor), b1, b3 [d] or None."""
    s = 1 / math.sqrt(k)
    if adjacent:
        w13 = (torch.randn(2 * d, k, dtype=torch.float64) * s).to(dtype).to(device)
        w13.requires_grad_(requires_grad)
        w1, w3 = w13[:d], w13[d:]
    else:
        w1, w3 = ((torch.randn(d, k, dtype=torch.float64) * s).to(dtype).to(device).requires_grad_(requires_grad)
                  for _ in range(2))
    b1 = torch.randn(d, dtype=dtype, device=device).requires_grad_(requires_grad) if bias in ("both", "b1") else None
    b3 = torch.randn(d, dtype=dtype, device=device).requires_grad_(requires_grad) if bias in ("both", "b3") else None
    return w1, w3, b1, b3


def _lin64(x, w, b):
    y = x.double().cpu() @ w.double().cpu().T
    return y if b is None else y + b.double().cpu()


def _reference(act, x, w1, w3, b1, b3):
    f = ACTS[act][0]
    return f(_lin64(x, w1, b1)) * _lin64(x, w3, b3)


def _own(act, x, w1, w3, b1, b3):
    """PyTorch eager in the inputs' dtype."""
    return ACTS[act][2](F.linear(x, w1, b1)) * F.linear(x, w3, b3)


def _gemm_scale(act, x, w1, w3, b1, b3):
    """How much y moves when each projection moves by one unit of rounding of its terms:
    |f'(g)| |u| A1 + |f(g)| A3, with A = |x| |w|^T + |b| (the sum of the GEMM's term sizes)."""
    f, d1 = ACTS[act][0], ACTS[act][1]
    x64 = x.double().cpu()
    g, u = _lin64(x, w1, b1), _lin64(x, w3, b3)

    def a(w, b):
        s = x64.abs() @ w.double().cpu().abs().T
        return s if b is None else s + b.double().cpu().abs()

    return d1(g).abs() * u.abs() * a(w1, b1) + f(g).abs() * a(w3, b3)


def projection_bound(dtype, act, x, w1, w3, b1, b3):
    """(the float64 reference of act(x w1^T + b1) * (x w3^T + b3), the error bound of a result in
    `dtype`): 2x PyTorch's own same-dtype error + 1 ulp of the result, plus what the two roundings
    of the projections to the dtype and the GEMMs' summation order can move it (our GEMMs may sum in
    another order: one [2d] GEMM instead of two): |f'(g)||u| ulp(g) + |f(g)| ulp(u), and
    4 eps_acc sqrt(K) times the GEMM scale, eps_acc the accumulation precision (float32 for the
    half types, as cuBLAS and ATen's CPU GEMMs accumulate)."""
    f, d1 = ACTS[act][0], ACTS[act][1]
    g, u = _lin64(x, w1, b1), _lin64(x, w3, b3)
    ref = f(g) * u
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    gemm = 4 * torch.finfo(acc).eps * math.sqrt(x.shape[-1]) * _gemm_scale(act, x, w1, w3, b1, b3)
    if dtype == torch.float64:
        return ref, gemm + 1e-300
    own = (_own(act, x, w1, w3, b1, b3).detach().double().cpu() - ref).abs()
    h_round = d1(g).abs() * u.abs() * ulp(g, dtype) + f(g).abs() * ulp(u, dtype)
    return ref, 2 * own + ulp(ref, dtype) + h_round + gemm


def assert_projection_accurate(y, act, x, w1, w3, b1, b3):
    """y within projection_bound of the float64 reference."""
    ref, bound = projection_bound(y.dtype, act, x, w1, w3, b1, b3)
    assert y.shape == ref.shape and y.dtype == x.dtype
    err = (y.detach().double().cpu() - ref).abs()
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{int(bad.sum())} of {bad.numel()} out of tolerance ({y.dtype}, {act}); max err "
        f"{err.max().item():.3e}, first at {bad.nonzero()[0].tolist()}: err "
        f"{err[bad][0].item():.3e} bound {bound[bad][0].item():.3e}"
    )


# The ATen GEMM kernels (what F.linear, matmul and @ reach), as the profiler names them: counted.
GEMM_KERNELS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::addbmm",
                "aten::_addmm_activation", "aten::mv", "aten::addmv"}
# ... and the composite ops above them: none may run where no GEMM may.
GEMM_OPS = GEMM_KERNELS | {"aten::matmul", "aten::linear"}
# What an unfused gating would run (activation, then multiply).
UNFUSED_GATING = {"aten::silu", "aten::silu_", "aten::gelu", "aten::gelu_", "aten::sigmoid", "aten::sigmoid_",
                  "aten::relu", "aten::relu_", "aten::tanh", "aten::tanh_", "aten::erf", "aten::erfc", "aten::exp",
                  "aten::mul", "aten::mul_", "aten::add", "aten::add_", "aten::threshold", "aten::clamp_min",
                  "aten::glu", "aten::silu_backward", "aten::gelu_backward", "aten::sigmoid_backward",
                  "aten::threshold_backward", "aten::tanh_backward"}


@pytest.fixture(params=["native", "cpu_as_cuda"])
def paths(request, monkeypatch, device):
    """On CPU, also run the CUDA path's choices (packed h, one GEMM for adjacent weights):
    FFN_EXT_CPU_AS_CUDA=1 (csrc/projection.cpp)."""
    if request.param == "cpu_as_cuda":
        if device != "cpu":
            pytest.skip("the CUDA path itself runs on CUDA")
        monkeypatch.setenv("FFN_EXT_CPU_AS_CUDA", "1")
    return request.param


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
@pytest.mark.parametrize("bias", ["none", "both", "b1", "b3"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("call", list(CALLS))
def test_values(call, dtype, bias, adjacent, grad, device, paths):
    """Forward values without autograd (two [M, d] projections unless one GEMM computes both) and
    with it (the packed h of the training path: the halves of separate weights are strided)."""
    fn, act = CALLS[call]
    x = torch.randn(2, 5, 48, dtype=dtype, device=device)
    w1, w3, b1, b3 = _weights(40, 48, dtype, device, adjacent, bias, requires_grad=grad)
    y = fn(x, w1, w3, b1, b3)
    assert y.shape == (2, 5, 40) and y.requires_grad == grad
    assert_projection_accurate(y.detach(), act, x, w1, w3, b1, b3)


@pytest.mark.parametrize("shape", [(48,), (7, 48), (2, 3, 4, 48), (0, 48), (3, 0, 48)], ids=str)
def test_leading_shapes(shape, device, paths):
    x = torch.randn(shape, device=device)
    w1, w3, b1, b3 = _weights(24, 48, torch.float32, device, bias="both")
    y = ffn_ext.swiglu(x, w1, w3, b1, b3)
    assert y.shape == (*shape[:-1], 24)
    assert_projection_accurate(y, "silu", x, w1, w3, b1, b3)


def test_non_contiguous_x_and_weights(device):
    x = torch.randn(48, 6, device=device).t()  # [6, 48], transposed
    w1 = torch.randn(48, 40, device=device).t()  # [40, 48], transposed
    w3 = torch.randn(40, 96, device=device)[:, ::2]  # strided columns
    y = ffn_ext.swiglu(x, w1, w3)
    assert_projection_accurate(y, "silu", x, w1, w3, None, None)


def test_adjacent_weights_match_separate(device, paths):
    x = torch.randn(9, 32, device=device, dtype=torch.float64)
    w1, w3, b1, b3 = _weights(16, 32, torch.float64, device, adjacent=True)
    y_adj = ffn_ext.swiglu(x, w1, w3, b1, b3)
    y_sep = ffn_ext.swiglu(x, w1.clone(), w3.clone(), b1, b3)
    torch.testing.assert_close(y_adj, y_sep, rtol=1e-13, atol=1e-13)


# ---- what runs: GEMMs and the fused gating, as the profiler records them --------------------------------
@pytest.mark.parametrize("mode", ["inference", "training", "autocast"])
def test_errors_come_before_any_gemm(mode, device, paths):
    """Arguments that a GEMM would accept by broadcasting (a [1] bias; addmm takes it) and a down
    projection that does not fit are refused before any GEMM runs: the profiler, which sees the C++
    op's GEMMs too (monkeypatching torch.mm cannot), records none. Without grad (the op's kernel
    checks), with it (the autograd kernel checks before packed_linear) and under autocast (its
    kernel casts, then the op checks)."""
    grad = mode == "training"
    x = torch.randn(4, 16, device=device)
    w1, w3, _, _ = _weights(8, 16, torch.float32, device, adjacent=True, requires_grad=grad)
    one = torch.randn(1, device=device, requires_grad=grad)
    w2, b2 = torch.randn(16, 8, device=device, requires_grad=grad), torch.randn(16, device=device)
    assert F.linear(x, w1, one).shape == (4, 8)  # what a GEMM accepts
    bias = r"{} must be \[out_features\] = \[{}\], got shape \[1\]"
    down = r"ffn_ext.ffn: w2 must be \[out_features, d\] with d = w1.shape\[0\] = 8, got shape \[16, 5\]"
    cases = [
        (lambda: ffn_ext.swiglu(x, w1, w3, one), "ffn_ext.swiglu: " + bias.format("b1", 8)),
        (lambda: ffn_ext.geglu(x, w1, w3, None, one), "ffn_ext.geglu: " + bias.format("b3", 8)),
        (lambda: ops.gated_linear(x, w1, w3, one, None, "silu", 1.0), "ffn_ext.gated_linear: " + bias.format("b1", 8)),
        (lambda: ffn_ext.ffn(x, w1, w2, w3, one), "ffn_ext.ffn: " + bias.format("b1", 8)),
        (lambda: ffn_ext.ffn(x, w1, w2, w3, b2=one), "ffn_ext.ffn: " + bias.format("b2", 16)),
        (lambda: ffn_ext.ffn(x, w1, w2, None, b2=one), "ffn_ext.ffn: " + bias.format("b2", 16)),
        (lambda: ffn_ext.ffn(x, w1, torch.randn(16, 5, device=device), w3), down),
        (lambda: ffn_ext.ffn(x, w1, torch.randn(16, 5, device=device)), down),
        (lambda: ffn_ext.ffn(x, w1, w2, w3, None, torch.randn(16, 1, device=device)),
         r"ffn_ext.ffn: b2 must be \[out_features\] = \[16\], got shape \[16, 1\]"),
    ]
    for i, (fn, text) in enumerate(cases):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=mode == "autocast"):
            out, ran, _ = profile_ops(fn)
        assert isinstance(out, ValueError) and re.fullmatch(text, str(out)), (i, out)
        gemms = [name for name, _ in ran if name in GEMM_OPS]
        assert not gemms, (i, gemms)
    _, ran, _ = profile_ops(lambda: ffn_ext.ffn(x, w1, w2, w3, None, b2))  # the profiler sees the GEMMs
    assert sum(name in GEMM_KERNELS for name, _ in ran) >= 2


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
@pytest.mark.parametrize("call", list(CALLS))
def test_gating_is_one_fused_kernel(call, adjacent, grad, device, paths):
    """Between the GEMMs the gating is one ffn_ext kernel: no ATen activation, multiply or add runs,
    forward or backward. Without autograd it is act_and_mul on two [M, d] projections, or
    act_and_mul_packed where one GEMM computes the packed h (adjacent weights on CUDA, or with
    FFN_EXT_CPU_AS_CUDA=1); with autograd act_and_mul_packed, and its backward forms the packed
    dh = [dgate | dup] in one act_and_mul_packed_backward."""
    fn, act = CALLS[call]
    x = torch.randn(2, 3, 16, device=device, requires_grad=grad)
    w1, w3, b1, b3 = _weights(8, 16, torch.float32, device, adjacent, "both", requires_grad=grad)
    ins = (x, w1, w3, b1, b3)
    dy = torch.randn(2, 3, 8, device=device)

    def run():
        y = fn(*ins)
        return y, (torch.autograd.grad(y, ins, dy) if grad else None)

    with torch.set_grad_enabled(grad):
        (y, grads), ran, _ = profile_ops(run)
    names = [name for name, _ in ran]
    assert not set(names) & UNFUSED_GATING, sorted(set(names) & UNFUSED_GATING)
    packed = grad or (adjacent and (device == "cuda" or paths == "cpu_as_cuda"))
    fused = [name for name, b in ran if not b and name.startswith("ffn_ext::act_and_mul")]
    assert fused == ["ffn_ext::act_and_mul_packed" if packed else "ffn_ext::act_and_mul"]
    bwd = [name for name, b in ran if b and name.startswith("ffn_ext::act_and_mul")]
    assert bwd == (["ffn_ext::act_and_mul_packed_backward"] if grad else [])
    assert_projection_accurate(y.detach(), act, x, w1, w3, b1, b3)
    if grad:
        assert_gradients_accurate(grads, act, ins, dy, range(5))


@pytest.mark.parametrize("wrt", ["weights", "weights_x_trainable", "x_and_weights"])
@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
def test_backward_gemm_count(adjacent, wrt, device, paths):
    """The packed [dgate | dup] design, counted: the backward takes both weight gradients from one
    GEMM (dW13 = dhᵀ x); dx, when asked for, is one more GEMM where one matrix holds both weights
    (adjacent weights on CUDA or with FFN_EXT_CPU_AS_CUDA=1: dh W13), else two (dgate W1, then
    dup W3 added: mm and addmm_). An x that requires grad but is not asked for costs no GEMM. The
    forward: one GEMM where one matrix holds both weights, else two. The gradients are checked
    against float64 autograd with the bounds of test_backward_values."""
    x = torch.randn(6, 16, device=device, requires_grad=wrt != "weights")
    w1, w3, _, _ = _weights(8, 16, torch.float32, device, adjacent, "none", requires_grad=True)
    ins = (x, w1, w3) if wrt == "x_and_weights" else (w1, w3)
    dy = torch.randn(6, 8, device=device)
    got, ran, _ = profile_ops(lambda: torch.autograd.grad(ffn_ext.swiglu(x, w1, w3), ins, dy))
    one_matrix = adjacent and (device == "cuda" or paths == "cpu_as_cuda")
    assert not [name for name, _ in ran if name in {"aten::matmul", "aten::linear"}]
    fwd = [name for name, b in ran if name in GEMM_KERNELS and not b]
    bwd = [name for name, b in ran if name in GEMM_KERNELS and b]
    assert fwd == ["aten::mm"] * (1 if one_matrix else 2), fwd
    want = ["aten::mm"]  # dW13
    if wrt == "x_and_weights":
        want += ["aten::mm"] if one_matrix else ["aten::mm", "aten::addmm_"]
    assert sorted(bwd) == sorted(want), bwd
    assert_gradients_accurate(got, "silu", (x, w1, w3, None, None), dy, range(3) if wrt == "x_and_weights" else (1, 2))


# ---- gradients -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", ["both", "none"])
@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
@pytest.mark.parametrize("call", list(CALLS))
def test_gradcheck_every_input(call, adjacent, bias, device, paths):
    """x, w1, w3 (and both biases where given) require grad; without biases the graph node has
    three inputs, with them five."""
    fn = CALLS[call][0]
    x = torch.randn(2, 3, 6, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(5, 6, torch.float64, device, adjacent, bias, requires_grad=True)
    bs = (b1, b3) if bias == "both" else ()

    def f(x, w1, w3, *bs):
        return fn(x, w1, w3, *(bs or (None, None)))

    if adjacent:
        w13 = w1._base
        assert torch.autograd.gradcheck(lambda x, w, *bs: f(x, w[:5], w[5:], *bs), (x, w13, *bs))
    else:
        assert torch.autograd.gradcheck(f, (x, w1, w3, *bs))


@pytest.mark.parametrize("bias", ["none", "b1", "b3"])
def test_gradcheck_partial_biases_and_frozen_weights(bias, device):
    x = torch.randn(4, 6, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(5, 6, torch.float64, device, bias=bias)
    w1.requires_grad_(True)  # w3 frozen
    args = [x, w1] + [b for b in (b1, b3) if b is not None]
    for b in args[2:]:
        b.requires_grad_(True)

    def fn(x, w1, *bs):
        it = iter(bs)
        return ffn_ext.swiglu(x, w1, w3, next(it) if b1 is not None else None, next(it) if b3 is not None else None)

    assert torch.autograd.gradcheck(fn, tuple(args))


@pytest.mark.parametrize("bias", ["both", "none"])
@pytest.mark.parametrize("call", ["swiglu", "geglu_tanh", "glu", "swish"])
def test_gradgradcheck(call, bias, device):
    fn = CALLS[call][0]
    x = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(4, 5, torch.float64, device, False, bias, requires_grad=True)
    if bias == "both":
        assert torch.autograd.gradgradcheck(fn, (x, w1, w3, b1, b3))
    else:
        assert torch.autograd.gradgradcheck(lambda x, w1, w3: fn(x, w1, w3, None, None), (x, w1, w3))


@pytest.mark.parametrize("create_graph", [False, True])
def test_second_order_with_a_dependent_incoming_gradient(create_graph, device):
    """A gradient penalty: the first backward's incoming gradient (2y for sum(y^2)) depends on x and
    the weights itself, and the second order must count that path once (against eager autograd in
    float64)."""
    x = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(4, 5, torch.float64, device, False, "both", requires_grad=True)
    ins = (x, w1, w3, b1, b3)

    def second(fn):
        y = fn(*ins)
        gs = torch.autograd.grad(y.square().sum(), ins, create_graph=True)
        penalty = sum(g.square().sum() for g in gs)
        return torch.autograd.grad(penalty, ins, create_graph=create_graph)

    got = second(ffn_ext.swiglu)
    want = second(lambda *a: _own("silu", *a))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_third_order_refused(device):
    x = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, _, _ = _weights(4, 5, torch.float64, device, bias="none")
    (gx,) = torch.autograd.grad(ffn_ext.swiglu(x, w1, w3).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad(gx.square().sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="third-order gradients are not implemented"):
        torch.autograd.grad(ggx.square().sum(), x)


D2 = {"silu": R.silu_d2, "gelu": R.gelu_d2, "gelu_tanh": R.gelu_tanh_d2, "relu": torch.zeros_like,
      "sigmoid": lambda t: R.sigmoid(t) * R.sigmoid(-t) * R.sigmoid_diff(t), "identity": torch.zeros_like,
      "swish": lambda t: R.swish_dxx(t, BETA)}


def gradient_bounds(act, dtype, x, w1, w3, b1, b3, dy, e_dy=None):
    """Element-wise error bounds of the gradients (x, w1, w3, b1, b3) in `dtype`, beyond 2x
    PyTorch's own error and one ulp of each: the model of our backward. The packed dh = [dg | du]
    is computed in float32 from the projections rounded to the dtype (which moves dg by
    |dy| (|u f''(g)| ulp(g) + |f'(g)| ulp(u)) and du by |dy f'(g)| ulp(g)) and rounded once; the
    GEMMs and sums over it carry those errors with the absolute values of their other factor, and
    add 4 eps_acc sqrt(n) times the sum of their terms' sizes (eps_acc of float32 accumulation).
    x and dy are [M, in] and [M, d]. e_dy: where the incoming gradient is itself a rounded result
    (the down projection's backward in ffn) and dy its exact value, a bound on its error; it moves
    dg by e_dy |u f'(g)| and du by e_dy |f(g)|, and the terms above by |dy| + e_dy."""
    f, d1, d2 = ACTS[act][0], ACTS[act][1], D2[act]
    x64, a1, a3 = (t.double().cpu() for t in (x, w1, w3))
    g, u = _lin64(x, w1, b1), _lin64(x, w3, b3)
    dy64 = dy.double().cpu()
    e_in = torch.zeros_like(dy64) if e_dy is None else e_dy.double().cpu()
    dya = dy64.abs() + e_in
    dg, du = dy64 * u * d1(g), dy64 * f(g)
    dga, dua = dg.abs() + e_in * (u * d1(g)).abs(), du.abs() + e_in * f(g).abs()  # |dg|, |du| of the dy used
    e_dg = dya * (u.abs() * d2(g).abs() * ulp(g, dtype) + d1(g).abs() * ulp(u, dtype)) + ulp(dga, dtype)
    e_du = dya * d1(g).abs() * ulp(g, dtype) + ulp(dua, dtype)
    e_dg, e_du = e_dg + (dga - dg.abs()), e_du + (dua - du.abs())
    acc = 4 * torch.finfo(torch.float32).eps
    m, d = dg.shape
    X, A1, A3 = x64.abs(), a1.abs(), a3.abs()
    return (
        e_dg @ A1 + e_du @ A3 + acc * math.sqrt(2 * d) * (dga @ A1 + dua @ A3),  # x
        e_dg.T @ X + acc * math.sqrt(m) * (dga.T @ X),  # w1
        e_du.T @ X + acc * math.sqrt(m) * (dua.T @ X),  # w3
        e_dg.sum(0) + acc * math.sqrt(m) * dga.sum(0),  # b1
        e_du.sum(0) + acc * math.sqrt(m) * dua.sum(0),  # b3
    )


def assert_gradients_accurate(got, act, ins, dy, wrt):
    """got: the gradients of act(x w1ᵀ + b1) * (x w3ᵀ + b3) with respect to ins[i] for i in wrt
    (ins = x, w1, w3, b1, b3 in one dtype; 0..4), for the incoming gradient dy. Each element within
    2x PyTorch's own same-dtype error (eager autograd of _own) + 1 ulp + gradient_bounds, against
    float64 autograd of the same formula."""
    dtype, wrt = ins[0].dtype, list(wrt)
    x2, dy2 = ins[0].detach().reshape(-1, ins[0].shape[-1]), dy.reshape(-1, dy.shape[-1])

    def grads(*ts):
        ts = [None if t is None else t.detach().clone().requires_grad_(i in wrt) for i, t in enumerate(ts)]
        return torch.autograd.grad(_own(act, *ts), [ts[i] for i in wrt], dy.to(ts[0].dtype))

    own, ref = grads(*ins), grads(*(None if t is None else t.double() for t in ins))
    model = gradient_bounds(act, dtype, x2, *ins[1:], dy2)
    for i, g, o, r in zip(wrt, got, own, ref):
        assert g is not None and g.dtype == dtype and g.shape == ins[i].shape, (i, g)
        r = r.cpu()
        err = (g.double().cpu() - r).abs()
        bound = 2 * (o.double().cpu() - r).abs() + ulp(r, dtype) + model[i].reshape(r.shape)
        bad = ~(err <= bound)
        assert not bad.any(), ("x w1 w3 b1 b3".split()[i], act, int(bad.sum()), bad.numel(), err[bad][:4], bound[bad][:4])


@pytest.mark.parametrize("call", ["swiglu", "geglu", "geglu_tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_backward_values(dtype, call, device, paths):
    """Gradients in fp32/bf16/fp16 against float64 autograd of the formula, element by element:
    at most twice PyTorch's own same-dtype error plus one ulp, plus what gradient_bounds allows
    for the rounding of our intermediate results."""
    fn, act = CALLS[call]
    x = torch.randn(6, 32, dtype=dtype, device=device)
    w1, w3, b1, b3 = _weights(24, 32, dtype, device, adjacent=True)
    dy = torch.randn(6, 24, dtype=dtype, device=device)

    def grads(f, *ts):
        ts = [t.detach().clone().requires_grad_(True) for t in ts]
        return torch.autograd.grad(f(*ts), ts, dy.to(ts[0].dtype))

    ins = (x, w1, w3, b1, b3)
    got = grads(fn, *ins)
    own = grads(lambda *a: _own(act, *a), *ins)
    ref = grads(lambda *a: _own(act, *a), *(t.double() for t in ins))
    model = gradient_bounds(act, dtype, *ins, dy)
    for name, g, o, r, e in zip(("x", "w1", "w3", "b1", "b3"), got, own, ref, model):
        r = r.cpu()
        err = (g.double().cpu() - r).abs()
        bound = 2 * (o.double().cpu() - r).abs() + ulp(r, dtype) + e
        bad = ~(err <= bound)
        assert not bad.any(), (name, int(bad.sum()), bad.numel(), err[bad][:4], bound[bad][:4])


def test_bias_changed_in_place_after_forward(device):
    """Only the biases' presence is kept for the backward (h's gradient gives theirs), so a bias
    updated in place between forward and backward is no error, as with F.linear; x and the
    weights, which the backward reads, are still guarded by their version counters."""
    x = torch.randn(4, 6, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(3, 6, torch.float64, device, requires_grad=True)
    x64 = x.detach().double().requires_grad_(True)
    y = ffn_ext.swiglu(x64, w1, w3, b1, b3)
    want = torch.autograd.grad(_own("silu", x64, w1, w3, b1, b3).sum(), (x64, w1, w3, b1, b3))
    with torch.no_grad():
        b1.add_(1.0)
        b3.mul_(2.0)
    got = torch.autograd.grad(y.sum(), (x64, w1, w3, b1, b3))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    y = ffn_ext.swiglu(x64, w1, w3, b1, b3)
    with torch.no_grad():
        w1.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_frozen_weights_skip_their_gemm(device):
    """Only what is asked for is computed: with frozen weights the backward op returns empty
    weight gradients, and the values it does return are the sums of its formula."""
    x = torch.randn(4, 8, device=device)
    w1, w3, b1, b3 = _weights(6, 8, torch.float32, device, adjacent=True)
    h = ops.packed_linear(x, w1, w3, b1, b3)
    torch.testing.assert_close(h, torch.cat([F.linear(x, w1, b1), F.linear(x, w3, b3)], -1))
    dh = torch.randn(4, 12, device=device)
    dx, dw13, db13 = ops.packed_linear_backward(dh, x, w1, w3, b1, b3, [True, False, False])
    assert dx.shape == x.shape and dw13.numel() == 0 and db13.numel() == 0
    torch.testing.assert_close(dx, dh[:, :6] @ w1 + dh[:, 6:] @ w3)
    dx, dw13, db13 = ops.packed_linear_backward(dh, x, w1, w3, b1, b3, [False, True, True])
    assert dx.numel() == 0 and dw13.shape == (12, 8) and db13.shape == (12,)
    torch.testing.assert_close(dw13, dh.T @ x)
    torch.testing.assert_close(db13, dh.sum(0))


# ---- inference ---------------------------------------------------------------------------------------
def test_inference_keeps_nothing(device):
    x = torch.randn(4, 8, device=device)
    w1, w3, b1, b3 = _weights(6, 8, torch.float32, device, requires_grad=True)
    with torch.no_grad():
        y = ffn_ext.swiglu(x, w1, w3, b1, b3)
    assert y.grad_fn is None and not y.requires_grad
    with torch.inference_mode():
        y = ffn_ext.swiglu(x, w1, w3, b1, b3)
    assert y.is_inference()


def _gemm_scratch(x, ws, device):
    """The most that ATen's GEMM allocates for itself in one call of x @ w.T, w in ws, its result
    allocated beforehand: on CPU oneDNN's buffers, which grow with the thread count (0.26 MB at 2
    threads, 2.1 MB at 16 for the shape below, torch 2.14.1); on CUDA none after a first call, which
    leaves cuBLAS's workspace allocated."""
    scratch = 0
    for w in ws:
        out = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype, device=device)
        torch.mm(x, w.t(), out=out)
        scratch = max(scratch, memory_of(lambda: torch.mm(x, w.t(), out=out), device)[0])
    return scratch


@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
def test_inference_peak_memory(device, paths, adjacent):
    """Peak extra memory of a no-grad call: the two projections (2 M d: one packed h where one
    GEMM computes both, else two [M, d] tensors) plus the larger of the result (M d, allocated once
    the GEMMs are done) and the GEMM's own scratch, as projection.py's docstring states."""
    m, k, d = 512, 1024, 2048
    x = torch.randn(m, k, device=device, dtype=torch.bfloat16)
    w1, w3, _, _ = _weights(d, k, torch.bfloat16, device, adjacent, "none")
    with torch.no_grad():
        ffn_ext.swiglu(x, w1, w3)  # warm-up (cuBLAS workspace)
        kept = []
        peak, held = memory_of(lambda: kept.append(ffn_ext.swiglu(x, w1, w3)), device)
        w13 = torch.cat([w1, w3])  # the shape of the one GEMM of adjacent weights
        scratch = _gemm_scratch(x, [w1, w13], device)
    out_bytes, h_bytes = kept[0].numel() * 2, 2 * m * d * 2
    assert held == out_bytes  # nothing kept beyond the result
    # The result is allocated during the call, so a measurement that reads 0 cannot pass.
    assert out_bytes <= peak <= h_bytes + max(out_bytes, scratch), (peak, out_bytes, h_bytes, scratch)
    assert memory_of(lambda: None, device) == (0, 0)


def test_memory_of_refuses_other_devices():
    with pytest.raises(ValueError, match="memory_of: device must be cpu or cuda, got meta"):
        memory_of(lambda: None, "meta")


@requires_cuda
def test_memory_of_refuses_without_cuda_statistics():
    """With PyTorch's caching allocator bypassed (PYTORCH_NO_CUDA_MEMORY_CACHING=1, as
    tools/gpu_check.sh runs memcheck) CUDA keeps no memory statistics: memory_of refuses rather than
    report zeros. Here, with the cache, it counts."""
    assert cuda_memory_stats("cuda")
    code = ("import torch, ffn_ext._memory as m; print(m.cuda_memory_stats('cuda'), flush=True); "
            "m.memory_of(lambda: torch.empty(1000, device='cuda'), 'cuda')")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and r.stdout.strip() == "False", (r.stdout, r.stderr[-2000:])
    assert "memory_of: PyTorch's CUDA caching allocator keeps no statistics on cuda" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("adjacent", [False, True], ids=["separate", "adjacent"])
def test_training_memory(device, paths, adjacent):
    """With autograd the forward leaves only its result and h (2 M d) allocated: x, the weights and
    the biases are saved by reference (eager saves 3 M d: x W1ᵀ, its silu and x W3ᵀ). The backward
    allocates only the packed dh and the gradients it returns, and h is freed once dh is made,
    before the GEMMs allocate: its peak is the returned gradients, not those plus h."""
    m, k, d = 64, 256, 512
    w1, w3, b1, b3 = _weights(d, k, torch.float32, device, adjacent, "both", requires_grad=True)
    x = torch.randn(m, k, device=device, requires_grad=True)
    ins = (x, w1, w3, b1, b3)
    dy = torch.randn(m, d, device=device)
    torch.autograd.grad(ffn_ext.swiglu(*ins), ins, dy)  # warm-up (cuBLAS workspace)
    e = 4
    out, h = m * d * e, 2 * m * d * e
    returned = (m * k + 2 * d * k + 2 * d) * e
    kept = []
    _, held = memory_of(lambda: kept.append(ffn_ext.swiglu(*ins)), device)
    assert held == out + h
    peak, held = memory_of(lambda: kept.append(torch.autograd.grad(kept[0], ins, dy)), device)
    assert held == returned - h  # dh and h freed
    assert returned <= peak < returned + h, (peak, returned, h)
    if device == "cpu":  # no allocator workspaces: exactly the gradients
        assert peak == returned, (peak, returned)


def test_saved_tensor_hooks_see_h(device):
    """h is a saved tensor of the graph (not a hidden copy), so saved-tensor hooks, which
    torch.utils.checkpoint and torch.autograd.graph.save_on_cpu are built on, handle it; gradients
    through the hooks equal those without."""
    m, k, d = 5, 16, 8
    w1, w3, b1, b3 = _weights(d, k, torch.float32, device, requires_grad=True)
    x = torch.randn(m, k, device=device, requires_grad=True)
    ins, dy = (x, w1, w3, b1, b3), torch.randn(m, d, device=device)
    packed = []

    def pack(t):
        packed.append(tuple(t.shape))
        return t.clone()  # as an offload would: unpack returns another tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = ffn_ext.swiglu(*ins)
    assert (m, 2 * d) in packed, packed
    want = torch.autograd.grad(ffn_ext.swiglu(*ins), ins, dy)
    for g, w in zip(torch.autograd.grad(y, ins, dy), want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


# ---- registration, compile, export, autocast -----------------------------------------------------------
def test_opcheck(device):
    x = torch.randn(4, 3, 16, device=device)
    w1, w3, b1, b3 = _weights(8, 16, torch.float32, device)
    torch.library.opcheck(ops.gated_linear, (x, w1, w3, b1, None, "silu", 1.0))
    xg = x.clone().requires_grad_(True)
    torch.library.opcheck(ops.gated_linear, (xg, w1.requires_grad_(True), w3, b1, b3, "gelu", 1.0))
    h = ops.packed_linear(x, w1.detach(), w3, b1, b3)
    torch.library.opcheck(ops.packed_linear, (x, w1.detach(), w3, b1, b3))
    torch.library.opcheck(ops.packed_linear, (xg, w1, w3, b1, None))
    for mask in ([True, True, True], [False, True, False], [True, False, False]):  # each output its own
        torch.library.opcheck(ops.packed_linear_backward, (torch.randn_like(h), x, w1.detach(), w3, b1, None, mask))


# every projection op, as f(x, w1, w3, b1, b3, w2, b2)
PROJECTION_OPS = {
    "swiglu": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.swiglu(x, w1, w3, b1, b3),
    "geglu_tanh": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.geglu(x, w1, w3, b1, b3, approximate="tanh"),
    "reglu": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.reglu(x, w1, w3, b1, b3),
    "glu": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.gated_linear(x, w1, w3, b1, b3),
    "swish": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.gated_linear(x, w1, w3, b1, b3, "swish", BETA),
    "bilinear": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.gated_linear(x, w1, w3, b1, b3, "identity"),
    "ffn_gated": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.ffn(x, w1, w2, w3, b1, b2, b3, activation="gelu"),
    "ffn_classic": lambda x, w1, w3, b1, b3, w2, b2: ffn_ext.ffn(x, w1, w2, None, b1, b2, activation="gelu_tanh"),
}


@pytest.mark.parametrize("op", list(PROJECTION_OPS))
def test_compile_fullgraph_and_export(op, device):
    """torch.compile(fullgraph=True) (aot_eager) and torch.export of every projection op, with
    adjacent weights (slices of one w13 that requires grad) and every bias: the compiled and the
    exported results equal eager's bit for bit, and so do the compiled gradients of every input
    for a dense incoming gradient. For y.sum() AOTAutograd hands the gating backward the expanded
    (stride-0) gradient as it is. On CUDA that takes another kernel than eager's, which rounds
    differently where the projections' gradient cancels (one ulp of the terms, 4e-8 relative on
    these sizes): those gradients are held to the float64 bounds of assert_gradients_accurate,
    and on the CPU (whose loops read it as a dense gradient) also to eager's bits.
    The export graph keeps ffn_ext's op (not a decomposition)."""
    f = PROJECTION_OPS[op]
    x = torch.randn(3, 16, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(8, 16, torch.float32, device, adjacent=True, requires_grad=True)
    w13 = w1._base
    w2 = torch.randn(16, 8, device=device, requires_grad=True)
    b2 = torch.randn(16, device=device, requires_grad=True)
    ins = (x, w13, b1, b3, w2, b2)

    def g(x, w, b1, b3, w2, b2):
        return f(x, w[:8], w[8:], b1, b3, w2, b2)

    torch._dynamo.reset()
    compiled = torch.compile(g, fullgraph=True, backend="aot_eager")
    y, want = compiled(*ins), g(*ins)
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    dy = torch.randn_like(want)
    got, wanted = (torch.autograd.grad(t, ins, dy, allow_unused=True) for t in (y, want))
    used = [i for i, w in enumerate(wanted) if w is not None]
    assert used == ([0, 1, 2, 4, 5] if op == "ffn_classic" else [0, 1, 2, 3, 4, 5] if op == "ffn_gated" else [0, 1, 2, 3])
    for i in used:
        torch.testing.assert_close(got[i], wanted[i], rtol=0, atol=0)
    if op in CALLS:
        gx, gw, gb1, gb3 = torch.autograd.grad(compiled(*ins).sum(), ins[:4])
        assert_gradients_accurate((gx, gw[:8], gw[8:], gb1, gb3), CALLS[op][1], (x, w1, w3, b1, b3),
                                  torch.ones_like(want), range(5))
        if device == "cpu":  # the CPU loops read a stride-0 gradient as a dense one: bitwise
            for a, b in zip((gx, gw, gb1, gb3), torch.autograd.grad(g(*ins).sum(), ins[:4])):
                torch.testing.assert_close(a, b, rtol=0, atol=0)

    class Op(torch.nn.Module):
        def forward(self, *a):
            return g(*a)

    ep = torch.export.export(Op(), tuple(t.detach() for t in ins))
    target = "ffn_ext.gelu.default" if op == "ffn_classic" else "ffn_ext.gated_linear.default"
    assert target in [str(n.target) for n in ep.graph.nodes]
    torch.testing.assert_close(ep.module()(*ins), want, rtol=0, atol=0)


def test_compile_inductor(device):
    """One case through inductor (the default backend): LLaMA's block (FeedForward's SwiGLU without
    biases), forward and the gradients of x and every parameter, equal to eager's bit for bit:
    inductor calls ffn_ext's ops and ATen's GEMMs as extern kernels. (With biases inductor
    generates its own column sum for db2, in another order than ATen's.)"""
    torch._dynamo.reset()
    m = ffn_ext.nn.FeedForward(16, 24, "swiglu", bias=False, device=device)
    x = torch.randn(2, 3, 16, device=device, requires_grad=True)
    compiled = torch.compile(m, fullgraph=True)
    y, want = compiled(x), m(x)
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    dy = torch.randn_like(want)
    ins = (x, *m.parameters())
    for g, w in zip(torch.autograd.grad(y, ins, dy), torch.autograd.grad(want, ins, dy)):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_compile_dynamic_shapes(device):
    """Symbolic token counts (torch.compile(dynamic=True), as variable sequence lengths bring): one
    graph for every size, with autograd (the packed projection's fake kernel once specialised the
    row count: a graph per size) and without; forward and backward equal the eager call's."""
    from torch._dynamo.testing import CompileCounterWithBackend

    w1, w3, b1, b3 = _weights(8, 16, torch.float32, device, requires_grad=True)
    for grad in (True, False):
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("aot_eager")
        compiled = torch.compile(ffn_ext.swiglu, fullgraph=True, dynamic=True, backend=counter)
        frames = []
        for shape in ((3, 16), (5, 16), (7, 16)) if not grad else ((2, 3, 16), (2, 5, 16), (4, 7, 16)):
            x = torch.randn(shape, device=device, requires_grad=grad)
            ins = (x, w1, w3, b1, b3)
            with torch.set_grad_enabled(grad):
                y, want = compiled(*ins), ffn_ext.swiglu(*ins)
            torch.testing.assert_close(y, want, rtol=0, atol=0)
            if grad:
                for g, w in zip(torch.autograd.grad(y.sum(), ins), torch.autograd.grad(want.sum(), ins)):
                    torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)
            frames.append(counter.frame_count)
        assert frames[0] >= 1 and frames[1:] == frames[:1] * 2, (grad, frames)  # no recompilation


def test_export_dynamic_shapes(device):
    """torch.export with symbolic batch and sequence sizes, parameters requiring grad (the
    autograd kernel's packed projection is traced)."""
    m = ffn_ext.nn.FeedForward(16, 24, bias=True, device=device)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    ep = torch.export.export(m, (torch.randn(2, 5, 16, device=device),),
                             dynamic_shapes={"x": {0: batch, 1: seq}})
    for shape in ((3, 7, 16), (1, 2, 16)):
        x = torch.randn(shape, device=device)
        torch.testing.assert_close(ep.module()(x), m(x), rtol=0, atol=0)


# module -> (its constructor (device), the ffn_ext op its export graph holds)
MODULES = {
    **{f"FeedForward-{a}": (lambda dev, a=a: ffn_ext.nn.FeedForward(16, 24, a, bias=True, device=dev), "gated_linear")
       for a in ("swiglu", "geglu", "geglu_tanh", "reglu", "glu", "bilinear")},
    **{f"FeedForward-{a}": (lambda dev, a=a: ffn_ext.nn.FeedForward(16, 24, a, bias=True, device=dev), op)
       for a, op in (("gelu", "gelu"), ("gelu_tanh", "gelu"), ("relu", "relu"), ("silu", "silu"))},
    "GELU": (lambda dev: ffn_ext.nn.GELU(), "gelu"),
    "GELU-tanh": (lambda dev: ffn_ext.nn.GELU("tanh"), "gelu"),
    "SiLU": (lambda dev: ffn_ext.nn.SiLU(), "silu"),
    "ReLU": (lambda dev: ffn_ext.nn.ReLU(), "relu"),
    "Swish-fixed": (lambda dev: ffn_ext.nn.Swish(BETA), "swish.default"),
    "Swish-learnable": (lambda dev: ffn_ext.nn.Swish(BETA, learnable=True, device=dev), "swish.Tensor"),
    "Swish-per-channel": (lambda dev: _per_channel_swish(dev), "swish.Tensor"),
}


def _per_channel_swish(device):
    s = ffn_ext.nn.Swish(BETA, learnable=True, channels=16, device=device)
    with torch.no_grad():
        s.beta.copy_(torch.linspace(-1, 2, 16))
    return s


def test_every_module_is_compiled():
    assert {k.split("-", 1)[1] for k in MODULES if k.startswith("FeedForward-")} == set(ffn_ext.nn.ACTIVATIONS)


@pytest.mark.parametrize("name", list(MODULES))
def test_compile_and_export_module(name, device):
    """Every FeedForward activation and every activation module (Swish fixed, with a learnable
    scalar and per-channel beta) under torch.compile(fullgraph=True) (aot_eager) and torch.export:
    results equal eager's bit for bit, and so do the compiled gradients of x and of every parameter
    (for a dense incoming gradient, as in test_compile_fullgraph_and_export); the export graph
    calls ffn_ext's op."""
    torch._dynamo.reset()  # FeedForward.forward is one code object: a new module would recompile it
    make, op = MODULES[name]
    m = make(device)
    x = 3 * torch.randn(2, 5, 16, device=device)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), m(x), rtol=0, atol=0)
    xg = x.clone().requires_grad_(True)
    ins = (xg, *m.parameters())
    # parameters: w1, w3, w2 and b1, b3, b2 (gated blocks), w1, w2, b1, b2 (the others), beta (learnable Swish)
    assert len(ins) - 1 == (6 if op == "gated_linear" else 4 if name.startswith("FeedForward") else
                            1 if op == "swish.Tensor" else 0)
    y, want = compiled(xg), m(xg)
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    dy = torch.randn_like(want)
    for g, w in zip(torch.autograd.grad(y, ins, dy), torch.autograd.grad(want, ins, dy)):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    ep = torch.export.export(m, (x,))
    targets = [str(n.target) for n in ep.graph.nodes]
    assert any(t.startswith(f"ffn_ext.{op}") for t in targets), targets
    torch.testing.assert_close(ep.module()(x), m(x), rtol=0, atol=0)


@requires_cuda
@pytest.mark.parametrize("adjacent", [True, False])
def test_cuda_graph_capture_and_replay(adjacent):
    """swiglu (one GEMM into a packed h, or two with biases into [M, d] tensors) and the block
    captured in a CUDA graph, as decode loops run them, then replayed on new inputs written into
    the captured buffers: each result checked against the float64 reference of those inputs."""
    w1, w3, b1, b3 = _weights(48, 32, torch.bfloat16, "cuda", adjacent=adjacent, bias="none" if adjacent else "both")
    block = ffn_ext.nn.FeedForward(32, 48, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(8, 32, device="cuda", dtype=torch.bfloat16)
    fns = [lambda: ffn_ext.swiglu(x, w1, w3, b1, b3), lambda: block(x)]
    with torch.inference_mode():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for f in fns:
                f()  # warm-up outside the graph (cuBLAS handles, workspaces)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y, z = (f() for f in fns)
        for _ in range(2):
            x.copy_(torch.randn_like(x))
            graph.replay()
            torch.cuda.synchronize()
            assert_projection_accurate(y, "silu", x, w1, w3, b1, b3)
            # The block: its gated h [8, 48] (not observable) is within projection_bound of the
            # reference, and the w2 GEMM adds its accumulation error and the rounding of z.
            h, h_bound = projection_bound(torch.bfloat16, "silu", x, block.w1, block.w3, None, None)
            w2 = block.w2.detach().double().cpu()
            ref = h @ w2.T
            bound = (h_bound @ w2.abs().T + 4 * torch.finfo(torch.float32).eps * math.sqrt(48) * (h.abs() @ w2.abs().T)
                     + ulp(ref, torch.bfloat16))
            assert ((z.double().cpu() - ref).abs() <= bound).all()


@requires_cuda
@pytest.mark.parametrize("adjacent", [True, False], ids=["adjacent", "separate"])
def test_cuda_graph_training_step(adjacent):
    """A whole training step, swiglu's forward and torch.autograd.grad for x, both weights and both
    biases, captured in one CUDA graph (whole-network capture: the autograd engine runs the
    backward's kernels on the stream its forward ran on, the capturing one), then replayed on new x
    and dy written into the captured buffers: each replay's gradients against float64 autograd of
    the formula (assert_gradients_accurate). Nothing in the step may synchronize with the host."""
    dtype = torch.bfloat16
    w1, w3, b1, b3 = _weights(48, 32, dtype, "cuda", adjacent=adjacent, requires_grad=True)
    x = torch.randn(8, 32, dtype=dtype, device="cuda", requires_grad=True)
    dy = torch.randn(8, 48, dtype=dtype, device="cuda")
    ins = (x, w1, w3, b1, b3)

    def step():
        return torch.autograd.grad(ffn_ext.swiglu(*ins), ins, dy)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            step()  # warm-up outside the graph (cuBLAS handles, workspaces, the engine's threads)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        grads = step()
    for _ in range(2):
        with torch.no_grad():
            x.copy_(torch.randn_like(x))
        dy.copy_(torch.randn_like(dy))
        graph.replay()
        torch.cuda.synchronize()
        assert_gradients_accurate(grads, "silu", ins, dy, range(5))


@pytest.mark.parametrize("dev", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_autocast_like_linear(dev):
    """Under autocast the inputs are cast as F.linear's are (fp32 -> the autocast dtype); float64
    is left alone, as autocast leaves it for F.linear."""
    dtype = torch.bfloat16 if dev == "cpu" else torch.float16
    x = torch.randn(4, 16, device=dev)
    w1, w3, b1, b3 = _weights(8, 16, torch.float32, dev)
    with torch.autocast(dev, dtype=dtype):
        y = ffn_ext.swiglu(x, w1, w3, b1, b3)
        assert F.linear(x, w1, b1).dtype == dtype
        y64 = ffn_ext.swiglu(x.double(), w1.double(), w3.double())
    assert y.dtype == dtype and y64.dtype == torch.float64
    want = ffn_ext.swiglu(x.to(dtype), w1.to(dtype), w3.to(dtype), b1.to(dtype), b3.to(dtype))
    torch.testing.assert_close(y, want, rtol=0, atol=0)
    # mixed dtypes are cast too, as F.linear's are (the Python checks leave them to the op)
    with torch.autocast(dev, dtype=dtype):
        ym = ffn_ext.swiglu(x.to(dtype), w1, w3, b1, b3)
        zm = ffn_ext.ffn(x.to(dtype), w1, torch.randn(16, 8, device=dev), w3, b1, None, b3)
    torch.testing.assert_close(ym, want, rtol=0, atol=0)
    assert zm.dtype == dtype
    # training under autocast: gradients reach the fp32 leaves in fp32
    xg = x.clone().requires_grad_(True)
    with torch.autocast(dev, dtype=dtype):
        out = ffn_ext.swiglu(xg, w1.requires_grad_(True), w3, b1, b3)
    (gx,) = torch.autograd.grad(out.float().sum(), xg)
    assert gx.dtype == torch.float32


@pytest.mark.parametrize("block", ["swiglu", "ffn"])
@pytest.mark.parametrize("dev", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_autocast_gradients(block, dev):
    """Training under torch.autocast, against eager F.linear code under the same autocast: every
    float32 leaf (x, w1, w3, b1, b3; w2, b2 for ffn) gets a gradient of eager's dtype; autocast only
    casts, so every gradient equals, bit for bit, that of the same call on the inputs cast to the
    autocast dtype (then cast back); and each is within the bounds of test_backward_values of the
    float64 gradient of the cast inputs: 2x eager's own error + 1 ulp + gradient_bounds. For ffn
    the down projection's share: its gradient dz = dy W2 is one GEMM rounded to the dtype (identical
    in both: it does not depend on z), so the lower gradients are bounded as swiglu's with dz's
    exact value and its error (4 eps_32 sqrt(n) |dy| |W2| + 1 ulp); dW2 = dyᵀ z carries z's error
    (projection_bound) and the GEMM's; db2 is a column sum of dy."""
    dtype = torch.bfloat16 if dev == "cpu" else torch.float16
    m, k, d = 6, 32, 24
    x = torch.randn(m, k, device=dev)
    w1, w3, b1, b3 = _weights(d, k, torch.float32, dev)
    w2 = (torch.randn(k, d, dtype=torch.float64) / math.sqrt(d)).float().to(dev)
    b2 = torch.randn(k, device=dev)
    ins = (x, w1, w3, b1, b3) + ((w2, b2) if block == "ffn" else ())
    names = ("x", "w1", "w3", "b1", "b3", "w2", "b2")
    dy = torch.randn(m, k if block == "ffn" else d, device=dev).to(dtype)

    def ours(x, w1, w3, b1, b3, w2=None, b2=None):
        return ffn_ext.swiglu(x, w1, w3, b1, b3) if w2 is None else ffn_ext.ffn(x, w1, w2, w3, b1, b2, b3)

    def eager(x, w1, w3, b1, b3, w2=None, b2=None):
        z = F.silu(F.linear(x, w1, b1)) * F.linear(x, w3, b3)
        return z if w2 is None else F.linear(z, w2, b2)

    def grads(f, ts, autocast):
        ts = [t.detach().clone().requires_grad_(True) for t in ts]
        with torch.autocast(dev, dtype=dtype, enabled=autocast):
            y = f(*ts)
            assert y.dtype == (dtype if autocast else ts[0].dtype)
            return torch.autograd.grad(y, ts, dy, allow_unused=True)

    got, own = grads(ours, ins, True), grads(eager, ins, True)
    for name, g, o, t in zip(names, got, own, ins):
        assert g is not None and o is not None, name
        assert g.dtype == o.dtype == t.dtype and g.shape == t.shape, (name, g.dtype, o.dtype)
    low = [t.to(dtype) for t in ins]  # what autocast computes with
    for name, g, c in zip(names, got, grads(ours, low, False)):
        assert torch.equal(g, c.to(g.dtype)), name
    # float64 gradients of the cast inputs
    ref = grads(eager, [t.double() for t in low], False)
    ref = [r.cpu() for r in ref]
    x_, w1_, w3_, b1_, b3_ = low[:5]
    if block == "swiglu":
        model = gradient_bounds("silu", dtype, x_, w1_, w3_, b1_, b3_, dy)
    else:
        dy64, w2_64 = dy.double().cpu(), low[5].double().cpu()
        acc = 4 * torch.finfo(torch.float32).eps
        dz = dy64 @ w2_64
        e_gemm = acc * math.sqrt(k) * (dy64.abs() @ w2_64.abs())
        e_dz = e_gemm + ulp(dz.abs() + e_gemm, dtype)
        z, e_z = projection_bound(dtype, "silu", x_, w1_, w3_, b1_, b3_)
        model = gradient_bounds("silu", dtype, x_, w1_, w3_, b1_, b3_, dz, e_dy=e_dz) + (
            dy64.abs().T @ e_z + acc * math.sqrt(m) * (dy64.abs().T @ z.abs()),  # w2
            acc * math.sqrt(m) * dy64.abs().sum(0),  # b2
        )
    for name, g, o, r, e in zip(names, got, own, ref, model):
        err = (g.double().cpu() - r).abs()
        bound = 2 * (o.double().cpu() - r).abs() + ulp(r, dtype) + e
        bad = ~(err <= bound)
        assert not bad.any(), (name, int(bad.sum()), bad.numel(), err[bad][:4], bound[bad][:4])


# ---- the whole block -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gated", [True, False], ids=["gated", "classic"])
@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_tanh", "relu"])
def test_ffn_block(gated, activation, device):
    x = torch.randn(2, 3, 16, dtype=torch.float64, device=device, requires_grad=True)
    w1, w3, b1, b3 = _weights(24, 16, torch.float64, device, bias="both", requires_grad=True)
    w2 = torch.randn(16, 24, dtype=torch.float64, device=device, requires_grad=True)
    b2 = torch.randn(16, dtype=torch.float64, device=device, requires_grad=True)
    f = ACTS[activation][0]
    if gated:
        y = ffn_ext.ffn(x, w1, w2, w3, b1, b2, b3, activation=activation)
        z = f(_lin64(x, w1, b1)) * _lin64(x, w3, b3)
    else:
        y = ffn_ext.ffn(x, w1, w2, None, b1, b2, activation=activation)
        z = f(_lin64(x, w1, b1))
    ref = _lin64(z, w2, b2)
    torch.testing.assert_close(y.detach().cpu(), ref, rtol=1e-12, atol=1e-12)
    args = (x, w1, w2, w3, b1, b2, b3) if gated else (x, w1, w2, None, b1, b2)
    assert torch.autograd.gradcheck(lambda *a: ffn_ext.ffn(*a, activation=activation), args)


# ---- modules -------------------------------------------------------------------------------------------
# preset -> (the float64 formula of its block, gated, biases), written from REFERENCE.md's table
# (activations) and the families' configurations (biases; the GELU form of GPT-J, "gelu_new", and
# BLOOM, bloom_gelu: tanh), independently of ffn_ext.nn's tables.
PRESET_FORMULAS = {
    "llama": (R.silu, True, False), "mistral": (R.silu, True, False), "mixtral": (R.silu, True, False),
    "qwen": (R.silu, True, False), "deepseek": (R.silu, True, False), "palm": (R.silu, True, False),
    "gemma": (R.gelu_tanh, True, False), "t5-v1.1": (R.gelu_tanh, True, False),
    "flan-t5": (R.gelu_tanh, True, False), "mt5": (R.gelu_tanh, True, False), "glm": (R.gelu, True, True),
    "gpt2": (R.gelu_tanh, False, True), "gpt-j": (R.gelu_tanh, False, True), "bloom": (R.gelu_tanh, False, True),
    "falcon": (R.gelu, False, False), "bert": (R.gelu, False, True), "roberta": (R.gelu, False, True),
    "opt": (R.relu, False, True), "t5": (R.relu, False, False), "transformer": (R.relu, False, True),
}


def test_every_preset_is_tested():
    assert set(ffn_ext.nn.PRESETS) == set(PRESET_FORMULAS)


@pytest.mark.parametrize("name", list(PRESET_FORMULAS))
def test_presets(name, device):
    f, gated, bias = PRESET_FORMULAS[name]
    m = ffn_ext.nn.FeedForward.from_preset(name, 16, 40, device=device, dtype=torch.float64)
    assert (m.w3 is not None) == gated and (m.b1 is not None) == bias and (m.b2 is not None) == bias
    x = torch.randn(3, 16, dtype=torch.float64, device=device)
    z = f(_lin64(x, m.w1, m.b1))
    if gated:
        z = z * _lin64(x, m.w3, m.b3)
    torch.testing.assert_close(m(x).detach().cpu(), _lin64(z, m.w2, m.b2), rtol=1e-12, atol=1e-12)


def test_feedforward_parameters_and_layout(device):
    m = ffn_ext.nn.FeedForward(16, 40, device=device)
    assert set(dict(m.named_parameters())) == {"w1", "w2", "w3"}
    assert m.w1.shape == (40, 16) and m.w3.shape == (40, 16) and m.w2.shape == (16, 40)
    bound = 1 / math.sqrt(16)  # nn.Linear's initialisation bound
    assert m.w1.abs().max() <= bound and m.w1.std() > bound / 4

    def joined(mod):
        return (mod.w1.untyped_storage().data_ptr() == mod.w3.untyped_storage().data_ptr()
                and mod.w3.storage_offset() == mod.w1.storage_offset() + mod.w1.numel())

    assert joined(m)
    x = torch.randn(5, 16, device=device)
    y = m(x)
    m.double()  # .to() gives every parameter its own storage; the module joins w1 and w3 again
    assert joined(m) and m.w1.dtype == torch.float64
    torch.testing.assert_close(m(x.double()).float(), y, rtol=1e-5, atol=1e-5)
    sd = {k: v.detach().clone().float() for k, v in m.state_dict().items()}
    m2 = ffn_ext.nn.FeedForward(16, 40, device=device)
    m2.load_state_dict(sd, assign=True)
    assert joined(m2)
    torch.testing.assert_close(m2(x), y, rtol=1e-5, atol=1e-5)
    # training: the gradients land on w1, w3, w2
    m2(x).sum().backward()
    assert all(p.grad is not None for p in m2.parameters())


class _LlamaStyleFeedForward(torch.nn.Module):
    """The block as LLaMA's reference code writes it: nn.Linear modules w1, w2, w3."""

    def __init__(self, d_model, d_ff, bias):
        super().__init__()
        self.w1 = torch.nn.Linear(d_model, d_ff, bias=bias, dtype=torch.float64)
        self.w2 = torch.nn.Linear(d_ff, d_model, bias=bias, dtype=torch.float64)
        self.w3 = torch.nn.Linear(d_model, d_ff, bias=bias, dtype=torch.float64)

    def forward(self, x):
        return self.w2(torch.nn.functional.silu(self.w1(x)) * self.w3(x))


@pytest.mark.parametrize("bias", [False, True])
def test_feedforward_loads_linear_keys(bias):
    """A checkpoint with nn.Linear's keys (w1.weight, ..., as LLaMA's) loads strictly, under a
    parent's prefix too, and gives the same block."""
    ref = torch.nn.ModuleDict({"ff": _LlamaStyleFeedForward(8, 12, bias)})
    sd = ref.state_dict()
    assert "ff.w1.weight" in sd
    m = torch.nn.ModuleDict({"ff": ffn_ext.nn.FeedForward(8, 12, bias=bias, dtype=torch.float64)})
    assert not m.load_state_dict(sd).missing_keys  # strict: no missing or unexpected keys
    assert torch.equal(m["ff"].w1, ref["ff"].w1.weight) and torch.equal(m["ff"].w2, ref["ff"].w2.weight)
    assert m["ff"].w1.untyped_storage().data_ptr() == m["ff"].w3.untyped_storage().data_ptr()
    x = torch.randn(5, 8, dtype=torch.float64)
    torch.testing.assert_close(m["ff"](x), ref["ff"](x), rtol=1e-12, atol=1e-12)
    assert set(sd) == {f"ff.w{n}.{k}" for n in "123" for k in (("weight", "bias") if bias else ("weight",))}
    assert set(m.state_dict()) == {f"ff.{k}{n}" for n in "123" for k in (("w", "b") if bias else ("w",))}


def test_feedforward_copies_and_pickles_joined(device):
    import copy
    import io

    m = ffn_ext.nn.FeedForward(8, 12, "geglu", bias=True, device=device)
    x = torch.randn(3, 8, device=device)
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    for m2 in (copy.deepcopy(m), torch.load(buf, weights_only=False)):
        for a, b in ((m2.w1, m2.w3), (m2.b1, m2.b3)):
            assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            assert b.storage_offset() == a.storage_offset() + a.numel()
        torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)


def test_activation_modules(device):
    """Each module against its float64 formula (the default GELU is the exact one)."""
    x = 4 * torch.randn(4, 6, device=device, dtype=torch.float64)
    x64 = x.cpu()
    cases = [(ffn_ext.nn.GELU(), R.gelu), (ffn_ext.nn.GELU("none"), R.gelu), (ffn_ext.nn.GELU("tanh"), R.gelu_tanh),
             (ffn_ext.nn.SiLU(), R.silu), (ffn_ext.nn.ReLU(), R.relu), (ffn_ext.nn.Swish(), R.silu),
             (ffn_ext.nn.Swish(1.5), lambda t: R.swish(t, 1.5))]
    for m, f in cases:
        torch.testing.assert_close(m(x).cpu(), f(x64), rtol=1e-12, atol=1e-300, msg=repr(m))
    s = ffn_ext.nn.Swish(1.5, learnable=True, channels=6, device=device, dtype=torch.float64)
    assert isinstance(s.beta, torch.nn.Parameter) and s.beta.shape == (6,)
    with torch.no_grad():
        s.beta.copy_(torch.linspace(-1, 2, 6))
    b64 = s.beta.detach().cpu()
    torch.testing.assert_close(s(x).cpu(), R.swish(x64, b64), rtol=1e-12, atol=1e-300)
    s(x).sum().backward()
    torch.testing.assert_close(s.beta.grad.cpu(), R.swish_dbeta(x64, b64).sum(0), rtol=1e-10, atol=1e-300)
    s0 = ffn_ext.nn.Swish(0.5, learnable=True)
    assert s0.beta.dim() == 0 and s0.beta.item() == 0.5


@pytest.mark.parametrize("channels", [None, 6], ids=["scalar", "per_channel"])
def test_swish_learnable_beta(channels, device):
    """A learnable beta, one value or one per channel, is an nn.Parameter of the module (so that
    optimizers, state_dict and .to() see it), receives its gradient from backward (the sum of
    x² σ(βx)(1 − σ(βx)) dy over the elements that share it, against the float64 formula), and
    passes gradcheck and gradgradcheck for x and beta through the module. A fixed beta is no
    parameter."""
    assert list(ffn_ext.nn.Swish(1.3).parameters()) == []
    s = ffn_ext.nn.Swish(1.3, learnable=True, channels=channels, device=device, dtype=torch.float64)
    assert isinstance(s.beta, torch.nn.Parameter) and s.beta.requires_grad
    assert [(n, p is s.beta) for n, p in s.named_parameters()] == [("beta", True)]
    assert "beta" in s.state_dict() and s.beta.shape == (() if channels is None else (6,))
    assert s.beta.device.type == torch.device(device).type and s.beta.dtype == torch.float64
    assert torch.equal(s.beta.detach().cpu(), torch.full(s.beta.shape, 1.3, dtype=torch.float64))
    if channels is not None:
        with torch.no_grad():
            s.beta.copy_(torch.linspace(-1, 2, 6))
    x = 3 * torch.randn(4, 6, dtype=torch.float64, device=device)
    dy = torch.randn(4, 6, dtype=torch.float64, device=device)
    s(x).backward(dy)
    x64, b64, dy64 = x.cpu(), s.beta.detach().cpu(), dy.cpu()
    dbeta = R.swish_dbeta(x64, b64) * dy64
    want = dbeta.sum() if channels is None else dbeta.sum(0)
    assert s.beta.grad is not None and s.beta.grad.shape == s.beta.shape
    torch.testing.assert_close(s.beta.grad.cpu(), want, rtol=1e-10, atol=1e-300)
    xg = x.clone().requires_grad_(True)

    def call(x, beta):
        return torch.func.functional_call(s, {"beta": beta}, (x,))

    assert torch.autograd.gradcheck(call, (xg, s.beta))
    assert torch.autograd.gradgradcheck(call, (xg, s.beta))
    s.float()  # .to() keeps it a parameter
    assert isinstance(s.beta, torch.nn.Parameter) and s.beta.dtype == torch.float32


# FeedForward's activations -> (the float64 formula of the block's first half, gated), written
# from the names, independently of ffn_ext.nn.ACTIVATIONS.
FEEDFORWARD_FORMULAS = {
    "swiglu": (R.silu, True), "geglu": (R.gelu, True), "geglu_tanh": (R.gelu_tanh, True),
    "reglu": (R.relu, True), "glu": (R.sigmoid, True), "bilinear": (lambda t: t, True),
    "gelu": (R.gelu, False), "gelu_tanh": (R.gelu_tanh, False), "relu": (R.relu, False), "silu": (R.silu, False),
}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", list(FEEDFORWARD_FORMULAS))
def test_feedforward_activations(activation, bias, device):
    assert set(ffn_ext.nn.ACTIVATIONS) == set(FEEDFORWARD_FORMULAS)
    f, gated = FEEDFORWARD_FORMULAS[activation]
    m = ffn_ext.nn.FeedForward(12, 20, activation, bias=bias, device=device, dtype=torch.float64)
    assert (m.w3 is not None) == gated and (m.b1 is not None) == bias and (m.b2 is not None) == bias
    x = 3 * torch.randn(2, 5, 12, dtype=torch.float64, device=device)
    z = f(_lin64(x, m.w1, m.b1))
    if gated:
        z = z * _lin64(x, m.w3, m.b3)
    torch.testing.assert_close(m(x).detach().cpu(), _lin64(z, m.w2, m.b2), rtol=1e-12, atol=1e-12)


# ---- errors --------------------------------------------------------------------------------------------
def test_errors():
    x = torch.randn(4, 16)
    w = torch.randn(8, 16)
    with pytest.raises(ValueError, match=r"ffn_ext.swiglu: w1 must be \[out_features, in_features\] with "
                       r"in_features = x.shape\[-1\] = 16, got shape \[8, 12\] for x of shape \[4, 16\]") as e:
        ffn_ext.swiglu(x, torch.randn(8, 12), w)
    # The op refuses first (naming gated_linear); the wrapper raises the public error alone.
    assert e.value.__suppress_context__ and e.value.__cause__ is None
    with pytest.raises(ValueError, match=r"ffn_ext.geglu: w3 must have the same shape as w1, got \[9, 16\] and \[8, 16\]"):
        ffn_ext.geglu(x, w, torch.randn(9, 16))
    with pytest.raises(ValueError, match=r"ffn_ext.reglu: b3 must be \[out_features\] = \[8\], got shape \[16\]"):
        ffn_ext.reglu(x, w, w, None, torch.randn(16))
    with pytest.raises(TypeError, match=r"ffn_ext.swiglu: w3 must have the same dtype as x \(torch.float32\), got torch.float64"):
        ffn_ext.swiglu(x, w, w.double())
    with pytest.raises(ValueError, match="ffn_ext.gated_linear: activation must be one of 'sigmoid'"):
        ffn_ext.gated_linear(x, w, w, activation="tanh")
    # beta is a number, as for act_and_mul (a bool or string was converted, a tensor's gradient lost)
    for beta, kind in ((True, "bool"), ("0.5", "str"), (torch.tensor(0.5, requires_grad=True), "Tensor")):
        with pytest.raises(TypeError, match=f"ffn_ext.gated_linear: beta must be a number, got {kind}"):
            ffn_ext.gated_linear(x, w, w, activation="swish", beta=beta)
    with pytest.raises(ValueError, match="ffn_ext.swiglu: x must be \\[..., in_features\\], got a 0-dim tensor"):
        ffn_ext.swiglu(torch.tensor(1.0), w, w)
    with pytest.raises(ValueError, match="ffn_ext.geglu: approximate must be one of 'none', 'tanh', got 'erf'"):
        ffn_ext.geglu(x, w, w, approximate="erf")
    with pytest.raises(ValueError, match=r"ffn_ext.ffn: w2 must be \[out_features, d\] with d = w1.shape\[0\] = 8, got shape \[16, 9\]"):
        ffn_ext.ffn(x, w, torch.randn(16, 9), w)
    with pytest.raises(ValueError, match="at least one row"):
        ffn_ext.swiglu(x, torch.randn(0, 16), torch.randn(0, 16))
    with pytest.raises(ValueError, match="ffn_ext.nn.FeedForward: activation must be one of 'swiglu'"):
        ffn_ext.nn.FeedForward(4, 8, "swish")
    with pytest.raises(ValueError, match="from_preset: name must be one of 'llama'"):
        ffn_ext.nn.FeedForward.from_preset("gpt5", 4, 8)


def test_more_error_texts():
    x, w = torch.randn(4, 16), torch.randn(8, 16)
    with pytest.raises(ValueError, match=r"ffn_ext.ffn: b2 must be \[out_features\] = \[16\], got shape \[3\]"):
        ffn_ext.ffn(x, w, torch.randn(16, 8), w, b2=torch.randn(3))
    with pytest.raises(ValueError, match=r"ffn_ext.ffn: b3 is the bias of w3, which is None \(the block is ungated\)"):
        ffn_ext.ffn(x, w, torch.randn(16, 8), None, b3=torch.randn(8))
    with pytest.raises(ValueError, match="ffn_ext.ffn: activation='swish' needs a beta"):
        ffn_ext.ffn(x, w, torch.randn(16, 8), activation="swish")
    with pytest.raises(ValueError, match="ffn_ext.nn.FeedForward: d_ff must be a positive int, got 0"):
        ffn_ext.nn.FeedForward(4, 0)
    with pytest.raises(TypeError, match="ffn_ext.nn.Swish: beta must be a number, got str"):
        ffn_ext.nn.Swish("1")
    with pytest.raises(ValueError, match=r"ffn_ext.nn.Swish: channels is for a learnable beta \(learnable=True\)"):
        ffn_ext.nn.Swish(1.0, channels=4)
    with pytest.raises(ValueError, match="ffn_ext.nn.Swish: channels must be a positive int, got 0"):
        ffn_ext.nn.Swish(1.0, learnable=True, channels=0)
    with pytest.raises(ValueError, match="ffn_ext.nn.GELU: approximate must be one of 'none', 'tanh', got 'erf'"):
        ffn_ext.nn.GELU("erf")
    # the internal ops
    with pytest.raises(ValueError, match=r"ffn_ext.packed_linear_backward: grad_h must have shape \[4, 16\], got \[4, 8\]"):
        ops.packed_linear_backward(torch.randn(4, 8), x, w, w, None, None, [True, True, True])
    with pytest.raises(ValueError, match=r"ffn_ext.packed_linear: w3 must have the same shape as w1, got \[4, 16\] and \[8, 16\]"):
        ops.packed_linear(x, w, torch.randn(4, 16), None, None)
    with pytest.raises(RuntimeError, match="ffn_ext.packed_linear_backward is internal to ffn_ext.gated_linear's autograd"):
        ops.packed_linear_backward(torch.randn(4, 16), x.requires_grad_(True), w, w, None, None, [True, True, True])


def _no_gemm(*args, **kwargs):
    raise AssertionError("a GEMM ran before the error")


def test_block_errors_name_the_first_wrong_argument(monkeypatch):
    """ffn and FeedForward name the argument at fault, in argument order, under torch.autocast
    too (where mixed floating dtypes are fine, as for F.linear), and raise before any GEMM runs."""
    x, w, w2 = torch.randn(3, 8), torch.randn(4, 8), torch.randn(6, 4)
    with pytest.raises(TypeError, match=r"ffn_ext.ffn: x must be a floating-point tensor .*got torch.int64"):
        ffn_ext.ffn(torch.ones(3, 8, dtype=torch.long), w, w2, w)
    with pytest.raises(TypeError, match=r"ffn_ext.ffn: w1 must have the same dtype as x \(torch.float64\)"):
        ffn_ext.ffn(x.double(), w, w2, w)
    with pytest.raises(RuntimeError, match="ffn_ext.ffn: w1 must be a tensor, got None"):
        ffn_ext.ffn(x, None, w2, w)
    with pytest.raises(ValueError, match="ffn_ext.ffn: activation must be one of 'silu', 'gelu', 'gelu_tanh', "
                       "'relu', 'sigmoid', 'identity' for the ungated block, got 'foo'"):
        ffn_ext.ffn(x, w, w2, activation="foo")
    with pytest.raises(ValueError, match=r"ffn_ext.ffn: w1 must be \[out_features, in_features\] with in_features "
                       r"= x.shape\[-1\] = 7, got shape \[4, 8\]"):
        ffn_ext.ffn(torch.randn(3, 7), w, w2)
    with pytest.raises(ValueError, match=r"ffn_ext.ffn: w1 must have at least one row \(out_features >= 1\)"):
        ffn_ext.ffn(x, torch.randn(0, 8), torch.randn(6, 0))
    with pytest.raises(TypeError, match=r"ffn_ext.glu: h must be a floating-point tensor .*got torch.int32"):
        ffn_ext.glu(torch.ones(4, 6, dtype=torch.int32))
    for act in ("swiglu", "gelu"):  # gated and ungated modules
        m = ffn_ext.nn.FeedForward(8, 16, act)
        with pytest.raises(ValueError, match=r"ffn_ext.nn.FeedForward: w1 must be \[out_features, in_features\] "
                           r"with in_features = x.shape\[-1\] = 7, got shape \[16, 8\] for x of shape \[3, 7\]"):
            m(torch.randn(3, 7))
        with pytest.raises(TypeError, match=r"ffn_ext.nn.FeedForward: w1 must have the same dtype as x"):
            m(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with monkeypatch.context() as mp:
            mp.setattr(torch, "mm", _no_gemm)
            mp.setattr(torch.nn.functional, "linear", _no_gemm)
            with pytest.raises(ValueError, match=r"ffn_ext.ffn: w2 must be \[out_features, d\] with d = w1.shape\[0\] = 4, "
                               r"got shape \[6, 5\]"):
                ffn_ext.ffn(x, w, torch.randn(6, 5), w)
            with pytest.raises(ValueError, match="ffn_ext.ffn: activation must be one of .* for the ungated block"):
                ffn_ext.ffn(x, w, w2, activation="foo")
            with pytest.raises(ValueError, match=r"ffn_ext.ffn: w2 must be \[out_features, d\]"):
                ffn_ext.ffn(x, w, torch.randn(6, 5))
        with pytest.raises(ValueError, match=r"ffn_ext.swiglu: w3 must be \[out_features, in_features\]"):
            ffn_ext.swiglu(x, w, torch.randn(4, 7))
        # float32/float16 mixes are cast, not refused; float64, which autocast leaves alone, is
        assert ffn_ext.ffn(x, w.half(), w2, w).dtype == torch.bfloat16
        assert ffn_ext.ffn(x, w.half(), w2).dtype == torch.bfloat16
        for gated in (None, w):
            with pytest.raises(TypeError, match=r"ffn_ext.ffn: w1 must have the same dtype as x after autocast's "
                               r"casts \(x: torch.float32 -> torch.bfloat16\), got torch.float64 -> torch.float64"):
                ffn_ext.ffn(x, w.double(), w2, gated)
        with pytest.raises(TypeError, match=r"ffn_ext.swiglu: w1 must have the same dtype as x after autocast's casts"):
            ffn_ext.swiglu(x, w.double(), w)


@pytest.mark.parametrize("via", ["op", "fake"])
def test_op_errors_before_any_gemm(via):
    """torch.ops.ffn_ext.gated_linear (and its fake kernel) refuse bad input with the same text."""
    dev = "meta" if via == "fake" else "cpu"
    x = torch.randn(4, 16, device=dev)
    w = torch.randn(8, 16, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.gated_linear: w1 must be \[out_features, in_features\] with "
                       r"in_features = x.shape\[-1\] = 16, got shape \[8, 3\] for x of shape \[4, 16\]"):
        ops.gated_linear(x, torch.randn(8, 3, device=dev), w, None, None, "silu", 1.0)
    with pytest.raises(ValueError, match="ffn_ext.gated_linear: activation must be one of"):
        ops.gated_linear(x, w, w, None, None, "mish", 1.0)
    with pytest.raises(ValueError, match=r"ffn_ext.gated_linear: b1 must be \[out_features\] = \[8\], got shape \[2, 8\]"):
        ops.gated_linear(x, w, w, torch.randn(2, 8, device=dev), None, "silu", 1.0)


@requires_cuda
def test_cuda_mixed_devices_refused():
    x = torch.randn(4, 16, device="cuda")
    with pytest.raises(RuntimeError, match=r"ffn_ext.swiglu: w1 must be on the same device as x \(cuda:0\), got cpu"):
        ffn_ext.swiglu(x, torch.randn(8, 16), torch.randn(8, 16, device="cuda"))
