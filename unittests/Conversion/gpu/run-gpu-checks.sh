#!/bin/sh
# ===- run-gpu-checks.sh - run the kvq GPU checks on an NVIDIA machine -----===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# Prepare <dir> on the build machine (no GPU needed):
#   for c in sm90 sm80; do
#     mkdir -p <dir>/$c
#     gen-gpu-checks.py <dir>/$c $c/kernels.ptx dumps-$c
#     kvq-opt <dir>/$c/kernels.mlir --kvq-to-ptx=chip=sm_${c#sm} \
#         --kvq-write-isa=output=<dir>/$c/kernels.ptx -o /dev/null
#   done
#   g++ -O2 -std=c++17 -I/usr/local/cuda/include kvq-launch.cpp \
#       -L/usr/local/cuda/lib64/stubs -lcuda -o <dir>/kvq-launch
# then on the GPU machine:
#   run-gpu-checks.sh <dir> <results>
# and back on the build machine, for each chip:
#   tar xzf <results>/dumps-sm90.tgz -C <somewhere>
#   KVQ_GPU_DUMPS=<somewhere> KVQCacheLoweringTests \
#       --gtest_filter='*GPUDumpsMatchReference*'
# sm_80 PTX runs on any newer GPU too: it checks the software conversion on
# a GPU, sm_90 the native cvt instructions.
set -e
cd "$1"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
for c in sm90 sm80; do
  [ -f $c/plan.txt ] || continue
  mkdir -p dumps-$c
  cp $c/manifest.txt dumps-$c/
  ./kvq-launch $c/plan.txt > "$2/launch-$c.log" 2>&1 || {
    cat "$2/launch-$c.log"; exit 1; }
  grep -E "device|time|ok" "$2/launch-$c.log"
  tar czf "$2/dumps-$c.tgz" dumps-$c
done
ls -la "$2"
