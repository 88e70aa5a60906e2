"""The secret material the settings check, read or generate: placeholder detection,
base64 Ed25519 keys, and secret files (generated into the data directory, mode 0600)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

# Secrets that look like the examples in the source and docs. A JWT secret like these is
# refused in every environment (a published value signs tokens anybody can forge).
PLACEHOLDER_MARKERS = ("change-me", "changeme", "changethis", "dev-only", "placeholder")
# Generated into the data directory on first start when the settings name none.
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
AUDIT_KEY_FILE = "audit-signing-key"
# Database passwords that come with images and tutorials: as good as none.
DEFAULT_DATABASE_PASSWORDS = ("postgres", "password", "secret", "tracewire")


def is_placeholder(value: str) -> bool:
    """Whether a secret looks like an example of the source or docs."""
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def decode_key(value: str, where: str | None = None) -> bytes:
    """A base64 32-byte Ed25519 key (seed or public key); ValueError (naming `where`) if not."""
    prefix = f"{where}: " if where else ""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise ValueError(f"{prefix}must be base64") from None  # never quote the value
    if len(raw) != 32:
        raise ValueError(f"{prefix}must decode to 32 bytes (an Ed25519 key)")
    return raw


def read_secret_file(path: Path) -> str:
    """A secret kept in a file (surrounding whitespace dropped); never empty."""
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def read_or_create_secret(path: Path, generate: Callable[[], str]) -> str:
    """The secret in `path`, which is created (mode 0600) from `generate()` if missing.

    Several processes may start at once: the file is written under another name and linked
    into place, so a reader sees either no file or the whole of the one that won.
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(generate() + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its
                os.link(scratch, path)
        finally:
            scratch.unlink()
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
    return read_secret_file(path)


def has_placeholder_password(url: str) -> bool:
    """Whether a database URL carries a placeholder or well-known password."""
    password = make_url(url).password
    if not password:  # none in the URL: trust, peer or a password file does the work
        return False
    return is_placeholder(password) or password.lower() in DEFAULT_DATABASE_PASSWORDS
