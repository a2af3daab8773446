#!/usr/bin/env bash
# One or two calls on a GPU machine (the device tool): build, test, sanitize, benchmark; logs under
# $OUT. STEPS picks the steps (default: all of them, in this order):
#   build errors prebuild tests bench sanitize profile ncu bounds explore layouts exact [compare]
# Times on an H100 machine (16 cores, torch 2.11, 2026-11-26): build 177 s with the CUDA kernels in
# one file (now one per dtype: less), error-path tests 6 s, the CUDA tests 242 s with 16 workers
# (about 3 100 cases then, about 3 350 on 2026-11-27, 4 455 on 2026-11-29: the limit is 450 s,
# which the prebuilt wheel's 6 s build and the error tests keep under a first call's 560),
# the fp16/bf16 cases with the accurate maths about 70 s (a 20 s limit cut them at a fifth),
# memcheck 10 + 6 s and racecheck 22 s with PyTorch's allocator cache on (now off for memcheck, and
# more cases: limits 90 and 60 s), the benchmark suite 99 s. All together they pass a call's
# 600 s, so a session runs two calls back to back, the second while the machine is still warm (it
# keeps what the first installed for 30 s; a fresh machine would need the build again, so name
# build in every call: with the carried wheel it takes seconds), with carry [".whl"] each time:
#   bash tools/build_gpu_wheel.sh     (on the CPU machine first: 303 s on its 2 cores, 2026-11-28)
#   DEADLINE_S=540 STEPS="build errors tests" bash tools/gpu_check.sh                (timeout_s 560)
#   DEADLINE_S=<left - 40> BENCH_ONLY=gating,projection STEPS="build bench sanitize" \
#     bash tools/gpu_check.sh                            (timeout_s: the device time left less 20)
# That is what fits one task's 15 minutes: after a machine's start (a minute or more) and the first
# call (the tests: about 350 s for 4 455 cases at the H100's rate above, 450 s at most), the second
# has about 200-400 s, for the open issues' figures and then as much of memcheck as fits. The
# steps after the tests add up to about 840 s of limits (bench 150, sanitize 330, profile 90, ncu
# 120, bounds 150): racecheck, profile, ncu and bounds (with prebuild in the first call) take
# another task's budget.
# Steps run in the order above whatever the order in STEPS: what the open issues' figures need
# first, then the sanitizers over kernels that have not run under them yet, the checks that an
# earlier session already passed last. With DEADLINE_S each step's limit is cut to the time left
# and a step that no longer fits is skipped (and named at the end), so a call returns its logs
# before the device tool's limit. prebuild compiles explore_launch_bounds.py's kernels on one core
# while the tests run, so that bounds only runs.
# A task's device time is 15 minutes, machine start included. The benchmark suite runs the
# families the open issues need first (gating, projection, block, then activation) and keeps what
# it finished; set BENCH_TIMEOUT / BENCH_ONLY for a session given to benchmarks alone.
# Steps: build (sm_90 unless TORCH_CUDA_ARCH_LIST says otherwise; or, in seconds, the wheel that
# tools/build_gpu_wheel.sh built on the CPU machine from this very tree, carried in .whl), the
# error-path tests alone (serially, with a native backtrace if one crashes), prebuild (above), the
# CUDA test cases (pytest-xdist; the 25 slowest listed), the benchmark suite
# (benchmarks/run_all.py, against Liger-Kernel when its wheel is carried in .whl: run with carry
# [".whl"]), profile: the kernels of swiglu at decode sizes beside eager's and the GEMM floor's,
# forward and forward+backward, and each one's time after an L2 flush split into waiting, kernels
# and gaps (benchmarks/profile_projection.py), ncu: the hardware counters of the gating kernels
# beside a copy (benchmarks/ncu_gating.py: DRAM and issue use, occupancy, stall reasons; Nsight
# Compute reads counters on the Firecracker machines, not on gVisor ones), bounds: the row kernels
# under other launch bounds and with 2 packs a thread (benchmarks/explore_launch_bounds.py, an
# experiment with a build of its own: 24 kernels, 75 s to build on this project's 2-core VM; after
# ncu, which tells whether occupancy is what a kernel lacks), explore: swiglu chunk by chunk of
# tokens at prefill sizes
# (benchmarks/explore_chunked_swiglu.py, an experiment), layouts: SwiGLU gating on each operand
# layout, the interleaved one on the strided kernel and the mixed one on the tile kernel
# (benchmarks/bench_layouts.py),
# exact: the fp16/bf16 cases and the vector-loops test (bitwise equal to fp32 there) again with
# FFN_EXT_CUDA_EXACT_LOWP=1, sanitize:
# compute-sanitizer memcheck on the kernel and gating tests and on the random layouts
# (tests/test_layout_fuzz.py, whose values catch a wrong index but not a read past an allocation
# whose value goes unused, nor a write past a fresh output: memcheck does), racecheck on the gating
# tests, and
# (compare, only when named) a comparison of the fp16/bf16 maths and of the grid geometry in one
# session (three processes, each with its own copy anchor: compare their of_copy ratios).
# The exit status is 1 when a step failed (they all run; the failed ones are named at the end).
set -uo pipefail
OUT=${OUT:-/tmp/ffn_out}
# Logs go to $LOG and are packed into $OUT/logs.tgz after every step (the device tool returns at
# most 8 files, and a step cut off by a time limit must not lose the earlier ones).
LOG=/tmp/ffn_logs
mkdir -p "$OUT" "$LOG"
pack() { tar czf "$OUT/logs.tgz" -C "$LOG" . 2>/dev/null; }
export PYTHONUNBUFFERED=1 FFN_EXT_EXPECT_CUDA=1 FFN_EXT_EXPECT_ARCHS=${TORCH_CUDA_ARCH_LIST:-9.0}
step() { cur="$*"; echo "=== $* ($(date +%T))"; }
# Set but empty is a mistake, not "every step" (it once started a source build and left nvcc
# behind when its timeout fired).
if [[ -n "${STEPS+set}" && -z "${STEPS// /}" ]]; then
  echo "gpu_check.sh: STEPS is empty; name the steps to run (unset, it runs all of them)"; exit 2
