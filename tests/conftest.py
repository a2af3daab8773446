"""Shared helpers of the test suite: devices, layouts, and the two accuracy rules.

Accuracy rules (../shared/REFERENCE.md, "How to test numerics"):
* float32 / float64: the kernel must equal the float64 reference up to rtol times the function's
  own sensitivity scale |f(x)| + |x f'(x)| (f' taken numerically from the reference). That is a
  relative error of rtol where the function is well conditioned, and it admits the unavoidable
  amplification of one rounding of an intermediate (x / sqrt 2, x^3) where it is not (GELU's
  tail, where |x f'/f| ~ x^2, and the zeros of f' and f'').
* float16 / bfloat16: the error against the float64 reference must be at most 2x the error of
  PyTorch's own computation in that dtype, plus one ulp of the dtype, element by element.
"""

import getpass
import math
import os
import tempfile

import pytest
import torch

import ffn_ext  # noqa: F401  (loads the ops)
from ffn_ext.reference import ulp  # noqa: F401  (the tests import it from here)

# PyTorch's inductor caches a compiled graph's generated C++ without ATEN_CPU_CAPABILITY in the
# key, and compiles it again with the flags of the capability in force: code generated for AVX-512
# (16-float vectors) built for AVX2 steps past half the elements, code generated for AVX2 built for
# AVX-512 stores 16 floats after loading 8 and corrupts the heap (torch 2.14.1: a pure-PyTorch
# `gelu(g, "tanh") * u + silu(g)` compiled natively, then under ATEN_CPU_CAPABILITY=avx2 with the
# same cache, is off by 3.98). A run that forces a capability keeps its own cache directory, so
# that test_compile_fullgraph's inductor case checks ffn_ext under that loop and not the cache.
_CAPABILITY = os.environ.get("ATEN_CPU_CAPABILITY", "")
if _CAPABILITY and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_{_CAPABILITY.lower()}")

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
LOWP = (torch.float16, torch.bfloat16)
RTOL = {torch.float32: 1e-6, torch.float64: 1e-14}


def own_swish(x, beta):
    """The yardstick for Swish-beta in fp16/bf16, which PyTorch lacks: computed as PyTorch computes
    its own activations of half types (F.silu, F.gelu), in float and rounded once. Not the product
    of rounded parts x * sigmoid(beta * x) in the low dtype: that rounds beta x first, REFERENCE.md's
    first trap, and the rule 2 x its error + 1 ulp then let a kernel that makes the same rounding
    pass (up to 19 ulps on test_swish_tensor_beta's inputs; found by a review, 2026-11-29)."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    b = beta.to(xf.dtype) if isinstance(beta, torch.Tensor) else beta
    return (xf * torch.sigmoid(b * xf)).to(x.dtype)


def requires_cuda(fn):
    """Skipped without a visible GPU, and marked `cuda`: tools/gpu_check.sh selects the GPU's cases
    with -k "cuda or build", which matches test names and marker names, so a CUDA-only test whose
    name lacks "cuda" (test_current_stream_is_used) would otherwise never run there."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="needs a visible CUDA GPU")(fn))


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


def sensitivity(ref_fn, x64):
    """|f(x)| + |x f'(x)|, with f' a central difference of the float64 reference."""
    h = 1e-7
    f = ref_fn(x64)
    fp = ref_fn(x64 * (1 + h))
    fm = ref_fn(x64 * (1 - h))
    xfp = ((fp - fm) / (2 * h)).abs()
    return f.abs() + torch.nan_to_num(xfp, nan=0.0, posinf=0.0)


def check_special(out, ref):
    """Non-finite references must be matched exactly; returns the mask of finite ones."""
    out64 = out.double().cpu()
    ref = ref.cpu()
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(out64), nan), f"NaN pattern differs: out {out64[nan != torch.isnan(out64)]}"
    inf = torch.isinf(ref)
    assert torch.equal(out64[inf], ref[inf]), f"infinite values differ: {out64[inf]} vs {ref[inf]}"
    return ~(nan | inf)


def assert_accurate(out, ref_fn, x, torch_own=None, extra_tol=None, floor=None):
    """Check `out` (any dtype) against ref_fn (a float64 function of x, other operands bound).

    torch_own: PyTorch's own result in out's dtype (required for float16 / bfloat16).
    floor: the absolute part of the float32 / float64 bound (default: the dtype's smallest normal
    number, below which a result has fewer significant bits).
    """
    x64 = x.detach().double().cpu()
    ref = ref_fn(x64)
    fin = check_special(out, ref)
    out64 = out.detach().double().cpu()
    err = (out64 - ref).abs()
    if out.dtype in LOWP:
        assert torch_own is not None
        own_err = (torch_own.detach().double().cpu() - ref).abs()
        own_err = torch.nan_to_num(own_err, nan=0.0, posinf=0.0)  # where PyTorch fails, allow 1 ulp
        bound = 2 * own_err + ulp(ref, out.dtype)
    else:
        if floor is None:
            floor = torch.finfo(out.dtype).smallest_normal
        bound = RTOL[out.dtype] * sensitivity(ref_fn, x64) + floor
    if extra_tol is not None:
        bound = bound + extra_tol
    bad = fin & ~(err <= bound)
    if bad.any():
        i = bad.nonzero()[0].tolist()
        raise AssertionError(
            f"{int(bad.sum())} of {bad.numel()} elements out of tolerance ({out.dtype}); first at "
            f"{i}: x={x64[tuple(i)].item()!r} out={out64[tuple(i)].item()!r} ref={ref[tuple(i)].item()!r} "
            f"err={err[tuple(i)].item():.3e} bound={bound[tuple(i)].item():.3e}"
        )


