"""Look-ups a batch repeats for every entry, made once per batch.

`POST /alerts:batch` posts up to 500 alerts in one transaction, each through the same
service as `POST /alerts`; the service looks up the same sharing policy and the same named
agencies and groups for every one of them. Inside `batch(session)` such a look-up, written
as `await once(session, key, load)`, runs once and is answered from memory after; outside
it (every other request) `load()` runs every time.

Only values that the batch itself cannot change may be kept (the batch writes alerts and
their children, events and deliveries, never policies, agencies, groups or
subscriptions), and only plain data, never ORM objects (a savepoint's rollback expires
those). Only what decides a refusal is kept: a change another transaction commits during
the batch is then judged as if it had committed just after it. Who is told of an alert
(live subscriptions, group members) is never kept: a subscription or member added while a
batch runs is told of the batch's later alerts, as it would be between single posts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

_MEMO = "tracewire.batch_memo"


@contextmanager
def batch(session: AsyncSession) -> Iterator[None]:
    """Within this block, `once()` look-ups on `session` are made once."""
    if _MEMO in session.info:
        raise RuntimeError("a batch is already open on this session")
    session.info[_MEMO] = {}
    try:
        yield
    finally:
        session.info.pop(_MEMO, None)


async def once(session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`await load()`, or inside a batch its first answer for `key`."""
    memo: dict[Hashable, Any] | None = session.info.get(_MEMO)
    if memo is None:
        return await load()
    if key not in memo:
        memo[key] = await load()
    value: T = memo[key]
    return value
