"""The benchmark suite: every family of ffn_ext against its peers and the hardware limits, in one
command, with a results page and plots.

    python benchmarks/run_all.py                       # the best device present, full sizes
    python benchmarks/run_all.py --device cpu --quick  # tiny sizes, 2 repetitions (CI's smoke run)
    python benchmarks/run_all.py --only gating,projection

Families (the per-family scripts hold the measurements; benchmarks/README.md says what each figure
means):
  activation  gelu, gelu_tanh, silu, swish, relu; forward and backward      bench_activation.py
  gating      silu_and_mul at every size; gelu, gelu_tanh, sigmoid (GLU),    bench_glu.py
              relu and identity (bilinear) at one large size; forward and
              forward+backward
  projection  swiglu(x, w1, w3); forward and forward+backward               bench_ffn.py
  block       FeedForward (swiglu + w2); forward and forward+backward       bench_ffn.py

Writes <out-dir>/<device>-<date>.json (environment and every row), <device>-<date>.md (the report:
a summary, then each family's table with the ratio to the best peer and to the limit, flagging
every row where ffn_ext is slower than a peer) and PNG plots: <device>-<date>-bandwidth.png (the
fraction of copy bandwidth per op and size) and <device>-<date>-swiglu.png (swiglu's time against
M beside eager, torch.compile and the GEMM floor). --out-dir defaults to benchmarks/results.
"""

import argparse
import datetime
import json
import os
import sys
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_activation  # noqa: E402
import bench_ffn  # noqa: E402
import bench_glu  # noqa: E402
from common import Progress, Timer, allow_recompiles, environment, memory_column_names  # noqa: E402

FAMILIES = ("activation", "gating", "projection", "block")
PEERS = ("eager", "compile", "liger")


# The gating family times SiLU at every shape and dtype, the other activations at one large shape.
OTHER_GATES = ["gelu", "gelu_tanh", "sigmoid", "relu", "identity"]


def configs(device, quick, compile_):
    """Per-family configurations: the issue's sizes on CUDA, smaller ones on a CPU, tiny ones with
    --quick. Returns {family: (module, cfg)}."""
    cuda = device.type == "cuda"
    ns = lambda **kw: SimpleNamespace(device=device, compile=compile_, **kw)  # noqa: E731
    if quick:
        act = ns(dtypes=["fp32"], sizes_mb=[0.0625], ops=["gelu", "silu"])
        glu = ns(dtypes=["fp32"], shapes=[(4, 64)], more=SimpleNamespace(activations=["gelu"], dtypes=["fp32"], shapes=[(4, 64)]))
        ffn = dict(dtypes=["fp32"], dims=(32, 64), tokens=[1, 8])
    elif cuda:
        act = ns(dtypes=["fp32", "bf16", "fp16"], sizes_mb=[1, 4, 16, 64, 256, 1024], ops=list(bench_activation.OPS))
        glu = ns(dtypes=["bf16", "fp16", "fp32"],
                 shapes=[(1, 14336), (8, 14336), (128, 14336), (4096, 11008), (8192, 14336), (16384, 28672)],
                 more=SimpleNamespace(activations=OTHER_GATES, dtypes=["bf16"], shapes=[(8192, 14336)]))
        ffn = dict(dtypes=["bf16"], dims=(4096, 14336), tokens=[1, 8, 64, 512, 2048, 8192])
    else:
        act = ns(dtypes=["fp32", "bf16"], sizes_mb=[1, 4, 16, 64], ops=list(bench_activation.OPS))
        glu = ns(dtypes=["fp32", "bf16"], shapes=[(1, 14336), (8, 14336), (128, 14336), (2048, 4096)],
                 more=SimpleNamespace(activations=OTHER_GATES, dtypes=["bf16"], shapes=[(2048, 4096)]))
        ffn = dict(dtypes=["fp32"], dims=(1024, 3584), tokens=[1, 16, 512, 2048])
    return {
        "activation": (bench_activation, act),
        "gating": (bench_glu, glu),
        "projection": (bench_ffn, ns(families=("projection",), **ffn)),
        "block": (bench_ffn, ns(families=("block",), **ffn)),
    }


def best_peer(row):
    times = {p: row[f"{p}_us"] for p in PEERS if isinstance(row.get(f"{p}_us"), (int, float))}
    if not times:
        return None, None
    name = min(times, key=times.get)
    return name, times[name]


def annotate(row):
    """Adds best_peer, vs_best (> 1: ffn_ext faster than every peer), of_limit and a flag."""
    name, t = best_peer(row)
    row["best_peer"] = name
    row["vs_best"] = t / row["ffn_ext_us"] if t else None
    row["of_limit"] = row.get("of_copy", row.get("of_floor"))
    slower = [p for p in PEERS if isinstance(row.get(f"{p}_us"), (int, float)) and row[f"{p}_us"] < row["ffn_ext_us"]]
    row["flag"] = ("SLOWER than " + ", ".join(slower)) if slower else ""
    return row


def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


TABLE_COLUMNS = {
    "activation": ["op", "dtype", "MB", "dir", "ffn_ext_us", "eager_us", "compile_us", "of_limit", "best_peer",
                   "vs_best", "flag"],
    "gating": ["op", "dtype", "rows", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "liger_us", "GB/s",
               "of_limit", "ffn_ext_two_us", "eager_two_us", "vs_eager_two", "graph_us", "eager_graph_us", "call_us",
               "eager_call_us", *memory_column_names(), "best_peer", "vs_best", "flag"],
    "projection": ["dtype", "M", "in", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "floor_us", "split_floor_us",
                   "of_limit", "TFLOP/s", "graph_us", "eager_graph_us", *memory_column_names(("ffn_ext", "eager")),
                   "best_peer", "vs_best", "flag"],
    "block": ["dtype", "M", "in", "d", "dir", "ffn_ext_us", "eager_us", "compile_us", "liger_us", "TFLOP/s",
              "graph_us", "eager_graph_us", *memory_column_names(), "best_peer", "vs_best", "flag"],
}
LIMIT = {"activation": "of_limit = achieved GB/s / same-run device copy GB/s",
         "gating": "of_limit = achieved GB/s / same-run device copy GB/s",
         "projection": "of_limit = GEMM floor time / ffn_ext time (the floor: the same GEMMs alone); split_floor_us: "
                       "eager's GEMMs alone (two projections, dx from two GEMMs, two weight GEMMs)",
         "block": "no limit measured (the floor of projection applies to its first half)"}


