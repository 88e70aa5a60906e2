"""Keyset pagination: opaque cursors over a (timestamp, id) order."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import InvalidInput
from app.core.types import to_utc

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor pointing just past the row (at, row_id)."""
    raw = json.dumps([at.isoformat(), str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (at, row_id) a cursor points past; 422 naming `cursor` when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, id_text = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = to_utc(datetime.fromisoformat(at_text))  # naive or out of range: ValueError
        return at, uuid.UUID(id_text)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidInput.on(
            "cursor", "not a cursor this service issued", location="query"
        ) from exc


async def keyset_page(
    session: AsyncSession,
    query: Any,
    model: Any,
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """One page of `query` in (created_at, id) order, and the cursor of the next page."""
    order = sa.tuple_(model.created_at, model.id)
    if cursor:
        at, row_id = decode_cursor(cursor)
        mark = sa.tuple_(at, row_id)
        query = query.where(order < mark if newest_first else order > mark)
    columns = (model.created_at, model.id)
    query = query.order_by(*(c.desc() if newest_first else c for c in columns))
    rows = (await session.exec(query.limit(limit + 1))).all()
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode_cursor(last.created_at, last.id)
    return rows, None
