"""The build: what ffn_ext.info() reports, the refusal of a library built against another torch,
and (when FFN_EXT_EXPECT_CUDA=1, as .ci/run sets) that the CUDA kernels really were compiled."""

import os
import re
from pathlib import Path

import pytest
import torch

import ffn_ext
from ffn_ext import _library

ELEMENTWISE = ["gelu", "gelu_backward", "gelu_double_backward", "silu", "silu_backward",
               "silu_double_backward", "swish", "swish_backward", "swish_double_backward", "relu",
               "relu_backward"]


def test_info_reports_versions_and_kernels():
    info = ffn_ext.info()
    assert info["torch_version"] == torch.__version__
    assert info["built_with_torch"] == torch.__version__
    for op in ELEMENTWISE:
        assert info["ops"][op]["cpu"], op
        assert info["ops"][op]["cuda"] == info["built_with_cuda"], op
    assert info["cuda_kernels_compiled"] == info["built_with_cuda"]
    loops = {"default", "avx2", "avx512", "avx512_bf16"}
    assert set(info["cpu_loops"]) == {"float32", "float64", "float16", "bfloat16"}
    assert set(info["cpu_loops"].values()) <= loops, info["cpu_loops"]
    # Only bf16 may differ from the others, and only by AVX512_BF16's rounding.
    assert info["cpu_loops"]["float64"] == info["cpu_loops"]["float16"] == info["cpu_loops"]["float32"]
    assert info["cpu_loops"]["bfloat16"] in (info["cpu_loops"]["float32"], "avx512_bf16")
    if info["built_with_cuda"]:
        assert info["cuda_archs"], "a CUDA build names its architectures"
        assert info["build_cuda_version"]


@pytest.mark.skipif(os.environ.get("FFN_EXT_EXPECT_CUDA") != "1", reason="FFN_EXT_EXPECT_CUDA is not set")
def test_cuda_kernels_were_compiled():
    info = ffn_ext.info()
    assert info["built_with_cuda"] and info["cuda_kernels_compiled"], info
    # Compare compute capabilities: "9.0" is met by "9.0", "9.0a" or "9.0+PTX".
    have = {re.match(r"\d+\.\d+", a).group(0) for a in info["cuda_archs"]}
    want = os.environ.get("FFN_EXT_EXPECT_ARCHS", "")
    for arch in filter(None, want.split(";")):
        assert re.match(r"\d+\.\d+", arch).group(0) in have, (arch, info["cuda_archs"])


def test_version_mismatch_is_refused(monkeypatch):
    from ffn_ext import _build_config

    monkeypatch.setattr(_build_config, "TORCH_VERSION", "1.0.0+fake")
    with pytest.raises(ImportError, match=r"ffn_ext was built against torch 1.0.0\+fake but torch .* is running; "
                       r"rebuild it against this torch: pip install --no-build-isolation"):
        _library.load_library()


def test_build_info_is_recorded_in_the_library():
    b = _library.build_info()
    assert b["torch_version"] == torch.__version__
    assert b["with_cuda"] in ("0", "1")


def test_source_hash_covers_the_sources_only(tmp_path):
    """tools/source_hash.py, by which tools/gpu_check.sh accepts a wheel built elsewhere only for the
    sources it was built from: a change in csrc/, the package's Python files or setup.py changes
    the hash; the generated build config, caches and compiled files do not, and the real tree
    hashes as a copy of its sources does."""
    import importlib.util
    import shutil

    root = os.path.join(os.path.dirname(__file__), "..")
    spec = importlib.util.spec_from_file_location("source_hash", os.path.join(root, "tools", "source_hash.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    tree = tmp_path / "tree"
    for rel in tool.source_files(Path(root).resolve()):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.join(root, rel), tree / rel)
    base = tool.source_hash(tree)
    assert base == tool.source_hash(Path(root).resolve())
    assert "csrc/cuda/engine.cuh" in tool.source_files(tree) and "setup.py" in tool.source_files(tree)

    (tree / "ffn_ext" / "_build_config.py").write_text("TORCH_VERSION = 'x'\n")
    (tree / "ffn_ext" / "__pycache__").mkdir(exist_ok=True)
    (tree / "ffn_ext" / "__pycache__" / "stale.py").write_text("x = 1\n")
    (tree / "ffn_ext" / "_C.so").write_bytes(b"\0")
    assert tool.source_hash(tree) == base

    for rel in ("csrc/cuda/engine.cuh", "ffn_ext/gating.py", "setup.py"):
        saved = (tree / rel).read_bytes()
        (tree / rel).write_bytes(saved + b"\n")
        assert tool.source_hash(tree) != base, rel
        (tree / rel).write_bytes(saved)
    (tree / "csrc" / "new.h").write_text("")
    assert tool.source_hash(tree) != base
