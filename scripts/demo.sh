#!/usr/bin/env bash
# The demo command: setup if needed, then the whole stack against a simulated cluster.
# Options go to scripts/dev-stack.ts (--once, --speed N, --scenario FILE, --api-port N, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# --help answers before setup installs anything.
for arg in "$@"; do
  case "$arg" in -h|--help) cat scripts/demo-usage.txt; exit 0 ;; esac
done
bash scripts/setup.sh
exec node --import tsx scripts/dev-stack.ts "$@"
