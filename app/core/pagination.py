"""Keyset pagination: a list's order, declared once, and the opaque cursors that page it.

A cursor is the key of the last row shown; the next page is the rows past it in the
list's order. Each list declares its order as a `Keyset` and pages through it: the WHERE
(a row-value comparison) and ORDER BY forms built here are the ones the indexes serve.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput
from app.core.types import to_utc

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class CursorFormat(Protocol):
    """How a row's key is written into a cursor and read back."""

    def encode(self, key: Sequence[Any]) -> str:
        """The cursor of `key`."""
        ...

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The key a cursor carries; the format's problem when it is not one it wrote."""
        ...


@dataclass(frozen=True)
class JsonCursor:
    """Unpadded base64url of a JSON list: datetimes in ISO 8601, UUIDs as text, ints.

    `parts` names the type of each element; `invalid` is the problem a cursor that was
    not issued gets (each API names its own parameter and status).
    """

    parts: tuple[type, ...]
    invalid: Callable[[], Exception]
    separators: tuple[str, str] = (",", ":")

    def encode(self, key: Sequence[Any]) -> str:
        """The cursor of `key`, one element per part."""
        raw = [v.isoformat() if isinstance(v, datetime) else _plain(v) for v in key]
        text = json.dumps(raw, separators=self.separators)
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The typed parts of a cursor; `invalid()` when it is not one of ours."""
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            values = list(json.loads(text))
            if len(values) != len(self.parts):
                raise ValueError("bad cursor")
            return tuple(_read(part, value) for part, value in zip(self.parts, values, strict=True))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise self.invalid() from exc


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _read(part: type, value: Any) -> Any:
    if part is datetime:
        return to_utc(datetime.fromisoformat(value))  # naive or out of range: ValueError
    if part is int:
        if not isinstance(value, int):
            raise ValueError("bad cursor")
        return value
    if not isinstance(value, str):
        raise ValueError("bad cursor")  # uuid.UUID(123) would raise AttributeError
    return uuid.UUID(value)


@dataclass(frozen=True)
class SeqCursor:
    """A sequence number in decimal (the request validates its digits)."""

    def encode(self, key: Sequence[Any]) -> str:
        """The cursor of a one-column key."""
        return str(key[0])

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The sequence number."""
        return (int(cursor),)


# The cursor of the (timestamp, id) lists of the JSON API: a 422 naming `cursor`.
TIME_ID = JsonCursor(
    (datetime, uuid.UUID),
    lambda: InvalidInput.on("cursor", "not a cursor this service issued", location="query"),
)


def _itself(row: Any) -> Any:
    return row


@dataclass(frozen=True)
class Keyset:
    """A list's order: key columns (the last one unique), ascending or newest first.

    `keyed` picks the object holding the key from a result row (the first entity of a
    row of several); `bind_types` types the cursor's values where the columns' own types
    would not be inferred (an expression in the key).
    """

    columns: tuple[Any, ...]
    newest_first: bool = False
    cursor: CursorFormat = TIME_ID
    keyed: Callable[[Any], Any] = _itself
    bind_types: tuple[Any, ...] | None = None

    def mark(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The key a cursor points past, or None for the first page."""
        return self.cursor.decode(cursor) if cursor else None

    def after(self, query: Any, mark: Sequence[Any], *, inclusive: bool = False) -> Any:
        """`query` limited to the rows past `mark` in this order (or at it, `inclusive`)."""
        if self.bind_types is not None:
            mark = [
                sa.bindparam(None, v, type_=t) for v, t in zip(mark, self.bind_types, strict=True)
            ]
        if len(self.columns) == 1:
            key, bound = self.columns[0], mark[0]
        else:
            key, bound = sa.tuple_(*self.columns), sa.tuple_(*mark)
        if self.newest_first:
            return query.where(key <= bound if inclusive else key < bound)
        return query.where(key >= bound if inclusive else key > bound)

    def ordered(self, query: Any) -> Any:
        """`query` in this order."""
        return query.order_by(*(c.desc() if self.newest_first else c for c in self.columns))

    def page_query(self, query: Any, *, limit: int, cursor: str | None) -> Any:
        """The query of the page after `cursor`: its rows and one more, to tell if more."""
        mark = self.mark(cursor)
        if mark is not None:
            query = self.after(query, mark)
        return self.ordered(query).limit(limit + 1)

    def split(self, rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
        """The page of `rows` (read by `page_query`) and the cursor of the next, if any."""
        if len(rows) > limit:
            last = self.keyed(rows[limit - 1])
            return rows[:limit], self.cursor.encode([getattr(last, c.key) for c in self.columns])
        return rows, None

    async def fetch(
        self, session: AsyncSession, query: Any, *, limit: int, cursor: str | None
    ) -> tuple[Sequence[Any], str | None]:
        """One page of `query` in this order, and the cursor of the next page."""
        rows = (await session.exec(self.page_query(query, limit=limit, cursor=cursor))).all()
        return self.split(rows, limit)


async def keyset_page(
    session: AsyncSession,
    query: Any,
    model: Any,
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """One page of `query` in the model's (created_at, id) order, and the next cursor."""
    order = Keyset((model.created_at, model.id), newest_first=newest_first)
    return await order.fetch(session, query, limit=limit, cursor=cursor)
