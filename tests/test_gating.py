"""The gating ops act(gate) * up (two tensors and packed [..., 2d]) and glu: values against the
float64 formulas of REFERENCE.md, gradients (gradcheck, gradgradcheck), registration (opcheck),
compile, layouts without copies, and the error texts."""

import math

import pytest
import torch
import torch.nn.functional as F

import ffn_ext
import ffn_ext.reference as R
from ffn_ext._memory import cuda_memory_stats, memory_of
from conftest import (DEVICES, FLOAT_DTYPES, LOWP, assert_accurate, assert_cuda_graph_replays, free_memory_gb,
                      make_layout, own_swish, profile_ops, UNDER_SANITIZER)

ops = torch.ops.ffn_ext
BETA = 1.3


def _sig(t):
    return R.sigmoid(t.double())


def _sig_d1(t):
    t = t.double()
    return R.sigmoid(t) * R.sigmoid(-t)


def _sig_d2(t):
    t = t.double()
    return R.sigmoid(t) * R.sigmoid(-t) * R.sigmoid_diff(t)


def _zero(t):
    return torch.zeros_like(t.double())


def _one(t):
    return torch.ones_like(t.double())


# activation: (f, f', f'', PyTorch's own f in the input dtype)
GATES = {
    "sigmoid": (_sig, _sig_d1, _sig_d2, torch.sigmoid),
    "gelu": (R.gelu, R.gelu_d1, R.gelu_d2, F.gelu),
    "gelu_tanh": (R.gelu_tanh, R.gelu_tanh_d1, R.gelu_tanh_d2, lambda t: F.gelu(t, approximate="tanh")),
    "silu": (R.silu, R.silu_d1, R.silu_d2, F.silu),
    "swish": (
        lambda t: R.swish(t, BETA),
        lambda t: R.swish_dx(t, BETA),
        lambda t: R.swish_dxx(t, BETA),
        lambda t: own_swish(t, BETA),
    ),
    "relu": (R.relu, R.relu_d1, _zero, F.relu),
    "identity": (lambda t: t.double(), _one, _zero, lambda t: t),
}


def _beta(act):
    return BETA if act == "swish" else 1.0


def _own_fwd(act, g, u):
    return GATES[act][3](g) * u


def _own_bwd(act, g, u, dy):
    gr, ur = g.detach().clone().requires_grad_(True), u.detach().clone().requires_grad_(True)
    return torch.autograd.grad(_own_fwd(act, gr, ur), (gr, ur), dy)


def _check_fwd(act, y, g, u):
    f = GATES[act][0]
    U = u.double().cpu()
    own = _own_fwd(act, g, u) if g.dtype in LOWP else None
    assert_accurate(y, lambda t: f(t) * U, g, own)


def _check_bwd(act, dg, du, g, u, dy):
    f, d1 = GATES[act][0], GATES[act][1]
    U, DY = u.double().cpu(), dy.double().cpu()
    own = _own_bwd(act, g, u, dy) if g.dtype in LOWP else (None, None)
    assert_accurate(dg, lambda t: DY * U * d1(t), g, own[0])
    assert_accurate(du, lambda t: DY * f(t), g, own[1])


def _own_double_bwd(act, g, u, dy, ggg, ggu):
    """PyTorch's own (d_dy, d_g, d_u) of act(g) * u's backward, in the inputs' dtype."""
    gr, ur, dyr = (t.detach().clone().requires_grad_(True) for t in (g, u, dy))
    dg, du = torch.autograd.grad(_own_fwd(act, gr, ur), (gr, ur), dyr, create_graph=True)
    return torch.autograd.grad((dg, du), (dyr, gr, ur), (ggg, ggu), allow_unused=True, materialize_grads=True)


def _check_double_bwd(act, outs, g, u, dy, ggg, ggu):
    """act_and_mul_double_backward's (d_dy, d_g, d_u), the gradients of dg = dy u f'(g) and
    du = dy f(g) given (ggg, ggu), against the float64 formulas. f'' = 0 (relu, identity) has no
    term at all, so an infinite u gives 0 there, not inf * 0."""
    f, d1, d2 = GATES[act][:3]
    GGG, GGU, DY, U = (t.double().cpu() for t in (ggg, ggu, dy, u))

    def d_g(t):
        curvature = torch.zeros_like(t) if d2 is _zero else GGG * U * d2(t)
        return DY * (curvature + GGU * d1(t))

    refs = (lambda t: GGG * U * d1(t) + GGU * f(t), d_g, lambda t: GGG * DY * d1(t))
    own = _own_double_bwd(act, g, u, dy, ggg, ggu) if g.dtype in LOWP else (None,) * 3
    for out, ref, o in zip(outs, refs, own):
        assert_accurate(out, ref, g, o)


TWO_LAYOUTS = ["contiguous", "transposed", "sliced", "rows", "offset"]


