#!/usr/bin/env bash
# Checks (never rewrites) that the C++ sources follow .clang-format:
# clang-format-22 if installed, else clang-format. Exits 1 listing the
# files that differ; pass files to check only those.
#
#   bash scripts/check-format.sh [file...]
#   clang-format-22 -i <file>            # to fix one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

formatter=$(command -v clang-format-22 || command -v clang-format || true)
if [[ -z "$formatter" ]]; then
  echo "check-format: neither clang-format-22 nor clang-format found" >&2
  exit 2
fi

if (($# > 0)); then
  files=("$@")
else
  mapfile -t files < <(find include lib tools unittests test/Install \
    -type f \( -name '*.h' -o -name '*.cpp' \) | sort)
fi

bad=0
for file in "${files[@]}"; do
  if ! "$formatter" --style=file --dry-run --Werror "$file" > /dev/null 2>&1
  then
    echo "check-format: $file needs formatting"
    bad=1
  fi
done
echo "check-format: ${#files[@]} files checked with $("$formatter" --version)"
exit "$bad"
