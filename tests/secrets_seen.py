"""Every secret the tests use is remembered here; the last test greps the run's logs for them."""

from __future__ import annotations

SEEN: set[str] = set()


def remember(*secrets: str | None) -> None:
    """Note secrets (passwords, client secrets, tokens, webhook secrets) used by a test."""
    SEEN.update(s for s in secrets if s and len(s) >= 8)