fi
STEPS=${STEPS:-build errors prebuild tests bench sanitize profile ncu bounds explore layouts exact}
failed=""
want() { [[ " $STEPS " == *" $1 "* ]]; }
# DEADLINE_S (optional): the seconds this call may run, counted from here; give the device call's
# timeout_s less about 20 s. Each step's limit is then cut to what is left less 15 s (for packing
# the logs), and a step is skipped when under MIN_STEP_S (default 25) would be left for it, so that
# a call that runs out of device time still returns logs.tgz with every step it finished.
T_START=$SECONDS
limit() {  # limit SECONDS [RESERVE]: the step's limit, or 0 when there is no time left for it
  local want_s=$1
  [[ -n "${DEADLINE_S:-}" ]] || { echo "$want_s"; return; }
  local left=$(( DEADLINE_S - (SECONDS - T_START) - 15 - ${2:-0} ))
  (( left < ${MIN_STEP_S:-25} )) && { echo 0; return; }
  echo $(( want_s < left ? want_s : left ))
}
# fits NAME SECONDS [RESERVE]: sets lim to the step's limit (RESERVE: seconds the step may run past
# it, a kill's grace); false, and says so, when it does not fit.
fits() {
  lim=$(limit "$2" "${3:-0}")
  (( lim > 0 )) || { echo "=== $1: skipped, $(( DEADLINE_S - (SECONDS - T_START) )) s left of DEADLINE_S=$DEADLINE_S"; skipped="$skipped [$1]"; return 1; }
}
skipped=""
SRC=$PWD

