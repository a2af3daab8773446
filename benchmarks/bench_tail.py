"""Inputs in the activations' underflow tail: how much slower a call gets when some or all of its
arguments lie where exp leaves float's normal range, against the same call on ordinary inputs.

    python benchmarks/bench_tail.py                      # CPU, 1M elements, fp32 and bf16
    python benchmarks/bench_tail.py --quick              # tiny sizes (CI runs this)

x86 processors run a float operation whose operand or result is subnormal in microcode (~250
cycles here against ~1); the exp-based activations meet such numbers past a fixed |x| (SiLU: 80,
exact GELU: 12.5, tanh-GELU: 9.6; csrc/cpu/activation_cpu_impl.h, "the underflow tail"), where
the CPU loop computes those lanes in double instead. Three kinds of input per op and direction:

  normal    3 randn: no element in the tail
  outliers  normal, with 0.1% of the elements at +-2 limit (LLM activations hold rare large values)
  tail      every element in the tail, uniform in +-[1.2, 3] limit

Rows: ffn_ext's and eager's median times, and `x_normal`: ffn_ext's time over its own time on the
normal input of the same op (1.0: no cost; eager's forms saturate before the tail and have none).
The gating rows are act_and_mul_packed on [rows, 2 d] with the gate half drawn as above.
Results: benchmarks/results/tail-<device>-<date>.{json,md}.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ffn_ext  # noqa: E402
from common import DTYPES, add_common_args, print_row, save, setup  # noqa: E402

ops = torch.ops.ffn_ext
BETA = 1.5

# name: (the |x| past which an element is in the tail, ffn_ext forward, eager forward, ffn_ext
# backward (g, x), eager backward (g, x)). The eager backward is the aten kernel autograd runs.
ACTS = {
    "gelu": (12.5, lambda x: ops.gelu(x, "none"), lambda x: F.gelu(x),
             lambda g, x: ops.gelu_backward(g, x, "none"),
             lambda g, x: torch.ops.aten.gelu_backward(g, x, approximate="none")),
    "gelu_tanh": (9.6, lambda x: ops.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh"),
                  lambda g, x: ops.gelu_backward(g, x, "tanh"),
                  lambda g, x: torch.ops.aten.gelu_backward(g, x, approximate="tanh")),
    "silu": (80.0, ops.silu, F.silu, ops.silu_backward, torch.ops.aten.silu_backward),
    "swish": (80.0 / BETA, lambda x: ops.swish(x, BETA), lambda x: x * torch.sigmoid(BETA * x),
              lambda g, x: ops.swish_backward(g, x, BETA), None),
}
GATES = {"silu": 80.0, "gelu": 12.5, "gelu_tanh": 9.6}


def draw(kind, n, limit, gen):
    """float64 values of one kind of input (see the module's docstring)."""
    x = 3 * torch.randn(n, generator=gen, dtype=torch.float64)
    if kind == "outliers":
        at = torch.rand(n, generator=gen) < 1e-3
        sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
        x = torch.where(at, 2 * limit * sign, x)
    elif kind == "tail":
        sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
        x = limit * (1.2 + 1.8 * torch.rand(n, generator=gen, dtype=torch.float64)) * sign
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap, "fp32,bf16")
    ap.set_defaults(device="cpu")
    ap.add_argument("--n", type=int, default=1 << 20, help="elements per activation input")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 repetitions")
    a = ap.parse_args()
    if a.quick:
        a.n, a.reps = 4096, 2
    dev, cuda, timer, env = setup(a, cuda_reps=30, cpu_reps=15)
    gen = torch.Generator().manual_seed(0)
    rows = []

    def measure(op, dname, n, kind, direction, ours, eager, base):
        t = timer.compare({"ffn_ext": ours} | ({"eager": eager} if eager else {}))
        if kind == "normal":
            base[direction] = t["ffn_ext"]
        row = dict(op=op, dtype=dname, n=n, input=kind, dir=direction, ffn_ext_us=t["ffn_ext"] * 1e6,
                   eager_us=t["eager"] * 1e6 if eager else None, x_normal=t["ffn_ext"] / base[direction])
        rows.append(row)
        print_row(row)

    kinds = ("normal", "outliers", "tail")
    for dname in a.dtypes.split(","):
        dt = DTYPES[dname]
        for name, (limit, f, f_eager, b, b_eager) in ACTS.items():
            base = {}
            for kind in kinds:
                x = draw(kind, a.n, limit, gen).to(dt).to(dev)
                g = torch.randn(a.n, generator=gen).to(dt).to(dev)
                measure(name, dname, a.n, kind, "fwd", lambda: f(x), lambda: f_eager(x), base)
                measure(name, dname, a.n, kind, "bwd", lambda: b(g, x),
                        (lambda: b_eager(g, x)) if b_eager else None, base)
        d = min(4096, a.n)
        m = max(1, a.n // d)
        for act, limit in GATES.items():
            base = {}
            eager_act = {"silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}[act]
            for kind in kinds:
                gate = draw(kind, m * d, limit, gen).view(m, d)
                h = torch.cat([gate, torch.randn(m, d, generator=gen, dtype=torch.float64)], 1).to(dt).to(dev)
                dy = torch.randn(m, d, generator=gen).to(dt).to(dev)
                op = f"act_and_mul_packed:{act}"
                measure(op, dname, m * d, kind, "fwd", lambda: ops.act_and_mul_packed(h, act, 1.0),
                        lambda: eager_act(h[:, :d]) * h[:, d:], base)
                measure(op, dname, m * d, kind, "bwd", lambda: ops.act_and_mul_packed_backward(dy, h, act, 1.0),
                        None, base)
    save("tail", dev, env, rows, ["op", "dtype", "n", "input", "dir", "ffn_ext_us", "eager_us", "x_normal"],
         "Activations on inputs in the underflow tail", out_dir=a.out_dir)


if __name__ == "__main__":
    main()
