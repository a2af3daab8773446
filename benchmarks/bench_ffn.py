"""Projection-level SwiGLU and the whole feed-forward block, forward (inference) and forward+backward
(training):

  projection: ffn_ext.swiglu(x, w1, w3) vs PyTorch eager F.silu(x @ w1.T) * (x @ w3.T) vs
              torch.compile of it, against the GEMM floor measured in the same run: x @ [w1; w3].T
              forward; forward+backward adds dx = dh [w1; w3] and d[w1; w3] = dhᵀ x (three GEMMs:
              ffn_ext's own); and against the split floor, eager's GEMMs: x w1ᵀ and x w3ᵀ, then
              dx = dg w1 + du w3 (the second GEMM adding into the first), dw1 = dgᵀ x, dw3 = duᵀ x
              (dg, du: the halves of dh), six GEMMs, to tell whether a row lost to eager there;
  block:      ffn_ext.nn.FeedForward (swiglu, then w2) vs eager vs compile vs Liger-Kernel's
              LigerSwiGLUMLP (where importable, CUDA).

    python benchmarks/bench_ffn.py --device cuda                      # LLaMA-3-8B: in 4096, d 14336, bf16
    python benchmarks/bench_ffn.py --device cpu --dims 1024x3584 --tokens 1,16,256 --dtypes fp32

For each token count M: times, "vs_eager" / "vs_compile" / "vs_liger" (time ratios, > 1: ffn_ext
faster) and "of_floor" = floor time / ffn_ext time (1.0: the gating costs nothing beyond the
GEMMs). The weights are allocated as FeedForward allocates them (w3 right after w1), so on CUDA
swiglu runs one GEMM. TFLOP/s counts 2 M in 2d per projection GEMM (x3 with the backward) and
2 M d in for w2. fwd+bwd rows give the peak memory of one forward+backward ("peak_MB_*").
Forward rows of at most 64 tokens and forward+backward rows of at most 512 (CUDA) are also timed
under CUDA-graph replay ("graph_us", "eager_graph_us": the kernels alone, without the host's time
to launch them; a training step is captured whole, its forward and torch.autograd.grad).
Results: benchmarks/results/ffn-<device>-<date>.{json,md}.
"""

import argparse
import contextlib
import os
import sys
from types import SimpleNamespace

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import (  # noqa: E402
    DTYPES, add_common_args, graph_time, memory_column_names, memory_columns, print_row, save, setup, training_step)


try:  # Liger-Kernel (Triton, CUDA only); optional
    from liger_kernel.transformers.swiglu import LigerSwiGLUMLP  # type: ignore
except Exception:  # noqa: BLE001  (absent, or fails to import without a GPU)
    LigerSwiGLUMLP = None


def eager_swiglu(x, w1, w3):
    return F.silu(x @ w1.T) * (x @ w3.T)


def floor_forward(x, w13):
    """The forward's GEMM floor: both projections in one GEMM, nothing else."""
    return x @ w13.T


def floor_training(x, w13, dh):
    """Forward+backward's GEMM floor: ffn_ext's three GEMMs alone, given a packed [M, 2d] dh."""
    return x @ w13.T, dh @ w13, dh.T @ x


