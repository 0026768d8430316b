#!/usr/bin/env bash
# `biome check` (extra arguments passed on) over what the project owns: the files git tracks,
# so that an untracked scratch file in the checkout fails neither `make lint` nor `make test`,
# while CI (a clone, where every file is tracked) checks them all. biome.jsonc still decides
# which of them it checks. Outside a git checkout (an unpacked archive) it checks everything
# biome.jsonc includes.
set -euo pipefail
cd "$(dirname "$0")/.."
biome=node_modules/.bin/biome
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  exec "$biome" check "$@" .
fi
files=()
while IFS= read -r -d '' file; do
  # A tracked file deleted in the work tree (not committed yet) is no longer there to check.
  [[ -e $file ]] && files+=("$file")
done < <(git ls-files -z)
exec "$biome" check --files-ignore-unknown=true --no-errors-on-unmatched "$@" "${files[@]}"
