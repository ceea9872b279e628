#!/bin/sh
# ===- run-gpu-checks.sh - run the kvq GPU checks on an NVIDIA machine -----===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# Hand-run integration checks of the GPU lowering on a real NVIDIA GPU (not
# lit tests: lit.local.cfg here makes lit skip this folder). Three steps:
#
# 1. Build machine (LLVM 22, no GPU), from the repository root:
#      test/Integration/GPU/CUDA/prepare-gpu-checks.sh [<dir>] [kvq-opt]
#    writes the kernels, plans and manifests, one folder per configuration
#    (sm90, sm80, sm90fma), into <dir>, by default
#    test/Integration/GPU/CUDA/out (ignored by git).
# 2. GPU machine (CUDA driver, cuda.h, g++ or nvcc; no LLVM), with <dir>
#    copied along (device tool: carry test/Integration/GPU/CUDA/out):
#      test/Integration/GPU/CUDA/run-gpu-checks.sh [<dir>] [<results>]
#    builds the launcher (kvq-launch.cpp) into <dir>, runs every plan and
#    writes <results>/launch-<c>.log and <results>/dumps-<c>.tgz per
#    configuration (<results> defaults to <dir>/results).
# 3. Build machine, for each configuration:
#      tar xzf <results>/dumps-<c>.tgz -C <somewhere>
#      KVQ_GPU_DUMPS=<somewhere>/dumps-<c> \
#          build/unittests/KVQCacheLoweringTests \
#          --gtest_filter='*GPUDumpsMatchReference*'
#    compares every dump with the llvm::APFloat reference; for `fused`,
#      KVQ_FUSED_GPU_DUMPS=<somewhere>/dumps-fused \
#          build/unittests/KVQCacheLoweringTests \
#          --gtest_filter='*FusedStoreExecTest.GPUDumpsMatchCPU*'
#    compares the fused stores' caches with the CPU's, byte for byte.
#
# CXX (default g++, else nvcc) and CUDA_HOME (default /usr/local/cuda) pick
# the compiler and the toolkit.
set -e
here=$(cd "$(dirname "$0")" && pwd)
# <dir> by default: the folder this script is in when prepare-gpu-checks.sh
# copied it there, else out/ next to it.
if [ -n "${1:-}" ]; then dir=$1
elif ls "$here"/*/plan.txt >/dev/null 2>&1; then dir=$here
else dir=$here/out
fi
dir=$(cd "$dir" && pwd)
res=${2:-$dir/results}
mkdir -p "$res"
res=$(cd "$res" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
cxx=${CXX:-$(command -v g++ || command -v nvcc)}
src=$dir/kvq-launch.cpp
[ -f "$src" ] || src=$here/kvq-launch.cpp
"$cxx" -O2 -std=c++17 -I"$cuda/include" "$src" -L"$cuda/lib64/stubs" -lcuda \
  -o "$dir/kvq-launch"
cd "$dir"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
for p in */plan.txt; do
  c=${p%/plan.txt}
  mkdir -p dumps-$c
  cp $c/manifest.txt dumps-$c/
  ./kvq-launch $c/plan.txt > "$res/launch-$c.log" 2>&1 || {
    cat "$res/launch-$c.log"; exit 1; }
  grep -E "device|time|ok" "$res/launch-$c.log"
  tar czf "$res/dumps-$c.tgz" dumps-$c
done
ls -la "$res"
