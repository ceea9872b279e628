#!/usr/bin/env bash
# Installs the Debian 12 packages kvq builds and tests with, if any is
# missing: LLVM/MLIR 22 (headers, libMLIR.so, mlir-opt, lit, FileCheck),
# clang 22 and its runtimes (fuzzers), clang-format 22, CMake, Ninja, GoogleTest, Google
# Benchmark and Python 3. Runs as root (or through sudo), needs no terminal
# and no standard input; does nothing when everything is there.
set -euo pipefail

packages=(
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  clang-22 libclang-rt-22-dev clang-format-22
  cmake ninja-build libgtest-dev libbenchmark-dev python3
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo > /dev/null || {
    echo "install-deps: missing ${missing[*]}; run as root to install" >&2
    exit 1
  }
  sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q < /dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
  < /dev/null