def eager_block(x, w1, w3, w2):
    return (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def _liger_block(m, k, d):
    cfg = SimpleNamespace(hidden_size=k, intermediate_size=d, hidden_act="silu")
    lm = LigerSwiGLUMLP(cfg).to(device=m.w1.device, dtype=m.w1.dtype)
    with torch.no_grad():
        lm.gate_proj.weight.copy_(m.w1)
        lm.up_proj.weight.copy_(m.w3)
        lm.down_proj.weight.copy_(m.w2)
    return lm


def _graph_columns(cands, direction):
    """graph_us and eager_graph_us: ffn_ext's and eager's call (fwd: in inference mode) or whole
    training step (fwd+bwd: the forward and torch.autograd.grad in one graph) under CUDA-graph
    replay. A step that cannot be captured gets no figure, and says why on stderr, so that the rest
    of the run still comes back (the test suite's test_cuda_graph_training_step fails on it)."""
    cols = {}
    for name, col in (("ffn_ext", "graph_us"), ("eager", "eager_graph_us")):
        try:
            with torch.inference_mode() if direction == "fwd" else contextlib.nullcontext():
                cols[col] = graph_time(cands[name]) * 1e6
        except RuntimeError as e:
            print(f"bench_ffn: {name} {direction} under CUDA-graph capture failed: {e}", file=sys.stderr)
    return cols


# The GEMMs alone, no gating: the candidates that are bounds, not peers.
FLOORS = ("floor", "split_floor")


def count(cfg):
    return len(cfg.dtypes) * len(cfg.tokens) * 2 * len(getattr(cfg, "families", ("projection", "block")))


def run(cfg, timer, progress=None):
    """cfg: device, dtypes (names), dims ((in, d)), tokens ([M]), compile (bool), and optionally
    families (a subset of ("projection", "block")). Returns the rows."""
    dev, cuda = cfg.device, cfg.device.type == "cuda"
    k, d = cfg.dims
    c_swiglu = torch.compile(eager_swiglu, dynamic=False) if cfg.compile else None
    c_block = torch.compile(eager_block, dynamic=False) if cfg.compile else None
    rows_out = []
    for dname in cfg.dtypes:
        dtype = DTYPES[dname]
        m = ffn_ext.nn.FeedForward(k, d, "swiglu", device=dev, dtype=dtype)
        w1, w3, w2 = m.w1, m.w3, m.w2
        w13 = torch.cat([w1.detach(), w3.detach()])  # the floor's operand
        liger = _liger_block(m, k, d) if (LigerSwiGLUMLP is not None and cuda) else None
        for n in cfg.tokens:
            x = torch.randn(n, k, dtype=dtype, device=dev)
            xr = x.clone().requires_grad_(True)
            dy, dz = torch.randn(n, d, dtype=dtype, device=dev), torch.randn(n, k, dtype=dtype, device=dev)
            dh = torch.randn(n, 2 * d, dtype=dtype, device=dev)
            wd, w1d, w3d, w2d = w13, w1.detach(), w3.detach(), w2.detach()
            params = (xr, w1, w3)

            def train(fn, grad, *ins):
                return training_step(fn, ins, grad)

            def module_step(module, *params):  # grads for xr and the module's weights
                return training_step(lambda x_, *_: module(x_), (xr, *params), dz)

            families = {
                "projection": {
                    "fwd": {"ffn_ext": lambda: ffn_ext.swiglu(x, w1d, w3d), "eager": lambda: eager_swiglu(x, w1d, w3d),
                            "floor": lambda: floor_forward(x, wd), "split_floor": lambda: (x @ w1d.T, x @ w3d.T)},
                    "fwd+bwd": {"ffn_ext": train(ffn_ext.swiglu, dy, *params), "eager": train(eager_swiglu, dy, *params),
                                "floor": lambda: floor_training(x, wd, dh),
                                "split_floor": lambda: (x @ w1d.T, x @ w3d.T, (dh[:, :d] @ w1d).addmm_(dh[:, d:], w3d),
                                                        dh[:, :d].T @ x, dh[:, d:].T @ x)},
                },
                "block": {
                    "fwd": {"ffn_ext": lambda: m(x), "eager": lambda: eager_block(x, w1d, w3d, w2d)},
                    "fwd+bwd": {"ffn_ext": module_step(m, w1, w3, w2),
                                "eager": train(eager_block, dz, xr, w1, w3, w2)},
                },
            }
            if c_swiglu is not None:
                families["projection"]["fwd"]["compile"] = lambda: c_swiglu(x, w1d, w3d)
                families["projection"]["fwd+bwd"]["compile"] = train(c_swiglu, dy, *params)
                families["block"]["fwd"]["compile"] = lambda: c_block(x, w1d, w3d, w2d)
                families["block"]["fwd+bwd"]["compile"] = train(c_block, dz, xr, w1, w3, w2)
            if liger is not None:
                families["block"]["fwd"]["liger"] = lambda: liger(x)
                families["block"]["fwd+bwd"]["liger"] = module_step(liger, *liger.parameters())
            for family in [f for f in families if f not in getattr(cfg, "families", families)]:
                del families[family]
            for family, dirs in families.items():
                for direction, cands in dirs.items():
                    if direction == "fwd":
                        with torch.inference_mode():
                            times = timer.compare(cands)
                    else:
                        times = timer.compare(cands)
                    ours = times["ffn_ext"]
                    flops = 2 * n * k * 2 * d * (1 if direction == "fwd" else 3)
                    if family == "block":
                        flops += 2 * n * d * k * (1 if direction == "fwd" else 3)
                    row = {"family": family, "op": "swiglu" if family == "projection" else "FeedForward",
                           "dtype": dname, "M": n, "in": k, "d": d, "dir": direction,
                           "ffn_ext_us": ours * 1e6, "TFLOP/s": flops / ours / 1e12}
                    for name, t in times.items():
                        if name == "ffn_ext":
                            continue
                        row[f"{name}_us"] = t * 1e6
                        if name == "floor":
                            row["of_floor"] = t / ours
                        elif name not in FLOORS:
                            row[f"vs_{name}"] = t / ours
                    if direction == "fwd+bwd":
                        for name, fn in cands.items():
                            if name not in FLOORS:
                                row.update(memory_columns(name, fn, dev))
                    if cuda and n <= (64 if direction == "fwd" else 512):
                        # The kernels alone, back to back: the event-timed figure above can include
                        # the host's time to the first kernel, where that outlasts the L2 flush, and
                        # in a training step the autograd engine's time to each backward launch.
                        row.update(_graph_columns(cands, direction))
                    rows_out.append(row)
                    print_row(row)
                    if progress:
                        progress(f"{family} M={n} {dname} {direction}")
            del x, xr, dy, dz, dh, families
        del m, w1, w3, w2, w13, liger
        if cuda:
            torch.cuda.empty_cache()
    return rows_out


COLUMNS = ["family", "dtype", "M", "in", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "liger_us",
           "floor_us", "split_floor_us", "TFLOP/s", "vs_eager", "vs_compile", "vs_liger", "of_floor", "graph_us",
           "eager_graph_us", *memory_column_names()]


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, "bf16")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d (d_model x d_ff)")
    ap.add_argument("--tokens", default="1,8,64,512,2048,8192")
    args = ap.parse_args()

    dev, cuda, timer, env = setup(args, 30, 5)
    env["liger"] = LigerSwiGLUMLP is not None and cuda
    cfg = SimpleNamespace(device=dev, dtypes=args.dtypes.split(","), compile=not args.no_compile,
                          dims=tuple(int(v) for v in args.dims.split("x")),
                          tokens=[int(t) for t in args.tokens.split(",")])
    rows = run(cfg, timer)
    save("ffn", dev, env, rows, COLUMNS,
         "SwiGLU projection (vs eager, compile, the GEMM floor) and the whole block (vs eager, compile, Liger)",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
