"""One way to change a versioned row: lock it, check its version and state, bump it.

Alerts, trace requests, hits, webhook subscriptions and sharing policies are all changed
the same way. The service loads the row with `for_change(query)` (or `get_for_change` by
primary key): on PostgreSQL a
`SELECT … FOR NO KEY UPDATE`, so a second writer of the same row waits until the first
commits and then reads the row as the first left it; on SQLite every transaction
begins `IMMEDIATE` (app/core/db.py), so one writer runs at a time anyway. Under that
lock the service checks `If-Match` (`check_version`) and the workflow state it reads,
changes the row and `bump()`s its version: two changes from the same version or the
same state can never both succeed.

`NO KEY UPDATE`, not `UPDATE`: rows that reference the locked one (an audit record, a
trace transition, an event's outbox rows) take `KEY SHARE` locks on it, which a plain
`FOR UPDATE` would block, and two writers locking an alert and its trace request in
opposite orders through such references would deadlock. Locks are always taken parent
first (alert, then its trace request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Header
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import PreconditionFailed, PreconditionRequired
from app.core.types import utcnow

# Bare `Select`: any row shape (SQLAlchemy 2.1 types a select by its columns).
Q = TypeVar("Q", bound=Select)
T = TypeVar("T")

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag (version) you are changing: 412 if it is no longer current.",
    ),
]


class Versioned(Protocol):
    """A row with an integer version that bumps on every change."""

    version: int
    updated_at: datetime


def for_change(query: Q, *of: Any) -> Q:
    """`query` locking the rows of `of` (default: all its tables) until the transaction ends.

    The rows are read afresh even when the session already holds them, so the caller
    checks what the previous writer committed, not what it had loaded before.
    """
    return query.with_for_update(of=list(of) or None, key_share=True).execution_options(
        populate_existing=True
    )


async def get_for_change(session: AsyncSession, model: type[T], key: object) -> T | None:
    """`session.get` of one row by primary key, locked and read afresh (see `for_change`)."""
    return await session.get(
        model, key, with_for_update={"key_share": True}, populate_existing=True
    )


def etag(version: int) -> str:
    """The strong entity tag of a version."""
    return f'"{version}"'


def check_version(
    current: int, if_match: str | None, *, required: bool, what: str = "resource"
) -> None:
    """Refuse a change made from another version than `current` (412), or blind (428).

    Without `If-Match` the change is refused when `required`, else made on the current
    version (still atomic: the row is locked).
    """
    if not if_match:
        if required:
            raise PreconditionRequired(
                f"Send `If-Match` with the version (ETag) of the {what} you are changing."
            )
        return
    wanted = {v.strip().removeprefix("W/").strip('"') for v in if_match.split(",")}
    if "*" not in wanted and str(current) not in wanted:
        raise PreconditionFailed(
            f"The {what} is at version {current}; reload it and apply your change again.",
            headers={"ETag": etag(current)},
        )


def bump(row: Versioned, now: datetime | None = None) -> None:
    """Count one more change of a row that `for_change` locked."""
    row.version += 1
    row.updated_at = now or utcnow()
