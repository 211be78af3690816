#!/usr/bin/env bash
# Idempotent setup for a fresh clone: Node dependencies, then the Temporal CLI.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "proxmox-manager needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install; older than the lockfile means stale.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "Installing dependencies (npm ci)..."
  # No dependency needs its install script (every native part ships prebuilt), so none runs,
  # whatever npm version this is.
  npm ci --ignore-scripts --no-audit --no-fund
fi

node_modules/.bin/tsx scripts/temporal-cli.ts
