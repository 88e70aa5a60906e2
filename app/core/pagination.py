"""Keyset pagination: opaque cursors over a (timestamp, id) order."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from app.core.errors import InvalidInput

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
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(id_text)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidInput.on("query.cursor", "not a cursor this service issued") from exc
