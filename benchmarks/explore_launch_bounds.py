"""An experiment, not a suite member: which __launch_bounds__ minimum of resident blocks, and how
many packs a thread, should the CUDA row kernels take? Decides row_min_blocks and kUnroll in
csrc/cuda/ (engine.cuh, row_kernel.cuh; issue 3: bf16/fp16 SiLU gating forward + backward at 0.60 of
the byte floor on an H200, 2026-11-27, on a build whose backward kernel had grown from 80 to 94
registers, 3 to 2 blocks of 256 threads a multiprocessor).

    python benchmarks/explore_launch_bounds.py                      # 8192 x 14336, CUDA only
    python benchmarks/explore_launch_bounds.py --shape 4096x11008

The engine's row kernel (the same template, functors and geometry: explore_launch_bounds.cu) is
compiled here with the minimums 1 (none: ptxas takes the registers its schedule wants), 3 (the
engine's bound at dd226f2 for kernels of at most 5 operands in fp32/fp16/bf16) and, for SiLU, 4;
and, for the bf16 SiLU and GELU and the fp16 SiLU backward, with 2 packs a thread (unroll, the
kernel's UNROLL) instead of the engine's 4; timed beside ffn_ext's own kernel and a device copy of
the same bytes, in the same run (CUDA events, L2 flushed before each call, median), on the packed
layout of the gating backward (gate and up the halves of [rows, 2d], row stride 2d; the packed
gradient likewise). Only the backward kernels are built: the forwards and the activations' kernels
fit 80 registers without a bound.

Columns: regs and spill_bytes (cudaFuncGetAttributes), blocks_per_sm (256-thread blocks resident,
cudaOccupancyMaxActiveBlocksPerMultiprocessor), of_copy (the copy's time for the same bytes / the
variant's), vs_ffn_ext (ffn_ext's time / the variant's: about 1 for the engine's own bound) and
same (outputs bitwise equal to ffn_ext's).

Prediction (sm_90 ptxas at e57e7bf): the bf16 SiLU backward reaches >= 0.85 of copy bandwidth with
or without the bound. It ran at 0.60 with 5632 instructions and 2 blocks (5ada78e), and now has 1224
(774bba5, FastFloat's exp as __expf: no spill at the bound); ReGLU's backward ran at 0.957 with 2
blocks (102 registers) on 5ada78e, so 2 blocks do not by themselves hold a kernel back. The bound
(3 blocks) then moves these kernels by a few percent either way; 4 blocks (64 registers, 64 bytes
spilled) is slower. If no bound is at least as fast for a class of kernel, row_min_blocks should
return 1 for it. Unroll 2 holds half the loaded packs in registers: it was built for the spills of
4 packs at the bound (the bf16 SiLU backward's 28 bytes of spill stores, c76ea19), which 774bba5
removed (sm_90, nvcc 13.0, 2026-11-28: every bf16/fp16 gating backward variant here takes 80
registers and spills nothing at the bound; 96-107 registers unbounded; fp32 SiLU spills 8 bytes).
Predicted within a few percent of unroll 4 (96 bytes a thread stay in flight, enough for DRAM); if
it wins at the engine's bound, the engine's kUnroll should follow.
Results: benchmarks/results/bounds-cuda-<date>.{json,md}.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import DTYPES, Timer, environment, print_row, save  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Elements read and written by the gating backward per element of d: dy, gate, up, dgate, dup.
TRAFFIC = 5


def build(verbose=False):
    import glob
    import site

    from torch.utils.cpp_extension import CUDA_HOME, load

    includes = [os.path.join(ROOT, "csrc", "include"), os.path.join(ROOT, "csrc", "cuda")]
    if not os.path.isfile(os.path.join(CUDA_HOME or "", "include", "cublas_v2.h")):
        # As setup.py: a toolkit without cuBLAS's headers, which a pip CUDA torch ships.
        includes += sorted(os.path.dirname(h) for sp in site.getsitepackages()
                           for h in glob.glob(os.path.join(sp, "nvidia", "cu*", "include", "cublas_v2.h")))[:1]
    load(
        name="ffn_ext_launch_bounds",
        sources=[os.path.join(HERE, "explore_launch_bounds.cu")],
        extra_include_paths=includes,
        extra_cuda_cflags=["-O3"] + (["-Xptxas", "-v"] if verbose else []),  # as setup.py: no fast math
        is_python_module=False,
        verbose=verbose,
    )
    return torch.ops.ffn_ext_bounds


def operands(rows, d, dtype, dev):
    """(outs, ins, a function giving ffn_ext's outputs in the same layout): the packed gating
    backward, dy [rows, d] and h = [gate | up] [rows, 2d] in, dh = [dgate | dup] [rows, 2d] out."""
    h = torch.randn(rows, 2 * d, dtype=dtype, device=dev)
    dy = torch.randn(rows, d, dtype=dtype, device=dev)
    dh = torch.empty(rows, 2 * d, dtype=dtype, device=dev)

    def ours(act):
        r = torch.ops.ffn_ext.act_and_mul_packed_backward(dy, h, act, 1.0)
        return [r[:, :d], r[:, d:]]

    return [dh[:, :d], dh[:, d:]], [dy, h[:, :d], h[:, d:]], ours


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="8192x14336", help="rows x d")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--verbose-build", action="store_true", help="show nvcc and ptxas -v output")
    ap.add_argument("--build-only", action="store_true",
                    help="compile the variants and list them (no GPU needed: CI checks that they compile)")
    ap.add_argument("--out-dir", default=None)
    a = ap.parse_args()
    rows, d = (int(v) for v in a.shape.split("x"))
    if a.build_only:
        keys = build(a.verbose_build).variants().split()
        print(f"{len(keys)} variants built: {' '.join(keys)}")
        return
    if not torch.cuda.is_available():
        sys.exit("explore_launch_bounds.py needs a CUDA device (--build-only compiles without one)")
    dev = torch.device("cuda")
    mod = build(a.verbose_build)
    timer, env = Timer(dev, reps=a.reps), environment(dev)
    groups = {}
    for key in mod.variants().split():
        kind, act, dname, minb, unroll = key.split("/")
        groups.setdefault((kind, act, dname), []).append(((int(minb), int(unroll)), key))
    out_rows = []
    for (kind, act, dname), variants in sorted(groups.items()):
        dtype = DTYPES[dname]
        es = torch.tensor([], dtype=dtype).element_size()
        outs, ins, ours = operands(rows, d, dtype, dev)
        expect = ours(act)
        src = torch.randn(rows * d * TRAFFIC // 2, dtype=dtype, device=dev)
        dst = torch.empty_like(src)
        same = {}
        for _, key in variants:
            for o in outs:
                o.fill_(float("nan"))  # so that a variant that writes nothing cannot pass
            mod.launch(key, outs, ins)
            same[key] = all(torch.equal(o, e) for o, e in zip(outs, expect))
        cands = {"copy": lambda: dst.copy_(src), "ffn_ext": lambda: ours(act)}
        cands.update({key: (lambda k=key: mod.launch(k, outs, ins)) for _, key in variants})
        times = timer.compare(cands)
        for (minb, unroll), key in variants:
            t = times[key]
            regs, spill, blocks = mod.attributes(key)
            row = {"kind": kind, "act": act, "dtype": dname, "rows": rows, "d": d, "min_blocks": minb,
                   "unroll": unroll, "regs": regs, "spill_bytes": spill, "blocks_per_sm": blocks, "us": t * 1e6,
                   "ffn_ext_us": times["ffn_ext"] * 1e6, "copy_us": times["copy"] * 1e6,
                   "of_copy": times["copy"] / t, "vs_ffn_ext": times["ffn_ext"] / t, "same": same[key],
                   "GB/s": TRAFFIC * rows * d * es / t / 1e9}
            print_row(row)
            out_rows.append(row)
        del outs, ins, expect, src, dst
    columns = ["kind", "act", "dtype", "min_blocks", "unroll", "regs", "spill_bytes", "blocks_per_sm", "us", "ffn_ext_us",
               "copy_us", "of_copy", "vs_ffn_ext", "same"]
    save("bounds", dev, env, out_rows, columns,
         f"Row kernels under __launch_bounds__(256, min_blocks), unroll packs a thread, {rows} x {d}", a.out_dir)


if __name__ == "__main__":
    main()
