#!/usr/bin/env bash
# THE script for a CUDA machine with its own torch and no package registry (run from the repo root).
# Installs the carried wheels (benchmarks/gpu_wheels.sh made them) and the project (--no-deps), runs
# benchmarks/bench_gpu.py --quick (the table), then the CUDA tests (graph replay == eager, fused
# kernels == exact, the default within the stated drift, the device blend and batched re-edits).
# Everything lands in $OUT (default ./gpu-out):
#   check.log (install, environment, summary, the table), bench.log, bench.json, pytest.log.
# Finishes in under 8 minutes whatever happens; each step runs under `timeout`: environment and
#   import checks at most 10 + 30 + 30 s, installs 25 + 40 (+ 15) s; the benchmark gets what is left
#   of 470 s less 130 s (at least 150 s; + 10 s to print after SIGTERM; no section starts in its last
#   60 s); the table fallback 30 s; tests 80 (+ 5) s. Worst case (every step timing out) about 430 s;
#   with a quick install the benchmark gets about 320 s.
# The benchmark comes first: its table is what the issue checks. Each of its sections runs on its own (a
# failure is recorded in bench.json and the table, and the next section runs); a SIGTERM still prints the
# table, and should the process die anyway, the table is printed from the partial bench.json.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 COUNTERFACE_PROGRESS=0
LOG="$OUT/check.log"
t0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - t0 ))s] $*" | tee -a "$LOG"; }

say "environment"
{ timeout 10 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  timeout 30 python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
} >>"$LOG" 2>&1

if ls wheels/*.whl >/dev/null 2>&1; then
    say "installing wheels: $(ls wheels | tr '\n' ' ')"
    timeout 25 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site wheels/*.whl >>"$LOG" 2>&1 || say "wheel install FAILED"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
    say "no wheels/ folder: lpips and platformdirs must already be installed"
fi
say "installing counterface (--no-deps -e .)"
timeout 40 python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1 \
    || { say "editable install FAILED (see above); trying a plain install into /tmp/site"
         timeout 15 python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/site . >>"$LOG" 2>&1 \
             || say "plain install FAILED too"
         export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}; }
# the source tree first, whatever the installs did (the entry points come from the installed metadata)
export PYTHONPATH=$PWD/core:$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}
timeout 30 python3 -c "import counterface, lpips, platformdirs; from counterface.registry import available; print('plugins ok:', sorted(available('tuner')), counterface.__file__)" >>"$LOG" 2>&1 \
    || say "import check FAILED"

# the benchmark gets what is left of 470 s after the installs, less 130 s for the table fallback,
# the tests and the end (at least 150 s); it starts no section in its last 60 s
left=$(( 470 - ($(date +%s) - t0) - 130 ))
[ "$left" -lt 150 ] && left=150
say "benchmark (timeout ${left} s, budget $(( left - 60 )) s)"
timeout -k 10 "$left" python3 benchmarks/bench_gpu.py --out "$OUT/bench.json" --quick --budget $(( left - 60 )) \
    >"$OUT/bench.log" 2>&1
say "bench exit $?"
if ! grep -q '^| measurement |' "$OUT/bench.log"; then
    say "no table in bench.log: printing the table of the partial bench.json"
    timeout 30 python3 benchmarks/bench_gpu.py --out "$OUT/bench.json" --table-only >>"$OUT/bench.log" 2>&1 \
        || say "no bench.json either (see bench.log)"
fi
sed -n '/^GPU:/,$p' "$OUT/bench.log" >>"$LOG"

say "CUDA tests"
timeout -k 5 80 python3 -m pytest -q -rs -p no:cacheprovider \
    tests/plugins/test_cuda_graphs.py tests/plugins/test_cuda.py tests/core/test_pipeline_backends.py \
    >"$OUT/pytest.log" 2>&1
say "pytest exit $? (tail below)"
tail -15 "$OUT/pytest.log" >>"$LOG"
say "done"
cat "$LOG"
