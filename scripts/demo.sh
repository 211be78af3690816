#!/usr/bin/env bash
# The demo command: setup if needed, then the whole stack against a simulated cluster.
# Options go to scripts/dev-stack.ts (--once, --speed N, --scenario FILE, --api-port N, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/dev-stack.ts "$@"
