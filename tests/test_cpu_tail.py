"""The CPU loop's underflow tail (csrc/cpu/activation_cpu_impl.h, "the underflow tail"): lanes whose
activation argument lies where an exp of the maths leaves float's normal range (|x| > 80 for SiLU,
80 / |beta| for Swish, 12.5 for exact GELU, 9.6 for tanh-GELU) are computed in double precision
and rounded once, so that no float operation meets a subnormal number (x86 runs those in
microcode, ~250 cycles each: calls 5-27x slower). These tests hold what that must not change
and what it improves: the other lanes' bits, a lane's independence of its neighbours, the
caller's floating-point mode, and the accuracy of the tail lanes themselves."""

import platform

import pytest
import torch

import ffn_ext
import ffn_ext.reference as R
from conftest import assert_accurate, ulp

ops = torch.ops.ffn_ext
F32, BF16 = torch.float32, torch.bfloat16


def _tail(limit, n=997):
    """float64 points across the tail on both sides, from just past the limit to 4x it (where
    float results are subnormal or 0 on the negative side), and the sides' ends at +-inf."""
    z = torch.linspace(1.0001 * limit, 4 * limit, n, dtype=torch.float64)
    return torch.cat([-z, z, torch.tensor([float("inf"), -float("inf")], dtype=torch.float64)])


def _nearly_correctly_rounded(out, ref, dtype, extra=None):
    """out within half a spacing of dtype at ref (subnormal spacing included), with a margin of
    1e-12 |ref| for the float64 reference's own rounding; `extra` widens it where the result went
    through float first (bf16: double -> float -> bf16, one more float rounding)."""
    out64 = out.double()
    fin = torch.isfinite(ref)
    assert torch.equal(out64[~fin], ref[~fin]), (out64[~fin], ref[~fin])
    err = (out64 - ref).abs()[fin]
    bound = 0.5 * ulp(ref, dtype)[fin] + 1e-12 * ref.abs()[fin]
    if extra is not None:
        bound = bound + extra[fin]
    bad = ~(err <= bound)
    assert not bad.any(), (int(bad.sum()), out64[fin][bad][:4], ref[fin][bad][:4])


# (name, |x| limit, op(x, g, gg) -> tensor, float64 reference(x, g, gg)), the sigmoid family: its
# double maths is exp and division, 1 ulp of double each, so every result rounds correctly.
SIGMOID_FAMILY = [
    ("silu", 80.0, lambda x, g, gg: ops.silu(x), lambda x, g, gg: R.silu(x)),
    ("silu_backward", 80.0, lambda x, g, gg: ops.silu_backward(g, x), lambda x, g, gg: g * R.silu_d1(x)),
    ("silu_double_backward", 80.0, lambda x, g, gg: ops.silu_double_backward(gg, g, x),
     lambda x, g, gg: gg * g * R.silu_d2(x)),
    ("swish_0.25", 320.0, lambda x, g, gg: ops.swish(x, 0.25), lambda x, g, gg: R.swish(x, 0.25)),
    ("swish_backward_3", 80.0 / 3, lambda x, g, gg: ops.swish_backward(g, x, 3.0),
     lambda x, g, gg: g * R.swish_dx(x, 3.0)),
    ("gelu_tanh", 9.6, lambda x, g, gg: ops.gelu(x, "tanh"), lambda x, g, gg: R.gelu_tanh(x)),
    ("gelu_tanh_backward", 9.6, lambda x, g, gg: ops.gelu_backward(g, x, "tanh"),
     lambda x, g, gg: g * R.gelu_tanh_d1(x)),
    ("silu_and_mul", 80.0, lambda x, g, gg: ops.act_and_mul(x, g, "silu", 1.0), lambda x, g, gg: R.silu(x) * g),
    ("silu_and_mul_dgate", 80.0, lambda x, g, gg: ops.act_and_mul_backward(gg, x, g, "silu", 1.0)[0],
     lambda x, g, gg: gg * g * R.silu_d1(x)),
    ("silu_and_mul_dup", 80.0, lambda x, g, gg: ops.act_and_mul_backward(gg, x, g, "silu", 1.0)[1],
     lambda x, g, gg: gg * R.silu(x)),
    ("glu_dgate", 80.0, lambda x, g, gg: ops.act_and_mul_backward(gg, x, g, "sigmoid", 1.0)[0],
     lambda x, g, gg: gg * g * R.sigmoid(x) * R.sigmoid(-x)),
]


def _operands(limit, dtype):
    x = _tail(limit).to(dtype)
    gen = torch.Generator().manual_seed(3)
    g = (1 + torch.rand(x.numel(), generator=gen)).to(dtype)  # [1, 2): no result underflows for it
    gg = (1 + torch.rand(x.numel(), generator=gen)).to(dtype)
    return x, g, gg


