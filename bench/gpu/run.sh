#!/bin/bash
# ===- bench/gpu/run.sh - kvq kernels on an NVIDIA GPU, in one go ----------===#
#
# Runs ON THE GPU MACHINE (nvidia-smi, ptxas, cuobjdump, ncu, python3 with
# PyTorch and Triton), from any directory; needs only bench/gpu/ with the
# PTX in bench/gpu/ptx/, which is not committed: bench/gpu/gen.sh writes it
# on the build machine (LLVM 22) and the run carries it along (device tool:
# carry bench/gpu/ptx).
# Everything goes to $OUT (default bench/gpu/out):
#   machine.txt       nvidia-smi, toolkit and PyTorch versions
#   sass.txt          ptxas -v resource report and cuobjdump -sass of each PTX
#   kvq_bench.log     kvq_bench.py: correctness, then timing of every PTX
#   kvq_results.json  its numbers
#   heads_bench.log, heads_results.json  heads_bench.py: per-head against
#                     per-tensor scales (and scales as constants), T = 32768
#                     and 4096
#   torch_baseline.log  torch_baseline.py (copy of ../shared/bench/) at
#                     T = 32768, 4096, 256 (eager and torch.compile)
#   ncu.txt           Nsight Compute on the D=128 kernels (T = 32768, 4096)
#   summary.txt       the final table (also printed last)
# The whole script keeps within BUDGET seconds (default 510).
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
BUDGET=${BUDGET:-510}
if ! ls ptx/*.ptx >/dev/null 2>&1; then
  echo "run.sh: no bench/gpu/ptx/*.ptx: run bench/gpu/gen.sh on the build machine and carry bench/gpu/ptx" >&2
  exit 2
fi
left() { local l=$(( BUDGET - SECONDS - ${1:-0} )); [ $l -lt 5 ] && l=5; echo $l; }

{
  date -u
  cat ptx/source.txt 2>/dev/null
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,pci.bus_id,memory.total,clocks.max.sm,clocks.max.mem,clocks.sm,power.limit,persistence_mode,compute_mode --format=csv
  nvcc --version | tail -2
  python3 -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__)'
} > "$OUT/machine.txt" 2>&1
grep -E "^(name|NVIDIA)|torch" "$OUT/machine.txt" | head -4

# Compiler resource report and SASS (what the driver JIT also produces).
for p in ptx/*.ptx; do
  n=$(basename "$p" .ptx)
  echo "===== $n"
  ptxas -arch=sm_90 -v "$p" -o "/tmp/$n.cubin" 2>&1 | grep -E "entry function|registers|spill"
  cuobjdump -sass "/tmp/$n.cubin"
done > "$OUT/sass.txt" 2>&1
echo "sass.txt: $(grep -c '' "$OUT/sass.txt") lines"

timeout "$(left 260)" python3 kvq_bench.py 2>&1 | tee "$OUT/kvq_bench.log"
rc=$?
echo "kvq_bench.py exit $rc after ${SECONDS}s"

# Per-head scales against per-tensor ones (ptx/heads*.ptx), same process.
timeout "$(left 200)" python3 heads_bench.py 2>&1 | tee "$OUT/heads_bench.log" | tail -8
echo "heads_bench.py exit ${PIPESTATUS[0]} after ${SECONDS}s"

# Nsight Compute on the default kernels (real clocks; a few sections).
timeout "$(left 170)" ncu --clock-control none --target-processes all \
  -k regex:'(store|load)_d128_kernel|kvq_cache_(store|load)_\w+_8x128_b16_kernel' -c 8 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
  --section LaunchStats --section SchedulerStats --section WarpStateStats \
  --section ComputeWorkloadAnalysis \
  python3 kvq_bench.py --ncu > "$OUT/ncu.txt" 2>&1
echo "ncu exit $? after ${SECONDS}s"

: > "$OUT/torch_baseline.log"
for T in 32768 4096 256; do
  echo "== torch_baseline.py $T" >> "$OUT/torch_baseline.log"
  timeout "$(left 10)" python3 torch_baseline.py $T >> "$OUT/torch_baseline.log" 2>&1
  echo "torch_baseline.py $T exit $? after ${SECONDS}s"
done
grep -vE "^\s*$" "$OUT/torch_baseline.log" | grep -vE "Warning|warn" | tail -24

python3 kvq_bench.py --summary 2>&1 | tee "$OUT/summary.txt"
exit $rc
