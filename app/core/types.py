"""Column types and helpers shared by every domain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


# Table models take these, not the builtins `list` and `dict`, as default factories:
# pydantic inspects a factory's signature on every construction, and for a builtin that
# means parsing its text signature (about 0.2 ms each, measured in bench/RESULTS.md).
def empty_list() -> list[Any]:
    """A new empty list (a default factory)."""
    return []


def empty_dict() -> dict[str, Any]:
    """A new empty dict (a default factory)."""
    return {}


def new_id() -> uuid.UUID:
    """A new random primary key."""
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no time zones and would hand back naive values; PostgreSQL keeps
    `timestamptz`. Both round-trip to aware UTC datetimes through this type.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class UuidList(TypeDecorator[list[uuid.UUID]]):
    """A list of UUIDs: a native `uuid[]` on PostgreSQL (array operators, GIN), JSON elsewhere."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(Uuid()))
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: list[uuid.UUID] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return [uuid.UUID(str(v)) for v in value]
        return [str(v) for v in value]

    def process_result_value(self, value: Any, dialect: Dialect) -> list[uuid.UUID] | None:
        if value is None:
            return None
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in value]
