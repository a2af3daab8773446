"""Random memory layouts, bit for bit.

The layout tests elsewhere (test_gating.py, test_maths.py) take named layouts one at a time:
contiguous, transposed, sliced, offset, padded rows, a transposed operand beside a contiguous one.
Here every operand gets a layout of its own drawn at random, and they combine: dimensions permuted
in memory, a step of 1 to 3 along each, rows padded, a base pointer 1 or 3 elements past an
aligned one, a dimension broadcast (stride 0) on inputs, over shapes with sizes 0 and 1, partial
32 x 32 tiles and rows long enough for the vectorised row kernel. On CUDA each goes to whichever
of the three kernels (row, tile, strided: csrc/cuda/engine.cuh) its layout asks for, with
combinations nobody wrote down; on the CPU to the dense, row and tiled (strided_runs) paths.

The activations are ReLU and identity (ReGLU and the bilinear form), for which every output is
one product of two stored values, or a selection of one, rounded once: dy * up * [gate > 0] and
dy * relu(gate) are exact in float64 for inputs of 24 significant bits or fewer, so the float64
formula rounded to the dtype is the correctly rounded result, and it is the only result any kernel
can return (float64 inputs: the kernel's own float64 product is that rounding). So each output is
compared with the float64 reference bit for bit (torch.equal: -0.0 equals 0.0), whatever path
computed it; an index that is off anywhere shows as a wrong value, not as a rounding. (The other
activations go through the same layout code with another functor; their accuracy is tested on the
named layouts.) Each case is a seed, so a failure names its layout and reproduces alone.

On the CPU the same cases also run through the CUDA engine emulated on the host
(FFN_EXT_EMULATE_CUDA=1, csrc/cuda/host_emulation.cpp): its choice of kernel for each layout, the
kernels' arguments and geometry, and the kernel bodies, block by block and thread by thread. A
machine without a GPU so checks the CUDA path's indexing over these layouts, and that they reach
each of its three kernels.
"""

import math
import random

import pytest
import torch

import ffn_ext
from conftest import FLOAT_DTYPES

SIZES = [0, 1, 1, 2, 3, 5, 8, 9, 16, 17, 33, 40]
LONG = [128, 200, 257, 1000, 2050]  # last dims for the row kernel (>= 16 packs of 8 bf16)
MAX_ELEMENTS = 1 << 16


def random_layout(shape, dtype, device, rng, broadcast=True, scale=3.0):
    """A view of `shape` whose memory layout is drawn from rng: dimension order, step and padding
    per dimension, a misaligned start, sometimes one dimension broadcast (stride 0)."""
    nd = len(shape)
    order = list(range(nd))
    rng.shuffle(order)  # memory dimension j holds logical dimension order[j]
    step = [rng.choice([1, 1, 1, 2, 3]) for _ in range(nd)]
    pad = [rng.choice([0, 0, 1, 5]) for _ in range(nd)]
    base_shape = [shape[p] * step[p] + pad[p] for p in order]
    start = rng.choice([0, 0, 1, 3])
    n = math.prod(base_shape)
    gen = torch.Generator().manual_seed(rng.getrandbits(31))
    flat = (scale * torch.randn(n + start, dtype=torch.float64, generator=gen)).to(dtype).to(device)
    base = flat[start:].view(base_shape)
    t = base[tuple(slice(0, shape[p] * step[p], step[p]) for p in order)]
    t = t.permute(*[order.index(i) for i in range(nd)])
    if broadcast and nd and rng.random() < 0.15:
        k = rng.randrange(nd)
        if shape[k] > 0:
            t = t.narrow(k, 0, 1).expand(*shape)
    assert tuple(t.shape) == tuple(shape)
    return t


def random_shape(rng, last=None):
    nd = rng.choice([1, 2, 2, 3, 3, 4])
    shape = [rng.choice(SIZES) for _ in range(nd)]
    if last is not None:
        shape[-1] = last
    elif rng.random() < 0.3:
        shape[-1] = rng.choice(LONG)
    # keep each case small: shrink the leading dimensions first
    k = 0
    while math.prod(shape) * (2 if last is not None else 1) > MAX_ELEMENTS and k < nd - 1:
        shape[k] = min(shape[k], 2)
        k += 1
    return shape


def act64(name, g):
    return torch.where(g > 0, g, torch.zeros_like(g)) if name == "relu" else g


def d_act64(name, g):
    return (g > 0).double() if name == "relu" else torch.ones_like(g)