@pytest.mark.parametrize("layout", TWO_LAYOUTS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("act", list(GATES))
def test_two_tensors_forward_backward(act, dtype, layout, device):
    shape = (9, 37)
    g = make_layout(shape, layout, dtype, device, lambda *a, **k: 3 * torch.randn(*a, **k))
    u = make_layout(shape, layout, dtype, device)
    _check_fwd_bwd(act, g, u)


def _check_fwd_bwd(act, g, u):
    """act_and_mul(g, u) and its backward with a contiguous dy, against the float64 formulas."""
    dy = torch.randn(g.shape, dtype=g.dtype, device=g.device)
    y = ffn_ext.act_and_mul(g, u, act, beta=_beta(act))
    assert y.shape == g.shape and y.dtype == g.dtype
    _check_fwd(act, y, g, u)
    dg, du = ops.act_and_mul_backward(dy, g, u, act, _beta(act))
    _check_bwd(act, dg, du, g, u, dy)
    return dy


# gate and up of the logical shape, one of them transposed in memory (and so, in the backward, its
# gradient too): (name, shape, which operand is transposed, the CUDA kernel that takes the forward)
MIXED = [
    ("gate_t_33x70", (33, 70), "gate", "tile_kernel"),
    ("up_t_70x33", (70, 33), "up", "tile_kernel"),
    ("gate_t_8x300", (8, 300), "gate", "tile_kernel"),
    ("gate_t_batched_3x40x50", (3, 40, 50), "gate", "tile_kernel"),
    ("gate_t_5x64_side_below_8", (5, 64), "gate", "strided_kernel"),
]


@pytest.mark.parametrize("case", MIXED, ids=[c[0] for c in MIXED])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("act", list(GATES))
def test_mixed_layouts_forward_backward(act, dtype, case, device):
    """One operand transposed beside a contiguous one (the other's last two dimensions swapped in
    memory), with partial tiles and a batch dimension: forward, and backward with a contiguous dy
    (the result and one gradient take the transposed operand's layout, the other gradient the
    contiguous one's). On CUDA the tile kernel takes these (32 x 32 tiles through shared memory,
    csrc/cuda/strided_kernel.cuh), the strided kernel those with a side below 8; the profiler
    checks which ran."""
    _, shape, which, kernel = case

    def transposed(scale):
        t = scale * torch.randn(*shape[:-2], shape[-1], shape[-2], dtype=torch.float64)
        return t.to(dtype).to(device).transpose(-1, -2)

    g = transposed(3) if which == "gate" else (3 * torch.randn(shape, dtype=torch.float64)).to(dtype).to(device)
    u = transposed(1) if which == "up" else torch.randn(shape, dtype=torch.float64).to(dtype).to(device)
    assert not (g.is_contiguous() and u.is_contiguous())
    dy = _check_fwd_bwd(act, g, u)
    if device == "cuda" and act == "silu" and dtype == torch.float32 and not UNDER_SANITIZER:
        for fn in (lambda: ffn_ext.act_and_mul(g, u, act), lambda: ops.act_and_mul_backward(dy, g, u, act, 1.0)):
            names = profile_ops(fn, device)[2]
            assert len(names) == 1 and kernel in names[0], names


@pytest.mark.parametrize("d", [1, 2, 3, 24, 1368, 3420, 11008, 14336])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_packed_sizes(d, dtype, device):
    rows = 3 if d > 1000 else 5
    h = 3 * torch.randn(rows, 2 * d, dtype=dtype, device=device)
    for act in ("silu", "gelu", "gelu_tanh", "sigmoid"):
        y = ffn_ext.act_and_mul_packed(h, act)
        assert y.shape == (rows, d)
        _check_fwd(act, y, h[:, :d], h[:, d:])
    dy = torch.randn(rows, d, dtype=dtype, device=device)
    dh = ops.act_and_mul_packed_backward(dy, h, "silu", 1.0)
    assert dh.shape == h.shape and dh.is_contiguous()
    _check_bwd("silu", dh[:, :d], dh[:, d:], h[:, :d], h[:, d:], dy)


@pytest.mark.parametrize("rows, d", [(1, 14336), (8, 14336), (64, 14336), (200, 4096), (70000, 4), (70000, 128)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_packed_row_counts(rows, d, dtype, device):
    """Decode row counts (the CUDA launch shrinks its blocks so that they spread over the
    multiprocessors), more rows than multiprocessors, and more rows than a CUDA grid's y extent
    (65535), forward and backward: 70000 x 4 takes the strided kernel (too few 16-byte packs per
    row for the row kernel), 70000 x 128 (16 or more packs a row) the row kernel's loop over grid-y
    chunks."""
    if device == "cpu" and rows * d > 10**6:
        pytest.skip("a CUDA launch-geometry case (9M elements; 12 s of float64 checking on this CPU)")
    h = 3 * torch.randn(rows, 2 * d, dtype=dtype, device=device)
    y = ffn_ext.silu_and_mul(h)
    _check_fwd("silu", y, h[:, :d], h[:, d:])
    dy = torch.randn(rows, d, dtype=dtype, device=device)
    dh = ops.act_and_mul_packed_backward(dy, h, "silu", 1.0)
    _check_bwd("silu", dh[:, :d], dh[:, d:], h[:, :d], h[:, d:], dy)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("act", list(GATES))
def test_packed_equals_sliced_semantics(act, dtype, device):
    """act_and_mul_packed(h) is act(h[..., :d]) * h[..., d:], also for a slice of a wider buffer
    (row stride > 2d) and for leading dimensions."""
    big = 3 * torch.randn(2, 5, 2 * 19 + 6, dtype=dtype, device=device)
    h = big[..., 2 : 2 + 2 * 19]  # row stride 44 > 2d = 38, not 16-byte aligned
    y = ffn_ext.act_and_mul_packed(h, act, beta=_beta(act))
    _check_fwd(act, y, h[..., :19], h[..., 19:])
    dy = torch.randn(2, 5, 19, dtype=dtype, device=device)
    dh = ops.act_and_mul_packed_backward(dy, h, act, _beta(act))
    _check_bwd(act, dh[..., :19], dh[..., 19:], h[..., :19], h[..., 19:], dy)


def test_named_packed_ops(device):
    h = torch.randn(4, 2 * 24, device=device)
    g, u = h[:, :24], h[:, 24:]
    for fn, act in ((ffn_ext.silu_and_mul, "silu"), (ffn_ext.gelu_tanh_and_mul, "gelu_tanh")):
        assert torch.equal(fn(h), ffn_ext.act_and_mul(g, u, act))
    assert torch.equal(ffn_ext.gelu_and_mul(h), ffn_ext.act_and_mul(g, u, "gelu"))
    assert torch.equal(ffn_ext.gelu_and_mul(h, approximate="tanh"), ffn_ext.act_and_mul(g, u, "gelu_tanh"))
    _check_fwd("silu", ffn_ext.silu_and_mul(h), g, u)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_views_without_copies(dtype, device):
    """Operands made by chunk, split, narrow and transpose, and packed h sliced from a wider
    buffer, are taken as they are (row or strided path; on the CPU the strided path gathers small
    tiles on the stack, which memory_of does not see): right values, and no memory allocated beyond
    the result, forward and backward (a copy of an operand would show). Under compute-sanitizer's
    memcheck tools/gpu_check.sh bypasses the CUDA caching allocator, which then keeps no
    statistics: there the values alone are checked, and the layouts' accesses are memcheck's."""
    measured = device == "cpu" or cuda_memory_stats(device)

    def memory(fn, want, what):  # want: (peak, held), or (peak,)
        if measured:
            got = memory_of(fn, device)
            assert got[:len(want)] == want, (what, got, want)
        else:
            fn()

    m, d = 64, 256
    h = 3 * torch.randn(m, 2 * d, dtype=dtype, device=device)
    wide = 3 * torch.randn(m, 2 * d + 40, dtype=dtype, device=device)
    ht = 3 * torch.randn(2 * d, m, dtype=dtype, device=device)
    two = {"chunk": h.chunk(2, -1), "split": h.split(d, -1), "narrow": (h.narrow(-1, 0, d), h.narrow(-1, d, d)),
           "transpose": (ht[:d].t(), ht[d:].t())}
    size = m * d * h.element_size()
    dy = torch.randn(m, d, dtype=dtype, device=device)
    for name, (g, u) in two.items():
        for act in ("gelu", "silu", "sigmoid", "identity"):
            kept = []
            memory(lambda: kept.append(ffn_ext.act_and_mul(g, u, act)), (size, size), (name, act))
            _check_fwd(act, kept[0], g, u)
        memory(lambda: ops.act_and_mul_backward(dy, g, u, "silu", 1.0), (2 * size,), name)
    for name, hp in {"rows of a wider buffer": wide[:, 5:5 + 2 * d], "narrow": wide.narrow(-1, 40, 2 * d),
                     "split": wide.split([2 * d, 40], -1)[0], "transposed": ht.t()}.items():
        for act in ("gelu_tanh", "relu"):
            kept = []
            memory(lambda: kept.append(ffn_ext.act_and_mul_packed(hp, act)), (size, size), (name, act))
            _check_fwd(act, kept[0], hp[:, :d], hp[:, d:])
        memory(lambda: ops.act_and_mul_packed_backward(dy, hp, "silu", 1.0), (2 * size,), name)


@pytest.mark.large
def test_packed_more_than_2_31_elements(device):
    """64-bit indexing in the gating kernels: a packed bf16 h of 16384 x 2 * 65544 elements
    (2^31 + 262144): the second-to-last row straddles element 2^31, the last lies wholly past it.
    Forward and backward (the packed gradient has as many elements); rows of 16-byte loads. The rows
    checked in full are the first and the last two; those between hold one value each and are
    checked every 997th."""
    rows, d = 16384, 65544
    assert (rows - 2) * 2 * d < 2**31 < (rows - 1) * 2 * d
    if device == "cpu" and free_memory_gb() < 14:
        pytest.skip("needs 14 GB of free memory")
    if device == "cuda" and torch.cuda.mem_get_info()[0] < 14 * 2**30:
        pytest.skip("needs 14 GB of free GPU memory")
    h = torch.empty(rows, 2 * d, dtype=torch.bfloat16, device=device)
    h[:, :d].fill_(-1.25)
    h[:, d:].fill_(0.75)
    checked = [0, rows - 2, rows - 1]
    h[checked] = 3 * torch.randn(len(checked), 2 * d, device=device).to(torch.bfloat16)
    y = ffn_ext.silu_and_mul(h)
    _check_fwd("silu", y[checked], h[checked, :d], h[checked, d:])
    _check_fwd("silu", y[1:-2:997], h[1:-2:997, :d], h[1:-2:997, d:])
    del y
    dy = torch.empty(rows, d, dtype=torch.bfloat16, device=device).fill_(0.5)
    dy[checked] = torch.randn(len(checked), d, device=device).to(torch.bfloat16)
    dh = ops.act_and_mul_packed_backward(dy, h, "silu", 1.0)
    for r in (checked, slice(1, -2, 997)):
        _check_bwd("silu", dh[r, :d], dh[r, d:], h[r, :d], h[r, d:], dy[r])


@pytest.mark.large
@pytest.mark.parametrize("layout", ["interleaved", "gate_t"])
def test_strided_and_tiled_more_than_2_31_elements(layout, device):
    """64-bit addressing of the layouts that are not rows, 2^31 + 65536 elements a bf16 operand:
    the interleaved halves h[:, 0::2], h[:, 1::2] (CUDA: the strided kernel, launched on parts of
    fewer than 2^31 elements, TensorIterator's split) and a transposed gate beside a contiguous up
    (CUDA: the tile kernel, 64-bit tile origins). Forward and backward; the first and last rows,
    and every 997th between, are checked (the others hold one value each)."""
    if device == "cpu":
        pytest.skip("a CUDA addressing case (the CPU's strided path is TensorIterator's, 64-bit throughout)")
    rows, d = 32769, 65536
    assert (rows - 1) * d < 2**31 < rows * d
    if torch.cuda.mem_get_info()[0] < 40 * 2**30:
        pytest.skip("needs 40 GB of free GPU memory")
    bf = torch.bfloat16
    if layout == "interleaved":
        h = torch.empty(rows, 2 * d, dtype=bf, device=device)
        g, u = h[:, 0::2], h[:, 1::2]
    else:
        g = torch.empty(d, rows, dtype=bf, device=device).t()
        u = torch.empty(rows, d, dtype=bf, device=device)
    g.fill_(-1.25)
    u.fill_(0.75)
    checked = [0, 1, rows - 2, rows - 1]
    g[checked] = (3 * torch.randn(len(checked), d, device=device)).to(bf)
    u[checked] = torch.randn(len(checked), d, device=device).to(bf)
    y = ffn_ext.act_and_mul(g, u, "silu")
    dy = torch.full((rows, d), 0.5, dtype=bf, device=device)
    dy[checked] = torch.randn(len(checked), d, device=device).to(bf)
    dg, du = ops.act_and_mul_backward(dy, g, u, "silu", 1.0)
    for r in (checked, slice(2, -2, 997)):
        _check_fwd("silu", y[r], g[r], u[r])
        _check_bwd("silu", dg[r], du[r], g[r], u[r], dy[r])


def _unmerged_26d(base, offset=0):
    """A view of `base` in 26 dimensions of size 2 (2^26 elements), no two of which merge:
    dimension k from the last has a stride of 2^(k+1) - 1 elements, never twice the stride of the
    dimension inside it (TensorIterator merges two dimensions where the outer's stride is the
    inner's size x stride), and more than all the dimensions inside it span (so no two elements
    share an address)."""
    return base.as_strided([2] * 26, [2 ** (k + 1) - 1 for k in reversed(range(26))], offset)


@pytest.mark.large
def test_more_than_25_dimensions_that_do_not_merge(device):
    """Operands of 26 dimensions that do not merge: one more than ATen's CUDA kernels take, its
    copies included (they refuse: "tensor has too many (>25) dims"), so CUDA launches them in slices
    (launch_strided). Activation forward and backward, a per-channel tensor beta (a broadcast
    input), gating forward and backward, and packed forward into an out= of 26 dimensions (its
    buffer written at out's elements only). Every element against the same op on dense copies of
    the operands (bit for bit on the CPU, PyTorch's default closeness on CUDA: another kernel), and
    every 61st against the float64 formulas. Float32 throughout: the slicing is the same code for
    every dtype."""
    if device == "cpu":
        pytest.skip("a CUDA case (the CPU's strided path is TensorIterator's for_each, which takes any "
                    "number of dimensions; there this test takes 25-40 s)")
    if torch.cuda.mem_get_info()[0] < 8 * 2**30:
        pytest.skip("needs 8 GB of free GPU memory")
    gen = torch.Generator().manual_seed(26)
    base = 3 * torch.randn(2**27, generator=gen)  # on the CPU: the reference reads its views
    base_dev = base.to(device)
    # x, a second and a third operand: views of one buffer one element apart (inputs may overlap)
    x, u, dy = (_unmerged_26d(base_dev, k) for k in range(3))
    dense = [_unmerged_26d(base, k).contiguous() for k in range(3)]  # the CPU's copies of them
    xd, ud, dyd = (t.to(device) for t in dense)
    sample = torch.arange(0, 2**26, 61)
    xs, us, dys = (t.view(-1)[sample] for t in dense)

    def same(got, want):
        assert got.shape == want.shape == (2,) * 26
        if device == "cpu":
            assert torch.equal(got, want)
        else:
            torch.testing.assert_close(got, want)

    def at_sample(t):
        assert t.is_contiguous()  # an output the op allocated: dense, whatever the inputs' layout
        return t.view(-1)[sample.to(device)].cpu()

    y = ffn_ext.gelu(x)
    same(y, ffn_ext.gelu(xd))
    assert_accurate(at_sample(y), R.gelu, xs)

    gx = ops.gelu_backward(dy, x, "none")
    same(gx, ops.gelu_backward(dyd, xd, "none"))
    DY = dys.double()
    assert_accurate(at_sample(gx), lambda t: DY * R.gelu_d1(t), xs)

    beta = torch.tensor([0.75, -1.5], device=device)  # per channel: broadcast along every other dimension
    y = ffn_ext.swish(x, beta)
    same(y, ffn_ext.swish(xd, beta))
    B = beta.double().cpu()[sample % 2]  # the last dimension's index of element i is i % 2
    assert_accurate(at_sample(y), lambda t: R.swish(t, B), xs)

    y = ffn_ext.act_and_mul(x, u, "silu")
    same(y, ffn_ext.act_and_mul(xd, ud, "silu"))
    _check_fwd("silu", at_sample(y), xs, us)

    dg, du = ops.act_and_mul_backward(dy, x, u, "silu", 1.0)
    dgd, dud = ops.act_and_mul_backward(dyd, xd, ud, "silu", 1.0)
    same(dg, dgd)
    same(du, dud)
    _check_bwd("silu", at_sample(dg), at_sample(du), xs, us, dys)

    h = torch.cat([xd, ud], -1)  # [2, ..., 2, 4]: gate x, up u
    out_base = torch.full((2**27,), math.nan, device=device)
    out = _unmerged_26d(out_base)
    assert ffn_ext.silu_and_mul(h, out=out) is out
    out_base = out_base.cpu()
    assert int((~out_base.isnan()).sum()) == 2**26  # out's elements written, none beside them
    out_cpu = _unmerged_26d(out_base).contiguous()
    same(out_cpu.to(device), ffn_ext.silu_and_mul(h))
    _check_fwd("silu", out_cpu.view(-1)[sample], xs, us)


@pytest.mark.parametrize("dim", [-1, 0, 1, 2])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_glu_matches_torch(dim, dtype, device):
    h = 3 * torch.randn(4, 6, 8, dtype=dtype, device=device)
    y = ffn_ext.glu(h, dim)
    ref = F.glu(h, dim)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    n = h.shape[dim] // 2
    a, b = h.narrow(dim, 0, n), h.narrow(dim, n, n)
    own = F.glu(h, dim) if dtype in LOWP else None
    A = a.double().cpu()
    assert_accurate(y, lambda t: _sig(t) * A, b, own)
    tol = {torch.float32: 1e-6, torch.float64: 1e-14, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    torch.testing.assert_close(y, ref, rtol=tol, atol=tol)
    hr = h.detach().clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(ffn_ext.glu(hr, dim), hr, torch.ones_like(y))
    hr2 = h.detach().clone().requires_grad_(True)
    (gx2,) = torch.autograd.grad(F.glu(hr2, dim), hr2, torch.ones_like(y))
    torch.testing.assert_close(gx, gx2, rtol=tol, atol=tol)


def test_thread_count_does_not_change_results():
    """The CPU loops split their work across threads (rows of packed h, flat ranges of dense
    operands, TensorIterator's ranges of strided ones): one thread and two give the same bits,
    forward and backward."""
    h = 3 * torch.randn(256, 2 * 4096)
    g, u = 3 * torch.randn(256, 4096), torch.randn(256, 4096)
    gt = 3 * torch.randn(4096, 256).t()  # transposed: the strided path
    dy = torch.randn(256, 4096)
    before = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append([ffn_ext.gelu_and_mul(h), ops.act_and_mul_packed_backward(dy, h, "silu", 1.0),
                            ffn_ext.act_and_mul(g, u, "gelu_tanh"), *ops.act_and_mul_backward(dy, g, u, "sigmoid", 1.0),
                            ffn_ext.act_and_mul(gt, u, "gelu"), *ops.act_and_mul_backward(dy, gt, u, "swish", 1.3)])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_zero_tokens(device):
    """No rows: empty results of the right shapes from every pass, and gradients through them."""
    h = torch.randn(0, 2 * 16, device=device)
    g, u, dy = h[:, :16], h[:, 16:], torch.randn(0, 16, device=device)
    assert ffn_ext.silu_and_mul(h).shape == (0, 16)
    assert ffn_ext.silu_and_mul(h, out=torch.empty(0, 16, device=device)).shape == (0, 16)
    assert ops.act_and_mul_packed_backward(dy, h, "silu", 1.0).shape == (0, 32)
    assert [t.shape for t in ops.act_and_mul_packed_double_backward(h, dy, h, "gelu", 1.0)] == [(0, 16), (0, 32)]
    assert ffn_ext.act_and_mul(g, u).shape == (0, 16)
    assert [t.shape for t in ops.act_and_mul_backward(dy, g, u, "silu", 1.0)] == [(0, 16)] * 2
    assert [t.shape for t in ops.act_and_mul_double_backward(dy, dy, dy, g, u, "silu", 1.0)] == [(0, 16)] * 3
    h64 = torch.randn(0, 3, 8, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: ffn_ext.act_and_mul_packed(t, "gelu"), (h64,))


def test_out_variant(device):
    h = torch.randn(5, 2 * 12, device=device)
    out = torch.full((5, 12), float("nan"), device=device)
    r = ffn_ext.silu_and_mul(h, out=out)
    assert r.data_ptr() == out.data_ptr()
    assert torch.equal(out, ffn_ext.silu_and_mul(h))
    wide = torch.zeros(5, 20, device=device)  # a strided out: a slice of a wider buffer
    ffn_ext.gelu_and_mul(h, out=wide[:, 3:15])
    assert torch.equal(wide[:, 3:15], ffn_ext.gelu_and_mul(h))
    assert (wide[:, :3] == 0).all() and (wide[:, 15:] == 0).all()
    v = out._version
    ffn_ext.silu_and_mul(h, out=out)
    assert out._version > v


def test_out_variant_under_compile(device):
    """out= inside torch.compile(fullgraph=True): the functional op and a copy into out (the
    out= op cannot be traced), with out's checks; the same bits as eager."""
    h = torch.randn(5, 2 * 12, device=device)

    def f(h, out):
        ffn_ext.silu_and_mul(h, out=out[:, 2:14])
        return ffn_ext.gelu_and_mul(h, "tanh", out=out[:, 14:26]).sum()

    out = torch.zeros(5, 30, device=device)
    want = torch.zeros(5, 30, device=device)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    s = compiled(h, out)
    torch.testing.assert_close(s, f(h, want), rtol=0, atol=0)
    assert torch.equal(out, want) and out[:, 2:14].ne(0).any()
    with pytest.raises(Exception, match=r"ffn_ext.silu_and_mul: out must have shape h.shape\[:-1\] \+ "
                       r"\[h.shape\[-1\] / 2\] = \[5, 12\], got \[2, 5, 12\]"):
        torch.compile(lambda h, o: ffn_ext.silu_and_mul(h, out=o), fullgraph=True, backend="aot_eager")(
            h, torch.empty(2, 5, 12, device=device))  # copy_ alone would broadcast into it
    with pytest.raises(Exception, match=r"ffn_ext.silu_and_mul: out= does not support autograd \(h or out "
                       r"requires grad\)"):
        torch.compile(lambda h, o: ffn_ext.silu_and_mul(h, out=o), fullgraph=True, backend="aot_eager")(
            h.clone().requires_grad_(True), torch.empty(5, 12, device=device))  # as in eager


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "two_tensors"])
def test_memory_saves_only_inputs(packed, device):
    """The forward allocates only its result and saves nothing but the inputs (autograd holds
    references to them, no copies or intermediates); the backward allocates only the gradients:
    one packed [..., 2d] tensor for the packed op (so the projection backward upstream can be one
    GEMM), dgate and dup for two tensors."""
    m, d = 64, 1024
    h = torch.randn(m, 2 * d, device=device, requires_grad=True)
    g, u = (torch.randn(m, d, device=device, requires_grad=True) for _ in range(2))
    inputs = (h,) if packed else (g, u)
    fwd = (lambda: ffn_ext.silu_and_mul(h)) if packed else (lambda: ffn_ext.act_and_mul(g, u))
    kept = []
    peak, held = memory_of(lambda: kept.append(fwd()), device)
    out_bytes = m * d * 4
    assert (peak, held) == (out_bytes, out_bytes)
    dy = torch.randn(m, d, device=device)
    grads = []
    peak, held = memory_of(lambda: grads.append(torch.autograd.grad(kept[0], inputs, dy)), device)
    assert (peak, held) == (2 * out_bytes, 2 * out_bytes)
    if packed:
        assert grads[0][0].shape == (m, 2 * d) and grads[0][0].is_contiguous()


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "two_tensors"])
def test_saves_the_inputs_themselves(packed, device):
    """What autograd saves for the backward is the inputs themselves (not the output, nor copies):
    saved_tensors_hooks sees exactly them."""
    h = torch.randn(4, 2 * 8, device=device, requires_grad=True)
    g, u = (torch.randn(4, 8, device=device, requires_grad=True) for _ in range(2))
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = ffn_ext.silu_and_mul(h) if packed else ffn_ext.act_and_mul(g, u, "gelu")
    want = [h] if packed else [g, u]
    assert len(saved) == len(want) and all(a is b or a.data_ptr() == b.data_ptr() and a.shape == b.shape
                                           for a, b in zip(saved, want)), [t.shape for t in saved]
    assert not any(t.data_ptr() == y.data_ptr() for t in saved)


