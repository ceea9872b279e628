#!/bin/bash
# ===- bench/attention/run.sh - decode-attention design study, in one go --===#
#
# Runs ON THE GPU MACHINE (nvcc, cuobjdump, python3 with PyTorch), from any
# directory; needs only bench/attention/. Compiles decode_proto.cu for
# sm_90a into /tmp/kvq_attn/, checks every kernel configuration on ragged
# batches (attention_bench.py --check, re-run past a configuration that
# kills the process), times the shapes (--bench) and prints the table
# (--summary). Everything goes to $OUT (default bench/attention/out):
#   build.txt     machine, toolkit, ptxas -v of every kernel, SASS opcode
#                 counts of the main kernels
#   run.log       everything the steps printed
#   check.jsonl   --check, one record per configuration
#   results.json  --bench, every number
#   sweep.txt     every configuration x split (graph us per call)
#   summary.txt   the final table (also printed last)
# The whole script keeps within BUDGET seconds (default 420).
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
BUDGET=${BUDGET:-420}
BUILD=/tmp/kvq_attn
LIB=$BUILD/libdecode_proto.so
mkdir -p "$BUILD"
left() { local l=$(( BUDGET - SECONDS - ${1:-0} )); [ $l -lt 5 ] && l=5; echo $l; }
rm -f "$OUT/check.jsonl"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,clocks.sm,power.limit,persistence_mode,compute_mode --format=csv
  nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "== nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -Xptxas -v"
} > "$OUT/build.txt" 2>&1
nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -std=c++17 -Xptxas -v -shared -Xcompiler -fPIC \
  -o "$LIB" decode_proto.cu >> "$OUT/build.txt" 2>&1
rc=$?
echo "nvcc exit $rc after ${SECONDS}s" | tee -a "$OUT/build.txt"
[ $rc -eq 0 ] || { tail -30 "$OUT/build.txt"; exit $rc; }
# Opcode counts per kernel (what the inner loops are made of).
cuobjdump -sass "$LIB" 2>/dev/null | python3 -c '
import re, sys, collections
name, cnt = None, collections.Counter()
def flush():
    if name and re.search(r"attn_(mma|simt)_kernelILi[12]ELb[01]ELi4ELi2E|attn_simt_kernelILb[01]ELi4ELi1ELi4E|combine", name):
        top = ", ".join(f"{k} {v}" for k, v in cnt.most_common(16))
        print(f"{name}: {sum(cnt.values())} instructions; {top}")
for line in sys.stdin:
    m = re.search(r"Function : (\S+)", line)
    if m:
        flush(); name, cnt = m.group(1), collections.Counter(); continue
    m = re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", line)
    if m:
        cnt[m.group(1)] += 1
flush()
' >> "$OUT/build.txt" 2>&1

{
  for i in 1 2 3 4; do
    timeout "$(left 150)" python3 attention_bench.py --check --lib "$LIB"
    c=$?
    echo "check exit $c after ${SECONDS}s"
    [ $c -eq 0 ] && break
  done
  timeout "$(left 10)" python3 attention_bench.py --bench --lib "$LIB" --budget "$(left 25)"
  echo "bench exit $? after ${SECONDS}s"
} 2>&1 | tee "$OUT/run.log"
python3 attention_bench.py --summary 2>&1 | tee -a "$OUT/run.log"
