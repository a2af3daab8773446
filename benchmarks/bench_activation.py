"""Element-wise activations: ffn_ext vs PyTorch eager vs torch.compile, forward and backward.

    python benchmarks/bench_activation.py --device cuda            # 1 MB .. 1 GB, fp32/bf16/fp16
    python benchmarks/bench_activation.py --device cpu --max-mb 256

For each op, dtype, size (bytes of x) and direction it reports the median time, the achieved
bandwidth (forward moves 2 n elements: read x, write y; backward 3 n: read grad and x, write dx),
and that bandwidth as a fraction of a device-to-device copy of the same n elements measured in the
same run ("of_copy"); ratios against eager and compile are time ratios (>1: ffn_ext faster).
Results go to benchmarks/results/activation-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys
from types import SimpleNamespace

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import DTYPES, add_common_args, setup, print_row, save  # noqa: E402

aten = torch.ops.aten
ops = torch.ops.ffn_ext
BETA = 1.5


def _swish_eager(x):
    return x * torch.sigmoid(BETA * x)


def _swish_bwd_eager(g, x):
    s = torch.sigmoid(BETA * x)
    return g * (s + BETA * x * s * (1 - s))


# A learnable beta (nn.Swish(learnable=True)): a 0-dim float32 tensor (float64 beside float64 x),
# whose gradient the backward also returns (per element in float, then summed).
_BETA_T = {}


def _beta_t(x):
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    key = (x.device, dt)
    if key not in _BETA_T:
        _BETA_T[key] = torch.tensor(BETA, dtype=dt, device=x.device)
    return _BETA_T[key]


def _swish_t_eager(x):
    return x * torch.sigmoid(_beta_t(x) * x)


def _swish_t_bwd_eager(g, x):
    b = _beta_t(x)
    s = torch.sigmoid(b * x)
    gs1 = g * s * (1 - s)
    return g * s + b * x * gs1, (x * x * gs1).sum()


# name: (ffn_ext fwd, ffn_ext bwd, eager fwd, eager bwd). The forwards are the public functions
# (ffn_ext.gelu, F.gelu: what a program calls); the backwards are the ops autograd runs, through
# torch.ops on both sides: ffn_ext's *_backward and PyTorch's aten.*_backward (for swish, the
# composed expression).
OPS = {
    "gelu": (lambda x: ffn_ext.gelu(x), lambda g, x: ops.gelu_backward(g, x, "none"),
             lambda x: F.gelu(x), lambda g, x: aten.gelu_backward(g, x)),
    "gelu_tanh": (lambda x: ffn_ext.gelu(x, "tanh"), lambda g, x: ops.gelu_backward(g, x, "tanh"),
                  lambda x: F.gelu(x, approximate="tanh"), lambda g, x: aten.gelu_backward(g, x, approximate="tanh")),
    "silu": (ffn_ext.silu, ops.silu_backward, F.silu, aten.silu_backward),
    "swish": (lambda x: ffn_ext.swish(x, BETA), lambda g, x: ops.swish_backward(g, x, BETA), _swish_eager,
              _swish_bwd_eager),
    "relu": (ffn_ext.relu, ops.relu_backward, torch.relu, lambda g, x: aten.threshold_backward(g, x, 0)),
    # bytes counted as for swish (the floor); the beta gradient is extra: summed inside the CPU's
    # loop, stored per element and then summed on CUDA
    "swish_tensor": (lambda x: ffn_ext.swish(x, _beta_t(x)),
                     lambda g, x: ops.swish_backward.Tensor(g, x, _beta_t(x), True),
                     _swish_t_eager, _swish_t_bwd_eager),
}


def count(cfg):
    """Rows run() will measure (for the suite's progress bar)."""
    return len(cfg.dtypes) * len(cfg.sizes_mb) * len(cfg.ops) * 2


def run(cfg, timer, progress=None):
    """cfg: device, dtypes (names), sizes_mb, ops, compile (bool). Returns the measured rows."""
    dev, cuda = cfg.device, cfg.device.type == "cuda"
    compiled = {}
    if cfg.compile:
        for name in cfg.ops:
            _, _, ef, eb = OPS[name]
            compiled[name] = (torch.compile(ef, dynamic=True), torch.compile(eb, dynamic=True))
    rows = []
    for dname in cfg.dtypes:
        dtype = DTYPES[dname]
        es = torch.tensor([], dtype=dtype).element_size()
        for mb in cfg.sizes_mb:
            n = int(mb * 2**20) // es
            x = torch.randn(n, dtype=dtype, device=dev)
            g = torch.randn(n, dtype=dtype, device=dev)
            dst = torch.empty_like(x)
            t_copy = timer(lambda: dst.copy_(x), reps=max(5, timer.reps // 2))
            copy_bw = 2 * n * es / t_copy
            for name in cfg.ops:
                ff, fb, ef, eb = OPS[name]
                for direction, ours, eager, nbytes, args_ in (
                    ("fwd", ff, ef, 2 * n * es, (x,)),
                    ("bwd", fb, eb, 3 * n * es, (g, x)),
                ):
                    cands = {"ours": lambda: ours(*args_), "eager": lambda: eager(*args_)}
                    if compiled:
                        comp = compiled[name][0 if direction == "fwd" else 1]
                        cands["compile"] = lambda: comp(*args_)
                    times = timer.compare(cands)
                    t_ours, t_eager = times["ours"], times["eager"]
                    row = {
                        "family": "activation", "op": name, "dtype": dname, "MB": mb, "dir": direction,
                        "ffn_ext_us": t_ours * 1e6, "eager_us": t_eager * 1e6,
                        "GB/s": nbytes / t_ours / 1e9, "copy_GB/s": copy_bw / 1e9,
                        "of_copy": nbytes / t_ours / copy_bw,
                        "vs_eager": t_eager / t_ours,
                    }
                    if compiled:
                        t_comp = times["compile"]
                        row["compile_us"] = t_comp * 1e6
                        row["vs_compile"] = t_comp / t_ours
                    rows.append(row)
                    print_row(row)
                    if progress:
                        progress(f"activation {name} {dname} {mb:g} MB {direction}")
            del x, g, dst
            if cuda:
                torch.cuda.empty_cache()
    return rows


COLUMNS = ["op", "dtype", "MB", "dir", "ffn_ext_us", "eager_us", "compile_us", "GB/s", "copy_GB/s",
           "of_copy", "vs_eager", "vs_compile"]


def main():
    ap = argparse.ArgumentParser()
    add_common_args(ap, ",".join(DTYPES))
    ap.add_argument("--min-mb", type=float, default=1)
    ap.add_argument("--max-mb", type=float, default=1024)
    ap.add_argument("--ops", default=",".join(OPS))
    args = ap.parse_args()

    dev, cuda, timer, env = setup(args, 30, 7)
    sizes, mb = [], args.min_mb
    while mb <= args.max_mb:
        sizes.append(mb)
        mb *= 4
    cfg = SimpleNamespace(device=dev, dtypes=args.dtypes.split(","), sizes_mb=sizes,
                          ops=args.ops.split(","), compile=not args.no_compile)
    rows = run(cfg, timer)
    save("activation", dev, env, rows, COLUMNS, "Element-wise activations: ffn_ext vs eager vs torch.compile",
         out_dir=args.out_dir)


if __name__ == "__main__":
    main()
