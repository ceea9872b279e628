#!/bin/bash
# bench/gpu/exp2/run.sh (GPU machine, needs nvcc and PyTorch): compile
# layouts.cu (gen.sh), run exp2.py (arguments passed on, e.g. --match REGEX),
# then ncu kernel durations of the same kernels. Output in $OUT.
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/exp2}; mkdir -p "$OUT"
./gen.sh > /dev/null || exit 1
timeout 400 python3 exp2.py "$@" 2>&1 | tee "$OUT/exp2.txt"
timeout 150 ncu --clock-control none -k regex:"store_d128|load_d128|kvq_cache" \
  --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size \
  python3 exp2.py --ncu "$@" > "$OUT/ncu.txt" 2>&1
grep -E "ncu:|_kernel|duration" "$OUT/ncu.txt" | head -150
