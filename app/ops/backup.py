"""Backups of the embedded SQLite database through SQLite's online backup API: a
consistent copy while the service keeps running (PostgreSQL: `pg_dump`, see README)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.core.config import Settings

PAGES_PER_STEP = 1024  # copy in steps so the service's writers are never held up for long


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


@dataclass(frozen=True)
class Copied:
    """What a backup or restore copied."""

    path: Path
    bytes: int
    audit_records: int


def database_file(settings: Settings) -> Path:
    """The SQLite file the settings point at; BackupError on PostgreSQL or in memory."""
    if not settings.is_sqlite:
        raise BackupError(
            "TRACEWIRE_DATABASE_URL is PostgreSQL: back it up with pg_dump "
            "(README, section Backups)"
        )
    name = make_url(settings.database_url.get_secret_value()).database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("TRACEWIRE_DATABASE_URL: not an SQLite file that can be backed up")
    return Path(name)


def backup(settings: Settings, destination: Path, *, overwrite: bool = False) -> Copied:
    """Copy the live database to `destination` (written to a side file, then renamed)."""
    source = database_file(settings)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} exists (--force replaces it)")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(source, partial, standalone=True)
        _check(partial)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return Copied(destination, destination.stat().st_size, _audit_count(destination))


def restore(settings: Settings, backup_file: Path) -> Copied:
    """Replace the database's whole content with a backup's (checked first)."""
    target = database_file(settings)
    if not backup_file.is_file():
        raise BackupError(f"no backup at {backup_file}")
    _check(backup_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Through the backup API, not a file copy: the target's WAL and locks stay coherent.
    _copy(backup_file, target)
    return Copied(target, target.stat().st_size, _audit_count(target))


def _copy(source: Path, destination: Path, *, standalone: bool = False) -> None:
    src = sqlite3.connect(_read_only(source), uri=True, timeout=30)
    try:
        dst = sqlite3.connect(destination, timeout=30)
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            if standalone:  # one self-contained file, no -wal / -shm beside it
                dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _check(path: Path) -> None:
    """Refuse anything but a sound Tracewire database."""
    try:
        conn = sqlite3.connect(_read_only(path), uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an SQLite database ({exc})") from None
    if verdict != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {verdict}")
    if not {"alembic_version", "audit_record"} <= tables:
        raise BackupError(f"{path} is not a Tracewire database")


def _audit_count(path: Path) -> int:
    conn = sqlite3.connect(_read_only(path), uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_record").fetchone()[0])
    finally:
        conn.close()


def _read_only(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro"