def report(env, rows, families, plots):
    lines = [f"# ffn_ext benchmark suite: {env['device']}, {env['date']}", ""]
    lines.append("Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    lines += ["", "Every ratio is against figures measured in the same run; absolute times from other runs do not "
              "compare. vs_best: the best peer's time / ffn_ext's time (> 1: ffn_ext faster than every peer).", ""]
    lines += ["## Summary", "", "| family | rows | median vs_best | worst vs_best | median of_limit | rows slower than a peer |",
              "|---|---|---|---|---|---|"]
    for fam in families:
        fr = [r for r in rows if r["family"] == fam]
        vb = sorted(r["vs_best"] for r in fr if r["vs_best"] is not None)
        ol = sorted(r["of_limit"] for r in fr if r["of_limit"] is not None)
        med = lambda v: v[len(v) // 2] if v else None  # noqa: E731
        lines.append(f"| {fam} | {len(fr)} | {_fmt(med(vb))} | {_fmt(vb[0] if vb else None)} | {_fmt(med(ol))} | "
                     f"{sum(1 for r in fr if r['flag'])} |")
    for name in plots:
        lines += ["", f"![{os.path.basename(name)}]({os.path.basename(name)})"]
    for fam in families:
        fr = [r for r in rows if r["family"] == fam]
        cols = TABLE_COLUMNS[fam]
        lines += ["", f"## {fam}", "", LIMIT[fam], "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in fr]
    return "\n".join(lines) + "\n"


def plot(rows, stem):
    """PNG plots; returns their paths (none if matplotlib is absent, said in the report)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)", file=sys.stderr)
        return []
    paths = []
    bw = [r for r in rows if r["family"] in ("activation", "gating") and r.get("of_copy") is not None]
    if bw:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for ax, fam in zip(axes, ("activation", "gating")):
            series = {}
            for r in (r for r in bw if r["family"] == fam):
                key = f"{r.get('op', '')} {r['dtype']} {r['dir']}"
                x = r["MB"] if fam == "activation" else r["rows"] * r["d"] * 3 * (2 if r["dtype"] != "fp32" else 4) / 2**20
                series.setdefault(key, []).append((x, r["of_copy"]))
            for key, pts in sorted(series.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key)
            ax.set_xscale("log")
            ax.set_xlabel("MB of x" if fam == "activation" else "MB moved by the forward (3 rows d)")
            ax.set_ylabel("fraction of same-run copy bandwidth")
            ax.set_title(f"{fam}: achieved bandwidth / copy")
            ax.axhline(1.0, color="gray", lw=0.5)
            if series:  # a report written before this family ran has nothing to label
                ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        paths.append(stem + "-bandwidth.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    pr = [r for r in rows if r["family"] == "projection" and r["dir"] == "fwd"]
    if pr:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for key, label in (("ffn_ext_us", "ffn_ext.swiglu"), ("eager_us", "eager"), ("compile_us", "torch.compile"),
                           ("floor_us", "one-GEMM floor")):
            pts = sorted((r["M"], r[key]) for r in pr if isinstance(r.get(key), (int, float)))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens M")
        ax.set_ylabel("time per call (us)")
        r0 = pr[0]
        ax.set_title(f"swiglu(x, w1, w3), in {r0['in']}, d {r0['d']}, {r0['dtype']}, forward")
        ax.legend()
        fig.tight_layout()
        paths.append(stem + "-swiglu.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 2 repetitions: checks the scripts run")
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families: " + ", ".join(FAMILIES))
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args(argv)
    families = [f for f in args.only.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        ap.error(f"--only: unknown families {unknown or args.only!r}; choose from {', '.join(FAMILIES)}")
    allow_recompiles()
    device = torch.device(args.device)
    reps = args.reps or (2 if args.quick else (30 if device.type == "cuda" else 7))
    timer = Timer(device, reps=reps, warmup=1 if args.quick else 3)
    env = environment(device)
    env["reps"] = reps
    env["liger"] = bench_glu.LigerSiLUMulFunction is not None and device.type == "cuda"
    cfgs = configs(device, args.quick, not args.no_compile)
    progress = Progress(sum(cfgs[f][0].count(cfgs[f][1]) for f in families))
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.join(args.out_dir, f"{device.type}-{datetime.date.today().isoformat()}")
    rows, done = [], []
    for fam in families:
        module, cfg = cfgs[fam]
        rows += [annotate(r) for r in module.run(cfg, timer, progress)]
        done.append(fam)
        # Written after every family, so that a run cut short keeps what it measured.
        with open(stem + ".json", "w") as f:
            json.dump({"env": env, "families": done, "rows": rows}, f, indent=1)
        plots = plot(rows, stem)
        md = report(env, rows, done, plots)
        with open(stem + ".md", "w") as f:
            f.write(md)
    summary_end = md.find("\n## ", md.index("## Summary") + 3)
    print(md if summary_end < 0 else md[:summary_end])
    print(f"saved {stem}.json, {stem}.md" + "".join(f", {p}" for p in plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
