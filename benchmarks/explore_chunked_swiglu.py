"""An experiment, not a suite member: would ffn_ext.swiglu gain at prefill sizes by running its GEMM
and its gating kernel chunk by chunk of tokens? Decides whether the op should do so (issue 4: at
M = 2048 it measured 1.02x and 1.09x eager on an H100, against a target of 1.05x).

    python benchmarks/explore_chunked_swiglu.py --device cuda          # in 4096, d 14336, bf16
    python benchmarks/explore_chunked_swiglu.py --device cpu --dims 256x512 --tokens 64 --chunks 16,32

Today swiglu writes h = x [w1; w3]^T ([M, 2d]) with one GEMM, then one kernel reads h and writes
y = silu(h[:, :d]) * h[:, d:]. At M = 2048 (bf16) the GEMM takes about 680 us and the gating pass
about 60 us (176 MB of DRAM traffic); eager's silu and mul take about 100 us. Candidates, timed in
turn in the same run (CUDA events, L2 flushed before each call, median):

  floor        x [w1; w3]^T alone, one GEMM
  ffn_ext      ffn_ext.swiglu(x, w1, w3)
  eager        F.silu(x @ w1.T) * (x @ w3.T)
  gemms/C      the floor's GEMM in chunks of C rows, into one reused [C, 2d] buffer (no gating):
               what chunking costs the GEMM (fewer tiles per wave)
  serial/C     per chunk: the GEMM into the reused buffer, then the gating kernel from it into
               y's rows. The chunk of h is still in L2 when the gating reads it (2d C elements:
               14.7 MB at C = 256 in bf16, of a 50 MB L2), and the next chunk's GEMM overwrites the
               same lines, so h need not reach DRAM at all
  halves       two GEMMs, x w1^T and x w3^T, written into the two halves of one [M, 2d] h (cuBLAS
               writes a row stride of 2d directly), then the gating kernel: eager's GEMM shapes
               with ffn_ext's gating. In one run eager's two GEMMs appeared faster than the one
               floor GEMM at M = 2048 (eager 743 us, less ~100 us of silu and mul, against a
               680 us floor); floor2 (the two GEMMs alone) says whether that is real
  overlap/C    as serial/C with two buffers, the gating of chunk i on a second stream while the
               GEMM of chunk i + 1 runs: the gating can fill the multiprocessors that a chunk's
               last, partial wave of GEMM tiles leaves idle

Prediction (H100, M = 2048, d 14336): serial/C saves most of the gating's 60 us (its reads come
from L2, its 58 MB of writes remain, about 20 us), and loses what gemms/C loses against the floor;
it wins if that loss stays under about 35 us (5 %). overlap/C hides part of the rest. Peak memory
of a call falls from 2d M elements of h (235 MB at M = 2048) to 2d C (or 4d C).
Rows: "vs_eager" and "vs_ffn_ext" are time ratios (> 1: the candidate is faster); "of_floor" =
floor time / candidate time. Each chunked result is checked against ffn_ext.swiglu first.
Results: benchmarks/results/chunked-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import DTYPES, add_common_args, print_row, save, setup  # noqa: E402


def chunks(m, c):
    return [(i, min(i + c, m)) for i in range(0, m, c)]


def halves(x, w1, w3, h, gating=True):
    d = w1.shape[0]
    torch.mm(x, w1.t(), out=h[:, :d])
    torch.mm(x, w3.t(), out=h[:, d:])
    return ffn_ext.silu_and_mul(h) if gating else h


def gemms(x, w13, buf, c):
    for i, j in chunks(x.shape[0], c):
        torch.mm(x[i:j], w13.t(), out=buf[: j - i])


def serial(x, w13, y, buf, c):
    for i, j in chunks(x.shape[0], c):
        h = buf[: j - i]
        torch.mm(x[i:j], w13.t(), out=h)
        ffn_ext.silu_and_mul(h, out=y[i:j])
    return y


class Overlap:
    """GEMM of chunk i + 1 on the current stream while the gating of chunk i runs on a side stream;
    two buffers, each reused once the gating that read it has finished."""

    def __init__(self, device):
        self.side = torch.cuda.Stream(device)
        self.done = [torch.cuda.Event(), torch.cuda.Event()]
        self.ready = [torch.cuda.Event(), torch.cuda.Event()]

    def __call__(self, x, w13, y, bufs, c):
        main = torch.cuda.current_stream()
        for k, (i, j) in enumerate(chunks(x.shape[0], c)):
            b = k % 2
            h = bufs[b][: j - i]
            if k >= 2:
                main.wait_event(self.done[b])  # the gating that read this buffer has finished
            torch.mm(x[i:j], w13.t(), out=h)
            self.ready[b].record(main)
            self.side.wait_event(self.ready[b])
            with torch.cuda.stream(self.side):
                ffn_ext.silu_and_mul(h, out=y[i:j])
            self.done[b].record(self.side)
        main.wait_stream(self.side)
        return y


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d")
    ap.add_argument("--tokens", default="512,2048,8192")
    ap.add_argument("--chunks", default="256,512,1024", help="chunk sizes C (rows)")
    args = ap.parse_args()
    dev, cuda, timer, env = setup(args, 20, 5)
    k, d = (int(v) for v in args.dims.split("x"))
    sizes = [int(c) for c in args.chunks.split(",")]
    overlap = Overlap(dev) if cuda else None
    rows = []
    for dname in args.dtypes.split(","):
        dtype = DTYPES[dname]
        gen = torch.Generator(device=dev).manual_seed(0)
        w13 = torch.randn(2 * d, k, dtype=dtype, device=dev, generator=gen) / k**0.5
        w1, w3 = w13[:d], w13[d:]  # adjacent, as FeedForward allocates them: swiglu runs one GEMM
        for m in [int(t) for t in args.tokens.split(",")]:
            x = torch.randn(m, k, dtype=dtype, device=dev, generator=gen)
            ref = ffn_ext.swiglu(x, w1, w3)
            y = torch.empty(m, d, dtype=dtype, device=dev)
            cands = {"ffn_ext": lambda: ffn_ext.swiglu(x, w1, w3),
                     "eager": lambda: F.silu(x @ w1.T) * (x @ w3.T),
                     "floor": lambda: x @ w13.T}
            h = torch.empty(m, 2 * d, dtype=dtype, device=dev)
            cands["floor2"] = lambda: halves(x, w1, w3, h, gating=False)
            cands["halves"] = lambda: halves(x, w1, w3, h)
            for c in [c for c in sizes if c < m]:
                buf = torch.empty(c, 2 * d, dtype=dtype, device=dev)
                bufs = (buf, torch.empty_like(buf))
                cands[f"gemms/{c}"] = lambda c=c, buf=buf: gemms(x, w13, buf, c)
                cands[f"serial/{c}"] = lambda c=c, buf=buf: serial(x, w13, y, buf, c)
                if overlap is not None:
                    cands[f"overlap/{c}"] = lambda c=c, bufs=bufs: overlap(x, w13, y, bufs, c)
            for name, fn in cands.items():  # each chunked result against the op's, before timing
                if name.startswith(("serial", "overlap", "halves")):
                    y.fill_(float("nan"))
                    torch.testing.assert_close(fn(), ref, rtol=2e-2, atol=1e-2, msg=name)
            with torch.inference_mode():
                times = timer.compare(cands)
            for name, t in times.items():
                row = {"dtype": dname, "M": m, "in": k, "d": d, "candidate": name, "us": t * 1e6,
                       "vs_eager": times["eager"] / t, "vs_ffn_ext": times["ffn_ext"] / t,
                       "of_floor": times["floor"] / t}
                rows.append(row)
                print_row(row)
            del x, y, h, ref, cands
            if cuda:
                torch.cuda.empty_cache()
    save("chunked", dev, env, rows, ["dtype", "M", "in", "d", "candidate", "us", "vs_eager", "vs_ffn_ext", "of_floor"],
         "swiglu chunk by chunk of tokens (an experiment: GEMM and gating per chunk, reused buffers)",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
