#!/usr/bin/env bash
# Set up (first run) and run the test suite. PostgreSQL tests run when
# TRACEWIRE_TEST_POSTGRES_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/test)
# and are skipped, with the reason, when it is not. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
