#!/usr/bin/env bash
# Fails when src/gen is stale: regenerates the code from proto/ into a temporary directory with
# the repository's own buf.gen.yaml and compares it with the committed src/gen. Also fails when
# the .proto files are not `buf format`ted or do not pass `buf lint`. CI runs it (npm run
# check:gen); to fix a failure run `npm run generate` (and `npx buf format -w`) and commit.
#
# Usage: bash scripts/check-gen.sh   (npm run check:gen)
set -euo pipefail
# --help: the comment block above is the usage.
if [[ ${1:-} == "--help" || ${1:-} == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi

cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$buf" lint
if ! "$buf" format --diff --exit-code >"$tmp/format.diff"; then
  cat "$tmp/format.diff"
  echo "check-gen: proto files are not formatted; run: npx buf format -w" >&2
  exit 1
fi

# --output prefixes every plugin's `out` (src/gen) with the temporary directory.
"$buf" generate --output "$tmp"

if ! diff -r -u src/gen "$tmp/src/gen"; then
  echo "check-gen: src/gen is stale; run: npm run generate, and commit the result" >&2
  exit 1
fi
echo "check-gen: src/gen is up to date"
