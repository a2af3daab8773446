"""An experiment, not a suite member: the hardware counters (Nsight Compute) of the gating kernels
beside a device copy, to tell why a kernel falls short of copy bandwidth where the benchmarks
only say that it does (issue 3: bf16 SiLU gating forward + backward at 0.60 of the byte floor on an
H200, 2026-11-27; fp32 at 0.99).

    python benchmarks/ncu_gating.py --out-dir DIR        # CUDA; runs ncu on itself (ncu on PATH)
    python benchmarks/ncu_gating.py --parse EXPORT.csv   # the table again from a saved export
    python benchmarks/ncu_gating.py --check-parser       # the parser on a made-up export (no GPU)

One launch of each kernel, on the packed layout at 8192 x 14336 (--shape): copies of the forward's
and the backward's bytes (3 and 5 rows x d elements; an element-wise kernel, torch.neg into a second
buffer, since ncu does not see the cudaMemcpy that a copy_ of one dtype is), the SiLU gating
forward, and the gating backward (torch.ops.ffn_ext.act_and_mul_packed_backward, one kernel) for
SiLU, exact and tanh GELU, sigmoid, ReLU and identity in bf16, SiLU in fp16 and fp32. The inputs are
made before cudaProfilerStart, so ncu (--profile-from-start off) sees these launches and nothing
else. ncu runs with --clock-control none (the device README: leave the clocks alone) and its default
cache control (caches flushed before each replay pass), so each kernel reads DRAM cold.

Columns: us (gpu__time_duration), of_copy (the DRAM bytes a second against the copy anchor's of the
same direction), dram_pct and sm_pct (dram__throughput and sm__throughput, % of peak), issue_pct
(smsp__issue_active: the cycles a scheduler issued, % of active cycles), occupancy_pct
(sm__warps_active: achieved, % of 64 warps), regs, inst_per_elem (warp instructions x 32 / the
elements of d computed, rows x d), and the three largest stall reasons in cycles per issued
instruction (smsp__average_warps_issue_stalled_*). How to read them: a kernel at the copy's dram_pct
is at the floor; one whose issue_pct nears 100 is issue-bound (fewer instructions an element move
it, bounds and unroll do not); one with low dram_pct, low issue_pct and long_scoreboard on top waits
on its loads with too few bytes in flight (occupancy or packs a thread: explore_launch_bounds.py's
variants); lg_throttle on top: too many memory instructions queued (wider or fewer loads).
Prediction (sm_90 SASS of the bf16 SiLU gating backward row kernel, nvcc 13.0, 2026-11-28: 1232
instructions for 4 packs of 8 elements and the row's tail, 80 registers, no spill): inst_per_elem
25-38; issued at 4 a cycle a multiprocessor (132 at ~1.98 GHz) that is 95-135 us of the kernel's
~280 at copy bandwidth, so issue_pct a third to a half and dram_pct near the copy's. A bf16 backward
far below the copy with such an issue_pct is waiting, not computing.
Results: <out-dir>/ncu-gating-cuda-<date>.{md,json} (the environment is the profiled GPU's), beside
<out-dir>/ncu-gating-<date>.csv, ncu's own export (--page raw), and its .labels.json.
"""

import argparse
import csv
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # common (imported where needed: it imports torch, which the parser does not need)

METRICS = [
    "gpu__time_duration.sum",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "smsp__issue_active.avg.pct_of_peak_sustained_active",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "launch__registers_per_thread",
    "smsp__inst_executed.sum",
    # Every stall reason that the GPU counts, without naming them one by one (names vary by GPU).
    r"regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio",
]
STALL_PREFIX, STALL_SUFFIX = "smsp__average_warps_issue_stalled_", "_per_issue_active.ratio"
# Unit of a value in ncu's units row -> factor to the base unit (seconds' nanoseconds, bytes). The
# run asks for base units (--print-units base); these serve a --parse of an export made without.
# Units that are not scales of these (inst, %, register/thread, ratio) are taken as they are.
UNSCALED = {"", "inst", "%", "register/thread", "ratio", "warp", "block", "thread", "cycle"}
UNITS = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9,
         "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Tbyte": 1e12,
         "KB": 1e3, "MB": 1e6, "GB": 1e9, "ns": 1.0, "us": 1e3, "ms": 1e6}


