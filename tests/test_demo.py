"""README's first command, `python -m ffn_ext.demo` (ffn_ext/demo.py): it runs to the end on each
device and reports every result matching the float64 reference; and its check is one that a wrong
result fails (the block's output, an activation's value, an activation's gradient, in float32 and
in bfloat16 alone)."""

import os
import subprocess
import sys

import pytest
import torch

import ffn_ext
import ffn_ext.demo
from conftest import DEVICES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(ffn_ext.__file__)))
# The smallest run that still does both parts: one decode token through the block (its shape is
# fixed per device: 1024 x 3584 fp32 on CPU), and each activation forward and backward on 4096
# elements in float32 and bfloat16.
SMALL = ["--tokens", "1", "--n", "4096"]
MATCH = "all results match the float64 reference"
MISMATCH = "MISMATCH against the float64 reference"


@pytest.mark.parametrize("device", DEVICES)
def test_demo_runs_and_matches_the_reference(device):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-m", "ffn_ext.demo", "--device", device, *SMALL],
                       capture_output=True, text=True, timeout=300, env=env)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    lines = out.splitlines()
    assert lines[-1] == MATCH and MISMATCH not in out, out
    assert f"device {device}" in lines[0]
    # both parts ran: the block's row for 1 token, and every activation in both dtypes
    assert any(line.split()[:1] == ["1"] for line in lines), out
    for op in ("gelu", "gelu tanh", "silu", "swish b=1.5", "relu"):
        for dtype in ("float32", "bfloat16"):
            assert any(line.startswith(f"{op:<12} {dtype:<9}") for line in lines), (op, dtype, out)


def _wrong_grad(f, scale):
    """f with its value unchanged and its gradient scaled."""

    class Scaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g * scale

    return lambda x, *a: f(Scaled.apply(x), *a)


def _bf16_only(f, wrong):
    """f, except on bfloat16 inputs, where `wrong` (f made wrong) runs instead."""
    return lambda x, *a: (wrong if x.dtype == torch.bfloat16 else f)(x, *a)


def _wrong_results():
    gelu, silu, swish, forward = ffn_ext.gelu, ffn_ext.silu, ffn_ext.swish, ffn_ext.nn.FeedForward.forward
    return {
        # the block 1e-5 off (relative): 20x the float32 rounding of the result
        "block": (ffn_ext.nn.FeedForward, "forward", lambda self, x: forward(self, x) * (1 + 1e-5)),
        # the tanh form for the exact GELU (at most 5e-4 apart)
        "value": (ffn_ext, "gelu", lambda x, approximate="none": gelu(x, "tanh")),
        # SiLU's gradient 1e-4 off (relative)
        "gradient": (ffn_ext, "silu", _wrong_grad(silu, 1 + 1e-4)),
        # bfloat16's alone, 2^-6 off (relative): 2 to 4 ulps after the rounding, each result once
        # within half an ulp; float32's right (a check of 2e-2 of |ref| + 1 had passed 1e-2 off)
        "bf16 value": (ffn_ext, "silu", _bf16_only(silu, lambda x: silu(x) * (1 + 2**-6))),
        "bf16 gradient": (ffn_ext, "swish", _bf16_only(swish, _wrong_grad(swish, 1 + 2**-6))),
    }


@pytest.mark.parametrize("wrong", ["block", "value", "gradient", "bf16 value", "bf16 gradient"])
def test_demo_check_fails_on_a_wrong_result(wrong, monkeypatch, capsys):
    """The demo in this process (CPU), with one result made slightly wrong: it reports the
    mismatch and returns 1."""
    monkeypatch.setattr(*_wrong_results()[wrong])
    assert ffn_ext.demo.main(["--device", "cpu", *SMALL]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == MISMATCH and MATCH not in out, out