@pytest.mark.parametrize("case", SIGMOID_FAMILY, ids=[c[0] for c in SIGMOID_FAMILY])
@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
def test_tail_lanes_round_correctly(case, dtype):
    """Every tail lane of the sigmoid family, subnormal results included, is its float64 value
    rounded once (the float maths had rounded subnormal intermediates several times: SiLU's
    x sigma(x) at x = -95 came from a sigma with 14 significant bits)."""
    _, limit, op, ref = case
    x, g, gg = _operands(limit, dtype)
    out = op(x, g, gg)
    r = ref(x.double(), g.double(), gg.double())
    _nearly_correctly_rounded(out, r, dtype, extra=ulp(r, F32) if dtype == BF16 else None)


@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
def test_exact_gelu_tail_lanes(dtype):
    """Exact GELU's tail lanes take the float erfc fit in double (fractional error 1.2e-7, as the
    float maths has elsewhere, without its float rounding of x / sqrt 2 that exp(-x^2 / 2) turns
    into up to 1e-5 there): within 2 float ulp of the float64 values, and the gating forms too."""
    x, g, gg = _operands(12.5, dtype)
    x64, g64, gg64 = x.double(), g.double(), gg.double()
    dgate, dup = ops.act_and_mul_backward(gg, x, g, "gelu", 1.0)
    cases = [(ops.gelu(x, "none"), R.gelu(x64)), (ops.gelu_backward(g, x, "none"), g64 * R.gelu_d1(x64)),
             (ops.gelu_double_backward(gg, g, x, "none"), gg64 * g64 * R.gelu_d2(x64)),
             (ops.act_and_mul(x, g, "gelu", 1.0), R.gelu(x64) * g64),
             (dgate, gg64 * g64 * R.gelu_d1(x64)), (dup, gg64 * R.gelu(x64))]
    for out, ref in cases:
        _nearly_correctly_rounded(out, ref, dtype, extra=2 * ulp(ref, F32))


def test_tensor_beta_tail_lanes():
    """Swish with a tensor beta (beta x is the argument: |beta x| > 80), value and both gradients."""
    x = _tail(80.0).float()
    gen = torch.Generator().manual_seed(5)
    beta = (0.5 + torch.rand(x.numel(), generator=gen)).float()
    x = (x.double() / beta.double()).float()  # |beta x| across the tail
    one = torch.ones_like(x)
    dx, dbeta = ops.swish_backward.Tensor(one, x, beta, True)
    b = beta.double()
    for out, fn in ((ffn_ext.swish(x, beta), lambda t: R.swish(t, b)), (dx, lambda t: R.swish_dx(t, b)),
                    (dbeta, lambda t: R.swish_dbeta(t, b))):
        assert_accurate(out, fn, x, floor=2.0**-149)
        _nearly_correctly_rounded(out, fn(x.double()), F32, extra=ulp(fn(x.double()), F32))


_MIXED = {
    "gelu": lambda x, g: ops.gelu(x, "none"),
    "gelu_backward": lambda x, g: ops.gelu_backward(g, x, "none"),
    "gelu_tanh": lambda x, g: ops.gelu(x, "tanh"),
    "silu": lambda x, g: ops.silu(x),
    "silu_double_backward": lambda x, g: ops.silu_double_backward(g, g, x),
    "swish_0.3": lambda x, g: ops.swish(x, 0.3),
    "swish_tensor": lambda x, g: ops.swish(x, torch.full_like(x, 0.7, dtype=torch.float32)),
    "swish_scalar_tensor": lambda x, g: ops.swish(x, torch.tensor(0.7)),  # x scanned: 80 / 0.7
    "swish_scalar_tensor_backward": lambda x, g: ops.swish_backward.Tensor(g, x, torch.tensor(-1.3), False)[0],
    "geglu": lambda x, g: ops.act_and_mul(x, g, "gelu", 1.0),
    "swiglu_backward": lambda x, g: torch.stack(ops.act_and_mul_backward(g, x, g, "silu", 1.0)),
}


