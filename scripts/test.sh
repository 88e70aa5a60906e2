#!/usr/bin/env bash
# Set up (first run) and run the test suite. PostgreSQL tests run when
# TRACEWIRE_TEST_POSTGRES_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/test)
# and are skipped, with the reason, when it is not. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# The single sign-on tests run a real OpenID Connect provider (npm's oidc-provider, the
# version pinned in tests/oidc/package.json). Without Node.js they are skipped with that
# reason (unless TRACEWIRE_REQUIRE_OIDC=1). No lock file: none records a registry's address.
if command -v npm >/dev/null && [ ! -f tests/oidc/node_modules/oidc-provider/package.json ]; then
  (cd tests/oidc && npm install --no-package-lock --no-audit --no-fund --silent)
fi
exec .venv/bin/python -m pytest "$@"
