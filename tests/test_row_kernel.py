"""The CUDA kernels' indexing, checked on the CPU: tests/cpp/test_row_kernel.cpp compiles the
kernel bodies of csrc/cuda/row_kernel.cuh and strided_kernel.cuh with the host C++ compiler and runs
every block and thread of the launches the CUDA engine makes (row kernel: packed halves, slices,
misaligned bases, odd d, decode shapes, a capped grid, more rows than gridDim.y; strided kernel:
permuted, broadcast and interleaved operands, fewer elements a thread; tile kernel: transposed
operands, partial tiles, batch dimensions, its three phases between barriers in turn), checking
that every element is computed exactly once, correctly, and that nothing outside the operands is
written; and the 32-bit division the strided kernel splits indices with, against the hardware's.
The GPU runs the same code through tests/test_gating.py and tests/test_maths.py."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _compiler():
    for c in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if c and shutil.which(c):
            return c
    return None


@pytest.mark.skipif(_compiler() is None, reason="no host C++ compiler on PATH")
def test_row_kernel_covers_every_element_once(tmp_path):
    exe = tmp_path / "test_row_kernel"
    c = subprocess.run([_compiler(), "-std=c++20", "-O1", "-Wno-unknown-pragmas",
                        f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc' / 'cuda'}",
                        str(ROOT / "tests" / "cpp" / "test_row_kernel.cpp"), "-o", str(exe)],
                       capture_output=True, text=True)
    assert c.returncode == 0, c.stderr[-4000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    failures = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    assert r.returncode == 0 and not failures, "\n".join(failures) or r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("passed, 0 failed")
