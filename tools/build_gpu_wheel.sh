#!/usr/bin/env bash
# A wheel of ffn_ext for the GPU machine the device tool lends (Python 3.12, torch 2.11.0+cu130,
# sm_90), built on this CPU machine, so that tools/gpu_check.sh's build step installs it in seconds
# instead of compiling the CUDA kernels on the device's clock. Writes .whl/ffn_ext-*.whl and
# .whl/ffn_ext.source, the hash of the sources built (tools/source_hash.py); the device call's
# carry [".whl"] takes both there. gpu_check.sh uses the wheel only where the tree it runs on
# hashes the same and the installed package imports with its CUDA kernels; otherwise it builds
# from source as before. So rebuild the wheel after changing csrc/, ffn_ext/ or setup.py, or
# leave it stale: a stale one costs the device nothing but a hash.
#
#   bash tools/build_gpu_wheel.sh
#
# Knobs: PY312 (a Python 3.12; default python3.12 on PATH, else pyenv's newest 3.12), TORCH_VERSION
# (the device's torch, default 2.11.0: PyPI's wheel of it is the CUDA 13.0 build), ARCHS (default
# 9.0), VENV (where the build's Python environment is kept between runs, default /tmp/ffn_gpu_venv),
# MAX_JOBS (default 2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TORCH_VERSION=${TORCH_VERSION:-2.11.0}
ARCHS=${ARCHS:-9.0}
VENV=${VENV:-/tmp/ffn_gpu_venv}

if [[ -z "${PY312:-}" ]]; then
  # (a pyenv shim named python3.12 is on PATH even where pyenv's active version is another and the
  # shim refuses to run: only a python3.12 that runs counts)
  PY312=$(python3.12 -c "import sys; print(sys.executable)" 2>/dev/null \
          || ls -d "$HOME"/.pyenv/versions/3.12.*/bin/python 2>/dev/null | sort -V | tail -1 || true)
fi
[[ -n "$PY312" && -x "$PY312" ]] || { echo "build_gpu_wheel: no Python 3.12 found; set PY312" >&2; exit 1; }

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  rm -rf "$VENV"
  "$PY312" -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" numpy setuptools wheel ninja
fi

# The working tree's files as git sees them (tracked, and untracked ones it does not ignore): what
# the device tool copies, and what gpu_check.sh hashes there.
src=$(mktemp -d /tmp/ffn_gpu_wheel_src.XXXXXX)
trap 'rm -rf "$src"' EXIT
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$src"
hash=$(python3 "$ROOT/tools/source_hash.py" "$src")
[[ "$hash" == "$(python3 "$ROOT/tools/source_hash.py" "$ROOT")" ]] \
  || { echo "build_gpu_wheel: the copy does not hash as the tree (an ignored source file?)" >&2; exit 1; }

mkdir -p "$ROOT/.whl"
rm -f "$ROOT"/.whl/ffn_ext-*.whl "$ROOT/.whl/ffn_ext.source"
start=$SECONDS
(cd "$src" && TORCH_CUDA_ARCH_LIST="$ARCHS" FFN_EXT_FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-2} \
  "$VENV/bin/pip" wheel -v --no-build-isolation --no-deps -w "$ROOT/.whl" . > "$src/build.log" 2>&1) \
  || { tail -30 "$src/build.log"; exit 1; }
grep "ffn_ext build:" "$src/build.log" | head -1
echo "$hash" > "$ROOT/.whl/ffn_ext.source"
ls -l "$ROOT"/.whl/ffn_ext-*.whl
echo "built in $((SECONDS - start)) s from sources $hash"
