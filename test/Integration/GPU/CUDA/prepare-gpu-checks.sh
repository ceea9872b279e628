#!/bin/sh
# ===- prepare-gpu-checks.sh - the GPU checks' kernels and plans -----------===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# Build machine (needs build/bin/kvq-opt; no GPU): writes into <dir>
# (default: out/ next to this script, ignored by git) what run-gpu-checks.sh
# runs on an NVIDIA machine, one folder per configuration:
#   sm90     kvq-to-ptx for sm_90 (native cvt instructions)
#   sm80     for sm_80: the software conversion (runs on any newer GPU)
#   sm90fma  sm_90 with quantize-division=fma (the corrected product for
#            every stream, where the default picks the product alone)
#   attention, attention-portable  kvq.paged_attention for sm_90 and sm_75
#            (see below)
#   fused    kvq.fused_cache_store for sm_90 (RoPE and an elementwise chain
#            fused into the store; see below)
# each with gen-gpu-checks.py's kernels.mlir, plan.txt and manifest.txt, the
# PTX, and bench-<threads-per-block>.ptx of the timed kernels; plus the
# launcher's source and run-gpu-checks.sh (which builds the launcher on the
# GPU machine), so that <dir> runs on its own. See run-gpu-checks.sh.
#
# Usage: prepare-gpu-checks.sh [<dir>] [path/to/kvq-opt]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/out}
opt=${2:-$here/../../../../build/bin/kvq-opt}
mkdir -p "$dir"
for c in sm90 sm80 sm90fma; do
  case $c in
    sm90) flags="chip=sm_90" ;;
    sm80) flags="chip=sm_80" ;;
    sm90fma) flags="chip=sm_90 quantize-division=fma" ;;
  esac
  mkdir -p "$dir/$c"
  python3 "$here/gen-gpu-checks.py" "$dir/$c" "$c/kernels.ptx" "dumps-$c"
  # The kernel each case calls depends on the quotients proven for its
  # scales: read it off the lowered IR.
  for f in kernels bench; do
    "$opt" "$dir/$c/$f.mlir" "--kvq-lower-cache-ops=target=nvvm $flags" \
      -o "$dir/$c/$f.lowered.mlir"
  done
  python3 "$here/gen-gpu-checks.py" --resolve "$dir/$c" \
    "$dir/$c/kernels.lowered.mlir" "$dir/$c/bench.lowered.mlir"
  "$opt" "$dir/$c/kernels.mlir" "--kvq-to-ptx=$flags" \
    "--kvq-write-isa=output=$dir/$c/kernels.ptx" -o /dev/null
  for tpb in 128 256 512 1024; do
    "$opt" "$dir/$c/bench.mlir" "--kvq-to-ptx=$flags threads-per-block=$tpb" \
      "--kvq-write-isa=output=$dir/$c/bench-$tpb.ptx" -o /dev/null
  done
done
# kvq.paged_attention: the cases, inputs and plans come from
# KVQCacheLoweringTests (KVQAttentionGPU.WriteChecks), the dumps are checked
# by KVQAttentionGPU.GPUDumpsMatchReference. `attention` is sm_90 (the
# tensor-core kernel, and the portable kernel for the shapes it does not
# take), `attention-portable` sm_75 (the portable kernel for every case,
# on the inputs of `attention`).
tests=${KVQ_TESTS:-$(dirname "$opt")/../unittests/KVQCacheLoweringTests}
mkdir -p "$dir/attention/in" "$dir/attention-portable"
for c in attention:sm_90 attention-portable:sm_75; do
  KVQ_ATTN_GPU_WRITE="$dir/${c%:*}" KVQ_ATTN_GPU_CHIP="${c#*:}" "$tests" \
    --gtest_filter=KVQAttentionGPU.WriteChecks >/dev/null
  "$opt" "$dir/${c%:*}/kernels.mlir" --kvq-to-ptx \
    "--kvq-write-isa=output=$dir/${c%:*}/kernels.ptx" -o /dev/null \
    --mlir-print-op-on-diagnostic=false
done
# kvq.fused_cache_store (kvq-fuse-cache-producers): rotate-half RoPE with
# cos / sin tables (as a gather, and as slices and a concatenation) and an
# elementwise chain fused into the store, every bf16
# pattern as K and V. KVQFusedStoreExecTest.WriteGPUChecks writes the fused
# steps, their inputs and the plan; KVQFusedStoreExecTest.GPUDumpsMatchCPU
# checks the dumps against the CPU's fused store.
mkdir -p "$dir/fused"
KVQ_FUSED_GPU_WRITE="$dir/fused" "$tests" \
  --gtest_filter=KVQFusedStoreExecTest.WriteGPUChecks >/dev/null
"$opt" "$dir/fused/kernels.mlir" --kvq-to-ptx=chip=sm_90 \
  "--kvq-write-isa=output=$dir/fused/kernels.ptx" -o /dev/null
cp "$here/kvq-launch.cpp" "$here/run-gpu-checks.sh" "$dir/"
echo "prepared $dir: $(ls "$dir" | tr '\n' ' ')"
