"""Where the time of ffn_ext.swiglu goes, kernel by kernel, beside eager PyTorch and the one-GEMM
floor, at decode and small prefill sizes: the profiler's per-kernel device times for a few calls of
each, forward (inference mode) and forward+backward (torch.autograd.grad).

    python benchmarks/profile_projection.py --device cuda                # in 4096, d 14336, bf16
    python benchmarks/profile_projection.py --device cpu --dims 256x512 --tokens 1,8 --dtype fp32

The suite's timings (run_all.py) say how long a call takes; this says which kernels it runs and
how long each takes, so that a row where ffn_ext loses to eager can be traced to a GEMM algorithm,
an extra kernel or launch gaps. Prints one table per (M, direction, candidate), the top kernels by
device time per call, and writes them to --out (default: stdout only).
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from bench_ffn import eager_swiglu  # noqa: E402  (the eager peer the suite times)
from common import DTYPES, training_step  # noqa: E402


def kernel_table(fn, device, calls, top):
    """(total device us per call, [(name, us per call, count per call)]) of fn's kernels; on the CPU,
    its operators' self CPU time."""
    for _ in range(3):
        fn()
    acts = [torch.profiler.ProfilerActivity.CPU]
    cuda = device.type == "cuda"
    if cuda:
        acts.append(torch.profiler.ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(calls):
            fn()
        if cuda:
            torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = e.self_device_time_total if cuda else e.self_cpu_time_total
        if t <= 0 or (cuda and e.device_type != torch.autograd.DeviceType.CUDA):
            continue
        rows.append((e.key, t / calls, e.count / calls))
    rows.sort(key=lambda r: -r[1])
    return sum(r[1] for r in rows), rows[:top]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d")
    ap.add_argument("--tokens", default="1,8,64", help="comma-separated M")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--out", default=None, help="also write the tables to this file")
    a = ap.parse_args()
    dev, dtype = torch.device(a.device), DTYPES[a.dtype]
    k, d = (int(v) for v in a.dims.split("x"))
    m = ffn_ext.nn.FeedForward(k, d, "swiglu", device=dev, dtype=dtype)  # w3 right after w1
    w1, w3 = m.w1, m.w3
    w13 = torch.cat([w1.detach(), w3.detach()])
    lines = [f"profile_projection: device={dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), "
             f"torch={torch.__version__}, in={k}, d={d}, dtype={a.dtype}, calls={a.calls}"]
    for n in (int(t) for t in a.tokens.split(",")):
        x = torch.randn(n, k, dtype=dtype, device=dev)
        xr = x.clone().requires_grad_(True)
        dy = torch.randn(n, d, dtype=dtype, device=dev)
        w1d, w3d = w1.detach(), w3.detach()
        cands = {
            "fwd": {"ffn_ext": lambda: ffn_ext.swiglu(x, w1d, w3d), "eager": lambda: eager_swiglu(x, w1d, w3d),
                    "floor": lambda: x @ w13.T},
            "fwd+bwd": {"ffn_ext": training_step(ffn_ext.swiglu, (xr, w1, w3), dy),
                        "eager": training_step(eager_swiglu, (xr, w1, w3), dy)},
        }
        for direction, fns in cands.items():
            for name, fn in fns.items():
                if direction == "fwd":
                    with torch.inference_mode():
                        total, rows = kernel_table(fn, dev, a.calls, a.top)
                else:
                    total, rows = kernel_table(fn, dev, a.calls, a.top)
                lines.append(f"\nM={n} {direction} {name}: {total:.1f} us of kernels per call")
                lines += [f"  {us:9.1f} us  x{cnt:g}  {key[:110]}" for key, us, cnt in rows]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
