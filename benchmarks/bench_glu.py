"""Gating y = act(gate) * up: ffn_ext vs PyTorch eager vs torch.compile (vs Liger-Kernel's
LigerSiLUMulFunction where importable), forward and forward+backward.

    python benchmarks/bench_glu.py --device cuda                 # the issue's shapes, bf16/fp16/fp32
    python benchmarks/bench_glu.py --device cpu --shapes 2048x4096 --dtypes fp32,bf16
    python benchmarks/bench_glu.py --device cuda --shapes 8192x14336 --dtypes bf16 --activations gelu,relu

For each shape (rows x d), dtype and activation (--activations: silu, the default, gelu, gelu_tanh,
sigmoid, relu, identity):
  fwd:  ffn_ext.silu_and_mul(h) on a packed h [rows, 2d] (gelu_and_mul, gelu_tanh_and_mul,
        act_and_mul_packed(h, activation) for the others); eager F.silu(h[:, :d]) * h[:, d:] (the
        activation's torch function); the same function under torch.compile; for SiLU, Liger's
        silu_mul(g, u) on the two halves, and the two-tensor forms on separate contiguous gate and
        up tensors: ffn_ext.act_and_mul(g, u) ("ffn_ext_two") and eager F.silu(g) * u
        ("eager_two"; vs_eager_two compares those two).
        Bytes: 3 rows d elements (read gate and up, write y).
  fwd+bwd: torch.autograd.grad of the output w.r.t. h (no gradient accumulation is timed).
        Bytes of the backward alone: 5 rows d elements (read dy, gate, up; write dgate, dup).
fwd+bwd rows also give the peak memory of one forward+backward ("peak_MB_*": allocated beyond
what was allocated before the call), for ffn_ext, eager, compile and Liger.
Shapes of at most 128 rows (decode) are also timed under CUDA-graph replay ("graph_us": the kernel
alone, back to back, without launch or Python cost), for ffn_ext (out=) and eager, and as calls
from Python ("call_us": wall time per call of back-to-back silu_and_mul(h) calls, host-bound at
these sizes: the Python call, the dispatcher and the launch), for ffn_ext and eager.
Bandwidth is reported as the fraction of a device-to-device copy of 3 rows d elements measured in
the same run ("of_copy"); ratios against eager / compile / Liger are time ratios (>1: ffn_ext
faster). Results: benchmarks/results/glu-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys
from types import SimpleNamespace

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import (  # noqa: E402
    DTYPES, add_common_args, call_time, graph_time, memory_column_names, memory_columns, print_row, save, setup, training_step)

SHAPES = "1x14336,8x14336,128x14336,4096x11008,8192x14336,16384x28672"

try:  # Liger-Kernel (Triton, CUDA only); optional
    from liger_kernel.ops.swiglu import LigerSiLUMulFunction  # type: ignore
except Exception:  # noqa: BLE001  (absent, or fails to import without a GPU)
    LigerSiLUMulFunction = None


def _packed(act):
    def fn(h):
        d = h.shape[-1] // 2
        return act(h[..., :d]) * h[..., d:]

    return fn


def _ours(name):
    return lambda h, out=None: ffn_ext.act_and_mul_packed(h, name, out=out)


def _gelu_tanh(g):
    return F.gelu(g, approximate="tanh")


# activation: (ffn_ext's call, taking out=; the activation eager applies to the gate; the op's name
# in the rows). Eager's packed form is _packed of that activation.
ACTIVATIONS = {
    "silu": (ffn_ext.silu_and_mul, F.silu, "silu_and_mul"),
    "gelu": (ffn_ext.gelu_and_mul, F.gelu, "gelu_and_mul"),
    "gelu_tanh": (ffn_ext.gelu_tanh_and_mul, _gelu_tanh, "gelu_tanh_and_mul"),
    "sigmoid": (_ours("sigmoid"), torch.sigmoid, "act_and_mul_packed:sigmoid"),
    "relu": (_ours("relu"), F.relu, "act_and_mul_packed:relu"),
    "identity": (_ours("identity"), lambda g: g, "act_and_mul_packed:identity"),
}


def cases(cfg):
    """(dtype name, rows, d, activation) of each measured case: SiLU at cfg.dtypes x cfg.shapes, and
    the other activations at cfg.more's (optional: activations, dtypes, shapes)."""
    out = [(dn, r, d, "silu") for dn in cfg.dtypes for r, d in cfg.shapes]
    more = getattr(cfg, "more", None)
    if more:
        out += [(dn, r, d, a) for a in more.activations for dn in more.dtypes for r, d in more.shapes]
    return out


def count(cfg):
    return len(cases(cfg)) * 2


