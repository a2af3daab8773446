"""SwiGLU gating act_and_mul(gate, up) on the operand layouts a caller hands over, each as it is
(no copy): ffn_ext vs PyTorch eager (F.silu(gate) * up) vs torch.compile of the same function,
forward and forward+backward (torch.autograd.grad w.r.t. gate and up).

    python benchmarks/bench_layouts.py                       # CPU: 1024 x 2048, fp32 and bf16
    python benchmarks/bench_layouts.py --device cuda --shape 8192x14336 --dtypes bf16,fp32
    python benchmarks/bench_layouts.py --quick               # tiny sizes (CI runs this)

Layouts of gate and up ([rows, d] each), and the path each takes (csrc/cpu/activation_cpu.cpp,
csrc/cuda/engine.cuh):
  separate     two contiguous tensors                                  flat (the anchor)
  halves       h[:, :d], h[:, d:] of one [rows, 2d] buffer             rows
  odd_rows     rows of a [rows, d + 1] buffer each (odd row stride)     rows (CUDA: one element
                                                                        per load, no vector)
  transposed   both transposed views of [d, rows] buffers              flat
  interleaved  h[:, 0::2], h[:, 1::2] of one [rows, 2d] buffer         strided (GPT-OSS packs its
                                                                        gate and up this way;
                                                                        CUDA: 4 elements a thread)
  gate_t       gate transposed, up contiguous                          strided (CUDA: the tile
                                                                        kernel, 32 x 32 tiles
                                                                        through shared memory)

Bytes: 3 rows d elements forward (read gate and up, write y), 5 more for the backward (read dy,
gate, up; write dgate, dup). of_copy: achieved bytes per second over a same-run copy of 3 rows d
contiguous elements. vs_eager, vs_compile: time ratios (> 1: ffn_ext faster); x_separate:
ffn_ext's time over its own on the separate layout. Results:
benchmarks/results/layouts-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import DTYPES, add_common_args, print_row, save, setup, training_step  # noqa: E402


def layouts(rows, d, dtype, dev):
    """{name: (gate, up)} of the module docstring's layouts, values randn."""

    def r(*shape):
        return torch.randn(*shape, dtype=dtype, device=dev)

    h = r(rows, 2 * d)
    odd = r(2, rows, d + 1)
    return {
        "separate": (r(rows, d), r(rows, d)),
        "halves": (h[:, :d], h[:, d:]),
        "odd_rows": (odd[0, :, :d], odd[1, :, 1:]),
        "transposed": (r(d, rows).t(), r(d, rows).t()),
        "interleaved": (h[:, 0::2], h[:, 1::2]),
        "gate_t": (r(d, rows).t(), r(rows, d)),
    }


def eager(g, u):
    return F.silu(g) * u


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap, "fp32,bf16")
    ap.add_argument("--shape", default=None, help="rows x d (default 1024x2048 on a CPU, 8192x14336 on CUDA)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 repetitions, no compile")
    ap.add_argument("--layouts", default=None, help="comma-separated layouts to time (default: all; separate is "
                    "always timed, as the anchor of x_separate)")
    ap.add_argument("--tag", default=None, help="a suffix of the results' names (layouts-<tag>-...), for runs "
                    "of the same build under FFN_EXT_CUDA_TILES=0 or FFN_EXT_CUDA_STRIDED_UNROLL=1")
    a = ap.parse_args()
    if a.quick:
        a.shape, a.reps, a.no_compile = "64x256", 2, True
    dev, cuda, timer, env = setup(a, cuda_reps=30, cpu_reps=11)
    rows, d = (int(v) for v in (a.shape or ("8192x14336" if cuda else "1024x2048")).split("x"))
    compiled = None if a.no_compile else torch.compile(eager, dynamic=False)
    out = []
    for dname in a.dtypes.split(","):
        dtype = DTYPES[dname]
        es = torch.tensor([], dtype=dtype).element_size()
        src = torch.randn(rows, 3 * d, dtype=dtype, device=dev)
        dst = torch.empty_like(src)
        copy_bw = 2 * src.numel() * es / timer(lambda: dst.copy_(src))
        dy = torch.randn(rows, d, dtype=dtype, device=dev)
        base = {}
        for name, (g, u) in layouts(rows, d, dtype, dev).items():
            if a.layouts and name != "separate" and name not in a.layouts.split(","):
                continue
            gr, ur = (t.detach().requires_grad_(True) for t in (g, u))  # views, same strides
            fns = {"ffn_ext": ffn_ext.act_and_mul, "eager": eager} | ({"compile": compiled} if compiled else {})
            for direction in ("fwd", "fwd+bwd"):
                if direction == "fwd":
                    cands = {k: (lambda f=f: f(g, u)) for k, f in fns.items()}
                else:
                    cands = {k: training_step(f, (gr, ur), dy) for k, f in fns.items()}
                t = timer.compare(cands)
                ours = t["ffn_ext"]
                nbytes = (3 if direction == "fwd" else 8) * rows * d * es
                if name == "separate":
                    base[direction] = ours
                row = dict(layout=name, dtype=dname, rows=rows, d=d, dir=direction, ffn_ext_us=ours * 1e6,
                           eager_us=t["eager"] * 1e6, compile_us=t["compile"] * 1e6 if "compile" in t else None,
                           of_copy=nbytes / ours / copy_bw, vs_eager=t["eager"] / ours,
                           vs_compile=t["compile"] / ours if "compile" in t else None,
                           x_separate=ours / base[direction])
                out.append(row)
                print_row(row)
        del src, dst, dy
    env.update({k: os.environ[k] for k in ("FFN_EXT_CUDA_TILES", "FFN_EXT_CUDA_STRIDED_UNROLL") if k in os.environ})
    save("layouts" + (f"-{a.tag}" if a.tag else ""), dev, env, out,
         ["layout", "dtype", "rows", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "of_copy", "vs_eager",
          "vs_compile", "x_separate"],
         "SwiGLU gating act_and_mul(gate, up) on each operand layout: ffn_ext vs eager vs torch.compile",
         out_dir=a.out_dir)


if __name__ == "__main__":
    main()
