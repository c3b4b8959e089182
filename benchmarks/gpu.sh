#!/usr/bin/env bash
# The GPU part of the benchmarks, run once on a lent GPU machine (its python3 has torch):
#   OUT=/tmp/gpu bash benchmarks/gpu.sh     # ~6 min on an H200; results land in $OUT
# Layer cost, eager at batch 128 and 512, then eager vs torch.compile at batch 128.
# Every step must succeed: a timeout (exit 124) or a failed run stops the script.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.csv"
timeout 220 python3 -m benchmarks.layer_cost --device cuda --batch-size 128 512 --repeats 10 \
  --out "$OUT/layer_cost_cuda.json" 2>&1 | tee "$OUT/layer_cost_cuda.log"
# torch.compile's W-lines dropped with sed: grep -v would exit 1 (pipefail) if none were left
timeout 300 python3 -m benchmarks.layer_cost --device cuda --batch-size 128 --repeats 5 --compile \
  --out "$OUT/layer_cost_cuda_compile.json" 2>&1 | sed '/^W/d' | tee "$OUT/layer_cost_cuda_compile.log"
