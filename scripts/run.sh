#!/usr/bin/env bash
# Set up (first run) and start Tracewire on the embedded SQLite database, with demo data.
# Extra arguments go to `tracewire serve` (e.g. --port 9000).
#
# Dependencies are installed into .venv/ the first time (2-3 minutes) and again only when
# pyproject.toml changes: the install leaves a stamp of its hash in .venv/. The code itself
# is installed in editable mode, so edits to app/ need no reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.tracewire-installed
[ -x .venv/bin/python ] || "$python" -m venv .venv
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/tracewire ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "installing Tracewire and its dependencies into .venv/ (the first time takes 2-3 minutes)"
  rm -f "$stamp"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
  echo "$wanted" >"$stamp"
fi
exec .venv/bin/tracewire serve --demo "$@"
