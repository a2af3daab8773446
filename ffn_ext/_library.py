"""Loads the compiled ffn_ext library, refusing a build made against another torch."""

import importlib.util
import os

import torch


class BuildMismatchError(ImportError):
    pass


REBUILD = "pip install --no-build-isolation --force-reinstall --no-deps ."


def load_library():
    try:
        from . import _build_config
    except ImportError as e:
        raise ImportError(
            f"ffn_ext is not built (no ffn_ext/_build_config.py); from the source tree run: "
            f"pip install --no-build-isolation ."
        ) from e
    # Checked before loading: a library built against another torch usually fails to load with
    # an undefined-symbol error that does not say why.
    if _build_config.TORCH_VERSION != torch.__version__:
        raise BuildMismatchError(
            f"ffn_ext was built against torch {_build_config.TORCH_VERSION} but torch "
            f"{torch.__version__} is running; rebuild it against this torch: {REBUILD}"
        )
    spec = importlib.util.find_spec("ffn_ext._C")
    if spec is None or spec.origin is None:
        here = os.path.dirname(os.path.abspath(__file__))
        raise ImportError(
            f"ffn_ext's compiled library (_C*.so) is not in {here}. If ffn_ext was installed with "
            f"'pip install .', this source tree shadows the installed copy: run from another "
            f"directory, or build in place with 'pip install --no-build-isolation -e .'"
        )
    torch.ops.load_library(spec.origin)
    built = build_info()
    if built.get("torch_version") != torch.__version__:
        raise BuildMismatchError(
            f"ffn_ext's compiled library was built against torch {built.get('torch_version')} but "
            f"torch {torch.__version__} is running; rebuild it against this torch: {REBUILD}"
        )


def fast_calls():
    """ffn_ext._C as a Python module (csrc/python/fast_calls.cpp): the ops' Python entry points that
    skip torch.ops' argument parsing, for the wrappers in functional.py, gating.py and
    projection.py. Each returns NotImplemented for arguments it does not take; the wrapper then
    calls torch.ops.ffn_ext."""
    return importlib.import_module("ffn_ext._C")


def build_info():
    """The key=value facts that the compiled library recorded at build time."""
    return _key_values(torch.ops.ffn_ext._build_info())


def cpu_loops():
    """Which CPU vector loop each dtype takes on this processor: "default" (portable), "avx2",
    "avx512", or "avx512_bf16" (bf16 on a processor with AVX512_BF16)."""
    return _key_values(torch.ops.ffn_ext._cpu_loops())


def _key_values(text):
    """The "key=value" lines that the introspection ops return, as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