# Carried peers' wheels (liger-kernel), never fetched; not ffn_ext's own (the build step's), which on
# PYTHONPATH would shadow whatever the build step installs.
peer_wheels=$(ls "$PWD"/.whl/*.whl 2>/dev/null | grep -v "/ffn_ext-" || true)
if [[ -n "$peer_wheels" ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $peer_wheels \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# The real toolkit, as .ci/run does: torch.utils.cpp_extension (explore_launch_bounds.py's build)
# otherwise takes the directory above the nvcc on PATH, which where that nvcc is a wrapper script
# in /usr/local/bin is /usr/local, and its link then fails (cannot find -lcudart; reproduced on the
# CPU machine, 2026-11-29). setup.py finds the toolkit itself.
if [[ -z "${CUDA_HOME:-}" && -x /usr/local/cuda/bin/nvcc ]]; then export CUDA_HOME=/usr/local/cuda; fi

step versions
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$LOG/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$LOG/gpu.txt"
# Nsight Compute and compute-sanitizer work on the Firecracker machines only; a gVisor one reports
# kernel 4.4.0, and there the ncu and sanitize steps would fail at once and tell nothing.
echo "kernel $(uname -r)" | tee -a "$LOG/gpu.txt"
gvisor=0; [[ "$(uname -r)" == 4.4.0* ]] && gvisor=1

pack
# A wheel built here by tools/build_gpu_wheel.sh from this very tree (the hash of its sources) is
# installed instead of compiling, where it imports with its CUDA kernels; else the build from source.
prebuilt() {
  local whl; whl=$(ls "$SRC"/.whl/ffn_ext-*.whl 2>/dev/null | head -1)
  [[ -n "$whl" && -f "$SRC/.whl/ffn_ext.source" ]] || { echo "no prebuilt wheel carried"; return 1; }
  [[ "$(cat "$SRC/.whl/ffn_ext.source")" == "$(python3 "$SRC/tools/source_hash.py" "$SRC")" ]] \
    || { echo "the prebuilt wheel is of other sources: building"; return 1; }
  python3 -m pip install --no-index --no-deps --force-reinstall "$whl" > "$LOG/build.log" 2>&1 || return 1
  # test_build's own check of the kernels and archs (FFN_EXT_EXPECT_CUDA / _ARCHS, exported above)
  (cd /tmp && python3 -m pytest "$SRC/tests/test_build.py" -q -p no:cacheprovider -k cuda_kernels_were_compiled) \
    >> "$LOG/build.log" 2>&1 || { tail -5 "$LOG/build.log"; echo "the prebuilt wheel does not import here: building"; return 1; }
  echo "installed the prebuilt wheel $(basename "$whl") (sources $(cut -c1-12 "$SRC/.whl/ffn_ext.source"))"
}
if want build && ! prebuilt; then
  fits build ${BUILD_TIMEOUT:-180} || { pack; exit 1; }
  step build
  TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} FFN_EXT_FORCE_CUDA=1 MAX_JOBS=16 NVCC_THREADS=4 \
    timeout $lim python3 -m pip install --no-build-isolation --no-deps -v . > "$LOG/build.log" 2>&1 \
    || { grep -E "error" "$LOG/build.log" | head -20; tail -30 "$LOG/build.log"; pack; exit 1; }
  grep "ffn_ext build:" "$LOG/build.log" | head -1
fi
cd /tmp  # import the installed package, not the source tree
python3 -c "import ffn_ext; i = ffn_ext.info(); assert i['cuda_kernels_compiled'], i" \
  || { echo "ffn_ext is not installed with its CUDA kernels: run the build step first"; pack; exit 1; }

pack
if want errors && fits errors ${ERR_TIMEOUT:-30}; then
  step error-path tests, serially
  timeout $lim python3 -X faulthandler -m pytest "$SRC/tests/test_errors.py" -v -p no:cacheprovider -k cuda \
    > "$LOG/errors.log" 2>&1
  rc=$?; [[ $rc -eq 0 ]] || failed="$failed [$cur]"
  grep -E "PASSED|FAILED|ERROR|Fatal" "$LOG/errors.log" | sed 's/^.*:://' | tr '\n' ' ' | head -c 1500; echo
  if [[ $rc -ne 0 && $rc -ne 1 ]] && command -v cuda-gdb > /dev/null; then
    step "native backtrace of the crash"
    timeout 90 cuda-gdb -batch -ex run -ex bt --args python3 -m pytest "$SRC/tests/test_errors.py" -q \
      -p no:cacheprovider -k cuda > "$LOG/crash_bt.log" 2>&1
    grep -A25 "SIGSEGV\|signal" "$LOG/crash_bt.log" | head -40
  fi
  pack
fi

# torch.utils.cpp_extension marks a build in progress with a lock file in the build directory, and
# in torch 2.11 a later build waits while it exists; a build killed by SIGTERM or SIGKILL leaves it
# behind, and the bounds step would then wait out its whole limit. Builds are stopped with SIGINT
# (Python then runs the `finally` that removes the lock), and a lock no build holds is removed.
clear_bounds_lock() { rm -f "$HOME"/.cache/torch_extensions/py*/ffn_ext_launch_bounds/lock; }
if want prebuild && fits prebuild ${PREBUILD_TIMEOUT:-300} 10; then  # one core, beside the tests: the bounds step of the next call finds it built
  step "explore_launch_bounds.py's own build, in the background"
  clear_bounds_lock
  ( timeout -s INT -k 10 $lim python3 "$SRC/benchmarks/explore_launch_bounds.py" --build-only \
      > "$LOG/bounds_build.log" 2>&1; echo "exit $?" >> "$LOG/bounds_build.log" ) &
  prebuild_pid=$!