@pytest.mark.parametrize("name", list(_MIXED))
@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
def test_results_do_not_depend_on_tail_neighbours(name, dtype):
    """A lane's bits (a NaN's too) are the same whether its vector holds tail lanes or not and
    whether it is a tail lane or not: ordinary values interleaved with tail values (and NaNs, which
    take the tail's maths) give, lane by lane, what each group gives alone."""
    fn = _MIXED[name]
    gen = torch.Generator().manual_seed(11)
    n = 3000
    normal = (4 * torch.randn(n, generator=gen)).to(dtype)
    far = (200 * (1 + torch.rand(n, generator=gen)) * torch.where(torch.rand(n, generator=gen) < 0.5, -1, 1))
    far[::97] = float("nan")
    far = far.to(dtype)
    g = (1 + torch.rand(2 * n, generator=gen)).to(dtype)
    pick = torch.rand(2 * n, generator=gen) < 0.1  # a tenth of the lanes far: most vectors mixed
    idx_far = pick.nonzero().view(-1)[:n]
    idx_normal = (~pick).nonzero().view(-1)[:n]
    mixed = torch.empty(2 * n, dtype=dtype)
    mixed[idx_normal] = normal[: idx_normal.numel()]
    mixed[idx_far] = far[: idx_far.numel()]
    both = fn(mixed, g)
    alone_normal = fn(normal[: idx_normal.numel()].clone(), g[idx_normal].clone())
    alone_far = fn(far[: idx_far.numel()].clone(), g[idx_far].clone())
    for a, b in ((both[..., idx_normal].contiguous(), alone_normal), (both[..., idx_far].contiguous(), alone_far)):
        # NaN bits too: in bf16, only a vector's subnormal results take the portable rounding,
        # every other lane vcvtne2ps2bf16's (store_from_float; until 2026-11-27 the whole vector
        # took the portable rounding, whose NaN is 0xffff)
        bits = torch.int32 if dtype == F32 else torch.int16
        assert torch.equal(a.view(bits), b.view(bits))


def test_bf16_nan_results_do_not_depend_on_subnormal_neighbours():
    """A NaN result of non-NaN operands (GLU's gate gradient at gate = up = -inf: inf * 0) has the
    same bf16 bits whether or not a lane of its vector has a subnormal float result (gate = -100
    there): on processors with AVX512_BF16 only the subnormal lanes take the portable rounding;
    until 2026-11-27 the whole vector did, which made every NaN in it 0xffff where the instruction
    gives 0xffc0."""
    n, at = 64, 5
    dy = torch.full((n,), 0.98046875, dtype=BF16)
    g = torch.ones(n, dtype=BF16)
    u = torch.ones(n, dtype=BF16)
    g[at] = u[at] = -float("inf")
    alone = ops.act_and_mul_backward(dy, g, u, "sigmoid", 1.0)[0][at].view(torch.int16)
    for near in (at + 1, at + 20):  # the same float vector, the other half of the bf16 vector
        g2 = g.clone()
        g2[near] = -100.0
        got = ops.act_and_mul_backward(dy, g2, u, "sigmoid", 1.0)[0]
        assert got[near].item() == 0.0  # float result 3.6e-44, subnormal, rounds to a bf16 zero
        assert torch.isnan(got[at]) and got[at].view(torch.int16) == alone, (near, hex(got[at].view(torch.int16)))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the guard runs on x86 only")
def test_tail_guard_restores_the_floating_point_mode():
    """The double maths runs with MXCSR's flush-to-zero and denormals-are-zero bits set; after the
    call the caller's mode is back: subnormal arithmetic again (or, where the caller asked for
    flushing with torch.set_flush_denormal, flushing still), and every result in that mode."""
    x = torch.tensor([-95.0] * 64 + [-1.0] * 64)  # silu(-95) is a float subnormal
    tiny = torch.tensor([1e-39])  # a float subnormal
    y = ffn_ext.silu(x)
    assert (tiny * 3).item() != 0  # no flushing left on
    assert 0 < abs(y[0].item()) < torch.finfo(F32).smallest_normal
    assert torch.set_flush_denormal(True)
    try:
        y = ffn_ext.silu(x)
        assert (tiny * 3).item() == 0  # the caller's flushing kept
        assert y[0].item() == 0  # and the result flushed, as that mode asks
    finally:
        torch.set_flush_denormal(False)
    assert (tiny * 3).item() != 0


@pytest.mark.parametrize("name", ["gelu", "geglu", "silu", "swiglu_backward"])
@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
def test_nan_bits_do_not_depend_on_position(name, dtype):
    """A NaN argument among ordinary values only (a block whose scan finds nothing else) gives the
    bits it gives alone: NaN takes the tail's maths wherever it stands, so the block must not be
    judged free of tail lanes (vrangeps, which the scan first used, drops a NaN operand)."""
    fn = _MIXED[name]
    gen = torch.Generator().manual_seed(13)
    x = (3 * torch.randn(4096, generator=gen)).to(dtype)
    g = (1 + torch.rand(4096, generator=gen)).to(dtype)
    at = [5, 700, 2049, 4095]
    nan = torch.tensor([float("nan"), -float("nan")] * 2).to(dtype)
    x[at] = nan
    bits = torch.int32 if dtype == F32 else torch.int16
    both = fn(x, g)[..., at].contiguous().view(bits)
    alone = torch.stack([fn(x[i:i + 1].clone(), g[i:i + 1].clone()) for i in at], -1).view(bits)
    assert torch.equal(both, alone.view(both.shape)), (both, alone)