def cases():
    """[(label, dtype name, kind, activation, elements of traffic per element of d)] in launch order."""
    out = [("copy fwd bytes", "bf16", "copy", None, 3), ("copy bwd bytes", "bf16", "copy", None, 5),
           ("silu fwd", "bf16", "fwd", "silu", 3)]
    for act in ("silu", "gelu", "gelu_tanh", "sigmoid", "relu", "identity"):
        out.append((f"{act} bwd", "bf16", "bwd", act, 5))
    out += [("silu bwd", "fp16", "bwd", "silu", 5), ("silu bwd", "fp32", "bwd", "silu", 5)]
    return out


def launch_all(rows, d, labels_path):
    """The child under ncu: every case's inputs first, then one launch of each between
    cudaProfilerStart and Stop; the labels, in launch order, and the environment (the GPU's, for
    the report) go to labels_path."""
    import torch

    import ffn_ext  # noqa: F401  (the installed package, as the other scripts: registers torch.ops.ffn_ext)
    from common import environment

    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    dev = torch.device("cuda")
    plan, labels = [], []
    for label, dname, kind, act, traffic in cases():
        dt = dtypes[dname]
        if kind == "copy":
            # A kernel that reads and writes these bytes once (negation): a copy_ between tensors
            # of one dtype is a cudaMemcpy, which ncu does not profile.
            src = torch.randn(rows * traffic * d // 2, dtype=dt, device=dev)
            dst = torch.empty_like(src)
            plan.append(lambda dst=dst, src=src: torch.neg(src, out=dst))
        else:
            h = torch.randn(rows, 2 * d, dtype=dt, device=dev)
            if kind == "fwd":
                plan.append(lambda h=h, act=act: torch.ops.ffn_ext.act_and_mul_packed(h, act, 1.0))
            else:
                dy = torch.randn(rows, d, dtype=dt, device=dev)
                plan.append(lambda h=h, dy=dy, act=act: torch.ops.ffn_ext.act_and_mul_packed_backward(dy, h, act, 1.0))
        labels.append({"label": label, "dtype": dname, "traffic": traffic, "rows": rows, "d": d})
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for fn in plan:
        fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    with open(labels_path, "w") as f:
        json.dump({"env": environment(dev), "cases": labels}, f)


def _number(text):
    text = text.strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def parse(text):
    """ncu --csv --page raw (one row a launch, a metric a column, a units row under the header,
    perhaps ==PROF== lines and the program's own output before it) -> [{metric: value}] in launch
    order, times in ns and bytes in bytes."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        raise ValueError("no ncu raw-page CSV header (a line starting with \"ID\") in the export")
    table = list(csv.reader(lines[start:]))
    header, body = table[0], table[1:]
    units = {}
    if body and not body[0][0].strip():  # the units row: no ID
        units = dict(zip(header, body[0]))
        body = body[1:]
    launches, unknown = [], set()
    for r in body:
        if not r or not r[0].strip().isdigit():  # (==PROF== lines after the table, blank lines)
            continue
        rec = {"kernel": r[header.index("Kernel Name")] if "Kernel Name" in header else ""}
        for name, cell in zip(header, r):
            v = _number(cell)
            if v is not None and "__" in name:
                unit = units.get(name, "").strip()
                if unit not in UNITS and unit not in UNSCALED and unit not in unknown:
                    unknown.add(unit)  # said, not silently taken as 1: a scaled count would be off
                    print(f"ncu_gating.py: unit {unit!r} of {name} taken as it is", file=sys.stderr)
                rec[name] = v * UNITS.get(unit, 1.0)
        launches.append(rec)
    return launches


def table(launches, labels):
    """The report's rows: each launch beside its label, and its DRAM rate against the copy's."""
    if len(launches) != len(labels):
        raise ValueError(f"ncu profiled {len(launches)} launches for {len(labels)} cases "
                         "(each case must launch exactly one kernel)")
    rate = {}
    for rec, lab in zip(launches, labels):
        t = rec.get("gpu__time_duration.sum")
        b = rec.get("dram__bytes_read.sum", 0.0) + rec.get("dram__bytes_write.sum", 0.0)
        rec["_rate"] = b / t if t else None
        if lab["label"].startswith("copy"):
            rate[lab["traffic"]] = rec["_rate"]
    out = []
    for rec, lab in zip(launches, labels):
        # "selected" is 1 per issue by definition (the warp that issued), no stall: left out.
        stalls = sorted(((k[len(STALL_PREFIX):-len(STALL_SUFFIX)], v) for k, v in rec.items()
                         if k.startswith(STALL_PREFIX) and k.endswith(STALL_SUFFIX)
                         and k != STALL_PREFIX + "selected" + STALL_SUFFIX), key=lambda kv: -kv[1])
        copy_rate = rate.get(lab["traffic"])
        inst = rec.get("smsp__inst_executed.sum")
        row = {"case": lab["label"], "dtype": lab["dtype"], "us": rec.get("gpu__time_duration.sum", math.nan) * 1e-3,
               "of_copy": rec["_rate"] / copy_rate if rec["_rate"] and copy_rate else None,
               "dram_pct": rec.get("dram__throughput.avg.pct_of_peak_sustained_elapsed"),
               "sm_pct": rec.get("sm__throughput.avg.pct_of_peak_sustained_elapsed"),
               "issue_pct": rec.get("smsp__issue_active.avg.pct_of_peak_sustained_active"),
               "occupancy_pct": rec.get("sm__warps_active.avg.pct_of_peak_sustained_active"),
               "regs": rec.get("launch__registers_per_thread"),
               "inst_per_elem": inst * 32 / (lab["rows"] * lab["d"]) if inst is not None else None,
               "stalls": ", ".join(f"{k} {v:.1f}" for k, v in stalls[:3]),
               "kernel": rec["kernel"][:60]}
        out.append(row)
    return out


COLUMNS = ["case", "dtype", "us", "of_copy", "dram_pct", "sm_pct", "issue_pct", "occupancy_pct", "regs",
           "inst_per_elem", "stalls", "kernel"]


def check_parser():
    """The parser on a made-up export in ncu's raw-page form (quoted cells, a units row, thousands
    separators, ==PROF== lines before the header): figures it must give back."""
    stall = STALL_PREFIX + "{}" + STALL_SUFFIX
    names = ["gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum",
             "smsp__inst_executed.sum", stall.format("long_scoreboard"), stall.format("wait"),
             stall.format("selected")]
    head = ["ID", "Process ID", "Kernel Name"] + names
    units = ["", "", "", "usecond", "Mbyte", "Mbyte", "inst", "", "", ""]
    data = [["0", "7", "copy, the copy", "100", "1,000", "1,000", "10", "1", "2", "1"],
            ["1", "7", "row_kernel", "200", "1,500", "1,000", "3,200", "5.5", "0.5", "1"]]
    text = "==PROF== Connected\nprogram output\n" + "\n".join(
        ",".join(f'"{c}"' for c in r) for r in [head, units] + data) + "\n==PROF== Disconnected from process 7\n"
    launches = parse(text)
    labels = [{"label": "copy x", "dtype": "bf16", "traffic": 5, "rows": 10, "d": 10},
              {"label": "k", "dtype": "bf16", "traffic": 5, "rows": 10, "d": 10}]
    rows = table(launches, labels)
    assert launches[0]["gpu__time_duration.sum"] == 100e3 and launches[0]["kernel"] == "copy, the copy", launches[0]
    assert launches[1]["dram__bytes_read.sum"] == 1.5e9, launches[1]
    got = (rows[1]["us"], rows[1]["of_copy"], rows[1]["inst_per_elem"], rows[1]["stalls"])
    # ("selected", 1 per issue by definition, is no stall: not ranked above wait's 0.5)
    want = (200.0, 2.5e9 / 200e3 / (2e9 / 100e3), 3200 * 32 / 100, "long_scoreboard 5.5, wait 0.5")
    assert got == want, (got, want)
    try:
        table(launches[:1], labels)
    except ValueError:
        pass
    else:
        raise AssertionError("a launch count unlike the case count must be refused")
    print("ncu_gating.py: parser check passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="8192x14336", help="rows x d")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--parse", metavar="EXPORT_CSV", help="report from a saved export (labels beside it)")
    ap.add_argument("--check-parser", action="store_true")
    ap.add_argument("--timeout", type=float, default=100, help="seconds ncu may run")
    ap.add_argument("--child", metavar="LABELS_JSON", help=argparse.SUPPRESS)
    a = ap.parse_args()
    rows, d = (int(v) for v in a.shape.split("x"))
    if a.check_parser:
        return check_parser()
    if a.child:
        return launch_all(rows, d, a.child)
    os.makedirs(a.out_dir, exist_ok=True)
    stem = os.path.join(a.out_dir, f"ncu-gating-{datetime.date.today().isoformat()}")
    if a.parse:
        export, labels_path = a.parse, os.path.splitext(a.parse)[0] + ".labels.json"
    else:
        ncu = shutil.which("ncu")
        if ncu is None:
            sys.exit("ncu_gating.py: no ncu on PATH (Nsight Compute)")
        export, labels_path = stem + ".csv", stem + ".labels.json"
        cmd = [ncu, "--clock-control", "none", "--profile-from-start", "off", "--csv", "--page", "raw",
               "--print-units", "base",
               "--metrics", ",".join(METRICS), sys.executable, os.path.abspath(__file__), "--shape", a.shape,
               "--child", labels_path]
        print(" ".join(cmd), flush=True)
        # Into the file as it comes: a run cut off by a time limit keeps what ncu wrote (--parse).
        # In a session of its own, so that a timeout stops the profiled process with ncu (killing ncu
        # alone left it running, holding GPU memory, beside the next step's measurements).
        with open(export, "w") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                _, err = p.communicate(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                sys.exit(f"ncu_gating.py: ncu ran past {a.timeout} s; what it wrote is in {export}")
        if p.returncode != 0:
            with open(export) as f:
                tail = f.read()[-2000:]
            sys.exit(f"ncu_gating.py: ncu exited {p.returncode}:\n{err[-3000:]}\n{tail}")
    with open(export) as f:
        launches = parse(f.read())
    with open(labels_path) as f:
        child = json.load(f)
    env, labels = child["env"], child["cases"]
    if labels:  # the shape the child ran (a --parse of another run's export need not repeat --shape)
        rows, d = labels[0]["rows"], labels[0]["d"]
    title = f"Gating kernels under Nsight Compute, {rows} x {d} (one launch each, DRAM cold)"
    try:
        rows_out, problem = table(launches, labels), None
    except ValueError as e:  # the launches still come back, each by its kernel's name
        problem = str(e)
        rows_out = table(launches, [{"label": f"launch {i}", "dtype": "?", "traffic": None, "rows": rows, "d": d}
                                    for i in range(len(launches))])
        title += f". NOT MATCHED TO THE CASES: {problem}"
    from common import save

    save("ncu-gating", "cuda", env, rows_out, COLUMNS, title, out_dir=a.out_dir)  # (prints where)
    print(f"ncu's export: {export}")
    if problem:
        sys.exit(f"ncu_gating.py: {problem}")


if __name__ == "__main__":
    main()