fi

if want tests && fits tests ${TEST_TIMEOUT:-450} 20; then
  step "CUDA tests (xdist)"
  # SIGINT at the limit, not timeout's SIGTERM: pytest then still prints the failures so far with
  # their tracebacks and the counts (under SIGTERM a cut-off run left only its progress dots).
  timeout -s INT -k 20 $lim python3 -m pytest "$SRC/tests" -q -p no:cacheprovider -n ${XDIST:-16} -rfE --durations=25 \
    -k "${PYTEST_K:-cuda or build}" > "$LOG/tests.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^(FAILED|ERROR)|crashed|node down" "$LOG/tests.log" | head -20
  tail -1 "$LOG/tests.log"
  pack
fi
if [[ -n "${prebuild_pid:-}" ]]; then
  wait "$prebuild_pid"; echo "prebuild: $(tail -1 "$LOG/bounds_build.log")"; pack
fi

if want bench && fits bench ${BENCH_TIMEOUT:-150}; then
  step "benchmark suite (benchmarks/run_all.py: activation, gating, projection, block)"
  # One call; it rewrites its report after every family, so a time limit keeps the finished ones.
  timeout $lim python3 "$SRC/benchmarks/run_all.py" --device cuda --out-dir "$LOG/suite" \
    --only ${BENCH_ONLY:-gating,projection,block,activation} ${BENCH_ARGS:-} \
    > "$LOG/suite.log" 2> "$LOG/suite.err"
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; sed -n '/## Summary/,/^## [a-z]/p' "$LOG"/suite/cuda-*[0-9].md | head -12
  pack
fi

# sanitize SECONDS TOOL TEST_FILE LOG_NAME K_EXPRESSION: compute-sanitizer over some test cases.
# memcheck runs with PYTORCH_NO_CUDA_MEMORY_CACHING=1: every tensor its own cudaMalloc. PyTorch's
# caching allocator carves tensors out of 2 MB (and larger) segments, each one cudaMalloc, which is
# what memcheck sees: an access past a tensor's end that lands in its segment, on a neighbour or on
# free space, is no error to it (c10/cuda/CUDACachingAllocator.cpp: "the caching allocator foils
# cuda-memcheck"). Until 2026-11-28 the memcheck steps ran with the cache on (5ada78e's "0 errors"
# saw only the segments). Every allocation is then a cudaMalloc and every free a cudaFree, which
# synchronises; the allocator keeps no statistics then (ffn_ext._memory.cuda_memory_stats), so
# the selected tests that measure memory check their values alone there. FFN_EXT_UNDER_SANITIZER=1
# tells the tests not to profile (CUPTI, which the profiler uses, and the sanitizer each intercept
# the launches; NVIDIA documents the profiler API as unusable with cuda-memcheck), so that a
# kernel-name check cannot stop a step's -x run before the cases after it.
sanitize() {
  fits "$4" "$1" || return 0
  step "$STEP_TITLE"
  local uncached=""
  [[ $2 == memcheck ]] && uncached=PYTORCH_NO_CUDA_MEMORY_CACHING=1
  env $uncached FFN_EXT_UNDER_SANITIZER=1 timeout "$lim" compute-sanitizer --tool "$2" --error-exitcode 1 \
    python3 -m pytest "$SRC/tests/$3" -q -x \
    -p no:cacheprovider -k "$5" > "$LOG/$4.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; tail -3 "$LOG/$4.log"
}

