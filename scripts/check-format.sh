#!/usr/bin/env bash
# Checks (never rewrites) that the C++ sources follow .clang-format with
# clang-format-22 (scripts/install-deps.sh installs it; other versions
# format differently, so no fallback), and that the banners and every line
# of the .td files fit in 80 columns. Exits 1 listing
# the files that differ; pass files to check only those.
#
#   bash scripts/check-format.sh [file...]
#   clang-format-22 -i <file>            # to fix one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

formatter=$(command -v clang-format-22 || true)
if [[ -z "$formatter" ]]; then
  echo "check-format: clang-format-22 not found (bash scripts/install-deps.sh)" >&2
  exit 2
fi

if (($# > 0)); then
  files=("$@")
else
  mapfile -t files < <(find include lib tools unittests fuzz test/Install \
    test/Integration -type f \( -name '*.h' -o -name '*.cpp' \) | sort)
  mapfile -t tds < <(find include -type f -name '*.td' | sort)
  files+=("${tds[@]}")
fi

bad=0
for file in "${files[@]}"; do
  if [[ "$file" != *.td ]] &&
    ! "$formatter" --style=file --dry-run --Werror "$file" > /dev/null 2>&1
  then
    echo "check-format: $file needs formatting"
    bad=1
  fi
  # The banner of every file; every line of a .td file (clang-format
  # checks the C++ lines, but leaves raw strings and comments alone).
  if long=$(awk -v td="${file%.td}" -v f="$file" \
    'length > 80 && (FNR == 1 || td != f) { print FILENAME ":" FNR; bad = 1 }
     END { exit bad }' \
    "$file"); then
    :
  else
    echo "check-format: $long is longer than 80 columns"
    bad=1
  fi
done
echo "check-format: ${#files[@]} files checked with $("$formatter" --version)"
exit "$bad"
