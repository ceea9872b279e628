#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds everything into
# build/, runs ctest (lit, which includes the install + find_package(KVQ)
# test, and every GoogleTest binary), then prints the test counts.
#
#   bash scripts/test.sh
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
exit "$status"
