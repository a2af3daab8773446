"""An experiment, not a suite member: would ffn_ext.swiglu gain at prefill sizes by running its GEMM
and its gating kernel chunk by chunk, of tokens or of output columns? Decides whether the op should
do so (issue 4: at M = 2048 it measured 1.02x and 1.09x eager on an H100, against a target of
1.05x).

    python benchmarks/explore_chunked_swiglu.py --device cuda          # in 4096, d 14336, bf16
    python benchmarks/explore_chunked_swiglu.py --device cpu --dims 256x512 --tokens 64 --chunks 16,32

Today swiglu writes h = x [w1; w3]^T ([M, 2d]) with one GEMM, then one kernel reads h and writes
y = silu(h[:, :d]) * h[:, d:]. At M = 2048 (bf16; H100, torch 2.11, 2026-11-26) the GEMM took about
680 us and the gating pass about 60 us (176 MB of DRAM traffic); eager's silu and mul about 100 us.
Candidates, timed in turn in the same run (CUDA events, L2 flushed before each call, median):

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
  cols/C       chunks of C output columns instead: per chunk x w1[j:j+C]^T and x w3[j:j+C]^T into
               the halves of a reused [M, 2C] buffer, then the gating into y[:, j:j+C]. Unlike
               row chunks, the weights (235 MB) are read once, not once per chunk, and every
               GEMM keeps all M rows; the buffer (2 M C elements: 16.8 MB at M = 2048, C = 2048)
               stays in L2 for the gating
  cols-overlap/C  cols/C with the overlap above

Prediction (H100, M = 2048, d 14336): serial/C saves most of the gating's 60 us (its reads come
from L2, its 58 MB of writes remain, about 20 us), and loses what gemms/C loses against the floor;
it wins if that loss stays under about 35 us (5 %). overlap/C hides part of the rest. Row chunks
re-read the weights per chunk, and one M = 512 GEMM took 188 us where a quarter of the M = 2048 one
took 170 us, so serial/512 may lose 70 us there; cols/2048 avoids both (14 GEMMs of 128 tiles of
128 x 256 each, about one wave on 132 multiprocessors, against 13.6 waves for the floor's): predicted
floor + 2 % + 7 gatings from L2 of about 4 us each, 720-725 us, level with ffn_ext's 727, and a win
only with overlap. Peak memory of a call falls from 2d M elements of h (235 MB at M = 2048) to 2d C
(or 4d C) for row chunks, 2 M C (or 4 M C) for column chunks.
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


# A plan: per chunk, (the shape of its h, the GEMMs that write h, the gating that reads h into y).
def row_plan(x, w13, y, c):
    """Chunks of c tokens: one GEMM of all 2d columns per chunk (the weights are read per chunk)."""
    for i, j in chunks(x.shape[0], c):
        yield ((j - i, w13.shape[0]), lambda h, i=i, j=j: torch.mm(x[i:j], w13.t(), out=h),
               lambda h, i=i, j=j: ffn_ext.silu_and_mul(h, out=y[i:j]))


def col_plan(x, w1, w3, y, c):
    """Chunks of c of the d output columns: per chunk two GEMMs of all M tokens (x w1[j:k]^T and
    x w3[j:k]^T into h's halves), the gating into y[:, j:k] (row stride d). The weights are read
    once and each GEMM keeps all M rows per tile column."""
    m = x.shape[0]
    for j, k in chunks(w1.shape[0], c):
        n = k - j

        def gemm(h, j=j, k=k, n=n):
            torch.mm(x, w1[j:k].t(), out=h[:, :n])
            torch.mm(x, w3[j:k].t(), out=h[:, n:])

        yield (m, 2 * n), gemm, lambda h, j=j, k=k: ffn_ext.silu_and_mul(h, out=y[:, j:k])


def chunk_h(buf, shape):
    """A contiguous [rows, cols] h at the start of a reused buffer."""
    return buf.view(-1)[: shape[0] * shape[1]].view(shape)


def serial(plan, y, buf):
    for shape, gemm, gate in plan:
        h = chunk_h(buf, shape)
        gemm(h)
        gate(h)
    return y


class Overlap:
    """The GEMMs of chunk i + 1 on the current stream while the gating of chunk i runs on a side
    stream; two buffers, each reused once the gating that read it has finished."""

    def __init__(self, device):
        self.side = torch.cuda.Stream(device)
        self.done = [torch.cuda.Event(), torch.cuda.Event()]
        self.ready = [torch.cuda.Event(), torch.cuda.Event()]

    def __call__(self, plan, y, bufs):
        main = torch.cuda.current_stream()
        for k, (shape, gemm, gate) in enumerate(plan):
            b = k % 2
            h = chunk_h(bufs[b], shape)
            if k >= 2:
                main.wait_event(self.done[b])  # the gating that read this buffer has finished
            gemm(h)
            self.ready[b].record(main)
            self.side.wait_event(self.ready[b])
            with torch.cuda.stream(self.side):
                gate(h)
            self.done[b].record(self.side)
        main.wait_stream(self.side)
        return y


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d")
    ap.add_argument("--tokens", default="512,2048,8192")
    ap.add_argument("--chunks", default="256,512,1024", help="chunk sizes C (rows)")
    ap.add_argument("--col-chunks", default="1024,2048,3584", help="chunk sizes C (columns of d)")
    args = ap.parse_args()
    dev, cuda, timer, env = setup(args, 20, 5)
    k, d = (int(v) for v in args.dims.split("x"))
    sizes = [int(c) for c in args.chunks.split(",")]
    col_sizes = [int(c) for c in args.col_chunks.split(",")]
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
                bufs = (torch.empty(c, 2 * d, dtype=dtype, device=dev), torch.empty(c, 2 * d, dtype=dtype, device=dev))
                cands[f"gemms/{c}"] = lambda c=c, bufs=bufs: gemms(x, w13, bufs[0], c)
                cands[f"serial/{c}"] = lambda c=c, bufs=bufs: serial(row_plan(x, w13, y, c), y, bufs[0])
                if overlap is not None:
                    cands[f"overlap/{c}"] = lambda c=c, bufs=bufs: overlap(row_plan(x, w13, y, c), y, bufs)
            for c in [c for c in col_sizes if c < d]:
                bufs = (torch.empty(m, 2 * c, dtype=dtype, device=dev), torch.empty(m, 2 * c, dtype=dtype, device=dev))
                cands[f"cols/{c}"] = lambda c=c, bufs=bufs: serial(col_plan(x, w1, w3, y, c), y, bufs[0])
                if overlap is not None:
                    cands[f"cols-overlap/{c}"] = lambda c=c, bufs=bufs: overlap(col_plan(x, w1, w3, y, c), y, bufs)
            for name, fn in cands.items():  # each chunked result against the op's, before timing
                if name.startswith(("serial", "overlap", "halves", "cols")):
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
