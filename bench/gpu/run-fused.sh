#!/bin/bash
# ===- bench/gpu/run-fused.sh - the fused RoPE + store bench on a GPU -------===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# GPU machine (python3 with PyTorch and Triton; no LLVM): runs
# fused_bench.py on ptx/fused.ptx, which bench/gpu/gen-fused.sh writes on the
# build machine (carry bench/gpu/ptx). Writes $OUT/machine-fused.txt,
# $OUT/fused_bench.log and $OUT/fused_results.json; exits non-zero on any
# byte that differs from the reference.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
{
  date -u
  cat ptx/fused-source.txt 2>/dev/null
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv
  python3 -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
} > "$OUT/machine-fused.txt" 2>&1
cat "$OUT/machine-fused.txt"
python3 fused_bench.py 2>&1 | tee "$OUT/fused_bench.log"
exit "${PIPESTATUS[0]}"
