"""The build: what ffn_ext.info() reports, the refusal of a library built against another torch,
and (when FFN_EXT_EXPECT_CUDA=1, as .ci/run sets) that the CUDA kernels really were compiled."""

import os
import re

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
