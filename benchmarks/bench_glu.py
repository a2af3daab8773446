"""Gating y = act(gate) * up: ffn_ext vs PyTorch eager vs torch.compile (vs Liger-Kernel's
LigerSiLUMulFunction where importable), forward and forward+backward.

    python benchmarks/bench_glu.py --device cuda                 # the issue's shapes, bf16/fp16/fp32
    python benchmarks/bench_glu.py --device cpu --shapes 2048x4096 --dtypes fp32,bf16

For each shape (rows x d), dtype and activation:
  fwd:  ffn_ext.silu_and_mul(h) on a packed h [rows, 2d]; eager F.silu(h[:, :d]) * h[:, d:]; the
        same function under torch.compile; Liger's silu_mul(g, u) on the two halves.
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


def eager_packed(h):
    d = h.shape[-1] // 2
    return F.silu(h[..., :d]) * h[..., d:]


def count(cfg):
    return len(cfg.dtypes) * len(cfg.shapes) * 2


def run(cfg, timer, progress=None):
    """cfg: device, dtypes (names), shapes ([(rows, d)]), compile (bool). Returns the rows."""
    dev, cuda = cfg.device, cfg.device.type == "cuda"
    liger = LigerSiLUMulFunction is not None and cuda
    compiled = torch.compile(eager_packed, dynamic=False) if cfg.compile else None
    rows_out = []
    for dname in cfg.dtypes:
        dtype = DTYPES[dname]
        es = torch.tensor([], dtype=dtype).element_size()
        for rows, d in cfg.shapes:
            need = rows * d * es * 12  # h, its grad, y, dy, copies
            if cuda and need > 0.8 * torch.cuda.mem_get_info()[0]:
                print(f"skip {rows}x{d} {dname}: needs {need / 2**30:.1f} GiB", flush=True)
                if progress:
                    progress(f"gating {rows}x{d} {dname} skipped", 2)
                continue
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
                "ffn_ext": (lambda: ffn_ext.silu_and_mul(h), fb(ffn_ext.silu_and_mul)),
                "eager": (lambda: eager_packed(h), fb(eager_packed)),
            }
            if compiled is not None:
                cands["compile"] = (lambda: compiled(h), fb(compiled))
            if liger:
                g, u = h[:, :d].contiguous(), h[:, d:].contiguous()
                gr, ur = g.clone().requires_grad_(True), u.clone().requires_grad_(True)
                cands["liger"] = (
                    lambda: LigerSiLUMulFunction.apply(g, u),
                    training_step(LigerSiLUMulFunction.apply, (gr, ur), dy),
                )
            for direction in ("fwd", "fwd+bwd"):
                k = 0 if direction == "fwd" else 1
                times = timer.compare({name: c[k] for name, c in cands.items()})
                ours = times["ffn_ext"]
                nbytes = fwd_bytes if direction == "fwd" else fwd_bytes + 5 * rows * d * es
                row = {"family": "gating", "op": "silu_and_mul", "dtype": dname, "rows": rows, "d": d,
                       "dir": direction, "ffn_ext_us": ours * 1e6, "GB/s": nbytes / ours / 1e9,
                       "of_copy": nbytes / ours / copy_bw}
                for name, t in times.items():
                    if name != "ffn_ext":
                        row[f"{name}_us"] = t * 1e6
                        row[f"vs_{name}"] = t / ours
                if direction == "fwd+bwd":
                    for name, c in cands.items():
                        row.update(memory_columns(name, c[1], dev))
                if cuda and direction == "fwd" and rows <= 128:
                    out = torch.empty(rows, d, dtype=dtype, device=dev)
                    gv, uv = h[:, :d], h[:, d:]
                    row["graph_us"] = graph_time(lambda: ffn_ext.silu_and_mul(h, out=out)) * 1e6
                    row["eager_graph_us"] = graph_time(lambda: torch.mul(F.silu(gv), uv, out=out)) * 1e6
                    row["call_us"] = call_time(lambda: ffn_ext.silu_and_mul(h)) * 1e6
                    row["eager_call_us"] = call_time(lambda: F.silu(gv) * uv) * 1e6
                rows_out.append(row)
                print_row(row)
                if progress:
                    progress(f"gating {rows}x{d} {dname} {direction}")
            del h, dy, src, dst, hr, cands
            if cuda:
                torch.cuda.empty_cache()
    return rows_out


COLUMNS = ["dtype", "rows", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "liger_us", "GB/s",
           "of_copy", "vs_eager", "vs_compile", "vs_liger", "graph_us", "eager_graph_us", "call_us", "eager_call_us",
           *memory_column_names()]


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16,fp16,fp32")
    ap.add_argument("--shapes", default=SHAPES, help="comma-separated rows x d")
    args = ap.parse_args()

    dev, cuda, timer, env = setup(args, 50, 10)
    env["liger"] = LigerSiLUMulFunction is not None and cuda
    cfg = SimpleNamespace(device=dev, dtypes=args.dtypes.split(","), compile=not args.no_compile,
                          shapes=[tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")])
    rows = run(cfg, timer)
    save("glu", dev, env, rows, COLUMNS, "SiLU gating (silu_and_mul): ffn_ext vs eager vs torch.compile vs Liger",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
