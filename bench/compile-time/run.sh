#!/usr/bin/env bash
# ===- run.sh - compile-time benchmark of kvq-opt ---------------------------===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===------------------------------------------------------------------------===#
#
# Times kvq-opt (parse + print, fold, import + fold, fold + lower to GPU IR)
# on generated models of 32 to 10,000 layers, and the checkpoint read alone
# against sparse checkpoints of up to 64 GiB. Prints markdown tables on
# stdout (progress on stderr); bench/compile-time/bench.py --help lists the
# options, which this script passes on.
#
#   bash bench/compile-time/run.sh | tee /tmp/compile-time.md   # ~17 min
#   bash bench/compile-time/run.sh --sizes 32,100 --many-sizes 32 --reps 1 \
#       --ckpt-gib 0,1                                           # smoke test
#   KVQ_OPT=/path/to/kvq-opt bash bench/compile-time/run.sh
#
# By default it builds kvq-opt into build-bench/ (Release) first; set
# KVQ_OPT to time another binary instead. Reads no standard input.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [[ -z "${KVQ_OPT:-}" ]]; then
  build="$root/build-bench"
  if [[ ! -f "$build/build.ninja" ]]; then
    cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
  fi
  ninja -C "$build" kvq-opt >&2
  KVQ_OPT="$build/bin/kvq-opt"
fi

echo "# machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
echo "# date: $(date -u)"
echo "# uptime:$(uptime)"
exec python3 "$root/bench/compile-time/bench.py" --kvq-opt "$KVQ_OPT" "$@" </dev/null
