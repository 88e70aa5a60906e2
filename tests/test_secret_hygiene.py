"""No secret, token or password the tests used ever reached a log line (runs last)."""

from __future__ import annotations

from tests.conftest import CAPTURED_LOGS
from tests.secrets_seen import SEEN


def test_no_secret_in_the_logs_of_the_whole_run():
    assert SEEN, "the tests registered no secrets: the check would prove nothing"
    assert CAPTURED_LOGS, "no log line was captured: the check would prove nothing"
    text = "\n".join(CAPTURED_LOGS)
    leaked = sorted(s[:6] + "…" for s in SEEN if s in text)
    assert leaked == [], f"secrets found in logs: {leaked}"
