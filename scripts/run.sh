#!/usr/bin/env bash
# Set up (first run) and start Tracewire on the embedded SQLite database, with demo data.
# Extra arguments go to `tracewire serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/tracewire serve --demo "$@"
