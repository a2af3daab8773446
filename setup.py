"""Builds ffn_ext's compiled library with torch.utils.cpp_extension.

A CUDA build happens whenever a CUDA toolkit and a CUDA build of torch are present, whether or
not a GPU is visible; otherwise the library is CPU-only. Knobs (README, "Install options"):
  TORCH_CUDA_ARCH_LIST  architectures to compile for (default with no GPU visible: see below)
  MAX_JOBS              parallel compile jobs (ninja)
  NVCC_THREADS          threads nvcc uses to compile several architectures at once (default 2)
  FFN_EXT_FORCE_CUDA=1  fail instead of falling back to a CPU-only build
  FFN_EXT_CPU_ONLY=1    build without CUDA even where it is available
  FFN_EXT_DEBUG_INFO=1  keep the C++ debug information (-g) that Python's compiler flags ask for
  CUDA_HOME             the toolkit root, when it cannot be found (see find_cuda_home)
Nothing here touches the network.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Architectures built when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible: Ampere (A100)
# and Hopper (H100/H200) machine code, plus PTX of sm_90 for newer GPUs to JIT-compile.
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"

try:
    import torch
except ImportError:
    sys.stderr.write(
        "\nffn_ext must be compiled against the torch it will run with, so it is built without "
        "pip's build isolation (an isolated build would see no torch, or a different one).\n"
        "Install torch and the build's tools first, then run:\n\n"
        "    pip install torch numpy ninja setuptools wheel\n"
        "    pip install --no-build-isolation .\n\n"
    )
    raise SystemExit(1)


def _is_toolkit(root):
    """A CUDA toolkit root has the real nvcc and the runtime headers (a wrapper dir does not)."""
    if not root:
        return False
    r = Path(root)
    return (r / "bin" / "nvcc").is_file() and (
        (r / "include" / "cuda_runtime.h").is_file()
        or (r / "targets" / "x86_64-linux" / "include" / "cuda_runtime.h").is_file()
    )


def find_cuda_home():
    """The CUDA toolkit root, or None.

    CUDA_HOME / CUDA_PATH win when they point at a toolkit. Otherwise /usr/local/cuda, then the
    directory above the resolved `nvcc` on PATH. torch's own guess is that last one without
    resolving links or wrappers, which on machines whose `nvcc` is a wrapper script in
    /usr/local/bin lands on /usr/local; each candidate is therefore checked for the real
    nvcc and cuda_runtime.h.
    """
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            if _is_toolkit(os.environ[var]):
                return os.environ[var]
            sys.stderr.write(f"ffn_ext: {var}={os.environ[var]} is not a CUDA toolkit, ignoring it\n")
    candidates = ["/usr/local/cuda"]
    import shutil

    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(os.path.realpath(nvcc)).parent.parent))
        # A wrapper script that execs the real nvcc names it: follow the first absolute path.
        try:
            text = Path(nvcc).read_text(errors="ignore")[:4096]
            m = re.search(r"(/\S+)/bin/nvcc\b", text)
            if m:
                candidates.append(m.group(1))
        except OSError:
            pass
    for c in candidates:
        if _is_toolkit(c):
            return os.path.realpath(c)
    return None


def nvcc_version(cuda_home):
    try:
        out = subprocess.run(
            [os.path.join(cuda_home, "bin", "nvcc"), "--version"], capture_output=True, text=True
        ).stdout
        m = re.search(r"release [\d.]+, V([\d.]+)", out)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def read_sources():
    lines = (ROOT / "csrc" / "sources.txt").read_text().splitlines()
    return [l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")]


force_cuda = os.environ.get("FFN_EXT_FORCE_CUDA", "0") == "1"
cpu_only = os.environ.get("FFN_EXT_CPU_ONLY", "0") == "1"
cuda_home = find_cuda_home()
why_not = None
if cpu_only:
    why_not = "FFN_EXT_CPU_ONLY=1"
elif torch.version.cuda is None:
    why_not = f"torch {torch.__version__} is not a CUDA build"
elif cuda_home is None:
    why_not = "no CUDA toolkit found (set CUDA_HOME to its root)"
with_cuda = why_not is None
if force_cuda and not with_cuda:
    raise SystemExit(f"ffn_ext: FFN_EXT_FORCE_CUDA=1 but the CUDA kernels cannot be built: {why_not}")

if with_cuda:
    # torch.utils.cpp_extension reads CUDA_HOME when it is imported.
    os.environ["CUDA_HOME"] = cuda_home
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST

from setuptools import setup  # noqa: E402
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402

sources = [s for s in read_sources() if with_cuda or not s.endswith(".cu")]
include_dirs = [str(ROOT / "csrc" / "include")]
# -ffp-contract=off: GCC would otherwise fuse a * b + c into one FMA wherever it sees fit, and
# whether it does depends on the code around the expression, so one element's result could differ
# by an ulp between the loop's full and partial vectors or between two instantiations of one kernel
# (found 2026-11-27: the fp32 partial vector of the summed beta gradient differed from the stored
# one). The maths asks for its fused multiply-adds by name (at::vec::fmadd); PyTorch's CPU
# inductor compiles without contraction too. Cost measured on the 2-core AVX-512 VM: 0-3%.
cxx_flags = ["-O3", "-fopenmp", "-fvisibility-inlines-hidden", "-ffp-contract=off"]
# -g0 after Python's own flags (sysconfig's CFLAGS, which setuptools puts first, ask for -g on most
# Pythons): the debug information of the templated CPU loops took a third of the C++ compile time
# (activation_cpu.cpp: 166 s against 106 s) and made the library 128 MB, CPU-only, of which the code
# is a few (2-core VM, gcc 12, torch 2.9.1, 2026-11-29). PyTorch's own wheels carry none either.
if os.environ.get("FFN_EXT_DEBUG_INFO", "0") != "1":
    cxx_flags.append("-g0")
nvcc_flags = ["-O3", "--threads", os.environ.get("NVCC_THREADS", "2")]  # no --use_fast_math
arch_list = ""
cuda_version = ""
if with_cuda:
    arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST", "")
    if not arch_list:  # a GPU is visible: torch builds for it; name it for the record
        arch_list = ";".join(
            sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
        )
    cuda_version = nvcc_version(cuda_home)
    # The toolkit may lack headers that torch's CUDA headers include (cublas, cusparse); a pip
    # CUDA torch ships them in site-packages/nvidia/cu*/include.
    if not (Path(cuda_home) / "include" / "cublas_v2.h").is_file():
        import site

        for sp in site.getsitepackages() + [site.getusersitepackages()]:
            for inc in sorted(Path(sp).glob("nvidia/cu*/include")):
                if (inc / "cublas_v2.h").is_file():
                    include_dirs.append(str(inc))
                    break

defines = [
    ("FFN_EXT_TORCH_VERSION", f'"{torch.__version__}"'),
    ("FFN_EXT_CUDA_ARCHS", f'"{arch_list}"'),
    ("FFN_EXT_BUILD_CUDA_VERSION", f'"{cuda_version}"'),
]
if with_cuda:
    defines.append(("FFN_EXT_WITH_CUDA", None))

summary = (
    f"ffn_ext build: {'CUDA' if with_cuda else 'CPU-only'}"
    + (f" | toolkit {cuda_home} | nvcc {cuda_version}" if with_cuda else f" ({why_not})")
    + f" | torch {torch.__version__} (CUDA {torch.version.cuda})"
    + (f" | archs {arch_list}" if with_cuda else "")
)
print(summary, flush=True)
sys.stderr.write(summary + "\n")

# Read by ffn_ext/_library.py before the compiled library is loaded, so that a torch mismatch is
# reported as such instead of as an undefined symbol.
(ROOT / "ffn_ext" / "_build_config.py").write_text(
    "# Generated by setup.py; not tracked.\n"
    f"TORCH_VERSION = {torch.__version__!r}\n"
    f"WITH_CUDA = {with_cuda!r}\n"
    f"CUDA_VERSION = {cuda_version!r}\n"
    f"CUDA_ARCHS = {arch_list!r}\n"
    f"SUMMARY = {summary!r}\n"
)

Ext = CUDAExtension if with_cuda else CppExtension
ext = Ext(
    name="ffn_ext._C",
    sources=sources,
    include_dirs=include_dirs,
    define_macros=defines,
    extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags} if with_cuda else {"cxx": cxx_flags},
    extra_link_args=["-fopenmp"],
)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
