#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds
# kvq-opt into build/ and prints the per-layer table of
# examples/llama-tiny/model.mlir (8 decoder layers, fp8 KV cache).
#
#   bash scripts/run-example.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
bash scripts/cmake-build.sh kvq-opt

echo
echo "$ build/bin/kvq-opt examples/llama-tiny/model.mlir --kvq-layer-report -o /dev/null"
"${BUILD_DIR:-build}/bin/kvq-opt" examples/llama-tiny/model.mlir \
  --kvq-layer-report -o /dev/null
