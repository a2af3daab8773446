"""Where the time of ffn_ext.swiglu goes, kernel by kernel, beside eager PyTorch and the one-GEMM
floor, at decode and small prefill sizes: the profiler's per-kernel device times for a few calls of
each, forward (inference mode) and forward+backward (torch.autograd.grad).

    python benchmarks/profile_projection.py --device cuda                # in 4096, d 14336, bf16
    python benchmarks/profile_projection.py --device cpu --dims 256x512 --tokens 1,8 --dtype fp32

The suite's timings (run_all.py) say how long a call takes; this says which kernels it runs and
how long each takes, so that a row where ffn_ext loses to eager can be traced to a GEMM algorithm,
an extra kernel or launch gaps. Prints one table per (M, direction, candidate), the top kernels by
device time per call, and writes them to --out as they come (default: stdout only).

On CUDA each candidate, forward and forward+backward, is also seen under the suite's own condition
(cold_timeline: L2 flushed, one call, a synchronization): its CUDA-event time beside the GPU's wait
for the first kernel after the flush, the kernels' time and the gaps between them. On an H200
(torch 2.11, 2026-11-27, 5ada78e) swiglu's forward at M = 64 took 119 us to eager's 112 in the
suite, while its kernels took 66.8 us to eager's 71.2 here and 67.5 to 73.1 under graph replay;
its forward+backward at M = 512 took 838 us to eager's 755, the floor's three GEMMs 604: this says
where the differences go (the GEMMs, the gating kernels, or the GPU waiting for the host).
"""

import argparse
import contextlib
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from bench_ffn import eager_swiglu, floor_forward, floor_training  # noqa: E402  (what the suite times)
from common import DTYPES, Timer, training_step  # noqa: E402


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


def device_kernels(prof):
    """The profiler's device events (kernels, memsets, copies) as (name, start us, end us), by start."""
    evs = [(e.name, e.time_range.start, e.time_range.end) for e in prof.events()
           if e.device_type == torch.autograd.DeviceType.CUDA]
    return sorted(evs, key=lambda e: e[1])


_ACTS = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]


def flush_kernel_names(flush):
    """The names of the device events that flush() makes (cold_timeline's call separators)."""
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=_ACTS) as prof:
        flush()
        torch.cuda.synchronize()
    return {name for name, _, _ in device_kernels(prof)}


def cold_timeline(fn, flush, flush_names, calls):
    """fn under the suite's timing condition (benchmarks/common.py Timer: L2 flushed, then one call,
    then a synchronization), as the profiler sees it. Per call: "wait", from the end of the flush to
    fn's first kernel (the GPU idle while the host is still on its way to the first launch; the
    suite's CUDA-event time counts it), "kernels", the sum of fn's kernel times with a cold L2, and
    "gaps", the idle time between fn's kernels. Medians over the calls, in us. flush_names:
    flush_kernel_names(flush)."""
    for _ in range(3):
        flush()
        fn()
        torch.cuda.synchronize()
    with torch.profiler.profile(activities=_ACTS) as prof:
        for _ in range(calls):
            flush()
            fn()
            torch.cuda.synchronize()
    per_call, cur, flush_end = [], None, None
    for name, start, end in device_kernels(prof):
        if name in flush_names:
            cur = None
            flush_end = end
            continue
        if cur is None:
            cur = {"wait": start - flush_end, "kernels": 0.0, "gaps": 0.0, "last": start}
            per_call.append(cur)
        cur["kernels"] += end - start
        cur["gaps"] += max(0.0, start - cur["last"])
        cur["last"] = max(cur["last"], end)
    med = lambda k: statistics.median(c[k] for c in per_call)  # noqa: E731
    return {k: med(k) for k in ("wait", "kernels", "gaps")}, len(per_call)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dims", default="4096x14336", help="in_features x d")
    ap.add_argument("--tokens", default="1,8,64,512", help="comma-separated M")
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
    timer = Timer(dev, reps=20) if dev.type == "cuda" else None
    flush_names = flush_kernel_names(timer.flush.zero_) if timer is not None else None
    # Each line printed and written as it comes, so that a run cut off by a time limit keeps what it did.
    out = open(a.out, "w") if a.out else None  # noqa: SIM115 (open for the whole run)

    def emit(*new):
        for line in new:
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()

    emit(f"profile_projection: device={dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), "
         f"torch={torch.__version__}, in={k}, d={d}, dtype={a.dtype}, calls={a.calls}")
    for n in (int(t) for t in a.tokens.split(",")):
        x = torch.randn(n, k, dtype=dtype, device=dev)
        xr = x.clone().requires_grad_(True)
        dy = torch.randn(n, d, dtype=dtype, device=dev)
        dh = torch.randn(n, 2 * d, dtype=dtype, device=dev)  # the floor's packed gradient
        w1d, w3d = w1.detach(), w3.detach()
        cands = {
            "fwd": {"ffn_ext": lambda: ffn_ext.swiglu(x, w1d, w3d), "eager": lambda: eager_swiglu(x, w1d, w3d),
                    "floor": lambda: floor_forward(x, w13)},
            "fwd+bwd": {"ffn_ext": training_step(ffn_ext.swiglu, (xr, w1, w3), dy),
                        "eager": training_step(eager_swiglu, (xr, w1, w3), dy),
                        "floor": lambda: floor_training(x, w13, dh)},
        }
        for direction, fns in cands.items():
            # forward: inference, as the suite times it; forward+backward: autograd recording
            mode = torch.inference_mode if direction == "fwd" else contextlib.nullcontext
            for name, fn in fns.items():
                with mode():
                    total, rows = kernel_table(fn, dev, a.calls, a.top)
                emit(f"\nM={n} {direction} {name}: {total:.1f} us of kernels per call",
                     *(f"  {us:9.1f} us  x{cnt:g}  {key[:110]}" for key, us, cnt in rows))
            if timer is not None:
                # The suite's condition: its time per call beside what the GPU did in it.
                with mode():
                    timed = timer.compare(fns)
                    for name, fn in fns.items():
                        head = f"M={n} {direction} {name} after an L2 flush:"
                        try:
                            t, seen = cold_timeline(fn, timer.flush.zero_, flush_names, a.calls)
                            emit(f"{head} timed {timed[name] * 1e6:.1f} us (the suite's method); wait for the first "
                                 f"kernel {t['wait']:.1f} us, kernels {t['kernels']:.1f} us, gaps between them "
                                 f"{t['gaps']:.1f} us ({seen} calls)")
                        except Exception as e:  # noqa: BLE001 (a profiler without device events: say so)
                            emit(f"{head} timeline unavailable ({e!r})")
    if out:
        out.close()


if __name__ == "__main__":
    main()
