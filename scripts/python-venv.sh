#!/usr/bin/env bash
# Creates (or refreshes) the project-local Python virtual environment for the test tools
# listed in scripts/python-requirements.txt, and prints its bin directory. Idempotent: a venv
# whose stamp matches the requirements file is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/venv
reqs=scripts/python-requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$reqs" | cut -d' ' -f1)
# Test projects set up in parallel may call this at once: one installs, the others wait.
mkdir -p .tools
exec 9>.tools/venv.lock
flock 9
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Python test tools into $venv (proxmoxer, ansible, schemathesis)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
  echo "$want" >"$stamp"
fi
echo "$PWD/$venv/bin"
