"""Every secret the tests use is remembered here; the last test greps the run's logs for them."""

from __future__ import annotations

SEEN: set[str] = set()


def remember(*secrets: str | None) -> None:
    """Note secrets (passwords, client secrets, tokens, webhook secrets) used by a test."""
    SEEN.update(s for s in secrets if s and len(s) >= 8)


def parts_shown(secret: str, text: str, size: int = 6) -> list[str]:
    """The pieces of `secret` (every run of `size` characters) that occur in `text`."""
    pieces = {secret[i : i + size] for i in range(max(1, len(secret) - size + 1))}
    return sorted(p for p in pieces if p in text)