def _ops_and_kernels(fn, device):
    """(the names of the operators fn() runs, without the autograd engine's own; the number of GPU
    kernels it launches)."""
    out, ran, kernels = profile_ops(fn, device)
    if isinstance(out, Exception):
        raise out
    return {name for name, _ in ran if "autograd" not in name}, len(kernels)


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "two_tensors"])
def test_each_pass_is_one_kernel(packed, device):
    """Forward, backward and double backward each run one ffn_ext op (one kernel on a GPU) and
    allocate their results: no separate activation or multiply pass, no copies."""
    allocations = {"aten::empty", "aten::empty_like", "aten::empty_strided"}
    h = torch.randn(64, 2 * 96, device=device, requires_grad=True)
    g, u = (torch.randn(64, 96, device=device, requires_grad=True) for _ in range(2))
    dy = torch.randn(64, 96, device=device, requires_grad=True)
    inputs = (h,) if packed else (g, u)
    forward = (lambda: ffn_ext.silu_and_mul(h)) if packed else (lambda: ffn_ext.act_and_mul(g, u, "gelu"))
    name = "act_and_mul_packed" if packed else "act_and_mul"
    kernels_per_pass = 1 if device == "cuda" else 0  # (the CPU profile has no kernels)
    kept = []
    names, kernels = _ops_and_kernels(lambda: kept.append(forward()), device)
    assert names - allocations == {f"ffn_ext::{name}"} and kernels == kernels_per_pass, (names, kernels)
    grads = []
    names, kernels = _ops_and_kernels(lambda: grads.append(torch.autograd.grad(kept[0], inputs, dy, create_graph=True)),
                                      device)
    assert names - allocations == {f"ffn_ext::{name}_backward"} and kernels == kernels_per_pass, (names, kernels)
    gg = [torch.randn_like(t) for t in grads[0]]
    names, kernels = _ops_and_kernels(lambda: torch.autograd.grad(grads[0], (dy, *inputs), gg), device)
    assert names - allocations == {f"ffn_ext::{name}_double_backward"} and kernels == kernels_per_pass, (names, kernels)


