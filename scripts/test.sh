#!/usr/bin/env bash
# The one test command: setup, the static checks (types, lint, formatting), then every test
# (unit and integration, which start their own Temporal dev server). Extra arguments go to
# vitest. A failing check fails the run, but the tests still run so one run shows everything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

failed=()
check() {
  local name=$1
  shift
  echo "Checking: $name ($*)..."
  "$@" || failed+=("$name")
}
check types node_modules/.bin/tsc -p tsconfig.json --noEmit
check lint node_modules/.bin/eslint .
check formatting node_modules/.bin/prettier --check --log-level warn .
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (see above); running the tests anyway." >&2
fi

tests=0
node_modules/.bin/vitest run "$@" || tests=$?
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
exit "$tests"
