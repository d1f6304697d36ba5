#!/usr/bin/env bash
# The whole test suite: what `npm test` and CI run. Installs the Debian packages the interop
# tests need (when missing), checks that the protos lint clean and break no generated client
# (buf breaking against proto/baseline.binpb) and that src/gen is fresh, typechecks, lints
# and checks formatting (Biome), builds the Node output the runtime tests start, then runs every vitest test.
#
# Usage: bash scripts/test.sh [vitest filters and options, e.g. test/unit]   (npm test -- ...)
set -euo pipefail
# --help: the comment block above is the usage.
if [[ ${1:-} == "--help" || ${1:-} == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
npx buf lint
# The wire contract: no change that breaks a generated client (proto/README.md).
npx buf breaking --against proto/baseline.binpb
bash scripts/check-gen.sh
npx tsc -p tsconfig.json --noEmit
npx biome ci .
npx tsc -p tsconfig.build.json

mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json "$@" || status=$?
# One plain closing line: "tests: N passed, N failed".
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' || true
exit "$status"