@pytest.mark.parametrize("act", list(GATES))
def test_gradcheck_two_tensors(act, device):
    g = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    u = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda a, b: ffn_ext.act_and_mul(a, b, act, beta=_beta(act))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (g, u))
    assert torch.autograd.gradgradcheck(fn, (g, u))


@pytest.mark.parametrize("act", list(GATES))
def test_gradcheck_packed(act, device):
    h = torch.randn(3, 2 * 4, dtype=torch.float64, device=device)
    h = h[:, :].t().contiguous().t().requires_grad_(True)  # column-major: halves are strided views
    fn = lambda t: ffn_ext.act_and_mul_packed(t, act, beta=_beta(act))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (h,))
    assert torch.autograd.gradgradcheck(fn, (h,))


@pytest.mark.parametrize("layout", TWO_LAYOUTS)
@pytest.mark.parametrize("which", ["grad_grad_gate", "grad_grad_up"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("act", list(GATES))
def test_double_backward_values(act, dtype, which, layout, device):
    """The second-order kernels in every dtype (gradgradcheck checks float64 only), two-tensor and
    packed, one incoming gradient at a time so that each output is one product of terms. The gate
    and the incoming gradient take `layout`, up and dy stay contiguous: beside them a transposed or
    sliced operand goes to the strided kernel (eight operands: the tile kernel takes at most five),
    which is checked here against the float64 formulas, as the first order is in
    test_two_tensors_forward_backward."""
    shape = (9, 37)
    g = make_layout(shape, layout, dtype, device, scale=3.0)
    gg = make_layout(shape, layout, dtype, device)
    u, dy = (torch.randn(shape, dtype=dtype, device=device) for _ in range(2))
    zero = torch.zeros_like(gg)
    ggg, ggu = (gg, zero) if which == "grad_grad_gate" else (zero, gg)
    outs = ops.act_and_mul_double_backward(ggg, ggu, dy, g, u, act, _beta(act))
    _check_double_bwd(act, outs, g, u, dy, ggg, ggu)
    h = torch.cat([g, u], -1)
    d_dy, d_h = ops.act_and_mul_packed_double_backward(torch.cat([ggg, ggu], -1), dy, h, act, _beta(act))
    d = shape[-1]
    _check_double_bwd(act, (d_dy, d_h[:, :d], d_h[:, d:]), g, u, dy, ggg, ggu)


def test_third_order_refused(device):
    g = torch.randn(4, dtype=torch.float64, device=device, requires_grad=True)
    u = torch.randn(4, dtype=torch.float64, device=device, requires_grad=True)
    y = ffn_ext.act_and_mul(g, u, "gelu")
    (dg,) = torch.autograd.grad(y.sum(), g, create_graph=True)
    (dgg,) = torch.autograd.grad(dg.sum(), g, create_graph=True)
    with pytest.raises(NotImplementedError, match="act_and_mul_double_backward: third-order"):
        torch.autograd.grad(dgg.sum(), g)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph(backend, device):
    torch._dynamo.reset()

    def f(h, g, u):
        return ffn_ext.silu_and_mul(h) + ffn_ext.act_and_mul(g, u, "gelu_tanh") + ffn_ext.glu(h, 0).sum(0)[:16]

    h = torch.randn(4, 32, device=device)
    g, u = torch.randn(4, 16, device=device), torch.randn(4, 16, device=device)
    compiled = torch.compile(f, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(h, g, u), f(h, g, u), rtol=0, atol=0)
    hr = h.clone().requires_grad_(True)
    dy = torch.randn(4, 16, device=device)  # dense (not sum()'s expanded ones): the same kernel path
    (gc,) = torch.autograd.grad(compiled(hr, g, u), hr, dy)
    (ge,) = torch.autograd.grad(f(hr, g, u), hr, dy)
    torch.testing.assert_close(gc, ge, rtol=0, atol=0)


# ---- errors --------------------------------------------------------------------------------------
def test_unknown_activation():
    g = torch.randn(2, 4)
    msg = ("ffn_ext.act_and_mul: activation must be one of 'sigmoid', 'gelu', 'gelu_tanh', 'silu', "
           "'swish', 'relu', 'identity', got 'swiglu'")
    with pytest.raises(ValueError, match=msg):
        ffn_ext.act_and_mul(g, g, "swiglu")
    with pytest.raises(ValueError, match=msg):
        ffn_ext.act_and_mul(g.to("meta"), g.to("meta"), "swiglu")
    with pytest.raises(ValueError, match="beta is used only with activation='swish', got beta=2.000000 with activation='gelu'"):
        ffn_ext.act_and_mul(g, g, "gelu", beta=2.0)


@pytest.mark.parametrize("dev", ["cpu", "meta"])
def test_odd_packed_dimension(dev):
    h = torch.randn(3, 7, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.silu_and_mul: the last dimension of h must be even "
                       r"and at least 2 \(\[..., 2d\]: gate = h\[..., :d\], up = h\[..., d:\]\), got 7 "
                       r"\(h of shape \[3, 7\]\)"):
        ffn_ext.silu_and_mul(h)
    with pytest.raises(ValueError, match="got a 0-dim tensor"):
        ffn_ext.silu_and_mul(torch.tensor(1.0, device=dev))
    # Each packed name's errors name it (the op underneath is act_and_mul_packed).
    for name in ("act_and_mul_packed", "silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul"):
        with pytest.raises(ValueError, match=rf"^ffn_ext.{name}: the last dimension of h must be even .* got 7 "):
            getattr(ffn_ext, name)(h)
        with pytest.raises(TypeError, match=rf"^ffn_ext.{name}: h must be a tensor, got list$"):
            getattr(ffn_ext, name)([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^ffn_ext.gelu_and_mul: approximate must be one of 'none', 'tanh', got 'erf'$"):
        ffn_ext.gelu_and_mul(torch.randn(3, 8, device=dev), approximate="erf")


@pytest.mark.parametrize("dev", ["cpu", "meta"])
def test_shape_dtype_device_mismatch(dev):
    g = torch.randn(3, 4, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.act_and_mul: up must have the same shape as gate, got \[4, 3\] and \[3, 4\]"):
        ffn_ext.act_and_mul(g, torch.randn(4, 3, device=dev))
    with pytest.raises(TypeError, match=r"ffn_ext.act_and_mul: up must have the same dtype as gate \(torch.float32\), got torch.float64"):
        ffn_ext.act_and_mul(g, g.double())
    with pytest.raises(TypeError, match=r"ffn_ext.act_and_mul: gate must be a floating-point tensor .* got torch.int64"):
        ffn_ext.act_and_mul(g.long(), g)
    h = torch.randn(3, 8, device=dev)
    with pytest.raises(ValueError, match=r"ffn_ext.silu_and_mul: out must have shape h.shape\[:-1\] \+ "
                       r"\[h.shape\[-1\] / 2\] = \[3, 4\], got \[3, 8\]"):
        ffn_ext.silu_and_mul(h, out=torch.empty(3, 8, device=dev))


def test_mixed_devices():
    with pytest.raises(RuntimeError, match=r"ffn_ext.act_and_mul: up must be on the same device as gate \(cpu\), got meta"):
        ffn_ext.act_and_mul(torch.randn(2), torch.randn(2, device="meta"))


def test_out_refuses_autograd():
    h = torch.randn(2, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="ffn_ext.silu_and_mul: out= does not support autograd"):
        ffn_ext.silu_and_mul(h, out=torch.empty(2, 4))
    with torch.no_grad():
        ffn_ext.silu_and_mul(h, out=torch.empty(2, 4))


@pytest.mark.parametrize("dev", DEVICES + ["meta"])
def test_out_inference_tensor_refused(dev):
    """out made under torch.inference_mode() is written only there, as PyTorch's own out= functions
    require: outside it the op refuses before writing (it used to write, then fail in PyTorch's version
    bump with an error naming no op; with h an inference tensor too, it wrote without an error).
    Not under torch.compile, where Dynamo cannot trace tensor.is_inference()."""
    with torch.inference_mode():
        h_inf = torch.randn(3, 8, device=dev)
        out = torch.full((3, 4), 7.0, device=dev)
    h = h_inf.clone()  # a normal tensor
    msg = (r"^ffn_ext.silu_and_mul: out is an inference tensor \(made under torch.inference_mode\(\)\), which "
           r"can be written only under torch.inference_mode\(\); call the op there, or pass out.clone\(\)$")
    for src in (h, h_inf):
        with pytest.raises(RuntimeError, match=msg):
            ffn_ext.silu_and_mul(src, out=out)
        if dev != "meta":
            assert (out == 7).all()  # refused before the kernel
    with pytest.raises(RuntimeError, match=msg.replace("silu_and_mul", "act_and_mul_packed")):
        ops.act_and_mul_packed.out(h, "silu", 1.0, out=out)
    with torch.inference_mode():
        ffn_ext.silu_and_mul(h_inf, out=out)
    if dev != "meta":
        _check_fwd("silu", out, h[:, :4], h[:, 4:])


@pytest.mark.parametrize("dev", ["cpu", "meta"])
def test_out_under_compile_checks_h_first(dev):
    """Compiled, out= checks h before out, as eager does: a 0-dim or odd h gets h's error, not an
    IndexError from out's expected shape or out's dtype error."""
    f = torch.compile(lambda h, o: ffn_ext.silu_and_mul(h, out=o), fullgraph=True, backend="aot_eager", dynamic=False)
    with pytest.raises(Exception, match=r"ffn_ext.silu_and_mul: h must have a last dimension \[..., 2d\] to split "
                       r"into gate and up, got a 0-dim tensor"):
        f(torch.tensor(1.0, device=dev), torch.empty(1, device=dev))
    with pytest.raises(Exception, match=r"ffn_ext.silu_and_mul: the last dimension of h must be even"):
        f(torch.randn(3, 7, device=dev), torch.empty(3, 3, device=dev))


def test_out_overlap_and_beta_type_refused():
    h = torch.randn(3, 8)
    with pytest.raises(RuntimeError, match=r"ffn_ext.silu_and_mul: out has elements that share one memory "
                       r"location \(strides \[1, 0\] for shape \[3, 4\]"):
        ffn_ext.silu_and_mul(h, out=torch.empty(3, 1).expand(3, 4))  # rows alias each other
    with pytest.raises(RuntimeError, match=r"ffn_ext.silu_and_mul: out has elements that share one memory "
                       r"location \(strides \[2, 1\] for shape \[3, 4\]: an expanded tensor, or rows closer"):
        ffn_ext.silu_and_mul(h, out=torch.zeros(20).as_strided((3, 4), (2, 1)))  # rows 2 apart, 4 long
    y = torch.full((3, 10), math.nan)  # a column slice: not dense, no overlap (ATen: TooHard)
    ffn_ext.silu_and_mul(h, out=y[:, 3:7])
    torch.testing.assert_close(y[:, 3:7], ffn_ext.silu_and_mul(h), rtol=0, atol=0)
    assert y[:, :3].isnan().all() and y[:, 7:].isnan().all()
    # h's own half as out, whatever h's layout (here its last dimension is not unit-strided) ...
    for half in (slice(0, 4), slice(4, 8)):
        ht = torch.randn(8, 3).t()
        want = ffn_ext.silu_and_mul(ht.contiguous())
        ffn_ext.silu_and_mul(ht, out=ht[:, half])
        torch.testing.assert_close(ht[:, half], want, rtol=0, atol=0)
    # ... unless h's rows overlap: out's row 1 is then row 0's up half
    hov = torch.randn(20).as_strided((2, 4), (2, 1))
    with pytest.raises(RuntimeError, match="ffn_ext.silu_and_mul: out shares memory with h"):
        ffn_ext.silu_and_mul(hov, out=hov[:, :2])
    flat = torch.randn(12)
    with pytest.raises(RuntimeError, match="ffn_ext.silu_and_mul: out shares memory with h"):
        ffn_ext.silu_and_mul(flat[:8].view(1, 8), out=flat[6:10].view(1, 4))
    with pytest.raises(RuntimeError, match="ffn_ext.silu_and_mul: out shares memory with h"):
        ffn_ext.silu_and_mul(flat[:8].view(1, 8), out=flat[2:6].view(1, 4))
    want = ffn_ext.silu_and_mul(flat[:8].view(1, 8))
    ffn_ext.silu_and_mul(flat[:8].view(1, 8), out=flat[4:8].view(1, 4))  # h's up half itself
    torch.testing.assert_close(flat[4:8].view(1, 4), want, rtol=0, atol=0)
    # Overlaps ATen cannot prove (views of one storage, one of them not dense), which PyTorch's own
    # out= functions let through: refused where out would write what h still reads ...
    d = 64
    buf = torch.randn(8, 3 * d, dtype=torch.float64)
    for h_, out_ in ((buf[:3, :2 * d], buf[:3, 1:d + 1]),  # shifted by one column (gave errors to 0.245)
                     (buf[0:4, :2 * d], buf[3:7, :d]),  # rows apart: out's row 0 is h's row 3
                     (buf[1:5, :2 * d], buf[0:4, d:2 * d])):
        with pytest.raises(RuntimeError, match=r"ffn_ext.silu_and_mul: out shares memory with h, which is "
                           r"read while out is written \(out: shape \[\d+, 64\], strides \[192, 1\]"):
            ffn_ext.silu_and_mul(h_, out=out_)
    # ... and taken, with the op's result, where it would not: h's own gate or up half (each
    # element is read before its location is written), or elements between h's rows, or after them.
    for h_, out_ in ((buf[:4, :2 * d], buf[:4, :d]), (buf[:4, :2 * d], buf[:4, d:2 * d]),
                     (buf[:4, :2 * d], buf[:4, 2 * d:]), (buf[:4, d:], buf[:4, :d]), (buf[:4, :2 * d], buf[4:, :d])):
        buf2 = buf.clone()
        h2 = buf2.as_strided(h_.shape, h_.stride(), h_.storage_offset())
        out2 = buf2.as_strided(out_.shape, out_.stride(), out_.storage_offset())
        want = ffn_ext.silu_and_mul(h2.clone())
        ffn_ext.silu_and_mul(h2, out=out2)
        torch.testing.assert_close(out2, want, rtol=0, atol=0)
    with pytest.raises(TypeError, match="ffn_ext.act_and_mul: beta must be a number, got str"):
        ffn_ext.act_and_mul(h, h, "swish", beta="1.0")


def test_glu_errors():
    with pytest.raises(ValueError, match=r"ffn_ext.glu: the size of h along dim 1 must be even, got 5"):
        ffn_ext.glu(torch.randn(2, 5), 1)
    with pytest.raises(IndexError, match=r"ffn_ext.glu: dim must be in \[-2, 1\]"):
        ffn_ext.glu(torch.randn(2, 4), 2)


SPECIAL = [0.0, -0.0, 1e-3, -1e-3, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 20.0, -20.0, 100.0, -100.0, math.inf, -math.inf,
           math.nan]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_special_values_gating(dtype, device):
    """REFERENCE.md's points, infinities and NaN in the gate, through forward, backward and
    double backward (each incoming gradient alone), every activation."""
    g = torch.tensor(SPECIAL, dtype=dtype, device=device)
    u, dy = torch.full_like(g, 2.0), torch.full_like(g, -1.5)
    gg, zero = torch.full_like(g, 0.75), torch.zeros_like(g)
    for act in GATES:
        _check_fwd(act, ffn_ext.act_and_mul(g, u, act, beta=_beta(act)), g, u)
        _check_bwd(act, *ops.act_and_mul_backward(dy, g, u, act, _beta(act)), g, u, dy)
        for ggg, ggu in ((gg, zero), (zero, gg)):
            outs = ops.act_and_mul_double_backward(ggg, ggu, dy, g, u, act, _beta(act))
            _check_double_bwd(act, outs, g, u, dy, ggg, ggu)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_piecewise_linear_gates_second_order_at_infinities(dtype, device):
    """ReGLU's and bilinear's second-order kernel equals autograd's double backward of relu(g) * u
    and g * u, value for value, over every combination of (grad_grad_gate, grad_grad_up, dy, g, u)
    drawn from 0, -0, finite, near-maximum and infinite values: f'' = 0 gives 0 however large a
    factor is (gg * u * 0 gave NaN for an infinite u, or one near float32's maximum; f'(g) = 0
    times an infinite dy or ggu did too), and NaN only where autograd's products give it."""
    big = torch.finfo(dtype).max / 2
    vals = torch.tensor([-math.inf, -big, -2.0, -0.0, 0.0, 0.5, big, math.inf], dtype=dtype, device=device)
    grid = torch.cartesian_prod(*[vals] * 5).unbind(-1)  # 8^5 combinations
    for act, own in (("relu", F.relu), ("identity", lambda t: t)):
        got = ops.act_and_mul_double_backward(*grid, act, 1.0)
        ggg, ggu, dy, g, u = (t.clone().requires_grad_(True) for t in grid)
        dg, du = torch.autograd.grad(own(g) * u, (g, u), dy, create_graph=True)
        want = torch.autograd.grad((dg, du), (dy, g, u), (ggg.detach(), ggu.detach()), allow_unused=True,
                                   materialize_grads=True)
        for name, a, b in zip(("d_dy", "d_g", "d_u"), got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{act} {name}: {m}")
        nan = torch.tensor(math.nan, dtype=dtype, device=device)
        one = torch.ones((), dtype=dtype, device=device)
        for k in range(5):  # NaN in, NaN out: d_g from each operand
            args = [one] * 5
            args[k] = nan
            assert ops.act_and_mul_double_backward(*[a.reshape(1) for a in args], act, 1.0)[1].isnan().all() or (
                act == "identity" and k == 3), (act, k)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_smooth_gates_second_order_round_each_product(dtype, device):
    """The second-order kernel of every smooth gate sums products each rounded on its own, as the
    CPU build (-ffp-contract=off) and separate ATen ops do: d_dy = (ggg u) f'(g) + ggu f(g). nvcc
    fuses a * b + c into one FMA by default, which keeps one product unrounded: where (ggg u) f'
    is +inf and ggu f(g) overflows to -inf, the sum is NaN, and the FMA gave +inf on the GPU.
    The gate takes values where f and f' are ordinary numbers far from 0 (f(4) is near 4, 0.98
    for GLU), inside the range where the CPU computes in float (past its tail, |g| > 9.6 to 80,
    it computes the lane in double, where such a product does not overflow); the others 0,
    +-0.5, +-max/2 and +-inf, so that each product, and d_dy, overflows by a factor 1.9 or more or
    stays below 0.75 max: the pattern of NaN, +inf and -inf is the formulas' whatever the last bits
    of f and f'. d_u = (ggg dy) f'(g) is checked alike; d_g, whose f'' can be tiny, is left to the
    accuracy tests (an FMA cannot overflow there: |f'| < 1.2 and |f''| < 0.5)."""
    big = torch.finfo(dtype).max / 2
    vals = torch.tensor([-math.inf, -big, -0.5, 0.0, 0.5, big, math.inf], dtype=dtype)
    gates = torch.tensor([-0.5, 0.25, 1.0, 4.0], dtype=dtype)
    ggg, ggu, dy, u, g = torch.cartesian_prod(vals, vals, vals, vals, gates).unbind(-1)
    op = torch.float64 if dtype == torch.float64 else torch.float32  # the kernels' op-math
    GGG, GGU, DY, U = (t.to(op) for t in (ggg, ggu, dy, u))
    for act in ("sigmoid", "gelu", "gelu_tanh", "silu", "swish"):
        f, d1 = (fn(g).to(op) for fn in GATES[act][:2])
        want = {"d_dy": (GGG * U) * d1 + GGU * f, "d_u": (GGG * DY) * d1}
        d_dy, _, d_u = ops.act_and_mul_double_backward(*(t.to(device) for t in (ggg, ggu, dy, g, u)), act,
                                                      _beta(act))
        for name, a in (("d_dy", d_dy), ("d_u", d_u)):
            a, b = a.cpu(), want[name].to(dtype)
            for kind, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
                bad = test(a) != test(b)
                assert not bad.any(), (
                    f"{act} {name}: {int(bad.sum())} of {a.numel()} differ in {kind}; first: "
                    + ", ".join(f"{k}={t[bad][0].item()!r}" for k, t in zip(("ggg", "ggu", "dy", "g", "u"),
                                                                            (ggg, ggu, dy, g, u)))
                    + f" gave {a[bad][0].item()!r}, the formulas {b[bad][0].item()!r}")


@pytest.mark.skipif(len(DEVICES) < 2, reason="needs a visible CUDA GPU")
def test_cuda_graph_replay_every_activation():
    """Capture of the allocating ops and their backward ops, every activation; replay on new
    inputs gives what eager calls give."""
    h = torch.randn(8, 2 * 96, device="cuda")
    g, u, dy = (torch.randn(8, 96, device="cuda") for _ in range(3))
    fns = []
    for act in GATES:
        b = _beta(act)
        fns += [lambda a=act, b=b: ffn_ext.act_and_mul_packed(h, a, b),
                lambda a=act, b=b: ffn_ext.act_and_mul(g, u, a, b),
                lambda a=act, b=b: ops.act_and_mul_packed_backward(dy, h, a, b),
                lambda a=act, b=b: ops.act_and_mul_backward(dy, g, u, a, b)[0]]
    assert_cuda_graph_replays(fns, (h, g, u, dy))


@pytest.mark.skipif(len(DEVICES) < 2, reason="needs a visible CUDA GPU")
def test_cuda_graph_replay():
    h = torch.randn(8, 2 * 64, device="cuda")
    out = torch.empty(8, 64, device="cuda")
    ffn_ext.silu_and_mul(h, out=out)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ffn_ext.silu_and_mul(h, out=out)
    h.copy_(torch.randn_like(h))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, ffn_ext.silu_and_mul(h))
