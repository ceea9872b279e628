#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds everything into
# build/, runs ctest (lit, which includes the install + find_package(KVQ)
# test, and every GoogleTest binary), then prints the test counts; checks
# that docs/Diagnostics.md lists every diagnostic (check-diagnostics.py),
# that the C++ is formatted (check-format.sh, clang-format-22) and that
# docs/ is what the ODS generates (update-docs.sh --check).
# Then the hardening pass: the whole suite again under ASan + UBSan in
# build-asan/ (scripts/test-sanitizers.sh, which also builds the fuzzers)
# and every libFuzzer target for FUZZ_SECONDS (60) seconds over a copy of
# its seed corpus (fuzz/run.sh). Exits non-zero if any step failed.
#
#   bash scripts/test.sh                      # everything (CI)
#   KVQ_SANITIZERS=0 bash scripts/test.sh     # without the hardening pass
#
# The hardening pass adds a second, instrumented build: on a 2-core machine
# the whole script takes about 20 minutes from scratch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${BUILD_DIR:-build}
bash scripts/install-deps.sh
bash scripts/cmake-build.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" \
  < /dev/null 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# lit runs as one ctest test: its own summary is in ctest's log.
echo
echo "== lit =="
awk '/^Total Discovered Tests:/ { on = 1 }
     on && !/^(Total Discovered Tests:|  [A-Za-z ]+: +[0-9])/ { on = 0 }
     on' "$build_dir/Testing/Temporary/LastTest.log" | grep . \
  || echo "(no lit summary found)"
echo
echo "== ctest =="
grep -E '^[0-9]+% tests passed|^Total Test time' "$log" || true

echo
echo "== diagnostics catalogue =="
python3 scripts/check-diagnostics.py || status=1

echo
echo "== conventions =="
bash scripts/check-format.sh || status=1
bash scripts/update-docs.sh --check || status=1

if [[ "${KVQ_SANITIZERS:-1}" != 0 ]]; then
  echo
  echo "== ASan + UBSan (build-asan) =="
  bash scripts/test-sanitizers.sh || status=1
  echo
  echo "== fuzzers (${FUZZ_SECONDS:-60} s each) =="
  bash fuzz/run.sh "${FUZZ_SECONDS:-60}" "${ASAN_BUILD_DIR:-build-asan}" \
    || status=1
fi
exit "$status"
