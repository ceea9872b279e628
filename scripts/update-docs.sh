#!/usr/bin/env bash
# Regenerates the Markdown reference of the kvq dialect and passes from ODS
# (the `kvq-doc` target: add_mlir_doc writes <build>/docs/) and copies it
# into docs/, which holds the checked-in copy. With --check, only reports
# whether docs/ is up to date (exit 1 if not).
#
#   bash scripts/update-docs.sh [--check]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
[[ "${1:-}" == "--check" ]] && check=1
build_dir=${BUILD_DIR:-build}
bash scripts/cmake-build.sh kvq-doc > /dev/null

# mlir-tblgen writes Hugo shortcodes for the MLIR website ([TOC],
# {{% markdown %}}); drop them so the files read well as plain Markdown.
clean() {
  sed -e '/^\[TOC\]$/d' -e 's/{{% \/\{0,1\}markdown %}}//g' "$1"
}

stale=0
while IFS= read -r -d '' generated; do
  relative=${generated#"$build_dir/docs/"}
  target=docs/$relative
  if ((check)); then
    if ! clean "$generated" | diff -q - "$target" > /dev/null 2>&1; then
      echo "update-docs: $target is out of date"
      stale=1
    fi
  else
    mkdir -p "$(dirname "$target")"
    clean "$generated" > "$target"
    echo "update-docs: $target"
  fi
done < <(find "$build_dir/docs" -name '*.md' -print0 | sort -z)

if ((check && stale)); then
  echo "update-docs: run 'bash scripts/update-docs.sh' and commit docs/" >&2
  exit 1
fi
