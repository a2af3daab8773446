"""Timing helpers shared by the benchmark scripts.

CUDA: CUDA events around each call, after warm-up, with L2 flushed before every timed call (a
write of 2x the L2 size) so that even the 1 MB cases measure DRAM traffic; the median of the
repetitions is reported. CPU: wall time (perf_counter), median, with the thread count recorded.
Candidates compared in one row are timed in turn (Timer.compare).
Every figure is meant to be read beside the anchors measured in the same run (a device-to-device
copy of the same bytes); absolute times from different runs do not compare.
"""

import datetime
import json
import os
import platform
import statistics
import sys
import time

import torch

from ffn_ext._memory import memory_of


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Timer:
    def __init__(self, device, reps=20, warmup=3):
        self.device = torch.device(device)
        self.reps, self.warmup = reps, warmup
        self.flush = None
        if self.device.type == "cuda":
            l2 = getattr(torch.cuda.get_device_properties(self.device), "L2_cache_size", 50 << 20)
            self.flush = torch.empty(2 * l2 // 4 + 1, dtype=torch.float32, device=self.device)

    def __call__(self, fn, reps=None):
        """Median seconds of fn() over reps calls."""
        return self.compare({"fn": fn}, reps)["fn"]

    def compare(self, fns, reps=None):
        """{name: median seconds of fn()} for a dict of candidates, timed in turn, one call of each
        per round, so that a drift of the clocks during the measurement (warm-up, heat) falls on
        all of them alike instead of on whichever ran last."""
        reps = reps or self.reps
        for fn in fns.values():
            for _ in range(self.warmup):
                fn()
        times = {name: [] for name in fns}
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        for _ in range(reps):
            for name, fn in fns.items():
                if cuda:
                    self.flush.zero_()
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    fn()
                    end.record()
                    end.synchronize()
                    times[name].append(start.elapsed_time(end) / 1e3)
                else:
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
        return {name: statistics.median(t) for name, t in times.items()}


def call_time(fn, calls=200, reps=5):
    """Median seconds per call of fn() called back to back from Python, `calls` calls between two
    synchronizations: the wall time of a call as a program sees it. Where the kernels are shorter
    than the host's work for a call (decode shapes), this is the cost of the Python call, the
    dispatcher and the launch; otherwise the kernel's."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def graph_time(fn, calls=20, reps=20):
    """Median seconds per call of fn() under CUDA-graph replay: `calls` calls captured in one graph
    (no launch or Python cost, the kernels back to back), the replay timed with CUDA events."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / calls)
    return statistics.median(times)


def training_step(forward, inputs, grad):
    """One forward+backward: forward(*inputs), then torch.autograd.grad w.r.t. inputs (nothing is
    accumulated into .grad). The forward alone, with autograd recording, is its .forward."""
    def step():
        return torch.autograd.grad(forward(*inputs), inputs, grad)

    step.forward = lambda: forward(*inputs)
    return step


def memory_column_names(peers=("ffn_ext", "eager", "compile", "liger")):
    """The report columns that memory_columns fills, for these peers: peak_MB_*, then saved_MB_*."""
    return [f"{kind}_MB_{p}" for kind in ("peak", "saved") for p in peers]


def memory_columns(name, step, device):
    """{peak_MB_<name>, saved_MB_<name>} of a training_step: the most memory one forward+backward
    holds at any moment beyond what was allocated before it, and what its forward leaves allocated
    (the output and whatever autograd saved for the backward: the activation memory a model holds
    per layer until its backward). MiB; CUDA's allocator statistics, or on a CPU the allocations
    the profiler sees (ffn_ext._memory.memory_of, shared with the tests)."""
    kept = []
    saved = memory_of(lambda: kept.append(step.forward()), device)[1]
    del kept
    peak_key, saved_key = memory_column_names((name,))
    return {peak_key: memory_of(step, device)[0] / 2**20, saved_key: saved / 2**20}


class Progress:
    """A one-line progress bar on stderr: progress(label[, steps]) after each measured row."""

    def __init__(self, total, width=30):
        self.total, self.done, self.width, self.t0 = max(1, total), 0, width, time.perf_counter()

    def __call__(self, label, steps=1):
        self.done = min(self.total, self.done + steps)
        filled = self.width * self.done // self.total
        elapsed = time.perf_counter() - self.t0
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                         f"{elapsed:6.0f}s  {label[:60]:<60}")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def add_common_args(ap, dtypes):
    """The options every benchmark script takes: --device, --dtypes, --reps, --no-compile, --out-dir."""
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default=dtypes)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out-dir", default=None, help="where the .json and .md go (default benchmarks/results)")


def allow_recompiles(n=1024):
    """The benchmarks compile one function per shape, dtype and grad mode (dynamic=False); past
    dynamo's recompile limit (8 per function) it would silently run eager, and the "compile"
    figures would be eager's."""
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), n))


def setup(args, cuda_reps, cpu_reps):
    """(device, is_cuda, Timer, environment) from the common options."""
    allow_recompiles()
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    return dev, cuda, Timer(dev, reps=args.reps or (cuda_reps if cuda else cpu_reps)), environment(dev)


def environment(device):
    env = {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.device(device).type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, sms=p.multi_processor_count, driver=_driver())
    return env


def _driver():
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        return out.splitlines()[0] if out else None
    except Exception:
        return None


def print_row(row):
    """One measured row as key=value pairs, printed as soon as it is measured."""
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def save(name, device, env, rows, columns, title, out_dir=None):
    """Writes <out_dir>/<name>-<device>-<date>.json and .md (out_dir: benchmarks/results by
    default), prints the markdown table and where it went; returns the markdown and the stem."""
    here = out_dir or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(here, exist_ok=True)
    dev = torch.device(device).type
    stem = os.path.join(here, f"{name}-{dev}-{env['date']}")
    with open(stem + ".json", "w") as f:
        json.dump({"env": env, "rows": rows}, f, indent=1)
    lines = [f"# {title}", "", "Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    md = "\n".join(lines) + "\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"saved {stem}.json and {stem}.md")
    return md, stem


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)
