#!/usr/bin/env bash
# THE script for a CUDA machine with its own torch and no package registry (run from the repo root).
# Installs the carried wheels (benchmarks/gpu_wheels.sh made them) and the project (--no-deps), runs the
# CUDA tests (graph replay == eager, fused kernels == exact, the default within the stated drift), then
# benchmarks/bench_gpu.py --quick. Everything lands in $OUT (default ./gpu-out):
#   check.log (install, environment, summary, the table), pytest.log, bench.log, bench.json.
# Finishes in under 8 minutes: at most 30 + 45 (+ 20) s install, 110 s tests, 270 s benchmark (each under
# `timeout`; the benchmark stops starting sections after --budget seconds and lists the skipped ones).
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 COUNTERFACE_PROGRESS=0
LOG="$OUT/check.log"
t0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - t0 ))s] $*" | tee -a "$LOG"; }

say "environment"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
} >>"$LOG" 2>&1

if ls wheels/*.whl >/dev/null 2>&1; then
    say "installing wheels: $(ls wheels | tr '\n' ' ')"
    timeout 30 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site wheels/*.whl >>"$LOG" 2>&1 || say "wheel install FAILED"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
else
    say "no wheels/ folder: lpips and platformdirs must already be installed"
fi
say "installing counterface (--no-deps -e .)"
timeout 45 python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1 \
    || { say "editable install FAILED (see above); trying a plain install into /tmp/site"
         timeout 20 python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/site . >>"$LOG" 2>&1 \
             || say "plain install FAILED too"
         export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}; }
python3 -c "import counterface, lpips, platformdirs; from counterface.registry import available; print('plugins ok:', sorted(available('tuner')))" >>"$LOG" 2>&1 \
    || say "import check FAILED"

say "CUDA tests"
timeout 110 python3 -m pytest -q -rs -p no:cacheprovider \
    tests/plugins/test_cuda_graphs.py tests/plugins/test_cuda.py tests/core/test_pipeline_backends.py \
    tests/plugins/test_stylegan2_kernels.py tests/plugins/test_graphs.py >"$OUT/pytest.log" 2>&1
say "pytest exit $? (tail below)"
tail -5 "$OUT/pytest.log" >>"$LOG"

say "benchmark"
timeout 270 python3 benchmarks/bench_gpu.py --out "$OUT/bench.json" --quick --budget 200 >"$OUT/bench.log" 2>&1
say "bench exit $?"
sed -n '/^GPU:/,$p' "$OUT/bench.log" >>"$LOG"
say "done"
cat "$LOG"