def run(cfg, timer, progress=None):
    """cfg: device, dtypes (names), shapes ([(rows, d)]), compile (bool), optionally more (see
    cases). Returns the rows."""
    dev, cuda = cfg.device, cfg.device.type == "cuda"
    compiled = {}
    rows_out = []
    for dname, rows, d, act in cases(cfg):
        ours_fn, act_fn, op_name = ACTIVATIONS[act]
        eager_fn = _packed(act_fn)
        dtype = DTYPES[dname]
        es = torch.tensor([], dtype=dtype).element_size()
        need = rows * d * es * 12  # h, its grad, y, dy, copies
        if cuda and need > 0.8 * torch.cuda.mem_get_info()[0]:
            print(f"skip {act} {rows}x{d} {dname}: needs {need / 2**30:.1f} GiB", flush=True)
            if progress:
                progress(f"gating {act} {rows}x{d} {dname} skipped", 2)
            continue
        if cfg.compile and act not in compiled:
            compiled[act] = torch.compile(eager_fn, dynamic=False)
        h = torch.randn(rows, 2 * d, dtype=dtype, device=dev)
        dy = torch.randn(rows, d, dtype=dtype, device=dev)
        src = torch.randn(rows, 3 * d, dtype=dtype, device=dev)
        dst = torch.empty_like(src)
        t_copy = timer(lambda: dst.copy_(src))
        copy_bw = 2 * src.numel() * es / t_copy  # bytes read + written per second
        fwd_bytes = 3 * rows * d * es
        hr = h.detach().clone().requires_grad_(True)

        def fb(fn):
            return training_step(fn, (hr,), dy)

        cands = {
            "ffn_ext": (lambda: ours_fn(h), fb(ours_fn)),
            "eager": (lambda: eager_fn(h), fb(eager_fn)),
        }
        if act in compiled:
            cands["compile"] = (lambda: compiled[act](h), fb(compiled[act]))
        if act == "silu":
            g, u = h[:, :d].contiguous(), h[:, d:].contiguous()
            gr, ur = g.clone().requires_grad_(True), u.clone().requires_grad_(True)
            cands["ffn_ext_two"] = (lambda: ffn_ext.act_and_mul(g, u), training_step(ffn_ext.act_and_mul, (gr, ur), dy))
            cands["eager_two"] = (lambda: act_fn(g) * u, training_step(lambda a, b: act_fn(a) * b, (gr, ur), dy))
            if LigerSiLUMulFunction is not None and cuda:
                # Leaves of its own: Liger's backward stores the gradients into the saved inputs
                # (liger-kernel 0.8.5, ops/swiglu.py), which on gr, ur would have fed its gradients
                # to the two candidates above from its first warm-up call on.
                gl, ul = g.clone().requires_grad_(True), u.clone().requires_grad_(True)
                cands["liger"] = (
                    lambda: LigerSiLUMulFunction.apply(g, u),
                    training_step(LigerSiLUMulFunction.apply, (gl, ul), dy),
                )
        for direction in ("fwd", "fwd+bwd"):
            k = 0 if direction == "fwd" else 1
            times = timer.compare({name: c[k] for name, c in cands.items()})
            ours = times["ffn_ext"]
            nbytes = fwd_bytes if direction == "fwd" else fwd_bytes + 5 * rows * d * es
            row = {"family": "gating", "op": op_name, "dtype": dname, "rows": rows, "d": d,
                   "dir": direction, "ffn_ext_us": ours * 1e6, "GB/s": nbytes / ours / 1e9,
                   "of_copy": nbytes / ours / copy_bw}
            for name, t in times.items():
                if name != "ffn_ext":
                    row[f"{name}_us"] = t * 1e6
                if name not in ("ffn_ext", "ffn_ext_two", "eager_two"):
                    row[f"vs_{name}"] = t / ours
            if "eager_two" in times:
                row["vs_eager_two"] = times["eager_two"] / times["ffn_ext_two"]
            if direction == "fwd+bwd":
                for name, c in cands.items():
                    row.update(memory_columns(name, c[1], dev))
            if cuda and direction == "fwd" and rows <= 128:
                out = torch.empty(rows, d, dtype=dtype, device=dev)
                gv, uv = h[:, :d], h[:, d:]
                row["graph_us"] = graph_time(lambda: ours_fn(h, out=out)) * 1e6
                row["eager_graph_us"] = graph_time(lambda: torch.mul(act_fn(gv), uv, out=out)) * 1e6
                row["call_us"] = call_time(lambda: ours_fn(h)) * 1e6
                row["eager_call_us"] = call_time(lambda: act_fn(gv) * uv) * 1e6
            rows_out.append(row)
            print_row(row)
            if progress:
                progress(f"gating {act} {rows}x{d} {dname} {direction}")
        del h, dy, src, dst, hr, cands
        if cuda:
            torch.cuda.empty_cache()
    return rows_out


COLUMNS = ["dtype", "rows", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "liger_us", "GB/s",
           "of_copy", "vs_eager", "vs_compile", "vs_liger", "ffn_ext_two_us", "eager_two_us", "vs_eager_two",
           "graph_us", "eager_graph_us", "call_us", "eager_call_us", *memory_column_names()]


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16,fp16,fp32")
    ap.add_argument("--shapes", default=SHAPES, help="comma-separated rows x d")
    ap.add_argument("--activations", default="silu",
                    help=f"comma-separated, of {', '.join(ACTIVATIONS)}: each at every shape and dtype")
    args = ap.parse_args()

    dev, cuda, timer, env = setup(args, 50, 10)
    env["liger"] = LigerSiLUMulFunction is not None and cuda
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    acts = args.activations.split(",")
    for a in acts:
        if a not in ACTIVATIONS:
            ap.error(f"unknown activation {a!r}; one of {', '.join(ACTIVATIONS)}")
    dtypes = args.dtypes.split(",")
    cfg = SimpleNamespace(device=dev, dtypes=dtypes if "silu" in acts else [], compile=not args.no_compile,
                          shapes=shapes, more=SimpleNamespace(activations=[a for a in acts if a != "silu"],
                                                              dtypes=dtypes, shapes=shapes))
    rows = run(cfg, timer)
    save("glu", dev, env, rows, ["op", *COLUMNS],
         "Gating (silu_and_mul and the other activations): ffn_ext vs eager vs torch.compile vs Liger (SiLU)",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
