"""FastFloat's division (csrc/cuda/fast_float.cuh), which the fp16/bf16 CUDA kernels compute with,
against the CUDA intrinsic whose bits it is meant to give (__fdividef), over every divisor that can
reach it: tests/cuda/test_fast_float_bits.cu, a standalone CUDA program compiled here with nvcc.
(Its exp is __expf itself.) Without a GPU it is only compiled (CI: proof that it builds); with one
it runs and must find no mismatch."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import requires_cuda

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "cuda" / "test_fast_float_bits.cu"
EXPECT_CUDA = os.environ.get("FFN_EXT_EXPECT_CUDA") == "1"


def _nvcc():
    from torch.utils.cpp_extension import CUDA_HOME

    for c in ([os.path.join(CUDA_HOME, "bin", "nvcc")] if CUDA_HOME else []) + [shutil.which("nvcc")]:
        if c and os.access(c, os.X_OK):
            return c
    return None


def _build(tmp_path, arch):
    nvcc = _nvcc()
    if nvcc is None:
        if EXPECT_CUDA:
            pytest.fail("FFN_EXT_EXPECT_CUDA=1 but no nvcc was found (CUDA_HOME or PATH)")
        pytest.skip("no nvcc (CUDA_HOME or PATH)")
    exe = tmp_path / "test_fast_float_bits"
    # The library's nvcc settings for these functions: -O3, no -ftz and no fast maths.
    c = subprocess.run([nvcc, "-O3", "-std=c++17", f"-arch={arch}", f"-I{ROOT / 'csrc' / 'cuda'}",
                        f"-I{ROOT / 'csrc' / 'include'}", str(SOURCE), "-o", str(exe)],
                       capture_output=True, text=True, timeout=300)
    assert c.returncode == 0, c.stdout[-2000:] + c.stderr[-4000:]
    return exe


def test_fast_float_checker_builds(tmp_path):
    _build(tmp_path, "sm_90")


@requires_cuda
def test_fast_float_bits_equal_the_intrinsics_cuda(tmp_path):
    major, minor = torch.cuda.get_device_capability()
    exe = _build(tmp_path, f"sm_{major}{minor}")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("\n0 mismatches"), r.stdout[-3000:] + r.stderr[-2000:]