if want sanitize && (( gvisor )); then
  echo "=== sanitize: skipped, a gVisor machine (compute-sanitizer: device not supported there)"; skipped="$skipped [sanitize]"
elif want sanitize; then
  STEP_TITLE="compute-sanitizer memcheck"
  sanitize ${SAN_TIMEOUT:-90} memcheck test_maths.py memcheck \
    "${SAN_K:-cuda and not more_than and (test_forward or test_backward or test_double_backward or special or aligned or swish_tensor) and (float32 or bfloat16)}"
  pack
  STEP_TITLE="compute-sanitizer memcheck (gating: row kernel layouts and row counts, tile kernel layouts)"
  sanitize ${SAN_TIMEOUT:-90} memcheck test_gating.py memcheck_gating \
    "cuda and ((two_tensors or packed_sizes or row_counts or sliced_semantics or mixed_layouts) and (float32 or bfloat16) or views or out_variant)"
  pack
  STEP_TITLE="compute-sanitizer memcheck (random layouts: row, tile and strided kernels)"
  sanitize ${SAN_TIMEOUT:-90} memcheck test_layout_fuzz.py memcheck_layouts "cuda and (float32 or bfloat16)"
  pack
  STEP_TITLE="compute-sanitizer racecheck (gating; the tile kernel's shared tiles)"
  sanitize ${RACE_TIMEOUT:-60} racecheck test_gating.py racecheck \
    "cuda and (two_tensors or packed or mixed_layouts and (silu or sigmoid)) and (float32 or bfloat16)"
  pack
fi

if want profile && fits profile ${PROFILE_TIMEOUT:-90}; then
  step "kernels of swiglu vs eager at M = 1, 8, 64, 512 (benchmarks/profile_projection.py)"
  timeout $lim python3 "$SRC/benchmarks/profile_projection.py" --device cuda \
    --out "$LOG/profile_projection.txt" > "$LOG/profile_projection.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^M=" "$LOG/profile_projection.txt" | head -60
  pack
fi

if want ncu && (( gvisor )); then
  echo "=== ncu: skipped, a gVisor machine (Nsight Compute reads no counters there)"; skipped="$skipped [ncu]"
elif want ncu && fits ncu ${NCU_TIMEOUT:-120}; then
  step "hardware counters of the gating kernels beside a copy (benchmarks/ncu_gating.py, 8192 x 14336)"
  # ncu_gating.py's own limit, under the step's, so that it stops ncu and its profiled process
  # itself and still writes what it read.
  timeout $lim python3 "$SRC/benchmarks/ncu_gating.py" --timeout $(( lim > 30 ? lim - 10 : lim )) \
    --out-dir "$LOG/ncu" > "$LOG/ncu.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || { failed="$failed [$cur]"; tail -15 "$LOG/ncu.log"; }
  grep -E "^\| [a-z]" "$LOG"/ncu/ncu-gating-*.md 2>/dev/null | head -14
  pack
fi

if want bounds && fits bounds ${BOUNDS_TIMEOUT:-150} 10; then
  step "row kernels under other launch bounds and unrolls (benchmarks/explore_launch_bounds.py: its own build, then 8192 x 14336)"
  clear_bounds_lock  # the prebuild, if any, has ended (waited for above)
  timeout -s INT -k 10 $lim python3 "$SRC/benchmarks/explore_launch_bounds.py" --out-dir "$LOG/bounds" \
    > "$LOG/bounds.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^\| gate_bwd" "$LOG"/bounds/bounds-*.md | head -30
  pack
