#!/usr/bin/env bash
# Configures kvq into build/ (Release, Ninja) if needed, then builds the
# given targets, or everything. BUILD_DIR overrides the folder; CMAKE_ARGS
# adds configure options (e.g. CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++-22").
#
#   bash scripts/cmake-build.sh            # everything: tools, plugin, tests
#   bash scripts/cmake-build.sh kvq-opt    # one target
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" || -n "${CMAKE_ARGS:-}" ]]; then
  # shellcheck disable=SC2086 # CMAKE_ARGS is a list of options
  cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    ${CMAKE_ARGS:-}
fi
if (($# == 0)); then
  cmake --build "$build_dir"
else
  cmake --build "$build_dir" --target "$@"
fi
