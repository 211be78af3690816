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
  npm_log=$(mktemp)
  if ! npm ci --ignore-scripts --no-audit --no-fund >"$npm_log" 2>&1; then
    if grep -q 'Missing: .* from lock file' "$npm_log"; then
      # npm ci rejects a lockfile when a registry does not serve some other platform's optional
      # binaries (npm/cli#9846). npm install installs the same locked versions regardless.
      echo "npm ci refused the lockfile over optional packages for other platforms; installing the locked versions with npm install"
      npm install --ignore-scripts --no-audit --no-fund
    else
      cat "$npm_log" >&2
      rm -f "$npm_log"
      exit 1
    fi
  fi
  rm -f "$npm_log"
fi

node_modules/.bin/tsx scripts/temporal-cli.ts
