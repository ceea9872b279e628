#!/usr/bin/env bash
# Runs every kvq libFuzzer target for a bounded time, each over a copy of
# its seed corpus (fuzz/corpus/<name>/ is never written to), up to nproc at
# once, then prints each one's executions, new corpus entries and result.
# Exits 1 if any fuzzer found a crash, a sanitizer report, a leak or a
# timeout; the offending input is kept under <build dir>/fuzz-artifacts/
# and the command that reproduces it is printed.
#
#   bash fuzz/run.sh [seconds per fuzzer (60)] [build dir (build-asan)]
#
# The fuzzers are built by scripts/test-sanitizers.sh (build-asan is
# configured with -DKVQ_ENABLE_FUZZERS=ON), or by hand:
#   cmake --build build-asan --target KVQParserFuzzer ...
# Set ASAN_OPTIONS / LSAN_OPTIONS / UBSAN_OPTIONS as test-sanitizers.sh does
# (this script sets the same defaults when they are unset).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
build_dir=${2:-build-asan}
artifacts="$build_dir/fuzz-artifacts"

# The defaults are scripts/test-sanitizers.sh's (see the reasons there).
asan_defaults=detect_leaks=1:allow_user_poisoning=0:strict_string_checks=1
: "${ASAN_OPTIONS:=$asan_defaults}"
: "${LSAN_OPTIONS:=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

# name  binary  extra libFuzzer flags
fuzzers=(
  "safetensors KVQSafetensorsFuzzer"
  "index KVQIndexFuzzer"
  "parser KVQParserFuzzer -max_len=4096 -dict=fuzz/parser.dict"
  "fold-scales KVQFoldScalesFuzzer -max_len=1024"
)

for entry in "${fuzzers[@]}"; do
  read -r _ binary _ <<< "$entry"
  if [[ ! -x "$build_dir/bin/$binary" ]]; then
    echo "fuzz/run.sh: $build_dir/bin/$binary is missing; build it with" \
      "-DKVQ_ENABLE_FUZZERS=ON (scripts/test-sanitizers.sh does)" >&2
    exit 2
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$artifacts"

run_one() {
  local name=$1 binary=$2
  shift 2
  mkdir -p "$work/$name/corpus" "$artifacts/$name"
  cp fuzz/corpus/"$name"/* "$work/$name/corpus/"
  # -timeout: one input taking 20 s is a hang. New inputs go to the copy
  # (the first corpus directory), crash inputs to the artifacts folder.
  "$build_dir/bin/$binary" -max_total_time="$seconds" -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name/" "$@" \
    "$work/$name/corpus" > "$work/$name.log" 2>&1
}

declare -A pids
for entry in "${fuzzers[@]}"; do
  read -r name binary flags <<< "$entry"
  # At most nproc fuzzers at once.
  while (($(jobs -rp | wc -l) >= $(nproc))); do
    wait -n || true
  done
  # shellcheck disable=SC2086 # flags is a list of options
  run_one "$name" "$binary" $flags &
  pids[$name]=$!
done

failed=0
printf '\n%-12s %10s %8s %8s %s\n' fuzzer execs "exec/s" corpus result
for entry in "${fuzzers[@]}"; do
  read -r name binary _ <<< "$entry"
  if wait "${pids[$name]}"; then
    result=ok
  else
    result=FAILED
    failed=1
  fi
  log="$work/$name.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  seeds=$(find "fuzz/corpus/$name" -type f | wc -l)
  total=$(find "$work/$name/corpus" -type f | wc -l)
  printf '%-12s %10s %8s %8s %s\n' "$name" "${execs:-?}" "${rate:-?}" \
    "$seeds+$((total - seeds))" "$result"
  if [[ $result != ok ]]; then
    echo "---- $binary log (last 60 lines) ----"
    tail -n 60 "$log"
    for crash in "$artifacts/$name"/*; do
      [[ -f "$crash" ]] || continue
      echo "reproduce: $build_dir/bin/$binary $crash"
    done
    echo "----"
  fi
done
echo "(corpus: seeds + new inputs found in ${seconds} s; fuzz/corpus is" \
  "left as checked in)"
exit "$failed"
