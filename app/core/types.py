"""Column types and helpers shared by every domain."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError
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


# --- the API's one date-time type ------------------------------------------------------

# Every instant the service takes or gives lies in this range once converted to UTC: what
# a Python datetime holds, so a valid offset can never overflow it in a comparison, a
# bound SQL parameter (UTCDateTime converts) or a hash.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
RANGE_TEXT = "0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
# A date, then a time: what RFC 3339 writes (with `T`, `t` or a space between them).
# Without this check the parser would also read "1700000000" as Unix time.
_DATE_THEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
NAIVE = "Give a UTC offset (Z or ±hh:mm)"
OUT_OF_RANGE = f"Out of range once converted to UTC: give an instant between {RANGE_TEXT}"
NOT_A_DATE_TIME = "Give a date-time like 2026-01-31T12:00:00Z (RFC 3339)"


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError when it has no offset or UTC cannot hold it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(NAIVE)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None


def parse_utc(text: str) -> datetime:
    """An RFC 3339 date-time in UTC; ValueError when it is not one or is out of range."""
    if not _DATE_THEN_TIME.match(text):
        raise ValueError(NOT_A_DATE_TIME)
    return to_utc(datetime.fromisoformat(text))


def _instant(value: Any, parse: ValidatorFunctionWrapHandler) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is UTC:
        return value  # the common case, read from the database: already what it must be
    if isinstance(value, str):
        if not _DATE_THEN_TIME.match(value):
            raise PydanticCustomError("datetime_format", NOT_A_DATE_TIME)
        value = parse(value)  # pydantic's own parser: what the API has always read
    elif not isinstance(value, datetime):
        # Never a number: pydantic would take it for Unix time (seconds or milliseconds).
        raise PydanticCustomError("datetime_type", NOT_A_DATE_TIME)
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_aware", NAIVE)
    try:
        return to_utc(value)
    except ValueError:
        raise PydanticCustomError("datetime_out_of_range", OUT_OF_RANGE) from None


Instant = Annotated[datetime, WrapValidator(_instant)]
"""A date-time of the API (bodies, answers, query parameters): an RFC 3339 string with a
UTC offset, never naive and never a number, whose UTC value lies between EARLIEST and
LATEST; validated to an aware datetime in UTC (422 naming the field otherwise)."""


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

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
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

    def process_result_value(self, value: Any, _dialect: Dialect) -> list[uuid.UUID] | None:
        if value is None:
            return None
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in value]
