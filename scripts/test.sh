#!/usr/bin/env bash
# The one test command: setup, type-check, then every test (unit and integration, which
# start their own Temporal dev server). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "Type-checking (tsc --noEmit)..."
typecheck=0
node_modules/.bin/tsc -p tsconfig.json --noEmit || typecheck=$?
if [ "$typecheck" -ne 0 ]; then
  echo "Type check FAILED (see above); running the tests anyway." >&2
fi

tests=0
node_modules/.bin/vitest run "$@" || tests=$?
if [ "$typecheck" -ne 0 ]; then exit "$typecheck"; fi
exit "$tests"