def assert_bits(out, ref64, what):
    """out equals the float64 reference rounded to out's dtype, element for element."""
    want = ref64.to(out.dtype)
    got = out.detach().cpu()
    assert got.shape == want.shape, (what, got.shape, want.shape)
    if not torch.equal(got, want):
        bad = (got != want).nonzero()[0].tolist()
        raise AssertionError(f"{what}: {int((got != want).sum())} of {got.numel()} elements differ; first at {bad}: "
                             f"got {got[tuple(bad)].item()!r}, want {want[tuple(bad)].item()!r}")


def describe(**ts):
    return "; ".join(f"{k} {tuple(t.shape)} strides {t.stride()} offset {t.storage_offset()}" for k, t in ts.items())


def two_tensors(rng, dtype, device):
    act = rng.choice(["relu", "identity"])
    shape = random_shape(rng)
    g = random_layout(shape, dtype, device, rng)
    u = random_layout(shape, dtype, device, rng, scale=1.0)
    dy = random_layout(shape, dtype, device, rng, scale=1.0)
    check_act_and_mul(act, g, u, dy, f"act_and_mul {act} {dtype}: " + describe(gate=g, up=u, dy=dy))


def check_act_and_mul(act, g, u, dy, ctx):
    """act_and_mul(g, u, act) and its backward with dy, bit for bit against float64."""
    g64, u64, dy64 = (t.detach().cpu().double() for t in (g, u, dy))
    ga, ua = g.detach().requires_grad_(), u.detach().requires_grad_()
    y = ffn_ext.act_and_mul(ga, ua, act)
    assert_bits(y, act64(act, g64) * u64, ctx + " -> y")
    if y.numel():
        dg, du = torch.autograd.grad(y, (ga, ua), dy.to(y.device))
        assert_bits(dg, dy64 * u64 * d_act64(act, g64), ctx + " -> dgate")
        assert_bits(du, dy64 * act64(act, g64), ctx + " -> dup")


def packed(rng, dtype, device):
    act = rng.choice(["relu", "identity"])
    d = rng.choice([1, 2, 3, 5, 8, 9, 24, 33] + LONG)
    shape = random_shape(rng, last=2 * d)
    h = random_layout(shape, dtype, device, rng)
    dy = random_layout(shape[:-1] + [d], dtype, device, rng, scale=1.0)
    ctx = f"act_and_mul_packed {act} {dtype}: " + describe(h=h, dy=dy)
    h64, dy64 = h.detach().cpu().double(), dy.detach().cpu().double()
    g64, u64 = h64[..., :d], h64[..., d:]
    want = act64(act, g64) * u64
    ha = h.detach().requires_grad_()
    y = ffn_ext.act_and_mul_packed(ha, act)
    assert_bits(y, want, ctx + " -> y")
    if y.numel():
        (dh,) = torch.autograd.grad(y, ha, dy)
        assert_bits(dh, torch.cat([dy64 * u64 * d_act64(act, g64), dy64 * act64(act, g64)], -1), ctx + " -> dh")
    # out= into a random view: its elements get the result, the rest of its buffer is untouched.
    out = random_layout(shape[:-1] + [d], dtype, device, rng, broadcast=False)
    buffer = out._base if out._base is not None else out
    expected = buffer.detach().cpu().clone()
    expected.as_strided(out.shape, out.stride(), out.storage_offset()).copy_(want)
    with torch.no_grad():
        r = ffn_ext.act_and_mul_packed(h, act, out=out)
    assert r is out
    assert_bits(buffer, expected.double(), ctx + "; out " + describe(out=out) + " -> out='s buffer")


def unary(rng, dtype, device):
    shape = random_shape(rng)
    x = random_layout(shape, dtype, device, rng)
    dy = random_layout(shape, dtype, device, rng, scale=1.0)
    ctx = f"relu {dtype}: " + describe(x=x, dy=dy)
    x64, dy64 = x.detach().cpu().double(), dy.detach().cpu().double()
    xa = x.detach().requires_grad_()
    y = ffn_ext.relu(xa)
    assert_bits(y, act64("relu", x64), ctx + " -> y")
    if y.numel():
        (dx,) = torch.autograd.grad(y, xa, dy)
        assert_bits(dx, dy64 * d_act64("relu", x64), ctx + " -> dx")


CASES = 64


def run_case(seed, dtype, device):
    rng = random.Random(f"{seed}-{dtype}-{device}")
    torch.manual_seed(seed)
    for make in (two_tensors, packed, unary):
        make(rng, dtype, device)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(CASES))
