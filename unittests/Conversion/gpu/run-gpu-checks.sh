#!/bin/sh
# ===- run-gpu-checks.sh - run the kvq GPU checks on an NVIDIA machine -----===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# Prepare <dir> on the build machine with prepare-gpu-checks.sh <dir> (one
# folder per configuration: sm90, sm80, sm90fma), then on the GPU machine:
#   cd <dir> && g++ -O2 -std=c++17 -I/usr/local/cuda/include kvq-launch.cpp \
#       -L/usr/local/cuda/lib64/stubs -lcuda -o kvq-launch
#   run-gpu-checks.sh <dir> <results>
# and back on the build machine, for each configuration:
#   tar xzf <results>/dumps-<c>.tgz -C <somewhere>
#   KVQ_GPU_DUMPS=<somewhere>/dumps-<c> KVQCacheLoweringTests \
#       --gtest_filter='*GPUDumpsMatchReference*'
set -e
cd "$1"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
for p in */plan.txt; do
  c=${p%/plan.txt}
  mkdir -p dumps-$c
  cp $c/manifest.txt dumps-$c/
  ./kvq-launch $c/plan.txt > "$2/launch-$c.log" 2>&1 || {
    cat "$2/launch-$c.log"; exit 1; }
  grep -E "device|time|ok" "$2/launch-$c.log"
  tar czf "$2/dumps-$c.tgz" dumps-$c
done
ls -la "$2"
