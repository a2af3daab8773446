"""Projection-level SwiGLU: ffn_ext.swiglu(x, w1, w3) vs PyTorch eager F.silu(x @ w1.T) * (x @ w3.T)
vs torch.compile of the same function, against the one-GEMM floor x @ [w1; w3].T measured in the
same run; and the whole block with the down projection w2 (ffn_ext.nn.FeedForward vs eager vs
compile).

    python benchmarks/bench_ffn.py --device cuda                      # LLaMA-3-8B: in 4096, d 14336, bf16
    python benchmarks/bench_ffn.py --device cpu --dims 1024x3584 --tokens 1,16,256 --dtypes fp32

For each token count M: times (no autograd, inference mode), "vs_eager" / "vs_compile" (time
ratios, > 1: ffn_ext faster), and "of_floor" = floor time / ffn_ext time (1.0 would mean the gating
costs nothing beyond the GEMM). The weights are allocated as FeedForward allocates them (w3 right
after w1), so on CUDA swiglu runs one GEMM. TFLOP/s counts 2 M in 2d for the projections (and
2 M d in more for the block's w2). Results: benchmarks/results/ffn-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import add_common_args, setup, print_row, save  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def eager_swiglu(x, w1, w3):
    return F.silu(x @ w1.T) * (x @ w3.T)


def eager_block(x, w1, w3, w2):
    return (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d (d_model x d_ff)")
    ap.add_argument("--tokens", default="1,8,64,512,2048,8192")
    args = ap.parse_args()

    dev, cuda, timer, env = setup(args, 30, 5)
    k, d = (int(v) for v in args.dims.split("x"))
    c_swiglu = None if args.no_compile else torch.compile(eager_swiglu, dynamic=False)
    c_block = None if args.no_compile else torch.compile(eager_block, dynamic=False)

    rows_out = []
    for dname in args.dtypes.split(","):
        dtype = DTYPES[dname]
        m = ffn_ext.nn.FeedForward(k, d, "swiglu", device=dev, dtype=dtype).requires_grad_(False)
        w1, w3, w2 = m.w1, m.w3, m.w2
        w13 = w1._base if w1._base is not None else torch.cat([w1, w3])
        for n in (int(t) for t in args.tokens.split(",")):
            x = torch.randn(n, k, dtype=dtype, device=dev)
            with torch.inference_mode():
                cands = {
                    "ffn_ext": lambda: ffn_ext.swiglu(x, w1, w3),
                    "eager": lambda: eager_swiglu(x, w1, w3),
                    "floor": lambda: x @ w13.T,
                }
                if c_swiglu is not None:
                    cands["compile"] = lambda: c_swiglu(x, w1, w3)
                times = {name: timer(fn) for name, fn in cands.items()}
                block = {"ffn_ext": lambda: m(x), "eager": lambda: eager_block(x, w1, w3, w2)}
                if c_block is not None:
                    block["compile"] = lambda: c_block(x, w1, w3, w2)
                btimes = {name: timer(fn) for name, fn in block.items()}
            ours, flops = times["ffn_ext"], 2 * n * k * 2 * d
            row = {"dtype": dname, "M": n, "in": k, "d": d, "ffn_ext_us": ours * 1e6,
                   "eager_us": times["eager"] * 1e6, "compile_us": times.get("compile", float("nan")) * 1e6,
                   "floor_us": times["floor"] * 1e6, "TFLOP/s": flops / ours / 1e12,
                   "vs_eager": times["eager"] / ours, "vs_compile": times.get("compile", float("nan")) / ours,
                   "of_floor": times["floor"] / ours,
                   "block_ffn_ext_us": btimes["ffn_ext"] * 1e6, "block_eager_us": btimes["eager"] * 1e6,
                   "block_vs_eager": btimes["eager"] / btimes["ffn_ext"],
                   "block_vs_compile": btimes.get("compile", float("nan")) / btimes["ffn_ext"]}
            rows_out.append(row)
            print_row(row)
            del x
        del m, w1, w3, w2, w13
        if cuda:
            torch.cuda.empty_cache()
    cols = ["dtype", "M", "in", "d", "ffn_ext_us", "eager_us", "compile_us", "floor_us", "TFLOP/s",
            "vs_eager", "vs_compile", "of_floor", "block_ffn_ext_us", "block_eager_us", "block_vs_eager",
            "block_vs_compile"]
    save("ffn", dev, env, rows_out, cols,
         "SwiGLU projection: ffn_ext.swiglu vs eager vs torch.compile vs the one-GEMM floor; whole block with w2",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