fi

if want explore && fits explore ${EXPLORE_TIMEOUT:-60}; then
  step "swiglu chunk by chunk of tokens at M = 512, 2048, 8192 (benchmarks/explore_chunked_swiglu.py)"
  timeout $lim python3 "$SRC/benchmarks/explore_chunked_swiglu.py" --device cuda --out-dir "$LOG/explore" \
    > "$LOG/explore.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^\| bf16" "$LOG"/explore/chunked-*.md | head -40
  pack
fi

if want layouts && fits layouts $(( 3 * ${LAYOUTS_TIMEOUT:-60} )); then
  step "gating on each operand layout (benchmarks/bench_layouts.py, 8192 x 14336, no compile)"
  timeout $(( lim / 3 )) python3 "$SRC/benchmarks/bench_layouts.py" --device cuda --no-compile --dtypes bf16,fp32 \
    --out-dir "$LOG/layouts" > "$LOG/layouts.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^\| [a-z_]+ \|" "$LOG"/layouts/layouts-cuda-*.md | head -30
  # The same build with the kernels the tile kernel and the unrolled strided kernel replaced
  # (each process its own copy anchor: compare of_copy and x_separate, not times).
  for cfg in "no_tiles:FFN_EXT_CUDA_TILES=0" "unroll1:FFN_EXT_CUDA_STRIDED_UNROLL=1"; do
    name=${cfg%%:*}; envs=${cfg#*:}
    env $envs timeout $(( lim / 3 )) python3 "$SRC/benchmarks/bench_layouts.py" --device cuda --no-compile \
      --dtypes bf16,fp32 --layouts interleaved,gate_t --tag "$name" --out-dir "$LOG/layouts" > "$LOG/layouts_$name.log" 2>&1
    echo "$name: exit $? ($(grep -cE "^\| (interleaved|gate_t) \|" "$LOG"/layouts/layouts-"$name"-*.md 2>/dev/null) rows)"
  done
  pack
fi

if want exact && fits exact ${EXACT_TIMEOUT:-100} 20; then
  step "fp16/bf16 CUDA tests with FFN_EXT_CUDA_EXACT_LOWP=1"
  FFN_EXT_CUDA_EXACT_LOWP=1 timeout -s INT -k 20 $lim python3 -m pytest "$SRC/tests/test_maths.py" -q -p no:cacheprovider \
    -n ${XDIST:-16} -rfE -k "cuda and ((float16 or bfloat16) and not more_than or vector_loops)" > "$LOG/tests_exact_lowp.log" 2>&1
  rc=$?; echo "exit $rc"; [[ $rc -eq 0 ]] || failed="$failed [$cur]"; grep -E "^(FAILED|ERROR)" "$LOG/tests_exact_lowp.log" | head -10; tail -1 "$LOG/tests_exact_lowp.log"
  pack
fi

if want compare && fits compare 120; then
  step "comparisons in one session: fp16/bf16 maths, grid geometry (1 GB, no compile; three processes)"
  for cfg in "default:" "exact_lowp:FFN_EXT_CUDA_EXACT_LOWP=1" "grid64:FFN_EXT_CUDA_GRID_WAVES=64"; do
    name=${cfg%%:*}; envs=${cfg#*:}
    env $envs timeout 40 python3 "$SRC/benchmarks/bench_activation.py" --device cuda --no-compile --min-mb 1024 --max-mb 1024 \
      --dtypes bf16,fp16,fp32 --ops gelu,silu,relu --out-dir "$LOG/$name" > "$LOG/cmp_$name.log" 2>&1
    echo "$name: $(grep -c "op=" "$LOG/cmp_$name.log") rows"
  done
fi
pack
step done
pack
[[ -z "$skipped" ]] || echo "skipped (no time or no tool here):$skipped"
[[ -z "$failed" ]] || { echo "failed:$failed"; exit 1; }
