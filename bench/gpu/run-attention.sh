#!/bin/bash
# ===- bench/gpu/run-attention.sh - kvq.paged_attention on an NVIDIA GPU ---===#
#
# Runs ON THE GPU MACHINE, like run.sh, over bench/gpu/ptx/attention*.ptx
# (gen.sh writes them on the build machine; the device tool carries
# bench/gpu/ptx). Everything goes to $OUT (default bench/gpu/out):
#   attention-sass.txt  ptxas -v and cuobjdump -sass of each attention PTX
#   attention.log       attention_bench.py: sanity, then the timing table
#                       and the targets (printed last)
#   attention.json      its numbers
#   attention-ncu.txt   Nsight Compute on the fp8 kernels (NCU=1 only)
# ATTN_PTX picks another PTX of the same kernels (a variant), ATTN_SHAPES
# a subset of the shapes (attention_bench.py). The whole script keeps
# within BUDGET seconds (default 400).
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
BUDGET=${BUDGET:-400}
if ! ls ptx/attention*.ptx >/dev/null 2>&1; then
  echo "run-attention.sh: no bench/gpu/ptx/attention*.ptx: run bench/gpu/gen.sh on the build machine and carry bench/gpu/ptx" >&2
  exit 2
fi
left() { local l=$(( BUDGET - SECONDS - ${1:-0} )); [ $l -lt 5 ] && l=5; echo $l; }

for p in ptx/attention*.ptx; do
  n=$(basename "$p" .ptx)
  echo "===== $n"
  ptxas -arch=sm_90 -v "$p" -o "/tmp/$n.cubin" 2>&1 | grep -E "entry function|registers|spill"
  cuobjdump -sass "/tmp/$n.cubin"
done > "$OUT/attention-sass.txt" 2>&1
grep -A2 "entry function" "$OUT/attention-sass.txt" | grep -E "entry|spill|registers"

if [ "${NCU:-0}" = 1 ]; then
  timeout "$(left 120)" ncu --clock-control none --target-processes all \
    -k regex:kvq_paged_attention -c 4 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section SchedulerStats --section WarpStateStats \
    python3 attention_bench.py --ncu > "$OUT/attention-ncu.txt" 2>&1
  echo "ncu exit $? after ${SECONDS}s"
fi

timeout "$(left)" python3 attention_bench.py "$@" 2>&1 | tee "$OUT/attention.log"
rc=$?
echo "attention_bench.py exit $rc after ${SECONDS}s"
exit $rc
