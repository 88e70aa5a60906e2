"""The SQL an app's engine runs while a block lasts, for tests that count or read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.core.db import Database


@contextmanager
def statements(db: Database, keep: Callable[[str], bool] = lambda _s: True) -> Iterator[list[str]]:
    """Each statement `keep` accepts, its white space folded, in the order run."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        if keep(text):
            seen.append(text)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