def test_random_layouts_bit_for_bit(seed, dtype, device):
    run_case(seed, dtype, device)


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setenv("FFN_EXT_EMULATE_CUDA", "1")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(CASES))
def test_random_layouts_bit_for_bit_on_the_emulated_gpu_kernels(seed, dtype, emulated):
    run_case(seed, dtype, "cpu")


def test_random_layouts_reach_every_emulated_gpu_kernel(emulated):
    """A quarter of the cases launch the emulated row, tile and strided kernels, each of them."""
    before = torch.ops.ffn_ext._emulated_launches()
    for seed in range(CASES // 4):
        for dtype in FLOAT_DTYPES:
            run_case(seed, dtype, "cpu")
    after = torch.ops.ffn_ext._emulated_launches()
    launched = dict(zip(("row", "tile", "strided"), (a - b for a, b in zip(after, before))))
    assert all(n > 0 for n in launched.values()), launched


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_emulated_tile_blocks_that_loop_over_tiles(dtype, emulated):
    """A transposed gate beside a contiguous up, in more 32 x 32 tiles than the emulated GPU holds
    blocks of the tile kernel at once (132 multiprocessors x 2: 264): each block computes two tiles,
    and between one tile's stores and the next tile's loads the kernel has no barrier, which the
    emulation plays as a GPU may (each thread stores, then loads the next tile, before the next
    thread stores). The random layouts above are too small for a block to take a second tile."""
    gen = torch.Generator().manual_seed(7)
    shape = [100, 40, 40]  # 2 x 2 tiles of each of 100 matrices: 400 tiles
    g = (3 * torch.randn(100, 40, 40, dtype=torch.float64, generator=gen)).to(dtype).transpose(-1, -2)
    u, dy = (torch.randn(shape, dtype=torch.float64, generator=gen).to(dtype) for _ in range(2))
    before = torch.ops.ffn_ext._emulated_launches()
    for act in ("relu", "identity"):
        check_act_and_mul(act, g, u, dy, f"{act} {dtype}")
    after = torch.ops.ffn_ext._emulated_launches()
    assert after[1] - before[1] == 4, (before, after)  # every launch took the tile kernel


def far_tile_gate(dtype, device):
    """A gate whose two strides each fit a tile's 32-bit offsets but whose farthest element in a
    32 x 32 tile lies past 2^31 bytes (31 times their sum): an as_strided view of itself with two
    60 MB strides, beside an up that runs along its first dimension (so that the tile kernel is
    asked). Such strides overlap: in a view that does not overlap itself one stride is at least the
    other times its extent, and the farthest element stays below 2^31 bytes. The storage is
    allocated (2.3 GB) and only the viewed elements are written."""
    per = 60_000_000 // torch.empty((), dtype=dtype).element_size()  # 60 MB in elements
    gen = torch.Generator().manual_seed(11)
    shape, strides = (8, 32), (per + 1, per)
    n = (shape[0] - 1) * strides[0] + (shape[1] - 1) * strides[1] + 1
    g = torch.empty(n, dtype=dtype, device=device).as_strided(shape, strides)
    g.copy_((3 * torch.randn(shape, dtype=torch.float64, generator=gen)).to(dtype))
    u = torch.randn(shape[1], 2 * shape[0], dtype=torch.float64, generator=gen).to(dtype)[:, :shape[0]]
    return g, u.t().to(device)  # up: unit stride along dim 0, where the gate has none


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("emulate", [False, True], ids=["native", "emulated"])
def test_tile_offsets_past_2_31_bytes(dtype, emulate, device, monkeypatch):
    """Such a gate goes to the strided kernel on CUDA, not to the tile kernel, whose offsets within
    a tile are 32-bit. Until 2026-11-29 (found by a review of the CUDA code) tile_plan bounded each
    stride alone, took this gate, and the emulation read 3.7 GB past the tile's origin (a
    segmentation fault; on a GPU an illegal address, or another tensor's memory)."""
    if emulate:
        if device != "cpu":
            pytest.skip("the emulation runs on the CPU")
        monkeypatch.setenv("FFN_EXT_EMULATE_CUDA", "1")
    g, u = far_tile_gate(dtype, device)
    dy = torch.randn(g.shape, dtype=torch.float64).to(dtype)
    ctx = f"{dtype}: " + describe(gate=g, up=u)
    before = torch.ops.ffn_ext._emulated_launches()
    for act in ("relu", "identity"):
        check_act_and_mul(act, g, u, dy, f"{act} {ctx}")
    after = torch.ops.ffn_ext._emulated_launches()
    if emulate:  # the forward on the strided kernel; no launch took the tile kernel
        assert after[1] == before[1] and after[2] > before[2], (ctx, before, after)
