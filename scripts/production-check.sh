#!/usr/bin/env bash
# The production path on this machine, without Docker: Temporal server (built once from the Go
# module proxy) on PostgreSQL, three workers, two APIs, faults, checks, read figures.
# Needs Go and PostgreSQL's binaries (Debian: apt-get install golang postgresql); ~15 minutes
# the first time on 2 cores (the server build), a few minutes after. See docs/deploy.md.
#
#   ./scripts/production-check.sh [--no-doc] [--load-seconds N] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in go initdb pg_ctl psql; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/lib/postgresql/15/bin/$tool" ]; then
    echo "production check needs '$tool' (Debian: apt-get install golang postgresql)" >&2
    exit 2
  fi
done
bash scripts/setup.sh
exec node_modules/.bin/tsx scripts/production-check.ts "$@"
