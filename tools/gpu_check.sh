#!/usr/bin/env bash
# One call on a GPU machine (the device tool): build, test, sanitize, benchmark; logs under $OUT.
#   bash tools/gpu_check.sh [all|build|test|sanitize|bench]   (default all)
set -uo pipefail
OUT=${OUT:-/tmp/ffn_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
what=${1:-all}
step() { echo "=== $* ($(date +%T))"; }
step nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu.txt"
if [[ $what == all || $what == build || $what == test || $what == sanitize || $what == bench ]]; then
  if ! python3 -c "import ffn_ext" 2>/dev/null || [[ $what == all || $what == build ]]; then
    step build
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} FFN_EXT_FORCE_CUDA=1 MAX_JOBS=16 NVCC_THREADS=4 \
      timeout ${BUILD_TIMEOUT:-300} python3 -m pip install --no-build-isolation --no-deps -v . > "$OUT/build.log" 2>&1 \
      || { tail -50 "$OUT/build.log"; exit 1; }
    grep "ffn_ext build:" "$OUT/build.log" | head -1
  fi
fi
cd /tmp  # import the installed package, not the source tree
SRC=$OLDPWD
if [[ $what == all || $what == test ]]; then
  step tests
  # PYTEST_K narrows the run (e.g. "cuda or build": the CPU cases run in CI already).
  timeout ${TEST_TIMEOUT:-600} python3 -m pytest "$SRC/tests" -q -p no:cacheprovider -rfE ${PYTEST_ARGS:-} \
    ${PYTEST_K:+-k "$PYTEST_K"} 2>&1 | tee "$OUT/tests.log" | tail -25
fi
if [[ $what == all || $what == sanitize ]]; then
  step compute-sanitizer memcheck
  timeout ${SAN_TIMEOUT:-600} compute-sanitizer --tool memcheck --error-exitcode 1 python3 -m pytest "$SRC/tests/test_maths.py" -q -x -p no:cacheprovider \
     -k "${SAN_K:-cuda and not more_than and (test_forward or test_backward or test_double_backward or special or aligned or swish_tensor)}" 2>&1 | tee "$OUT/memcheck.log" | tail -6
fi
if [[ $what == all || $what == bench ]]; then
  step benchmark
  timeout ${BENCH_TIMEOUT:-600} python3 "$SRC/benchmarks/bench_activation.py" --device cuda ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
  tail -3 "$OUT/bench.log"
  cp "$SRC"/benchmarks/results/activation-cuda-*.md "$SRC"/benchmarks/results/activation-cuda-*.json "$OUT/" 2>/dev/null
fi
step done