def make_layout(shape, layout, dtype, device, generator_fn=torch.randn, scale=None):
    """A tensor of `shape` (logical) in one of several memory layouts; its values scale times
    generator_fn's (scaled before the view is taken: `3 * make_layout(...)` would be a new,
    contiguous tensor)."""
    if scale is not None:
        return make_layout(shape, layout, dtype, device, lambda *a, **kw: scale * generator_fn(*a, **kw))
    if layout == "contiguous":
        return generator_fn(shape, dtype=dtype, device=device)
    if layout == "transposed":  # dense, permuted strides
        t = generator_fn(tuple(reversed(shape)), dtype=dtype, device=device)
        return t.permute(*reversed(range(len(shape))))
    if layout == "sliced":  # every other element of the last dim: not dense
        big = generator_fn((*shape[:-1], 2 * shape[-1]), dtype=dtype, device=device)
        return big[..., ::2]
    if layout == "rows":  # the first n of each row of a wider buffer: unit stride, row stride > n
        big = generator_fn((*shape[:-1], shape[-1] + 3), dtype=dtype, device=device)
        return big[..., 1 : shape[-1] + 1]
    if layout == "offset":  # dense but starting one element in: not 16-byte aligned
        n = math.prod(shape)
        return generator_fn(n + 1, dtype=dtype, device=device)[1:].view(shape)
    raise ValueError(layout)


LAYOUTS = ["contiguous", "transposed", "sliced", "offset", "rows"]


def assert_layout(t, layout):
    """t has the memory layout make_layout names (so that a test reaches the loop it means to)."""
    dense = t.is_contiguous() and t.storage_offset() == 0
    if t.numel() <= 1:
        return
    ok = {"contiguous": dense, "transposed": not t.is_contiguous() and t.dim() > 1 or t.dim() == 1 and dense,
          "sliced": not t.is_contiguous(), "offset": t.is_contiguous() and t.storage_offset() == 1,
          "rows": t.storage_offset() == 1 and (t.dim() == 1 or not t.is_contiguous())}[layout]
    assert ok, (layout, t.shape, t.stride(), t.storage_offset())


def assert_cuda_graph_replays(fns, inputs):
    """Captures [f() for f in fns] in a CUDA graph (after a warm-up on a side stream, as capture
    requires), writes new values into `inputs` (the captured buffers) and replays: each captured
    output must equal a fresh eager call's, bit for bit."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = [f() for f in fns]
    for t in inputs:
        t.copy_(torch.randn_like(t))
    graph.replay()
    torch.cuda.synchronize()
    for k, (f, o) in enumerate(zip(fns, outs)):
        assert torch.equal(o, f()), k


# Set by tools/gpu_check.sh around compute-sanitizer: tests do not profile under it (CUPTI, which
# torch.profiler uses, and the sanitizer both intercept kernel launches).
UNDER_SANITIZER = os.environ.get("FFN_EXT_UNDER_SANITIZER", "") == "1"


def profile_ops(fn, device="cpu"):
    """fn() under torch.profiler: (what it returned, or the exception it raised; the
    [(name, in_backward)] of every operator it ran, in order; the names of the GPU kernels it
    launched, with device "cuda"). Operators are the CPU events named "ns::op" (aten::, ffn_ext::,
    the autograd engine's), not the CUDA runtime's calls (cudaLaunchKernel). in_backward: the op ran
    inside the autograd engine's evaluation of a graph node (the backward), on whichever thread."""
    from torch.profiler import ProfilerActivity, profile

    from ffn_ext._memory import _quiet_stderr

    cuda = torch.device(device).type == "cuda"
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as p:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 (returned to the test, which checks it)
            out = e
        if cuda:
            torch.cuda.synchronize()

    def in_backward(e):
        while e is not None:
            if e.name.startswith("autograd::engine::evaluate_function"):
                return True
            e = e.cpu_parent
        return False

    events = p.events()
    ran = [(e.name, in_backward(e)) for e in events if e.device_type == torch.autograd.DeviceType.CPU and "::" in e.name]
    return out, ran, [e.name for e in events if e.device_type == torch.autograd.DeviceType.CUDA]


def free_memory_gb():
    """MemAvailable of /proc/meminfo in GiB (0 where it cannot be read): the 2^31-element tests
    skip themselves below what they need."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


@pytest.fixture(autouse=True)
def _large_tests_one_at_a_time(request):
    """The tests marked large run one at a time, also across pytest-xdist's worker processes
    (tools/gpu_check.sh runs the suite with -n 16): each checks the memory free before it allocates
    10-40 GB, and two starting together would both find it free, then run out of memory. An
    exclusive lock on a file in the temporary directory, held until the test's own tensors are gone
    (they are freed when it returns, and CUDA's cache is emptied; one that failed keeps them in its
    traceback, and the next large test then finds the memory taken and skips)."""
    if request.node.get_closest_marker("large") is None:
        yield
        return
    import fcntl  # POSIX; imported here, as only the large tests need it

    with open(os.path.join(tempfile.gettempdir(), f"ffn_ext_large_tests_{getpass.getuser()}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
        if HAS_CUDA:  # what the test freed, back to the device for the next one's check
            torch.cuda.empty_cache()
