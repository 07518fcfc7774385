#!/usr/bin/env bash
# Applies one mutation to the library for real, builds, runs the tests that should catch it, and reverts.
#
#   scripts/mutate.sh NAME FILTER FILE SED_EXPR [FILE SED_EXPR ...]
#
# FILE is relative to src/TransformerForge; SED_EXPR is a sed -E expression applied in place. Every expression must
# change its file (else the mutation is reported as NOT APPLIED). FILTER is a `dotnet test --filter` expression
# ("" runs the whole suite). Prints one line: `NAME: RED <failed tests>` or `NAME: GREEN` (the mutant survived),
# plus the log under ${MUTATE_LOGS:-/tmp/mutate}. The source is restored (git checkout) however the script ends.
# Needs a clean library source tree; run it from the repository root. DRY=1 only checks that every expression still
# applies (no build, no tests).
set -uo pipefail
name=$1 filter=$2; shift 2
root=$(git rev-parse --show-toplevel); cd "$root"
src=src/TransformerForge
logs=${MUTATE_LOGS:-/tmp/mutate}; mkdir -p "$logs"
log="$logs/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log"

if ! git diff --quiet -- "$src"; then echo "$name: ERROR library source has uncommitted changes"; exit 2; fi
files=()
restore() { [ ${#files[@]} -gt 0 ] && git checkout -q -- "${files[@]}"; }
trap restore EXIT

while [ $# -ge 2 ]; do
  f="$src/$1" expr=$2; shift 2
  files+=("$f")
  before=$(md5sum < "$f")
  sed -E -i "$expr" "$f"
  if [ "$before" = "$(md5sum < "$f")" ]; then echo "$name: NOT APPLIED (${f#$src/}: $expr)"; exit 3; fi
done
if [ -n "${DRY:-}" ]; then echo "$name: APPLIES"; exit 0; fi
git diff -- "${files[@]}" > "$log"

if ! nice -n 10 dotnet build tests/TransformerForge.Tests -nologo -v q --no-restore >> "$log" 2>&1; then
  echo "$name: BUILD FAILED (see $log)"; exit 4
fi
args=(test tests/TransformerForge.Tests --no-build -nologo)
[ -n "$filter" ] && args+=(--filter "$filter")
nice -n 10 dotnet "${args[@]}" >> "$log" 2>&1
rc=$?
failed=$(grep -E '^\s+Failed [A-Za-z]' "$log" | sed -E 's/^\s+Failed TransformerForge\.Tests\.//; s/ \[[^]]*\]$//' \
  | sed -E 's/\(.*//' | sort | uniq -c | awk '{print $2 ($1 > 1 ? " (" $1 " cases)" : "")}' | paste -sd ';' -)
summary=$(grep -E '^(Passed|Failed)!' "$log" | tail -1)
if [ $rc -ne 0 ] && [ -n "$failed" ]; then echo "$name: RED $failed | $summary"
elif [ $rc -ne 0 ]; then echo "$name: ERROR rc=$rc (see $log)"
else echo "$name: GREEN | $summary"; fi
