#!/usr/bin/env bash
# The GPU checks and benchmark of issue 4, as one command for a lent GPU machine (see docs/benchmarks.md):
#   1. the Triton kernels compiled for the GPU equal the torch path (tests/triton, SEGLOSSES_TRITON_DEVICE=cuda);
#   2. every loss on CUDA equals the CPU float64 result, is finite at saturated logits and in half precision, and
#      compiles with inductor (benchmarks/gpu_check.py);
#   3. the benchmark against the peers at the shapes (eager: what a training step pays), then the GPU work
#      alone (CUDA graph replays) at 8x the batch (memory-bound sizes) and at the shapes, for the focal,
#      Dice and Lovasz losses, with the device's copy bandwidth.
# Peers missing on the machine can travel as wheels in .whl/ (installed into /tmp/site). Logs and tables go to
# $OUT (default ./gpu-out). Environment: CHECK_S, BENCH1_S, BENCH8_S, BENCH1G_S (time limits), NO_GRAPH=1 (skip the CUDA
# graph runs), ONLY=focal,dice (the eager benchmark's --only).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
# the CPU float64 references run the blocked torch passes (no Inductor compilation on the CPU side)
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} SEGLOSSES_CPU_KERNELS=eager
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
start=$(date +%s)
# 1 and 2 together (correctness only; the benchmark runs alone afterwards)
SEGLOSSES_TRITON_DEVICE=cuda timeout 200 python3 -m pytest -q -p no:cacheprovider -n 6 tests/triton \
  >"$OUT/triton.log" 2>&1 & p1=$!
timeout ${CHECK_S:-200} python3 benchmarks/gpu_check.py >"$OUT/gpu_check.log" 2>&1 & p2=$!
wait $p1; rc1=$?; wait $p2; rc2=$?
echo "tests/triton on cuda: exit $rc1"; tail -n 15 "$OUT/triton.log"
echo "gpu_check: exit $rc2"; grep -E "FAIL|failures|inductor|Traceback" "$OUT/gpu_check.log" | tail -n 40
echo "checks took $(( $(date +%s) - start )) s"
timeout ${BENCH1_S:-200} python3 -m seglosses.bench --device cuda --repeats 20 ${ONLY:+--only "$ONLY"} --json "$OUT/bench1.json" \
  --markdown "$OUT/bench1.md" --png "$OUT/bench1.png" >"$OUT/bench.log" 2>&1; echo "bench x1: exit $?"
# the GPU work alone: CUDA graph replays, at 8x the batch (memory-bound) and at the shapes
if [ -z "${NO_GRAPH:-}" ]; then
timeout ${BENCH8_S:-150} python3 -m seglosses.bench --device cuda --repeats 20 --batch-scale 8 --skip-memory \
  --cuda-graph --settings binary,multiclass,manyclass,multiclass3d --only focal,dice,lovasz \
  --markdown "$OUT/bench8g.md" >>"$OUT/bench.log" 2>&1; echo "bench x8 CUDA graph: exit $?"
timeout ${BENCH1G_S:-100} python3 -m seglosses.bench --device cuda --repeats 20 --skip-memory --cuda-graph \
  --settings binary,multiclass,manyclass,multiclass3d --only focal,dice,lovasz \
  --markdown "$OUT/bench1g.md" >>"$OUT/bench.log" 2>&1; echo "bench x1 CUDA graph: exit $?"
fi
echo "total $(( $(date +%s) - start )) s"
grep -E "^\S+ +(ours|floor)" "$OUT/bench.log" | cut -c1-200 | tail -n 60
